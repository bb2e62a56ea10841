"""One more stage on a finished continuation run: train its final network further on a changed
problem (a smaller viscosity, the shock-damped inviscid residuals, another sampler) and measure
it as the accuracy targets are measured (ρ at t_end and the shock, the whole (x, t) grid, with
and without its t = 0 row)::

    python -m solvers.benchmarks.last_stage /tmp/acc/runs/sod-gn-rad-fine --steps 300 \\
        --param viscosity=7.5e-5 --sampler rad:k=1,c=1,candidates=4,local=4,scale=0.01

RUN is a folder written by ``solvers.train_continuation`` (``stage-0`` … ``stage-K``): the
network's options are read from ``stage-0/config.json``, its weights from the last stage's
checkpoint (or ``--stage K``); or a single run folder, such as one written by ``--out`` (the
network's width and depth read from its weights, its other options the problem's defaults).
The problem, points, optimizer, weighting, dtype, resampling and sampler come from that run's
config; ``--param NAME=VALUE`` changes a problem parameter, ``--sampler`` and
``--resample-every`` the sampling, ``--points NAME=N`` a term's point count, ``--weighting``
the loss weights; ``--adaptive-start`` draws the first points with the sampler from the loaded
network, ``--hold-last K`` keeps the points of the last K steps (the final network fits the
points it ends on); ``--out DIR`` keeps the new stage as a run folder (for ``tube_regions``, or
as RUN of a further stage). Prints the start and end figures and, with ``--json FILE``, appends
them as one record. Nothing in RUN is changed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from pinnk.benchmarks import add_threads_option, apply_threads


def _stage_dirs(run: Path) -> list:
    dirs = sorted((d for d in run.glob("stage-*") if d.is_dir() and d.name[6:].isdigit()),
                  key=lambda d: int(d.name[6:]))
    if not dirs:
        raise ValueError(f"RUN: {run} has no stage-K folders (a train_continuation run)")
    return dirs


def _parse_param(text: str) -> tuple:
    name, eq, value = text.partition("=")
    if not eq or not name.strip():
        raise ValueError(f"--param: expected NAME=VALUE, got {text!r}")
    try:
        return name.strip(), json.loads(value)
    except json.JSONDecodeError:
        return name.strip(), value


def measure(problem, model, output: str = "rho") -> dict:
    """The accuracy targets' measures of ``model`` on ``problem``."""
    from solvers._export import evaluate_fields, relative_l2

    from .accuracy import final_time_metrics, grid_error_after_start

    data = evaluate_fields(problem, model)
    k = problem.output_names.index(output)
    m = final_time_metrics(problem, model, output)
    return {"error": m["error"], "shock_x": m["shock_x"], "shock_error": m["shock_error"],
            "grid_error": float(relative_l2(data.prediction, data.reference)[k]),
            "grid_error_after_start": grid_error_after_start(problem, model, output)}


def run(run_dir: Path, steps: int, params: dict, sampler: str | None, stage: int | None = None,
        seed: int = 0, resample_every: int | None = None, points: dict | None = None,
        weighting: str | None = None, adaptive_start: bool = False, hold_last: int = 0,
        out: Path | None = None) -> dict:
    import problems
    import solvers
    from solvers._train import CHECKPOINT, load_network, mlp_shape, read_checkpoint

    if (run_dir / CHECKPOINT).is_file() and not list(run_dir.glob("stage-*")):
        # a single run folder (one written by --out): its MLP's shape from its weights
        if stage is not None:
            raise ValueError(f"--stage: {run_dir} is a single run folder, not a continuation")
        src = run_dir
        cfg = json.loads((src / "config.json").read_text())
        net = (mlp_shape(read_checkpoint(src / CHECKPOINT, "RUN")["model"])
               if "custom" in cfg["model"] else dict(cfg["model"]))
    else:
        dirs = _stage_dirs(run_dir)
        src = dirs[-1] if stage is None else run_dir / f"stage-{stage}"
        if not (src / CHECKPOINT).is_file():
            raise ValueError(f"--stage: {src} has no {CHECKPOINT}")
        first = json.loads((dirs[0] / "config.json").read_text())
        cfg = json.loads((src / "config.json").read_text())
        net = first["model"]
    net = {k: v for k, v in net.items() if v is not None}
    new_params = {**cfg["problem"]["params"], **params}
    problem = problems.get(cfg["problem"]["name"], **new_params)
    model = load_network(problem, net, getattr(torch, cfg["dtype"]), src, "RUN")
    start = measure(problem, model)
    t0 = time.perf_counter()
    # the run's own strategies, rebuilt from their config() mappings
    counts = {**cfg["points"], **(points or {})}
    res = solvers.train(problem, model, steps=steps, weighting=weighting or cfg["weighting"],
                        optimizer=cfg["optimizer"], points=counts,
                        resample_every=(cfg["resample_every"] if resample_every is None
                                        else resample_every),
                        sampler=sampler or cfg["sampler"], dtype=cfg["dtype"], seed=seed,
                        adaptive_start=adaptive_start, hold_last=hold_last,
                        ntk_every=0, export=False, out=out)
    end = measure(problem, res.model)
    return {"run": str(src), "from_params": cfg["problem"]["params"], "params": new_params,
            "steps": steps, "sampler": sampler or cfg["sampler"], "seed": seed,
            "points": counts, "weighting": weighting or cfg["weighting"],
            "adaptive_start": adaptive_start, "hold_last": hold_last,
            "train_s": time.perf_counter() - t0, "final_loss": res.metrics["final_loss"],
            "start": start, "end": end}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run", help="a train_continuation run folder (stage-0 … stage-K)")
    ap.add_argument("--steps", type=int, required=True, help="steps of the new stage")
    ap.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                    help="a problem parameter of the new stage (repeatable)")
    ap.add_argument("--sampler", default=None, help="the new stage's sampler spec (default: "
                    "the run's)")
    ap.add_argument("--stage", type=int, default=None, help="start from stage K (default last)")
    ap.add_argument("--resample-every", type=int, default=None, metavar="K",
                    help="redraw the points every K steps (default: the run's)")
    ap.add_argument("--points", action="append", default=[], metavar="NAME=N",
                    help="the point count of a term in the new stage (repeatable)")
    ap.add_argument("--weighting", default=None, metavar="SPEC",
                    help="the new stage's loss weighting (default: the run's)")
    ap.add_argument("--adaptive-start", action="store_true",
                    help="draw the first points with the (adaptive) sampler from the network")
    ap.add_argument("--hold-last", type=int, default=0, metavar="K",
                    help="no redraw in the last K steps (default 0)")
    ap.add_argument("--out", default=None, metavar="DIR",
                    help="write the new stage's run folder here (default: nothing written)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default=None, help="append the record to this file (JSON lines)")
    add_threads_option(ap)
    args = ap.parse_args(argv)
    if not apply_threads(args.threads):
        return 2
    try:
        if args.steps < 1:
            raise ValueError(f"--steps: expected a positive integer, got {args.steps}")
        params = dict(_parse_param(p) for p in args.param)
        points = {}
        for text in args.points:
            name, value = _parse_param(text)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"--points: expected NAME=N with a positive integer N, got "
                                 f"{text!r}")
            points[name] = value
        rec = run(Path(args.run), args.steps, params, args.sampler, args.stage, args.seed,
                  args.resample_every, points, args.weighting, args.adaptive_start,
                  args.hold_last, None if args.out is None else Path(args.out))
    except (ValueError, TypeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for k in ("start", "end"):
        m = rec[k]
        print(f"{k}: ρ(x, t_end) {m['error']:.3e}, shock off by {m['shock_error']:.4f}, "
              f"grid {m['grid_error']:.3e} (t > 0: {m['grid_error_after_start']:.3e})")
    print(f"{rec['steps']} steps, {rec['train_s']:.0f} s, final loss {rec['final_loss']:.3g}, "
          f"params {rec['params']}")
    if args.json:
        with open(args.json, "a") as fh:
            fh.write(json.dumps(rec) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
