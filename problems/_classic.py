"""Classic PINN benchmarks: 1D Poisson, 1D wave and viscous Burgers."""

from __future__ import annotations

import math

import numpy as np
import torch

import pinnk
from pinnk import ops

from ._base import (ZooProblem, check_positive_int, check_real, to_tensor, two_sided, uniform,
                    with_column)

__all__ = ["Poisson1D", "Wave1D", "Burgers1D"]


# ---------------------------------------------------------------------------------- poisson-1d
class _SinA:
    """x -> scale · sin(aπ x_0) (a picklable target callable, (n, d) -> (n,))."""

    def __init__(self, a: float, scale: float = 1.0):
        self.a, self.scale = a, scale

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale * torch.sin(self.a * math.pi * x[:, 0])


class Poisson1D(ZooProblem):
    """1D Poisson u_xx = f on [0, 1] with u = sin(aπx) (Wang, Yu, Perdikaris 2022).

    Input (x,), output (u,); f = −(aπ)² sin(aπx).

    Terms:
        "residual":  ops.laplacian() = u_xx with target f    at uniform points of (0, 1)
        "boundary":  u = sin(aπx) at x = 0 and x = 1 (alternating; zero for integer a)

    Parameters:
        a: the frequency, any finite non-zero real (default 4).
    """

    name = "poisson-1d"
    description = "1D Poisson u_xx = f on [0, 1], u = sin(aπx), a = 4 (Wang, Yu, Perdikaris 2022)"
    input_names = ("x",)
    output_names = ("u",)
    time_index = None
    exact = True

    def __init__(self, *, a: float = 4.0):
        self.a = check_real(a, "a", nonzero=True)
        self._set_params(a=self.a)
        self._u = _SinA(self.a)
        self._f = _SinA(self.a, -(self.a * math.pi) ** 2)
        self.domain = pinnk.Box((0.0,), (1.0,))
        self.defaults = pinnk.Defaults(width=100, depth=2, activation="tanh", steps=10000, lr=1e-3,
                                       points={"residual": 256, "boundary": 2})

    def terms(self, n=None, generator=None, dtype=None) -> list[pinnk.Term]:
        dtype = self._dtype(dtype)
        c = self.counts(n, ["residual", "boundary"])
        x_res = uniform(c["residual"], (0.0,), (1.0,), generator, dtype)
        x_bnd = two_sided(torch.zeros(c["boundary"], 1, dtype=dtype), 0, 0.0, 1.0)
        return [
            pinnk.Term("residual", ops.laplacian(), x_res, self._f, residual=True),
            pinnk.Term("boundary", ops.value(), x_bnd, self._u),
        ]

    def solution(self, x: torch.Tensor) -> torch.Tensor:
        """u(x) = sin(aπx), shape (n, 1)."""
        x = self.check_points(x)
        return self._u(x).unsqueeze(-1)


# -------------------------------------------------------------------------------------- wave-1d
def _wave_initial(x: torch.Tensor) -> torch.Tensor:
    return torch.sin(math.pi * x[:, 0]) + 0.5 * torch.sin(4.0 * math.pi * x[:, 0])


class Wave1D(ZooProblem):
    """1D wave equation u_tt = c² u_xx on (x, t) ∈ [0, 1]² (Wang, Yu, Perdikaris 2022).

    Inputs (x, t), output (u,). Exact solution

        u = sin(πx) cos(cπt) + ½ sin(4πx) cos(4cπt)

    (c = 2: sin πx cos 2πt + ½ sin 4πx cos 8πt).

    Terms:
        "residual":          ops.partial([0, 2]) − c²·ops.partial([2, 0]) = 0    interior points
        "initial":           u(x, 0) = sin πx + ½ sin 4πx
        "initial_velocity":  u_t(x, 0) = 0   (a derivative label with an explicit zero target)
        "boundary":          u = 0 at x = 0 and x = 1 (alternating)

    Parameters:
        c: the wave speed, finite and non-zero (default 2, so c² = 4).
    """

    name = "wave-1d"
    description = "1D wave u_tt = 4 u_xx on [0, 1]², u_t(x, 0) = 0 (Wang, Yu, Perdikaris 2022)"
    input_names = ("x", "t")
    output_names = ("u",)
    time_index = 1
    exact = True

    def __init__(self, *, c: float = 2.0):
        self.c = check_real(c, "c", nonzero=True)
        self._set_params(c=self.c)
        self.domain = pinnk.Box((0.0, 0.0), (1.0, 1.0))
        self.defaults = pinnk.Defaults(width=200, depth=4, activation="tanh", steps=40000, lr=1e-3,
                                       points={"residual": 1000, "initial": 256,
                                               "initial_velocity": 256, "boundary": 256})

    def terms(self, n=None, generator=None, dtype=None) -> list[pinnk.Term]:
        dtype = self._dtype(dtype)
        names = ["residual", "initial", "initial_velocity", "boundary"]
        c = self.counts(n, names)
        lo, hi = self.domain.lower, self.domain.upper
        x_res = uniform(c["residual"], lo, hi, generator, dtype)
        m_ini = max(c["initial"], c["initial_velocity"])
        x_ini = with_column(uniform(m_ini, lo, hi, generator, dtype), 1, 0.0)
        x_bnd = two_sided(uniform(c["boundary"], lo, hi, generator, dtype), 0, 0.0, 1.0)
        x_vel = x_ini[: c["initial_velocity"]]
        return [
            pinnk.Term("residual", ops.partial([0, 2]) - self.c ** 2 * ops.partial([2, 0]), x_res),
            pinnk.Term("initial", ops.value(), x_ini[: c["initial"]], _wave_initial),
            pinnk.Term("initial_velocity", ops.partial([0, 1]), x_vel,
                       torch.zeros(x_vel.shape[0], dtype=dtype)),
            pinnk.Term("boundary", ops.value(), x_bnd, None),
        ]

    def solution(self, x: torch.Tensor) -> torch.Tensor:
        """u = sin(πx) cos(cπt) + ½ sin(4πx) cos(4cπt), shape (n, 1)."""
        x = self.check_points(x)
        s, t = x[:, 0], x[:, 1]
        u = (torch.sin(math.pi * s) * torch.cos(self.c * math.pi * t)
             + 0.5 * torch.sin(4.0 * math.pi * s) * torch.cos(4.0 * self.c * math.pi * t))
        return u.unsqueeze(-1)


# ----------------------------------------------------------------------------------- burgers-1d
def _minus_sin_pi(x: torch.Tensor) -> torch.Tensor:
    return -torch.sin(math.pi * x[:, 0])


class Burgers1D(ZooProblem):
    """Viscous Burgers u_t + u u_x = ν u_xx on x ∈ [−1, 1], t ∈ [0, 1] (Raissi et al. 2019).

    Inputs (x, t), output (u,). u(x, 0) = −sin πx, u(±1, t) = 0, default ν = 0.01/π. The
    reference is the Cole–Hopf formula evaluated by Gauss–Hermite quadrature
    (:func:`problems._cole_hopf.burgers_cole_hopf`; ``exact=False``). It has about 12 correct
    digits for the default ν; for smaller ν the number of nodes grows as 256·(0.01/π)/ν.

    Terms:
        "residual":  ops.residual(u_t + u u_x − ν u_xx) = 0     at uniform interior points
        "initial":   u(x, 0) = −sin πx
        "boundary":  u = 0 at x = −1 and x = 1 (alternating)

    Parameters:
        nu: the viscosity ν >= 1e-4 (default 0.01/π).
    """

    name = "burgers-1d"
    description = "viscous Burgers u_t + u u_x = (0.01/π) u_xx, u0 = −sin πx (Cole–Hopf reference)"
    input_names = ("x", "t")
    output_names = ("u",)
    time_index = 1
    exact = False
    DEFAULT_NU = 0.01 / math.pi

    def __init__(self, *, nu: float = DEFAULT_NU):
        # The Cole–Hopf reference needs ~0.8/ν Gauss–Hermite nodes: below 1e-4 it cannot be
        # computed in reasonable time.
        self.nu = check_real(nu, "nu", positive=True, minimum=1e-4)
        self._set_params(nu=self.nu)
        self.n_quad = check_positive_int(max(256, math.ceil(256 * self.DEFAULT_NU / self.nu)),
                                         "n_quad")
        self.domain = pinnk.Box((-1.0, 0.0), (1.0, 1.0))
        self.defaults = pinnk.Defaults(width=20, depth=8, activation="tanh", steps=20000, lr=1e-3,
                                       points={"residual": 10000, "initial": 256, "boundary": 256})

    def residual_operator(self) -> ops.Operator:
        """R = u_t + u u_x − ν u_xx as a :func:`pinnk.ops.residual` (inputs (x, t))."""
        nu = self.nu

        def burgers(x, u, u_t, u_x, u_xx):
            return u_t + u * u_x - nu * u_xx

        return ops.residual(burgers, u=ops.value(), u_t=ops.partial([0, 1]),
                            u_x=ops.partial([1, 0]), u_xx=ops.partial([2, 0]), label="burgers")

    def terms(self, n=None, generator=None, dtype=None) -> list[pinnk.Term]:
        dtype = self._dtype(dtype)
        c = self.counts(n, ["residual", "initial", "boundary"])
        lo, hi = self.domain.lower, self.domain.upper
        x_res = uniform(c["residual"], lo, hi, generator, dtype)
        x_ini = with_column(uniform(c["initial"], lo, hi, generator, dtype), 1, 0.0)
        x_bnd = two_sided(uniform(c["boundary"], lo, hi, generator, dtype), 0, -1.0, 1.0)
        return [
            pinnk.Term("residual", self.residual_operator(), x_res),
            pinnk.Term("initial", ops.value(), x_ini, _minus_sin_pi),
            pinnk.Term("boundary", ops.value(), x_bnd, None),
        ]

    def solution(self, x: torch.Tensor) -> torch.Tensor:
        """The Cole–Hopf reference u(x, t) for t >= 0, shape (n, 1), dtype and device of ``x``
        (computed in float64 numpy; not differentiable)."""
        from ._cole_hopf import burgers_cole_hopf
        x = self.check_points(x)
        xn = x.detach().cpu().to(torch.float64).numpy()
        u = burgers_cole_hopf(xn[:, 0], xn[:, 1], nu=self.nu, n_quad=self.n_quad)
        return to_tensor(np.asarray(u, dtype=np.float64), x).reshape(-1, 1)
