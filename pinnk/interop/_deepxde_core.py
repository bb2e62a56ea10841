"""DeepXDE (PyTorch backend) internals shared by :mod:`pinnk.interop.deepxde`: the geometry wrapper,
forward-mode evaluation of functions written with ``dde.grad``, and per-point tables for the
numpy-side data of a condition (normals, periodic partners) inside ``torch.func`` transforms."""

from __future__ import annotations

import inspect
import numbers
import os
from collections.abc import Callable
from typing import Any

os.environ.setdefault("DDE_BACKEND", "pytorch")

import deepxde as dde  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch.func import jvp  # noqa: E402

import deepxde.gradients as _dde_grad  # noqa: E402

from .._operators import Operator  # noqa: E402
from .._validation import as_points, check_int  # noqa: E402

Seed = torch.Generator | int | None

# ------------------------------------------------------------------------------------ helpers
def _seed_from(generator: Seed, name: str = "generator") -> int:
    """A 32-bit numpy seed drawn from a torch.Generator, an int, or torch's global RNG."""
    if generator is None:  # the CPU's global generator, whatever the default device
        return int(torch.randint(0, 2**32 - 1, (1,), device="cpu"))
    if isinstance(generator, torch.Generator):
        return int(torch.randint(0, 2**32 - 1, (1,), generator=generator,
                                 device=generator.device))
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


def nearest_rows(x: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """For every row of ``x`` (n, d), the index of the nearest row of ``table`` (m, d): shape (n,).

    Inside ``torch.func`` transforms a term's points cannot be turned into numpy, so the numpy
    side of a DeepXDE condition (normals, periodic partners, the ``X`` of a BC function) is
    computed once at the term's points and looked up here; the term is always evaluated at those
    same points, so the nearest row is the point itself.
    """
    p = table.to(dtype=x.dtype, device=x.device)
    return ((x[:, None, :] - p[None, :, :]) ** 2).sum(-1).argmin(dim=1)


class _NeedsX(Exception):
    """Raised when a DeepXDE function touches the numpy ``X`` it was given (see NoX)."""


def _needs_x(*args, **kwargs):
    raise _NeedsX()


class NoX:
    """Stands in for the numpy ``X`` of a DeepXDE function inside ``torch.func`` transforms,
    where the points are not available as numpy: any use raises, and the caller then takes the
    slower exact route (the function evaluated at the whole table of the term's points)."""

    __array_priority__ = 10**6
    __getattr__ = __getitem__ = __array__ = __len__ = __iter__ = _needs_x
    __float__ = __int__ = __index__ = __bool__ = __array_ufunc__ = __array_function__ = _needs_x


for _op in ("add", "sub", "mul", "truediv", "floordiv", "pow", "matmul", "mod"):
    setattr(NoX, f"__{_op}__", _needs_x)
    setattr(NoX, f"__r{_op}__", _needs_x)
for _op in ("neg", "pos", "abs", "lt", "le", "gt", "ge"):
    setattr(NoX, f"__{_op}__", _needs_x)
del _op


def numpy_of(x: torch.Tensor) -> np.ndarray:
    """``x`` (a plain tensor, not inside a transform) as a numpy array."""
    return x.detach().cpu().numpy()


# ---------------------------------------------------------------------------------- geometry
class Geometry:
    """A ``deepxde.geometry`` object as a pinnk domain.

    Args:
        geom: any ``deepxde.geometry.Geometry`` (Interval, TimeDomain, Rectangle, Disk, Polygon,
            CSG combinations, ...) or a ``deepxde.geometry.GeometryXTime`` (which in DeepXDE does
            not derive from ``Geometry``); for a space-time geometry the last coordinate is time.

    Attributes:
        geom: the wrapped DeepXDE geometry.
        dim: the input dimension d.

    DeepXDE samples with numpy's global RNG; every sampling method here seeds it from
    ``generator`` (a ``torch.Generator``, an int seed, or None for torch's global RNG) and restores
    numpy's state afterwards, so equal seeds give equal points.
    """

    def __init__(self, geom: Any):
        if not isinstance(geom, (dde.geometry.Geometry, dde.geometry.GeometryXTime)):
            raise TypeError(f"geom: expected a deepxde.geometry.Geometry or GeometryXTime, got "
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

    def sample_initial(self, n: int, generator: Seed = None, *, dtype: torch.dtype | None = None,
                       device: Any = None, random: str = "pseudo") -> torch.Tensor:
        """n points at the initial time t0 of a ``GeometryXTime``, shape (n, d)
        (``geom.random_initial_points``); a TypeError for a geometry without time."""
        if not isinstance(self.geom, dde.geometry.GeometryXTime):
            raise TypeError(f"geom: sample_initial needs a GeometryXTime, this geometry is a "
                            f"{type(self.geom).__name__}")
        n = check_int(n, "n", minimum=1)
        with _NumpySeed(_seed_from(generator)):
            pts = self.geom.random_initial_points(n, random=random)
        return _to_tensor(pts, dtype, device)

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
        p, nrm = self.table
        return nrm.to(dtype=x.dtype, device=x.device)[nearest_rows(x, p)]


# ------------------------------------------------------------------------- the PDE operator
class _Tape:
    """Derivatives of the network output in x by nested forward mode, standing in for
    ``dde.grad.jacobian``/``hessian`` while a PDE function runs."""

    def __init__(self, f: Callable, x: torch.Tensor, y: torch.Tensor, name: str = "pde"):
        self.x = x
        self.name = name
        self.entries: dict = {}
        self.cache: dict = {}
        self.max_order = 0
        self._register(y, f, 0)

    def _register(self, t: torch.Tensor, fn: Callable, order: int) -> None:
        self.entries[id(t)] = (t, fn, order)
        self.max_order = max(self.max_order, order)

    def _lookup(self, ys: Any, xs: Any, what: str):
        if xs is not self.x:
            raise ValueError(f"{self.name}: {what} was called with respect to a tensor other "
                             f"than the function's input x")
        entry = self.entries.get(id(ys))
        if entry is None or entry[0] is not ys:
            raise ValueError(f"{self.name}: {what} was called on a tensor that is neither the "
                             f"network output y nor a derivative returned by dde.grad; pinnk "
                             f"evaluates DeepXDE functions by forward mode and supports "
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


def column(r: Any, n: int, what: str) -> torch.Tensor:
    """A DeepXDE function's (n, 1) result as a tensor (n,), or a ValueError naming ``what``."""
    if not isinstance(r, torch.Tensor):
        raise ValueError(f"{what} is a {type(r).__name__}, expected a tensor of shape ({n}, 1)")
    out = r[:, 0] if r.ndim == 2 and r.shape[1] == 1 else r
    if tuple(out.shape) != (n,):
        raise ValueError(f"{what} must have shape ({n}, 1), got {tuple(r.shape)}")
    return out


def run_with_grad(fn: Callable[[torch.Tensor, torch.Tensor], Any], f: Callable,
                  x: torch.Tensor, name: str = "pde") -> tuple[Any, int]:
    """Run ``fn(x, f(x))`` while ``dde.grad.jacobian``/``hessian`` are forward-mode (a tape);
    returns (fn's result, the highest derivative order in x it asked for)."""
    def f2(z):
        out = f(z)
        return out.unsqueeze(-1) if out.ndim == 1 else out

    y = f2(x)
    tape = _Tape(f2, x, y, name)
    with _Patched(tape):
        try:
            out = fn(x, y)
        except (ValueError, _NeedsX):
            raise
        except RuntimeError as exc:
            raise ValueError(f"{name}: the DeepXDE function failed under pinnk's forward-mode "
                             f"evaluation ({exc}); take derivatives with dde.grad.jacobian / "
                             f"dde.grad.hessian, not torch.autograd.grad") from exc
    return out, tape.max_order


def _call_pde(pde: Callable, f: Callable, x: torch.Tensor) -> tuple[list, int]:
    """Run ``pde(x, f(x))`` with forward-mode dde.grad; returns (list of outputs, max order)."""
    out, order = run_with_grad(pde, f, x, "pde")
    return (list(out) if isinstance(out, (list, tuple)) else [out]), order


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
        return column(outs[self.index], x.shape[0], f"pde: residual {self.index}")

    def __repr__(self) -> str:
        return f"DeepXDE[{self.label}][{self.index}]"


