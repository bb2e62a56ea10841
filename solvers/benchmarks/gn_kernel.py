"""Benchmark: the structured Θ of sod's Gauss–Newton system, one kernel after another.

    python -m solvers.benchmarks.gn_kernel [--width 40] [--repeats 7] [--shared-points]
        [--initial-window 0.01]

The system of the accuracy target sod-gn-rad-dense (viscous residuals at ν = 1e-4, 900 points
per residual, 300 per initial and 75 per boundary condition: N = 3825; a 5 × width tanh network
with the Positive transform on ρ and p, float64). As the residual-adaptive sampler leaves
them, each residual has points of its own (``--shared-points``: the three at the same points,
as uniform sampling gives). A Gauss–Newton step computes this kernel once, so it is timed as
the solver meets it: the same points and network, one kernel after another (after one warm-up
kernel). Prints the median and min seconds per kernel and the median minor page faults (fresh
pages from the operating system) per kernel. ``--initial-window D`` adds the tube's window
terms (``initial_window``: 16 rows each of the integrals of ρ, ρu and E over [x0 − D, x0 + D],
128 nodes a row; structured, as one part per node) to the system, to price them.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import torch

import pinnk
from pinnk.benchmarks import add_threads_option, apply_threads, minor_faults

POINTS = {"mass": 900, "momentum": 900, "energy": 900, "initial_rho": 300, "initial_u": 300,
          "initial_p": 300, "boundary_rho": 75, "boundary_u": 75, "boundary_p": 75}


def setup(width: int = 40, shared_points: bool = False, seed: int = 0,
          initial_window: float = 0.0) -> tuple:
    """(model, terms) of the benchmark's system (with the window terms at their default counts
    when ``initial_window`` > 0)."""
    import problems

    prob = problems.get("sod", viscosity=1e-4, initial_window=initial_window)
    g = torch.Generator().manual_seed(seed)
    terms = prob.terms(POINTS, generator=g, dtype=torch.float64)
    if not shared_points:  # the momentum and energy residuals at points of their own
        for k in (1, 2):
            other = prob.terms(POINTS, generator=g, dtype=torch.float64)[k]
            terms[k] = pinnk.Term(terms[k].name, terms[k].operator, other.points)
    model = pinnk.MLP(2, 3, width, 5, "tanh", output_transform=pinnk.Positive([0, 2]),
                      generator=g, dtype=torch.float64)
    return model, terms


def run(width: int = 40, repeats: int = 7, shared_points: bool = False,
        initial_window: float = 0.0) -> dict:
    """Time ``repeats`` kernels; returns the seconds and page faults of each and their medians."""
    model, terms = setup(width, shared_points, initial_window=initial_window)
    pinnk.ntk(model, terms, "structured").matrix()  # warm-up
    secs, faults = [], []
    for _ in range(repeats):
        f0 = minor_faults()
        t0 = time.perf_counter()
        pinnk.ntk(model, terms, "structured").matrix()
        secs.append(time.perf_counter() - t0)
        faults.append(minor_faults() - f0)
    return {"width": width, "shared_points": shared_points, "initial_window": initial_window,
            "n": sum(t.points.shape[0] for t in terms),
            "seconds": secs, "faults": faults, "median_s": statistics.median(secs),
            "min_s": min(secs), "median_faults": statistics.median(faults)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m solvers.benchmarks.gn_kernel",
                                 description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--width", type=int, default=40)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--shared-points", action="store_true")
    ap.add_argument("--initial-window", type=float, default=0.0, metavar="D",
                    help="add the tube's window terms of half-width D (default 0: none)")
    ap.add_argument("--json", action="store_true", help="print JSON instead of a line")
    add_threads_option(ap)
    a = ap.parse_args(argv)
    if a.width < 1 or a.repeats < 1:
        print("error: --width and --repeats must be positive", file=sys.stderr)
        return 2
    if not apply_threads(a.threads):
        return 2
    try:
        r = run(a.width, a.repeats, a.shared_points, a.initial_window)
    except ValueError as exc:
        print(f"error: --initial-window: {exc}", file=sys.stderr)
        return 2
    if a.json:
        print(json.dumps(r, indent=2))
        return 0
    window = (f"window terms of half-width {r['initial_window']:g}, "
              if r["initial_window"] else "")
    print(f"sod Gauss-Newton kernel, N = {r['n']}, 5 x {r['width']}, "
          f"{'shared' if r['shared_points'] else 'separate'} residual points, {window}"
          f"{torch.get_num_threads()} threads: median {r['median_s']:.3f} s, "
          f"min {r['min_s']:.3f} s, median {r['median_faults']:.0f} page faults per kernel")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
