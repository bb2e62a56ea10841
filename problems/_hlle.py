"""Shock-capturing finite volumes (HLLE) for the 1D Euler equations: the classical reference.

A PINN's error on a shock tube is best read beside what a standard shock-capturing scheme makes of
the same tube on a grid of a given size — the literature's figures for PINNs on Sod are compared
with such a scheme (e.g. an HLLE finite-volume solution on 1000 cells). :func:`hlle_riemann_1d`
solves the inviscid tube

    ∂_t U + ∂_x F(U) = 0,   U = (ρ, ρu, E),   F = (ρu, ρu² + p, u(E + p)),

by cell averages on a uniform grid of ``cells`` cells on [0, 1] with the HLLE approximate Riemann
flux (Harten, Lax & van Leer 1983, wave-speed estimates of Einfeldt 1988: S_L = min(u_L − c_L,
ũ − c̃), S_R = max(u_R + c_R, ũ + c̃) with the Roe averages ũ, c̃; Toro, *Riemann Solvers and
Numerical Methods for Fluid Dynamics*, 3rd ed., §10.3):

    F_HLLE = (S_R F_L − S_L F_R + S_L S_R (U_R − U_L)) / (S_R − S_L)   for S_L < 0 < S_R,

F_L for S_L >= 0 and F_R for S_R <= 0.

- ``order=1``: Godunov-type first-order scheme, forward Euler in time (Δt = cfl Δx / max(|u| + c),
  cfl <= 1);
- ``order=2``: MUSCL reconstruction of the primitive variables with a slope limiter (``minmod``,
  the most diffusive, or ``mc``, van Leer's monotonised central) and the two-stage SSP Runge–Kutta
  (Heun) method in time (cfl <= 0.5).

Both converge to the exact Riemann solution as the grid is refined, at the rates of shock-
capturing schemes: in L1 about Δx^(1/2) at a contact for first order, faster at the shock and for
second order. The ends are zero-gradient (outflow), exact while no wave has reached them. Pure
numpy, float64.
"""

from __future__ import annotations

import numpy as np

from ._riemann import _as_state, euler_flux, primitive_to_conserved
from ._viscous_euler import _initial_cells, _march, _primitive, _tube_arguments

__all__ = ["hlle_riemann_1d"]

_LIMITERS = ("minmod", "mc")


def _limited_slope(a: np.ndarray, b: np.ndarray, limiter: str) -> np.ndarray:
    """The limited slope (times Δx) from the one-sided differences ``a`` (left) and ``b``
    (right): 0 where they differ in sign; minmod: the smaller one; mc: min(2|a|, 2|b|,
    |a + b|/2) with their sign."""
    same = a * b > 0
    if limiter == "minmod":
        s = np.minimum(np.abs(a), np.abs(b))
    else:
        s = np.minimum(np.minimum(2.0 * np.abs(a), 2.0 * np.abs(b)), 0.5 * np.abs(a + b))
    return np.where(same, np.sign(a) * s, 0.0)


def _hlle_flux(WL: np.ndarray, WR: np.ndarray, gamma: float) -> np.ndarray:
    """The HLLE flux (3, m) between the primitive states ``WL``, ``WR`` (3, m) left and right of
    m faces."""
    rl, ul, pl = WL
    rr, ur, pr = WR
    if not (np.all(rl > 0) and np.all(rr > 0) and np.all(pl > 0) and np.all(pr > 0)):
        raise FloatingPointError("density or pressure became non-positive")
    UL = np.stack(primitive_to_conserved(rl, ul, pl, gamma=gamma))
    UR = np.stack(primitive_to_conserved(rr, ur, pr, gamma=gamma))
    FL = np.stack(euler_flux(rl, ul, pl, gamma=gamma))
    FR = np.stack(euler_flux(rr, ur, pr, gamma=gamma))
    cl, cr = np.sqrt(gamma * pl / rl), np.sqrt(gamma * pr / rr)
    sl, sr = np.sqrt(rl), np.sqrt(rr)
    hl, hr = (UL[2] + pl) / rl, (UR[2] + pr) / rr  # total enthalpies
    u_roe = (sl * ul + sr * ur) / (sl + sr)
    h_roe = (sl * hl + sr * hr) / (sl + sr)
    c_roe = np.sqrt((gamma - 1.0) * (h_roe - 0.5 * u_roe * u_roe))
    s_left = np.minimum(ul - cl, u_roe - c_roe)
    s_right = np.maximum(ur + cr, u_roe + c_roe)
    between = (s_right * FL - s_left * FR + s_left * s_right * (UR - UL)) / (s_right - s_left)
    return np.where(s_left >= 0, FL, np.where(s_right <= 0, FR, between))


def hlle_riemann_1d(left, right, *, t, x0: float = 0.5, gamma: float = 1.4, cells: int = 1000,
                    order: int = 1, limiter: str = "minmod",
                    cfl: float = 0.4) -> tuple[np.ndarray, np.ndarray]:
    """The inviscid shock tube on [0, 1] at time ``t`` by HLLE finite volumes.

    Args:
        left, right: the initial states (ρ, u, p) left and right of ``x0`` (ρ, p > 0).
        t: the final time, >= 0 — or a sequence of non-decreasing times >= 0, all computed in
            one run (the steps end exactly on each of them).
        x0: the initial discontinuity, 0 < x0 < 1.
        gamma: the ratio of specific heats > 1.
        cells: grid cells (Δx = 1 / cells).
        order: 1 (piecewise-constant states, forward Euler) or 2 (limited MUSCL reconstruction of
            ρ, u, p, two-stage SSP Runge–Kutta).
        limiter: the slope limiter of ``order=2``, ``"minmod"`` or ``"mc"``.
        cfl: the time-step fraction of Δx / max(|u| + c): 0 < cfl <= 1 for order 1,
            <= 0.5 for order 2 (Δt is recomputed at every step).

    Returns:
        ``(x, w)``: the cell centres (cells,) and the primitive variables w (cells, 3) = (ρ, u, p)
        at ``t``, float64; for a sequence of times w is (len(t), cells, 3).

    Raises:
        FloatingPointError: if density or pressure turn non-positive (too large a ``cfl``).
    """
    left, right = _as_state("left", left), _as_state("right", right)
    if isinstance(order, bool) or order not in (1, 2):
        raise ValueError(f"order: expected 1 or 2, got {order!r}")
    if limiter not in _LIMITERS:
        raise ValueError(f"limiter: expected one of {', '.join(_LIMITERS)}, got {limiter!r}")
    times, several, x0, g, n, cfl = _tube_arguments(t, x0, gamma, cells, cfl,
                                                    1.0 if order == 1 else 0.5)
    dx = 1.0 / n
    x, U = _initial_cells(left, right, x0, g, n)

    def rhs(V: np.ndarray) -> np.ndarray:
        W = np.stack(_primitive(V, g))
        if order == 1:
            We = np.concatenate([W[:, :1], W, W[:, -1:]], axis=1)  # zero-gradient ends
            F = _hlle_flux(We[:, :-1], We[:, 1:], g)
        else:
            We = np.concatenate([W[:, :1], W[:, :1], W, W[:, -1:], W[:, -1:]], axis=1)
            d = _limited_slope(We[:, 1:-1] - We[:, :-2], We[:, 2:] - We[:, 1:-1], limiter)
            Wc = We[:, 1:-1]  # the cells and one ghost on either side
            F = _hlle_flux((Wc + 0.5 * d)[:, :-1], (Wc - 0.5 * d)[:, 1:], g)
        return -(F[:, 1:] - F[:, :-1]) / dx

    def advance(V: np.ndarray, remaining: float) -> tuple[np.ndarray, float]:
        r, v, q = _primitive(V, g)
        h = min(cfl * dx / float(np.max(np.abs(v) + np.sqrt(g * q / r))), remaining)
        V1 = V + h * rhs(V)
        if order == 1:
            return V1, h
        return 0.5 * V + 0.5 * (V1 + h * rhs(V1)), h

    return x, _march(U, times, several, advance, g)
