"""Optimizer strategies: Adam with exponential learning-rate decay, L-BFGS, and Adam then L-BFGS."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass

import torch

from pinnk._validation import check_float, check_int


@dataclass
class Adam:
    """Adam with the learning rate decayed as lr · rate^(step / decay_steps) (smooth, per step)."""

    lr: float = 1e-3
    decay_rate: float = 0.9
    decay_steps: int = 1000
    betas: tuple = (0.9, 0.999)

    def __post_init__(self):
        self.lr = check_float(self.lr, "lr", positive=True)
        self.decay_rate = check_float(self.decay_rate, "decay_rate", positive=True)
        if self.decay_rate > 1:
            raise ValueError(f"decay_rate: expected a number in (0, 1], got {self.decay_rate}")
        self.decay_steps = check_int(self.decay_steps, "decay_steps", minimum=1)
        self.betas = tuple(float(b) for b in self.betas)

    def build(self, params):
        opt = torch.optim.Adam(params, lr=self.lr, betas=self.betas)
        gamma = self.decay_rate ** (1.0 / self.decay_steps)
        sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=gamma)
        return opt, sched

    def phase(self, step: int, steps: int) -> str:
        return "adam"

    def config(self) -> dict:
        return {"kind": "adam", **asdict(self)}


@dataclass
class LBFGS:
    """L-BFGS with a strong-Wolfe line search; one training step is ``max_iter`` iterations."""

    lr: float = 1.0
    history_size: int = 50
    max_iter: int = 1

    def __post_init__(self):
        self.lr = check_float(self.lr, "lr", positive=True)
        self.history_size = check_int(self.history_size, "history_size", minimum=1)
        self.max_iter = check_int(self.max_iter, "max_iter", minimum=1)

    def build(self, params):
        # max_eval bounds the function evaluations of one step() call, line searches included;
        # torch's default (max_iter * 5 // 4) is 1 for max_iter = 1, which leaves the line search
        # no evaluation beyond its first trial point: a step that does not decrease the loss at
        # t = lr is then rejected (t = 0) and, with nothing changed, every later step too.
        opt = torch.optim.LBFGS(params, lr=self.lr, history_size=self.history_size,
                                max_iter=self.max_iter, max_eval=self.max_iter * 5 // 4 + 25,
                                line_search_fn="strong_wolfe", tolerance_grad=0.0,
                                tolerance_change=0.0)
        return opt, None

    def phase(self, step: int, steps: int) -> str:
        return "lbfgs"

    def config(self) -> dict:
        return {"kind": "lbfgs", **asdict(self)}


@dataclass
class AdamLBFGS:
    """Adam for the first ``switch`` steps (a fraction of the run if < 1), then L-BFGS.

    The loss weights are held fixed during the L-BFGS phase (L-BFGS assumes one objective).
    """

    adam: Adam = None
    lbfgs: LBFGS = None
    switch: float = 0.8

    def __post_init__(self):
        self.adam = self.adam or Adam()
        self.lbfgs = self.lbfgs or LBFGS()
        self.switch = check_float(self.switch, "switch", positive=True)

    def switch_step(self, steps: int) -> int:
        return int(round(self.switch * steps)) if self.switch < 1 else int(self.switch)

    def phase(self, step: int, steps: int) -> str:
        return "adam" if step < self.switch_step(steps) else "lbfgs"

    def warnings_for(self, steps: int) -> list[str]:
        """Messages for a run of ``steps`` steps in which one of the two phases never runs."""
        k = self.switch_step(steps)
        if k >= steps:
            return [f"optimizer: switch={self.switch:g} is at step {k}, at or after the last "
                    f"step of a run of {steps} steps, so L-BFGS never runs"]
        if k <= 0:
            return [f"optimizer: switch={self.switch:g} is at step 0 of a run of {steps} steps, "
                    f"so Adam never runs"]
        return []

    def config(self) -> dict:
        return {"kind": "adam+lbfgs", "adam": self.adam.config(), "lbfgs": self.lbfgs.config(),
                "switch": self.switch}


def _args(text: str) -> dict:
    out = {}
    for item in filter(None, (s.strip() for s in text.split(","))):
        k, eq, v = item.partition("=")
        if not eq:
            raise ValueError(f"optimizer: cannot read {item!r}; expected key=value")
        try:
            out[k.strip()] = int(v) if v.strip().lstrip("-").isdigit() else float(v)
        except ValueError:
            raise ValueError(f"optimizer: {k.strip()}={v!r} is not a number") from None
    return out


def optimizer_from_spec(spec) -> Adam | LBFGS | AdamLBFGS:
    """``"adam"``, ``"adam:lr=1e-3,decay_rate=0.9"``, ``"lbfgs"``, ``"adam+lbfgs:switch=0.8"``,
    or a mapping from ``config()``."""
    if isinstance(spec, (Adam, LBFGS, AdamLBFGS)):
        return spec
    if isinstance(spec, Mapping):
        kind = spec.get("kind")
        args = {k: v for k, v in spec.items() if k != "kind"}
        if kind == "adam":
            return Adam(**args)
        if kind == "lbfgs":
            return LBFGS(**args)
        if kind == "adam+lbfgs":
            return AdamLBFGS(Adam(**{k: v for k, v in args["adam"].items() if k != "kind"}),
                             LBFGS(**{k: v for k, v in args["lbfgs"].items() if k != "kind"}),
                             args.get("switch", 0.8))
        raise ValueError(f"optimizer: unknown kind {kind!r}; expected adam, lbfgs, adam+lbfgs")
    if not isinstance(spec, str):
        raise TypeError(f"optimizer: expected a spec string such as 'adam:lr=1e-3', got {spec!r}")
    kind, _, rest = spec.partition(":")
    try:
        if kind == "adam":
            return Adam(**_args(rest))
        if kind == "lbfgs":
            return LBFGS(**_args(rest))
        if kind == "adam+lbfgs":
            a = _args(rest)
            switch = a.pop("switch", 0.8)
            lb = {k[6:]: a.pop(k) for k in list(a) if k.startswith("lbfgs_")}
            return AdamLBFGS(Adam(**a), LBFGS(**lb), switch)
    except TypeError as exc:
        raise ValueError(f"optimizer: bad option in {spec!r} ({exc})") from None
    raise ValueError(f"optimizer: unknown kind {kind!r}; expected adam, lbfgs, adam+lbfgs")
