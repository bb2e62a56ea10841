"""Derivative-label operators: exact, composable, built on ``torch.func`` forward mode.

Every operator maps ``(model, x)`` with ``x`` of shape (n, d) to a tensor of shape (n,). The
derivatives in ``x`` are taken with nested :func:`torch.func.jvp`, so an operator composes with
``vmap``/``jacrev`` over parameters (the ``"jacobian"`` kernel path) and with ordinary reverse-mode
autograd over parameters (training).
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch.func import jvp

from ._jets import JetPlan
from ._validation import (check_finite_parameters, check_float, check_int, check_model_input,
                          first_nonfinite, input_error)

Field = Callable[[torch.Tensor], torch.Tensor]
ModelFn = Callable[[torch.Tensor], torch.Tensor]

__all__ = [
    "Operator", "Linear", "Residual", "value", "directional", "partial", "laplacian",
    "transport", "divergence", "residual",
]


def _output_2d(f: ModelFn) -> ModelFn:
    """Wrap a model so its output is always (n, out)."""
    def g(y: torch.Tensor) -> torch.Tensor:
        out = f(y)
        if out.ndim == 1:
            out = out.unsqueeze(-1)
        if out.ndim != 2:
            raise ValueError(f"model: expected an output of shape (n, out), got {tuple(out.shape)}")
        return out
    return g


# ----------------------------------------------------------------------------------- directions
@dataclass(frozen=True, eq=False)
class _Direction:
    """A direction h: a unit vector e_k, a constant vector (d,), or a field x -> (n, d)."""

    index: int | None = None
    vector: torch.Tensor | None = None
    field: Field | None = None
    expected_dim: int | None = None  # for multi-indices: the d the index was written for
    arg: str = "alpha"  # the argument that gave expected_dim, for messages

    @property
    def key(self) -> tuple:
        if self.index is not None:
            return ("e", self.index)
        if self.vector is not None:
            return ("c",) + tuple(float(v) for v in self.vector)
        return ("f", id(self.field))

    def evaluate(self, x: torch.Tensor) -> torch.Tensor:
        """Return the direction at the points ``x`` (n, d) as a tensor (n, d) like ``x``."""
        n, d = x.shape
        if self.index is not None:
            if self.expected_dim is not None and self.expected_dim != d:
                what = "multi-index" if self.arg == "alpha" else "sequence"
                raise ValueError(f"{self.arg}: {what} of length {self.expected_dim} for points "
                                 f"of dimension {d} (one entry per input coordinate)")
            if self.index >= d:
                raise ValueError(f"dims: coordinate index {self.index} out of range for points of "
                                 f"dimension {d}")
            h = torch.zeros(d, dtype=x.dtype, device=x.device)
            h[self.index] = 1.0
            return h.expand(n, d)
        if self.vector is not None:
            if self.vector.shape[0] != d:
                raise ValueError(f"h: direction of length {self.vector.shape[0]} for points of "
                                 f"dimension {d}")
            return self.vector.to(dtype=x.dtype, device=x.device).expand(n, d)
        h = self.field(x)
        if not isinstance(h, torch.Tensor) or tuple(h.shape) != (n, d):
            shape = tuple(h.shape) if isinstance(h, torch.Tensor) else type(h).__name__
            raise ValueError(f"h: direction field must return a tensor of shape ({n}, {d}), got "
                             f"{shape}")
        return h.to(dtype=x.dtype)

    def check(self, x: torch.Tensor) -> None:
        """Evaluate the direction at every point of ``x`` (n, d) and raise a ValueError naming
        ``h`` for a wrong length, a NaN/Inf, or a field that is zero at every point."""
        h = self.evaluate(x)
        if self.field is None:
            return
        name = self.describe()
        bad = first_nonfinite(h)
        if bad is not None:
            raise ValueError(f"h: the direction field {name!r} returned NaN or Inf at row {bad} "
                             f"of the points")
        if not bool((h != 0).any()):
            raise ValueError(f"h: the direction field {name!r} is zero at every point; a "
                             f"derivative along it is zero")

    def describe(self) -> str:
        if self.index is not None:
            return f"x{self.index}"
        if self.vector is not None:
            return "h"
        return getattr(self.field, "__name__", "h(x)")


def _make_direction(h: Any) -> _Direction:
    if isinstance(h, _Direction):
        return h
    if callable(h) and not isinstance(h, torch.Tensor):
        return _Direction(field=h)
    try:
        v = torch.as_tensor(h)
    except Exception as exc:  # noqa: BLE001
        raise TypeError(f"h: expected a vector of shape (d,) or a callable x -> (n, d), got "
                        f"{type(h).__name__}") from exc
    if not v.is_floating_point():
        v = v.to(torch.get_default_dtype())
    if v.ndim != 1 or v.shape[0] == 0:
        raise ValueError(f"h: expected a vector of shape (d,), got shape {tuple(v.shape)}")
    if not bool(torch.isfinite(v).all()):
        raise ValueError("h: direction contains NaN or Inf")
    if float(v.norm()) == 0.0:
        raise ValueError("h: direction has zero norm")
    return _Direction(vector=v.detach().clone())


# --------------------------------------------------------------------------------- coefficients
@dataclass(frozen=True)
class _Coefficient:
    """A coefficient ``scale * Π fields(x)`` with fields x -> (n,)."""

    scale: float = 1.0
    fields: tuple = ()

    def times(self, other: "_Coefficient") -> "_Coefficient":
        return _Coefficient(self.scale * other.scale, self.fields + other.fields)

    def evaluate(self, x: torch.Tensor) -> torch.Tensor | float:
        """Return the coefficient at ``x``: a float, or a tensor (n,) when fields are present."""
        if not self.fields:
            return self.scale
        out = None
        for g in self.fields:
            v = g(x)
            if not isinstance(v, torch.Tensor):
                v = torch.as_tensor(v, dtype=x.dtype, device=x.device)
            if v.ndim == 2 and v.shape[1] == 1:
                v = v[:, 0]
            if tuple(v.shape) != (x.shape[0],):
                raise ValueError(f"coefficient field must return a tensor of shape ({x.shape[0]},), "
                                 f"got {tuple(v.shape)}")
            out = v if out is None else out * v
        return self.scale * out

    def check(self, x: torch.Tensor) -> None:
        """Evaluate the coefficient fields at ``x`` (n, d); raise a ValueError naming the
        coefficient when one returns a wrong shape, NaN or Inf."""
        for g in self.fields:
            v = _Coefficient(1.0, (g,)).evaluate(x)
            bad = first_nonfinite(v)
            if bad is not None:
                raise ValueError(f"coefficient: the field {getattr(g, '__name__', 'g')!r} "
                                 f"returned NaN or Inf at row {bad} of the points")

    def describe(self) -> str:
        parts = [] if self.scale == 1.0 and self.fields else [f"{self.scale:g}"]
        parts += [getattr(g, "__name__", "g") + "(x)" for g in self.fields]
        return "·".join(parts)


@dataclass(frozen=True)
class _Monomial:
    """coef(x) · ∂_{h_1} ... ∂_{h_k} f_component(x)."""

    coef: _Coefficient
    component: int
    directions: tuple  # of _Direction

    @property
    def order(self) -> int:
        return len(self.directions)


def _nested_jvp(f: ModelFn, x: torch.Tensor, tangents: Sequence[torch.Tensor]) -> torch.Tensor:
    """f^{(k)}(x)[t_1, ..., t_k] for a row-wise model f, shape (n, out), by nested forward mode."""
    g = f
    for t in tangents:
        g = (lambda inner, tt: (lambda y: jvp(inner, (y,), (tt,))[1]))(g, t)
    return g(x)


class _JvpEvaluator:
    """Derivatives of a row-wise function by nested forward mode, one pass per direction tuple
    (cached, so an operator tree that asks twice computes once). Composes with torch.func."""

    def __init__(self, f: ModelFn, x: torch.Tensor):
        self.function = f
        self.f = _output_2d(f)
        self.x = x
        self._cache: dict = {}

    def derivative(self, directions: tuple) -> torch.Tensor:
        """f^{(k)}(x)[h_1, ..., h_k] for the given directions, shape (n, out)."""
        key = tuple(h.key for h in directions)
        if key not in self._cache:
            tangents = [h.evaluate(self.x) for h in directions]
            self._cache[key] = _nested_jvp(self.f, self.x, tangents)
        return self._cache[key]


class _JetEvaluator:
    """All derivatives an operator needs, of any order, from one Taylor-mode pass of a model
    with a ``jets`` method (:meth:`pinnk.MLP.jets`): cheaper than one nested jvp per
    derivative. Differentiable in the parameters (training)."""

    def __init__(self, model, x: torch.Tensor, keys: list):
        self.function = model
        self.x = x
        self.plan, U = jet_plan(keys, x)
        self._series = model.jets(x, U, self.plan.family)

    def derivative(self, directions: tuple) -> torch.Tensor:
        return self.plan.derivative(self._series, tuple(h.key for h in directions))


def jet_plan(keys: list, x: torch.Tensor) -> tuple:
    """The :class:`JetPlan` of derivative requests (tuples of directions) and the directions
    evaluated at the points ``x`` (each (n, d)), in the plan's order."""
    dirs: dict = {}
    for tup in keys:
        for h in tup:
            dirs.setdefault(h.key, h)
    plan = JetPlan(tuple(h.key for h in tup) for tup in keys)
    return plan, [dirs[k].evaluate(x) for k in plan.keys]


def _evaluator(model: Callable, x: torch.Tensor, op: "Operator"):
    """The Taylor-mode evaluator when ``model`` has jets (any order), else nested jvp."""
    if callable(getattr(model, "jets", None)):
        return _JetEvaluator(model, x, op.derivative_keys(x.shape[1]))
    return _JvpEvaluator(model, x)


def _check_component(out: torch.Tensor, component: int) -> None:
    if component >= out.shape[-1]:
        raise ValueError(f"component: {component} is out of range for a model with "
                         f"{out.shape[-1]} output(s)")


def check_smoothness(model: Callable, op: "Operator", name: str = "model") -> None:
    """Raise when ``op`` differentiates a model whose activation is not smooth enough."""
    max_order = getattr(model, "max_derivative_order", None)
    if max_order is not None and op.order > max_order:
        raise ValueError(f"{name}: activation {getattr(model, 'activation_name', '?')!r} is not "
                         f"differentiable {op.order} time(s); derivative terms need a smooth "
                         f"activation (tanh, sin, gelu, softplus, erf)")


# ------------------------------------------------------------------------------------ operators
class Operator:
    """An operator D applied to the network output: ``op(model, x) -> (n,)``.

    Operators support linear arithmetic (``+``, ``-``, ``c * op``, ``g * op`` with a field
    ``g: x -> (n,)``). Subclasses implement :meth:`apply` on a plain function f: (n, d) -> (n, out).
    """

    #: whether the operator is linear in f
    linear: bool = False
    #: trailing columns of the points that are not inputs of the model (data an operator reads
    #: besides the coordinates, e.g. which output a row labels); the input checks ignore them
    extra_columns: int = 0

    @property
    def order(self) -> int:
        """The highest derivative order of f that the operator uses."""
        raise NotImplementedError

    def apply(self, f: ModelFn, x: torch.Tensor) -> torch.Tensor:
        """Evaluate on a row-wise function ``f`` at ``x`` (n, d) by nested forward mode (composes
        with ``torch.func`` transforms over parameters); returns (n,)."""
        return self.evaluate(_JvpEvaluator(f, x), x)

    def evaluate(self, ev, x: torch.Tensor) -> torch.Tensor:
        """Evaluate with a derivative provider ``ev`` (``ev.derivative(directions) -> (n, out)``,
        ``ev.function`` the model as a function). A custom operator may implement either this or
        :meth:`apply`; the default calls :meth:`apply` on ``ev.function``."""
        if type(self).apply is Operator.apply:
            raise NotImplementedError(f"{type(self).__name__} must implement apply(f, x) or "
                                      f"evaluate(ev, x)")
        return self.apply(ev.function, x)

    def derivative_keys(self, d: int) -> list:
        """The direction tuples of the derivatives the operator reads through ``ev`` (inputs of
        dimension d); a custom operator that evaluates the function itself reads none."""
        return []

    def parts(self, x: torch.Tensor) -> list | None:
        """For an operator that combines other operators evaluated at other points — D f(x) =
        Σ_k c_k (D_k f)(y_k(x)), e.g. a periodicity defect f(x) − f(x + P e_k) — the list of
        (c_k, D_k, y_k) with c_k a float and y_k (n, d), one row per point x; None otherwise.
        The structured kernel path reads it (the kernel of such a term is the same combination
        of the parts' features; parts that share one operator object D_k are computed in one
        pass over all their points, so a quadrature of many nodes stays cheap). An operator
        that defines it also lists the D_k in :meth:`inner_operators`, one per part."""
        return None

    def inner_operators(self) -> list:
        """The operators D_k that :meth:`parts` combines, one per part (empty for other
        operators)."""
        return []

    def __call__(self, model: Callable, x: torch.Tensor) -> torch.Tensor:
        """Evaluate D f_model at ``x`` (n, d); returns a tensor (n,) with the dtype of the output.

        Raises a ValueError naming the cause when the result holds a NaN or Inf (the points, a
        parameter of the model, a direction or coefficient field, a residual function).
        """
        if not isinstance(x, torch.Tensor) or x.ndim != 2:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"x: expected a tensor of shape (n, d), got {shape}")
        self.check_fields(x)
        out = self.unchecked(model, x, "x")
        bad = first_nonfinite(out)
        if bad is not None:
            raise self.nonfinite_error(model, x, bad, "x")
        return out

    def unchecked(self, model: Callable, x: torch.Tensor, name: str = "x") -> torch.Tensor:
        """D f_model at ``x`` (n, d) without the checks of the result (for the training loop,
        which checks its losses once per step); a model that cannot take points of this
        dimension still raises a ValueError naming ``name``."""
        check_smoothness(model, self)
        check_model_input(model, x[:, :x.shape[1] - self.extra_columns], name)
        try:
            return self.evaluate(_evaluator(model, x, self), x)
        except RuntimeError as exc:
            err = input_error(model, x, exc, name)
            if err is exc:
                raise
            raise err from None

    def check_fields(self, x: torch.Tensor) -> None:
        """Check the operator's directions and coefficient fields at the points ``x`` (n, d):
        lengths that fit d, no NaN/Inf, no direction field that is zero everywhere. Called once
        per set of points (by :class:`pinnk.Term`), not per evaluation."""

    def nonfinite_error(self, model: Callable, x: torch.Tensor, row: int,
                        name: str = "x") -> ValueError:
        """The ValueError for a result that is NaN/Inf at ``row``, naming its cause: the points,
        a parameter of the model, a field, a residual function, else the model's output."""
        bad = first_nonfinite(x)
        if bad is not None:
            return ValueError(f"{name}: contains NaN or Inf (first at row {bad})")
        if isinstance(model, torch.nn.Module):
            try:
                check_finite_parameters(model)
            except ValueError as exc:
                return exc
        try:
            self.check_fields(x)
        except ValueError as exc:
            return exc
        blame = _blame_residual(self, model, x)
        if blame is not None:
            return ValueError(blame)
        return ValueError(f"model: the output or its derivatives are NaN or Inf at row {row} of "
                          f"{name} (x = {x[row].tolist()})")

    # arithmetic ------------------------------------------------------------------------------
    def __add__(self, other: "Operator") -> "Operator":
        if not isinstance(other, Operator):
            return NotImplemented
        if self.linear and other.linear:
            return Linear(self.monomials_raw() + other.monomials_raw())
        return Residual(lambda x, a, b: a + b, {"a": self, "b": other}, label=f"({self} + {other})")

    def __sub__(self, other: "Operator") -> "Operator":
        if not isinstance(other, Operator):
            return NotImplemented
        return self + (-1.0) * other

    def __neg__(self) -> "Operator":
        return (-1.0) * self

    def __rmul__(self, c: Any) -> "Operator":
        if isinstance(c, bool):
            raise TypeError("coefficient: expected a float or a callable x -> (n,), got bool")
        if isinstance(c, numbers.Real) or isinstance(c, torch.Tensor) and c.ndim == 0:
            coef = _Coefficient(check_float(float(c), "coefficient"))
        elif callable(c) and not isinstance(c, (Operator, torch.Tensor)):
            coef = _Coefficient(1.0, (c,))
        else:
            raise TypeError(f"coefficient: expected a float or a callable x -> (n,), got "
                            f"{type(c).__name__}")
        return self._scaled(coef)

    __mul__ = __rmul__

    def _scaled(self, coef: _Coefficient) -> "Operator":
        def scaled(x, a):
            c = coef.evaluate(x)
            return c * a
        out = Residual(scaled, {"a": self}, label=f"{coef.describe()}·{self}")
        out.coefficients = (coef,)
        return out

    def monomials_raw(self) -> list:
        raise TypeError(f"{self!r} is not a linear operator")


@dataclass(frozen=True)
class _Laplacian:
    """Placeholder expanded into Σ_k ∂²_{x_k} once the input dimension is known."""

    coef: _Coefficient
    component: int
    dims: tuple | None

    def expand(self, d: int) -> list:
        dims = range(d) if self.dims is None else self.dims
        out = []
        for k in dims:
            if k >= d:
                raise ValueError(f"dims: coordinate index {k} out of range for points of "
                                 f"dimension {d}")
            e = _Direction(index=k)
            out.append(_Monomial(self.coef, self.component, (e, e)))
        return out


class Linear(Operator):
    """A linear operator Σ_m c_m(x) ∂_{h_m1} ··· ∂_{h_mk} f_{c_m}: a sum of monomials.

    Built by :func:`value`, :func:`directional`, :func:`partial`, :func:`laplacian`,
    :func:`transport` and their linear combinations; the structured kernel path reads its
    monomials (:meth:`monomials`).
    """

    linear = True

    def __init__(self, parts: Sequence):
        self._parts = tuple(parts)

    def monomials_raw(self) -> list:
        return list(self._parts)

    def monomials(self, d: int) -> list:
        """The monomials for inputs of dimension ``d`` (the Laplacian expanded)."""
        out = []
        for p in self._parts:
            out.extend(p.expand(d) if isinstance(p, _Laplacian) else [p])
        return out

    @property
    def order(self) -> int:
        return max((2 if isinstance(p, _Laplacian) else p.order) for p in self._parts)

    def _scaled(self, coef: _Coefficient) -> "Operator":
        parts = []
        for p in self._parts:
            if isinstance(p, _Laplacian):
                parts.append(_Laplacian(coef.times(p.coef), p.component, p.dims))
            else:
                parts.append(_Monomial(coef.times(p.coef), p.component, p.directions))
        return Linear(parts)

    def derivative_keys(self, d: int) -> list:
        return [m.directions for m in self.monomials(d)]

    def check_fields(self, x: torch.Tensor) -> None:
        seen = set()
        for m in self.monomials(x.shape[1]):
            for h in m.directions:
                if h.key not in seen:
                    seen.add(h.key)
                    h.check(x)
            m.coef.check(x)

    def evaluate(self, ev, x: torch.Tensor) -> torch.Tensor:
        groups: dict = {}
        for m in self.monomials(x.shape[1]):
            groups.setdefault(tuple(h.key for h in m.directions), []).append(m)
        total = None
        for monos in groups.values():
            out = ev.derivative(monos[0].directions)
            for m in monos:
                _check_component(out, m.component)
                c = m.coef.evaluate(x)
                term = out[:, m.component] if (isinstance(c, float) and c == 1.0) \
                    else c * out[:, m.component]
                total = term if total is None else total + term
        return total

    def __repr__(self) -> str:
        parts = []
        for p in self._parts:
            if isinstance(p, _Laplacian):
                s = f"Δf{p.component}"
                c = p.coef
            else:
                s = "".join(f"∂{h.describe()}" for h in p.directions) + f"f{p.component}"
                c = p.coef
            if not (c.scale == 1.0 and not c.fields):
                s = f"{c.describe()}·{s}"
            parts.append(s)
        return " + ".join(parts)


class Residual(Operator):
    """A (possibly nonlinear) residual R(x, D_1 f, ..., D_m f) built from declared derivatives.

    ``fn(x, **values)`` receives the points (n, d) and one tensor (n,) per declared input and
    must return a tensor (n,). Its kernel block uses J = ∇_θ R (the ``"jacobian"`` path).
    """

    linear = False

    def __init__(self, fn: Callable, inputs: Mapping[str, Operator], label: str | None = None):
        if not callable(fn):
            raise TypeError(f"fn: expected a callable fn(x, **inputs) -> (n,), got "
                            f"{type(fn).__name__}")
        if not inputs:
            raise ValueError("inputs: a residual needs at least one declared input operator")
        for k, op in inputs.items():
            if not isinstance(op, Operator):
                raise TypeError(f"inputs[{k!r}]: expected a pinnk operator, got "
                                f"{type(op).__name__}")
        self.fn = fn
        self.inputs = dict(inputs)
        self.label = label or getattr(fn, "__name__", "residual")
        self.coefficients: tuple = ()  # coefficient fields applied by fn (checked with the fields)

    @property
    def order(self) -> int:
        return max(op.order for op in self.inputs.values())

    def derivative_keys(self, d: int) -> list:
        return [k for op in self.inputs.values() for k in op.derivative_keys(d)]

    def check_fields(self, x: torch.Tensor) -> None:
        for op in self.inputs.values():
            op.check_fields(x)
        for c in self.coefficients:
            c.check(x)

    def evaluate(self, ev, x: torch.Tensor) -> torch.Tensor:
        values = {k: op.evaluate(ev, x) for k, op in self.inputs.items()}
        out = self.fn(x, **values)
        if not isinstance(out, torch.Tensor) or tuple(out.shape) != (x.shape[0],):
            shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise ValueError(f"fn: residual {self.label!r} must return a tensor of shape "
                             f"({x.shape[0]},), got {shape}")
        return out

    def __repr__(self) -> str:
        return f"R[{self.label}]"


def _blame_residual(op: Operator, model: Callable, x: torch.Tensor) -> str | None:
    """A message naming the residual function of ``op`` (or of one of its inputs) that returns
    NaN/Inf from finite inputs, or None."""
    if not isinstance(op, Residual):
        return None
    for inner in op.inputs.values():
        msg = _blame_residual(inner, model, x)
        if msg is not None:
            return msg
    with torch.no_grad():
        ev = _JvpEvaluator(model, x)
        values = {k: inner.evaluate(ev, x) for k, inner in op.inputs.items()}
        if any(first_nonfinite(v) is not None for v in values.values()):
            return None
        row = first_nonfinite(op.fn(x, **values))
    if row is None:
        return None
    return (f"fn: the residual {op.label!r} returned NaN or Inf at row {row} of the points, "
            f"from finite inputs {sorted(values)}")


# ---------------------------------------------------------------------------------- constructors
def value(component: int = 0) -> Linear:
    """The value f_c(x) of output component ``component``. Shape (n,)."""
    component = check_int(component, "component", minimum=0)
    return Linear([_Monomial(_Coefficient(), component, ())])


def directional(h: Any, order: int = 1, component: int = 0) -> Linear:
    """The Gâteaux derivative ∂_h^k f_c(x) = d^k/dε^k f_c(x + ε h) at ε = 0 (paper eq. 1).

    Args:
        h: a constant direction, shape (d,) (not necessarily unit), or a field ``x -> (n, d)``
            such as outward normals; a field is evaluated at the base point and held fixed.
        order: k >= 1, any order.
        component: the output component c.
    """
    order = check_int(order, "order", minimum=1)
    component = check_int(component, "component", minimum=0)
    d = _make_direction(h)
    return Linear([_Monomial(_Coefficient(), component, (d,) * order)])


def partial(alpha: Sequence[int], component: int = 0) -> Linear:
    """The mixed partial ∂^α f_c = ∂^{α_1}_{x_1} ··· ∂^{α_d}_{x_d} f_c for a multi-index α.

    ``alpha`` has one non-negative entry per input coordinate (length d); ``|α| = 0`` is the value.
    """
    if isinstance(alpha, (str, bytes)) or not isinstance(alpha, (Sequence, torch.Tensor)):
        raise TypeError(f"alpha: expected a sequence of non-negative integers, got "
                        f"{type(alpha).__name__}")
    alpha = [check_int(int(a) if isinstance(a, torch.Tensor) else a, "alpha", minimum=0)
             for a in alpha]
    if len(alpha) == 0:
        raise ValueError("alpha: expected one entry per input coordinate, got an empty multi-index")
    component = check_int(component, "component", minimum=0)
    dirs = []
    for k, a in enumerate(alpha):
        dirs += [_Direction(index=k, expected_dim=len(alpha))] * a
    if not dirs:  # the value, but still checked against the input dimension
        return Linear([_Monomial(_Coefficient(), component, ())])
    return Linear([_Monomial(_Coefficient(), component, tuple(dirs))])


def laplacian(component: int = 0, dims: Sequence[int] | None = None) -> Linear:
    """The Laplacian Δf_c = Σ_{k in dims} ∂²f_c/∂x_k² (all coordinates when ``dims`` is None)."""
    component = check_int(component, "component", minimum=0)
    if dims is not None:
        dims = tuple(check_int(k, "dims", minimum=0) for k in dims)
        if not dims:
            raise ValueError("dims: expected at least one coordinate index")
    return Linear([_Laplacian(_Coefficient(), component, dims)])


def transport(coefficients: Sequence[Any], component: int = 0) -> Linear:
    """The first-order operator Σ_i g_i(x) ∂f_c/∂x_i (paper eq. 16).

    ``coefficients`` has one entry per input coordinate: a float (0 skips the coordinate) or a
    field ``x -> (n,)``. Example: convection u_t + β u_x with inputs (x, t) is
    ``transport([beta, 1.0])``.
    """
    if isinstance(coefficients, (str, bytes)) or not isinstance(coefficients, Sequence):
        raise TypeError(f"coefficients: expected a sequence with one entry per coordinate, got "
                        f"{type(coefficients).__name__}")
    component = check_int(component, "component", minimum=0)
    d = len(coefficients)
    op = None
    for k, g in enumerate(coefficients):
        if isinstance(g, numbers.Real) and not isinstance(g, bool):
            g = check_float(g, f"coefficients[{k}]")
            if g == 0.0:
                continue
        mono = Linear([_Monomial(_Coefficient(), component,
                                 (_Direction(index=k, expected_dim=d, arg="coefficients"),))])
        term = g * mono
        op = term if op is None else op + term
    if op is None:
        raise ValueError("coefficients: all coefficients are zero")
    return op


def divergence(components: Sequence[int]) -> Linear:
    """The divergence Σ_k ∂f_{c_k}/∂x_k of a vector field given by output components
    ``components`` (one per input coordinate)."""
    comps = [check_int(c, "components", minimum=0) for c in components]
    if not comps:
        raise ValueError("components: expected one output component per input coordinate")
    d = len(comps)
    return Linear([_Monomial(_Coefficient(), c, (_Direction(index=k, expected_dim=d,
                                                            arg="components"),))
                   for k, c in enumerate(comps)])


def residual(fn: Callable, inputs: Mapping[str, Operator] | None = None, /, *,
             label: str | None = None, **kw_inputs: Operator) -> Residual:
    """A nonlinear residual R = fn(x, **values) from declared derivative inputs.

    Example (Burgers)::

        ops.residual(lambda x, u, u_t, u_x, u_xx: u_t + u * u_x - nu * u_xx,
                     u=ops.value(), u_t=ops.partial([0, 1]), u_x=ops.partial([1, 0]),
                     u_xx=ops.partial([2, 0]))

    Args:
        fn: ``fn(x, **values) -> (n,)``; ``x`` is (n, d) and every value is (n,).
        inputs: a mapping name -> operator (or pass them as keyword arguments).
        label: a name for messages.
    """
    merged = dict(inputs or {})
    for k, v in kw_inputs.items():
        if k in merged:
            raise ValueError(f"inputs: {k!r} given twice")
        merged[k] = v
    return Residual(fn, merged, label=label)

