"""Exact Riemann solver for the one-dimensional Euler equations of an ideal gas.

The equations are written in conservative form (design.md §5)

    ∂_t U + ∂_x F(U) = 0,
    U = (ρ, ρu, E),   F(U) = (ρu, ρu² + p, u(E + p)),   E = p/(γ−1) + ρu²/2,

with initial data made of two constant states separated at ``x0``:
``(ρ, u, p) = left`` for ``x < x0`` and ``right`` for ``x >= x0``.

The solution is self-similar in ``ξ = (x − x0)/t`` and consists of a left wave (shock or
rarefaction), a contact discontinuity moving with ``u*`` and a right wave (shock or rarefaction).
The star pressure ``p*`` is the root of Toro's pressure function (Toro, *Riemann Solvers and
Numerical Methods for Fluid Dynamics*, 3rd ed., ch. 4)

    f(p) = f_L(p) + f_R(p) + (u_R − u_L),

    f_K(p) = (p − p_K) sqrt(A_K / (p + B_K))                       if p > p_K  (shock),
    f_K(p) = 2 a_K/(γ−1) [ (p/p_K)^((γ−1)/(2γ)) − 1 ]              if p <= p_K (rarefaction),

    A_K = 2 / ((γ+1) ρ_K),   B_K = (γ−1)/(γ+1) p_K,   a_K = sqrt(γ p_K / ρ_K),

found here by a safeguarded Newton iteration started from Toro's adaptive initial guess
(PVRS / two-rarefaction / two-shock).  Then ``u* = (u_L + u_R)/2 + (f_R(p*) − f_L(p*))/2``.

This module is pure numpy; it is the reference solution used for the Euler (Sod, Lax) problems.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from ._checks import as_real_array as _as_real_array
from ._checks import positive_int as _positive_int
from ._checks import real_scalar as _real_scalar
from ._checks import space_time

__all__ = [
    "RiemannState",
    "ExactRiemannSolver",
    "primitive_to_conserved",
    "euler_flux",
]

_SHOCK = "shock"
_RAREFACTION = "rarefaction"


class RiemannState(NamedTuple):
    """A constant primitive state ``(rho, u, p)`` of an ideal gas (density, velocity, pressure)."""

    rho: float
    u: float
    p: float


# ---------------------------------------------------------------------------------------------
# input validation helpers (private)
# ---------------------------------------------------------------------------------------------


def _check_gamma(gamma) -> float:
    g = _real_scalar("gamma", gamma)
    if g <= 1.0:
        raise ValueError(f"gamma must be > 1 (ratio of specific heats), got {g!r}")
    return g


def _as_state(name: str, value) -> RiemannState:
    """Validate a primitive state ``(rho, u, p)``; ``name`` is "left" or "right"."""
    expected = f"{name} must be a sequence (rho, u, p) of three real numbers"
    if isinstance(value, (str, bytes)):
        raise TypeError(f"{expected}, got {type(value).__name__}")
    try:
        items = tuple(value)
    except TypeError:
        raise TypeError(f"{expected}, got {type(value).__name__}") from None
    if len(items) != 3:
        raise ValueError(f"{name} must have exactly three entries (rho, u, p), got {len(items)}")
    rho = _real_scalar(f"{name} density", items[0])
    u = _real_scalar(f"{name} velocity", items[1])
    p = _real_scalar(f"{name} pressure", items[2])
    if rho <= 0.0:
        raise ValueError(f"{name} density must be > 0, got {rho!r}")
    if p <= 0.0:
        raise ValueError(f"{name} pressure must be > 0, got {p!r}")
    return RiemannState(rho, u, p)


# ---------------------------------------------------------------------------------------------
# public helpers
# ---------------------------------------------------------------------------------------------


def primitive_to_conserved(rho, u, p, gamma: float = 1.4):
    """Conserved variables of an ideal gas from primitive ones.

    ``U = (ρ, ρu, E)`` with ``E = p/(γ−1) + ρu²/2``.

    Args:
        rho, u, p: array_like real values (density, velocity, pressure), broadcast together.
        gamma: ratio of specific heats, ``> 1``.

    Returns:
        Tuple ``(rho, m, E)`` of float64 numpy arrays with the broadcast shape of the inputs,
        ``m = rho*u`` the momentum and ``E`` the total energy per unit volume.
    """
    g = _check_gamma(gamma)
    rho = _as_real_array("rho", rho)
    u = _as_real_array("u", u)
    p = _as_real_array("p", p)
    rho, u, p = _broadcast(("rho", rho), ("u", u), ("p", p))
    return rho.copy(), rho * u, p / (g - 1.0) + 0.5 * rho * u * u


def euler_flux(rho, u, p, gamma: float = 1.4):
    """Physical flux of the 1-D Euler equations from primitive variables.

    ``F(U) = (ρu, ρu² + p, u(E + p))`` with ``E = p/(γ−1) + ρu²/2``.

    Args:
        rho, u, p: array_like real values (density, velocity, pressure), broadcast together.
        gamma: ratio of specific heats, ``> 1``.

    Returns:
        Tuple ``(F_rho, F_m, F_E)`` of float64 numpy arrays with the broadcast shape of the inputs.
    """
    g = _check_gamma(gamma)
    rho = _as_real_array("rho", rho)
    u = _as_real_array("u", u)
    p = _as_real_array("p", p)
    rho, u, p = _broadcast(("rho", rho), ("u", u), ("p", p))
    energy = p / (g - 1.0) + 0.5 * rho * u * u
    return rho * u, rho * u * u + p, u * (energy + p)


def _broadcast(*named):
    try:
        return np.broadcast_arrays(*(a for _, a in named))
    except ValueError:
        desc = ", ".join(f"{n} {a.shape}" for n, a in named)
        raise ValueError(f"arguments must broadcast to a common shape, got {desc}") from None


# ---------------------------------------------------------------------------------------------
# the solver
# ---------------------------------------------------------------------------------------------


class ExactRiemannSolver:
    """Exact solution of the Riemann problem for the 1-D Euler equations (ideal gas).

    Args:
        left: ``(rho, u, p)`` for ``x < x0``; ``rho > 0``, ``p > 0``, all finite reals.
        right: ``(rho, u, p)`` for ``x >= x0``; same requirements.
        gamma: ratio of specific heats, finite and ``> 1`` (default 1.4).
        x0: position of the initial discontinuity (default 0.5).
        tol: Newton stops when the relative pressure change ``2|p_new − p|/(p_new + p) < tol``.
        max_iter: maximal number of Newton iterations; RuntimeError if not converged.

    Raises:
        TypeError: a state is not a 3-sequence of reals, or a scalar argument has a wrong type.
        ValueError: non-positive density/pressure, non-finite numbers, ``gamma <= 1``,
            ``tol <= 0``, ``max_iter < 1``, or when the data generate a vacuum, i.e. when the
            pressure positivity condition ``2 (a_L + a_R)/(γ−1) > u_R − u_L`` fails.

    Attributes (all Python floats unless stated):
        left, right: the validated :class:`RiemannState` data.
        gamma, x0: as given.
        a_left, a_right: sound speeds ``sqrt(γ p/ρ)`` of the data states.
        p_star, u_star: pressure and velocity of the star region.
        rho_star_left, rho_star_right: densities left/right of the contact.
        a_star_left, a_star_right: sound speeds in the star region.
        left_wave, right_wave: ``"shock"`` (if ``p* > p_K``) or ``"rarefaction"``.
        left_shock_speed, right_shock_speed: shock speeds, ``None`` for a rarefaction.
        left_head_speed, left_tail_speed, right_head_speed, right_tail_speed: speeds of the
            head and tail of a rarefaction fan, ``None`` for a shock.
        contact_speed: equal to ``u_star``.
        iterations: number of Newton iterations used.
    """

    def __init__(self, left, right, gamma: float = 1.4, x0: float = 0.5,
                 tol: float = 1e-12, max_iter: int = 100) -> None:
        self.left = _as_state("left", left)
        self.right = _as_state("right", right)
        self.gamma = _check_gamma(gamma)
        self.x0 = _real_scalar("x0", x0)
        self.tol = _real_scalar("tol", tol)
        if self.tol <= 0.0:
            raise ValueError(f"tol must be > 0, got {self.tol!r}")
        self.max_iter = _positive_int("max_iter", max_iter)

        g = self.gamma
        rl, ul, pl = self.left
        rr, ur, pr = self.right
        self.a_left = math.sqrt(g * pl / rl)
        self.a_right = math.sqrt(g * pr / rr)

        du = ur - ul
        critical = 2.0 / (g - 1.0) * (self.a_left + self.a_right)
        if critical <= du:
            raise ValueError(
                "the initial data generate a vacuum: the pressure positivity condition "
                f"2(a_L + a_R)/(gamma - 1) = {critical:.6g} > u_R - u_L = {du:.6g} fails"
            )

        self.p_star, self.iterations = self._solve_star_pressure()
        fl, _ = self._pressure_function(self.p_star, self.left, self.a_left)
        fr, _ = self._pressure_function(self.p_star, self.right, self.a_right)
        self.u_star = 0.5 * (ul + ur) + 0.5 * (fr - fl)
        self.contact_speed = self.u_star
        self._star_states()

    # -- pressure function --------------------------------------------------------------------

    def _pressure_function(self, p: float, state: RiemannState, a: float):
        """Return ``(f_K(p), f_K'(p))`` for the data state ``state`` with sound speed ``a``."""
        g = self.gamma
        rho_k, _, p_k = state
        if p > p_k:  # shock branch (Rankine-Hugoniot)
            big_a = 2.0 / ((g + 1.0) * rho_k)
            big_b = (g - 1.0) / (g + 1.0) * p_k
            q = math.sqrt(big_a / (p + big_b))
            f = (p - p_k) * q
            df = q * (1.0 - 0.5 * (p - p_k) / (big_b + p))
        else:  # rarefaction branch (isentropic)
            ratio = p / p_k
            f = 2.0 * a / (g - 1.0) * (ratio ** ((g - 1.0) / (2.0 * g)) - 1.0)
            df = ratio ** (-(g + 1.0) / (2.0 * g)) / (rho_k * a)
        return f, df

    def _total_function(self, p: float):
        fl, dfl = self._pressure_function(p, self.left, self.a_left)
        fr, dfr = self._pressure_function(p, self.right, self.a_right)
        return fl + fr + (self.right.u - self.left.u), dfl + dfr

    def _initial_guess(self) -> float:
        """Toro's adaptive initial guess (section 4.3.2, Q_user = 2)."""
        g = self.gamma
        rl, ul, pl = self.left
        rr, ur, pr = self.right
        al, ar = self.a_left, self.a_right
        du = ur - ul
        p_min, p_max = min(pl, pr), max(pl, pr)
        # primitive-variable (linearised) Riemann solver
        p_pv = max(0.0, 0.5 * (pl + pr) - 0.125 * du * (rl + rr) * (al + ar))
        z = (g - 1.0) / (2.0 * g)
        # two-rarefaction approximation (exact when both waves are rarefactions); always > 0
        # because the pressure positivity condition holds.
        p_tr = ((al + ar - 0.5 * (g - 1.0) * du) / (al / pl ** z + ar / pr ** z)) ** (1.0 / z)
        if p_max / p_min <= 2.0 and p_min <= p_pv <= p_max:
            guess = p_pv
        elif p_pv < p_min:
            guess = p_tr
        else:  # two-shock approximation
            gl = math.sqrt(2.0 / ((g + 1.0) * rl) / (p_pv + (g - 1.0) / (g + 1.0) * pl))
            gr = math.sqrt(2.0 / ((g + 1.0) * rr) / (p_pv + (g - 1.0) / (g + 1.0) * pr))
            guess = (gl * pl + gr * pr - du) / (gl + gr)
        if not (math.isfinite(guess) and guess > 0.0):
            guess = p_tr
        return guess

    def _solve_star_pressure(self):
        """Newton iteration on ``f(p) = 0`` safeguarded by a bracket ``lo < p* < hi``.

        ``f`` is increasing and concave with ``f(0) < 0`` (no vacuum), so the root is unique.
        A Newton step leaving the current bracket is replaced by bisection.
        """
        p = self._initial_guess()
        lo, hi = 0.0, math.inf
        for it in range(1, self.max_iter + 1):
            f, df = self._total_function(p)
            if f == 0.0:
                return p, it
            if f < 0.0:
                lo = max(lo, p)
            else:
                hi = min(hi, p)
            p_new = p - f / df
            if not (lo < p_new < hi):
                p_new = 0.5 * (lo + hi) if math.isfinite(hi) else 2.0 * p
            change = 2.0 * abs(p_new - p) / (p_new + p)
            p = p_new
            if change < self.tol:
                return p, it
        raise RuntimeError(
            f"Newton iteration for the star pressure did not converge in max_iter={self.max_iter} "
            f"iterations (last p = {p!r})"
        )

    def _star_states(self) -> None:
        g = self.gamma
        ps, us = self.p_star, self.u_star
        rl, ul, pl = self.left
        rr, ur, pr = self.right
        al, ar = self.a_left, self.a_right
        g6 = (g - 1.0) / (g + 1.0)

        self.left_shock_speed = self.left_head_speed = self.left_tail_speed = None
        self.right_shock_speed = self.right_head_speed = self.right_tail_speed = None

        if ps > pl:
            self.left_wave = _SHOCK
            ratio = ps / pl
            self.rho_star_left = rl * (ratio + g6) / (g6 * ratio + 1.0)
            self.left_shock_speed = ul - al * math.sqrt(
                (g + 1.0) / (2.0 * g) * ratio + (g - 1.0) / (2.0 * g))
        else:
            self.left_wave = _RAREFACTION
            self.rho_star_left = rl * (ps / pl) ** (1.0 / g)
            self.left_head_speed = ul - al
        self.a_star_left = math.sqrt(g * ps / self.rho_star_left)
        if self.left_wave == _RAREFACTION:
            self.left_tail_speed = us - self.a_star_left

        if ps > pr:
            self.right_wave = _SHOCK
            ratio = ps / pr
            self.rho_star_right = rr * (ratio + g6) / (g6 * ratio + 1.0)
            self.right_shock_speed = ur + ar * math.sqrt(
                (g + 1.0) / (2.0 * g) * ratio + (g - 1.0) / (2.0 * g))
        else:
            self.right_wave = _RAREFACTION
            self.rho_star_right = rr * (ps / pr) ** (1.0 / g)
            self.right_head_speed = ur + ar
        self.a_star_right = math.sqrt(g * ps / self.rho_star_right)
        if self.right_wave == _RAREFACTION:
            self.right_tail_speed = us + self.a_star_right

    # -- public API ---------------------------------------------------------------------------

    def wave_speeds(self) -> np.ndarray:
        """Speeds of all fronts, ordered from left to right.

        Returns:
            float64 array of shape ``(k,)``, ``3 <= k <= 5``: the left shock speed, or the left
            fan's head and tail speeds; the contact speed ``u*``; the right shock speed, or the
            right fan's tail and head speeds.  The values are non-decreasing.
        """
        speeds = []
        if self.left_wave == _SHOCK:
            speeds.append(self.left_shock_speed)
        else:
            speeds.extend([self.left_head_speed, self.left_tail_speed])
        speeds.append(self.u_star)
        if self.right_wave == _SHOCK:
            speeds.append(self.right_shock_speed)
        else:
            speeds.extend([self.right_tail_speed, self.right_head_speed])
        return np.asarray(speeds, dtype=np.float64)

    def sample(self, x, t):
        """Primitive variables of the exact solution at points ``(x, t)``.

        With ``ξ = (x − x0)/t`` the solution is, from left to right: the left state; for a left
        rarefaction the fan

            u = 2/(γ+1) (a_L + (γ−1)u_L/2 + ξ),
            ρ = ρ_L [2/(γ+1) + (γ−1)/((γ+1)a_L) (u_L − ξ)]^(2/(γ−1)),   p = p_L (ρ/ρ_L)^γ;

        the left star state ``(ρ*_L, u*, p*)``; the contact at ``ξ = u*`` (points with
        ``ξ <= u*`` take the left star values); the right star state ``(ρ*_R, u*, p*)``; for a
        right rarefaction the fan

            u = 2/(γ+1) (−a_R + (γ−1)u_R/2 + ξ),
            ρ = ρ_R [2/(γ+1) − (γ−1)/((γ+1)a_R) (u_R − ξ)]^(2/(γ−1)),   p = p_R (ρ/ρ_R)^γ;

        and the right state.  Points on a shock take the upstream (data) state.

        Args:
            x: array_like of finite reals, positions.
            t: array_like of finite reals ``>= 0``, times, broadcast with ``x``.  Where
                ``t == 0`` the initial data are returned (left state for ``x < x0``, right
                state for ``x >= x0``).

        Returns:
            Tuple ``(rho, u, p)`` of float64 numpy arrays with the broadcast shape of ``x`` and
            ``t`` (0-d arrays for scalar input).

        Raises:
            TypeError: non-numeric ``x`` or ``t``.
            ValueError: non-finite values, ``t < 0`` or shapes that do not broadcast.
        """
        x, t = space_time(x, t)
        shape = x.shape
        rho = np.empty(shape, dtype=np.float64)
        u = np.empty(shape, dtype=np.float64)
        p = np.empty(shape, dtype=np.float64)

        def put(mask, state):
            rho[mask], u[mask], p[mask] = state

        g = self.gamma
        rl, ul, pl = self.left
        rr, ur, pr = self.right
        al, ar = self.a_left, self.a_right
        star_l = (self.rho_star_left, self.u_star, self.p_star)
        star_r = (self.rho_star_right, self.u_star, self.p_star)

        at_zero = t == 0.0
        put(at_zero & (x < self.x0), self.left)
        put(at_zero & (x >= self.x0), self.right)

        pos = ~at_zero
        xi = np.zeros(shape, dtype=np.float64)
        xi[pos] = (x[pos] - self.x0) / t[pos]

        left_side = pos & (xi <= self.u_star)
        right_side = pos & (xi > self.u_star)

        # ---- left of the contact ----
        if self.left_wave == _SHOCK:
            upstream = left_side & (xi <= self.left_shock_speed)
            put(upstream, self.left)
            put(left_side & ~upstream, star_l)
        else:
            upstream = left_side & (xi <= self.left_head_speed)
            fan = left_side & ~upstream & (xi < self.left_tail_speed)
            put(upstream, self.left)
            put(left_side & ~upstream & ~fan, star_l)
            s = xi[fan]
            c = 2.0 / (g + 1.0) + (g - 1.0) / ((g + 1.0) * al) * (ul - s)
            rho[fan] = rl * c ** (2.0 / (g - 1.0))
            u[fan] = 2.0 / (g + 1.0) * (al + 0.5 * (g - 1.0) * ul + s)
            p[fan] = pl * c ** (2.0 * g / (g - 1.0))

        # ---- right of the contact ----
        if self.right_wave == _SHOCK:
            upstream = right_side & (xi >= self.right_shock_speed)
            put(upstream, self.right)
            put(right_side & ~upstream, star_r)
        else:
            upstream = right_side & (xi >= self.right_head_speed)
            fan = right_side & ~upstream & (xi > self.right_tail_speed)
            put(upstream, self.right)
            put(right_side & ~upstream & ~fan, star_r)
            s = xi[fan]
            c = 2.0 / (g + 1.0) - (g - 1.0) / ((g + 1.0) * ar) * (ur - s)
            rho[fan] = rr * c ** (2.0 / (g - 1.0))
            u[fan] = 2.0 / (g + 1.0) * (-ar + 0.5 * (g - 1.0) * ur + s)
            p[fan] = pr * c ** (2.0 * g / (g - 1.0))

        return rho, u, p

    def sample_conserved(self, x, t):
        """Conserved variables ``(ρ, ρu, E)`` of the exact solution, ``E = p/(γ−1) + ρu²/2``.

        Args and errors as in :meth:`sample`.

        Returns:
            Tuple ``(rho, m, E)`` of float64 numpy arrays with the broadcast shape of ``x``, ``t``.
        """
        rho, u, p = self.sample(x, t)
        return rho, rho * u, p / (self.gamma - 1.0) + 0.5 * rho * u * u

    def __repr__(self) -> str:
        return (f"ExactRiemannSolver(left={tuple(self.left)}, right={tuple(self.right)}, "
                f"gamma={self.gamma}, x0={self.x0}; p*={self.p_star:.6g}, u*={self.u_star:.6g}, "
                f"{self.left_wave}-contact-{self.right_wave})")
