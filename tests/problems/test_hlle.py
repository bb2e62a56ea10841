"""The shock-capturing finite-volume reference (HLLE, first and second order) of the shock tubes."""

from __future__ import annotations

import numpy as np
import pytest

import problems
from problems._hlle import _hlle_flux, _limited_slope
from problems._riemann import ExactRiemannSolver, euler_flux

SOD_L, SOD_R = (1.0, 0.0, 1.0), (0.125, 0.0, 0.1)
LAX_L, LAX_R = (0.445, 0.698, 3.528), (0.5, 0.0, 0.571)
GAMMA = 1.4


def conserved(w):
    rho, u, p = w.T
    return np.stack([rho, rho * u, p / (GAMMA - 1) + 0.5 * rho * u * u])


def exact(left, right, x, t):
    out = ExactRiemannSolver(left, right, gamma=GAMMA, x0=0.5).sample(x, np.full_like(x, t))
    return np.stack(out, axis=1) if isinstance(out, tuple) else np.asarray(out)


def l1(a, b):
    return float(np.mean(np.abs(a - b)))


def test_the_flux_is_consistent_and_upwind():
    """F_HLLE(W, W) = F(W); for a supersonic flow to the right (S_L >= 0) it is the left flux, to
    the left the right one."""
    W = np.array([[1.0, 0.3, 0.2], [0.0, -0.5, 1.0], [1.0, 2.0, 0.7]])  # (ρ, u, p) × 3 faces
    np.testing.assert_allclose(_hlle_flux(W, W, GAMMA), np.stack(euler_flux(*W, gamma=GAMMA)),
                               rtol=1e-14)
    fast = np.array([[1.0], [5.0], [1.0]])  # u = 5 > c ≈ 1.18: everything moves right
    other = np.array([[0.5], [5.5], [0.8]])
    np.testing.assert_allclose(_hlle_flux(fast, other, GAMMA),
                               np.stack(euler_flux(*fast, gamma=GAMMA)), rtol=1e-14)
    np.testing.assert_allclose(_hlle_flux(-fast * [[-1], [1], [-1]], -other * [[-1], [1], [-1]],
                                          GAMMA),
                               np.stack(euler_flux(*(-other * [[-1], [1], [-1]]), gamma=GAMMA)),
                               rtol=1e-14)


def test_the_limiters():
    a = np.array([1.0, 1.0, -2.0, 0.5, 3.0])
    b = np.array([3.0, -1.0, -1.0, 0.0, 1.0])
    np.testing.assert_array_equal(_limited_slope(a, b, "minmod"), [1.0, 0.0, -1.0, 0.0, 1.0])
    # mc: min(2|a|, 2|b|, |a + b|/2) with the common sign
    np.testing.assert_array_equal(_limited_slope(a, b, "mc"), [2.0, 0.0, -1.5, 0.0, 2.0])


@pytest.mark.parametrize("order", [1, 2])
def test_a_uniform_state_stays(order):
    x, w = problems.hlle_riemann_1d((0.7, 0.4, 1.3), (0.7, 0.4, 1.3), t=0.1, cells=50,
                                    order=order)
    np.testing.assert_allclose(w, np.tile([0.7, 0.4, 1.3], (50, 1)), rtol=1e-13)


@pytest.mark.parametrize("order", [1, 2])
def test_the_conserved_totals_change_by_the_boundary_fluxes_only(order):
    """Conservation form: while the ends stay at rest, Σ U Δx changes by the end fluxes exactly —
    mass and energy not at all, momentum by (p_L − p_R) t."""
    t = 0.15
    x, w0 = problems.hlle_riemann_1d(SOD_L, SOD_R, t=0.0, cells=400, order=order)
    x, w = problems.hlle_riemann_1d(SOD_L, SOD_R, t=t, cells=400, order=order)
    flux = np.array([0.0, (SOD_L[2] - SOD_R[2]) * t, 0.0])
    np.testing.assert_allclose(conserved(w).sum(1) / 400, conserved(w0).sum(1) / 400 + flux,
                               rtol=0, atol=1e-12)
    assert np.abs(w[:, 0] - w0[:, 0]).max() > 0.1


@pytest.mark.parametrize("left, right", [(SOD_L, SOD_R), (LAX_L, LAX_R)])
def test_both_orders_converge_to_the_exact_riemann_solution(left, right):
    """L1 error in ρ at t = 0.14 on 200, 400, 800 cells: it falls at the rate of shock-capturing
    schemes (first order: between Δx^0.5, the contact, and Δx, the shock; second order faster),
    and the second-order scheme is the more accurate on every grid."""
    t = 0.14
    errs = {1: [], 2: []}
    for n in (200, 400, 800):
        for order in (1, 2):
            x, w = problems.hlle_riemann_1d(left, right, t=t, cells=n, order=order)
            errs[order].append(l1(w[:, 0], exact(left, right, x, t)[:, 0]))
    for order, lo, hi in ((1, 0.45, 1.0), (2, 0.6, 1.2)):
        rates = np.log2(np.array(errs[order][:-1]) / np.array(errs[order][1:]))
        assert np.all((lo < rates) & (rates < hi)), (order, rates)
    assert all(e2 < 0.6 * e1 for e1, e2 in zip(errs[1], errs[2]))


def test_mc_is_sharper_than_minmod_and_times_come_in_one_run():
    t = [0.05, 0.1, 0.2]
    x, ws = problems.hlle_riemann_1d(SOD_L, SOD_R, t=t, cells=300, order=2, limiter="minmod")
    assert ws.shape == (3, 300, 3)
    x, first = problems.hlle_riemann_1d(SOD_L, SOD_R, t=0.05, cells=300, order=2)
    np.testing.assert_array_equal(ws[0], first)  # the same steps up to the first time
    x, last = problems.hlle_riemann_1d(SOD_L, SOD_R, t=0.2, cells=300, order=2)
    np.testing.assert_allclose(ws[-1], last, rtol=0, atol=1e-3)  # other steps, same solution
    x, mc = problems.hlle_riemann_1d(SOD_L, SOD_R, t=0.2, cells=300, order=2, limiter="mc")
    ref = exact(SOD_L, SOD_R, x, 0.2)[:, 0]
    assert l1(mc[:, 0], ref) < 0.9 * l1(last[:, 0], ref)


def test_the_problem_method_and_its_shock():
    sod = problems.get("sod")
    x, w = sod.hlle_reference(cells=1000, order=2)
    slope = np.diff(w[:, 0])
    right = x[:-1] > 0.75
    shock = 0.5 * (x[:-1] + x[1:])[right][np.argmin(slope[right])]
    assert abs(shock - (0.5 + 1.75216 * 0.2)) < 3e-3


@pytest.mark.parametrize("kwargs, err, match", [
    ({"order": 3}, ValueError, "order: expected 1 or 2"),
    ({"order": True}, ValueError, "order: expected 1 or 2"),
    ({"limiter": "superbee"}, ValueError, "limiter: expected one of minmod, mc"),
    ({"cfl": 0.8, "order": 2}, ValueError, r"cfl: expected 0 < cfl <= 0.5"),
    ({"cfl": 1.5}, ValueError, r"cfl: expected 0 < cfl <= 1"),
    ({"cells": 0}, ValueError, "cells must be a positive integer"),
    ({"t": -1.0}, ValueError, "t: expected a time >= 0"),
    ({"t": [0.2, 0.1]}, ValueError, "t: expected non-decreasing times"),
    ({"x0": 1.0}, ValueError, "x0: expected 0 < x0 < 1"),
    ({"gamma": 1.0}, ValueError, "gamma must be > 1"),
])
def test_bad_arguments_are_named(kwargs, err, match):
    args = {"t": 0.1, **kwargs}
    with pytest.raises(err, match=match):
        problems.hlle_riemann_1d(SOD_L, SOD_R, **args)


def test_a_bad_state_is_named():
    with pytest.raises(ValueError, match="left"):
        problems.hlle_riemann_1d((-1.0, 0.0, 1.0), SOD_R, t=0.1)
