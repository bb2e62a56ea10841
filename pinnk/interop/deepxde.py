"""DeepXDE (PyTorch backend) interoperability: geometries, models, kernels, trace-rule callback.

Importing this module imports DeepXDE. DeepXDE chooses its backend when it is first imported;
this module calls ``os.environ.setdefault("DDE_BACKEND", "pytorch")`` before importing it, so the
PyTorch backend is used unless ``DDE_BACKEND`` was already set (or DeepXDE was already imported)
with another backend, in which case every model function raises a TypeError naming the backend.

What it offers:

- :class:`Geometry`: any ``deepxde.geometry`` object as a pinnk domain (``dim``, ``sample``,
  ``sample_boundary``, ``normals``, ``normal_field``), with sampling reproducible from a
  ``torch.Generator`` or an int seed.
- :func:`terms`: a compiled or uncompiled ``deepxde.Model`` (``dde.data.PDE`` / ``TimePDE``) as
  pinnk :class:`~pinnk.Term` s in DeepXDE's loss order: the PDE residual(s) first (``"pde"``, or
  ``"pde0"``, ``"pde1"``, ... for a PDE function that returns a list), then one term per boundary
  or initial condition (``"bc0"``, ``"bc1"``, ...). Supported conditions: ``DirichletBC``,
  ``NeumannBC``, ``PointSetBC`` (one component, no batching) and ``IC``.
- :func:`kernel`, :func:`trace_weights`, :func:`angles`: the empirical NTK of those terms.
- :class:`TraceWeights`: a ``deepxde.callbacks.Callback`` setting ``model.loss_weights`` by the
  trace rule every ``every`` iterations.

How the PDE function is evaluated. DeepXDE's PDE functions take derivatives with
``dde.grad.jacobian`` / ``dde.grad.hessian``, which use reverse-mode ``torch.autograd.grad`` in x.
That cannot run inside the ``torch.func`` transforms (``vmap``/``jacrev``) of pinnk's Jacobian
kernel path. :class:`PDEOperator` therefore calls the user's ``pde(x, y)`` while
``deepxde.grad.jacobian`` and ``deepxde.grad.hessian`` are temporarily replaced by exact
forward-mode equivalents (nested ``torch.func.jvp`` of the network in x). This composes with every
``torch.func`` transform and agrees with DeepXDE's reverse mode to rounding. Limitations: the PDE
function must take derivatives of the network output ``y`` (or of tensors those functions
returned) through ``dde.grad.jacobian``/``hessian`` — not of a slice such as ``y[:, 0:1]``, and not
with ``torch.autograd.grad`` directly; the replacement is process-global while a residual is
evaluated (not thread-safe); external trainable variables (inverse problems) are held fixed.
"""

from __future__ import annotations

import inspect
import numbers
import os
import warnings
from collections.abc import Callable, Mapping
from typing import Any

os.environ.setdefault("DDE_BACKEND", "pytorch")

import deepxde as dde  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch.func import jvp  # noqa: E402

import deepxde.gradients as _dde_grad  # noqa: E402

from .._kernel import Kernel, angles as _angles  # noqa: E402
from .._operators import Operator, directional, value  # noqa: E402
from .._terms import Term  # noqa: E402
from .._validation import as_points, check_int  # noqa: E402

__all__ = [
    "Geometry", "PDEOperator", "terms", "kernel", "trace_weights", "angles", "TraceWeights",
    "check_model",
]

Seed = torch.Generator | int | None


# ------------------------------------------------------------------------------------ helpers
def _seed_from(generator: Seed, name: str = "generator") -> int:
    """A 32-bit numpy seed drawn from a torch.Generator, an int, or torch's global RNG."""
    if generator is None:
        return int(torch.randint(0, 2**32 - 1, (1,)))
    if isinstance(generator, torch.Generator):
        return int(torch.randint(0, 2**32 - 1, (1,), generator=generator))
    if isinstance(generator, numbers.Integral) and not isinstance(generator, bool):
        if int(generator) < 0:
            raise ValueError(f"{name}: expected a non-negative int seed, got {int(generator)}")
        return int(generator) % (2**32)
    raise TypeError(f"{name}: expected a torch.Generator, an int seed or None, got "
                    f"{type(generator).__name__}")


class _NumpySeed:
    """Temporarily seed numpy's global RNG (DeepXDE samples with it) and restore it after."""

    def __init__(self, seed: int):
        self.seed = seed

    def __enter__(self):
        self.state = np.random.get_state()
        np.random.seed(self.seed)

    def __exit__(self, *exc):
        np.random.set_state(self.state)
        return False


def _is_transformed(x: torch.Tensor) -> bool:
    """True when ``x`` is wrapped by a torch.func transform (vmap/grad/jvp level)."""
    check = getattr(torch._C._functorch, "is_functorch_wrapped_tensor", None)
    return True if check is None else bool(check(x))


def _to_tensor(a: Any, dtype: torch.dtype | None, device: Any) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(a) if not isinstance(a, torch.Tensor) else a)
    return t.to(dtype=dtype or torch.get_default_dtype(), device=device)


# ---------------------------------------------------------------------------------- geometry
class Geometry:
    """A ``deepxde.geometry`` object as a pinnk domain.

    Args:
        geom: any ``deepxde.geometry.Geometry`` (Interval, Rectangle, Disk, Polygon,
            GeometryXTime, CSG combinations, ...).

    Attributes:
        geom: the wrapped DeepXDE geometry.
        dim: the input dimension d.

    DeepXDE samples with numpy's global RNG; every sampling method here seeds it from
    ``generator`` (a ``torch.Generator``, an int seed, or None for torch's global RNG) and restores
    numpy's state afterwards, so equal seeds give equal points.
    """

    def __init__(self, geom: Any):
        if not isinstance(geom, dde.geometry.Geometry):
            raise TypeError(f"geom: expected a deepxde.geometry.Geometry, got "
                            f"{type(geom).__name__}")
        self.geom = geom

    @property
    def dim(self) -> int:
        """The input dimension d."""
        return int(self.geom.dim)

    def sample(self, n: int, generator: Seed = None, *, dtype: torch.dtype | None = None,
               device: Any = None, random: str = "pseudo") -> torch.Tensor:
        """n points inside the geometry, shape (n, d), ``dtype`` (default: torch's default).

        ``random`` is DeepXDE's sampler: ``"pseudo"`` (uniform pseudorandom) or a quasi-random
        sequence (``"LHS"``, ``"Halton"``, ``"Hammersley"``, ``"Sobol"``).
        """
        n = check_int(n, "n", minimum=1)
        with _NumpySeed(_seed_from(generator)):
            pts = self.geom.random_points(n, random=random)
        return _to_tensor(pts, dtype, device)

    def sample_boundary(self, n: int, generator: Seed = None, *,
                        dtype: torch.dtype | None = None, device: Any = None,
                        random: str = "pseudo") -> tuple[torch.Tensor, torch.Tensor]:
        """n points on the boundary and their outward unit normals, both (n, d).

        The normals are ``geom.boundary_normal`` (zero where DeepXDE's geometry has none, e.g.
        for the time faces of a ``GeometryXTime``).
        """
        n = check_int(n, "n", minimum=1)
        with _NumpySeed(_seed_from(generator)):
            pts = self.geom.random_boundary_points(n, random=random)
        pts = np.asarray(pts)
        normals = self.geom.boundary_normal(pts)
        return _to_tensor(pts, dtype, device), _to_tensor(normals, dtype, device)

    def normals(self, x: Any) -> torch.Tensor:
        """The outward unit normals ``geom.boundary_normal(x)`` at boundary points ``x`` (n, d),
        as a tensor (n, d) with the dtype and device of ``x``."""
        x = as_points(x, "x")
        if x.shape[1] != self.dim:
            raise ValueError(f"x: expected points of dimension {self.dim}, got {x.shape[1]}")
        nrm = self.geom.boundary_normal(x.detach().cpu().numpy())
        return torch.as_tensor(np.asarray(nrm)).to(dtype=x.dtype, device=x.device)

    def normal_field(self, points: Any = None) -> Callable[[torch.Tensor], torch.Tensor]:
        """A direction field ``x -> (n, d)`` of outward normals for ``pinnk.ops.directional``.

        On ordinary tensors it calls ``geom.boundary_normal`` (numpy). Inside ``torch.func``
        transforms (pinnk's ``"jacobian"`` kernel path) numpy cannot run, so the field looks the
        normal up at the nearest of ``points`` (n, d), whose normals are computed once here; pass
        the points of the term that uses the field. Without ``points`` the field works on
        ordinary tensors only (training), and raises a ValueError inside transforms.
        """
        return _NormalField(self, points)

    def __repr__(self) -> str:
        return f"Geometry({type(self.geom).__name__}, dim={self.dim})"


class _NormalField:
    """Outward normals of a DeepXDE geometry as a torch direction field (see normal_field)."""

    def __init__(self, geometry: Geometry, points: Any = None):
        self.geometry = geometry
        self.__name__ = "n(x)"
        if points is None:
            self.table = None
        else:
            p = as_points(points, "points", dtype=torch.float64).detach().cpu()
            if p.shape[1] != geometry.dim:
                raise ValueError(f"points: expected dimension {geometry.dim}, got {p.shape[1]}")
            self.table = (p, geometry.normals(p))

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if not _is_transformed(x):
            return self.geometry.normals(x)
        if self.table is None:
            raise ValueError("points: this normal field was built without points, so it cannot "
                             "be evaluated inside torch.func transforms (the 'jacobian' kernel "
                             "path); build it with normal_field(points)")
        p, nrm = (t.to(dtype=x.dtype, device=x.device) for t in self.table)
        d2 = ((x[:, None, :] - p[None, :, :]) ** 2).sum(-1)  # (n, m)
        return nrm[d2.argmin(dim=1)]


# ------------------------------------------------------------------------- the PDE operator
class _Tape:
    """Derivatives of the network output in x by nested forward mode, standing in for
    ``dde.grad.jacobian``/``hessian`` while a PDE function runs."""

    def __init__(self, f: Callable, x: torch.Tensor, y: torch.Tensor):
        self.x = x
        self.entries: dict = {}
        self.cache: dict = {}
        self.max_order = 0
        self._register(y, f, 0)

    def _register(self, t: torch.Tensor, fn: Callable, order: int) -> None:
        self.entries[id(t)] = (t, fn, order)
        self.max_order = max(self.max_order, order)

    def _lookup(self, ys: Any, xs: Any, what: str):
        if xs is not self.x:
            raise ValueError(f"pde: {what} was called with respect to a tensor other than the "
                             f"pde's input x")
        entry = self.entries.get(id(ys))
        if entry is None or entry[0] is not ys:
            raise ValueError(f"pde: {what} was called on a tensor that is neither the network "
                             f"output y nor a derivative returned by dde.grad; pinnk evaluates "
                             f"DeepXDE PDE functions by forward mode and supports "
                             f"dde.grad.jacobian(y, x, i=..., j=...) and dde.grad.hessian(y, x, "
                             f"component=..., i=..., j=...) on y itself (not on slices of y)")
        return entry

    @staticmethod
    def _unit(x: torch.Tensor, j: int) -> torch.Tensor:
        e = torch.zeros(x.shape[1], dtype=x.dtype, device=x.device)
        e[j] = 1.0
        return e.expand_as(x)

    def jacobian(self, ys, xs, i=None, j=None):
        t, fn, order = self._lookup(ys, xs, "dde.grad.jacobian")
        dim_y, dim_x = t.shape[-1], xs.shape[1]
        if i is None and j is None and (dim_x > 1 or dim_y > 1):
            raise ValueError("i: i and j cannot both be None")
        if i is None:
            if dim_y > 1:
                raise ValueError("i: computing a column J[:, j] of a multi-output tensor is not "
                                 "supported; pass i")
            i = 0
        if not 0 <= i < dim_y:
            raise ValueError(f"i: {i} is not valid for a tensor with {dim_y} component(s)")
        if j is not None and not 0 <= j < dim_x:
            raise ValueError(f"j: {j} is not valid for inputs of dimension {dim_x}")
        cols = [j] if (j is not None and dim_x > 1) else list(range(dim_x))
        key = ("J", id(ys), i, tuple(cols))
        if key in self.cache:
            return self.cache[key]
        unit = self._unit

        def g(z, fn=fn, i=i, cols=tuple(cols)):
            return torch.cat([jvp(fn, (z,), (unit(z, k),))[1][:, i:i + 1] for k in cols], dim=1)

        out = g(self.x)
        self._register(out, g, order + 1)
        self.cache[key] = out
        return out

    def hessian(self, ys, xs, component=0, i=0, j=0):
        t, fn, order = self._lookup(ys, xs, "dde.grad.hessian")
        dim_y, dim_x = t.shape[-1], xs.shape[1]
        if not 0 <= component < dim_y:
            raise ValueError(f"component: {component} is not valid for a tensor with {dim_y} "
                             f"component(s)")
        for nm, v in (("i", i), ("j", j)):
            if not 0 <= v < dim_x:
                raise ValueError(f"{nm}: {v} is not valid for inputs of dimension {dim_x}")
        key = ("H", id(ys), component, min(i, j), max(i, j))
        if key in self.cache:
            return self.cache[key]
        unit = self._unit

        def g(z, fn=fn, c=component, a=i, b=j):
            inner = lambda w: jvp(fn, (w,), (unit(w, b),))[1]  # noqa: E731
            return jvp(inner, (z,), (unit(z, a),))[1][:, c:c + 1]

        out = g(self.x)
        self._register(out, g, order + 2)
        self.cache[key] = out
        return out


class _Patched:
    """Replace ``deepxde.grad.jacobian``/``hessian`` by a tape's methods for a ``with`` block."""

    def __init__(self, tape: _Tape):
        self.tape = tape

    def __enter__(self):
        self.saved = (_dde_grad.jacobian, _dde_grad.hessian)
        _dde_grad.jacobian, _dde_grad.hessian = self.tape.jacobian, self.tape.hessian

    def __exit__(self, *exc):
        _dde_grad.jacobian, _dde_grad.hessian = self.saved
        return False


def _call_pde(pde: Callable, f: Callable, x: torch.Tensor) -> tuple[list, int]:
    """Run ``pde(x, f(x))`` with forward-mode dde.grad; returns (list of outputs, max order)."""
    def f2(z):
        out = f(z)
        return out.unsqueeze(-1) if out.ndim == 1 else out

    y = f2(x)
    tape = _Tape(f2, x, y)
    with _Patched(tape):
        try:
            out = pde(x, y)
        except ValueError:
            raise
        except RuntimeError as exc:
            raise ValueError(f"pde: the DeepXDE PDE function failed under pinnk's forward-mode "
                             f"evaluation ({exc}); take derivatives with dde.grad.jacobian / "
                             f"dde.grad.hessian, not torch.autograd.grad") from exc
    outs = list(out) if isinstance(out, (list, tuple)) else [out]
    return outs, tape.max_order


class PDEOperator(Operator):
    """A DeepXDE PDE function ``pde(x, y)`` as a pinnk operator (the residual of output ``index``).

    ``op(model, x)`` returns ``pde(x, model(x))[index]`` as a tensor (n,) (a (n, 1) result is
    flattened). The derivatives the PDE function asks DeepXDE for are computed by nested forward
    mode (see the module docstring), so the operator works under ``torch.func`` transforms: its
    kernel block is J = ∇_θ R by the ``"jacobian"`` path.

    Args:
        pde: the DeepXDE PDE function ``pde(x, y) -> tensor (n, 1) or list of them``.
        index: which returned residual this operator is (0 for a single residual).
        order: the highest derivative order in x that the PDE function uses (:attr:`order`;
            used for smoothness checks and ``Term.is_residual``); :func:`terms` detects it by
            evaluating the PDE function once.
    """

    linear = False

    def __init__(self, pde: Callable, index: int = 0, *, order: int = 2):
        if not callable(pde):
            raise TypeError(f"pde: expected a callable pde(x, y), got {type(pde).__name__}")
        try:
            n_args = len(inspect.signature(pde).parameters)
        except (TypeError, ValueError):
            n_args = 2
        if n_args != 2:
            raise ValueError(f"pde: expected a function of (x, y); PDE functions with auxiliary "
                             f"variables (3 arguments) are not supported, got {n_args} arguments")
        self.pde = pde
        self.index = check_int(index, "index", minimum=0)
        self.label = getattr(pde, "__name__", "pde")
        self._order = check_int(order, "order", minimum=0)

    @property
    def order(self) -> int:
        """The highest derivative order in x that the PDE function uses."""
        return self._order

    def apply(self, f: Callable, x: torch.Tensor) -> torch.Tensor:
        outs, _ = _call_pde(self.pde, f, x)
        if self.index >= len(outs):
            raise ValueError(f"index: the PDE function returned {len(outs)} residual(s), so "
                             f"index {self.index} is out of range")
        r = outs[self.index]
        if not isinstance(r, torch.Tensor):
            raise ValueError(f"pde: residual {self.index} is a {type(r).__name__}, expected a "
                             f"tensor of shape ({x.shape[0]}, 1)")
        if r.ndim == 2 and r.shape[1] == 1:
            r = r[:, 0]
        if tuple(r.shape) != (x.shape[0],):
            raise ValueError(f"pde: residual {self.index} must have shape ({x.shape[0]}, 1), got "
                             f"{tuple(outs[self.index].shape)}")
        return r

    def __repr__(self) -> str:
        return f"DeepXDE[{self.label}][{self.index}]"


# ------------------------------------------------------------------------------------ models
def _backend_name() -> str:
    return str(dde.backend.backend_name)


def check_model(model: Any) -> None:
    """Raise a TypeError/ValueError unless ``model`` is a DeepXDE ``Model`` this module supports:
    the PyTorch backend, a ``torch.nn.Module`` net, and ``dde.data.PDE``/``TimePDE`` data."""
    if not isinstance(model, dde.Model):
        raise TypeError(f"model: expected a deepxde.Model, got {type(model).__name__}")
    backend = _backend_name()
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


class _FuncTarget:
    """A DeepXDE BC function ``func(x: ndarray (n, d)) -> (n, 1)`` as a pinnk target x -> (n,)."""

    def __init__(self, func: Callable, name: str):
        self.func = inspect.unwrap(func)
        self.name = name
        try:
            n_args = len(inspect.signature(self.func).parameters)
        except (TypeError, ValueError):
            n_args = 1
        if n_args != 1:
            raise ValueError(f"{name}: BC functions with auxiliary variables are not supported "
                             f"(expected func(x), got {n_args} arguments)")

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        v = self.func(x.detach().cpu().numpy())
        v = _to_tensor(v, x.dtype, x.device)
        if v.ndim == 0:
            v = v.expand(x.shape[0])
        if v.ndim == 2 and v.shape[1] == 1:
            v = v[:, 0]
        return v


def _bc_term(bc: Any, k: int, points: torch.Tensor) -> Term:
    name, where = f"bc{k}", f"model.data.bcs[{k}]"
    kind = type(bc).__name__
    if isinstance(bc, dde.icbc.DirichletBC) or isinstance(bc, dde.icbc.IC):
        op = value(check_int(bc.component, f"{where}.component", minimum=0))
        return Term(name, op, points, _FuncTarget(bc.func, where), residual=False)
    if isinstance(bc, dde.icbc.NeumannBC):
        comp = check_int(bc.component, f"{where}.component", minimum=0)
        field = Geometry(bc.geom).normal_field(points)
        return Term(name, directional(field, 1, comp), points, _FuncTarget(bc.func, where),
                    residual=False)
    if isinstance(bc, dde.icbc.PointSetBC):
        if not isinstance(bc.component, numbers.Integral):
            raise ValueError(f"{where}: PointSetBC with a list of components is not supported; "
                             f"use one PointSetBC per component")
        if bc.batch_size is not None:
            raise ValueError(f"{where}: PointSetBC with batch_size is not supported")
        vals = torch.as_tensor(bc.values).to(dtype=points.dtype, device=points.device)
        if vals.ndim == 0:
            vals = vals.expand(points.shape[0])
        vals = vals.reshape(-1) if vals.ndim == 2 and vals.shape[1] == 1 else vals
        return Term(name, value(int(bc.component)), points, vals, residual=False)
    raise ValueError(f"{where}: unsupported boundary condition {kind}; supported: DirichletBC, "
                     f"NeumannBC, PointSetBC, IC")


def _dtype_device(model: Any) -> tuple[torch.dtype, torch.device]:
    for p in model.net.parameters():
        if p.is_floating_point():
            return p.dtype, p.device
    raise ValueError("model: model.net has no floating-point parameters")


def terms(model: Any, points: Mapping[str, Any] | None = None) -> list[Term]:
    """The pinnk terms of a DeepXDE model, in DeepXDE's loss order.

    Args:
        model: a ``deepxde.Model`` (PyTorch backend) with ``dde.data.PDE``/``TimePDE`` data.
        points: optional mapping term name -> points (m, d) replacing DeepXDE's training points
            for that term (the labels are recomputed from the BC function; a ``PointSetBC`` term
            keeps its own points).

    Returns:
        ``[pde terms..., bc terms...]``: one residual term per returned PDE residual (named
        ``"pde"`` when there is one, else ``"pde0"``, ``"pde1"``, ...; operator
        :class:`PDEOperator`, target 0) at ``data.train_x_all``, then one term ``"bc{k}"`` per
        ``data.bcs[k]`` at DeepXDE's collocation points of that condition:

        - ``DirichletBC``/``IC``: ``ops.value(component)`` with target ``func(x)``;
        - ``NeumannBC``: ``ops.directional(n(x), 1, component)`` with the geometry's outward
          normals n(x) and target ``func(x)`` (∂u/∂n = func);
        - ``PointSetBC``: ``ops.value(component)`` with target ``values``.

        Points are in the dtype and on the device of ``model.net``. The i-th term is the i-th
        entry of DeepXDE's loss vector (and of ``model.loss_weights``), up to DeepXDE's MSE being
        2× pinnk's loss ‖r‖²/(2n), a factor that cancels in trace weights and angles.
    """
    check_model(model)
    data = model.data
    dtype, device = _dtype_device(model)
    if points is not None and not isinstance(points, Mapping):
        raise TypeError(f"points: expected a mapping term name -> points or None, got "
                        f"{type(points).__name__}")
    if data.train_x is None or data.num_bcs is None:
        data.train_next_batch()
    X = data.train_x
    starts = np.cumsum([0] + list(data.num_bcs)).astype(int)
    out: list[Term] = []
    if data.pde is not None:
        x_pde = torch.as_tensor(np.asarray(X[starts[-1]:])).to(dtype=dtype, device=device)
        if x_pde.shape[0] == 0:
            raise ValueError("model: the PDE has no collocation points (num_domain and "
                             "num_boundary are 0)")
        with torch.no_grad():
            outs, order = _call_pde(data.pde, model.net, x_pde[:2])
        names = ["pde"] if len(outs) == 1 else [f"pde{k}" for k in range(len(outs))]
        for k, nm in enumerate(names):
            op = PDEOperator(data.pde, k, order=order)
            out.append(Term(nm, op, x_pde, None, residual=True))
    for k, bc in enumerate(data.bcs):
        pts = torch.as_tensor(np.asarray(X[starts[k]:starts[k + 1]])).to(dtype=dtype,
                                                                           device=device)
        if pts.shape[0] == 0:
            raise ValueError(f"model.data.bcs[{k}]: the condition has no collocation points")
        out.append(_bc_term(bc, k, pts))
    if points is not None:
        names = [t.name for t in out]
        unknown = set(points) - set(names)
        if unknown:
            raise ValueError(f"points: unknown term name(s) {sorted(unknown)}; expected {names}")
        for idx, t in enumerate(out):
            if t.name not in points:
                continue
            p = as_points(points[t.name], f"points[{t.name!r}]", dtype=dtype, device=device)
            if p.shape[1] != t.points.shape[1]:
                raise ValueError(f"points[{t.name!r}]: expected dimension {t.points.shape[1]}, "
                                 f"got {p.shape[1]}")
            if t.name.startswith("bc") and isinstance(data.bcs[int(t.name[2:])],
                                                      dde.icbc.PointSetBC):
                raise ValueError(f"points[{t.name!r}]: a PointSetBC term keeps its own points")
            if t.name.startswith("bc") and isinstance(data.bcs[int(t.name[2:])],
                                                      dde.icbc.NeumannBC):
                bc = data.bcs[int(t.name[2:])]
                field = Geometry(bc.geom).normal_field(p)
                out[idx] = Term(t.name, directional(field, 1, bc.component), p,
                                _FuncTarget(bc.func, f"model.data.bcs[{t.name[2:]}]"),
                                residual=False)
            else:
                out[idx] = t.with_points(p)
    return out


def kernel(model: Any, points: Mapping[str, Any] | None = None, *,
           implementation: str = "jacobian", chunk_size: int | None = None,
           max_memory: int | None = None) -> Kernel:
    """The empirical multi-block NTK of a DeepXDE model's terms (see :func:`terms`).

    Θ_ij = J_i J_jᵀ with J_i = ∇_θ r_i ∈ R^{n_i × P} over the trainable parameters of
    ``model.net`` (in float64 when the net is float64). Returns a lazy :class:`pinnk.Kernel`
    (``block``, ``diagonal``, ``trace_weights``, ``eigvalsh``, ...) whose term order is DeepXDE's
    loss order. ``implementation`` is ``"jacobian"`` (DeepXDE nets are not ``pinnk.MLP``, so
    ``"auto"`` means the same).
    """
    ts = terms(model, points)
    return Kernel(model.net, ts, implementation, chunk_size=chunk_size, max_memory=max_memory)


def trace_weights(model: Any, kind: str = "mean",
                  points: Mapping[str, Any] | None = None) -> list[float]:
    """Loss weights of a DeepXDE model by the NTK trace rule, in ``model.loss_weights`` order.

    ``kind="mean"``: λ_i = Σ_j m_j / m_i with m_i = tr Θ_ii / n_i; ``kind="sum"``:
    λ_i = Σ_j tr Θ_jj / tr Θ_ii (design.md §2). Only per-point diagonals are computed. Returns a
    list of T Python floats, ready for ``model.compile(..., loss_weights=...)``.
    """
    if kind not in ("mean", "sum"):
        raise ValueError(f"kind: expected 'mean' or 'sum', got {kind!r}")
    return [float(v) for v in kernel(model, points).trace_weights(kind)]


def angles(model: Any, term_a: str, term_b: str, points: Any) -> torch.Tensor:
    """Per-point cosine between the parameter gradients of two of the model's terms, evaluated at
    the same ``points`` (n, d):

        cos α(x) = Θ_ab(x, x) / sqrt(Θ_aa(x, x) Θ_bb(x, x))      (paper eq. 14, A-21)

    ``term_a``/``term_b`` are term names from :func:`terms` (e.g. ``"pde"``, ``"bc0"``). Returns a
    tensor (n,) in [−1, 1] in the net's dtype (NaN where a gradient vanishes).
    """
    for nm, v in (("term_a", term_a), ("term_b", term_b)):
        if not isinstance(v, str):
            raise TypeError(f"{nm}: expected a term name (str), got {type(v).__name__}")
    dtype, device = _dtype_device(model) if isinstance(model, dde.Model) else (None, None)
    p = as_points(points, "points", dtype=dtype, device=device)
    names = [t.name for t in terms(model)]
    for nm, v in (("term_a", term_a), ("term_b", term_b)):
        if v not in names:
            raise ValueError(f"{nm}: unknown term name {v!r}; expected one of {names}")
    by = {t.name: t for t in terms(model, {nm: p for nm in {term_a, term_b}})}
    return _angles(model.net, by[term_a], by[term_b], "jacobian")


# ---------------------------------------------------------------------------------- callback
class TraceWeights(dde.callbacks.Callback):
    """A DeepXDE callback applying the NTK trace rule to ``model.loss_weights`` during training.

    At the start of ``model.train`` and then every ``every`` iterations it computes
    λ = :func:`trace_weights` at the model's current training points (at most ``max_points`` per
    term, a random subset drawn from ``generator``) and sets

        model.loss_weights ← momentum · λ_old + (1 − momentum) · λ

    DeepXDE's PyTorch backend multiplies the loss vector by ``model.loss_weights`` at every step
    (``torch.as_tensor(model.loss_weights)``), so the new weights take effect from the next step
    without recompiling.

    Args:
        every: iterations between updates (>= 1).
        kind: ``"mean"`` or ``"sum"`` (see :func:`trace_weights`).
        momentum: in [0, 1); 0 replaces the weights outright.
        max_points: at most this many points per term (None: all of them).
        generator: a ``torch.Generator`` or int seed for the subsets.

    Attributes:
        history: a list of ``(iteration, weights)`` for every update.
    """

    def __init__(self, every: int = 100, kind: str = "mean", momentum: float = 0.0,
                 max_points: int | None = None, generator: Seed = None):
        super().__init__()
        self.every = check_int(every, "every", minimum=1)
        if kind not in ("mean", "sum"):
            raise ValueError(f"kind: expected 'mean' or 'sum', got {kind!r}")
        self.kind = kind
        if isinstance(momentum, bool) or not isinstance(momentum, numbers.Real) \
                or not 0.0 <= float(momentum) < 1.0:
            raise ValueError(f"momentum: expected a number in [0, 1), got {momentum!r}")
        self.momentum = float(momentum)
        self.max_points = None if max_points is None else check_int(max_points, "max_points",
                                                                     minimum=1)
        if isinstance(generator, numbers.Integral) and not isinstance(generator, bool):
            generator = torch.Generator().manual_seed(int(generator))
        if generator is not None and not isinstance(generator, torch.Generator):
            raise TypeError(f"generator: expected a torch.Generator, an int seed or None, got "
                            f"{type(generator).__name__}")
        self.generator = generator
        self.history: list = []
        self._since = 0

    def _points(self, ts: list[Term]) -> dict | None:
        if self.max_points is None:
            return None
        out = {}
        for t in ts:
            if t.n > self.max_points and not isinstance(t._target, torch.Tensor):
                idx = torch.randperm(t.n, generator=self.generator)[:self.max_points]
                out[t.name] = t.points[idx.to(t.points.device)]
        return out

    def update(self) -> list[float]:
        """Compute the trace-rule weights now and assign them to ``model.loss_weights``."""
        check_model(self.model)
        ts = terms(self.model)
        new = trace_weights(self.model, self.kind, self._points(ts))
        old = self.model.loss_weights
        if self.momentum > 0.0 and old is not None and len(old) == len(new):
            new = [self.momentum * float(o) + (1.0 - self.momentum) * w for o, w in zip(old, new)]
        if any(not np.isfinite(w) for w in new):
            warnings.warn(f"TraceWeights: non-finite trace weights {new}; keeping "
                          f"{self.model.loss_weights}", RuntimeWarning, stacklevel=2)
            return list(old) if old is not None else new
        self.model.loss_weights = new
        self.history.append((int(self.model.train_state.step), list(new)))
        return new

    def on_train_begin(self):
        self._since = 0
        self.update()

    def on_epoch_end(self):
        self._since += 1
        if self._since >= self.every:
            self._since = 0
            self.update()
