"""``pinnk paper EXPERIMENT|all [--full] [--out DIR] [--seed S] [--device D] [--quiet]``."""

from __future__ import annotations

import argparse
import shlex
import sys

NAME = "paper"


def add_parser(sub) -> None:
    from .paper import EXPERIMENT_MODULES

    p = sub.add_parser(NAME, help="reproduce one of the paper's propositions",
                       description="Run an experiment of the source paper and write its JSON "
                       "data, PNG figures and markdown summary. Experiments: "
                       f"{', '.join(EXPERIMENT_MODULES)}, or 'all'.")
    p.add_argument("experiment", metavar="EXPERIMENT", help="experiment name, or 'all'")
    p.add_argument("--full", action="store_true", help="the paper's setup (slow) instead of the "
                   "quick mode")
    p.add_argument("--out", metavar="DIR", default=None,
                   help="output folder (default docs/results/paper for --full, "
                   "runs/paper otherwise)")
    p.add_argument("--seed", type=int, default=0, metavar="S", help="base seed (default 0)")
    p.add_argument("--device", default="auto", metavar="DEVICE", help="auto, cpu, cuda, cuda:N")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    from . import paper
    from ._runfolder import prepare_folder
    from ._train import resolve_device

    names = list(paper.experiments()) if args.experiment == "all" else [args.experiment]
    modules = [paper.get(n) for n in names]
    mode = "full" if args.full else "quick"
    out = args.out or ("docs/results/paper" if args.full else "runs/paper")
    device = resolve_device(args.device)
    prepare_folder(out, "--out")  # before any work: a folder that cannot be written fails now
    for module in modules:
        argv = ["pinnk", "paper", module.NAME] + (["--full"] if args.full else [])
        if args.out:
            argv += ["--out", args.out]
        if args.seed:
            argv += ["--seed", str(args.seed)]
        ctx = paper.Context(mode=mode, out=out, seed=args.seed, device=device,
                            progress=not args.quiet, command=shlex.join(argv))
        info = paper.run_experiment(module, ctx)
        held = ", ".join(f"{k}: {'held' if v else 'did not hold'}"
                         for k, v in info["verdict"].items())
        print(f"{info['name']} ({mode}, {info['wall_time_s']:.1f} s): {held or 'measured'}; "
              f"files in {out}", file=sys.stdout)
    return 0
