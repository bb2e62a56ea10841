"""Linear transport problems: first-order operators Σ g_i(x) ∂_i u (paper eq. 16).

* ``convection``: u_t + β u_x = 0, periodic in x (Krishnapriyan et al. 2021).
* ``rotating-cone``: u_t − y u_x + x u_y = 0, a Gaussian cone rotated rigidly about the origin.
* ``variable-transport``: u_t + a(x) u_x = 0 with a(x) = 1 + ½ sin(2πx), reference by the method
  of characteristics.
"""

from __future__ import annotations

import math

import numpy as np
import torch

import pinnk
from pinnk import ops

from ._base import (Periodic, ZooProblem, check_bool, check_real, to_tensor, uniform,
                    with_column)

__all__ = ["Convection", "RotatingCone", "VariableTransport"]

TWO_PI = 2.0 * math.pi


# ---------------------------------------------------------------------------------- convection
def _sin_x(x: torch.Tensor) -> torch.Tensor:
    return torch.sin(x[:, 0])


class Convection(ZooProblem):
    """1D convection u_t + β u_x = 0 on x ∈ [0, 2π), t ∈ [0, 1], periodic in x.

    Inputs (x, t), output (u,). u(x, 0) = sin x; exact solution u = sin(x − βt).

    Terms:
        "residual":  ops.transport([β, 1]) = u_t + β u_x = 0        at uniform interior points
        "initial":   u(x, 0) = sin x                                  at t = 0
        "periodic":  u(0, t) − u(2π, t) = 0                           at x = 0 (a :class:`Periodic`
                     operator: it evaluates the network at x and at x + 2π)

    Parameters:
        beta: the speed β, any finite real (default 30, the hard case of Krishnapriyan et al.).
        periodic_embedding: suggest the exact periodic embedding
            ``{"kind": "periodic", "dims": [0], "periods": [2π]}`` in :attr:`defaults` (default
            False). The network is then periodic by construction, so the "periodic" term (zero
            up to round-off, with a vanishing kernel) is left out.

    Defaults: 4 hidden layers × 50, tanh.
    """

    name = "convection"
    description = "1D convection u_t + β u_x = 0, periodic in x, u0 = sin x (exact sin(x − βt))"
    input_names = ("x", "t")
    output_names = ("u",)
    time_index = 1
    exact = True

    def __init__(self, *, beta: float = 30.0, periodic_embedding: bool = False):
        self.beta = check_real(beta, "beta")
        self.periodic_embedding = check_bool(periodic_embedding, "periodic_embedding")
        self._set_params(beta=self.beta, periodic_embedding=self.periodic_embedding)
        self.domain = pinnk.Box((0.0, 0.0), (TWO_PI, 1.0))
        embedding = ({"kind": "periodic", "dims": [0], "periods": [TWO_PI]}
                     if self.periodic_embedding else None)
        points = {"residual": 2000, "initial": 256}
        if not self.periodic_embedding:
            points["periodic"] = 256
        self.defaults = pinnk.Defaults(width=50, depth=4, activation="tanh", steps=10000, lr=1e-3,
                                       points=points, embedding=embedding)

    def terms(self, n=None, generator=None, dtype=None) -> list[pinnk.Term]:
        dtype = self._dtype(dtype)
        c = self.counts(n, list(self.defaults.points))
        lo, hi = self.domain.lower, self.domain.upper
        x_res = uniform(c["residual"], lo, hi, generator, dtype)
        x_ini = with_column(uniform(c["initial"], lo, hi, generator, dtype), 1, 0.0)
        out = [pinnk.Term("residual", ops.transport([self.beta, 1.0]), x_res),
               pinnk.Term("initial", ops.value(), x_ini, _sin_x)]
        if not self.periodic_embedding:
            x_per = with_column(uniform(c["periodic"], lo, hi, generator, dtype), 0, 0.0)
            out.append(pinnk.Term("periodic", Periodic(ops.value(), dim=0, period=TWO_PI), x_per))
        return out

    def solution(self, x: torch.Tensor) -> torch.Tensor:
        """u(x, t) = sin(x − βt), shape (n, 1)."""
        x = self.check_points(x)
        return torch.sin(x[:, 0] - self.beta * x[:, 1]).unsqueeze(-1)


# ------------------------------------------------------------------------------- rotating cone
def _minus_y(x: torch.Tensor) -> torch.Tensor:
    return -x[:, 1]


def _x(x: torch.Tensor) -> torch.Tensor:
    return x[:, 0]


class RotatingCone(ZooProblem):
    """Solid-body rotation u_t − y u_x + x u_y = 0 on [−1, 1]² × [0, T].

    Inputs (x, y, t), output (u,). The velocity a(x, y) = (−y, x) rotates the plane
    counter-clockwise with unit angular speed, so u is constant along
    (x, y)(t) = R(t)(x0, y0) and the exact solution is

        u(x, y, t) = u0(R(−t)(x, y)) = u0(x cos t + y sin t, −x sin t + y cos t),
        u0(x, y)   = exp(−((x − c1)² + (y − c2)²) / (2 w²))            (a smooth Gaussian cone).

    Terms:
        "residual":  ops.transport([−y, x, 1]) = 0            at uniform points of the cylinder
        "initial":   u(x, y, 0) = u0(x, y)                     at t = 0
        "boundary":  u = exact solution                        on the inflow part of the spatial
                     boundary, {a·n < 0}: on each side of the square the half where the flow
                     enters (x = 1, y > 0; y = 1, x < 0; x = −1, y < 0; y = −1, x > 0).

    Parameters:
        T: the final time > 0 (default 2π, one full revolution).
        center: (c1, c2), the initial centre of the cone, inside (−1, 1)² (default (0.5, 0)).
        width: w > 0, the standard deviation of the Gaussian (default 0.1).
    """

    name = "rotating-cone"
    description = "solid-body rotation u_t − y u_x + x u_y = 0 of a Gaussian cone on [−1, 1]²"
    input_names = ("x", "y", "t")
    output_names = ("u",)
    time_index = 2
    exact = True

    def __init__(self, *, T: float = TWO_PI, center: tuple = (0.5, 0.0), width: float = 0.1):
        self.T = check_real(T, "T", positive=True)
        if isinstance(center, (str, bytes)) or not hasattr(center, "__len__") or len(center) != 2:
            raise ValueError(f"center: expected two coordinates (c1, c2), got {center!r}")
        self.center = tuple(check_real(c, "center", minimum=-1.0, maximum=1.0) for c in center)
        if any(abs(c) >= 1.0 for c in self.center):
            raise ValueError(f"center: expected a point inside (−1, 1)², got {self.center}")
        self.width = check_real(width, "width", positive=True)
        self._set_params(T=self.T, center=self.center, width=self.width)
        self.domain = pinnk.Box((-1.0, -1.0, 0.0), (1.0, 1.0, self.T))
        self.defaults = pinnk.Defaults(width=64, depth=4, activation="tanh", steps=20000, lr=1e-3,
                                       points={"residual": 4000, "initial": 1000,
                                               "boundary": 1000})

    def initial(self, xy: torch.Tensor) -> torch.Tensor:
        """u0 at points (n, ≥2) (the first two columns are x, y), shape (n,)."""
        r2 = (xy[:, 0] - self.center[0]) ** 2 + (xy[:, 1] - self.center[1]) ** 2
        return torch.exp(-r2 / (2.0 * self.width ** 2))

    def _exact(self, x: torch.Tensor) -> torch.Tensor:
        c, s = torch.cos(x[:, 2]), torch.sin(x[:, 2])
        back = torch.stack([x[:, 0] * c + x[:, 1] * s, -x[:, 0] * s + x[:, 1] * c], dim=-1)
        return self.initial(back)

    def inflow_points(self, n: int, generator: torch.Generator | None = None,
                      dtype: torch.dtype | None = None) -> torch.Tensor:
        """n points uniform on the inflow boundary {a·n < 0} × [0, T], shape (n, 3)."""
        dtype = self._dtype(dtype)
        side = torch.randint(0, 4, (n,), generator=generator)
        r = torch.rand(n, generator=generator, dtype=dtype)
        t = self.T * torch.rand(n, generator=generator, dtype=dtype)
        one = torch.ones(n, dtype=dtype)
        # side 0: x = 1, y = r;   side 1: x = −1, y = −r;
        # side 2: y = 1, x = −r;  side 3: y = −1, x = r
        x = torch.where(side == 0, one, torch.where(side == 1, -one,
                                                    torch.where(side == 2, -r, r)))
        y = torch.where(side == 0, r, torch.where(side == 1, -r,
                                                  torch.where(side == 2, one, -one)))
        return torch.stack([x, y, t], dim=-1)

    def terms(self, n=None, generator=None, dtype=None) -> list[pinnk.Term]:
        dtype = self._dtype(dtype)
        c = self.counts(n, ["residual", "initial", "boundary"])
        lo, hi = self.domain.lower, self.domain.upper
        x_res = uniform(c["residual"], lo, hi, generator, dtype)
        x_ini = with_column(uniform(c["initial"], lo, hi, generator, dtype), 2, 0.0)
        x_bnd = self.inflow_points(c["boundary"], generator, dtype)
        return [
            pinnk.Term("residual", ops.transport([_minus_y, _x, 1.0]), x_res),
            pinnk.Term("initial", ops.value(), x_ini, self.initial),
            pinnk.Term("boundary", ops.value(), x_bnd, self._exact),
        ]

    def solution(self, x: torch.Tensor) -> torch.Tensor:
        """u(x, y, t) = u0(R(−t)(x, y)), shape (n, 1)."""
        x = self.check_points(x)
        return self._exact(x).unsqueeze(-1)


# -------------------------------------------------------------------------- variable transport
def speed(x):
    """The transport speed a(x) = 1 + ½ sin(2πx) ∈ [½, 3/2] (numpy or torch, elementwise)."""
    if isinstance(x, torch.Tensor):
        return 1.0 + 0.5 * torch.sin(TWO_PI * x)
    return 1.0 + 0.5 * np.sin(TWO_PI * np.asarray(x, dtype=np.float64))


def initial_data(x):
    """The initial data u0(x) = sin(2πx) (numpy or torch, elementwise)."""
    if isinstance(x, torch.Tensor):
        return torch.sin(TWO_PI * x)
    return np.sin(TWO_PI * np.asarray(x, dtype=np.float64))


def _speed_field(x: torch.Tensor) -> torch.Tensor:
    return speed(x[:, 0])


def _initial_target(x: torch.Tensor) -> torch.Tensor:
    return initial_data(x[:, 0])


class VariableTransport(ZooProblem):
    """Transport with a variable speed, u_t + a(x) u_x = 0, on x ∈ [0, 1], t ∈ [0, T].

    Inputs (x, t), output (u,), with

        a(x) = 1 + ½ sin(2πx)   (smooth, ½ <= a <= 3/2: everything moves right),
        u0(x) = sin(2πx).

    u is constant along the characteristics dx/dt = a(x); the reference solution traces each point
    back to t = 0 (``problems._characteristics.transport_characteristics``, an ODE solve, so
    ``exact=False``). a and u0 are defined on all of R, so a characteristic that leaves through
    the inflow boundary x = 0 simply continues to x < 0; the inflow values are the reference there.

    Terms:
        "residual":  ops.transport([a(x), 1]) = u_t + a(x) u_x = 0   at uniform interior points
        "initial":   u(x, 0) = u0(x)                                  at t = 0
        "boundary":  u(0, t) = reference                              on the inflow boundary x = 0

    Parameters:
        T: the final time > 0 (default 1).
        rtol: the relative tolerance of the reference ODE solve (default 1e-10).
        atol: the absolute tolerance of the reference ODE solve (default 1e-12).
    """

    name = "variable-transport"
    description = "u_t + a(x) u_x = 0 with a = 1 + ½ sin 2πx on [0, 1] (reference: characteristics)"
    input_names = ("x", "t")
    output_names = ("u",)
    time_index = 1
    exact = False

    def __init__(self, *, T: float = 1.0, rtol: float = 1e-10, atol: float = 1e-12):
        self.T = check_real(T, "T", positive=True)
        self.rtol = check_real(rtol, "rtol", positive=True)
        self.atol = check_real(atol, "atol", positive=True)
        self._set_params(T=self.T, rtol=self.rtol, atol=self.atol)
        self.domain = pinnk.Box((0.0, 0.0), (1.0, self.T))
        self.defaults = pinnk.Defaults(width=50, depth=4, activation="tanh", steps=10000, lr=1e-3,
                                       points={"residual": 2000, "initial": 256, "boundary": 256})

    def _reference(self, x: np.ndarray, t: np.ndarray) -> np.ndarray:
        from ._characteristics import transport_characteristics
        return transport_characteristics(x, t, speed, initial_data, rtol=self.rtol, atol=self.atol)

    def terms(self, n=None, generator=None, dtype=None) -> list[pinnk.Term]:
        dtype = self._dtype(dtype)
        c = self.counts(n, ["residual", "initial", "boundary"])
        lo, hi = self.domain.lower, self.domain.upper
        x_res = uniform(c["residual"], lo, hi, generator, dtype)
        x_ini = with_column(uniform(c["initial"], lo, hi, generator, dtype), 1, 0.0)
        x_bnd = with_column(uniform(c["boundary"], lo, hi, generator, dtype), 0, 0.0)
        return [
            pinnk.Term("residual", ops.transport([_speed_field, 1.0]), x_res),
            pinnk.Term("initial", ops.value(), x_ini, _initial_target),
            pinnk.Term("boundary", ops.value(), x_bnd, self.solution(x_bnd)[:, 0]),
        ]

    def solution(self, x: torch.Tensor) -> torch.Tensor:
        """The reference u(x, t) by characteristics, shape (n, 1), dtype and device of ``x``
        (computed in float64 numpy, not differentiable)."""
        x = self.check_points(x)
        xn = x.detach().cpu().to(torch.float64).numpy()
        u = np.asarray(self._reference(xn[:, 0], xn[:, 1]), dtype=np.float64)
        return to_tensor(u, x).reshape(-1, 1)
