"""Benchmark: the product rates of the BLAS libraries behind the structured kernel, one thread.

    python -m pinnk.benchmarks.blas [--shapes 256x64,768x64,256x200] [--repeats 20]
                                    [--dtype float64] [--json]

The structured path's time is mostly products a bᵀ of stream factors, (n, k) each: n points of a
term, k the width of a layer (design.md §3). It forms the general ones with ``torch.mm``
(torch's BLAS: MKL in the PyPI CPU wheels) and the symmetric ones a aᵀ with ``?syrk`` from
SciPy's BLAS (OpenBLAS in SciPy's wheels), both on one thread. For each shape n × k this times,
with both libraries held to one thread,

- ``torch mm``: ``torch.mm(a, b.T)`` into a kept (n, n) buffer;
- ``scipy gemm``: SciPy's ``?gemm`` for the same product, into a kept buffer;
- ``scipy syrk``: SciPy's ``?syrk`` for a aᵀ (one triangle, half the multiply-adds), called
  as the structured path calls it (``syrk_lower``),

and reports the fastest of ``--repeats`` calls and its rate in G multiply-adds per second
(n²k for a product, n²k/2 for syrk). It names the libraries, and for OpenBLAS the kernel family
it chose at load (threadpoolctl's ``architecture``): OpenBLAS picks it from the CPU's family
and reads the environment variable ``OPENBLAS_CORETYPE`` (e.g. ``SkylakeX``, its AVX-512
kernels) once, when it is loaded, to override the choice. Both libraries were measured
at the same rate on one thread on a machine where both chose AVX2 kernels; a CPU with AVX-512
that OpenBLAS does not recognise is the case to run this for (docs/results/benchmarks.md).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time

import torch

from .._structured import syrk_lower

DTYPES = {"float64": torch.float64, "float32": torch.float32}


def parse_shapes(text: str) -> list[tuple[int, int]]:
    """``"256x64,768x64"`` → [(256, 64), (768, 64)]; ValueError naming ``--shapes`` otherwise."""
    shapes = []
    for item in text.split(","):
        m = re.fullmatch(r"\s*(\d+)\s*x\s*(\d+)\s*", item)
        if m is None or int(m.group(1)) < 1 or int(m.group(2)) < 1:
            raise ValueError(f"--shapes: expected positive n x k pairs such as 256x64,768x64, "
                             f"got {text!r}")
        shapes.append((int(m.group(1)), int(m.group(2))))
    return shapes


def libraries() -> list[dict]:
    """The BLAS libraries in this process: torch's (from its build configuration) and those
    threadpoolctl finds loaded (SciPy's and NumPy's OpenBLAS), with OpenBLAS's kernel family."""
    m = re.search(r"BLAS_INFO=(\w+)", torch.__config__.show())
    out = [{"user": "torch", "library": m.group(1) if m else "unknown", "version": None,
            "architecture": None}]
    from scipy.linalg import blas  # noqa: F401  (loads SciPy's BLAS, so that it is listed)
    from threadpoolctl import threadpool_info
    for info in threadpool_info():
        if info.get("user_api") == "blas":
            out.append({"user": info.get("filepath", "").split("/")[-1],
                        "library": info.get("internal_api"), "version": info.get("version"),
                        "architecture": info.get("architecture")})
    return out


def _fastest(fn, repeats: int) -> float:
    fn()  # warm-up: first-touch of the output, the library's own set-up
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def _routines(a: torch.Tensor, b: torch.Tensor, out: torch.Tensor, gemm) -> dict:
    """name → (call, multiply-adds): each call writes a bᵀ into ``out`` (n, n) — syrk a aᵀ,
    its lower triangle only, by the structured path's own :func:`syrk_lower`. ``a``, ``b``
    (n, k) and ``out`` C-contiguous CPU tensors; torch on one thread (else syrk_lower declines
    and the call does nothing)."""
    n, k = a.shape
    # C-order (n, k) is F-order (k, n): aᵀ in F-order; the F-order (n, n) result c = b aᵀ is
    # the C-order a bᵀ
    at, bt, c = a.numpy().T, b.numpy().T, out.numpy().T
    return {
        "torch mm": (lambda: torch.mm(a, b.T, out=out), n * n * k),
        "scipy gemm": (lambda: gemm(1.0, bt, at, trans_a=1, c=c, overwrite_c=1), n * n * k),
        "scipy syrk": (lambda: syrk_lower(a, out), n * n * k // 2),
    }


def rates(shapes, repeats: int = 20, dtype: torch.dtype = torch.float64, seed: int = 0) -> list:
    """Time the three products for each (n, k) of ``shapes`` on one thread (torch's thread count
    is restored afterwards); one dict per shape and routine with ``seconds`` (the fastest call)
    and ``gmacs`` (G multiply-adds per second)."""
    from scipy.linalg import blas
    from threadpoolctl import threadpool_limits

    gemm = blas.dgemm if dtype == torch.float64 else blas.sgemm
    g = torch.Generator().manual_seed(seed)
    threads = torch.get_num_threads()
    rows = []
    try:
        torch.set_num_threads(1)
        with threadpool_limits(limits=1, user_api="blas"):
            for n, k in shapes:
                a = torch.randn(n, k, generator=g, dtype=dtype)
                b = torch.randn(n, k, generator=g, dtype=dtype)
                out = torch.empty(n, n, dtype=dtype)
                routines = _routines(a, b, out, gemm)
                for name, (fn, macs) in routines.items():
                    t = _fastest(fn, repeats)
                    rows.append({"routine": name, "n": n, "k": k, "seconds": t,
                                 "gmacs": macs / t / 1e9})
    finally:
        torch.set_num_threads(threads)
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m pinnk.benchmarks.blas", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shapes", default="256x64,768x64,256x200",
                    help="factor shapes n x k, comma-separated (default 256x64,768x64,256x200)")
    ap.add_argument("--repeats", type=int, default=20, help="timed calls per routine")
    ap.add_argument("--dtype", default="float64", help="float64 (default) or float32")
    ap.add_argument("--json", action="store_true", help="print JSON instead of a table")
    a = ap.parse_args(argv)
    try:
        shapes = parse_shapes(a.shapes)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if a.repeats < 1:
        print(f"error: --repeats must be positive, got {a.repeats}", file=sys.stderr)
        return 2
    if a.dtype not in DTYPES:
        print(f"error: --dtype: expected float64 or float32, got {a.dtype!r}", file=sys.stderr)
        return 2
    libs = libraries()
    rows = rates(shapes, a.repeats, DTYPES[a.dtype])
    if a.json:
        print(json.dumps({"libraries": libs, "dtype": a.dtype, "rates": rows}, indent=2))
        return 0
    for lib in libs:
        extra = f", kernels {lib['architecture']}" if lib["architecture"] else ""
        version = f" {lib['version']}" if lib["version"] else ""
        print(f"{lib['user']}: {lib['library']}{version}{extra}")
    print(f"{a.dtype}, one thread, fastest of {a.repeats} calls")
    print(f"{'routine':12s} {'n x k':>10s} {'time':>10s} {'GMAC/s':>8s}")
    for r in rows:
        print(f"{r['routine']:12s} {str(r['n']) + 'x' + str(r['k']):>10s} "
              f"{r['seconds'] * 1e6:8.1f}us {r['gmacs']:8.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
