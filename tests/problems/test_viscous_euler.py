"""The finite-volume reference of the regularised shock tube ∂_t U + ∂_x F(U) = ν ∂_xx U."""

from __future__ import annotations

import numpy as np
import pytest

import problems
from problems._riemann import ExactRiemannSolver

SOD_L, SOD_R = (1.0, 0.0, 1.0), (0.125, 0.0, 0.1)
GAMMA = 1.4


def conserved(w):
    rho, u, p = w.T
    return np.stack([rho, rho * u, p / (GAMMA - 1) + 0.5 * rho * u * u])


def exact(x, t):
    out = ExactRiemannSolver(SOD_L, SOD_R, gamma=GAMMA, x0=0.5).sample(x, np.full_like(x, t))
    return np.stack(out, axis=1) if isinstance(out, tuple) else np.asarray(out)


def l1(a, b):
    return float(np.mean(np.abs(a - b)))


def test_the_conserved_totals_change_by_the_boundary_fluxes_only():
    """Conservation form: while the ends stay at rest, Σ U Δx changes by the end fluxes exactly —
    mass and energy not at all (u = 0 there), momentum by (p_L − p_R) t."""
    t = 0.15
    x, w0 = problems.viscous_riemann_1d(SOD_L, SOD_R, viscosity=0.01, t=0.0, cells=400)
    x, w = problems.viscous_riemann_1d(SOD_L, SOD_R, viscosity=0.01, t=t, cells=400)
    flux = np.array([0.0, (SOD_L[2] - SOD_R[2]) * t, 0.0])
    np.testing.assert_allclose(conserved(w).sum(1) / 400, conserved(w0).sum(1) / 400 + flux,
                               rtol=0, atol=1e-10)
    assert np.abs(w[:, 0] - w0[:, 0]).max() > 0.1  # the tube did evolve


def test_the_scheme_converges_at_second_order_in_the_grid():
    """Differences between successive grids (cells 250, 500, 1000; the coarse cell averages
    compared to pairs of fine ones) fall by about 4 per refinement."""
    nu, t = 0.01, 0.1
    sols = [problems.viscous_riemann_1d(SOD_L, SOD_R, viscosity=nu, t=t, cells=n)[1][:, 0]
            for n in (250, 500, 1000)]
    d1 = l1(sols[0], sols[1].reshape(-1, 2).mean(1))
    d2 = l1(sols[1], sols[2].reshape(-1, 2).mean(1))
    assert 3.0 < d1 / d2 < 5.0


def test_the_viscous_solution_tends_to_the_exact_riemann_solution_as_nu_falls():
    """L1 distance to the inviscid solution: O(√ν) (contact, rarefaction corners) — it falls by
    roughly √2 per halving of ν, and the shock stays at the Rankine–Hugoniot position."""
    t = 0.2
    errs, shocks = [], []
    for nu in (0.008, 0.004, 0.002):
        x, w = problems.viscous_riemann_1d(SOD_L, SOD_R, viscosity=nu, t=t, cells=1000)
        errs.append(l1(w[:, 0], exact(x, t)[:, 0]))
        slope = np.diff(w[:, 0]) / np.diff(x)
        mid = 0.5 * (x[1:] + x[:-1])
        shocks.append(mid[mid > 0.75][np.argmin(slope[mid > 0.75])])
    ratios = [errs[0] / errs[1], errs[1] / errs[2]]
    assert all(1.2 < r < 2.1 for r in ratios), (errs, ratios)
    x_shock = 0.5 + 1.75216 * t
    assert all(abs(s - x_shock) < 0.01 for s in shocks), shocks
    assert abs(shocks[-1] - x_shock) < abs(shocks[0] - x_shock) + 1e-3
    # the post-shock plateau keeps the exact Rankine–Hugoniot density ρ*R
    rho_star_r = exact(np.array([0.8]), t)[0, 0]
    assert abs(np.interp(0.8, x, w[:, 0]) - rho_star_r) < 2e-3


def test_the_problem_method_runs_the_solver_with_its_own_parameters():
    sod = problems.get("sod", viscosity=0.01)
    x, w = sod.viscous_reference(cells=400)
    x2, w2 = problems.viscous_riemann_1d(SOD_L, SOD_R, viscosity=0.01, t=0.2, cells=400)
    np.testing.assert_array_equal(w, w2)
    assert x.shape == (400,) and w.shape == (400, 3)
    with pytest.raises(ValueError, match=r"viscosity: the problem is inviscid"):
        problems.get("sod").viscous_reference()


@pytest.mark.parametrize("kwargs, exc, match", [
    (dict(viscosity=0.0, t=0.1), ValueError, r"viscosity: expected ν > 0, got 0.0"),
    (dict(viscosity=0.01, t=-1.0), ValueError, r"t: expected a time >= 0"),
    (dict(viscosity=0.001, t=0.1, cells=100), ValueError,
     r"cells: 100 cells give a cell Péclet number .* > 2 for viscosity 0.001; use at least "
     r"\d+ cells"),
    (dict(viscosity=0.01, t=0.1, cfl=0.9), ValueError, r"cfl: expected 0 < cfl <= 0.5"),
    (dict(viscosity=0.01, t=0.1, x0=1.0), ValueError, r"x0: expected 0 < x0 < 1"),
    (dict(viscosity=0.01, t=0.1, gamma=1.0), ValueError,
     r"gamma must be > 1 \(ratio of specific heats\), got 1.0"),
    (dict(viscosity="small", t=0.1), TypeError, r"viscosity must be a real number"),
    (dict(viscosity=0.01, t=0.1, cells=2.5), TypeError, r"cells must be a positive integer"),
    (dict(viscosity=0.01, t=[0.1, 0.05]), ValueError, r"t: expected non-decreasing times"),
    (dict(viscosity=0.01, t=[0.1, -0.05]), ValueError, r"t: expected times >= 0, got -0.05"),
    (dict(viscosity=0.01, t=[]), ValueError, r"t: expected at least one time"),
])
def test_bad_arguments(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        problems.viscous_riemann_1d(SOD_L, SOD_R, **kwargs)


def test_bad_states():
    with pytest.raises(ValueError, match=r"left pressure must be > 0, got -1.0"):
        problems.viscous_riemann_1d((1.0, 0.0, -1.0), SOD_R, viscosity=0.01, t=0.1)
    with pytest.raises(ValueError, match=r"right must have exactly three entries \(rho, u, p\), "
                                         r"got 2"):
        problems.viscous_riemann_1d(SOD_L, (1.0, 0.0), viscosity=0.01, t=0.1)
    with pytest.raises(TypeError, match=r"right must be a sequence \(rho, u, p\) of three real "
                                        r"numbers, got float"):
        problems.viscous_riemann_1d(SOD_L, 0.125, viscosity=0.01, t=0.1)


def test_a_flow_that_outgrows_the_grid_is_refused():
    """The initial states pass the Péclet check on 240 cells (|u| + c = 1.18, ν = 0.003) but the
    post-shock flow (|u| + c ≈ 2.2) does not: the run stops with the cells it needs."""
    with pytest.raises(ValueError, match=r"cells: 240 cells give a cell Péclet number .* > 2 for "
                                         r"viscosity 0.003; use at least \d+ cells"):
        problems.viscous_riemann_1d(SOD_L, SOD_R, viscosity=0.003, t=0.05, cells=240)


def test_several_times_in_one_run_equal_separate_runs():
    """A sequence of times gives the snapshots of one run, each equal to a run to that time."""
    ts = [0.0, 0.02, 0.02, 0.05]
    x, w = problems.viscous_riemann_1d(SOD_L, SOD_R, viscosity=0.01, t=ts, cells=300)
    assert w.shape == (4, 300, 3)
    for k, t in enumerate(ts):
        _, wk = problems.viscous_riemann_1d(SOD_L, SOD_R, viscosity=0.01, t=t, cells=300)
        np.testing.assert_allclose(w[k], wk, rtol=1e-12, atol=1e-12)
    sod = problems.get("sod", viscosity=0.01)
    _, ws = sod.viscous_reference(t=np.array([0.02, 0.05]), cells=300)
    np.testing.assert_allclose(ws, w[2:], rtol=1e-12, atol=1e-12)
