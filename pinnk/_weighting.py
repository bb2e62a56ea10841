"""Loss-weighting strategies: objects passed to the trainer, never global flags.

The trainer calls, in this order, at every step:

1. ``term_losses(residuals, terms)`` — the per-term losses L_i (default ‖r_i‖²/(2 n_i));
2. ``update(step, model, terms, losses)`` — the strategy refreshes its weights when due;
3. ``weights`` — the current λ (T,), detached; the total loss is Σ_i λ_i L_i.

``state_dict``/``load_state_dict`` make a resumed run continue exactly.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from ._kernel import Kernel
from ._terms import Term
from ._validation import check_float, check_int


class Weighting:
    """Base class: constant unit weights and mean-square term losses."""

    name = "weighting"

    def __init__(self) -> None:
        self._names: list[str] = []
        self._w: torch.Tensor | None = None
        self.time_index: int | None = None

    # --------------------------------------------------------------------------- lifecycle
    def setup(self, names: Sequence[str], time_index: int | None = None) -> None:
        """Called once by the trainer with the term names (and the time coordinate, if any)."""
        self._names = list(names)
        self.time_index = time_index
        if self._w is None or self._w.shape[0] != len(self._names):
            self._w = self.initial_weights()

    def initial_weights(self) -> torch.Tensor:
        return torch.ones(len(self._names), dtype=torch.float64)

    @property
    def names(self) -> list[str]:
        return list(self._names)

    @property
    def weights(self) -> torch.Tensor:
        """The current weights λ, shape (T,), float64, detached, in the order of the names."""
        if self._w is None:
            raise RuntimeError("weighting: call setup(names) before reading the weights")
        return self._w

    def weights_dict(self) -> dict:
        return {nm: float(w) for nm, w in zip(self._names, self.weights)}

    def term_losses(self, residuals: Sequence[torch.Tensor], terms: Sequence[Term]) -> list:
        """Per-term losses L_i = ‖r_i‖² / (2 n_i) (scalar tensors with their graphs)."""
        return [0.5 * (r * r).mean() for r in residuals]

    def point_weights(self, residuals: Sequence[torch.Tensor], terms: Sequence[Term]) -> list:
        """Per term, the per-point coefficients c (n_i,) of its loss L_i = ½ Σ_p c_p r_p²
        (detached; 1/n_i for the mean loss): the loss as a weighted least-squares problem, which
        the Gauss–Newton solver needs."""
        return [torch.full_like(r.detach(), 1.0 / r.shape[0]) for r in residuals]

    def update(self, step: int, model: torch.nn.Module, terms: Sequence[Term],
               losses: Sequence[torch.Tensor]) -> bool:
        """Refresh the weights if due at ``step``; returns True when they changed."""
        return False

    def info(self) -> dict:
        """Extra scalars for the history (e.g. causal weights)."""
        return {}

    def state_dict(self) -> dict:
        return {"weights": None if self._w is None else self._w.clone(), "names": self._names}

    def load_state_dict(self, state: Mapping) -> None:
        self._names = list(state["names"])
        self._w = None if state["weights"] is None else state["weights"].clone()

    def config(self) -> dict:
        """A JSON-able description (the resolved run config)."""
        return {"kind": self.name}


class _Smoothed(Weighting):
    """A strategy that recomputes its weights every ``every`` steps and smooths them as
    λ ← momentum·λ + (1 − momentum)·λ_new (the first computation is taken as it is); new
    weights above ``max_weight`` are clipped, with a warning."""

    def __init__(self, every: int, momentum: float, max_weight: float = 1e6):
        super().__init__()
        self.every = check_int(every, "every", minimum=1)
        self.momentum = check_float(momentum, "momentum", nonnegative=True)
        if self.momentum >= 1.0:
            raise ValueError(f"momentum: expected a number in [0, 1), got {self.momentum}")
        self.max_weight = check_float(max_weight, "max_weight", positive=True)
        self._updated = False

    def _clip(self, lam: torch.Tensor, terms: Sequence[Term], why: str) -> torch.Tensor:
        """``lam`` clipped to ``max_weight``; a UserWarning names the clipped terms."""
        over = lam > self.max_weight
        if bool(over.any()):
            names = [t.name for t, o in zip(terms, over) if o]
            warnings.warn(f"{type(self).__name__}: the weight of {names} exceeds max_weight="
                          f"{self.max_weight:g} ({why}); clipped", UserWarning, stacklevel=3)
            lam = lam.clamp(max=self.max_weight)
        return lam

    def new_weights(self, model, terms, losses) -> torch.Tensor | None:
        """The unsmoothed weights λ_new (T,), or None to keep the current ones."""
        raise NotImplementedError

    def update(self, step, model, terms, losses) -> bool:
        if step % self.every != 0:
            return False
        new = self.new_weights(model, terms, losses)
        if new is None:
            return False
        new = new.to(torch.float64).cpu()
        self._w = new if not self._updated else \
            self.momentum * self._w + (1.0 - self.momentum) * new
        self._updated = True
        return True

    def state_dict(self) -> dict:
        return {**super().state_dict(), "updated": self._updated}

    def load_state_dict(self, state) -> None:
        super().load_state_dict(state)
        self._updated = bool(state["updated"])


class Fixed(Weighting):
    """Constant weights λ_i.

    Args:
        weights: a mapping term name -> weight (terms not named get 1.0) or a sequence with one
            weight per term; non-negative and finite. None gives all ones.
    """

    name = "fixed"

    def __init__(self, weights: Mapping[str, float] | Sequence[float] | None = None):
        super().__init__()
        if weights is not None and not isinstance(weights, (Mapping, Sequence)):
            raise TypeError(f"weights: expected a mapping name -> weight or a sequence, got "
                            f"{type(weights).__name__}")
        items = weights.values() if isinstance(weights, Mapping) else (weights or [])
        for v in items:
            check_float(v, "weights", nonnegative=True)
        self.spec = weights

    def initial_weights(self) -> torch.Tensor:
        T = len(self._names)
        if self.spec is None:
            return torch.ones(T, dtype=torch.float64)
        if isinstance(self.spec, Mapping):
            unknown = set(self.spec) - set(self._names)
            if unknown:
                raise ValueError(f"weights: unknown term name(s) {sorted(unknown)}; the terms are "
                                 f"{self._names}")
            return torch.tensor([float(self.spec.get(nm, 1.0)) for nm in self._names],
                                dtype=torch.float64)
        if len(self.spec) != T:
            raise ValueError(f"weights: expected {T} weights (one per term {self._names}), got "
                             f"{len(self.spec)}")
        return torch.tensor([float(v) for v in self.spec], dtype=torch.float64)

    def config(self) -> dict:
        spec = dict(self.spec) if isinstance(self.spec, Mapping) else self.spec
        return {"kind": self.name, "weights": spec}


class TraceNTK(_Smoothed):
    """The NTK trace rule (design.md §2, paper eq. 13; Wang, Yu, Perdikaris 2022).

        mean form: λ_i = Σ_j m_j / m_i,  m_i = tr Θ_ii / n_i;   sum form: λ_i = Σ_j tr Θ_jj / tr Θ_ii

    computed every ``every`` steps from the per-point kernel diagonals Θ_ii(x, x) = ‖∇_θ r_i(x)‖²
    on the current points (the structured path where it applies; never a full block), then
    smoothed as λ ← momentum·λ + (1 − momentum)·λ_new.

    Args:
        every: steps between updates (>= 1).
        kind: ``"mean"`` (fits the mean loss; independent of point counts) or ``"sum"``.
        momentum: in [0, 1); 0 takes the new weights as they are.
        max_points: at most this many points per term enter the traces (the first ones; the
            points are random samples, so this is an unbiased subsample).
        max_weight: the weights are clipped to at most this value. A term whose kernel nearly
            vanishes (a constraint the network satisfies by construction, up to round-off)
            would otherwise get a weight of 1e14 that turns round-off into loss; clipping is
            reported with a warning.
        implementation: passed to :func:`pinnk.ntk`.
    """

    name = "trace"

    def __init__(self, every: int = 100, kind: str = "mean", momentum: float = 0.0,
                 max_points: int = 1024, max_weight: float = 1e6, implementation: str = "auto"):
        super().__init__(every, momentum, max_weight)
        if kind not in ("mean", "sum"):
            raise ValueError(f"kind: expected 'mean' or 'sum', got {kind!r}")
        self.kind = kind
        self.max_points = check_int(max_points, "max_points", minimum=1)
        self.implementation = implementation

    def compute(self, model: torch.nn.Module, terms: Sequence[Term]) -> torch.Tensor:
        """The trace-rule weights for the current model and points, shape (T,)."""
        sub = [t if t.n <= self.max_points else Term(t.name, t.operator, t.points[:self.max_points])
               for t in terms]
        lam = Kernel(model, sub, self.implementation).trace_weights(self.kind)
        return self._clip(lam, terms, "its kernel nearly vanishes")

    def new_weights(self, model, terms, losses) -> torch.Tensor:
        return self.compute(model, terms)

    def config(self) -> dict:
        return {"kind": self.name, "every": self.every, "trace": self.kind,
                "momentum": self.momentum, "max_points": self.max_points,
                "max_weight": self.max_weight,
                "implementation": str(getattr(self.implementation, "value", self.implementation))}


class GradNorm(_Smoothed):
    """Learning-rate annealing (Wang, Teng, Perdikaris 2021, Algorithm 1).

        λ̂_i = max_θ |∇_θ L_r| / mean_θ |∇_θ L_i|,   λ_i ← α λ_i + (1 − α) λ̂_i

    for every term i that is not a PDE residual; residual terms (zero target, derivative
    operator) keep λ = 1 and the max runs over all of them. Every ``every`` steps. With no
    residual term (a regression with derivative labels) or only residual terms there is nothing
    to balance against, and the weights stay as they are.

    Args:
        every: steps between updates.
        momentum: α in [0, 1) (the paper uses 0.9).
        max_weight: new weights are clipped to at most this value. Once a term is fitted its
            mean gradient magnitude tends to 0 and λ̂_i grows without bound (the benchmark suite
            measured boundary weights of 1e10 on poisson-1d, which then ignores its residual);
            clipping is reported with a warning.
    """

    name = "gradnorm"

    def __init__(self, every: int = 10, momentum: float = 0.9, max_weight: float = 1e6):
        super().__init__(every, momentum, max_weight)

    def new_weights(self, model, terms, losses) -> torch.Tensor | None:
        params = [p for p in model.parameters() if p.requires_grad]
        residual = [k for k, t in enumerate(terms) if t.is_residual]
        if not residual or len(residual) == len(terms):
            return None
        stats = []
        for k, L in enumerate(losses):
            gs = torch.autograd.grad(L, params, retain_graph=True, allow_unused=True)
            flat = torch.cat([(torch.zeros_like(p) if g is None else g).reshape(-1).abs()
                              for g, p in zip(gs, params)])
            stats.append((float(flat.max()), float(flat.mean())))
        gmax = max(stats[k][0] for k in residual)
        new = self._w.clone()
        for k in range(len(terms)):
            if k in residual:
                new[k] = 1.0
            elif stats[k][1] > 0:
                new[k] = gmax / stats[k][1]
        return self._clip(new, terms, "its gradients nearly vanish")

    def config(self) -> dict:
        return {"kind": self.name, "every": self.every, "momentum": self.momentum,
                "max_weight": self.max_weight}


class Causal(Weighting):
    """Causal training (Wang, Sankaran, Perdikaris 2022), combined with another strategy.

    The residual points of each PDE-residual term are split into ``chunks`` equal time slabs
    t_0 < ... < t_{M−1}; with L_k the mean squared residual in slab k,

        w_k = exp(−ε Σ_{j<k} L_j)  (held constant in the gradient),   L_r = Σ_k w_k L_k / (2M)

    so later times are fitted only once earlier ones are. The term weights λ come from ``inner``
    (default :class:`Fixed`). Needs the problem's time coordinate (``time_index``); for a
    steady problem only ``inner`` acts, and :meth:`setup` warns so.

    Args:
        epsilon: ε > 0, the causality parameter.
        chunks: M >= 1 time slabs.
        inner: the strategy for the term weights (:class:`Fixed`, :class:`TraceNTK`,
            :class:`GradNorm`).
    """

    name = "causal"

    def __init__(self, epsilon: float = 1.0, chunks: int = 16, inner: Weighting | None = None):
        super().__init__()
        self.epsilon = check_float(epsilon, "epsilon", positive=True)
        self.chunks = check_int(chunks, "chunks", minimum=1)
        if inner is not None and (not isinstance(inner, Weighting) or isinstance(inner, Causal)):
            raise TypeError("inner: expected a non-causal pinnk.weighting strategy")
        self.inner = inner if inner is not None else Fixed()
        self._min_weight = 1.0

    def setup(self, names, time_index=None) -> None:
        super().setup(names, time_index)
        self.inner.setup(names, time_index)
        if time_index is None:
            warnings.warn(f"weighting: causal weighting needs a time coordinate and this problem "
                          f"has none; only its inner strategy {self.inner.name!r} acts",
                          UserWarning, stacklevel=2)

    @property
    def weights(self) -> torch.Tensor:
        return self.inner.weights

    def _slabs(self, r: torch.Tensor, t: Term) -> tuple:
        """The point indices of the non-empty time slabs of a residual term, their mean squared
        residuals L_k and the causal weights w_k (detached)."""
        time = t.points[:, self.time_index].to(r.device)
        order = torch.argsort(time)
        slabs = [s for s in torch.tensor_split(order, self.chunks) if s.numel() > 0]
        Lk = torch.stack([(r[s] * r[s]).mean() for s in slabs])
        w = torch.exp(-self.epsilon * torch.cumsum(Lk.detach(), 0) + self.epsilon * Lk.detach())
        return slabs, Lk, w

    def term_losses(self, residuals, terms) -> list:
        if self.time_index is None:
            return self.inner.term_losses(residuals, terms)
        out = []
        mins = []
        for r, t in zip(residuals, terms):
            if not t.is_residual:
                out.append(0.5 * (r * r).mean())
                continue
            _, Lk, w = self._slabs(r, t)
            mins.append(w.min())
            out.append(0.5 * (w * Lk).mean())
        if mins:  # kept on the device: read (one synchronisation) only when reported
            self._min_weight = torch.stack(mins).min()
        return out

    def point_weights(self, residuals, terms) -> list:
        """c_p = w_k / (M m_k) for a point in slab k (m_k points) of a residual term: the causal
        loss ½ Σ_k w_k L_k / M written point by point."""
        out = self.inner.point_weights(residuals, terms)
        if self.time_index is None:
            return out
        for i, (r, t) in enumerate(zip(residuals, terms)):
            if not t.is_residual:
                continue
            slabs, _, w = self._slabs(r.detach(), t)
            c = torch.empty_like(r.detach())
            for s, wk in zip(slabs, w):
                c[s] = wk / (len(slabs) * s.numel())
            out[i] = c
        return out

    def update(self, step, model, terms, losses) -> bool:
        return self.inner.update(step, model, terms, losses)

    def info(self) -> dict:
        return {"causal_min_weight": float(self._min_weight)}

    def state_dict(self) -> dict:
        return {"inner": self.inner.state_dict(), "names": self._names,
                "min_weight": float(self._min_weight)}

    def load_state_dict(self, state) -> None:
        self._names = list(state["names"])
        self.inner.load_state_dict(state["inner"])
        self._min_weight = float(state["min_weight"])

    def config(self) -> dict:
        return {"kind": self.name, "epsilon": self.epsilon, "chunks": self.chunks,
                "inner": self.inner.config()}


_KINDS = {"fixed": Fixed, "trace": TraceNTK, "gradnorm": GradNorm}


def from_spec(spec: str | Mapping | Weighting) -> Weighting:
    """Build a strategy from a string or a config mapping.

    Strings: ``"fixed"``, ``"fixed:bc=10,ic=100"``, ``"trace"``, ``"trace:every=50,kind=sum,
    momentum=0.9"``, ``"gradnorm:every=10"``, ``"causal:epsilon=1,chunks=32+trace:every=100"``
    (causal combined with another strategy by ``+``). Mappings are the output of ``config()``.
    """
    if isinstance(spec, Weighting):
        return spec
    if isinstance(spec, Mapping):
        kind = spec.get("kind")
        args = {k: v for k, v in spec.items() if k != "kind"}
        if kind == "causal":
            inner = args.pop("inner", None)
            return Causal(inner=None if inner is None else from_spec(inner), **args)
        if kind == "trace" and "trace" in args:
            args["kind"] = args.pop("trace")
        if kind == "fixed":
            return Fixed(args.get("weights"))
        if kind not in _KINDS:
            raise ValueError(f"weighting: unknown kind {kind!r}; expected one of "
                             f"{sorted(_KINDS) + ['causal']}")
        return _KINDS[kind](**args)
    if not isinstance(spec, str) or not spec.strip():
        raise TypeError(f"weighting: expected a spec string such as 'trace:every=100', got {spec!r}")
    parts = [p.strip() for p in spec.split("+")]
    causal = [p for p in parts if p.split(":")[0] == "causal"]
    rest = [p for p in parts if p.split(":")[0] != "causal"]
    if len(causal) > 1 or len(rest) > 1:
        raise ValueError(f"weighting: {spec!r} combines more than one causal part or more than one "
                         f"other strategy")
    inner = _parse_one(rest[0]) if rest else None
    if causal:
        return _parse_one(causal[0], inner=inner)
    return inner


def _parse_value(v: str) -> Any:
    for cast in (int, float):
        try:
            return cast(v)
        except ValueError:
            pass
    return v


def _parse_one(text: str, inner: Weighting | None = None) -> Weighting:
    kind, _, argtext = text.partition(":")
    kind = kind.strip()
    args: dict = {}
    if argtext.strip():
        for item in argtext.split(","):
            k, eq, v = item.partition("=")
            if not eq or not k.strip():
                raise ValueError(f"weighting: cannot read {item!r} in {text!r}; expected key=value")
            args[k.strip()] = _parse_value(v.strip())
    if kind == "fixed":
        return Fixed({k: float(v) for k, v in args.items()} or None)
    if kind == "causal":
        try:
            return Causal(inner=inner, **args)
        except TypeError as exc:
            raise ValueError(f"weighting: bad option for 'causal' ({exc}); expected epsilon, "
                             f"chunks") from None
    if kind not in _KINDS:
        raise ValueError(f"weighting: unknown kind {kind!r}; expected one of "
                         f"{sorted(_KINDS) + ['causal']}")
    try:
        return _KINDS[kind](**args)
    except TypeError as exc:
        raise ValueError(f"weighting: bad option for {kind!r} ({exc})") from None
