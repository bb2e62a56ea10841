"""Performance benchmarks: scripts that measure ratios side by side in one run."""

from __future__ import annotations

import argparse
import sys

import torch


def add_threads_option(parser: argparse.ArgumentParser) -> None:
    """``--threads N``: the number of torch CPU threads for a benchmark run."""
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (default: torch's choice)")


def apply_threads(threads: int | None) -> bool:
    """Set torch's CPU threads; prints an error and returns False for a non-positive count."""
    if threads is None:
        return True
    if threads < 1:
        print("error: --threads must be positive", file=sys.stderr)
        return False
    torch.set_num_threads(threads)
    return True


def minor_faults() -> int:
    """The process's minor page faults so far (fresh pages from the operating system; 0 where
    ``resource`` is missing)."""
    try:
        import resource
    except ImportError:  # pragma: no cover - not on POSIX
        return 0
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
