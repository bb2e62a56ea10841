"""Finite-volume reference for the 1D Euler equations with artificial viscosity.

The shock tubes can be trained on the regularised system (``viscosity`` ν of
:func:`problems.euler_residuals_1d`)

    ∂_t U + ∂_x F(U) = ν ∂_xx U,   U = (ρ, ρu, E),   F = (ρu, ρu² + p, u(E + p)),

whose solution is smooth and differs from the inviscid (exact Riemann) one by O(ν) at shocks and
O(√(νt)) at contacts and rarefaction corners. :func:`viscous_riemann_1d` solves that system
accurately, so that a PINN's error can be split into what the regularisation costs (this solution
against the exact inviscid one) and what the training leaves (the PINN against this solution).

Discretisation: cell averages on a uniform grid of ``cells`` cells on [0, 1]; central
(second-order) convective fluxes and central viscous fluxes ν (U_{j+1} − U_j)/Δx; SSP-RK3 (Shu–
Osher) in time with Δt = ``cfl`` · min(Δx / max(|u| + c), Δx² / (2ν)) at every step. Centred differences of a
viscous problem stay free of oscillations while the cell Péclet number max(|u| + c) Δx / ν is at
most 2; the grid is required to satisfy that (a ``ValueError`` names the cells needed). The ends
are zero-gradient (outflow), which is exact while no wave has reached them. Pure numpy, float64.
"""

from __future__ import annotations

import math

import numpy as np

from ._checks import positive_int as _positive_int
from ._checks import real_scalar as _real_scalar
from ._riemann import _as_state, _check_gamma, euler_flux, primitive_to_conserved

__all__ = ["viscous_riemann_1d"]


def _primitive(U: np.ndarray, gamma: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rho = U[0]
    u = U[1] / rho
    p = (gamma - 1.0) * (U[2] - 0.5 * rho * u * u)
    return rho, u, p


def viscous_riemann_1d(left, right, *, viscosity: float, t, x0: float = 0.5,
                       gamma: float = 1.4, cells: int = 2000,
                       cfl: float = 0.4) -> tuple[np.ndarray, np.ndarray]:
    """The regularised shock tube ∂_t U + ∂_x F(U) = ν ∂_xx U on [0, 1] at time ``t``.

    Args:
        left, right: the initial states (ρ, u, p) left and right of ``x0`` (ρ, p > 0).
        viscosity: ν > 0.
        t: the final time, >= 0 — or a sequence of non-decreasing times >= 0, all computed in
            one run (the steps end exactly on each of them).
        x0: the initial discontinuity, 0 < x0 < 1.
        gamma: the ratio of specific heats > 1.
        cells: grid cells; the cell Péclet number max(|u| + c) Δx / ν must stay <= 2 (checked
            for the initial states before the run and for the flow at every step).
        cfl: the time-step fraction, 0 < cfl <= 0.5 (Δt is recomputed at every step).

    Returns:
        ``(x, w)``: the cell centres (cells,) and the primitive variables w (cells, 3) = (ρ, u, p)
        at ``t``, float64; for a sequence of times w is (len(t), cells, 3).
    """
    left, right = _as_state("left", left), _as_state("right", right)
    nu = _real_scalar("viscosity", viscosity)
    if not nu > 0:
        raise ValueError(f"viscosity: expected ν > 0, got {nu!r}")
    times, several, x0, g, n, cfl = _tube_arguments(t, x0, gamma, cells, cfl, 0.5)
    dx = 1.0 / n

    def check_peclet(a: float) -> None:
        if a * dx / nu > 2.0:
            raise ValueError(f"cells: {n} cells give a cell Péclet number {a * dx / nu:.3g} > 2 "
                             f"for viscosity {nu:g}; use at least {math.ceil(a / (2.0 * nu))} "
                             f"cells")

    check_peclet(max(abs(s[1]) + math.sqrt(g * s[2] / s[0]) for s in (left, right)))

    x, U = _initial_cells(left, right, x0, g, n)

    def rhs(V: np.ndarray) -> np.ndarray:
        Vg = np.concatenate([V[:, :1], V, V[:, -1:]], axis=1)  # zero-gradient ends
        r, v, q = _primitive(Vg, g)
        if not (np.all(r > 0) and np.all(q > 0)):
            raise FloatingPointError("density or pressure became non-positive")
        F = np.stack(euler_flux(r, v, q, gamma=g))
        flux = 0.5 * (F[:, :-1] + F[:, 1:]) - nu * (Vg[:, 1:] - Vg[:, :-1]) / dx
        return -(flux[:, 1:] - flux[:, :-1]) / dx

    def advance(U: np.ndarray, remaining: float) -> tuple[np.ndarray, float]:
        r, v, q = _primitive(U, g)
        a = float(np.max(np.abs(v) + np.sqrt(g * q / r)))
        check_peclet(a)
        h = min(cfl * min(dx / a, dx * dx / (2.0 * nu)), remaining)
        U1 = U + h * rhs(U)
        U2 = 0.75 * U + 0.25 * (U1 + h * rhs(U1))
        return U / 3.0 + 2.0 / 3.0 * (U2 + h * rhs(U2)), h

    return x, _march(U, times, several, advance, g)


def _tube_arguments(t, x0, gamma, cells, cfl, cfl_max: float):
    """The checked arguments shared by the tube solvers: ``(times, several, x0, gamma, cells,
    cfl)``, ``times`` a non-decreasing list of times >= 0 and ``several`` whether ``t`` was a
    sequence."""
    several = not isinstance(t, (int, float, np.integer, np.floating)) and np.ndim(t) == 1
    times = [_real_scalar("t", v) for v in t] if several else [_real_scalar("t", t)]
    if several and not times:
        raise ValueError("t: expected at least one time")
    if min(times) < 0:
        raise ValueError(f"t: expected {'times' if several else 'a time'} >= 0, got "
                         f"{min(times)!r}")
    if any(b < a for a, b in zip(times, times[1:])):
        raise ValueError("t: expected non-decreasing times")
    x0 = _real_scalar("x0", x0)
    if not 0.0 < x0 < 1.0:
        raise ValueError(f"x0: expected 0 < x0 < 1, got {x0!r}")
    g = _check_gamma(gamma)
    n = _positive_int("cells", cells)
    cfl = _real_scalar("cfl", cfl)
    if not 0.0 < cfl <= cfl_max:
        raise ValueError(f"cfl: expected 0 < cfl <= {cfl_max:g}, got {cfl!r}")
    return times, several, x0, g, n, cfl


def _initial_cells(left, right, x0: float, gamma: float, n: int):
    """Cell centres (n,) of a uniform grid on [0, 1] and the conserved variables (3, n) of the
    two states split at ``x0``."""
    x = (np.arange(n) + 0.5) / n
    w = np.where((x < x0)[None, :], np.array(left)[:, None], np.array(right)[:, None])
    return x, np.stack(primitive_to_conserved(*w, gamma=gamma))


def _march(U: np.ndarray, times, several: bool, advance, gamma: float) -> np.ndarray:
    """Step ``U`` by ``advance(U, remaining) -> (U, h)`` to each of ``times`` in turn (the last
    step ends exactly on it); the primitive variables (cells, 3) at the time, stacked to
    (len(times), cells, 3) when ``several``."""
    time = 0.0
    out = []
    for t_end in times:
        while time < t_end * (1.0 - 1e-14):
            U, h = advance(U, t_end - time)
            time += h
        out.append(np.stack(_primitive(U, gamma), axis=1))
    return np.stack(out) if several else out[0]
