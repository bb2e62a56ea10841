"""Optimizer strategies: Adam, L-BFGS, damped Gauss–Newton on Θ, and sequences of them.

A strategy is a plain description (its options, :meth:`~Optimizer.config`). :meth:`build` binds it
to a :class:`~solvers.Trainer` and returns a *stepper*, which holds the run's optimizer state and
takes one step from the trainer's state: ``stepper.step(trainer) -> (total, losses, info)``, the
loss before the step, the per-term losses and a dict of scalars for the history. Every stepper
evaluates the loss through the trainer (``trainer.evaluate``, ``trainer.total``): there is one
loss assembly. A :class:`Sequence` runs strategies one after another (``adam+gn``,
``adam+lbfgs``, ``adam+lbfgs+gn``).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

import pinnk
from pinnk._levenberg import LevenbergMarquardt
from pinnk._validation import check_float, check_int, random_permutation


class Optimizer:
    """Base class of the optimizer strategies."""

    kind = "optimizer"
    #: whether the loss-weighting strategy may refresh its weights during this strategy's steps
    updates_weights = True

    def build(self, trainer) -> "Stepper":
        raise NotImplementedError

    def config(self) -> dict:
        return {"kind": self.kind, **asdict(self)}

    def phases(self) -> list:
        """The strategies run one after another (one for a plain strategy)."""
        return [self]

    @property
    def uses_gauss_newton(self) -> bool:
        return any(isinstance(p, GaussNewton) for p in self.phases())

    def warnings_for(self, steps: int) -> list:
        """Messages about options that would have no effect in a run of ``steps`` steps."""
        return []


class Stepper:
    """The state of one strategy in one run (see the module docstring)."""

    name = "optimizer"

    def step(self, trainer) -> tuple:
        raise NotImplementedError

    def lr(self) -> float | None:
        return None

    def reset(self) -> None:
        """The collocation points changed (a stepper with a memory of the loss drops it)."""

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: Mapping) -> None:
        pass

    def phase(self, step: int) -> str:
        return self.name

    def torch_optimizer(self, kind: str):
        """The torch optimizer of the phase ``kind`` (``"adam"``, ``"lbfgs"``), or None."""
        return None


# ------------------------------------------------------------------------------------- Adam
@dataclass
class Adam(Optimizer):
    """Adam with the learning rate decayed as lr · rate^(step / decay_steps) (smooth, per step)."""

    lr: float = 1e-3
    decay_rate: float = 0.9
    decay_steps: int = 1000
    betas: tuple = (0.9, 0.999)
    kind = "adam"

    def __post_init__(self):
        self.lr = check_float(self.lr, "lr", positive=True)
        self.decay_rate = check_float(self.decay_rate, "decay_rate", positive=True)
        if self.decay_rate > 1:
            raise ValueError(f"decay_rate: expected a number in (0, 1], got {self.decay_rate}")
        self.decay_steps = check_int(self.decay_steps, "decay_steps", minimum=1)
        self.betas = tuple(float(b) for b in self.betas)

    def build(self, trainer) -> "_AdamStepper":
        return _AdamStepper(self, trainer.params)


class _AdamStepper(Stepper):
    name = "adam"

    def __init__(self, spec: Adam, params):
        self.opt = torch.optim.Adam(params, lr=spec.lr, betas=spec.betas)
        gamma = spec.decay_rate ** (1.0 / spec.decay_steps)
        self.scheduler = torch.optim.lr_scheduler.ExponentialLR(self.opt, gamma=gamma)

    def step(self, trainer) -> tuple:
        self.opt.zero_grad(set_to_none=True)
        _, losses = trainer.evaluate()
        trainer.weighting.update(trainer.step, trainer.model, trainer.terms, losses)
        total = trainer.total(losses)
        total.backward()
        self.opt.step()
        self.scheduler.step()
        return total, losses, {}

    def lr(self) -> float:
        return float(self.opt.param_groups[0]["lr"])

    def state_dict(self) -> dict:
        return {"adam": self.opt.state_dict(), "scheduler": self.scheduler.state_dict()}

    def load_state_dict(self, state) -> None:
        self.opt.load_state_dict(state["adam"])
        self.scheduler.load_state_dict(state["scheduler"])

    def torch_optimizer(self, kind):
        return self.opt if kind == "adam" else None


# ------------------------------------------------------------------------------------ L-BFGS
@dataclass
class LBFGS(Optimizer):
    """L-BFGS with a strong-Wolfe line search; one training step is ``max_iter`` iterations.

    The loss weights are held fixed during L-BFGS steps (it assumes one objective)."""

    lr: float = 1.0
    history_size: int = 50
    max_iter: int = 1
    kind = "lbfgs"
    updates_weights = False

    def __post_init__(self):
        self.lr = check_float(self.lr, "lr", positive=True)
        self.history_size = check_int(self.history_size, "history_size", minimum=1)
        self.max_iter = check_int(self.max_iter, "max_iter", minimum=1)

    def build(self, trainer) -> "_LBFGSStepper":
        return _LBFGSStepper(self, trainer.params)


class _LBFGSStepper(Stepper):
    name = "lbfgs"

    def __init__(self, spec: LBFGS, params):
        # max_eval bounds the function evaluations of one step() call, line searches included;
        # torch's default (max_iter * 5 // 4) is 1 for max_iter = 1, which leaves the line search
        # no evaluation beyond its first trial point: a step that does not decrease the loss at
        # t = lr is then rejected (t = 0) and, with nothing changed, every later step too.
        self.opt = torch.optim.LBFGS(params, lr=spec.lr, history_size=spec.history_size,
                                     max_iter=spec.max_iter, max_eval=spec.max_iter * 5 // 4 + 25,
                                     line_search_fn="strong_wolfe", tolerance_grad=0.0,
                                     tolerance_change=0.0)

    def step(self, trainer) -> tuple:
        record = {}

        def closure():
            self.opt.zero_grad(set_to_none=True)
            _, losses = trainer.evaluate()
            total = trainer.total(losses)
            total.backward()
            if not record:
                record["total"], record["losses"] = total.detach(), [L.detach() for L in losses]
            return total

        self.opt.step(closure)
        # When the strong-Wolfe line search finds no better point it returns t = 0: the
        # parameters do not move, the curvature pair is skipped, and torch's L-BFGS would
        # compute the same direction at every later step (the loss freezes for the rest of the
        # run). Restart from steepest descent instead by dropping the L-BFGS memory.
        state = self.opt.state.get(self.opt._params[0], {})
        if "t" in state and float(state["t"]) == 0.0:
            self.opt.state.clear()
        return record["total"], record["losses"], {}

    def reset(self) -> None:
        # The curvature pairs and the last direction belong to the loss on the old points;
        # kept, the first step on the new points follows a stale quasi-Newton model (seen: a
        # Sod run blew up to NaN there). Restart from steepest descent.
        self.opt.state.clear()

    def lr(self) -> float:
        return float(self.opt.param_groups[0]["lr"])

    def state_dict(self) -> dict:
        return {"lbfgs": self.opt.state_dict()}

    def load_state_dict(self, state) -> None:
        self.opt.load_state_dict(state["lbfgs"])

    def torch_optimizer(self, kind):
        return self.opt if kind == "lbfgs" else None


# ------------------------------------------------------------------------------ Gauss–Newton
_MODES = ("lm", "line")


@dataclass
class GaussNewton(Optimizer):
    """Damped Gauss–Newton (Levenberg–Marquardt) steps solved in function space with Θ.

    Each step builds the system (S Θ S + μ I) α = ρ of the current loss (design.md §3b; λ and
    per-point weights such as causal ones enter S) with :class:`pinnk.GaussNewtonSystem` and
    moves θ by η δ, δ = −Jᵀ S α. A step is accepted only when the loss decreases, so the loss
    never increases across accepted steps.

    Args:
        damping: the initial μ > 0.
        mode: ``"lm"`` — trust-region Levenberg–Marquardt: the full step η = 1; after a step
            with gain ratio ϱ (actual over predicted decrease) μ ← μ·max(1/3, 1 − (2ϱ − 1)³);
            a step that does not decrease the loss is rejected, μ ← μ·ν, ν ← 2ν (Nielsen 1999)
            and solved again on the same system (a refactorisation, no new kernel), up to
            ``retries`` times. ``"line"`` — a backtracking line search over η ∈ ``etas``, μ
            divided by ``down`` after a success and multiplied by ``up`` after a failure.
        etas: the line-search step sizes, largest first (``"line"``).
        down, up: the damping factors of ``"line"``.
        retries: the rejected solves ``"lm"`` tries per step before giving up on it.
        min_damping, max_damping: bounds on μ.
        method: ``"auto"`` (a dense Cholesky solve when the N × N system fits in memory, else
            CG), ``"dense"`` or ``"cg"``.
        cg_tol, cg_iters: the CG tolerance and iteration limit (0: the default of
            :class:`pinnk.GaussNewtonSystem`).
        kernel_points: when > 0, the system is built on a random subset of at most this many
            points per term, drawn afresh each step; the loss that accepts the step is always
            the full one.
        geodesic: when > 0 (default 0.75, the usual bound), add the geodesic acceleration a/2
            to the step (Transtrum & Sethna 2012: the second directional derivative of the
            residual along δ by a finite difference, solved with the same factorisation)
            whenever ‖a‖ ≤ geodesic·‖δ‖; costs one residual evaluation and one extra solve.
            Measured: poisson-1d 2.5e-8 against 3.8e-6 after 300 steps, convection β = 30
            1.3e-6 against 4.1e-5 after 400, euler-smooth 4.9e-6 against 3.0e-4 after 150;
            ``geodesic=0`` turns it off.
    """

    damping: float = 1e-3
    mode: str = "lm"
    update: str = "nielsen"
    etas: tuple = (1.0, 0.5, 0.25, 0.1, 0.05, 0.01)
    down: float = 3.0
    up: float = 10.0
    retries: int = 8
    min_damping: float = 1e-12
    max_damping: float = 1e8
    method: str = "auto"
    cg_tol: float = 1e-8
    cg_iters: int = 0
    kernel_points: int = 0
    geodesic: float = 0.75
    kind = "gn"

    def __post_init__(self):
        self.damping = check_float(self.damping, "damping", positive=True)
        if self.mode not in _MODES:
            raise ValueError(f"mode: expected 'lm' or 'line', got {self.mode!r}")
        if self.update not in ("nielsen", "threshold"):
            raise ValueError(f"update: expected 'nielsen' or 'threshold', got {self.update!r}")
        if isinstance(self.etas, str):
            try:
                self.etas = tuple(float(v) for v in self.etas.split("/"))
            except ValueError:
                raise ValueError(f"etas: expected step sizes separated by '/', got "
                                 f"{self.etas!r}") from None
        self.etas = tuple(check_float(e, "etas", positive=True) for e in self.etas)
        if not self.etas or any(e > 1 for e in self.etas):
            raise ValueError(f"etas: expected step sizes in (0, 1], got {self.etas}")
        self.down = check_float(self.down, "down", positive=True)
        self.up = check_float(self.up, "up", positive=True)
        if self.down <= 1 or self.up <= 1:
            raise ValueError(f"down, up: expected factors > 1, got down={self.down}, "
                             f"up={self.up}")
        self.retries = check_int(self.retries, "retries", minimum=0)
        self.min_damping = check_float(self.min_damping, "min_damping", positive=True)
        self.max_damping = check_float(self.max_damping, "max_damping", positive=True)
        if not self.min_damping <= self.damping <= self.max_damping:
            raise ValueError(f"damping: expected a value in [min_damping, max_damping] = "
                             f"[{self.min_damping:g}, {self.max_damping:g}], got {self.damping:g}")
        if self.method not in ("auto", "dense", "cg"):
            raise ValueError(f"method: expected auto, dense or cg, got {self.method!r}")
        self.cg_tol = check_float(self.cg_tol, "cg_tol", positive=True)
        self.cg_iters = check_int(self.cg_iters, "cg_iters", minimum=0)
        self.kernel_points = check_int(self.kernel_points, "kernel_points", minimum=0)
        self.geodesic = check_float(self.geodesic, "geodesic", nonnegative=True)

    def config(self) -> dict:
        out = super().config()
        out["etas"] = list(self.etas)
        return out

    def build(self, trainer) -> "_GaussNewtonStepper":
        return _GaussNewtonStepper(self, trainer)


class _GaussNewtonStepper(Stepper):
    name = "gn"

    def __init__(self, spec: GaussNewton, trainer):
        self.spec = spec
        # the damping, acceptance and geodesic logic, shared with pinnk.interop.deepxde
        self.lm = LevenbergMarquardt(spec.damping, mode=spec.mode, update=spec.update,
                                     etas=spec.etas, down=spec.down, up=spec.up,
                                     retries=spec.retries, min_damping=spec.min_damping,
                                     max_damping=spec.max_damping, geodesic=spec.geodesic)
        self.gen = torch.Generator().manual_seed(trainer.seed + 3)

    @property
    def mu(self) -> float:
        return self.lm.mu

    def lr(self) -> float:
        return self.lm.mu

    def state_dict(self) -> dict:
        return {"mu": self.lm.mu, "nu": self.lm.nu, "gen": self.gen.get_state()}

    def load_state_dict(self, state) -> None:
        self.lm.mu, self.lm.nu = float(state["mu"]), float(state["nu"])
        self.gen.set_state(state["gen"])

    def _subset(self, terms: list, point_weights: list) -> tuple:
        m = self.spec.kernel_points
        if not m:
            return terms, point_weights
        out_t, out_c = [], []
        for t, c in zip(terms, point_weights):
            if t.n <= m:
                out_t.append(t)
                out_c.append(c)
                continue
            idx = random_permutation(t.n, self.gen)[:m].to(t.points.device)
            target = t.target_values()
            sub = t.with_points(t.points[idx], target=None if target is None else target[idx])
            out_t.append(sub)
            # the subset stands for the whole term: its points carry n/m times the weight
            out_c.append(c[idx] * (t.n / m))
        return out_t, out_c

    def step(self, trainer) -> tuple:
        spec = self.spec
        residuals, losses = trainer.evaluate()
        trainer.weighting.update(trainer.step, trainer.model, trainer.terms, losses)
        total = trainer.total(losses).detach()
        c = trainer.weighting.point_weights([r.detach() for r in residuals], trainer.terms)
        kterms, kc = self._subset(trainer.terms, c)
        t0 = time.perf_counter()
        system = pinnk.GaussNewtonSystem(trainer.model, kterms, trainer.weighting.weights,
                                         point_weights=kc, method=spec.method,
                                         cg_tol=spec.cg_tol, cg_max_iter=spec.cg_iters or None)
        t_kernel = time.perf_counter() - t0
        # the gain ratio compares the system's own loss (the full loss without a subset)
        info = self.lm.iterate(system, trainer.loss_value, float(total),
                               exact=kterms is trainer.terms, time_kernel=t_kernel)
        return total, [L.detach() for L in losses], info

    def _accelerated(self, trainer, system, st, saved) -> tuple:
        """δ + a/2, the geodesic acceleration a (see ``LevenbergMarquardt.accelerated``)."""
        return self.lm.accelerated(system, st, saved)


# --------------------------------------------------------------------------------- sequences
@dataclass
class Sequence(Optimizer):
    """Strategies run one after another: phase k runs until step ``switch[k]`` (a fraction of
    the run when < 1, else a step number), e.g. Adam as a warm start for Gauss–Newton.

    Spec strings join the phase kinds with ``+``: ``"adam+gn:switch=2000"``,
    ``"adam+lbfgs+gn:switch=0.5/0.8"``. Options prefixed by a phase kind and ``_`` go to that
    phase (``gn_damping=1e-4``, ``lbfgs_history_size=10``); unprefixed ones to the first phase.
    """

    phases_: list = field(default_factory=list)
    switch: list = field(default_factory=list)

    def __post_init__(self):
        if len(self.phases_) < 2:
            raise ValueError("optimizer: a sequence needs at least two phases")
        kinds = [p.kind for p in self.phases_]
        if len(set(kinds)) != len(kinds):
            raise ValueError(f"optimizer: a sequence runs each kind once, got {'+'.join(kinds)}")
        for p in self.phases_:
            if not isinstance(p, Optimizer) or isinstance(p, Sequence):
                raise TypeError(f"optimizer: expected plain strategies as phases, got "
                                f"{type(p).__name__}")
        sw = self.switch
        if not isinstance(sw, (list, tuple)):
            sw = [sw]
        if len(sw) != len(self.phases_) - 1:
            raise ValueError(f"switch: expected {len(self.phases_) - 1} switch point(s) for "
                             f"{'+'.join(kinds)}, got {len(sw)}")
        self.switch = [check_float(s, "switch", positive=True) for s in sw]

    @property
    def kind(self) -> str:
        return "+".join(p.kind for p in self.phases_)

    def phases(self) -> list:
        return list(self.phases_)

    def switch_steps(self, steps: int) -> list:
        out = [int(round(s * steps)) if s < 1 else int(s) for s in self.switch]
        if any(b < a for a, b in zip(out, out[1:])):
            raise ValueError(f"switch: the switch points must not decrease, got {self.switch}")
        return out

    def warnings_for(self, steps: int) -> list:
        """Messages for a run of ``steps`` steps in which a phase never runs."""
        msgs = []
        bounds = [0] + self.switch_steps(steps) + [steps]
        for k, p in enumerate(self.phases_):
            start, end = bounds[k], min(bounds[k + 1], steps)
            if end > start:
                continue
            if k == 0:
                msgs.append(f"optimizer: switch={self.switch[0]:g} is at step 0 of a run of "
                            f"{steps} steps, so {_TITLES[p.kind]} never runs")
            else:
                msgs.append(f"optimizer: switch={self.switch[k - 1]:g} is at step {start}, at or "
                            f"after the last step of a run of {steps} steps, so "
                            f"{_TITLES[p.kind]} never runs" if start >= steps else
                            f"optimizer: the {_TITLES[p.kind]} phase starts and ends at step "
                            f"{start}, so it never runs")
        return msgs

    def config(self) -> dict:
        out = {"kind": self.kind}
        for p in self.phases_:
            out[p.kind] = p.config()
        out["switch"] = self.switch[0] if len(self.switch) == 1 else list(self.switch)
        return out

    def build(self, trainer) -> "_SequenceStepper":
        return _SequenceStepper(self, trainer)


class _SequenceStepper(Stepper):
    def __init__(self, spec: Sequence, trainer):
        self.spec = spec
        self.steps = trainer.steps
        self.bounds = spec.switch_steps(trainer.steps)
        self.children = [p.build(trainer) for p in spec.phases_]

    def index(self, step: int) -> int:
        return sum(step >= b for b in self.bounds)

    def phase(self, step: int) -> str:
        return self.children[self.index(step)].name

    def current(self, trainer) -> Stepper:
        return self.children[self.index(trainer.step)]

    def step(self, trainer) -> tuple:
        return self.current(trainer).step(trainer)

    def lr_at(self, step: int):
        return self.children[self.index(step)].lr()

    def reset(self) -> None:
        for c in self.children:
            c.reset()

    def state_dict(self) -> dict:
        return {c.name: c.state_dict() for c in self.children}

    def load_state_dict(self, state) -> None:
        for c in self.children:
            c.load_state_dict(state[c.name])

    def torch_optimizer(self, kind):
        for c in self.children:
            if c.torch_optimizer(kind) is not None:
                return c.torch_optimizer(kind)
        return None


class AdamLBFGS(Sequence):
    """Adam for the first ``switch`` steps (a fraction of the run if < 1), then L-BFGS: the
    sequence ``adam+lbfgs``."""

    def __init__(self, adam: Adam | None = None, lbfgs: LBFGS | None = None,
                 switch: float = 0.8):
        super().__init__([adam or Adam(), lbfgs or LBFGS()], [switch])

    @property
    def adam(self) -> Adam:
        return self.phases_[0]

    @property
    def lbfgs(self) -> LBFGS:
        return self.phases_[1]

    def switch_step(self, steps: int) -> int:
        return self.switch_steps(steps)[0]


def _sequence(phases: list, switch: list) -> Sequence:
    if [p.kind for p in phases] == ["adam", "lbfgs"]:
        return AdamLBFGS(phases[0], phases[1], switch[0] if len(switch) == 1 else switch)
    return Sequence(phases, switch)


# ------------------------------------------------------------------------------------ specs
_KINDS = {"adam": Adam, "lbfgs": LBFGS, "gn": GaussNewton}
_TITLES = {"adam": "Adam", "lbfgs": "L-BFGS", "gn": "Gauss–Newton"}


def _value(v: str) -> Any:
    v = v.strip()
    try:
        return int(v) if v.lstrip("-").isdigit() else float(v)
    except ValueError:
        return v


def _args(text: str) -> dict:
    out = {}
    for item in filter(None, (s.strip() for s in text.split(","))):
        k, eq, v = item.partition("=")
        if not eq:
            raise ValueError(f"optimizer: cannot read {item!r}; expected key=value")
        out[k.strip()] = _value(v)
    return out


def _make(kind: str, args: Mapping, spec: Any):
    if kind not in _KINDS:
        raise ValueError(f"optimizer: unknown kind {kind!r}; expected adam, lbfgs, gn or a "
                         f"sequence of them joined by '+'")
    try:
        return _KINDS[kind](**{k: v for k, v in args.items() if k != "kind"})
    except TypeError as exc:
        raise ValueError(f"optimizer: bad option in {spec!r} ({exc})") from None


def optimizer_from_spec(spec) -> Optimizer:
    """A strategy from a spec string or a ``config()`` mapping.

    Strings: ``"adam"``, ``"adam:lr=1e-3,decay_rate=0.9"``, ``"lbfgs"``, ``"gn"``,
    ``"gn:damping=1e-3,mode=line,etas=1/0.5/0.1"``, and sequences ``"adam+lbfgs:switch=0.8"``,
    ``"adam+gn:lr=1e-3,switch=2000,gn_damping=1e-4"``, ``"adam+lbfgs+gn:switch=0.5/0.8"``.
    """
    if isinstance(spec, Optimizer):
        return spec
    if isinstance(spec, Mapping):
        kind = spec.get("kind")
        if not isinstance(kind, str):
            raise ValueError(f"optimizer: expected a mapping with a 'kind', got {dict(spec)!r}")
        if "+" not in kind:
            return _make(kind, spec, spec)
        kinds = kind.split("+")
        missing = [k for k in kinds if k not in spec]
        if missing:
            raise ValueError(f"optimizer: the sequence {kind!r} has no options for {missing}")
        phases = [_make(k, spec[k], spec) for k in kinds]
        sw = spec.get("switch", 0.8)
        return _sequence(phases, list(sw) if isinstance(sw, (list, tuple)) else [sw])
    if not isinstance(spec, str):
        raise TypeError(f"optimizer: expected a spec string such as 'adam:lr=1e-3', got {spec!r}")
    kind, _, rest = spec.partition(":")
    kinds = [k.strip() for k in kind.split("+")]
    args = _args(rest)
    if len(kinds) == 1:
        return _make(kinds[0], args, spec)
    switch = args.pop("switch", 0.8)
    per = {k: {} for k in kinds}
    for key, v in args.items():
        head, _, tail = key.partition("_")
        if head in per and tail:
            per[head][tail] = v
        else:
            per[kinds[0]][key] = v
    if isinstance(switch, str):
        try:
            switch = [float(s) for s in switch.split("/")]
        except ValueError:
            raise ValueError(f"optimizer: switch={switch!r} is not a number or numbers separated "
                             f"by '/'") from None
    return _sequence([_make(k, per[k], spec) for k in kinds],
                     switch if isinstance(switch, list) else [switch])
