"""``pinnk bench``: run a benchmark suite (problems × weighting methods × seeds), or ``pinnk bench
perf``: the performance ratios measured side by side.

::

    pinnk bench [--suite quick|standard|full|FILE.toml] [--problems NAME ...] [--methods NAME ...]
                [--seeds N] [--executor local|process|ray] [--jobs N] [--address ADDR]
                [--threads T] [--device D] [--out DIR] [--retry-failed] [--list] [--quiet]
    pinnk bench perf [--quick] [--only ntk|train-step] [--repeats R] [--threads T]
                     [--device D] [--json]

A suite run appends one JSON line per finished run to ``DIR/results.jsonl`` (default
``runs/bench/SUITE``), skips runs already there (rerun the same command to resume after Ctrl-C or
a crash), records failed runs with their reason and goes on, and writes ``summary.md``,
``summary.csv`` and ``summary.png``. Exit status 0 when every run of the selection is ok, 1 when
some failed, 2 for a bad option or an output folder that cannot be written (or that another suite
run is writing into: the folder is locked while the runs go on), 130 when interrupted.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

NAME = "bench"


def add_parser(sub) -> None:
    """Add ``bench`` (with its ``perf`` subcommand) to the subparsers ``sub``."""
    from ._bench import EXECUTORS, suite_names

    p = sub.add_parser(
        NAME, help="run a benchmark suite, or 'bench perf' for the performance ratios",
        description="Run a benchmark suite: every case (problem, parameters, budget) × its "
        "methods (named loss-weighting specs) × seeds. Results are appended to "
        "OUT/results.jsonl as each run finishes; finished runs are skipped on a rerun. "
        "Summary: OUT/summary.md, summary.csv, summary.png. 'pinnk bench perf' measures the "
        "NTK and training-step speed-up ratios instead.",
        epilog=f"Suites: {', '.join(suite_names())} (files in solvers/suites/), or a path to a "
        "suite TOML file. Example: pinnk bench --suite standard --executor process --jobs 2")
    p.add_argument("--suite", default="quick", metavar="SUITE",
                   help="suite name or TOML file (default quick)")
    p.add_argument("--problems", nargs="+", metavar="NAME",
                   help="only these problems (problem names or case labels of the suite)")
    p.add_argument("--methods", nargs="+", metavar="NAME", help="only these methods")
    p.add_argument("--seeds", type=int, metavar="N", help="seeds 0..N-1 (default: the suite's)")
    p.add_argument("--executor", choices=EXECUTORS, default="local",
                   help="local (in this process, default), process (a process pool) or ray")
    p.add_argument("--jobs", type=int, metavar="N", help="runs at a time (default 1 for local, "
                   "the number of CPUs for process and ray)")
    p.add_argument("--address", metavar="ADDR", help="an existing Ray cluster ('auto' or "
                   "'ray://host:10001'); default: start a local Ray instance")
    p.add_argument("--threads", type=int, default=1, metavar="T",
                   help="torch CPU threads per run (default 1)")
    p.add_argument("--device", default="cpu", metavar="DEVICE",
                   help="training device: cpu (default), cuda, cuda:N, auto")
    p.add_argument("--out", metavar="DIR", help="output folder (default runs/bench/SUITE)")
    p.add_argument("--retry-failed", action="store_true", dest="retry_failed",
                   help="run again the runs recorded as failed (default: they count as done)")
    p.add_argument("--list", action="store_true", dest="list_only",
                   help="list the runs of the selection (done or to do) and exit")
    p.add_argument("--quiet", action="store_true", help="no line per finished run")
    perf_sub = p.add_subparsers(dest="bench_command", metavar="perf", parser_class=type(p))
    q = perf_sub.add_parser(
        "perf", help="the NTK and training-step speed-up ratios, measured side by side",
        description="Measure (1) the structured NTK path against the generic Jacobian path "
        "(pinnk.benchmarks.ntk) and (2) one training step of pinnk against DeepXDE's PyTorch "
        "backend (solvers.benchmarks.train_step); each alternates the two sides in one run and "
        "prints their ratio. --quick: tiny sizes (seconds; the ratios then mean little).")
    q.add_argument("--quick", action="store_true", help="tiny sizes, no memory measurement, "
                   "eager pinnk only (a smoke test)")
    q.add_argument("--only", choices=("ntk", "train-step"), help="only one of the two")
    q.add_argument("--repeats", type=int, metavar="R", help="timed repeats (default 3, quick 1)")
    q.add_argument("--threads", type=int, metavar="T", dest="perf_threads",
                   help="torch CPU threads (default: torch's choice)")
    q.add_argument("--device", metavar="DEVICE", dest="perf_device",
                   help="cpu or cuda (default: cuda when available)")
    q.add_argument("--json", action="store_true", help="print JSON")


def run(args: argparse.Namespace) -> int:
    """Run ``pinnk bench`` (or ``pinnk bench perf``); returns the exit status."""
    if getattr(args, "bench_command", None) == "perf":
        return run_perf(args)
    return run_suite_command(args)


def _positive(value, option: str) -> None:
    from ._cli import CLIError

    if value is not None and value < 1:
        raise CLIError(f"{option}: expected a positive integer, got {value}")


def run_suite_command(args: argparse.Namespace) -> int:
    from . import _bench as B
    from ._cli import CLIError, _one_line
    from ._runfolder import check_folder, prepare_folder
    from ._train import resolve_device

    _positive(args.jobs, "--jobs")
    _positive(args.seeds, "--seeds")
    _positive(args.threads, "--threads")
    if args.executor == "local" and args.jobs not in (None, 1):
        raise CLIError(f"--jobs {args.jobs}: the local executor runs one run at a time; use "
                       f"--executor process or ray for parallel runs")
    if args.address is not None and args.executor != "ray":
        raise CLIError("--address is for --executor ray")
    try:
        suite = B.load_suite(args.suite)
        specs = B.plan(suite, args.problems, args.methods, args.seeds)
        device = str(resolve_device(args.device))
    except (ValueError, TypeError) as exc:
        raise CLIError(_one_line(exc)) from None
    out = Path(args.out) if args.out else Path("runs") / "bench" / suite.name
    try:  # before any work: a folder that cannot be written is refused at once
        check_folder(out, "--out") if args.list_only else prepare_folder(out, "--out")
    except ValueError as exc:
        raise CLIError(str(exc)) from None
    results = B.ResultsFile(out / B.RESULTS_NAME)
    try:
        done = B.latest_rows(results.read())
    except B.BenchError as exc:
        raise CLIError(str(exc)) from None
    if args.list_only:
        for s in specs:
            r = done.get(s.key)
            state = "to do" if r is None else r.get("status", "?")
            print(f"{s.case:24s} {s.method:12s} seed {s.seed}  {state:7s} {s.key}")
        return 0

    todo = sum(1 for s in specs if s.key not in done or (
        args.retry_failed and done[s.key].get("status") != "ok"))
    print(f"suite {suite.name}: {len(specs)} runs ({len(specs) - todo} done before), executor "
          f"{args.executor}, results in {results.path}", flush=True)
    try:
        executor = B.make_executor(args.executor, args.jobs, args.address, args.threads) \
            if todo else B.LocalExecutor()
    except ImportError as exc:
        raise CLIError(str(exc)) from None

    def progress(k: int, n: int, row: dict) -> None:
        if args.quiet:
            return
        if row.get("status") == "ok":
            errs = ", ".join(f"{o} {v:.2e}" for o, v in (row.get("relative_l2") or {}).items())
            what = f"ok, rel. L2 {errs}, {row.get('wall_time_s') or 0:.1f} s"
        else:
            what = f"FAILED: {row.get('reason')}"
        print(f"[{k}/{n}] {row['case']} {row['method']} seed {row['seed']}: {what}", flush=True)

    try:
        with executor:
            report = B.run_suite(specs, out, executor, device=device, threads=args.threads,
                                 retry_failed=args.retry_failed, progress=progress)
    except KeyboardInterrupt:
        try:
            n = len(B.latest_rows(results.read()).keys() & {s.key for s in specs})
        except B.BenchError:
            n = "?"
        print(f"pinnk: interrupted; {n} of {len(specs)} runs are recorded in {results.path}; "
              f"rerun the same command to continue", file=sys.stderr)
        return 130
    summary = B.summarize(report.rows, specs, suite)
    files = B.write_summary(summary, out, suite.methods)
    failed = sum(1 for r in report.rows if r.get("status") != "ok")
    print(f"ran {report.ran}, skipped {report.skipped} (done before), failed {failed} of "
          f"{len(specs)}")
    print(B.markdown(summary).split("\n## ")[0].rstrip())
    print(f"summary: {', '.join(str(f) for f in files)}")
    return 1 if failed else 0


def run_perf(args: argparse.Namespace) -> int:
    """``pinnk bench perf``: the NTK ratio and the training-step ratio, each measured side by
    side in one run."""
    import torch

    from pinnk.benchmarks import ntk

    from ._cli import CLIError
    from .benchmarks import train_step

    _positive(args.repeats, "--repeats")
    _positive(args.perf_threads, "--threads")
    device = args.perf_device or ("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise CLIError("--device: CUDA was requested but is not available on this machine")
    if not (device == "cpu" or device.startswith("cuda")):
        raise CLIError(f"--device: expected cpu or cuda[:N], got {device!r}")
    if args.perf_threads:
        torch.set_num_threads(args.perf_threads)
    quick = args.quick
    repeats = args.repeats or (1 if quick else 3)
    out: dict = {"quick": quick, "device": device, "threads": torch.get_num_threads(),
                 "torch": torch.__version__}
    if args.only in (None, "ntk"):
        out["ntk"] = ntk.measure(n=32 if quick else 256, width=32 if quick else 200,
                                 repeats=repeats, device=device, memory=not quick,
                                 euler_widths=(16,) if quick else (64, 200))
    if args.only in (None, "train-step"):
        out["train_step"] = train_step.measure(points=256 if quick else 4096,
                                               steps=5 if quick else 200, repeats=repeats,
                                               device=device, compiled=not quick)
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    print(f"pinnk bench perf ({'quick: tiny sizes, ratios not meaningful' if quick else 'full'}),"
          f" device {device}, torch {out['torch']}, {out['threads']} threads")
    if "ntk" in out:
        for r in out["ntk"]["cases"]:
            mem = (f", memory {r['memory_ratio']:.1f}x" if r.get("memory_ratio") is not None
                   else "")
            print(f"NTK {r['case']:27s} n={r['n_per_term']} width {r['width']}: structured vs "
                  f"jacobian time {r['time_ratio']:.1f}x{mem} (rel. diff {r['rel_diff']:.1e})")
    if "train_step" in out:
        r = out["train_step"]
        text = (f"training step burgers-1d ({r['points']} points): pinnk vs DeepXDE "
                f"{r['speedup']:.2f}x eager ({r['pinnk_s_per_step'] * 1e3:.2f} vs "
                f"{r['deepxde_s_per_step'] * 1e3:.2f} ms/step)")
        if r.get("speedup_compiled") is not None:
            text += f", {r['speedup_compiled']:.2f}x compiled"
        print(text)
    return 0
