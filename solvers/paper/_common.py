"""What every paper experiment shares: the run context, the result and the writer."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch

MODES = ("quick", "full")


@dataclasses.dataclass
class Context:
    """How to run an experiment.

    Attributes:
        mode: ``"quick"`` (small networks and few steps: under a minute on 2 CPU cores) or
            ``"full"`` (the paper's setup).
        out: the folder the files go to.
        seed: the base random seed; experiments over several seeds use ``seed, seed+1, ...``.
        device: where the networks live (a ``torch.device``).
        progress: show progress bars.
        command: the command line that regenerates the results (written into the summary).
    """

    mode: str = "quick"
    out: Path = Path("docs/results/paper")
    seed: int = 0
    device: torch.device = dataclasses.field(default_factory=lambda: torch.device("cpu"))
    progress: bool = False
    command: str = ""

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"mode: expected one of {', '.join(MODES)}, got {self.mode!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise TypeError(f"seed: expected an int, got {type(self.seed).__name__}")
        if self.seed < 0:
            raise ValueError(f"seed: expected an integer >= 0, got {self.seed}")
        self.out = Path(self.out)
        self.device = torch.device(self.device)

    @property
    def quick(self) -> bool:
        return self.mode == "quick"

    def pick(self, quick: Any, full: Any) -> Any:
        """``quick`` in quick mode, ``full`` in full mode."""
        return quick if self.quick else full


@dataclasses.dataclass
class Result:
    """What an experiment measured.

    Attributes:
        data: JSON-able measurements (tensors become lists), written to ``NAME.json``.
        figures: ``{file stem: matplotlib Figure}``, each written to ``NAME-STEM.png``.
        summary: markdown body of ``NAME.md`` (the header, claim and command are added).
        verdict: ``{claim: bool}`` — whether each of the paper's claims held in this measurement.
    """

    data: Mapping[str, Any]
    figures: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    summary: str = ""
    verdict: Mapping[str, bool] = dataclasses.field(default_factory=dict)


def run_experiment(module, ctx: Context, *, echo: Callable[[str], None] | None = None) -> dict:
    """Run one experiment module and write its files atomically into ``ctx.out``.

    Returns ``{"name", "mode", "files", "verdict", "wall_time_s"}``.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from pinnk.io import write_json, write_text, write_with

    name = module.NAME
    t0 = time.perf_counter()
    result = module.run(ctx)
    wall = time.perf_counter() - t0
    ctx.out.mkdir(parents=True, exist_ok=True)
    files = []
    for stem, fig in result.figures.items():
        path = ctx.out / f"{name}-{stem}.png"
        write_with(path, lambda p, fig=fig: fig.savefig(p, format="png", dpi=120,
                                                        bbox_inches="tight"))
        plt.close(fig)
        files.append(path)
    verdict = {str(k): bool(v) for k, v in result.verdict.items()}
    payload = {"experiment": name, "title": module.TITLE, "claim": module.CLAIM,
               "mode": ctx.mode, "seed": ctx.seed, "device": str(ctx.device),
               "wall_time_s": wall, "command": ctx.command, "verdict": verdict,
               "data": result.data}
    write_json(ctx.out / f"{name}.json", payload)
    files.append(ctx.out / f"{name}.json")
    lines = [f"# {name}: {module.TITLE}", "", f"**Paper's claim.** {module.CLAIM}", "",
             f"Mode: {ctx.mode}, seed {ctx.seed}, device {ctx.device}, {wall:.1f} s."]
    if ctx.command:
        lines += ["", "Regenerate with:", "", "```", ctx.command, "```"]
    if verdict:
        lines += ["", "| claim | held |", "| --- | --- |"]
        lines += [f"| {k} | {'yes' if v else 'no'} |" for k, v in verdict.items()]
    if result.summary:
        lines += ["", result.summary.strip()]
    for stem in result.figures:
        lines += ["", f"![{stem}]({name}-{stem}.png)"]
    write_text(ctx.out / f"{name}.md", "\n".join(lines) + "\n")
    files.append(ctx.out / f"{name}.md")
    if echo is not None:
        echo(f"{name}: {ctx.mode} mode in {wall:.1f} s -> {ctx.out}")
    return {"name": name, "mode": ctx.mode, "files": [str(f) for f in files],
            "verdict": verdict, "wall_time_s": wall}


# --------------------------------------------------------------------- shared training helpers
def log_steps(steps: int, count: int = 60) -> list[int]:
    """About ``count`` distinct step indices in [0, steps], log-spaced, with 0 and ``steps``."""
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise ValueError(f"steps: expected a non-negative int, got {steps!r}")
    if steps == 0:
        return [0]
    import numpy as np

    grid = np.unique(np.round(np.logspace(0, np.log10(steps), max(count - 1, 1))).astype(int))
    return [0] + [int(s) for s in grid if 0 < s <= steps] + ([steps] if grid[-1] != steps else [])


def partial_losses(model, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Per-term mean losses of a value term and first-partial terms at shared points, in one pass.

    Term 0 is the value f(x) with labels ``labels[:, 0]``; term k ≥ 1 is ∂f/∂x_k (``ops.partial``
    of the k-th unit multi-index) with labels ``labels[:, k]``. All terms sit at the points ``x``
    (n, d); ``labels`` is (n, T) with 1 ≤ T ≤ d + 1. Returns the losses (T,),

        L_k = ‖r_k‖² / (2n),   r_k = D_k f(x) − labels[:, k]

    — the same values as ``pinnk.Term(..., ops.partial(e_k), x, labels[:, k]).loss(model)``, from
    one Taylor-stream pass of a :class:`pinnk.MLP` (``model.taylor``) with the unit tangents
    e_1..e_{T−1} instead of one pass per term (about 2× faster for three terms).
    """
    if x.ndim != 2 or labels.ndim != 2 or labels.shape[0] != x.shape[0]:
        raise ValueError(f"labels: expected shape (n, T) with n = {x.shape[0] if x.ndim else '?'} "
                         f"rows like x, got {tuple(labels.shape)} for x {tuple(x.shape)}")
    T = labels.shape[1]
    if not 1 <= T <= x.shape[1] + 1:
        raise ValueError(f"labels: expected 1 to {x.shape[1] + 1} columns (value and first "
                         f"partials), got {T}")
    eye = torch.eye(x.shape[1], dtype=x.dtype, device=x.device)
    tangents = [eye[k].expand_as(x) for k in range(T - 1)]
    f, df, _ = model.taylor(x, tangents)
    outs = [f[:, 0]] + [t[:, 0] for t in df]
    return torch.stack([0.5 * ((o - labels[:, k]) ** 2).mean() for k, o in enumerate(outs)])


def train_full_batch(model, x: torch.Tensor, labels: torch.Tensor, weights, *, steps: int,
                     optimizer: str, lr: float, record: list[int] | None = None) -> dict:
    """Full-batch training of ``L = Σ_k w_k L_k`` (:func:`partial_losses`), plain and explicit.

    Args:
        model: a :class:`pinnk.MLP` (trained in place).
        x: points (n, d); labels: (n, T) (see :func:`partial_losses`).
        weights: (T,) loss weights w_k ≥ 0.
        steps: the number of optimiser steps.
        optimizer: ``"gd"`` (θ ← θ − lr ∇L, the discretised gradient flow of the NTK analysis)
            or ``"adam"`` (torch.optim.Adam with default betas).
        lr: the step size.
        record: the step indices at which the per-term losses are recorded (default
            :func:`log_steps`); the losses at step k are those *before* update k+1.

    Returns ``{"steps": [k], "losses": tensor (len(record), T)}`` (float64, detached). Raises a
    RuntimeError naming the step when the loss becomes NaN or Inf.
    """
    if optimizer not in ("gd", "adam"):
        raise ValueError(f"optimizer: expected 'gd' or 'adam', got {optimizer!r}")
    record = log_steps(steps) if record is None else sorted(set(int(s) for s in record))
    w = torch.as_tensor(weights, dtype=x.dtype, device=x.device)
    if w.shape != (labels.shape[1],):
        raise ValueError(f"weights: expected {labels.shape[1]} weights, got shape {tuple(w.shape)}")
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=lr) if optimizer == "adam" else \
        torch.optim.SGD(params, lr=lr)
    want = set(record)
    rows = []
    for k in range(steps + 1):
        losses = partial_losses(model, x, labels)
        if k in want:
            rows.append(losses.detach().to(torch.float64))
        if k == steps:
            break
        total = (w * losses).sum()
        if not bool(torch.isfinite(total)):
            raise RuntimeError(f"training: the loss became {float(total)} at step {k}")
        opt.zero_grad(set_to_none=True)
        total.backward()
        opt.step()
    return {"steps": [s for s in record if s <= steps], "losses": torch.stack(rows)}


def progress(ctx: Context, message: str) -> None:
    """Print a progress line to stderr when ``ctx.progress`` is set."""
    if ctx.progress:
        import sys

        print(message, file=sys.stderr, flush=True)
