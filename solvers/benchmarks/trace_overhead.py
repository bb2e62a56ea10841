"""Benchmark: what the NTK trace-rule weight updates cost during training, on Sod.

    python -m solvers.benchmarks.trace_overhead [--problem sod] [--steps 1000] [--every 100]
                                               [--impl auto,jacobian] [--threads 1] [--json]

Trains the problem with its defaults (for ``sod``: 6 × 64 tanh, the ``Positive`` transform on
ρ and p, its default points, Adam, float32) and trace-rule weights every ``--every`` steps
(``trace:every=K``: the per-point kernel diagonals of every term on up to 1024 points each),
for ``--steps`` steps, once per kernel implementation of ``--impl``. Each run times every weight
update and the whole training loop (the trainer's wall time, diagnostics and exports off), and
reports the share of the training time the updates took, so that the structured kernel (``auto``:
the nonlinear Euler residuals linearised on the structured path) and the Jacobian path are
measured side by side in one run.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from pinnk.benchmarks import add_threads_option, apply_threads


def measure(problem: str = "sod", steps: int = 1000, every: int = 100, impl: str = "auto",
            seed: int = 0) -> dict:
    """One training run; returns the update count, their total and mean seconds, the training
    loop's seconds and the updates' share of it."""
    import problems
    import solvers
    from pinnk.weighting import TraceNTK

    weighting = TraceNTK(every=every, implementation=impl)
    tr = solvers.Trainer(problems.get(problem), weighting=weighting, steps=steps, ntk_every=0,
                         export=False, seed=seed, device="cpu")
    spent: list = []
    inner = tr.weighting.update

    def timed(step, model, terms, losses):
        t0 = time.perf_counter()
        changed = inner(step, model, terms, losses)
        if changed:
            spent.append(time.perf_counter() - t0)
        return changed

    tr.weighting.update = timed
    res = tr.run()
    loop = res.metrics["wall_time_s"]
    return {"problem": problem, "implementation": impl, "steps": steps, "every": every,
            "updates": len(spent), "update_s_total": sum(spent),
            "update_s_mean": sum(spent) / max(len(spent), 1), "train_s": loop,
            "update_share": sum(spent) / loop}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m solvers.benchmarks.trace_overhead",
                                 description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--problem", default="sod")
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--every", type=int, default=100)
    ap.add_argument("--impl", default="auto,jacobian",
                    help="kernel implementations, comma-separated (default auto,jacobian)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true")
    add_threads_option(ap)
    a = ap.parse_args(argv)
    if a.steps < 1 or a.every < 1:
        print("error: --steps and --every must be positive", file=sys.stderr)
        return 2
    impls = [s for s in a.impl.split(",") if s]
    bad = [s for s in impls if s not in ("auto", "structured", "jacobian")]
    if bad or not impls:
        print(f"error: --impl: unknown implementation(s) {bad}; expected auto, structured, "
              f"jacobian", file=sys.stderr)
        return 2
    if not apply_threads(a.threads):
        return 2
    rows = [measure(a.problem, a.steps, a.every, impl, a.seed) for impl in impls]
    if a.json:
        print(json.dumps(rows, indent=2))
        return 0
    for r in rows:
        print(f"{r['problem']} {r['steps']} steps, trace every {r['every']} "
              f"({r['implementation']}): {r['updates']} updates, {r['update_s_mean'] * 1e3:.0f} ms "
              f"each, {r['update_s_total']:.1f} s of {r['train_s']:.1f} s training = "
              f"{100 * r['update_share']:.1f}%")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
