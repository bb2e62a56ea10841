"""Loss terms: an operator matched to labels at points."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from ._operators import Operator
from ._validation import as_points, as_tensor_arg, first_nonfinite

Target = torch.Tensor | Callable[[torch.Tensor], torch.Tensor] | None


class Term:
    """A derivative-label term r(θ) = D f_θ(X) − y.

    Args:
        name: a unique, non-empty name (used by kernels, weights and reports).
        operator: a :mod:`pinnk.ops` operator D.
        points: the points X, shape (n, d), floating, finite.
        target: the labels y: a tensor (n,), a callable ``x -> (n,)``, or ``None`` for zero (a PDE
            residual).
        residual: whether the term is a PDE residual (used by GradNorm and causal weighting);
            default: a derivative operator with a zero target. Pass True for a forced residual
            (D f = g) and False for a derivative boundary or initial condition.

    The loss of a term is ‖r‖² / (2n) (design.md §1); the total loss is Σ_i λ_i ‖r_i‖² / (2 n_i).
    """

    def __init__(self, name: str, operator: Operator, points: Any, target: Target = None, *,
                 residual: bool | None = None):
        if not isinstance(name, str) or not name:
            raise TypeError(f"name: expected a non-empty string, got {name!r}")
        if not isinstance(operator, Operator):
            raise TypeError(f"operator: expected a pinnk.ops operator, got "
                            f"{type(operator).__name__}")
        self.name = name
        self.operator = operator
        self.points = as_points(points, "points")
        # Directions and coefficient fields are checked once here, at every point (lengths, NaN,
        # a direction field that vanishes everywhere), not at every evaluation.
        operator.check_fields(self.points)
        self._target = self._check_target(target)
        if residual is not None and not isinstance(residual, bool):
            raise TypeError(f"residual: expected True, False or None, got {residual!r}")
        self._residual = residual

    def _check_target(self, target: Target) -> Target:
        n = self.points.shape[0]
        if target is None:
            return target
        if callable(target) and not isinstance(target, torch.Tensor):
            self._callable_values(target, self.points)  # checked once, at the term's points
            return target
        t = as_tensor_arg(target, "target", "a tensor of shape (n,), a callable x -> (n,) or "
                          "None", dtype=self.points.dtype)
        if t.ndim == 2 and t.shape[1] == 1:
            t = t[:, 0]
        if tuple(t.shape) != (n,):
            raise ValueError(f"target: expected shape ({n},) to match points, got {tuple(t.shape)}")
        bad = first_nonfinite(t)
        if bad is not None:
            raise ValueError(f"target: contains NaN or Inf (first at row {bad})")
        return t.to(device=self.points.device)

    @property
    def n(self) -> int:
        """The number of points n."""
        return self.points.shape[0]

    @property
    def order(self) -> int:
        """The derivative order of the operator (0 for a value term)."""
        return self.operator.order

    @property
    def is_residual(self) -> bool:
        """True for a PDE residual: as declared, else a derivative operator with a zero target."""
        if self._residual is not None:
            return self._residual
        return self._target is None and self.operator.order > 0

    @property
    def has_point_labels(self) -> bool:
        """True when the labels are a tensor given at the term's points (not zero, not a
        callable of x): they cannot be moved to other points."""
        return isinstance(self._target, torch.Tensor)

    @property
    def is_derivative(self) -> bool:
        """True when the operator differentiates f (a derivative label or a residual)."""
        return self.operator.order > 0

    def target_values(self, x: torch.Tensor | None = None) -> torch.Tensor | None:
        """The labels y at the term's points (or at ``x``), shape (n,), or None for zero."""
        return _target_at(self._target, self.points if x is None else x)

    @staticmethod
    def _callable_values(target: Callable, x: torch.Tensor) -> torch.Tensor:
        v = _target_at(target, x)
        bad = first_nonfinite(v)
        if bad is not None:
            raise ValueError(f"target: the callable {getattr(target, '__name__', 'y')!r} "
                             f"returned NaN or Inf at row {bad} of the points")
        return v

    def residual(self, model: Callable, points: torch.Tensor | None = None, *,
                 check: bool = True) -> torch.Tensor:
        """r = D f(X) − y, shape (n,), differentiable in the model's parameters.

        The points are moved to the dtype and device of the model's parameters when it has any.
        With ``check`` (the default) a NaN or Inf in r raises a ValueError naming its cause (the
        target, a parameter of the model, a field, a residual function); the trainer passes
        False and checks its losses once per step instead.
        """
        x = self.points if points is None else as_points(points, "points")
        p = next(iter(model.parameters()), None) if isinstance(model, torch.nn.Module) else None
        if p is not None and (x.dtype != p.dtype or x.device != p.device):
            x = x.to(dtype=p.dtype, device=p.device)
        if points is not None and check:
            self.operator.check_fields(x)
        r = self.operator.unchecked(model, x, "points")
        y = self.target_values(x)
        out = r if y is None else r - y
        if check:
            bad = first_nonfinite(out)
            if bad is not None:
                if y is not None and first_nonfinite(y) is not None:
                    raise ValueError(f"target: the callable returned NaN or Inf at row "
                                     f"{first_nonfinite(y)} of the points")
                raise self.operator.nonfinite_error(model, x, bad, "points")
        return out

    def loss(self, model: Callable) -> torch.Tensor:
        """The mean loss ‖r‖² / (2n) (a scalar tensor)."""
        r = self.residual(model, check=False)  # a diverging loss is the caller's to read
        return 0.5 * (r * r).mean()

    def with_points(self, points: Any, target: Target = ...) -> "Term":
        """A copy of this term at new points (the callable target, if any, is kept)."""
        if target is ...:
            target = self._target if not isinstance(self._target, torch.Tensor) else None
            if isinstance(self._target, torch.Tensor):
                raise ValueError("target: this term has tensor labels; pass target= for the new "
                                 "points")
        return Term(self.name, self.operator, points, target, residual=self._residual)

    def to(self, device=None, dtype=None) -> "Term":
        """A copy with points (and tensor labels) moved to ``device``/``dtype``."""
        new = object.__new__(Term)
        new.name, new.operator, new._residual = self.name, self.operator, self._residual
        new.points = self.points.to(device=device, dtype=dtype or self.points.dtype)
        t = self._target
        new._target = t.to(device=device, dtype=dtype or t.dtype) if isinstance(t, torch.Tensor) else t
        return new

    def __repr__(self) -> str:
        tgt = "0" if self._target is None else ("y" if isinstance(self._target, torch.Tensor)
                                                else "y(x)")
        return f"Term({self.name!r}: {self.operator!r} = {tgt}, n={self.n})"


def _target_at(t: Target, x: torch.Tensor) -> torch.Tensor | None:
    """The labels ``t`` (None, a tensor or a callable) at the points ``x``, shape (n,)."""
    if t is None:
        return None
    if isinstance(t, torch.Tensor):
        return t.to(dtype=x.dtype, device=x.device)
    v = torch.as_tensor(t(x), dtype=x.dtype, device=x.device)
    if v.ndim == 2 and v.shape[1] == 1:
        v = v[:, 0]
    if tuple(v.shape) != (x.shape[0],):
        raise ValueError(f"target: callable must return shape ({x.shape[0]},), got "
                         f"{tuple(v.shape)}")
    return v


def check_terms(terms) -> list:
    """A non-empty list of :class:`Term` (a single term is wrapped), or a ValueError/TypeError."""
    from collections.abc import Sequence

    if isinstance(terms, Term):
        return [terms]
    if not isinstance(terms, Sequence) or not terms:
        raise ValueError("terms: expected a non-empty list of pinnk.Term")
    for k, t in enumerate(terms):
        if not isinstance(t, Term):
            raise TypeError(f"terms[{k}]: expected a pinnk.Term, got {type(t).__name__}")
    return list(terms)
