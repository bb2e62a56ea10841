"""Tutorial: a weight-tuning report, the boundary weight of 1D Poisson swept against the trace rule.

The zoo problem ``poisson-1d`` is u_xx = f on [0, 1] with u = sin(4πx): a residual term at interior
points and a boundary term u(0) = u(1) = 0. How does the final error depend on the boundary weight
w (the residual's weight held at 1), and where does the NTK trace rule put that weight? This
script

1. runs :func:`solvers.report_weights`: one training run per weight of a log grid (fixed weights)
   and one with the trace-rule weighting (:class:`pinnk.weighting.TraceNTK`), writing
   ``report.html`` (self-contained), ``report.md``, ``report.json``, ``error.png``, ``loss.png``,
   ``angles.png`` and ``runs/`` into the output folder;
2. reads the returned :class:`solvers.WeightReport`: the per-weight settings (error, loss, the
   angle between the boundary and residual gradients at the end of training), the trace outcome
   (the trace-rule weights at initialisation and at the end, and the same weight on the sweep's
   axis) and the recommendation;
3. runs the equivalent ``pinnk report weights`` command (as ``python -m solvers``) into the same
   folder: it finds the stored runs, trains nothing and prints the same recommendation.

``python examples/weight_report.py --quick`` takes about 15 s on one CPU core (5 weights from 0.01
to 100, 300 steps per run, 64 residual points); without ``--quick`` it runs the sweep with every
default, ``pinnk report weights poisson-1d``: 9 weights from 0.01 to 100 and the trace rule
``trace:every=100``, the problem's network, points and 10000 steps per run (about 20 s per run on
one CPU thread, 10 runs).
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
from pathlib import Path

import solvers


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="about 15 s on one core")
    p.add_argument("--out", default="runs/tutorial-weight-report", help="output folder")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda")
    return p.parse_args(argv)


def setup(quick: bool) -> dict:
    """The sweep's options: keyword arguments of report_weights, each with its CLI option
    (None: the default, the problem's for steps and points)."""
    if quick:
        return {"grid": "0.01:100:5", "steps": 300, "points": {"residual": 64},
                "trace": "trace:every=50"}
    return {"grid": None, "steps": None, "points": None, "trace": "trace"}


def cli_command(problem: str, cfg: dict, out: Path, device: str) -> str:
    """The ``pinnk report weights`` command that runs the same sweep into the same folder."""
    argv = ["pinnk", "report", "weights", problem]
    if cfg["grid"] is not None:
        argv += ["--grid", cfg["grid"]]
    if cfg["steps"] is not None:
        argv += ["--steps", str(cfg["steps"])]
    for name, n in (cfg["points"] or {}).items():
        argv += ["--points", f"{name}={n}"]
    if cfg["trace"] != "trace":
        argv += ["--trace", cfg["trace"]]
    if device != "auto":
        argv += ["--device", device]
    return shlex.join(argv + ["--out", str(out)])


def fmt(v, spec=".3e") -> str:
    return "—" if v is None else format(v, spec)


def main(argv=None) -> int:
    args = parse_args(argv)
    cfg = setup(args.quick)
    out = Path(args.out)
    report_dir = out / "report"
    problem = "poisson-1d"

    # 1. The sweep. A second call with the same options into the same folder reuses the runs.
    rep = solvers.report_weights(problem, grid=cfg["grid"], steps=cfg["steps"],
                                 points=cfg["points"], trace=cfg["trace"], device=args.device,
                                 out=report_dir)
    print(f"{rep.problem}: swept {', '.join(rep.terms)} (weight w), held at 1: "
          f"{', '.join(rep.others)}; {len(rep.values)} weights × {len(rep.seeds)} seed(s) + the "
          f"trace rule, {rep.steps} steps each, points {rep.points}")
    print(f"trained {rep.trained} runs in {rep.wall_time_s:.1f} s")

    # 2. The result: the settings ...
    pair = f"{rep.terms[0]}|{rep.others[0]}"
    print(f"\n{'weight w':>10}  {'rel. L2 error':>13}  {'final loss':>10}  "
          f"cos α({pair}) at the end: mean [p5, p95]")
    for s in rep.settings:
        a = s.angles.get(pair) or {}
        mark = "  <- best" if s.weight == rep.recommendation.best_weight else ""
        print(f"{s.weight:>10.4g}  {fmt(s.relative_l2):>13}  {fmt(s.final_loss, '.2e'):>10}  "
              f"{fmt(a.get('mean'), '+.2f')} [{fmt(a.get('p5'), '+.2f')}, "
              f"{fmt(a.get('p95'), '+.2f')}]{mark}")
    # ... the trace outcome ...
    tr = rep.trace
    a = tr.angles.get(pair) or {}
    print(f"{'trace rule':>10}  {fmt(tr.relative_l2):>13}  {fmt(tr.final_loss, '.2e'):>10}  "
          f"{fmt(a.get('mean'), '+.2f')} [{fmt(a.get('p5'), '+.2f')}, {fmt(a.get('p95'), '+.2f')}]")
    print("trace-rule weights λ at init:   " +
          ", ".join(f"{k} {v:.4g}" for k, v in tr.weights_init.items()))
    print("                   at the end:  " +
          ", ".join(f"{k} {v:.4g}" for k, v in tr.weights_final.items()))
    print(f"on the sweep's axis (λ_{rep.terms[0]} / λ_{rep.others[0]}): w = "
          f"{fmt(tr.weight_init, '.4g')} at init, {fmt(tr.weight_final, '.4g')} at the end")
    # ... and the recommendation.
    rec = rep.recommendation
    print(f"\nrecommendation: {rec.text}")
    print(f"  best w = {fmt(rec.best_weight, '.4g')}, trace w = {fmt(rec.trace_weight, '.4g')}, "
          f"gap = {fmt(rec.gap, '+.1%')}, within {rec.tolerance:g}%: {rec.within}, "
          f"decades = {fmt(rec.decades, '+.2f')}, at the grid's edge: {rec.at_edge}")
    print("\nfiles: " + ", ".join(Path(f).name for f in rep.files))
    print(f"open {report_dir / 'report.html'} (self-contained) or {report_dir / 'report.md'}")

    # 3. The same sweep from the command line: every run is read back from report/runs/, so
    #    nothing is trained. `python -m solvers` is the `pinnk` program.
    command = cli_command(problem, cfg, report_dir, args.device)
    print(f"\nthe same sweep from the command line:\n  {command}")
    proc = subprocess.run([sys.executable, "-m", "solvers", *shlex.split(command)[1:], "--quiet"],
                          capture_output=True, text=True, check=True)
    print("\n".join("  | " + line for line in proc.stdout.splitlines()))

    summary = {"problem": rep.problem, "terms": rep.terms, "others": rep.others,
               "steps": rep.steps, "points": rep.points,
               "settings": [{"weight": s.weight, "relative_l2": s.relative_l2,
                             "final_loss": s.final_loss, "angles": s.angles.get(pair)}
                            for s in rep.settings],
               "trace": {"relative_l2": tr.relative_l2, "weight_init": tr.weight_init,
                         "weight_final": tr.weight_final, "weights_init": tr.weights_init,
                         "weights_final": tr.weights_final},
               "recommendation": {"best_weight": rec.best_weight, "best_error": rec.best_error,
                                  "trace_weight": rec.trace_weight,
                                  "trace_error": rec.trace_error, "gap": rec.gap,
                                  "within": rec.within, "decades": rec.decades,
                                  "at_edge": rec.at_edge, "text": rec.text},
               "files": [str(f) for f in rep.files], "cli": command,
               "cli_output": proc.stdout.splitlines()}
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(f"summary.json in {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
