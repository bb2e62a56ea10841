"""``pinnk report weights PROBLEM ...``: sweep a loss weight and compare with the NTK trace rule.

::

    pinnk report weights PROBLEM [--param k=v ...] [--term NAME ...]
                 [--grid LO:HI:N | --values V1,V2,...] [--steps N] [--seeds N] [--seed S]
                 [--points N | --points NAME=N ...] [--trace SPEC] [--tolerance PCT]
                 [--device D] [--dtype float32|float64] [--out DIR] [--force] [--quiet]

Writes DIR/report.html (self-contained), report.md, report.json, error.png, loss.png, angles.png,
and one JSON per finished run under DIR/runs/ (see :mod:`solvers._report`). Repeating the command
with the same options reuses the finished runs; other options into the same DIR exit with status 2
unless --force is given. Exit codes: 0 success; 1 the report could not be written; 2 a bad
option (one line); 130 interrupted (the finished runs are kept: repeat the command to continue).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

NAME = "report"

# report kind -> (help, function adding its arguments, function running it)
_KINDS: dict = {}


def _add_weights(p: argparse.ArgumentParser) -> None:
    from ._report import DEFAULT_GRID

    p.add_argument("problem", metavar="PROBLEM", help="problem name (see 'pinnk problems')")
    p.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                   help="a problem parameter (repeatable); VALUE is JSON")
    p.add_argument("--term", action="append", metavar="NAME",
                   help="a term whose weight is swept (repeatable: several terms share one "
                   "weight w) "
                   "(default: the terms that are not PDE residuals, or the derivative labels of "
                   "a regression problem)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--grid", metavar="LO:HI:N",
                   help=f"N log-spaced weights from LO to HI (default {DEFAULT_GRID})")
    g.add_argument("--values", metavar="V1,V2,...", help="explicit weights, comma-separated")
    p.add_argument("--steps", type=int, metavar="N", help="optimizer steps per run (default: "
                   "the problem's)")
    p.add_argument("--seeds", type=int, default=1, metavar="N",
                   help="runs per setting (seeds S, S+1, ...; default 1)")
    p.add_argument("--seed", type=int, default=0, metavar="S", help="first seed (default 0)")
    p.add_argument("--points", action="append", metavar="N|NAME=N",
                   help="collocation points per term: N for every term, or NAME=N (repeatable)")
    p.add_argument("--trace", default="trace", metavar="SPEC",
                   help="the trace-rule weighting of the comparison run (default 'trace', i.e. "
                   "trace:every=100,kind=mean)")
    p.add_argument("--tolerance", type=float, default=10.0, metavar="PCT",
                   help="the trace rule counts as good when its error is within PCT%% of the "
                   "best measured error (default 10)")
    p.add_argument("--device", default="auto", metavar="DEVICE", help="auto, cpu, cuda, cuda:N")
    p.add_argument("--dtype", choices=("float32", "float64"), default="float32",
                   help="default float32")
    p.add_argument("--out", metavar="DIR", help="report folder (default "
                   "runs/report-weights-PROBLEM); repeating a command resumes it")
    p.add_argument("--force", action="store_true", help="discard the runs stored in --out when "
                   "its options differ")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _run_weights(args: argparse.Namespace) -> int:
    from ._cli import _error, _one_line, parse_params, parse_points
    from ._report import parse_grid, parse_values, report_weights

    params = parse_params(args.param)
    values = grid = None
    if args.values is not None:
        values = parse_values(args.values, "--values")  # the messages name the option
    elif args.grid is not None:
        parse_grid(args.grid, "--grid")
        grid = args.grid
    points = parse_points(args.points) if args.points else None
    out = Path(args.out) if args.out else Path("runs") / f"report-weights-{args.problem}"
    t0 = time.perf_counter()
    try:
        rep = report_weights(args.problem, term=args.term, values=values, grid=grid,
                             steps=args.steps, seeds=args.seeds, seed=args.seed, points=points,
                             params=params, trace=args.trace, tolerance=args.tolerance,
                             device=args.device, dtype=args.dtype, out=out, force=args.force,
                             progress=not args.quiet)
    except OSError as exc:
        _error(f"cannot write the report folder {str(out)!r}: {_one_line(exc)}")
        return 1
    except KeyboardInterrupt:
        _error(f"interrupted; the finished runs are kept in {out}: repeat the same command to "
               f"continue", prefix="")
        return 130
    n = len(rep.values)
    print(f"report weights {rep.problem}: {n} weight(s) of {', '.join(rep.terms)} × "
          f"{len(rep.seeds)} seed(s) + the trace rule, {rep.steps} steps each; trained "
          f"{rep.trained}, reused {rep.reused} ({time.perf_counter() - t0:.1f} s)")
    print(rep.recommendation.text)
    names = ", ".join(Path(f).name for f in rep.files[1:])
    print(f"report: {out / 'report.html'} (also {names})")
    return 0


_KINDS["weights"] = ("sweep a loss weight and compare with the NTK trace rule", _add_weights,
                     _run_weights)


def add_parser(sub) -> None:
    """Add ``pinnk report`` (with one sub-subcommand per report kind) to the subparsers."""
    p = sub.add_parser(NAME, help="reports that train a problem several times and compare",
                       description="Reports built from several training runs. Kinds: "
                       + ", ".join(_KINDS) + ".")
    kinds = p.add_subparsers(dest="report", metavar="KIND")
    for kind, (help_text, add, _) in _KINDS.items():
        k = kinds.add_parser(kind, help=help_text, description=help_text[0].upper() +
                             help_text[1:] + ": train each weight of a log grid (fixed weights, "
                             "other terms at 1) and once with the trace-rule weighting; write "
                             "report.html (self-contained), report.md, report.json and PNGs.",
                             epilog="Several --term names share one weight w. The trace-rule "
                             "weight is shown on the same axis as geomean(λ swept) / "
                             "geomean(λ others). Repeating the command with the same options "
                             "trains nothing new.")
        add(k)


def run(args: argparse.Namespace) -> int:
    """Run ``pinnk report KIND ...``; returns the exit status."""
    from ._cli import CLIError

    kind = getattr(args, "report", None)
    if kind is None:
        raise CLIError(f"report: a report kind is required: one of {', '.join(_KINDS)} (see "
                       f"'pinnk report --help')")
    return _KINDS[kind][2](args)
