"""Benchmark: accuracy on the periodic benchmarks allen-cahn, kdv and kuramoto-sivashinsky.

    python -m solvers.benchmarks.periodic [--only NAME ...] [--optimizer SPEC]
        [--weighting SPEC] [--steps N] [--budget-s S] [--points residual=N,initial=M]
        [--resample-every K] [--sampler SPEC] [--model JSON] [--compile | --no-compile]
        [--windows K]
        [--seed S] [--dtype float32] [--label TEXT] [--chosen TEXT] [--out DIR]
        [--md docs/results/periodic.md] [--threads 1] [--eval-every-s 60] [--render]

The issue's targets: relative L2 ≤ 1e-3 for allen-cahn and kdv within 30 minutes of wall time
each (on this machine), and the error of kuramoto-sivashinsky reported. Each problem has a preset
configuration (:data:`PRESETS`: the network, weighting, optimizer, points and wall-time budget
last chosen for it); every option given on the command line replaces the preset's value for all
selected problems, so another optimizer or weighting is one flag, e.g.
``--optimizer gn`` or ``--weighting "causal:epsilon=1,chunks=32+trace:every=100"`` (any spec that
``solvers.train`` accepts). ``--windows K`` marches in time (:func:`solvers.train_marching`):
K equal windows trained one after the other, each from the previous window's network and with
its values at the window's start as initial condition; ``--steps`` and ``--points`` are then per
window, and the budget is shared (each window gets the time left over the windows left). Each run is stopped at the first step past its budget (the loop then
ends normally and the metrics are written).

Measured per run (relative L2 = ‖pred − ref‖₂ / ‖ref‖₂ against the problem's ETDRK4 reference):

* ``error``: over the problem's 101 × 101 evaluation grid (the trainer's ``metrics.json`` value);
* ``fine_error``: over a 512 (x) × 201 (t) grid;
* ``slabs``: the fine-grid error in each tenth of the time interval (where causal training is
  behind shows here);
* ``trace``: (seconds, step, error on a 64 × 33 grid) every ``--eval-every-s`` seconds.

Rows are written as JSON (``--md`` with ``.json``) and rendered as markdown, both atomically,
keyed by ``--label`` (default: the problem name), so several configurations of one problem can
stand side by side; the exact command line is part of each row. ``--render`` only rewrites the
markdown from the JSON.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shlex
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import read_rows

#: the targets of the issue (relative L2 of u), None: report only
BOUNDS = {"allen-cahn": 1e-3, "kdv": 1e-3, "kuramoto-sivashinsky": None}

#: the configuration each problem runs with unless an option replaces it
PRESETS: dict[str, dict[str, Any]] = {
    # time marching with Gauss–Newton: the configurations that met the targets (periodic.md)
    "allen-cahn": {
        "params": {}, "windows": 10, "weighting": "fixed", "optimizer": "gn", "steps": 60,
        "dtype": "float64", "budget_s": 1800.0, "points": {"residual": 1000, "initial": 256},
        "resample_every": 10, "sampler": "uniform", "compile": False,
        "model": {"width": 40, "depth": 4, "embedding": {
            "kind": "periodic", "dims": [0], "periods": [2.0], "harmonics": 10}},
    },
    "kdv": {
        "params": {}, "windows": 20, "weighting": "fixed", "optimizer": "gn", "steps": 90,
        "dtype": "float64", "budget_s": 1800.0, "points": {"residual": 1000, "initial": 256},
        "resample_every": 10, "sampler": "uniform", "compile": False,
        "model": {"width": 40, "depth": 4, "embedding": {
            "kind": "periodic", "dims": [0], "periods": [2.0], "harmonics": 10}},
    },
    "kuramoto-sivashinsky": {
        "params": {}, "windows": 10, "weighting": "fixed:initial=100", "optimizer": "gn",
        "steps": 120, "dtype": "float64", "budget_s": 1800.0,
        "points": {"residual": 1000, "initial": 256}, "resample_every": 10,
        "sampler": "uniform", "compile": False,
        "model": {"width": 40, "depth": 4, "embedding": {
            "kind": "periodic", "dims": [0], "periods": [2.0], "harmonics": 5}},
    },
}

#: findings appended to the markdown (what the runs showed; the figures are in the tables)
NOTES = """
## Notes

* **Time marching with Gauss–Newton meets the targets** (rows `*-march`; 2026-12-04): the
  interval cut into windows trained in turn (`solvers.train_marching`, `--windows K`), each
  window from the previous window's network with its values at the window's start as initial
  condition, Gauss–Newton on each window. allen-cahn: 3.6e-4, 2.6e-4, 1.8e-4 (seeds 0, 1, 2)
  in 206–228 s with 10 windows of 60 steps; kdv (μ = 0.022, Zabusky–Kruskal): 1.2e-4, 1.4e-4,
  2.4e-4 (seeds 0, 1, 2) in 1267–1304 s with 20 windows of 90 steps, and 2.3e-4 in 1317 s on
  the equation as issue 14 writes it, u_t + u u_x + 0.0025 u_xxx = 0 (μ = 0.05,
  `kdv-march-mu0.05`). The same optimizer on the whole interval at once (rows `*-gn`) stayed
  at 0.27 and 0.72 after 19 minutes.
* Where the error comes from: a window's error is the next window's initial condition, so
  errors carry forward. On allen-cahn the first window has the largest (2.6e-4 with 150 steps
  and 2000 points, 1.5e-3 with 60 and 1000): u0 = x² cos πx has a kink at x = ±1 that the
  smooth periodic network cannot take; later windows fit to loss 1e-14 and add almost nothing.
  On kdv ten windows were too long (the copied network, extrapolating the moving solitons,
  started later windows at loss 0.2–3.3; 7.9e-3 after 443 s); twenty started at ≤ 0.03.
* kuramoto-sivashinsky (regular case) is where carrying errors forward hurts: every window
  fits its residual to loss 1e-5–1e-8 and the initial term with weight 100 (unit weights left
  the initial condition unfitted at loss 0.08, error 0.39 on the first window; trace weights put
  6.9e5 on it and stalled the residual at 0.33), yet the error per tenth of the interval grows
  from 5e-4 to 0.40 — the modes cos/sin(mπx), m = 1, 2, 3, of u_t = −β u_xx − γ u_xxxx grow
  like e^{4.4 t}, e^{12 t}, e^{5.0 t}, so a small error in a window's initial condition is
  amplified by the dynamics. Windows fitted far below 1e-5 in
  the first half of the interval are what it would take; not tried.
* Compared with the published figures (solvers/suites/references.toml; not at the same budget:
  those train 200000–300000 Adam steps of 3–5 × 256 modified MLPs or PirateNets with random
  Fourier features and weight factorisation on a GPU; these rows train a 4 × 40 tanh network
  for 20–30 minutes on one CPU thread): allen-cahn 1.1e-4 here (`allen-cahn-march-long`)
  against 5.37e-5 (jaxpi), 2.24e-5 (PirateNet), 1.39e-4 (causal training) and 5.17e-1 (a plain
  PINN at jaxpi's budget); kdv 1.2e-4 against 4.27e-4 (PirateNet) and 1.96e-3 (jaxpi);
  kuramoto-sivashinsky (regular) 0.21 against 3.49e-4 (causal training with 10 marched
  windows).
* The published errors are measured against chebfun `spin` references on 512 points; for
  allen-cahn such a reference is itself about 2e-5 (relative L2) from the ETDRK4 reference used
  here (4096 modes), so figures below ~1e-4 are not comparable digit for digit.
* The earlier rows (2026-12-04, before marching): with Adam and causal + trace weights the
  error stopped falling within minutes while the loss fell slowly, the error per tenth of the
  interval growing with t from 3–4 % in the first tenth; the causal weights were not what held
  the later times back (the smallest was about 0.85 at the end). kuramoto-sivashinsky did not
  start: the trace rule put a weight of 3.4e5 on the initial term and the residual stayed near 1.
"""

FINE = (512, 201)
COARSE = (64, 33)
SLABS = 10


def _grid(problem, nx: int, nt: int) -> tuple[torch.Tensor, np.ndarray]:
    lo, hi = problem.domain.lower, problem.domain.upper
    x = np.linspace(lo[0], hi[0], nx)
    t = np.linspace(lo[1], hi[1], nt)
    X, T = np.meshgrid(x, t, indexing="ij")
    pts = torch.tensor(np.stack([X.ravel(), T.ravel()], axis=1), dtype=torch.float64)
    ref = problem.reference()(X.ravel(), T.ravel())
    return pts, ref


def _predict(model: torch.nn.Module, pts: torch.Tensor) -> np.ndarray:
    p = next(model.parameters())
    with torch.no_grad():
        out = model(pts.to(device=p.device, dtype=p.dtype))
    return out[:, 0].to(torch.float64).cpu().numpy()


def _rel(pred: np.ndarray, ref: np.ndarray) -> float:
    return float(np.linalg.norm(pred - ref) / np.linalg.norm(ref))


def measure(problem, model) -> dict:
    """The fine-grid error and its value per tenth of the time interval."""
    pts, ref = _grid(problem, *FINE)
    pred = _predict(model, pts)
    t = pts[:, 1].numpy()
    t_end = problem.domain.upper[1]
    edges = np.linspace(0.0, t_end, SLABS + 1)
    slab = np.clip(np.searchsorted(edges, t, side="right") - 1, 0, SLABS - 1)
    return {"fine_error": _rel(pred, ref),
            "slabs": [_rel(pred[slab == s], ref[slab == s]) for s in range(SLABS)]}


def run(name: str, cfg: dict, out_root: Path, eval_every_s: float, command: str = "") -> dict:
    """Train ``name`` with the configuration ``cfg`` (a preset with overrides); the row
    (``command``: the command line, recorded in it)."""
    import problems
    import solvers

    problem = problems.get(name, **cfg["params"])
    coarse_pts, coarse_ref = _grid(problem, *COARSE)
    budget = cfg["budget_s"]
    state: dict = {"stopped_at": None, "trace": [], "next_eval": 0.0}

    def callback(tr):
        if tr.elapsed >= state["next_eval"]:
            state["trace"].append((round(tr.elapsed, 1), tr.step + 1,
                                   _rel(_predict(tr.model, coarse_pts), coarse_ref)))
            state["next_eval"] = tr.elapsed + eval_every_s
        if budget is not None and tr.elapsed > budget and tr.step + 1 < tr.steps:
            state["stopped_at"] = tr.step + 1
            tr.steps = tr.step + 1

    row: dict[str, Any] = {"problem": name, "bound": BOUNDS[name], "config": cfg,
                           "date": time.strftime("%Y-%m-%d %H:%M"),
                           "threads": torch.get_num_threads(), "command": command}
    common = dict(weighting=cfg["weighting"], optimizer=cfg["optimizer"], points=cfg["points"],
                  resample_every=cfg["resample_every"], sampler=cfg["sampler"], device="cpu",
                  dtype=cfg["dtype"], seed=cfg["seed"], ntk_every=0, export=False,
                  compile=cfg["compile"])
    out = out_root / cfg["label"].replace("/", "_")
    t0 = time.perf_counter()
    try:
        if cfg.get("windows"):
            res = solvers.train_marching(problem, cfg["windows"], steps=cfg["steps"],
                                         budget_s=budget, out=out,
                                         model_options=cfg["model"] or None, **common)
        else:
            res = solvers.train(problem, steps=cfg["steps"], out=out,
                                model_options=cfg["model"] or None, callback=callback, **common)
    except solvers.TrainingError as exc:
        row.update(status="diverged", error=float("nan"), message=str(exc), meets=False,
                   wall_s=time.perf_counter() - t0, trace=state["trace"])
        return row
    except Exception as exc:  # a crash is a result too: record it, go on with the others
        row.update(status="crashed", error=float("nan"), meets=False,
                   message=f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc(),
                   wall_s=time.perf_counter() - t0, trace=state["trace"])
        return row
    row.update(measure(problem, res.model))
    row.update(status="ok", error=float(res.metrics["relative_l2"]["u"]),
               steps_done=res.metrics["steps"], train_s=res.metrics["wall_time_s"],
               wall_s=time.perf_counter() - t0)
    if cfg.get("windows"):
        row.update(_march_details(res, coarse_pts, coarse_ref, cfg["steps"]))
    else:
        row.update(stopped_by_budget=state["stopped_at"], final_loss=res.metrics["final_loss"],
                   final_weights=res.metrics["final_weights"],
                   causal_min_weight=(res.history["train"][-1].get("causal_min_weight")
                                      if res.history.get("train") else None),
                   trace=state["trace"])
    bound = BOUNDS[name]
    over = budget is not None and res.metrics["wall_time_s"] > budget * 1.01 + 5
    row["meets"] = (bound is not None and math.isfinite(row["error"]) and row["error"] <= bound
                    and not over)
    return row


def _march_details(res, pts: torch.Tensor, ref: np.ndarray, steps: int) -> dict:
    """A marched run's figures: per window its steps, time and final loss, and the trace —
    after window k, (time so far, steps so far, the composite's error on t ≤ t_{k+1})."""
    pred = _predict(res.model, pts)
    t = pts[:, 1].numpy()
    trace, elapsed, done = [], 0.0, 0
    for w in res.metrics["windows"]:
        elapsed += w["wall_time_s"]
        done += w["steps"]
        upto = t <= w["t"][1] + 1e-12
        trace.append((round(elapsed, 1), done, _rel(pred[upto], ref[upto])))
    short = [k for k, w in enumerate(res.metrics["windows"]) if w["steps"] < steps]
    return {"trace": trace, "windows": res.metrics["windows"],
            "stopped_by_budget": res.metrics["steps"] if short else None,
            "final_loss": max(w["final_loss"] for w in res.metrics["windows"])}


# ---------------------------------------------------------------------------------- report
def _fmt(v) -> str:
    if v is None or not np.isfinite(v):
        return "—" if v is None else "NaN"
    return f"{v:.3g}" if v >= 1e-2 else f"{v:.2e}"


def _config_text(cfg: dict) -> str:
    parts = ([f"time marching: {cfg['windows']} windows, ≤ {cfg['steps']} steps and the points "
              f"below each"] if cfg.get("windows") else [])
    parts += [f"weighting `{cfg['weighting']}`", f"optimizer `{cfg['optimizer']}`",
             "net " + (", ".join(f"{k}={v}" for k, v in cfg["model"].items()) or "defaults"),
             "points " + (json.dumps(cfg["points"]) if cfg["points"] else "defaults"),
             f"resample_every {cfg['resample_every']} ({cfg['sampler']})",
             f"steps ≤ {cfg['steps']}", f"compile {cfg['compile']}, {cfg['dtype']}, "
             f"seed {cfg['seed']}"]
    if cfg["params"]:
        parts.insert(0, ", ".join(f"{k}={v}" for k, v in cfg["params"].items()))
    if cfg.get("budget_s"):
        parts.append(f"budget {cfg['budget_s']:.0f} s")
    return "; ".join(parts)


def _without_chosen(command: str) -> str:
    """The command line without its ``--chosen TEXT`` (the text is shown next to it)."""
    words = shlex.split(command)
    keep = [w for i, w in enumerate(words)
            if w != "--chosen" and not (i > 0 and words[i - 1] == "--chosen")]
    return " ".join(shlex.quote(w) for w in keep)


def render(rows: dict) -> str:
    lines = [
        "# Periodic benchmarks: Allen–Cahn, KdV, Kuramoto–Sivashinsky",
        "",
        "Written by `python -m solvers.benchmarks.periodic` (do not edit by hand). CPU, one "
        f"thread per run, at most two runs at a time (one per core) on a 2-core machine "
        f"({platform.processor() or platform.machine()}, torch {torch.__version__}): wall "
        "times are those of a loaded machine. Relative L2 error of u against the problem's "
        "ETDRK4 reference; targets from issue 14: allen-cahn and kdv ≤ 1e-3 within 30 "
        "minutes, kuramoto-sivashinsky reported.",
        "",
        "| run | problem | error (101 × 101) | error (512 × 201) | target | meets | train "
        "time | steps | configuration |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for label, r in rows.items():
        cfg = r["config"]
        if r["status"] != "ok":
            measured, fine = f"{r['status']}: {r.get('message', '')}", "—"
        else:
            measured, fine = _fmt(r["error"]), _fmt(r.get("fine_error"))
        steps = str(r.get("steps_done", "—"))
        if r.get("stopped_by_budget"):
            steps += " (budget)"
        target = "report" if r["bound"] is None else f"≤ {r['bound']:g}"
        meets = "—" if r["bound"] is None else ("yes" if r.get("meets") else "no")
        wall = f"{r.get('train_s', r.get('wall_s', float('nan'))):.0f} s"
        lines.append(f"| {label} | {r['problem']} | {measured} | {fine} | {target} | {meets} | "
                     f"{wall} | {steps} | {_config_text(cfg)} |")
    lines += ["", "## Error per tenth of the time interval (512 × 201 grid)", "",
              "| run | " + " | ".join(f"t ∈ [{k / SLABS:.1f}, {(k + 1) / SLABS:.1f}]"
                                      for k in range(SLABS)) + " |",
              "|---|" + "---|" * SLABS]
    for label, r in rows.items():
        if r.get("slabs"):
            lines.append(f"| {label} | " + " | ".join(_fmt(v) for v in r["slabs"]) + " |")
    lines += ["", "## Error during training (64 × 33 grid)", "",
              "Time-marched runs: after each window, the error of the windows so far on the "
              "times they cover.", ""]
    for label, r in rows.items():
        if r.get("trace"):
            pts = ", ".join(f"{s:.0f} s: {_fmt(e)}" for s, _, e in r["trace"])
            lines.append(f"* {label}{' (marched)' if r.get('windows') else ''}: {pts}")
    lines += ["", "## Commands and how each configuration was chosen", ""]
    for label, r in rows.items():
        lines.append(f"* **{label}** ({r['date']}): `{_without_chosen(r['command'])}`"
                     + (f" — {r['chosen']}" if r.get("chosen") else ""))
    lines += ["", NOTES.strip()]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------ main
def _points(text: str) -> dict:
    out = {}
    for item in filter(None, (s.strip() for s in text.split(","))):
        k, eq, v = item.partition("=")
        if not eq or not v.strip().isdigit():
            raise ValueError(f"--points: expected name=count,..., got {item!r}")
        out[k.strip()] = int(v)
    return out


def configure(name: str, args: argparse.Namespace) -> dict:
    """The preset of ``name`` with the options given on the command line."""
    cfg = dict(PRESETS[name])
    cfg.update(seed=args.seed, dtype=args.dtype or cfg.get("dtype", "float32"))
    for key in ("weighting", "optimizer", "steps", "resample_every", "sampler"):
        if getattr(args, key) is not None:
            cfg[key] = getattr(args, key)
    if args.budget_s is not None:
        cfg["budget_s"] = None if args.budget_s <= 0 else args.budget_s
    if args.points is not None:
        cfg["points"] = _points(args.points)
    if args.model is not None:
        cfg["model"] = json.loads(args.model)
    if args.params is not None:
        cfg["params"] = json.loads(args.params)
    if args.compile is not None:
        cfg["compile"] = args.compile
    if args.windows is not None:
        if args.windows < 0:
            raise ValueError(f"--windows: expected a count >= 0, got {args.windows}")
        cfg["windows"] = args.windows or None
    cfg["label"] = args.label if args.label and len(args.only or []) <= 1 else (
        f"{name}/{args.label}" if args.label else name)
    return cfg


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", nargs="+", choices=sorted(PRESETS), metavar="NAME",
                    help=f"problems to run (default all: {', '.join(PRESETS)})")
    ap.add_argument("--weighting", help="weighting spec (replaces the preset's)")
    ap.add_argument("--optimizer", help="optimizer spec, e.g. 'adam+lbfgs:switch=0.5' or 'gn'")
    ap.add_argument("--steps", type=int, help="the most steps (the budget usually stops first)")
    ap.add_argument("--budget-s", type=float, help="wall-time budget in seconds (0: none)")
    ap.add_argument("--points", help="points per term, e.g. residual=2048,initial=256")
    ap.add_argument("--resample-every", type=int, help="redraw the points every K steps")
    ap.add_argument("--sampler", help="how points are redrawn: uniform or rad:...")
    ap.add_argument("--model", help='model options as JSON, e.g. \'{"width": 128, "depth": 4}\'')
    ap.add_argument("--params", help="problem parameters as JSON")
    ap.add_argument("--compile", dest="compile", action="store_true", default=None)
    ap.add_argument("--no-compile", dest="compile", action="store_false")
    ap.add_argument("--windows", type=int, help="march in time through K equal windows "
                                                "(steps and points per window; 0: no marching)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dtype", choices=["float32", "float64"],
                    help="the training dtype (default: the preset's)")
    ap.add_argument("--label", help="the row's name (default: the problem name)")
    ap.add_argument("--chosen", default="", help="how this configuration was chosen (kept in "
                                                 "the row)")
    ap.add_argument("--out", default="/tmp/periodic/runs", help="root of the run folders")
    ap.add_argument("--md", default="docs/results/periodic.md", help="the markdown table")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    ap.add_argument("--eval-every-s", type=float, default=60.0,
                    help="seconds between the error samples of the training trace")
    ap.add_argument("--render", action="store_true", help="only rewrite the markdown")
    args = ap.parse_args(argv)
    command = "python -m solvers.benchmarks.periodic " + " ".join(
        shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
    if args.threads < 1:
        print("periodic: --threads must be >= 1", file=sys.stderr)
        return 2
    try:
        names = args.only or list(PRESETS)
        configs = {n: configure(n, args) for n in names}
    except (ValueError, json.JSONDecodeError) as exc:
        print(f"periodic: {exc}", file=sys.stderr)
        return 2

    torch.set_num_threads(args.threads)
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    from pinnk.io import write_json, write_text

    md = Path(args.md)
    js, rows = read_rows(md)
    if args.render:
        write_text(md, render(rows))
        return 0
    for name, cfg in configs.items():
        print(f"[periodic] {cfg['label']} ...", flush=True)
        row = run(name, cfg, Path(args.out), args.eval_every_s, command)
        row["chosen"] = args.chosen
        rows[cfg["label"]] = row
        print(f"[periodic] {cfg['label']}: {row['status']} error={row.get('error')} "
              f"fine={row.get('fine_error')} meets={row.get('meets')} "
              f"train_s={row.get('train_s')}", flush=True)
        write_json(js, {"rows": rows})
        write_text(md, render(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
