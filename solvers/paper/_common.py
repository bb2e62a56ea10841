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
