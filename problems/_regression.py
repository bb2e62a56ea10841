"""Regression problems with derivative labels (the paper's experiments, sections 2.2, 3.2, 3.3).

* ``circle-product``: f = x1 x2 on the unit circle, with optional derivative labels.
* ``sin-cos``: f = sin(x1) cos(x2) on a box (the batch-angle experiment, Fig. A2b).
* ``jacobian-regularization``: a regression with zero-derivative labels (paper eq. 20).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch

import pinnk
from pinnk import ops

from ._base import ZooProblem, check_bool, check_real, uniform

__all__ = ["CircleProduct", "SinCos", "JacobianRegularization"]


def _first(points: torch.Tensor, counts: Mapping[str, int], name: str) -> torch.Tensor:
    """The first counts[name] rows of a shared sample: terms with equal counts share points."""
    return points[: counts[name]]


# ------------------------------------------------------------------------------ circle-product
def _product(x: torch.Tensor) -> torch.Tensor:
    return x[:, 0] * x[:, 1]


def _second(x: torch.Tensor) -> torch.Tensor:
    return x[:, 1]


def _first_coordinate(x: torch.Tensor) -> torch.Tensor:
    return x[:, 0]


def rotation_field(x: torch.Tensor) -> torch.Tensor:
    """The tangent field of the unit circle h(x) = (−x2, x1), shape (n, 2)."""
    return torch.stack([-x[:, 1], x[:, 0]], dim=-1)


def _tangential_label(x: torch.Tensor) -> torch.Tensor:
    return x[:, 0] * x[:, 0] - x[:, 1] * x[:, 1]


class CircleProduct(ZooProblem):
    """Fit f(x) = x1 x2 at points x = (cos γ, sin γ) of the unit circle, γ ~ N(0, σ²).

    The paper's experiment for Propositions 1–3 (section 2.2, Fig. 1, A2a): value labels
    f(x) = x1 x2 plus, with ``derivative_labels=True``, the labels

        ∂f/∂x1 = x2,   ∂f/∂x2 = x1                                     (terms "d_x1", "d_x2")

    and, with ``tangential=True``, the Gâteaux derivative along the circle's tangent field
    h(x) = (−x2, x1):

        ∂_h f(x) = h·∇f = x1² − x2² = d/dγ (cos γ sin γ)                (term "tangential").

    Every term uses the first n_i points of one shared sample of γ, so terms with equal counts
    sit at the same points (what the per-point angles of Proposition 4 need).

    Parameters:
        derivative_labels: add the "d_x1" and "d_x2" terms (default True).
        tangential: add the "tangential" term (default False).
        angle_std: σ, the standard deviation of γ (default 1, as in the paper).

    Inputs (x1, x2), output (f,); :meth:`solution` is x1 x2 on all of R² (exact).
    Defaults follow the paper: width 200, 3 hidden layers (a 4-layer network), tanh, lr 1e-3.
    """

    name = "circle-product"
    description = "fit f = x1·x2 on the unit circle x = (cos γ, sin γ), with derivative labels"
    input_names = ("x1", "x2")
    output_names = ("f",)
    time_index = None
    exact = True

    def __init__(self, *, derivative_labels: bool = True, tangential: bool = False,
                 angle_std: float = 1.0):
        self.derivative_labels = check_bool(derivative_labels, "derivative_labels")
        self.tangential = check_bool(tangential, "tangential")
        self.angle_std = check_real(angle_std, "angle_std", positive=True)
        self._set_params(derivative_labels=self.derivative_labels, tangential=self.tangential,
                         angle_std=self.angle_std)
        self.domain = pinnk.Box((-1.0, -1.0), (1.0, 1.0))
        self.defaults = pinnk.Defaults(width=200, depth=3, activation="tanh", steps=40000, lr=1e-3,
                                       points={k: 64 for k in self._names()})

    def _names(self) -> list[str]:
        names = ["value"]
        if self.derivative_labels:
            names += ["d_x1", "d_x2"]
        if self.tangential:
            names.append("tangential")
        return names

    def sample(self, n: int, generator: torch.Generator | None = None,
               dtype: torch.dtype | None = None) -> torch.Tensor:
        """n points (cos γ, sin γ) with γ ~ N(0, σ²), shape (n, 2)."""
        gamma = self.angle_std * torch.randn(n, generator=generator, dtype=self._dtype(dtype))
        return torch.stack([torch.cos(gamma), torch.sin(gamma)], dim=-1)

    def terms(self, n=None, generator=None, dtype=None) -> list[pinnk.Term]:
        names = self._names()
        counts = self.counts(n, names)
        x = self.sample(max(counts.values()), generator, dtype)
        out = [pinnk.Term("value", ops.value(), _first(x, counts, "value"), _product)]
        if self.derivative_labels:
            out.append(pinnk.Term("d_x1", ops.partial([1, 0]), _first(x, counts, "d_x1"), _second))
            out.append(pinnk.Term("d_x2", ops.partial([0, 1]), _first(x, counts, "d_x2"),
                                  _first_coordinate))
        if self.tangential:
            out.append(pinnk.Term("tangential", ops.directional(rotation_field),
                                  _first(x, counts, "tangential"), _tangential_label))
        return out

    def solution(self, x: torch.Tensor) -> torch.Tensor:
        """f(x) = x1 x2, shape (n, 1)."""
        x = self.check_points(x)
        return _product(x).unsqueeze(-1)


# ------------------------------------------------------------------------------------- sin-cos
def _sin_cos(x: torch.Tensor) -> torch.Tensor:
    return torch.sin(x[:, 0]) * torch.cos(x[:, 1])


def _sin_cos_d1(x: torch.Tensor) -> torch.Tensor:
    return torch.cos(x[:, 0]) * torch.cos(x[:, 1])


def _sin_cos_d2(x: torch.Tensor) -> torch.Tensor:
    return -torch.sin(x[:, 0]) * torch.sin(x[:, 1])


class SinCos(ZooProblem):
    """Fit f(x) = sin(x1) cos(x2) on the box [−L, L]² (the batch-angle experiment, Fig. A2b).

    Terms: "value" (f at uniform points) and, with ``derivative_labels=True``,
    "d_x1" (∂f/∂x1 = cos x1 cos x2) and "d_x2" (∂f/∂x2 = −sin x1 sin x2) at the same points
    (terms with equal counts share points).

    Parameters:
        derivative_labels: add the derivative terms (default False).
        half_width: L > 0 (default π).

    Inputs (x1, x2), output (f,); the solution is exact.
    """

    name = "sin-cos"
    description = "fit f = sin(x1)·cos(x2) on [−π, π]² (batch-angle experiment)"
    input_names = ("x1", "x2")
    output_names = ("f",)
    time_index = None
    exact = True

    def __init__(self, *, derivative_labels: bool = False, half_width: float = math.pi):
        self.derivative_labels = check_bool(derivative_labels, "derivative_labels")
        self.half_width = check_real(half_width, "half_width", positive=True)
        self._set_params(derivative_labels=self.derivative_labels, half_width=self.half_width)
        L = self.half_width
        self.domain = pinnk.Box((-L, -L), (L, L))
        names = ["value"] + (["d_x1", "d_x2"] if self.derivative_labels else [])
        self.defaults = pinnk.Defaults(width=200, depth=3, activation="tanh", steps=20000, lr=1e-3,
                                       points={k: 256 for k in names})

    def terms(self, n=None, generator=None, dtype=None) -> list[pinnk.Term]:
        names = ["value"] + (["d_x1", "d_x2"] if self.derivative_labels else [])
        counts = self.counts(n, names)
        x = uniform(max(counts.values()), self.domain.lower, self.domain.upper, generator,
                    self._dtype(dtype))
        out = [pinnk.Term("value", ops.value(), _first(x, counts, "value"), _sin_cos)]
        if self.derivative_labels:
            out.append(pinnk.Term("d_x1", ops.partial([1, 0]), _first(x, counts, "d_x1"),
                                  _sin_cos_d1))
            out.append(pinnk.Term("d_x2", ops.partial([0, 1]), _first(x, counts, "d_x2"),
                                  _sin_cos_d2))
        return out

    def solution(self, x: torch.Tensor) -> torch.Tensor:
        """f(x) = sin(x1) cos(x2), shape (n, 1)."""
        x = self.check_points(x)
        return _sin_cos(x).unsqueeze(-1)


# ---------------------------------------------------------------------- jacobian-regularization
class _Target:
    """f(x) = sin(2π k x1) · x2 (a picklable callable x (n, 2) -> (n,))."""

    def __init__(self, frequency: float):
        self.frequency = frequency

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sin(2.0 * math.pi * self.frequency * x[:, 0]) * x[:, 1]


class JacobianRegularization(ZooProblem):
    """Regression of f(x) = sin(2π k x1)·x2 on [0, 1]² with Jacobian regularisation (eq. 20).

    Terms, all at the same points (for equal counts):

        "value":        f_θ(x) = f(x)
        "jacobian_x1":  ∂f_θ/∂x1 = 0         (ops.partial([1, 0]), target None)
        "jacobian_x2":  ∂f_θ/∂x2 = 0         (ops.partial([0, 1]), target None)

    The zero-derivative labels are a regulariser (Hoffman et al. 2019), not the derivative of the
    target: they pull against the value labels, which is exactly the conflict the paper studies.
    :meth:`solution` returns the regression target f (``exact=True`` in the sense that it is the
    target function; the minimiser of the regularised loss is not f).

    Parameters:
        frequency: k > 0 (default 1).
    """

    name = "jacobian-regularization"
    description = "regress f = sin(2πx1)·x2 on [0, 1]² with zero-derivative labels ∂f/∂x_k = 0"
    input_names = ("x1", "x2")
    output_names = ("f",)
    time_index = None
    exact = True

    def __init__(self, *, frequency: float = 1.0):
        self.frequency = check_real(frequency, "frequency", positive=True)
        self._set_params(frequency=self.frequency)
        self._target = _Target(self.frequency)
        self.domain = pinnk.Box((0.0, 0.0), (1.0, 1.0))
        self.defaults = pinnk.Defaults(width=100, depth=3, activation="tanh", steps=10000, lr=1e-3,
                                       points={k: 256 for k in self._names()})

    @staticmethod
    def _names() -> list[str]:
        return ["value", "jacobian_x1", "jacobian_x2"]

    def terms(self, n=None, generator=None, dtype=None) -> list[pinnk.Term]:
        counts = self.counts(n, self._names())
        x = uniform(max(counts.values()), self.domain.lower, self.domain.upper, generator,
                    self._dtype(dtype))
        out = [pinnk.Term("value", ops.value(), _first(x, counts, "value"), self._target)]
        for k in range(2):
            alpha = [0, 0]
            alpha[k] = 1
            name = f"jacobian_x{k + 1}"
            # a derivative label (a regulariser), not a PDE residual
            out.append(pinnk.Term(name, ops.partial(alpha), _first(x, counts, name), None,
                                  residual=False))
        return out

    def solution(self, x: torch.Tensor) -> torch.Tensor:
        """The regression target f(x) = sin(2π k x1)·x2, shape (n, 1)."""
        x = self.check_points(x)
        return self._target(x).unsqueeze(-1)
