"""Compressible Euler equations of an ideal gas (design.md §5; Mao, Jagtap, Karniadakis 2020).

The networks predict primitive variables; the residuals are the conservation laws
∂_t U + ∇·F(U) = 0 expanded with the chain and product rules into values and first partials of
the primitive outputs, so each residual is one :func:`pinnk.ops.residual`.

* :func:`euler_residuals_1d`, :func:`euler_residuals_2d`: the residual operators.
* ``euler-smooth``: an advected density wave, exact.
* ``sod``, ``lax``, ``riemann``: shock tubes, exact by the Riemann solver of
  :mod:`problems._riemann`.
* ``isentropic-vortex``: Shu's isentropic vortex advected by a uniform flow, exact.
"""

from __future__ import annotations

import math

import torch

import pinnk
from pinnk import ops

from ._base import (ZooProblem, check_bool, check_positive_int, check_real, check_state, to_tensor,
                    uniform, with_column)

#: the conserved variables of the 1D Euler equations, in the order of :func:`conserved_1d`
CONSERVED = ("mass", "momentum", "energy")

__all__ = ["euler_residuals_1d", "conserved_1d", "flux_1d", "ConservedIntegral", "euler_residuals_2d", "EulerSmooth", "RiemannProblem", "Sod",
           "Lax", "IsentropicVortex"]


def _check_gamma(gamma: float) -> float:
    g = check_real(gamma, "gamma")
    if g <= 1.0:
        raise ValueError(f"gamma: expected a ratio of specific heats > 1, got {g!r}")
    return g


def _check_damping(value) -> float:
    k = check_real(value, "shock_damping")
    if k < 0:
        raise ValueError(f"shock_damping: expected a weight κ >= 0, got {k!r}")
    return k


def _check_compression_viscosity(value) -> float:
    c = check_real(value, "compression_viscosity")
    if c < 0:
        raise ValueError(f"compression_viscosity: expected c >= 0, got {c!r}")
    return c


def _check_viscosity(value) -> float:
    nu = check_real(value, "viscosity")
    if nu < 0:
        raise ValueError(f"viscosity: expected ν >= 0, got {nu!r}")
    return nu


# --------------------------------------------------------------------------------- residuals
def euler_residuals_1d(gamma: float = 1.4, shock_damping: float = 0.0,
                       viscosity: float = 0.0, compression_viscosity: float = 0.0) -> dict:
    """The three conservative residuals of the 1D Euler equations in primitive variables.

    Inputs (x, t) (coordinates 0, 1), outputs (ρ, u, p) (components 0, 1, 2). With
    U = (ρ, ρu, E), F = (ρu, ρu² + p, u(E + p)), E = p/(γ−1) + ρu²/2, the residual
    ∂_t U + ∂_x F(U) expands to

        mass:      ρ_t + ρ_x u + ρ u_x
        momentum:  ρ_t u + ρ u_t + ρ_x u² + 2ρ u u_x + p_x
        energy:    E_t + u_x (E + p) + u (E_x + p_x),
                   E_t = p_t/(γ−1) + ρ_t u²/2 + ρ u u_t,   E_x = p_x/(γ−1) + ρ_x u²/2 + ρ u u_x.

    With ``shock_damping`` κ > 0 every residual is multiplied by the per-point weight

        w(x, t) = 1 / (κ (|u_x| − u_x) + 1),

    which is 1 where the flow expands (u_x ≥ 0) and ≈ 1/(2κ|u_x|) inside a compression (a
    shock), so the few points in a shock no longer dominate the loss and the network fits the
    smooth regions around it (the "weighted equations" of Liu, Li et al. 2024, PINNs-WE). The
    weight is part of the residual (it is differentiated like the rest), so the kernel and the
    trace weights see the weighted residual.

    With ``viscosity`` ν > 0 the residuals are those of the regularised system
    ∂_t U + ∂_x F(U) = ν ∂_xx U (artificial viscosity on every conserved variable, in conservation
    form): the terms

        mass:      − ν ρ_xx
        momentum:  − ν (ρ_xx u + 2 ρ_x u_x + ρ u_xx)
        energy:    − ν (p_xx/(γ−1) + ρ_xx u²/2 + 2 ρ_x u u_x + ρ u_x² + ρ u u_xx)

    are added. Its solutions are smooth; as ν → 0 they converge to the entropy solution of the
    Euler equations, and because the viscous term is a flux difference (ν ∂_x(∂_x U)) a viscous
    shock travels at the Rankine–Hugoniot speed of the inviscid one. The shock is then a smooth
    profile of width O(ν/Δu) that the residual can fit, instead of a jump that the pointwise
    inviscid residual does not place (its smeared fits need not conserve anything); the contact
    spreads like √(νt). The price: second partials in x, and an O(ν) and O(√(νt)) smoothing of
    the solution that is measured against the inviscid exact solution.

    With ``compression_viscosity`` c > 0 the viscosity becomes a field that acts in
    compressions only (von Neumann–Richtmyer / Lapidus type),

        ν(x, t) = ν + c · max(0, −u_x),   residual ∂_t U + ∂_x F(U) − ∂_x(ν(x, t) ∂_x U),

    expanded as − ν(x, t) ∂_xx U − ∂_x ν ∂_x U with ∂_x ν = −c u_xx where u_x < 0 (else 0) and
    ∂_x U = (ρ_x, ρ_x u + ρ u_x, p_x/(γ−1) + ρ_x u²/2 + ρ u u_x). Still a flux difference, so
    the shock keeps its Rankine–Hugoniot speed; a shock of strength Δu is spread over a width of
    about π √(2c), whatever its strength, while the contact (u_x = 0) and the rarefactions
    (u_x > 0) see only the background ν — which is what spreads the contact like √(νt) and
    dominates the error of the uniform regularisation. c has the units of a length squared.

    Returns:
        A dict ``{"mass": op, "momentum": op, "energy": op}`` of :class:`pinnk.ops.Residual`,
        each mapping (model, x (n, 2)) to (n,).
    """
    g = _check_gamma(gamma)
    k = 1.0 / (g - 1.0)
    damping = _check_damping(shock_damping)
    nu = _check_viscosity(viscosity)
    nu_c = _check_compression_viscosity(compression_viscosity)
    rho, u, p = ops.value(0), ops.value(1), ops.value(2)

    def dx(c):
        return ops.partial([1, 0], c)

    def dt(c):
        return ops.partial([0, 1], c)

    def mass(x, rho, u, rho_x, u_x, rho_t):
        return rho_t + rho_x * u + rho * u_x

    def momentum(x, rho, u, rho_x, u_x, p_x, rho_t, u_t):
        return rho_t * u + rho * u_t + rho_x * u * u + 2.0 * rho * u * u_x + p_x

    def energy(x, rho, u, p, rho_x, u_x, p_x, rho_t, u_t, p_t):
        e = k * p + 0.5 * rho * u * u
        e_t = k * p_t + 0.5 * rho_t * u * u + rho * u * u_t
        e_x = k * p_x + 0.5 * rho_x * u * u + rho * u * u_x
        return e_t + u_x * (e + p) + u * (e_x + p_x)

    inputs = {
        "mass": dict(rho=rho, u=u, rho_x=dx(0), u_x=dx(1), rho_t=dt(0)),
        "momentum": dict(rho=rho, u=u, rho_x=dx(0), u_x=dx(1), p_x=dx(2), rho_t=dt(0),
                         u_t=dt(1)),
        "energy": dict(rho=rho, u=u, p=p, rho_x=dx(0), u_x=dx(1), p_x=dx(2), rho_t=dt(0),
                       u_t=dt(1), p_t=dt(2)),
    }
    fns = {"mass": mass, "momentum": momentum, "energy": energy}
    if nu > 0.0 or nu_c > 0.0:
        second = {"rho_xx": ops.partial([2, 0], 0), "u_xx": ops.partial([2, 0], 1),
                  "p_xx": ops.partial([2, 0], 2)}
        # the viscosity field's ∂_x ν needs u_xx in every residual
        needed = {"mass": ("rho_xx", "u_xx") if nu_c > 0.0 else ("rho_xx",),
                  "momentum": ("rho_xx", "u_xx"), "energy": ("rho_xx", "u_xx", "p_xx")}
        for name in fns:
            inputs[name].update({key: second[key] for key in needed[name]})
            fns[name] = _viscous(name, fns[name], nu, k, nu_c)
    if damping > 0.0:
        fns = {name: _damped(fn, damping) for name, fn in fns.items()}
    return {name: ops.residual(fns[name], label=f"euler {name}", **inputs[name])
            for name in ("mass", "momentum", "energy")}


def _viscous(name: str, fn, nu: float, k: float, c: float = 0.0):
    """``fn`` minus ∂_x(ν ∂_x U) of its conserved variable U (see :func:`euler_residuals_1d`):
    ν ∂_xx U for c = 0, else with the field ν + c max(0, −u_x); k = 1/(γ − 1). Every inviscid
    residual already takes ρ, u, ρ_x and u_x (the energy residual p_x too)."""
    def term(x, rho_xx, u_xx=None, p_xx=None, **values):
        r = fn(x, **values)
        rho, u, rho_x, u_x = values["rho"], values["u"], values["rho_x"], values["u_x"]
        if name == "mass":
            U_xx = rho_xx
        elif name == "momentum":
            U_xx = rho_xx * u + 2.0 * rho_x * u_x + rho * u_xx
        else:
            U_xx = (k * p_xx + 0.5 * rho_xx * u * u + 2.0 * rho_x * u * u_x
                    + rho * u_x * u_x + rho * u * u_xx)
        if c == 0.0:
            return r - nu * U_xx
        compressed = u_x < 0
        field = nu + c * torch.where(compressed, -u_x, torch.zeros_like(u_x))
        field_x = -c * torch.where(compressed, u_xx, torch.zeros_like(u_xx))
        if name == "mass":
            U_x = rho_x
        elif name == "momentum":
            U_x = rho_x * u + rho * u_x
        else:
            U_x = k * values["p_x"] + 0.5 * rho_x * u * u + rho * u * u_x
        return r - field * U_xx - field_x * U_x
    return term


def _damped(fn, damping: float):
    """``fn`` times the shock weight 1/(κ(|u_x| − u_x) + 1) of :func:`euler_residuals_1d`."""
    def damped(x, **values):
        u_x = values["u_x"]
        return fn(x, **values) / (damping * (u_x.abs() - u_x) + 1.0)
    return damped


def euler_residuals_2d(gamma: float = 1.4) -> dict:
    """The four conservative residuals of the 2D Euler equations in primitive variables.

    Inputs (x, y, t) (coordinates 0, 1, 2), outputs (ρ, u, v, p) (components 0..3). With
    U = (ρ, ρu, ρv, E), F = (ρu, ρu² + p, ρuv, u(E + p)), G = (ρv, ρuv, ρv² + p, v(E + p)),
    E = p/(γ−1) + ρ(u² + v²)/2, the residual ∂_t U + ∂_x F + ∂_y G expands to

        mass:        ρ_t + ρ_x u + ρ u_x + ρ_y v + ρ v_y
        momentum_x:  ρ_t u + ρ u_t + ρ_x u² + 2ρ u u_x + p_x + ρ_y u v + ρ u_y v + ρ u v_y
        momentum_y:  ρ_t v + ρ v_t + ρ_x u v + ρ u_x v + ρ u v_x + ρ_y v² + 2ρ v v_y + p_y
        energy:      E_t + u_x (E + p) + u (E_x + p_x) + v_y (E + p) + v (E_y + p_y),
                     E_s = p_s/(γ−1) + ρ_s (u² + v²)/2 + ρ (u u_s + v v_s)  for s = t, x, y.

    Returns:
        A dict ``{"mass", "momentum_x", "momentum_y", "energy"}`` of operators, each mapping
        (model, x (n, 3)) to (n,).
    """
    g = _check_gamma(gamma)
    k = 1.0 / (g - 1.0)
    names = ("rho", "u", "v", "p")
    coords = {"x": [1, 0, 0], "y": [0, 1, 0], "t": [0, 0, 1]}
    available = {}
    for c, nm in enumerate(names):
        available[nm] = ops.value(c)
        for s, alpha in coords.items():
            available[f"{nm}_{s}"] = ops.partial(alpha, c)

    def make(fn, needed, label):
        return ops.residual(fn, {nm: available[nm] for nm in needed}, label=label)

    def mass(x, rho, u, v, rho_t, rho_x, u_x, rho_y, v_y):
        return rho_t + rho_x * u + rho * u_x + rho_y * v + rho * v_y

    def momentum_x(x, rho, u, v, rho_t, u_t, rho_x, u_x, p_x, rho_y, u_y, v_y):
        return (rho_t * u + rho * u_t + rho_x * u * u + 2.0 * rho * u * u_x + p_x
                + rho_y * u * v + rho * u_y * v + rho * u * v_y)

    def momentum_y(x, rho, u, v, rho_t, v_t, rho_x, u_x, v_x, rho_y, v_y, p_y):
        return (rho_t * v + rho * v_t + rho_x * u * v + rho * u_x * v + rho * u * v_x
                + rho_y * v * v + 2.0 * rho * v * v_y + p_y)

    def energy(x, rho, u, v, p, rho_t, u_t, v_t, p_t, rho_x, u_x, v_x, p_x, rho_y, u_y, v_y,
               p_y):
        q = 0.5 * (u * u + v * v)
        e = k * p + rho * q
        e_t = k * p_t + rho_t * q + rho * (u * u_t + v * v_t)
        e_x = k * p_x + rho_x * q + rho * (u * u_x + v * v_x)
        e_y = k * p_y + rho_y * q + rho * (u * u_y + v * v_y)
        return e_t + u_x * (e + p) + u * (e_x + p_x) + v_y * (e + p) + v * (e_y + p_y)

    def args(fn):
        return fn.__code__.co_varnames[1:fn.__code__.co_argcount]

    return {
        "mass": make(mass, args(mass), "euler2d mass"),
        "momentum_x": make(momentum_x, args(momentum_x), "euler2d momentum_x"),
        "momentum_y": make(momentum_y, args(momentum_y), "euler2d momentum_y"),
        "energy": make(energy, args(energy), "euler2d energy"),
    }


def _value_terms(prefix: str, points: torch.Tensor, counts: dict, targets, outputs) -> list:
    """One value term ``f"{prefix}_{name}"`` per output, on the first counts[...] shared points.

    ``targets`` is a tensor (n, out) at ``points`` or a callable x -> (n, out).
    """
    out = []
    for c, nm in enumerate(outputs):
        name = f"{prefix}_{nm}"
        x = points[: counts[name]]
        y = targets(x) if callable(targets) else targets[: counts[name]]
        out.append(pinnk.Term(name, ops.value(c), x, y[:, c]))
    return out


def _names(prefixes, outputs) -> list[str]:
    return [f"{p}_{o}" for p in prefixes for o in outputs]


# ---------------------------------------------------------------------- integral conservation
def conserved_1d(y: torch.Tensor, gamma: float) -> torch.Tensor:
    """Conserved variables U = (ρ, ρu, E), E = p/(γ−1) + ρu²/2, from primitive (ρ, u, p).

    ``y`` (..., 3) -> (..., 3), same dtype and device."""
    rho, u, p = y.unbind(dim=-1)
    return torch.stack([rho, rho * u, p / (gamma - 1.0) + 0.5 * rho * u * u], dim=-1)


def flux_1d(y: torch.Tensor, gamma: float) -> torch.Tensor:
    """Euler fluxes F = (ρu, ρu² + p, u(E + p)) from primitive (ρ, u, p): (..., 3) -> (..., 3)."""
    rho, u, p = y.unbind(dim=-1)
    e = p / (gamma - 1.0) + 0.5 * rho * u * u
    return torch.stack([rho * u, rho * u * u + p, u * (e + p)], dim=-1)


def _conserved_operator(component: int, gamma: float) -> pinnk.ops.Operator:
    """U_k of the outputs' values (component k of :func:`conserved_1d`) as a pinnk operator."""
    def u_k(x, rho, u, p):
        return conserved_1d(torch.stack([rho, u, p], dim=-1), gamma)[:, component]

    return pinnk.ops.residual(u_k, rho=pinnk.ops.value(0), u=pinnk.ops.value(1),
                              p=pinnk.ops.value(2), label=f"U_{CONSERVED[component]}")


class ConservedIntegral(pinnk.ops.Operator):
    """The integral of one conserved variable over [a, b] (the tube, or a window of it) at
    time t: a nonlocal label.

    For a row (x, t) of the points (x is ignored) it returns

        Q_k f(t) = (b − a) · (1/m) Σ_q U_k(f(ξ_q, t)),

    the stratified Monte-Carlo estimate of ∫_a^b U_k(x, t) dx on fixed nodes ξ_q (one uniform
    draw in each of m equal cells of [a, b], drawn when the term is built, so the estimate is
    unbiased over resampling). U = (ρ, ρu, E) from the primitive outputs (ρ, u, p).

    Matched to ∫ U_k(x, 0) dx + ∫_0^t (F_k(U(a, s)) − F_k(U(b, s))) ds (from the initial and
    boundary data) it states the integral conservation law, which fixes the shock speed
    (Rankine–Hugoniot) that the local residuals leave free when they are damped inside shocks.
    """

    linear = False

    def __init__(self, component: int, nodes: torch.Tensor, length: float, gamma: float):
        self.component = int(component)
        self.nodes = nodes
        self.length = float(length)
        self.gamma = float(gamma)
        self._local = _conserved_operator(self.component, self.gamma)

    @property
    def order(self) -> int:
        return 0

    def parts(self, x: torch.Tensor) -> list:
        """Q_k f(x) = Σ_q ((b − a)/m) U_k(f(ξ_q, t)): one part per node, U_k a residual of the
        outputs' values — the structured kernel path takes it (all nodes in one pass)."""
        c = self.length / self.nodes.shape[0]
        xi = self.nodes.to(device=x.device, dtype=x.dtype)
        return [(c, self._local, torch.stack([xi[q].expand(x.shape[0]), x[:, 1]], dim=1))
                for q in range(xi.shape[0])]

    def inner_operators(self) -> list:
        return [self._local] * self.nodes.shape[0]

    def apply(self, f, x: torch.Tensor) -> torch.Tensor:
        n, m = x.shape[0], self.nodes.shape[0]
        xi = self.nodes.to(device=x.device, dtype=x.dtype)
        t = x[:, 1:2].expand(n, m)
        pts = torch.stack([xi.expand(n, m), t], dim=-1).reshape(n * m, 2)
        u = conserved_1d(f(pts), self.gamma)[:, self.component].reshape(n, m)
        return self.length * u.mean(dim=1)

    def __repr__(self) -> str:
        return f"ConservedIntegral({('mass', 'momentum', 'energy')[self.component]})"


# -------------------------------------------------------------------------------- euler-smooth
class EulerSmooth(ZooProblem):
    """1D Euler with a smooth exact solution: a density wave advected by a uniform flow.

    Inputs (x, t) ∈ [0, 2] × [0, 2], outputs (ρ, u, p), γ = 1.4 by default:

        ρ = 1 + A sin(π(x − t)),   u = 1,   p = 1

    (exact: with u and p constant all three conservation laws reduce to ρ_t + ρ_x = 0).

    Terms: "mass", "momentum", "energy" (:func:`euler_residuals_1d`, target 0) at uniform interior
    points; "initial_rho", "initial_u", "initial_p" (values at t = 0); "boundary_rho",
    "boundary_u", "boundary_p" (Dirichlet values of the exact solution at x = 0 and x = 2,
    alternating).

    Parameters:
        amplitude: A with 0 < A < 1 so that ρ > 0 (default 0.2).
        gamma: the ratio of specific heats > 1 (default 1.4).

    Defaults keep ρ and p positive (``positive_outputs=(0, 2)``).
    """

    name = "euler-smooth"
    description = "1D Euler, advected density wave ρ = 1 + 0.2 sin(π(x − t)), u = p = 1 (exact)"
    input_names = ("x", "t")
    output_names = ("rho", "u", "p")
    time_index = 1
    exact = True

    def __init__(self, *, amplitude: float = 0.2, gamma: float = 1.4):
        self.amplitude = check_real(amplitude, "amplitude", positive=True)
        if self.amplitude >= 1.0:
            raise ValueError(f"amplitude: expected 0 < amplitude < 1 (positive density), got "
                             f"{self.amplitude!r}")
        self.gamma = _check_gamma(gamma)
        self._set_params(amplitude=self.amplitude, gamma=self.gamma)
        self.domain = pinnk.Box((0.0, 0.0), (2.0, 2.0))
        points = {"mass": 2000, "momentum": 2000, "energy": 2000}
        points.update({k: 256 for k in _names(("initial", "boundary"), self.output_names)})
        self.defaults = pinnk.Defaults(width=50, depth=4, activation="tanh", steps=10000, lr=1e-3,
                                       points=points, positive_outputs=(0, 2))

    def _names(self) -> list[str]:
        return ["mass", "momentum", "energy"] + _names(("initial", "boundary"), self.output_names)

    def _exact(self, x: torch.Tensor) -> torch.Tensor:
        rho = 1.0 + self.amplitude * torch.sin(math.pi * (x[:, 0] - x[:, 1]))
        one = torch.ones_like(rho)
        return torch.stack([rho, one, one], dim=-1)

    def terms(self, n=None, generator=None, dtype=None) -> list[pinnk.Term]:
        dtype = self._dtype(dtype)
        c = self.counts(n, self._names())
        lo, hi = self.domain.lower, self.domain.upper
        m_res = max(c[k] for k in ("mass", "momentum", "energy"))
        m_ini = max(c[f"initial_{o}"] for o in self.output_names)
        m_bnd = max(c[f"boundary_{o}"] for o in self.output_names)
        x_res = uniform(m_res, lo, hi, generator, dtype)
        x_ini = with_column(uniform(m_ini, lo, hi, generator, dtype), 1, 0.0)
        x_bnd = uniform(m_bnd, lo, hi, generator, dtype)
        x_bnd = with_column(x_bnd, 0, 2.0 * (torch.arange(m_bnd) % 2).to(dtype))
        out = [pinnk.Term(k, op, x_res[: c[k]])
               for k, op in euler_residuals_1d(self.gamma).items()]
        out += _value_terms("initial", x_ini, c, self._exact, self.output_names)
        out += _value_terms("boundary", x_bnd, c, self._exact, self.output_names)
        return out

    def solution(self, x: torch.Tensor) -> torch.Tensor:
        """(ρ, u, p) = (1 + A sin(π(x − t)), 1, 1), shape (n, 3)."""
        x = self.check_points(x)
        return self._exact(x)


# -------------------------------------------------------------------------------- shock tubes
class RiemannProblem(ZooProblem):
    """A 1D Euler Riemann problem (shock tube) on x ∈ [0, 1], t ∈ [0, t_end].

    Inputs (x, t), outputs (ρ, u, p). Initial data (ρ, u, p) = ``left`` for x < x0 and ``right``
    for x >= x0. The solution is the exact one of :class:`problems._riemann.ExactRiemannSolver`
    (Toro ch. 4: every wave pattern; data that create a vacuum are rejected), so ``exact=True``;
    it is discontinuous and computed in numpy (not differentiable).

    Terms:
        "mass", "momentum", "energy":  the residuals of :func:`euler_residuals_1d` (target 0) at
            interior points t = t_end·s^q, s uniform (q = ``time_exponent``; q > 1 clusters points
            near t = 0, where the discontinuity is sharpest);
        "initial_rho", "initial_u", "initial_p":  the initial states at t = 0 (more points by
            default, as recommended by Mao et al. 2020);
        "boundary_rho", "boundary_u", "boundary_p":  the exact solution at x = 0 and x = 1
            (alternating); before the waves reach the ends it equals the initial states.

    Parameters:
        left: the left state (ρ, u, p) with ρ > 0, p > 0 (default: Sod's).
        right: the right state (ρ, u, p) with ρ > 0, p > 0 (default: Sod's).
        x0: the position of the initial discontinuity, 0 < x0 < 1 (default 0.5).
        t_end: the final time > 0 (default 0.2).
        gamma: the ratio of specific heats > 1 (default 1.4).
        time_exponent: q > 0 of the residual points' time distribution (default 1: uniform).
        shock_damping: κ >= 0 of the per-point residual weight 1/(κ(|u_x| − u_x) + 1) that damps
            the residuals inside shocks (default 0: unweighted; see :func:`euler_residuals_1d`).
        conservation: add the terms "conservation_mass", "conservation_momentum" and
            "conservation_energy" (default False): at sampled times t the integral of each
            conserved variable over the tube (:class:`ConservedIntegral`, ``conservation_nodes``
            stratified nodes in x) matched to its initial integral plus the boundary fluxes —
            the integral form of the conservation laws, which fixes the shock speed.
        conservation_nodes: the quadrature nodes m in x of those terms (default 128).
        viscosity: ν >= 0 of the artificial viscosity ν ∂_xx U added to the conservation laws
            (default 0: the inviscid residuals; see :func:`euler_residuals_1d`). The exact
            solution stays the inviscid one, so ν > 0 is a regularisation whose O(ν) smoothing
            shows in the measured error.
        compression_viscosity: c >= 0 of the viscosity c max(0, −u_x) that acts in compressions
            only (shocks), added to ν (default 0; see :func:`euler_residuals_1d`).
        similarity_fraction: the fraction f in [0, 1] of the residual points drawn uniform in
            the similarity variables (ξ, t), ξ = (x − x0)/t ∈ [−x0/t_end, (1 − x0)/t_end] (the
            cone from the initial jump that covers the tube at t_end), the rest as above
            (default 0). The solution of a Riemann problem is a function of ξ alone, its
            fronts all start at (x0, 0); these points resolve every time level alike in ξ, with
            a density ∝ 1/t in (x, t) that puts many of them near the origin of the waves,
            where uniform points (and the candidates of an adaptive sampler) are rare. The same
            fraction of the initial points takes the x of such points (x0 + ξ τ, τ uniform in
            [0, t_end]: a density ∝ log(1/|x − x0|) that pins the initial jump at x0).
        initial_gap: h >= 0, less than a quarter of min(x0, 1 − x0): the initial points are drawn
            from their distribution (uniform, or the mixture above) conditioned on
            |x − x0| >= h (default 0: no gap). A network is continuous and resolves the jump
            over some width; an initial point closer to x0 than that has an error of up to half
            the jump that no step can remove, and a Gauss–Newton window whose loss it dominates
            stalls with the damping at its maximum. The rows are redrawn until outside, so the
            counts stay and h = 0 is the plain draw, bit for bit.
        initial_window: δ >= 0, at most half of min(x0, 1 − x0): add the terms "window_mass",
            "window_momentum" and "window_energy" (default 0: none) — the integral of each
            conserved variable over [x0 − δ, x0 + δ] (:class:`ConservedIntegral` on
            ``conservation_nodes`` stratified nodes there) at times t uniform in [0, τ]
            (:meth:`window_horizon`, the first row at t = 0), matched to
            δ (U_L + U_R) + t (F(U_L) − F(U_R)) (:meth:`window_targets`: before any wave leaves
            the window only its ends' fluxes change it). The initial points fix the states on
            either side; these terms fix where the jump between them lies: a network whose
            jump sits at x0 + s has the window's mass off by s (ρ_L − ρ_R), and every wave that
            starts there is off by s as well. With an ``initial_gap`` nothing else holds the
            jump inside the gap.

    Defaults keep ρ and p positive (``positive_outputs=(0, 2)``).
    """

    name = "riemann"
    description = "1D Euler Riemann problem with user-given left/right states (exact solver)"
    input_names = ("x", "t")
    output_names = ("rho", "u", "p")
    time_index = 1
    exact = True

    def __init__(self, *, left=(1.0, 0.0, 1.0), right=(0.125, 0.0, 0.1), x0: float = 0.5,
                 t_end: float = 0.2, gamma: float = 1.4, time_exponent: float = 1.0,
                 shock_damping: float = 0.0, conservation: bool = False,
                 conservation_nodes: int = 128, viscosity: float = 0.0,
                 compression_viscosity: float = 0.0, similarity_fraction: float = 0.0,
                 initial_gap: float = 0.0, initial_window: float = 0.0):
        self._setup(left, right, x0, t_end, gamma, time_exponent, shock_damping, conservation,
                    conservation_nodes, viscosity, compression_viscosity, similarity_fraction,
                    initial_gap, initial_window)
        self._set_params(left=self.left, right=self.right, x0=self.x0, t_end=self.t_end,
                         gamma=self.gamma, time_exponent=self.time_exponent,
                         **self._wave_params())

    def _wave_params(self) -> dict:
        return {"shock_damping": self.shock_damping, "conservation": self.conservation,
                "conservation_nodes": self.conservation_nodes, "viscosity": self.viscosity,
                "compression_viscosity": self.compression_viscosity,
                "similarity_fraction": self.similarity_fraction, "initial_gap": self.initial_gap,
                "initial_window": self.initial_window}

    def _preset(self, t_end, time_exponent, shock_damping, conservation, conservation_nodes,
                viscosity, compression_viscosity, similarity_fraction, initial_gap,
                initial_window):
        """Set up a named tube (class attributes LEFT, RIGHT; x0 = 0.5, γ = 1.4)."""
        self._setup(self.LEFT, self.RIGHT, 0.5, t_end, 1.4, time_exponent, shock_damping,
                    conservation, conservation_nodes, viscosity, compression_viscosity,
                    similarity_fraction, initial_gap, initial_window)
        self._set_params(t_end=self.t_end, time_exponent=self.time_exponent,
                         **self._wave_params())

    def _setup(self, left, right, x0, t_end, gamma, time_exponent, shock_damping, conservation,
               conservation_nodes, viscosity, compression_viscosity,
               similarity_fraction=0.0, initial_gap=0.0, initial_window=0.0) -> None:
        from ._riemann import ExactRiemannSolver
        self.left = check_state(left, "left")
        self.right = check_state(right, "right")
        self.x0 = check_real(x0, "x0")
        if not 0.0 < self.x0 < 1.0:
            raise ValueError(f"x0: expected the discontinuity inside (0, 1), got {self.x0!r}")
        self.t_end = check_real(t_end, "t_end", positive=True)
        self.gamma = _check_gamma(gamma)
        self.time_exponent = check_real(time_exponent, "time_exponent", positive=True)
        self.shock_damping = _check_damping(shock_damping)
        self.viscosity = _check_viscosity(viscosity)
        self.compression_viscosity = _check_compression_viscosity(compression_viscosity)
        self.similarity_fraction = check_real(similarity_fraction, "similarity_fraction")
        if not 0.0 <= self.similarity_fraction <= 1.0:
            raise ValueError(f"similarity_fraction: expected a fraction in [0, 1], got "
                             f"{similarity_fraction!r}")
        self.initial_gap = check_real(initial_gap, "initial_gap")
        if not 0.0 <= self.initial_gap < 0.25 * min(self.x0, 1.0 - self.x0):
            raise ValueError(f"initial_gap: expected h >= 0 and less than a quarter of "
                             f"min(x0, 1 - x0) = {min(self.x0, 1.0 - self.x0):g}, got "
                             f"{initial_gap!r}")
        self.initial_window = check_real(initial_window, "initial_window")
        if not 0.0 <= self.initial_window <= 0.5 * min(self.x0, 1.0 - self.x0):
            raise ValueError(f"initial_window: expected a half-width delta >= 0 and at most half "
                             f"of min(x0, 1 - x0) = {min(self.x0, 1.0 - self.x0):g}, got "
                             f"{initial_window!r}")
        self.conservation = check_bool(conservation, "conservation")
        self.conservation_nodes = check_positive_int(conservation_nodes, "conservation_nodes",
                                                     maximum=100_000)
        self.solver = ExactRiemannSolver(self.left, self.right, gamma=self.gamma, x0=self.x0)
        self.domain = pinnk.Box((0.0, 0.0), (1.0, self.t_end))
        points = {"mass": 2000, "momentum": 2000, "energy": 2000}
        points.update({f"initial_{o}": 1000 for o in self.output_names})
        points.update({f"boundary_{o}": 200 for o in self.output_names})
        if self.conservation:
            points.update({f"conservation_{k}": 32 for k in CONSERVED})
        if self.initial_window > 0.0:
            points.update({f"window_{k}": 16 for k in CONSERVED})
        self.defaults = pinnk.Defaults(width=64, depth=6, activation="tanh", steps=20000, lr=5e-4,
                                       points=points, positive_outputs=(0, 2))

    def _names(self) -> list[str]:
        names = ["mass", "momentum", "energy"] + _names(("initial", "boundary"),
                                                         self.output_names)
        names += [f"conservation_{k}" for k in CONSERVED] if self.conservation else []
        return names + ([f"window_{k}" for k in CONSERVED] if self.initial_window > 0.0 else [])

    def conservation_targets(self, t: torch.Tensor, quadrature: int = 64) -> torch.Tensor:
        """∫_0^1 U(x, 0) dx + ∫_0^t (F(U(0, s)) − F(U(1, s))) ds at times ``t`` (n,): (n, 3).

        The initial integral is exact (piecewise-constant data); the boundary-flux integral uses
        ``quadrature`` Gauss–Legendre nodes in s on the exact boundary states (the data of the
        boundary terms), float64, returned in the dtype and device of ``t``."""
        import numpy as np

        g = self.gamma
        left = torch.tensor(self.left, dtype=torch.float64)
        right = torch.tensor(self.right, dtype=torch.float64)
        initial = self.x0 * conserved_1d(left, g) + (1.0 - self.x0) * conserved_1d(right, g)
        tt = t.detach().cpu().to(torch.float64).reshape(-1)
        s_ref, w_ref = np.polynomial.legendre.leggauss(quadrature)
        s = torch.as_tensor(0.5 * (s_ref + 1.0))[None, :] * tt[:, None]          # (n, q)
        w = torch.as_tensor(0.5 * w_ref)[None, :] * tt[:, None]
        flux = []
        for xb in (0.0, 1.0):
            pts = torch.stack([torch.full_like(s.reshape(-1), xb), s.reshape(-1)], dim=1)
            flux.append(flux_1d(self.solution(pts), g).reshape(*s.shape, 3))
        out = initial + ((flux[0] - flux[1]) * w[..., None]).sum(dim=1)
        return out.to(dtype=t.dtype, device=t.device)

    def _integral_terms(self, prefix: str, c: dict, generator, dtype, *, lo: float,
                        length: float, horizon: float, targets, x: float,
                        start_at_zero: bool = False) -> list[pinnk.Term]:
        """The terms "{prefix}_mass", "_momentum", "_energy": :class:`ConservedIntegral` over
        [lo, lo + length] on ``conservation_nodes`` stratified nodes (drawn first), at times
        uniform in [0, horizon] (the first at 0 with ``start_at_zero``), rows (x, t), labels
        ``targets(t)`` (n, 3)."""
        m = self.conservation_nodes
        nodes = lo + length * (torch.arange(m, dtype=dtype)
                               + torch.rand(m, generator=generator, dtype=dtype)) / m
        n = max(c[f"{prefix}_{k}"] for k in CONSERVED)
        t = horizon * torch.rand(n, generator=generator, dtype=dtype)
        if start_at_zero:
            t[0] = 0.0
        pts = torch.stack([torch.full_like(t, x), t], dim=1)
        target = targets(t)
        return [pinnk.Term(f"{prefix}_{k}", ConservedIntegral(j, nodes, length, self.gamma),
                           pts[: c[f"{prefix}_{k}"]], target[: c[f"{prefix}_{k}"], j])
                for j, k in enumerate(CONSERVED)]

    def _conservation_terms(self, c: dict, generator, dtype) -> list[pinnk.Term]:
        return self._integral_terms("conservation", c, generator, dtype, lo=0.0, length=1.0,
                                    horizon=self.t_end, targets=self.conservation_targets, x=0.0)

    def terms(self, n=None, generator=None, dtype=None) -> list[pinnk.Term]:
        dtype = self._dtype(dtype)
        c = self.counts(n, self._names())
        lo, hi = self.domain.lower, self.domain.upper
        m_res = max(c[k] for k in ("mass", "momentum", "energy"))
        m_ini = max(c[f"initial_{o}"] for o in self.output_names)
        m_bnd = max(c[f"boundary_{o}"] for o in self.output_names)
        x_res = uniform(m_res, lo, hi, generator, dtype)
        if self.time_exponent != 1.0:
            s = x_res[:, 1] / self.t_end
            x_res = with_column(x_res, 1, self.t_end * s ** self.time_exponent)
        if self.similarity_fraction > 0.0:
            x_res = self._with_similarity_points(x_res, generator)
        x_ini = self._outside_gap(uniform(m_ini, lo, hi, generator, dtype),
                                  lambda k: uniform(k, lo, hi, generator, dtype))
        x_ini = with_column(x_ini, 1, 0.0)
        if self.similarity_fraction > 0.0:
            x_ini = with_column(self._with_similarity_points(x_ini, generator,
                                                             gap=self.initial_gap), 1, 0.0)
        x_bnd = uniform(m_bnd, lo, hi, generator, dtype)
        x_bnd = with_column(x_bnd, 0, (torch.arange(m_bnd) % 2).to(dtype))
        out = [pinnk.Term(k, op, x_res[: c[k]])
               for k, op in euler_residuals_1d(self.gamma, self.shock_damping, self.viscosity,
                                                 self.compression_viscosity).items()]
        out += _value_terms("initial", x_ini, c, self.solution(x_ini), self.output_names)
        out += _value_terms("boundary", x_bnd, c, self.solution(x_bnd), self.output_names)
        if self.conservation:
            out += self._conservation_terms(c, generator, dtype)
        if self.initial_window > 0.0:
            out += self._window_terms(c, generator, dtype)
        return out

    def window_horizon(self) -> float:
        """τ = δ/(2 s_max): the times t ∈ [0, τ] of the window terms (``initial_window`` δ),
        with s_max the largest |speed| of the exact solution's outermost waves (a rarefaction's
        head or a shock), so that every wave stays within half the window."""
        sv = self.solver
        left = sv.left_shock_speed if sv.left_shock_speed is not None else sv.left_head_speed
        right = sv.right_shock_speed if sv.right_shock_speed is not None else sv.right_head_speed
        return self.initial_window / (2.0 * max(abs(left), abs(right)))

    def window_targets(self, t: torch.Tensor) -> torch.Tensor:
        """∫ U(x, t) dx over [x0 − δ, x0 + δ] for times 0 <= t <= δ/s_max (no wave has left
        the window): δ (U_L + U_R) + t (F(U_L) − F(U_R)), exact for the Riemann solution.
        ``t`` (n,) -> (n, 3) in the dtype and device of ``t``."""
        g, d = self.gamma, self.initial_window
        left = torch.tensor(self.left, dtype=torch.float64)
        right = torch.tensor(self.right, dtype=torch.float64)
        inside = d * (conserved_1d(left, g) + conserved_1d(right, g))
        flux = flux_1d(left, g) - flux_1d(right, g)
        tt = t.detach().cpu().to(torch.float64).reshape(-1, 1)
        return (inside + tt * flux).to(dtype=t.dtype, device=t.device)

    def _window_terms(self, c: dict, generator, dtype) -> list[pinnk.Term]:
        d = self.initial_window
        return self._integral_terms("window", c, generator, dtype, lo=self.x0 - d,
                                    length=2.0 * d, horizon=self.window_horizon(),
                                    targets=self.window_targets, x=self.x0, start_at_zero=True)

    def _with_similarity_points(self, x: torch.Tensor, generator,
                                gap: float = 0.0) -> torch.Tensor:
        """``x`` (m, 2) with round(f m) of its rows replaced by points uniform in (ξ, t) (see
        ``similarity_fraction``; those within ``gap`` of x0 in x redrawn), in an order shuffled
        by ``generator`` (so that every term, which takes a leading slice, gets its share)."""
        m = x.shape[0]

        def cone(k: int) -> torch.Tensor:
            u = torch.rand(k, 2, generator=generator, dtype=x.dtype)
            t = self.t_end * u[:, 1]
            xi = (-self.x0 + u[:, 0]) / self.t_end  # ξ uniform in [−x0, 1 − x0]/t_end
            return torch.stack([(self.x0 + xi * t).clamp(0.0, 1.0), t], dim=1)

        k = int(round(self.similarity_fraction * m))
        mixed = torch.cat([self._outside_gap(cone(k), cone, gap), x[k:]])
        return mixed[torch.randperm(m, generator=generator)]

    def _outside_gap(self, x: torch.Tensor, draw, gap: float | None = None) -> torch.Tensor:
        """``x`` (m, 2) with every row whose |x − x0| < ``gap`` (default ``initial_gap``)
        replaced by rows of ``draw(k)`` until none is left: a draw from the distribution of
        ``draw`` conditioned on |x − x0| >= gap. No random numbers are used when no row is
        inside (gap = 0 among them)."""
        gap = self.initial_gap if gap is None else gap
        for _ in range(1000):
            inside = (x[:, 0] - self.x0).abs() < gap
            k = int(inside.sum())
            if k == 0:
                return x
            x = x.clone()
            x[inside] = draw(k)
        raise RuntimeError(f"initial_gap: {k} initial points still within {gap:g} of x0 after "
                           f"1000 redraws")

    def solution(self, x: torch.Tensor) -> torch.Tensor:
        """The exact (ρ, u, p) at points (x, t) with t >= 0, shape (n, 3), dtype and device of
        ``x`` (computed in float64 numpy; not differentiable)."""
        x = self.check_points(x)
        xn = x.detach().cpu().to(torch.float64).numpy()
        return to_tensor(self.solver.sample(xn[:, 0], xn[:, 1]), x)

    def viscous_reference(self, t: float | None = None, cells: int = 2000):
        """The solution of the regularised tube (``viscosity`` ν > 0) at time ``t`` (default
        t_end) by the finite-volume solver :func:`problems.viscous_riemann_1d`: ``(x, w)``, the
        cell centres (cells,) and (ρ, u, p) (cells, 3), float64 numpy — or, for a sequence of
        non-decreasing times (one run), w of shape (len(t), cells, 3). It is what training on
        the viscous residuals aims at; against :meth:`solution` it measures the cost of the
        regularisation itself."""
        from ._viscous_euler import viscous_riemann_1d
        if self.compression_viscosity > 0.0:
            raise ValueError("compression_viscosity: the finite-volume reference solves the "
                             "tube with the uniform viscosity ν only; this problem's "
                             f"regularisation also has c = {self.compression_viscosity:g}")
        if self.viscosity == 0.0:
            raise ValueError("viscosity: the problem is inviscid (viscosity=0); its reference is "
                             "solution(), the exact Riemann solution")
        return viscous_riemann_1d(self.left, self.right, viscosity=self.viscosity,
                                  t=self.t_end if t is None else t, x0=self.x0, gamma=self.gamma,
                                  cells=cells)

    def hlle_reference(self, t: float | None = None, cells: int = 1000, order: int = 1,
                       limiter: str = "minmod"):
        """The inviscid tube at time ``t`` (default t_end) by the shock-capturing finite-volume
        scheme :func:`problems.hlle_riemann_1d` (HLLE flux, ``order`` 1 or 2): ``(x, w)``, the
        cell centres (cells,) and (ρ, u, p) (cells, 3), float64 numpy — or, for a sequence of
        non-decreasing times (one run), w of shape (len(t), cells, 3). Against :meth:`solution`
        it is what a classical scheme on ``cells`` cells scores on the same measures as a
        network; it ignores ``viscosity`` (the scheme's own dissipation takes its place)."""
        from ._hlle import hlle_riemann_1d
        return hlle_riemann_1d(self.left, self.right, t=self.t_end if t is None else t,
                               x0=self.x0, gamma=self.gamma, cells=cells, order=order,
                               limiter=limiter)


class Sod(RiemannProblem):
    """Sod's shock tube: (ρ, u, p) = (1, 0, 1) | (0.125, 0, 0.1) at x0 = 0.5, t_end = 0.2.

    Left rarefaction, contact, right shock; star state p* = 0.30313, u* = 0.92745,
    ρ*L = 0.42632, ρ*R = 0.26557, shock speed 1.75216 (design.md §5, Toro test 1). See
    :class:`RiemannProblem` for the terms.

    Parameters: t_end (default 0.2), time_exponent (default 1), shock_damping (default 0),
    conservation (default False), conservation_nodes (default 128), viscosity (default 0),
    compression_viscosity (default 0), similarity_fraction (default 0), initial_gap (default 0),
    initial_window (default 0).
    """

    name = "sod"
    description = "Sod shock tube (1, 0, 1) | (0.125, 0, 0.1), t ∈ [0, 0.2] (exact Riemann solver)"
    LEFT = (1.0, 0.0, 1.0)
    RIGHT = (0.125, 0.0, 0.1)
    T_END = 0.2

    def __init__(self, *, t_end: float = 0.2, time_exponent: float = 1.0, shock_damping: float = 0.0,
                 conservation: bool = False, conservation_nodes: int = 128,
                 viscosity: float = 0.0, compression_viscosity: float = 0.0,
                 similarity_fraction: float = 0.0, initial_gap: float = 0.0,
                 initial_window: float = 0.0):
        self._preset(t_end, time_exponent, shock_damping, conservation, conservation_nodes,
                     viscosity, compression_viscosity, similarity_fraction, initial_gap,
                     initial_window)


class Lax(RiemannProblem):
    """Lax's shock tube: (ρ, u, p) = (0.445, 0.698, 3.528) | (0.5, 0, 0.571) at x0 = 0.5.

    Left rarefaction, contact, right shock; p* = 2.4661, u* = 1.5287 (design.md §5). The final
    time is the usual t_end = 0.14 on [0, 1] (the rarefaction head reaches x ≈ 0.13 and the shock
    x ≈ 0.85, so no wave leaves the tube). See :class:`RiemannProblem` for the terms.

    Parameters: t_end (default 0.14), time_exponent (default 1), shock_damping (default 0),
    conservation (default False), conservation_nodes (default 128), viscosity (default 0),
    compression_viscosity (default 0), similarity_fraction (default 0), initial_gap (default 0),
    initial_window (default 0).
    """

    name = "lax"
    description = "Lax shock tube (0.445, 0.698, 3.528) | (0.5, 0, 0.571), t ∈ [0, 0.14] (exact)"
    LEFT = (0.445, 0.698, 3.528)
    RIGHT = (0.5, 0.0, 0.571)
    T_END = 0.14

    def __init__(self, *, t_end: float = 0.14, time_exponent: float = 1.0, shock_damping: float = 0.0,
                 conservation: bool = False, conservation_nodes: int = 128,
                 viscosity: float = 0.0, compression_viscosity: float = 0.0,
                 similarity_fraction: float = 0.0, initial_gap: float = 0.0,
                 initial_window: float = 0.0):
        self._preset(t_end, time_exponent, shock_damping, conservation, conservation_nodes,
                     viscosity, compression_viscosity, similarity_fraction, initial_gap,
                     initial_window)


# -------------------------------------------------------------------------- isentropic vortex
class IsentropicVortex(ZooProblem):
    """2D Euler: Shu's isentropic vortex advected by a uniform flow on [0, 10]² × [0, T].

    Inputs (x, y, t), outputs (ρ, u, v, p). Free stream ρ∞ = p∞ = 1, (u∞, v∞) = (1, 1); the
    vortex of strength ε starts at (5, 5) and is carried by the free stream (Shu 1998):

        (x̄, ȳ) = (x − 5 − t, y − 5 − t) wrapped to the nearest periodic image in [−5, 5)²,
        r² = x̄² + ȳ²,
        u = 1 − ε/(2π) e^{(1−r²)/2} ȳ,    v = 1 + ε/(2π) e^{(1−r²)/2} x̄,
        T = 1 − (γ−1) ε²/(8γπ²) e^{1−r²},  ρ = T^{1/(γ−1)},  p = ρ^γ.

    The translated vortex solves the Euler equations exactly on R²; wrapping to the nearest image
    makes it periodic in x and y at the price of a jump of about 5e-5 (for ε = 5) along the seam
    x − t ≡ 0 (mod 10) or y − t ≡ 0 (mod 10), where the residual is not defined.

    Terms: "mass", "momentum_x", "momentum_y", "energy" (:func:`euler_residuals_2d`, target 0) at
    uniform points; "initial_rho", ..., "initial_p" (values at t = 0); "boundary_rho", ...,
    "boundary_p" (exact values on the four sides of the square).

    Parameters:
        strength: ε > 0 with T > 0 at the core, i.e. ε² < 8γπ²/((γ−1)e) (default 5).
        T: the final time > 0 (default 1).
        gamma: the ratio of specific heats > 1 (default 1.4).

    Defaults keep ρ and p positive (``positive_outputs=(0, 3)``).
    """

    name = "isentropic-vortex"
    description = "2D Euler, Shu's isentropic vortex (ε = 5) advected by (1, 1) on [0, 10]² (exact)"
    input_names = ("x", "y", "t")
    output_names = ("rho", "u", "v", "p")
    time_index = 2
    exact = True
    LENGTH = 10.0

    def __init__(self, *, strength: float = 5.0, T: float = 1.0, gamma: float = 1.4):
        self.strength = check_real(strength, "strength", positive=True)
        self.T = check_real(T, "T", positive=True)
        self.gamma = _check_gamma(gamma)
        core = 1.0 - (self.gamma - 1.0) * self.strength ** 2 * math.e / (
            8.0 * self.gamma * math.pi ** 2)
        if core <= 0.0:
            raise ValueError(f"strength: {self.strength!r} is too strong for gamma={self.gamma}: "
                             f"the temperature at the vortex core would be {core:.3g} <= 0")
        self._set_params(strength=self.strength, T=self.T, gamma=self.gamma)
        L = self.LENGTH
        self.domain = pinnk.Box((0.0, 0.0, 0.0), (L, L, self.T))
        points = {k: 4000 for k in ("mass", "momentum_x", "momentum_y", "energy")}
        points.update({k: 1000 for k in _names(("initial", "boundary"), self.output_names)})
        self.defaults = pinnk.Defaults(width=64, depth=5, activation="tanh", steps=20000, lr=1e-3,
                                       points=points, positive_outputs=(0, 3))

    def _names(self) -> list[str]:
        return (["mass", "momentum_x", "momentum_y", "energy"]
                + _names(("initial", "boundary"), self.output_names))

    def _exact(self, x: torch.Tensor) -> torch.Tensor:
        L, g, eps = self.LENGTH, self.gamma, self.strength
        half = 0.5 * L
        # x − (L/2 + t) wrapped to [−L/2, L/2): remainder(x − L/2 − t + L/2, L) − L/2
        xb = torch.remainder(x[:, 0] - x[:, 2], L) - half
        yb = torch.remainder(x[:, 1] - x[:, 2], L) - half
        r2 = xb * xb + yb * yb
        a = eps / (2.0 * math.pi) * torch.exp(0.5 * (1.0 - r2))
        u = 1.0 - a * yb
        v = 1.0 + a * xb
        temp = 1.0 - (g - 1.0) * eps ** 2 / (8.0 * g * math.pi ** 2) * torch.exp(1.0 - r2)
        rho = temp ** (1.0 / (g - 1.0))
        p = rho * temp  # = ρ^γ
        return torch.stack([rho, u, v, p], dim=-1)

    def boundary_points(self, n: int, generator: torch.Generator | None = None,
                        dtype: torch.dtype | None = None) -> torch.Tensor:
        """n points uniform on the four sides of [0, L]² times [0, T], shape (n, 3)."""
        dtype = self._dtype(dtype)
        L = self.LENGTH
        side = torch.randint(0, 4, (n,), generator=generator)
        r = L * torch.rand(n, generator=generator, dtype=dtype)
        t = self.T * torch.rand(n, generator=generator, dtype=dtype)
        wall = torch.where(side % 2 == 0, torch.zeros((), dtype=dtype),
                           torch.full((), L, dtype=dtype)).expand(n)
        x = torch.where(side < 2, wall, r)
        y = torch.where(side < 2, r, wall)
        return torch.stack([x, y, t], dim=-1)

    def terms(self, n=None, generator=None, dtype=None) -> list[pinnk.Term]:
        dtype = self._dtype(dtype)
        c = self.counts(n, self._names())
        lo, hi = self.domain.lower, self.domain.upper
        res_names = ("mass", "momentum_x", "momentum_y", "energy")
        m_res = max(c[k] for k in res_names)
        m_ini = max(c[f"initial_{o}"] for o in self.output_names)
        m_bnd = max(c[f"boundary_{o}"] for o in self.output_names)
        x_res = uniform(m_res, lo, hi, generator, dtype)
        x_ini = with_column(uniform(m_ini, lo, hi, generator, dtype), 2, 0.0)
        x_bnd = self.boundary_points(m_bnd, generator, dtype)
        out = [pinnk.Term(k, op, x_res[: c[k]])
               for k, op in euler_residuals_2d(self.gamma).items()]
        out += _value_terms("initial", x_ini, c, self._exact, self.output_names)
        out += _value_terms("boundary", x_bnd, c, self._exact, self.output_names)
        return out

    def solution(self, x: torch.Tensor) -> torch.Tensor:
        """The exact (ρ, u, v, p), shape (n, 4)."""
        x = self.check_points(x)
        return self._exact(x)
