"""DeepXDE (PyTorch backend) interoperability: geometries, models, kernels, trace-rule callback.

Importing this module imports DeepXDE. DeepXDE chooses its backend when it is first imported;
this module calls ``os.environ.setdefault("DDE_BACKEND", "pytorch")`` before importing it, so the
PyTorch backend is used unless ``DDE_BACKEND`` was already set (or DeepXDE was already imported)
with another backend, in which case every model function raises a TypeError naming the backend.

What it offers:

- :class:`Geometry`: any ``deepxde.geometry`` object, ``GeometryXTime`` included, as a pinnk
  domain (``dim``, ``sample``, ``sample_boundary``, ``sample_initial``, ``normals``,
  ``normal_field``), with sampling reproducible from a ``torch.Generator`` or an int seed.
- :func:`terms`: a compiled or uncompiled ``deepxde.Model`` (``dde.data.PDE`` / ``TimePDE``) as
  pinnk :class:`~pinnk.Term` s in DeepXDE's loss order: the PDE residual(s) first (``"pde"``, or
  ``"pde0"``, ``"pde1"``, ... for a PDE function that returns a list), then one term per boundary
  or initial condition (``"bc0"``, ``"bc1"``, ...), each with the residual DeepXDE trains on.
  Every condition DeepXDE ships is supported: ``DirichletBC``, ``NeumannBC``, ``RobinBC``,
  ``PeriodicBC``, ``OperatorBC``, ``PointSetBC``, ``PointSetOperatorBC``, ``Interface2DBC`` and
  ``IC``.
- :func:`kernel`, :func:`trace_weights`, :func:`angles`: the empirical NTK of those terms.
- :class:`TraceWeights`: a ``deepxde.callbacks.Callback`` setting ``model.loss_weights`` by the
  trace rule every ``every`` iterations.
- :class:`GaussNewton`: trains a compiled model by damped Gauss–Newton (Levenberg–Marquardt)
  steps on its own loss (its PDE, its conditions, its ``loss_weights``), solved in function space
  with Θ, reporting in ``model.losshistory`` and calling DeepXDE callbacks as ``model.train``
  does.

How DeepXDE functions are evaluated. DeepXDE's PDE functions (and ``OperatorBC`` functions) take
derivatives with ``dde.grad.jacobian`` / ``dde.grad.hessian``, which use reverse-mode
``torch.autograd.grad`` in x. That cannot run inside the ``torch.func`` transforms
(``vmap``/``jacrev``) of pinnk's Jacobian kernel path. :class:`PDEOperator` therefore calls the
user's ``pde(x, y)`` while ``deepxde.grad.jacobian`` and ``deepxde.grad.hessian`` are temporarily
replaced by exact forward-mode equivalents (nested ``torch.func.jvp`` of the network in x). This
composes with every ``torch.func`` transform and agrees with DeepXDE's reverse mode to rounding.
Functions that DeepXDE hands numpy data (the ``X`` of ``RobinBC``, ``OperatorBC`` and
``PointSetOperatorBC`` functions, boundary normals, periodic partners) get it at the term's own
points, looked up per point inside transforms. Limitations: functions must take derivatives of the
network output ``y`` (or of tensors those functions returned) through
``dde.grad.jacobian``/``hessian`` — not of a slice such as ``y[:, 0:1]``, and not with
``torch.autograd.grad`` directly; the replacement is process-global while a residual is evaluated
(not thread-safe); external trainable variables (inverse problems) are held fixed; auxiliary
variables (``auxiliary_var_function``) are not supported.
"""

from __future__ import annotations

import inspect
import numbers
import warnings
from collections.abc import Mapping
from typing import Any

from ._deepxde_core import Geometry, PDEOperator, Seed, dde, np, torch
from ._deepxde_gn import GaussNewton
from ._deepxde_terms import (
    Loss, LossCache, at_points, check_model, dtype_device as _dtype_device, loss_terms,
    losses_of as _losses,
)
from .._kernel import Kernel, jacobian_rows
from .._terms import Term
from .._validation import as_points, check_int

__all__ = [
    "Geometry", "PDEOperator", "terms", "kernel", "trace_weights", "angles", "TraceWeights",
    "GaussNewton", "check_model",
]


# ------------------------------------------------------------------------------------ terms
def terms(model: Any, points: Mapping[str, Any] | None = None) -> list[Term]:
    """The pinnk terms of a DeepXDE model, in DeepXDE's loss order.

    Args:
        model: a ``deepxde.Model`` (PyTorch backend) with ``dde.data.PDE``/``TimePDE`` data.
        points: optional mapping term name -> points (m, d) replacing DeepXDE's training points
            for that term (labels are recomputed from the condition's function). A
            ``PointSetBC``, ``PointSetOperatorBC`` or ``Interface2DBC`` has labels (or pairs)
            only at its own points: its points must be a subset of them.

    Returns:
        ``[pde terms..., bc terms...]``: one residual term per returned PDE residual (named
        ``"pde"`` when there is one, else ``"pde0"``, ``"pde1"``, ...; operator
        :class:`PDEOperator`, target 0) at ``data.train_x_all``, then one term ``"bc{k}"`` per
        ``data.bcs[k]`` at DeepXDE's collocation points of that condition, whose residual is the
        error DeepXDE trains on (``bc.error``), row for row:

        - ``DirichletBC``/``IC``: ``ops.value(component)`` with target ``func(x)``;
        - ``NeumannBC``: ``ops.directional(n(x), 1, component)`` with the geometry's outward
          normals n(x) (zero in time for a ``GeometryXTime``) and target ``func(x)``;
        - ``RobinBC``: ∂u_c/∂n − func(X, u) (a ``RobinOperator``), target 0;
        - ``PeriodicBC``: D u_c(x) − D u_c(x') at the first point x of each of DeepXDE's pairs,
          x' its periodic partner, D the value or ∂/∂x_{component_x} by ``derivative_order``
          (a ``PeriodicOperator``; n/2 rows for DeepXDE's n points);
        - ``OperatorBC``: ``func(x, y, X)`` (a ``FunctionOperator``), target 0;
        - ``PointSetBC``: ``ops.value(component)`` with target ``values`` (the current batch's
          values with ``batch_size``); with a list of k components one term of n·k rows whose
          points are (n·k, d + 1): each point followed by the position of its component in the
          list (a ``ComponentRows`` operator), point-major as DeepXDE's (n, k) error flattens;
        - ``PointSetOperatorBC``: ``func(x, y, X)`` with target ``values``;
        - ``Interface2DBC``: ⟨u(x), d1⟩ + ⟨u(x'), d2⟩ with target ``func(x)`` at the first edge's
          points x, x' the paired point of the second edge (n/2 rows).

        Points are in the dtype and on the device of ``model.net``. The i-th term is the i-th
        entry of DeepXDE's loss vector (and of ``model.loss_weights``): DeepXDE's loss entry is
        ``mean(r_i²)``, 2× pinnk's loss ‖r_i‖²/(2 n_i), a constant factor that cancels in
        trace weights and angles (an optimizer of DeepXDE's total loss Σ_i w_i mean(r_i²) sees
        pinnk weights 2 w_i).
    """
    losses, dtype, device = _losses(model)
    if points is not None and not isinstance(points, Mapping):
        raise TypeError(f"points: expected a mapping term name -> points or None, got "
                        f"{type(points).__name__}")
    points = dict(points or {})
    names = [loss.name for loss in losses]
    unknown = set(points) - set(names)
    if unknown:
        raise ValueError(f"points: unknown term name(s) {sorted(unknown)}; expected {names}")
    return [loss.term(at_points(loss, points[loss.name], dtype, device))
            if loss.name in points else loss.term() for loss in losses]


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


def _check_kind(kind: Any) -> str:
    if kind not in ("mean", "sum"):
        raise ValueError(f"kind: expected 'mean' or 'sum', got {kind!r}")
    return kind


def trace_weights(model: Any, kind: str = "mean",
                  points: Mapping[str, Any] | None = None) -> list[float]:
    """Loss weights of a DeepXDE model by the NTK trace rule, in ``model.loss_weights`` order.

    ``kind="mean"``: λ_i = Σ_j m_j / m_i with m_i = tr Θ_ii / n_i; ``kind="sum"``:
    λ_i = Σ_j tr Θ_jj / tr Θ_ii (design.md §2). Only per-point diagonals are computed. Returns a
    list of T Python floats, ready for ``model.compile(..., loss_weights=...)``.
    """
    _check_kind(kind)
    return [float(v) for v in kernel(model, points).trace_weights(kind)]


def angles(model: Any, term_a: str, term_b: str, points: Any = None) -> torch.Tensor:
    """Per-point cosine between the parameter gradients of two of the model's terms, evaluated at
    the same points:

        cos α(x) = Θ_ab(x, x) / sqrt(Θ_aa(x, x) Θ_bb(x, x))      (paper eq. 14, A-21)

    Args:
        model: a ``deepxde.Model`` (see :func:`terms`).
        term_a: a term name from :func:`terms` (e.g. ``"pde"``, ``"bc0"``).
        term_b: another term name.
        points: the points (n, d), or None for the points of a term that has labels only at its
            own points (a ``PointSetBC``, ``PointSetOperatorBC`` or ``Interface2DBC``: the other
            term is evaluated at its points), else the training points of ``term_a``. Labels do
            not enter the gradients, so a ``PointSetBC`` (or ``PointSetOperatorBC``) term is
            evaluated at any given points too; an ``Interface2DBC`` only at its own.

    Returns:
        A tensor (n,) in [−1, 1] in the net's dtype (NaN where a gradient vanishes); for a
        ``PointSetBC`` with k components, (n·k,) in its row order (each point, then component).
    """
    for nm, v in (("term_a", term_a), ("term_b", term_b)):
        if not isinstance(v, str):
            raise TypeError(f"{nm}: expected a term name (str), got {type(v).__name__}")
    losses, dtype, device = _losses(model)
    by = {loss.name: loss for loss in losses}
    for nm, v in (("term_a", term_a), ("term_b", term_b)):
        if v not in by:
            raise ValueError(f"{nm}: unknown term name {v!r}; expected one of {list(by)}")
    la, lb = by[term_a], by[term_b]
    if points is None:
        own = la if la.keeps_points or not lb.keeps_points else lb
        p = own.base
    else:
        p = as_points(points, "points", dtype=dtype, device=device)
        if p.shape[1] != la.base.shape[1]:
            raise ValueError(f"points: expected dimension {la.base.shape[1]}, got {p.shape[1]}")
    ta, rows_a = la.probe(p)
    tb, rows_b = lb.probe(rows_a)
    if tb.n != ta.n:
        if rows_a.shape[0] != p.shape[0]:
            raise ValueError(f"term_b: angles between two PointSetBC terms with lists of "
                             f"components ({term_a!r}, {term_b!r}) are not supported")
        ta, _ = la.probe(rows_b)
    # row by row (the rows of a multi-component PointSetBC carry a component column, so the two
    # terms' points differ even where they sit at the same x)
    cross, aa, bb = [], [], []
    for s in range(0, ta.n, 256):
        Ja = jacobian_rows(model.net, ta.operator, ta.points[s:s + 256])
        Jb = jacobian_rows(model.net, tb.operator, tb.points[s:s + 256])
        cross.append((Ja * Jb).sum(1))
        aa.append((Ja * Ja).sum(1))
        bb.append((Jb * Jb).sum(1))
    denom = torch.sqrt(torch.cat(aa) * torch.cat(bb))
    cos = torch.cat(cross) / denom
    return torch.where(denom > 0, cos.clamp(-1.0, 1.0), cos)


# ---------------------------------------------------------------------------------- callback
def _fmt(weights: Any) -> str:
    return "[" + ", ".join(f"{float(w):.4g}" for w in weights) + "]"


class _CompileHook:
    """``model.compile`` wrapped on the model instance, holding what the model's
    :class:`TraceWeights` callbacks share: the last weights a callback assigned (``applied``),
    the user's weights they were built on (``base``, so that a later callback — a new one for the
    L-BFGS phase, say — does not take trace weights for the user's) and ``keep_weights`` of the
    last callback attached. DeepXDE's ``compile`` sets ``model.loss_weights`` to its
    ``loss_weights`` argument, None by default, which drops the trace weights: after a compile
    without ``loss_weights`` the hook restores them (``keep_weights``) or says they are gone.
    """

    def __init__(self, model: Any):
        self.model = model
        self.compile_fn = model.compile
        self.keep_weights = True
        self.applied: list | None = None
        self.base: list | None = None
        self.signature = inspect.signature(dde.Model.compile)

    @classmethod
    def of(cls, model: Any) -> "_CompileHook":
        """The model's hook, installed on first use."""
        hook = model.__dict__.get("compile")
        if not isinstance(hook, cls):
            hook = cls(model)
            model.compile = hook
        return hook

    def __call__(self, *args, **kwargs):
        result = self.compile_fn(*args, **kwargs)
        try:
            bound = self.signature.bind(None, *args, **kwargs).arguments
        except TypeError:  # DeepXDE accepted what the signature refuses: nothing to restore
            return result
        if bound.get("loss_weights") is None and self.applied is not None:
            self._reset(bound.get("optimizer"))
        return result

    def _reset(self, optimizer: Any) -> None:
        applied = self.applied
        if self.keep_weights:
            self.model.loss_weights = list(applied)
            warnings.warn(f"TraceWeights: model.compile({optimizer!r}) reset model.loss_weights; "
                          f"kept the trace weights {_fmt(applied)} of the last update "
                          f"(pass loss_weights= to compile to choose others, or "
                          f"TraceWeights(keep_weights=False) to let DeepXDE reset them)",
                          UserWarning, stacklevel=3)
        else:
            warnings.warn(f"TraceWeights: model.compile({optimizer!r}) reset model.loss_weights "
                          f"to None; the trace weights {_fmt(applied)} are no longer "
                          f"applied (pass this callback to model.train again to recompute "
                          f"them)", UserWarning, stacklevel=3)


class TraceWeights(dde.callbacks.Callback):
    """A DeepXDE callback applying the NTK trace rule to ``model.loss_weights`` during training.

    At the start of ``model.train`` and then every ``every`` iterations it computes the trace
    weights λ = :func:`trace_weights` at the model's current training points (at most
    ``max_points`` per term, a random subset drawn from ``generator``), smooths them,

        λ ← momentum · λ_old + (1 − momentum) · λ,

    and sets ``model.loss_weights`` to ``w_user · λ`` (``user_weights="multiply"``, the default:
    the weights the model was compiled with are kept as factors; None counts as ones) or to ``λ``
    (``user_weights="replace"``). A UserWarning says which is in effect whenever the model has
    weights other than ones. DeepXDE's PyTorch backend multiplies the loss vector by
    ``model.loss_weights`` at every step (``torch.as_tensor(model.loss_weights)``), so the new
    weights take effect from the next step without recompiling.

    Args:
        every: iterations between updates (>= 1), counted in DeepXDE's ``train_state.step``.
            Under Adam and the other ``torch.optim`` optimizers DeepXDE calls callbacks after
            every iteration. Under L-BFGS it calls them only between its L-BFGS steps of up to
            1000 iterations each (``LBFGS_options["iter_per_step"]``), so the weights change there
            — at the first step end at least ``every`` iterations after the last update — never
            inside a step, where a new objective would break L-BFGS's line search.
        kind: ``"mean"`` or ``"sum"`` (see :func:`trace_weights`).
        momentum: in [0, 1); 0 replaces λ outright.
        max_points: at most this many rows per term (None: all of them), a random subset
            drawn at every update. The defaults, ``every=500`` and ``max_points=128``, keep the
            callback's cost at or under 5% of the training time on DeepXDE's example problems
            (3% or less between updates once training runs; with ``every=100`` the smallest
            examples pay 7–15%, and all points cost Lotka–Volterra 50%): measured by
            ``python -m pinnk.benchmarks.deepxde_callback``, figures in the DeepXDE tutorial.
        generator: a ``torch.Generator`` or int seed for the subsets.
        user_weights: ``"multiply"`` or ``"replace"`` (see above).
        keep_weights: DeepXDE's ``model.compile`` resets ``model.loss_weights`` (to None unless
            ``loss_weights`` is passed), e.g. when switching from Adam to L-BFGS. With True (the
            default) a recompile without ``loss_weights`` restores the last weights this callback
            set, with a UserWarning saying so; with False DeepXDE's reset stands, with a
            UserWarning saying the trace weights are gone. Either way, passing the callback to
            the next ``model.train`` recomputes them there.

    A model with a single loss term (e.g. hard constraints and one PDE residual) has trace weight
    1 whatever the kernel: the callback warns once and makes no updates.

    Attributes:
        history: a list of ``(iteration, weights)`` for every update, ``weights`` the list
            assigned to ``model.loss_weights``.
        trace: the current smoothed trace weights λ (a list), or None before the first update.
    """

    def __init__(self, every: int = 500, kind: str = "mean", momentum: float = 0.0,
                 max_points: int | None = 128, generator: Seed = None, *,
                 user_weights: str = "multiply", keep_weights: bool = True):
        super().__init__()
        self.every = check_int(every, "every", minimum=1)
        self.kind = _check_kind(kind)
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
        if user_weights not in ("multiply", "replace"):
            raise ValueError(f"user_weights: expected 'multiply' or 'replace', got "
                             f"{user_weights!r}")
        self.user_weights = user_weights
        if not isinstance(keep_weights, bool):
            raise TypeError(f"keep_weights: expected True or False, got {keep_weights!r}")
        self.keep_weights = keep_weights
        self.history: list = []
        self.trace: list | None = None
        self._hook: _CompileHook | None = None
        self._warned_base: list | None = None
        self._single = False
        self._next = 0
        self._cache = LossCache()

    # ------------------------------------------------------------------------- DeepXDE hooks
    def init(self):
        """Called by DeepXDE when the callback is given a (new) model: start afresh and watch
        the model's ``compile`` (see ``keep_weights``)."""
        self.history, self.trace = [], None
        self._warned_base = None
        self._single = False
        self._hook = _CompileHook.of(self.model)
        self._hook.keep_weights = self.keep_weights

    def on_train_begin(self):
        self._cache.clear()
        losses = self._current_losses()
        if len(losses) == 1:
            if not self._single:
                warnings.warn(f"TraceWeights: the model has a single loss term "
                              f"({losses[0].name!r}), whose trace weight is always 1; the "
                              f"callback makes no updates", UserWarning, stacklevel=2)
            self._single = True
            return
        self._single = False
        self._set_base(len(losses))
        self.update(losses)

    def on_epoch_end(self):
        if self._single or self.model.train_state.step < self._next:
            return
        self.update()

    # ---------------------------------------------------------------------------- the rule
    def _set_base(self, n_terms: int) -> None:
        """The user's weights: model.loss_weights unless a TraceWeights callback set them."""
        hook = self._hook
        lw = self.model.loss_weights
        if lw is not None and hook.applied is not None and \
                [float(w) for w in np.ravel(lw)] == hook.applied:
            return
        if lw is None:
            hook.base = None
            return
        base = [float(w) for w in np.ravel(lw)]
        if len(base) != n_terms:
            raise ValueError(f"model.loss_weights: expected {n_terms} weights (one per loss "
                             f"term), got {len(base)}")
        hook.base = base
        if all(w == 1.0 for w in base) or base == self._warned_base:
            return
        self._warned_base = base
        if self.user_weights == "multiply":
            warnings.warn(f"TraceWeights(user_weights='multiply'): model.loss_weights "
                          f"{_fmt(base)} are kept as factors: loss_weights = {_fmt(base)} × "
                          f"trace weights (user_weights='replace' drops them)", UserWarning,
                          stacklevel=3)
        else:
            warnings.warn(f"TraceWeights(user_weights='replace'): model.loss_weights "
                          f"{_fmt(base)} are replaced by the trace weights "
                          f"(user_weights='multiply' keeps them as factors)", UserWarning,
                          stacklevel=3)

    def _current_losses(self) -> list[Loss]:
        """The model's losses (rebuilt only when its training points, dtype or device change)."""
        return self._cache.get(self.model)

    def _terms(self, losses: list[Loss]) -> list[Term]:
        return loss_terms(losses, self.max_points, self.generator)

    def update(self, losses: list[Loss] | None = None) -> list[float]:
        """Compute the trace-rule weights now and assign them to ``model.loss_weights``; returns
        the assigned list."""
        if losses is None:
            losses = self._current_losses()
        ts = self._terms(losses)
        lam = [float(v) for v in Kernel(self.model.net, ts, "jacobian").trace_weights(self.kind)]
        if self.momentum > 0.0 and self.trace is not None and len(self.trace) == len(lam):
            lam = [self.momentum * o + (1.0 - self.momentum) * w for o, w in zip(self.trace, lam)]
        step = int(self.model.train_state.step)
        self._next = step + self.every
        if any(not np.isfinite(w) for w in lam):
            warnings.warn(f"TraceWeights: non-finite trace weights {lam} at iteration {step}; "
                          f"keeping model.loss_weights = {self.model.loss_weights}",
                          RuntimeWarning, stacklevel=2)
            old = self.model.loss_weights
            return [float(w) for w in old] if old is not None else lam
        self.trace = lam
        base = self._hook.base
        if self.user_weights == "multiply" and base is not None:
            new = [b * w for b, w in zip(base, lam)]
        else:
            new = list(lam)
        self.model.loss_weights = new
        self._hook.applied = list(new)
        self.history.append((step, list(new)))
        return new
