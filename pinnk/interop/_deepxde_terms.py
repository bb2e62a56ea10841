"""A DeepXDE model's loss vector as pinnk terms.

One builder (:class:`Loss`) per entry of DeepXDE's loss vector — each PDE residual, then each
boundary or initial condition of ``model.data.bcs`` — whose term has the residual DeepXDE trains
on: ``term.residual(net)`` equals the error that ``data.losses`` passes to the MSE, row for row
(DeepXDE's loss entry i is ``mean(r_i²)``). The builders also restrict a term to a subset of its
rows (subsampled kernels, trace weights) and move it to other points (kernels at new points,
angles); a later optimizer of DeepXDE models can use the same terms.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from .._operators import Operator, directional, partial, value
from .._terms import Term
from .._validation import as_points, check_int, random_permutation
from ._deepxde_core import (
    Geometry, NoX, PDEOperator, _call_pde, _is_transformed, _to_tensor, column, dde,
    nearest_rows, numpy_of, run_with_grad,
)

__all__ = ["Loss", "LossCache", "check_model", "dtype_device", "losses_of", "model_losses"]


# ------------------------------------------------------------------------------- targets
class _FuncTarget:
    """A DeepXDE BC function ``func(x: ndarray (n, d)) -> (n, 1)`` as a pinnk target x -> (n,)."""

    def __init__(self, func: Callable, name: str):
        self.func = inspect.unwrap(func)
        self.name = name
        if _n_args(self.func, 1) != 1:
            raise ValueError(f"{name}: BC functions with auxiliary variables are not supported "
                             f"(expected func(x), got {_n_args(self.func, 1)} arguments)")

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        v = _to_tensor(self.func(numpy_of(x)), x.dtype, x.device)
        if v.ndim == 0:
            v = v.expand(x.shape[0])
        if v.ndim == 2 and v.shape[1] == 1:
            v = v[:, 0]
        return v


def _n_args(func: Callable, default: int) -> int:
    try:
        return len(inspect.signature(func).parameters)
    except (TypeError, ValueError):
        return default


def _output_2d(f: Callable) -> Callable:
    def f2(z):
        out = f(z)
        return out.unsqueeze(-1) if out.ndim == 1 else out
    return f2


def _table(points: torch.Tensor) -> torch.Tensor:
    return points.detach().to(device="cpu", dtype=torch.float64)


def _gather(values: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """``values[idx]`` for a (possibly vmap-batched) index tensor (n,)."""
    return values.index_select(0, idx) if not _is_transformed(idx) else values[idx]


# ----------------------------------------------------------------------------- operators
class RobinOperator(Operator):
    """The residual of a DeepXDE ``RobinBC``: ∂u_c/∂n(x) − func(X, u(x)), shape (n,).

    ``func(X, y)`` is DeepXDE's: X the points as numpy (n, d), y the network output (n, out).
    Inside ``torch.func`` transforms X is not available as numpy: the function is first tried
    without X (most Robin functions, e.g. ``lambda X, y: y``, do not read it) and otherwise
    evaluated on the table of the term's points with the row's output broadcast, picking the
    row's own point (exact; O(m) element-wise work per point).
    """

    linear = False

    def __init__(self, geometry: Geometry, func: Callable, component: int,
                 points: torch.Tensor, name: str):
        self.normal = directional(geometry.normal_field(points), 1, component)
        self.func, self.component, self.name = func, component, name
        self.table, self.table_np = _table(points), numpy_of(points)
        self._needs_x = False

    @property
    def order(self) -> int:
        return 1

    def _func(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        n, what = x.shape[0], f"{self.name}: func(X, y)"
        if not _is_transformed(x):
            return column(self.func(numpy_of(x), y), n, what)
        if not self._needs_x:
            try:
                return column(self.func(NoX(), y), n, what)
            except Exception:  # noqa: BLE001 - the function reads X: take the exact route
                self._needs_x = True
        # numpy of the stored table: a tensor made inside a transform has no storage
        m, idx = self.table_np.shape[0], nearest_rows(x, self.table)
        rows = [_gather(column(self.func(self.table_np, y[j:j + 1].expand(m, -1)), m, what),
                        idx[j:j + 1]) for j in range(n)]
        return torch.cat(rows)

    def apply(self, f: Callable, x: torch.Tensor) -> torch.Tensor:
        return self.normal.apply(f, x) - self._func(x, _output_2d(f)(x))

    def __repr__(self) -> str:
        return f"∂n f{self.component} − {self.name}.func(X, f)"


class PeriodicOperator(Operator):
    """The residual of a DeepXDE ``PeriodicBC``: D u_c(x) − D u_c(x'), shape (n,), where x' is
    the periodic partner of x (``geom.periodic_point(x, component_x)``) and D is the value
    (``derivative_order=0``) or ∂/∂x_{component_x} (``derivative_order=1``)."""

    linear = True

    def __init__(self, geom: Any, component_x: int, derivative_order: int, component: int,
                 points: torch.Tensor, partners: torch.Tensor):
        d = points.shape[1]
        self.geom, self.component_x = geom, component_x
        self.derivative_order, self.component = derivative_order, component
        self.inner = value(component) if derivative_order == 0 else \
            partial([1 if j == component_x else 0 for j in range(d)], component)
        self.table, self.partners = _table(points), _table(partners)

    @property
    def order(self) -> int:
        return self.derivative_order

    def partner(self, x: torch.Tensor) -> torch.Tensor:
        """The periodic partners of the points x (n, d)."""
        if not _is_transformed(x):
            return _to_tensor(self.geom.periodic_point(numpy_of(x), self.component_x), x.dtype,
                              x.device)
        q = self.partners.to(dtype=x.dtype, device=x.device)
        return q[nearest_rows(x, self.table)]

    def apply(self, f: Callable, x: torch.Tensor) -> torch.Tensor:
        return self.inner.apply(f, x) - self.inner.apply(f, self.partner(x))

    def __repr__(self) -> str:
        return f"periodic[{self.inner!r}, x{self.component_x}]"


class FunctionOperator(Operator):
    """``func(inputs, outputs, X)`` of a DeepXDE ``OperatorBC`` or ``PointSetOperatorBC`` as an
    operator, shape (n,); ``dde.grad`` inside it is evaluated by forward mode (as for the PDE).

    Inside ``torch.func`` transforms X is not available as numpy: the function is first tried
    without X (DeepXDE's examples never read it) and otherwise evaluated at the whole table of
    the term's points, picking each row's own point (exact; the network is then evaluated at
    all m points of the term for every point, O(m²) work for the term's kernel block).
    """

    linear = False

    def __init__(self, func: Callable, points: torch.Tensor, name: str, order: int):
        self.func, self.name = func, name
        self.table, self.table_np = _table(points), numpy_of(points)
        self._order = check_int(order, "order", minimum=0)
        self._needs_x = False

    @property
    def order(self) -> int:
        return self._order

    def _run(self, f: Callable, x: torch.Tensor, X: Any) -> torch.Tensor:
        out, _ = run_with_grad(lambda xx, yy: self.func(xx, yy, X), f, x, self.name)
        return column(out, x.shape[0], f"{self.name}: func(inputs, outputs, X)")

    def apply(self, f: Callable, x: torch.Tensor) -> torch.Tensor:
        if not _is_transformed(x):
            return self._run(f, x, numpy_of(x))
        if not self._needs_x:
            try:
                return self._run(f, x, NoX())
            except Exception:  # noqa: BLE001 - the function reads X: take the exact route
                self._needs_x = True
        # numpy of the stored table: a tensor made inside a transform has no storage
        p = self.table.to(dtype=x.dtype, device=x.device)
        return _gather(self._run(f, p, self.table_np), nearest_rows(x, p))

    def __repr__(self) -> str:
        return f"{self.name}.func"


class ComponentRows(Operator):
    """u_{c(x)}(x) for a ``PointSetBC`` with a list of components: each row of the points is
    (x, k), the coordinates followed by the position k of the component in ``components``, so one
    term holds the n × len(components) entries of DeepXDE's error, shape (n,)."""

    linear = False
    extra_columns = 1  # the component position k is not an input of the network

    def __init__(self, dim: int, components: list[int]):
        self.dim = dim
        self.components = list(components)

    @property
    def order(self) -> int:
        return 0

    def apply(self, f: Callable, x: torch.Tensor) -> torch.Tensor:
        y = _output_2d(f)(x[:, :self.dim])
        comps = torch.tensor(self.components, device=x.device)
        k = x[:, self.dim].round().long()
        return y.gather(1, comps[k][:, None])[:, 0]

    def __repr__(self) -> str:
        return f"f{self.components}"


class Interface2DOperator(Operator):
    """The residual of a DeepXDE ``Interface2DBC`` without its target: ⟨u(x), d1⟩ + ⟨u(x'), d2⟩
    for a point x of the first edge and its partner x' on the second, d the outward normals (or
    the normals turned clockwise for ``direction="tangent"``); pairs as DeepXDE forms them."""

    linear = True

    def __init__(self, points, partners, normals1, normals2, direction: str, name: str):
        self.table, self.partners = _table(points), _table(partners)
        self.n1, self.n2 = _table(normals1), _table(normals2)
        self.direction, self.name = direction, name

    @property
    def order(self) -> int:
        return 0

    def _project(self, y: torch.Tensor, nrm: torch.Tensor) -> torch.Tensor:
        if self.direction == "normal":
            return (y[:, :2] * nrm).sum(1)
        return y[:, 0] * nrm[:, 1] - y[:, 1] * nrm[:, 0]

    def apply(self, f: Callable, x: torch.Tensor) -> torch.Tensor:
        idx = nearest_rows(x, self.table)
        if not _is_transformed(x):
            gap = (x - self.table.to(dtype=x.dtype, device=x.device)[idx]).abs().max()
            if float(gap) > 1e-9 * (1.0 + float(self.table.abs().max())):
                raise ValueError(f"{self.name}: an Interface2DBC pairs the points of its two "
                                 f"edges as DeepXDE sampled them; it can only be evaluated at "
                                 f"(a subset of) its own first-edge points")
        t = lambda a: a.to(dtype=x.dtype, device=x.device)[idx]  # noqa: E731
        f2 = _output_2d(f)
        return self._project(f2(x), t(self.n1)) + self._project(f2(t(self.partners)), t(self.n2))

    def __repr__(self) -> str:
        return f"interface[{self.direction}]"


# -------------------------------------------------------------------------------- losses
class Loss:
    """One entry of a DeepXDE model's loss vector, as pinnk terms.

    Attributes:
        name: the term name (``"pde"``, ``"pde0"``, ..., ``"bc0"``, ...).
        kind: the DeepXDE class (``"PDE"``, ``"DirichletBC"``, ``"RobinBC"``, ...).
        points: the rows of the residual vector at DeepXDE's training points, (n, d) (for a
            ``PointSetBC`` with k components (n·k, d + 1), see :class:`ComponentRows`; for a
            ``PeriodicBC`` or ``Interface2DBC`` the first point of each pair).
        base: the points (n, d) in the input space (``points`` without the component column
            of a multi-component ``PointSetBC``).
        keeps_points: True when labels are known only at the condition's own points
            (``PointSetBC``, ``PointSetOperatorBC``, ``Interface2DBC``).
    """

    keeps_points = False

    def __init__(self, name: str, kind: str, where: str, points: torch.Tensor,
                 base: torch.Tensor | None = None):
        self.name, self.kind, self.where, self.points = name, kind, where, points
        self.base = points if base is None else base

    def _build(self, points: torch.Tensor, labels: Any = None) -> Term:
        raise NotImplementedError

    def term(self, points: torch.Tensor | None = None) -> Term:
        """The term at DeepXDE's training points, or at ``points`` (labels recomputed)."""
        return self._build(self.points if points is None else points)

    def rows(self, idx: torch.Tensor) -> Term:
        """The term restricted to the rows ``idx`` of its residual vector."""
        return self._build(self.points[idx])

    def probe(self, points: torch.Tensor) -> tuple[Term, torch.Tensor]:
        """A term with this entry's parameter gradients at ``points`` (n, d) — labels, which do
        not enter gradients, may be dropped — and the points (n', d) its rows sit at."""
        return self._build(points), points

    def __repr__(self) -> str:
        return f"Loss({self.name!r}: {self.kind}, n={self.points.shape[0]})"


class _PDELoss(Loss):
    def __init__(self, name, pde, index, order, points):
        super().__init__(name, "PDE", "model.data.pde", points)
        self.op = PDEOperator(pde, index, order=order)

    def _build(self, points, labels=None):
        return Term(self.name, self.op, points, None, residual=True)


class _TargetLoss(Loss):
    """An operator matched to ``func(x)``: DirichletBC, IC (values) and NeumannBC."""

    def __init__(self, name, bc, where, points, make_op: Callable):
        super().__init__(name, type(bc).__name__, where, points)
        self.target = _FuncTarget(bc.func, where)
        self.make_op = make_op

    def _build(self, points, labels=None):
        return Term(self.name, self.make_op(points), points, self.target, residual=False)


class _OperatorLoss(Loss):
    """A condition whose operator carries the whole residual (RobinBC, OperatorBC)."""

    def __init__(self, name, bc, where, points, make_op: Callable):
        super().__init__(name, type(bc).__name__, where, points)
        self.make_op = make_op

    def _build(self, points, labels=None):
        return Term(self.name, self.make_op(points), points, None, residual=False)


class _PeriodicLoss(Loss):
    def __init__(self, name, bc, where, points, partners):
        super().__init__(name, "PeriodicBC", where, points)
        self.bc, self.partners = bc, partners

    def _op(self, points, partners):
        bc = self.bc
        return PeriodicOperator(bc.geom, bc.component_x, bc.derivative_order, bc.component,
                                points, partners)

    def _build(self, points, labels=None):
        if points is self.points:
            partners = self.partners
        else:
            partners = _to_tensor(self.bc.geom.periodic_point(numpy_of(points),
                                                              self.bc.component_x),
                                  points.dtype, points.device)
        return Term(self.name, self._op(points, partners), points, None, residual=False)

    def rows(self, idx):
        pts, prt = self.points[idx], self.partners[idx]
        return Term(self.name, self._op(pts, prt), pts, None, residual=False)


class _OwnPointsLoss(Loss):
    """A condition with labels at its own points only (PointSetBC, PointSetOperatorBC,
    Interface2DBC): other points must be rows of its own."""

    keeps_points = True

    def __init__(self, name, kind, where, points, labels, base=None):
        super().__init__(name, kind, where, points, base)
        self.labels = labels

    def _match(self, points: torch.Tensor) -> torch.Tensor:
        own = self.points[:, :points.shape[1]]
        idx = nearest_rows(points, own)
        gap = (points - own[idx]).abs().amax(dim=1)
        bad = gap > 1e-9 * (1.0 + float(own.abs().max()))
        if bool(bad.any()):
            raise ValueError(f"points[{self.name!r}]: a {self.kind} term has labels only at its "
                             f"own points; {int(bad.sum())} of the {points.shape[0]} points are "
                             f"not among them")
        return idx

    def term(self, points=None):
        if points is None:
            return self._build(self.points, self.labels)
        return self.rows(self._match(points))

    def rows(self, idx):
        return self._build(self.points[idx], None if self.labels is None else self.labels[idx])


class _PointSetLoss(_OwnPointsLoss):
    def __init__(self, name, bc, where, points, labels, components, dim, base=None):
        super().__init__(name, "PointSetBC", where, points, labels, base)
        self.components, self.dim = components, dim

    def _op(self):
        if isinstance(self.components, list):
            return ComponentRows(self.dim, self.components)
        return value(self.components)

    def _build(self, points, labels=None):
        return Term(self.name, self._op(), points, labels, residual=False)

    def term(self, points=None):
        if points is None or not isinstance(self.components, list):
            return super().term(points)
        aug, _ = _augment(points, len(self.components))
        return self.rows(self._match(aug))

    def probe(self, points):
        if not isinstance(self.components, list):
            return self._build(points), points
        aug, base = _augment(points, len(self.components))
        return self._build(aug), base


def _augment(points: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows (x_j, c) for every point and component position c < k (point-major, as DeepXDE's
    (n, k) error flattens), and the points repeated to match."""
    base = points.repeat_interleave(k, dim=0)
    col = torch.arange(k, dtype=points.dtype, device=points.device).repeat(points.shape[0])
    return torch.cat([base, col[:, None]], dim=1), base


class _PointSetOperatorLoss(_OwnPointsLoss):
    def __init__(self, name, bc, where, points, labels, op):
        super().__init__(name, "PointSetOperatorBC", where, points, labels)
        self.op = op

    def _build(self, points, labels=None):
        op = FunctionOperator(self.op.func, points, self.op.name, self.op.order)
        return Term(self.name, op, points, labels, residual=False)


class _InterfaceLoss(_OwnPointsLoss):
    def __init__(self, name, bc, where, points, partners, geometry):
        super().__init__(name, "Interface2DBC", where, points, None)
        self.op = Interface2DOperator(points, partners, geometry.normals(points),
                                      geometry.normals(partners), bc.direction, where)
        self.target = _FuncTarget(bc.func, where)

    def _build(self, points, labels=None):
        return Term(self.name, self.op, points, self.target, residual=False)

    def probe(self, points):
        return self.term(points), points


# ------------------------------------------------------------------------ model -> losses
def loss_terms(losses: list["Loss"], max_points: int | None,
               generator: torch.Generator | None) -> list[Term]:
    """The terms of ``losses``, each on a random ``max_points`` of its rows where it has more
    (None: all rows). A subset term's mean over its rows stands for the whole term's mean."""
    out = []
    for loss in losses:
        n = loss.points.shape[0]
        if max_points is None or n <= max_points:
            out.append(loss.term())
        else:
            idx = random_permutation(n, generator)[:max_points]
            out.append(loss.rows(idx.to(loss.points.device)))
    return out


def check_model(model: Any) -> None:
    """Raise a TypeError/ValueError unless ``model`` is a DeepXDE ``Model`` this module supports:
    the PyTorch backend, a ``torch.nn.Module`` net, and ``dde.data.PDE``/``TimePDE`` data."""
    if not isinstance(model, dde.Model):
        raise TypeError(f"model: expected a deepxde.Model, got {type(model).__name__}")
    backend = str(dde.backend.backend_name)
    if backend != "pytorch":
        raise TypeError(f"model: DeepXDE uses the {backend!r} backend; pinnk needs the PyTorch "
                        f"backend (set DDE_BACKEND=pytorch before importing deepxde)")
    if not isinstance(model.net, torch.nn.Module):
        raise TypeError(f"model: expected model.net to be a torch.nn.Module, got "
                        f"{type(model.net).__name__}")
    if not isinstance(model.data, dde.data.PDE):
        raise TypeError(f"model: expected model.data to be a deepxde.data.PDE or TimePDE, got "
                        f"{type(model.data).__name__}")
    if getattr(model.data, "auxiliary_var_fn", None) is not None:
        raise ValueError("model: PDE data with auxiliary_var_function is not supported")


def dtype_device(model: Any) -> tuple[torch.dtype, torch.device]:
    """The dtype and device of ``model.net``'s floating-point parameters."""
    for p in model.net.parameters():
        if p.is_floating_point():
            return p.dtype, p.device
    raise ValueError("model: model.net has no floating-point parameters")


def losses_of(model: Any) -> tuple[list["Loss"], torch.dtype, torch.device]:
    """The checked model's :class:`Loss` builders, dtype and device."""
    check_model(model)
    dtype, device = dtype_device(model)
    return model_losses(model, dtype, device), dtype, device


class LossCache:
    """A model's :class:`Loss` builders, rebuilt only when DeepXDE's training points
    (``data.train_x``, a new array after resampling) or the net's dtype or device changed since
    the last call: building them evaluates the PDE function once, a cost worth saving on small
    problems."""

    def __init__(self):
        self._entry = None

    def clear(self) -> None:
        self._entry = None

    def get(self, model: Any) -> list["Loss"]:
        key = (model.data.train_x, dtype_device(model))
        if self._entry is not None and self._entry[0][0] is key[0] \
                and self._entry[0][1] == key[1]:
            return self._entry[1]
        losses = losses_of(model)[0]
        # the key after the build: model_losses draws DeepXDE's points when there are none yet
        self._entry = ((model.data.train_x, key[1]), losses)
        return losses


def _labels(values: Any, n: int, width: int, where: str, idx: Any, dtype, device) -> torch.Tensor:
    """DeepXDE's ``values`` (a number, (n, 1) or (n, k)) as labels (n·width,), point-major."""
    v = torch.as_tensor(values).to(dtype=dtype, device=device)
    if idx is not None:
        v = v[torch.as_tensor(np.asarray(idx), device=device)]
    try:
        v = torch.broadcast_to(v.reshape(v.shape[0], -1) if v.ndim == 1 else v, (n, width))
    except RuntimeError as exc:
        raise ValueError(f"{where}: values of shape {tuple(v.shape)} do not match {n} points "
                         f"and {width} component(s)") from exc
    return v.reshape(-1)


def _function_order(func: Callable, net: Any, points: torch.Tensor, name: str) -> int:
    """The highest derivative order that a DeepXDE BC function asks dde.grad for."""
    x = points[:2]
    with torch.no_grad():
        _, order = run_with_grad(lambda xx, yy: func(xx, yy, numpy_of(xx)), net, x, name)
    return order


def _condition(bc: Any, k: int, pts: torch.Tensor, net: Any) -> Loss:
    name, where = f"bc{k}", f"model.data.bcs[{k}]"
    kind = type(bc).__name__
    icbc = dde.icbc
    if isinstance(bc, (icbc.DirichletBC, icbc.IC)):
        comp = check_int(bc.component, f"{where}.component", minimum=0)
        return _TargetLoss(name, bc, where, pts, lambda p: value(comp))
    if isinstance(bc, icbc.NeumannBC):
        comp = check_int(bc.component, f"{where}.component", minimum=0)
        geometry = Geometry(bc.geom)
        return _TargetLoss(name, bc, where, pts,
                           lambda p: directional(geometry.normal_field(p), 1, comp))
    if isinstance(bc, icbc.RobinBC):
        comp = check_int(bc.component, f"{where}.component", minimum=0)
        geometry = Geometry(bc.geom)
        func = inspect.unwrap(bc.func)
        if _n_args(func, 2) != 2:
            raise ValueError(f"{where}: expected a Robin function func(X, y), got "
                             f"{_n_args(func, 2)} arguments")
        return _OperatorLoss(name, bc, where, pts,
                             lambda p: RobinOperator(geometry, func, comp, p, where))
    if isinstance(bc, icbc.PeriodicBC):
        comp = check_int(bc.component, f"{where}.component", minimum=0)
        check_int(bc.component_x, f"{where}.component_x", minimum=0)
        if bc.derivative_order not in (0, 1):
            raise ValueError(f"{where}: PeriodicBC derivative_order must be 0 or 1, got "
                             f"{bc.derivative_order!r}")
        half = pts.shape[0] // 2
        return _PeriodicLoss(name, bc, where, pts[:half], pts[half:])
    if isinstance(bc, icbc.OperatorBC):
        func = bc.func
        order = _function_order(func, net, pts, where)
        return _OperatorLoss(name, bc, where, pts,
                             lambda p: FunctionOperator(func, p, where, order))
    if isinstance(bc, icbc.PointSetBC):
        comps = bc.component
        if isinstance(comps, (list, tuple)):
            comps = [check_int(c, f"{where}.component", minimum=0) for c in comps]
        else:
            comps = check_int(comps, f"{where}.component", minimum=0)
        idx = bc.batch_indices if bc.batch_size is not None else None
        n = pts.shape[0]
        if isinstance(comps, list):
            labels = _labels(bc.values, n, len(comps), where, idx, pts.dtype, pts.device)
            aug, _ = _augment(pts, len(comps))
            return _PointSetLoss(name, bc, where, aug, labels, comps, pts.shape[1], pts)
        labels = _labels(bc.values, n, 1, where, idx, pts.dtype, pts.device)
        return _PointSetLoss(name, bc, where, pts, labels, comps, pts.shape[1])
    if isinstance(bc, icbc.PointSetOperatorBC):
        idx = bc.batch_indices if bc.batch_size is not None else None
        labels = _labels(bc.values, pts.shape[0], 1, where, idx, pts.dtype, pts.device)
        op = FunctionOperator(bc.func, pts, where, _function_order(bc.func, net, pts, where))
        return _PointSetOperatorLoss(name, bc, where, pts, labels, op)
    if isinstance(bc, icbc.Interface2DBC):
        half = pts.shape[0] // 2
        if pts.shape[0] != 2 * half:
            raise ValueError(f"{where}: an Interface2DBC needs the same number of points on its "
                             f"two edges, got {pts.shape[0]} points in all")
        return _InterfaceLoss(name, bc, where, pts[:half], pts[half:], Geometry(bc.geom))
    raise ValueError(f"{where}: unsupported boundary condition {kind}; supported: DirichletBC, "
                     f"NeumannBC, RobinBC, PeriodicBC, OperatorBC, PointSetBC, "
                     f"PointSetOperatorBC, Interface2DBC, IC")


def model_losses(model: Any, dtype: torch.dtype, device: Any) -> list[Loss]:
    """The loss vector of a checked DeepXDE model as :class:`Loss` builders, in DeepXDE's order:
    the PDE residual(s) at ``data.train_x_all`` (DeepXDE's ``train_x`` after the condition rows),
    then one per ``data.bcs[k]`` at its rows of ``data.train_x``."""
    data = model.data
    if data.train_x is None or data.num_bcs is None:
        data.train_next_batch()
    X = np.asarray(data.train_x)
    starts = np.cumsum([0] + list(data.num_bcs)).astype(int)
    as_t = lambda a: torch.as_tensor(a).to(dtype=dtype, device=device)  # noqa: E731
    out: list[Loss] = []
    if data.pde is not None:
        x_pde = as_t(X[starts[-1]:])
        if x_pde.shape[0] == 0:
            raise ValueError("model: the PDE has no collocation points (num_domain and "
                             "num_boundary are 0)")
        with torch.no_grad():
            outs, order = _call_pde(data.pde, model.net, x_pde[:2])
        names = ["pde"] if len(outs) == 1 else [f"pde{k}" for k in range(len(outs))]
        out += [_PDELoss(nm, data.pde, k, order, x_pde) for k, nm in enumerate(names)]
    for k, bc in enumerate(data.bcs):
        pts = as_t(X[starts[k]:starts[k + 1]])
        if pts.shape[0] == 0:
            raise ValueError(f"model.data.bcs[{k}]: the condition has no collocation points")
        out.append(_condition(bc, k, pts, model.net))
    return out


def at_points(loss: Loss, points: Any, dtype: torch.dtype, device: Any) -> torch.Tensor:
    """``points`` checked as (m, d) for ``loss`` in the given dtype and device."""
    p = as_points(points, f"points[{loss.name!r}]", dtype=dtype, device=device)
    d = loss.base.shape[1]
    if p.shape[1] != d:
        raise ValueError(f"points[{loss.name!r}]: expected dimension {d}, got {p.shape[1]}")
    return p

