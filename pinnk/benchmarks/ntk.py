"""Benchmark: the structured NTK path against the generic Jacobian path.

    python -m pinnk.benchmarks.ntk [--n 256] [--width 200] [--repeats 3] [--device cpu]

For an MLP 2 → width → width → width → 1 (tanh, float64) and n points per term, it times the full
kernel matrix Θ of (a) the terms [f, ∂_h f] and (b) [f, Δf] with ``implementation="jacobian"`` and
``"structured"``, alternating the two in one run (the machine is shared and noisy: only the ratio
measured side by side means anything), and reports the median times, their ratio, the peak memory
of each (the resident-set high-water mark on CPU, ``max_memory_allocated`` on CUDA) and the
largest relative difference between the two matrices.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import subprocess
import sys
import time

import torch

import pinnk
from pinnk import ops

from . import add_threads_option, apply_threads


def _setup(case: str, n: int, width: int, device: str, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    model = pinnk.MLP(2, 1, [width] * 3, activation="tanh", parametrization="ntk", generator=g,
                      dtype=torch.float64).to(device)
    x = (torch.rand(n, 2, generator=g, dtype=torch.float64) * 2 - 1).to(device)
    h = torch.tensor([0.8, -0.6], dtype=torch.float64)
    second = ops.directional(h) if case == "a" else ops.laplacian()
    terms = [pinnk.Term("f", ops.value(), x), pinnk.Term("Df", second, x)]
    return model, terms


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _time_once(case, n, width, device, impl):
    model, terms = _setup(case, n, width, device)
    _sync(device)
    t0 = time.perf_counter()
    M = pinnk.ntk(model, terms, impl).matrix()
    _sync(device)
    return time.perf_counter() - t0, M


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}")


def peak_memory(case: str, n: int, width: int, device: str, impl: str) -> int:
    """Peak extra memory (bytes) of building Θ, beyond the model and points.

    CUDA: ``max_memory_allocated``. CPU (Linux): in a fresh child process (so that no memory freed
    earlier is reused), the resident-set high-water mark, reset through ``/proc/self/clear_refs``
    after the set-up and read after the computation.
    """
    if device == "cpu":
        out = subprocess.run([sys.executable, "-m", "pinnk.benchmarks.ntk", "--peak-child",
                              f"{case},{n},{width},{impl}"], capture_output=True, text=True,
                             check=True)
        return int(out.stdout.strip().splitlines()[-1])
    model, terms = _setup(case, n, width, "cpu" if device == "cpu-child" else device)
    gc.collect()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        pinnk.ntk(model, terms, impl).matrix()
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() - base
    warm_model, warm_terms = _setup(case, 4, width, "cpu")  # first-call imports and caches
    pinnk.ntk(warm_model, warm_terms, impl).matrix()
    gc.collect()
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")
    base = _status_kib("VmRSS")
    M = pinnk.ntk(model, terms, impl).matrix()
    peak = _status_kib("VmHWM")
    del M
    return (peak - base) * 1024


def run(n: int = 256, width: int = 200, repeats: int = 3, device: str = "cpu",
        cases=("a", "b"), memory: bool = True) -> list[dict]:
    """Measure both cases; returns one dict per case with times, ratios, memory and error.

    ``memory=False`` skips the peak-memory measurement (its child processes take seconds); the
    memory entries are then None."""
    results = []
    for case in cases:
        _time_once(case, min(n, 8), width, device, "jacobian")  # warm-up (imports, kernels)
        _time_once(case, min(n, 8), width, device, "structured")
        tj, ts = [], []
        Mj = Ms = None
        for _ in range(repeats):
            t, Mj = _time_once(case, n, width, device, "jacobian")
            tj.append(t)
            t, Ms = _time_once(case, n, width, device, "structured")
            ts.append(t)
        err = float((Mj - Ms).norm() / Mj.norm())
        mj = peak_memory(case, n, width, device, "jacobian") if memory else None
        ms = peak_memory(case, n, width, device, "structured") if memory else None
        results.append({
            "case": "[f, d_h f]" if case == "a" else "[f, laplacian f]",
            "n_per_term": n, "width": width, "device": device,
            "jacobian_s": statistics.median(tj), "structured_s": statistics.median(ts),
            "time_ratio": statistics.median(tj) / statistics.median(ts),
            "jacobian_peak_bytes": mj, "structured_peak_bytes": ms,
            "memory_ratio": mj / max(ms, 1) if memory else None, "rel_diff": err,
        })
    return results


def measure(n: int = 256, width: int = 200, repeats: int = 3, device: str = "cpu",
            memory: bool = True) -> dict:
    """The ratios of :func:`run`, for callers (``pinnk bench perf``).

    Returns ``{"cases": run(...), "time_ratio": {case: jacobian/structured time},
    "memory_ratio": {case: jacobian/structured peak memory, or None without memory}}``.
    """
    rows = run(n, width, repeats, device, memory=memory)
    return {"cases": rows, "time_ratio": {r["case"]: r["time_ratio"] for r in rows},
            "memory_ratio": {r["case"]: r["memory_ratio"] for r in rows}}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m pinnk.benchmarks.ntk", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=256, help="points per term (default 256)")
    ap.add_argument("--width", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    add_threads_option(ap)
    ap.add_argument("--json", action="store_true", help="print JSON instead of a table")
    ap.add_argument("--peak-child", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.peak_child:
        case, n, width, impl = a.peak_child.split(",")
        print(peak_memory(case, int(n), int(width), "cpu-child", impl))
        return 0
    if a.n < 1 or a.width < 1 or a.repeats < 1:
        print("error: --n, --width and --repeats must be positive", file=sys.stderr)
        return 2
    if not apply_threads(a.threads):
        return 2
    res = run(a.n, a.width, a.repeats, a.device)
    if a.json:
        print(json.dumps(res, indent=2))
        return 0
    print(f"MLP 2-{a.width}-{a.width}-{a.width}-1 tanh float64, n={a.n} per term, "
          f"device={a.device}, torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"{'terms':18s} {'jacobian':>10s} {'structured':>11s} {'time x':>8s} "
          f"{'mem jac':>10s} {'mem str':>10s} {'mem x':>7s} {'rel diff':>9s}")
    for r in res:
        print(f"{r['case']:18s} {r['jacobian_s']:9.3f}s {r['structured_s']:10.4f}s "
              f"{r['time_ratio']:7.1f}x {r['jacobian_peak_bytes'] / 2**20:8.1f}Mi "
              f"{r['structured_peak_bytes'] / 2**20:8.1f}Mi {r['memory_ratio']:6.1f}x "
              f"{r['rel_diff']:9.1e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
