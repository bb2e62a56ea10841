"""Shared machinery of the problem zoo: parameter checks, point sampling and a periodic operator.

Everything here is private to :mod:`problems`; the public contract is :class:`pinnk.Problem`.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

import pinnk
from pinnk import ops

__all__ = [
    "ParameterError", "ZooProblem", "Periodic", "check_real", "check_positive_int", "check_bool",
    "check_state", "resolve_dtype", "uniform", "with_column", "two_sided", "to_tensor",
]


class ParameterError(TypeError, ValueError):
    """An unknown parameter name for a problem.

    It is both a :class:`TypeError` (what Python raises for an unexpected keyword argument) and a
    :class:`ValueError` (what a command line reports as a bad option), so callers may catch either.
    """


# ------------------------------------------------------------------------------ parameter checks
# The largest magnitude a problem parameter may have by default: squared or multiplied by π² in
# the equations, a larger value overflows (a float, or the float32 loss) before training starts.
MAX_MAGNITUDE = 1e6


def check_real(value: Any, name: str, *, positive: bool = False, nonzero: bool = False,
               minimum: float | None = None, maximum: float | None = None,
               open_minimum: bool = False, magnitude: float | None = MAX_MAGNITUDE) -> float:
    """Return ``value`` as a finite float or raise a TypeError/ValueError naming ``name``.

    Args:
        positive: require ``value > 0``.
        nonzero: require ``value != 0``.
        minimum, maximum: inclusive bounds (``minimum`` exclusive with ``open_minimum=True``).
        magnitude: require ``|value| <= magnitude`` (default :data:`MAX_MAGNITUDE`; None: any
            finite value).
    """
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value.item()
    if isinstance(value, torch.Tensor) and value.ndim == 0 and not value.dtype.is_complex:
        value = value.item()
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: expected a real number, got {type(value).__name__}")
    v = float(value)
    if not math.isfinite(v):
        raise ValueError(f"{name}: expected a finite number, got {v!r}")
    if magnitude is not None and abs(v) > magnitude:
        raise ValueError(f"{name}: expected a number of magnitude <= {magnitude:g}, got {v!r} "
                         f"(a larger value overflows the equations or the float32 loss)")
    if positive and v <= 0.0:
        raise ValueError(f"{name}: expected a positive number, got {v!r}")
    if nonzero and v == 0.0:
        raise ValueError(f"{name}: expected a non-zero number, got {v!r}")
    if minimum is not None and (v <= minimum if open_minimum else v < minimum):
        rel = ">" if open_minimum else ">="
        raise ValueError(f"{name}: expected a number {rel} {minimum!r}, got {v!r}")
    if maximum is not None and v > maximum:
        raise ValueError(f"{name}: expected a number <= {maximum!r}, got {v!r}")
    return v


def check_positive_int(value: Any, name: str, *, maximum: int | None = None) -> int:
    """Return ``value`` as an int >= 1 (and <= ``maximum``) or raise a TypeError/ValueError
    naming ``name``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name}: expected a positive integer, got {type(value).__name__}")
    if int(value) < 1:
        raise ValueError(f"{name}: expected a positive integer, got {int(value)}")
    if maximum is not None and int(value) > maximum:
        raise ValueError(f"{name}: expected a positive integer <= {maximum}, got {int(value)}")
    return int(value)


def check_bool(value: Any, name: str) -> bool:
    """Return ``value`` as a bool (only True/False are accepted) or raise a TypeError."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name}: expected True or False, got {type(value).__name__}")
    return bool(value)


def check_state(value: Any, name: str) -> tuple[float, float, float]:
    """Validate a primitive gas state ``(rho, u, p)`` with ``rho > 0`` and ``p > 0``.

    Returns the state as a tuple of three floats; the messages name ``name`` ("left"/"right").
    """
    if isinstance(value, (str, bytes)) or not isinstance(value, (Sequence, np.ndarray,
                                                                 torch.Tensor)):
        raise TypeError(f"{name}: expected a sequence (rho, u, p) of three real numbers, got "
                        f"{type(value).__name__}")
    items = list(np.asarray(value).ravel()) if isinstance(value, (np.ndarray, torch.Tensor)) \
        else list(value)
    if len(items) != 3:
        raise ValueError(f"{name}: expected three entries (rho, u, p), got {len(items)}")
    rho = check_real(items[0], f"{name} density")
    u = check_real(items[1], f"{name} velocity")
    p = check_real(items[2], f"{name} pressure")
    if rho <= 0.0:
        raise ValueError(f"{name}: density must be > 0, got {rho!r}")
    if p <= 0.0:
        raise ValueError(f"{name}: pressure must be > 0, got {p!r}")
    return rho, u, p


# ------------------------------------------------------------------------------------ sampling
def resolve_dtype(dtype: torch.dtype | None) -> torch.dtype:
    """``dtype`` or torch's default dtype; must be a floating dtype."""
    if dtype is None:
        return torch.get_default_dtype()
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(f"dtype: expected a floating torch.dtype, got {dtype!r}")
    return dtype


def uniform(n: int, lower: Sequence[float], upper: Sequence[float],
            generator: torch.Generator | None, dtype: torch.dtype) -> torch.Tensor:
    """n points uniform in the box Π_k [lower_k, upper_k], shape (n, d), dtype ``dtype``."""
    lo = torch.tensor([float(v) for v in lower], dtype=dtype)
    hi = torch.tensor([float(v) for v in upper], dtype=dtype)
    return lo + (hi - lo) * torch.rand(n, len(lower), generator=generator, dtype=dtype)


def with_column(x: torch.Tensor, k: int, value: float | torch.Tensor) -> torch.Tensor:
    """A copy of ``x`` (n, d) with column k set to ``value`` (a float or a tensor (n,))."""
    cols = list(x.unbind(dim=1))
    cols[k] = torch.as_tensor(value, dtype=x.dtype).expand(x.shape[0]).clone()
    return torch.stack(cols, dim=1)


def two_sided(x: torch.Tensor, k: int, low: float, high: float) -> torch.Tensor:
    """Put alternate rows of ``x`` (n, d) on the faces x_k = low (even rows) and x_k = high (odd
    rows): a boundary sample balanced between both ends of coordinate k."""
    side = (torch.arange(x.shape[0]) % 2).to(x.dtype)
    return with_column(x, k, low + (high - low) * side)


def to_tensor(values: np.ndarray | Sequence[np.ndarray], like: torch.Tensor) -> torch.Tensor:
    """numpy array(s) of shape (n,) -> a tensor (n,) or (n, k) with the dtype and device of
    ``like``."""
    if isinstance(values, np.ndarray):
        return torch.as_tensor(values, dtype=like.dtype, device=like.device)
    cols = [torch.as_tensor(np.asarray(v), dtype=like.dtype, device=like.device) for v in values]
    return torch.stack(cols, dim=-1)


# ----------------------------------------------------------------------------- periodic operator
class Periodic(ops.Operator):
    """The periodicity defect (D g)(x) − (D g)(x + P e_k) of an inner operator D.

    With a Term on points of the face x_k = lower_k and target zero this imposes the periodic
    boundary condition D u(lower) = D u(lower + P) (e.g. D = value: u(0, t) = u(2π, t)). The
    inner operator is applied twice to the same function, at the points and at the shifted
    points, so the operator composes with ``torch.func`` (``vmap``/``jacrev``/``jvp``) like any
    other; it is nonlinear from the kernel's point of view only in that the structured path does
    not know it (the ``"jacobian"`` path takes it).

    Args:
        inner: the operator D (default: the value of output 0).
        dim: the periodic coordinate k.
        period: the period P > 0.

    ``apply(f, x)`` takes x (n, d) and returns (n,).
    """

    linear = False

    def __init__(self, inner: ops.Operator | None = None, dim: int = 0, period: float = 1.0):
        inner = ops.value() if inner is None else inner
        if not isinstance(inner, ops.Operator):
            raise TypeError(f"inner: expected a pinnk operator, got {type(inner).__name__}")
        if isinstance(dim, bool) or not isinstance(dim, numbers.Integral) or dim < 0:
            raise ValueError(f"dim: expected a coordinate index >= 0, got {dim!r}")
        self.inner = inner
        self.dim = int(dim)
        self.period = check_real(period, "period", positive=True)

    @property
    def order(self) -> int:
        return self.inner.order

    def _shift(self, x: torch.Tensor) -> torch.Tensor:
        d = x.shape[1]
        if self.dim >= d:
            raise ValueError(f"dim: coordinate {self.dim} out of range for points of dimension {d}")
        return torch.tensor([self.period if k == self.dim else 0.0 for k in range(d)],
                            dtype=x.dtype, device=x.device)

    def apply(self, f: Callable, x: torch.Tensor) -> torch.Tensor:
        return self.inner.apply(f, x) - self.inner.apply(f, x + self._shift(x))

    def parts(self, x: torch.Tensor) -> list:
        """D g(x) − D g(x + P e_k) as two parts: the structured kernel path takes it."""
        return [(1.0, self.inner, x), (-1.0, self.inner, x + self._shift(x))]

    def inner_operators(self) -> list:
        return [self.inner, self.inner]

    def __repr__(self) -> str:
        return f"Periodic[{self.inner!r}](x{self.dim} | x{self.dim} + {self.period:g})"


# ---------------------------------------------------------------------------------- base class
class ZooProblem(pinnk.Problem):
    """Common base of the zoo problems: a one-line ``description`` and stored parameters.

    Subclasses validate their keyword-only constructor arguments and call :meth:`_set_params`;
    :attr:`params` returns a copy of them. The registry reads the accepted parameter names and
    their defaults from the constructor signature.
    """

    description: str = ""

    def _set_params(self, **params: Any) -> None:
        self._params = dict(params)

    @property
    def params(self) -> dict:
        """The problem's parameters, name -> value (a copy)."""
        return dict(getattr(self, "_params", {}))

    def term_names(self) -> list[str]:
        """The names of the terms :meth:`terms` returns, in order (without sampling: the keys of
        :attr:`defaults.points`, which every zoo problem lists in term order)."""
        return list(self.defaults.points)

    def _dtype(self, dtype: torch.dtype | None) -> torch.dtype:
        return resolve_dtype(dtype)
