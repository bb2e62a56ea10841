"""Benchmark: wall time to reach a relative L2 error, Gauss–Newton against the best Adam
configuration, side by side in one run.

    python -m solvers.benchmarks.time_to_accuracy [--tol 1e-3] [--problems poisson-1d convection]
                                                  [--check-every 10] [--threads 1] [--json]

For each problem it trains two configurations of :mod:`solvers.benchmarks.accuracy`, one after
the other on the same machine: the Gauss–Newton target (``<problem>-gn``: ``gn`` in float64)
and the Adam target that holds the problem's row in ``docs/results/accuracy.md`` (the best Adam
configuration found). Every ``--check-every`` steps (every step for Gauss–Newton, whose steps
are few and long) a callback evaluates the relative L2 error of the target's output on the
problem's evaluation grid; the time that evaluation takes is subtracted from the clock. A run
stops at the first check at or below ``--tol``, or at its target's wall-time budget (the time
is then reported as not reached). The ratio Adam time / Gauss–Newton time is printed.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time

import torch

from pinnk.benchmarks import add_threads_option, apply_threads


def time_to(target, tol: float, check_every: int, budget_s: float | None = None) -> dict:
    """Train ``target`` (an accuracy :class:`~solvers.benchmarks.accuracy.Target`) until its
    error is <= ``tol``; returns the steps, the seconds (evaluation excluded) and the error."""
    import problems
    import solvers
    from solvers._export import evaluate_fields, relative_l2

    problem = problems.get(target.problem, **target.params)
    k = problem.output_names.index(target.output)
    budget = budget_s if budget_s is not None else (target.budget_s or math.inf)
    state = {"eval_s": 0.0, "reached": None, "error": math.nan, "start": time.perf_counter()}

    def check(tr):
        if (tr.step + 1) % check_every:
            return
        t0 = time.perf_counter()
        data = evaluate_fields(problem, tr.model)
        err = float(relative_l2(data.prediction, data.reference)[k])
        state["eval_s"] += time.perf_counter() - t0
        state["error"] = err
        spent = time.perf_counter() - state["start"] - state["eval_s"]
        if err <= tol:
            state["reached"] = (tr.step + 1, spent)
        if err <= tol or spent > budget:
            tr.steps = tr.step + 1  # stop after this step

    state["start"] = time.perf_counter()
    solvers.train(problem, weighting=target.weighting, optimizer=target.optimizer,
                  steps=target.steps, points=target.points, resample_every=target.resample_every,
                  sampler=target.sampler, device="cpu", dtype=target.dtype, seed=target.seed,
                  ntk_every=0, model_options=target.model_options or None, export=False,
                  compile=target.compile, callback=check)
    total = time.perf_counter() - state["start"] - state["eval_s"]
    reached = state["reached"]
    return {"target": target.name, "optimizer": target.optimizer, "tol": tol,
            "reached": reached is not None, "steps": reached[0] if reached else None,
            "seconds": reached[1] if reached else None, "ran_s": total,
            "last_error": state["error"]}


def main(argv=None) -> int:
    from .accuracy import BY_NAME

    ap = argparse.ArgumentParser(prog="python -m solvers.benchmarks.time_to_accuracy",
                                 description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tol", type=float, default=1e-3)
    ap.add_argument("--problems", nargs="+", default=["poisson-1d", "convection"])
    ap.add_argument("--check-every", type=int, default=10,
                    help="steps between error checks of the Adam runs (Gauss–Newton: every step)")
    ap.add_argument("--json", action="store_true")
    add_threads_option(ap)
    a = ap.parse_args(argv)
    if not a.tol > 0 or a.check_every < 1:
        print("error: --tol and --check-every must be positive", file=sys.stderr)
        return 2
    missing = [p for p in a.problems if p not in BY_NAME or f"{p}-gn" not in BY_NAME]
    if missing:
        print(f"error: --problems: no Adam and Gauss–Newton accuracy targets for {missing}",
              file=sys.stderr)
        return 2
    if not apply_threads(a.threads):
        return 2
    rows = []
    for name in a.problems:
        gn = time_to(BY_NAME[f"{name}-gn"], a.tol, 1)
        adam = time_to(BY_NAME[name], a.tol, a.check_every)
        ratio = (adam["seconds"] / gn["seconds"]) if gn["reached"] and adam["reached"] else None
        rows.append({"problem": name, "gn": gn, "adam": adam, "ratio": ratio})
    if a.json:
        print(json.dumps(rows, indent=2))
        return 0
    for r in rows:
        def fmt(x):
            if x["reached"]:
                return f"{x['seconds']:.1f} s ({x['steps']} steps)"
            return f"not within {x['ran_s']:.0f} s (error {x['last_error']:.2e})"
        ratio = f"{r['ratio']:.1f}x" if r["ratio"] else "—"
        print(f"{r['problem']}: rel. L2 <= {a.tol:g}: Gauss–Newton {fmt(r['gn'])}, Adam "
              f"{fmt(r['adam'])}; ratio {ratio}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
