"""Benchmark: the structured NTK path against the generic Jacobian path.

    python -m pinnk.benchmarks.ntk [--n 256] [--width 200] [--euler-widths 64,200]
                                   [--cases a,b,c,euler] [--repeats 3] [--device cpu]

Cases, n points per term, float64:

- ``a``: [f, ∂_h f] on an MLP 2 → width³ → 1 (tanh);
- ``b``: [f, Δf] on the same network;
- ``c``: [f, ∂_h⁴ f] on the same network (Taylor-mode streams of order 4);
- ``euler``: the three residuals of the 1D Euler equations (mass, momentum, energy; nonlinear
  in the outputs ρ, u, p, linearised at the network by the structured path) at the same n
  points, on an MLP 2 → w⁶ → 3 (tanh) with the ``Positive`` transform on ρ and p, for each
  width w of ``--euler-widths``.

For each case it times the full kernel matrix Θ with ``implementation="jacobian"`` and
``"structured"``, alternating the two in one run (the machine is shared and noisy: only the ratio
measured side by side means anything), and reports the median times, their ratio, the peak memory
of each (the resident-set high-water mark on CPU, ``max_memory_allocated`` on CUDA), the
largest relative difference between the two matrices and the median minor page faults of one
timed call of each (fresh pages from the operating system: on a virtual machine about 2 µs
each).
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

from . import add_threads_option, apply_threads, minor_faults

GAMMA = 1.4


def euler_residuals_1d(gamma: float = GAMMA) -> dict:
    """The conservative 1D Euler residuals in primitive variables (ρ, u, p) of inputs (x, t) —
    the same operators as ``problems.euler_residuals_1d`` (pinnk does not import the zoo):
    mass ρ_t + ρ_x u + ρ u_x, momentum ρ_t u + ρ u_t + ρ_x u² + 2ρ u u_x + p_x, energy
    E_t + u_x (E + p) + u (E_x + p_x) with E = p/(γ−1) + ρu²/2."""
    k = 1.0 / (gamma - 1.0)
    rho, u, p = ops.value(0), ops.value(1), ops.value(2)
    dx = [ops.partial([1, 0], c) for c in range(3)]
    dt = [ops.partial([0, 1], c) for c in range(3)]

    def energy(x, rho, u, p, rho_x, u_x, p_x, rho_t, u_t, p_t):
        e = k * p + 0.5 * rho * u * u
        e_t = k * p_t + 0.5 * rho_t * u * u + rho * u * u_t
        e_x = k * p_x + 0.5 * rho_x * u * u + rho * u * u_x
        return e_t + u_x * (e + p) + u * (e_x + p_x)

    return {
        "mass": ops.residual(lambda x, rho, u, rho_x, u_x, rho_t: rho_t + rho_x * u + rho * u_x,
                             rho=rho, u=u, rho_x=dx[0], u_x=dx[1], rho_t=dt[0]),
        "momentum": ops.residual(
            lambda x, rho, u, rho_x, u_x, p_x, rho_t, u_t:
            rho_t * u + rho * u_t + rho_x * u * u + 2.0 * rho * u * u_x + p_x,
            rho=rho, u=u, rho_x=dx[0], u_x=dx[1], p_x=dx[2], rho_t=dt[0], u_t=dt[1]),
        "energy": ops.residual(energy, rho=rho, u=u, p=p, rho_x=dx[0], u_x=dx[1], p_x=dx[2],
                               rho_t=dt[0], u_t=dt[1], p_t=dt[2]),
    }


NAMES = {"a": "[f, d_h f]", "b": "[f, laplacian f]", "c": "[f, d_h^4 f]"}


def case_name(case: str) -> str:
    if case.startswith("euler"):
        return f"euler 1d 6x{case.split('-')[1]} Positive"
    return NAMES[case]


def _setup(case: str, n: int, width: int, device: str, seed: int = 0):
    """``case`` is a, b, c, or euler-W (W the width)."""
    g = torch.Generator().manual_seed(seed)
    x = (torch.rand(n, 2, generator=g, dtype=torch.float64) * 2 - 1)
    if case.startswith("euler"):
        w = int(case.split("-")[1])
        model = pinnk.MLP(2, 3, w, 6, "tanh", output_transform=pinnk.Positive([0, 2]),
                          generator=g, dtype=torch.float64).to(device)
        x = x.to(device)
        return model, [pinnk.Term(nm, op, x) for nm, op in euler_residuals_1d().items()]
    model = pinnk.MLP(2, 1, [width] * 3, activation="tanh", parametrization="ntk", generator=g,
                      dtype=torch.float64).to(device)
    x = x.to(device)
    h = torch.tensor([0.8, -0.6], dtype=torch.float64)
    second = {"a": ops.directional(h), "b": ops.laplacian(), "c": ops.directional(h, 4)}[case]
    return model, [pinnk.Term("f", ops.value(), x), pinnk.Term("Df", second, x)]


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _time_once(case, n, width, device, impl):
    """(seconds, minor page faults, Θ) of one kernel on fresh models and points."""
    model, terms = _setup(case, n, width, device)
    _sync(device)
    f0 = minor_faults()
    t0 = time.perf_counter()
    M = pinnk.ntk(model, terms, impl).matrix()
    _sync(device)
    return time.perf_counter() - t0, minor_faults() - f0, M


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
        cases=("a", "b", "c", "euler"), memory: bool = True,
        euler_widths=(64, 200)) -> list[dict]:
    """Measure the cases; returns one dict per case (and per Euler width) with times, ratios,
    memory and error.

    ``memory=False`` skips the peak-memory measurement (its child processes take seconds); the
    memory entries are then None."""
    expanded = []
    for case in cases:
        if case == "euler":
            expanded += [f"euler-{w}" for w in euler_widths]
        elif case in NAMES:
            expanded.append(case)
        else:
            raise ValueError(f"cases: unknown case {case!r}; expected a, b, c or euler")
    results = []
    for case in expanded:
        _time_once(case, min(n, 8), width, device, "jacobian")  # warm-up (imports, kernels)
        _time_once(case, min(n, 8), width, device, "structured")
        tj, ts, fj, fs = [], [], [], []
        Mj = Ms = None
        for _ in range(repeats):
            t, f, Mj = _time_once(case, n, width, device, "jacobian")
            tj.append(t)
            fj.append(f)
            t, f, Ms = _time_once(case, n, width, device, "structured")
            ts.append(t)
            fs.append(f)
        err = float((Mj - Ms).norm() / Mj.norm())
        mj = peak_memory(case, n, width, device, "jacobian") if memory else None
        ms = peak_memory(case, n, width, device, "structured") if memory else None
        results.append({
            "case": case_name(case), "n_per_term": n,
            "width": int(case.split("-")[1]) if case.startswith("euler") else width,
            "device": device,
            "jacobian_s": statistics.median(tj), "structured_s": statistics.median(ts),
            "time_ratio": statistics.median(tj) / statistics.median(ts),
            "jacobian_peak_bytes": mj, "structured_peak_bytes": ms,
            "memory_ratio": mj / max(ms, 1) if memory else None, "rel_diff": err,
            "jacobian_faults": statistics.median(fj), "structured_faults": statistics.median(fs),
        })
    return results


def measure(n: int = 256, width: int = 200, repeats: int = 3, device: str = "cpu",
            memory: bool = True, euler_widths=(64, 200)) -> dict:
    """The ratios of :func:`run`, for callers (``pinnk bench perf``).

    Returns ``{"cases": run(...), "time_ratio": {case: jacobian/structured time},
    "memory_ratio": {case: jacobian/structured peak memory, or None without memory}}``.
    """
    rows = run(n, width, repeats, device, memory=memory, euler_widths=euler_widths)
    return {"cases": rows, "time_ratio": {r["case"]: r["time_ratio"] for r in rows},
            "memory_ratio": {r["case"]: r["memory_ratio"] for r in rows}}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m pinnk.benchmarks.ntk", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=256, help="points per term (default 256)")
    ap.add_argument("--width", type=int, default=200, help="width of cases a, b, c")
    ap.add_argument("--euler-widths", default="64,200",
                    help="widths of the Euler case, comma-separated (default 64,200)")
    ap.add_argument("--cases", default="a,b,c,euler",
                    help="cases to run, comma-separated from a, b, c, euler (default all)")
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
    try:
        widths = [int(w) for w in a.euler_widths.split(",")]
    except ValueError:
        widths = []
    if not widths or min(widths) < 1:
        print(f"error: --euler-widths: expected positive integers separated by commas, got "
              f"{a.euler_widths!r}", file=sys.stderr)
        return 2
    cases = [c for c in a.cases.split(",") if c]
    bad = [c for c in cases if c not in ("a", "b", "c", "euler")]
    if bad or not cases:
        print(f"error: --cases: unknown case(s) {bad}; expected a, b, c, euler", file=sys.stderr)
        return 2
    if not apply_threads(a.threads):
        return 2
    res = run(a.n, a.width, a.repeats, a.device, cases=cases, euler_widths=widths)
    if a.json:
        print(json.dumps(res, indent=2))
        return 0
    print(f"cases a-c: MLP 2-{a.width}-{a.width}-{a.width}-1 tanh; float64, n={a.n} per term, "
          f"device={a.device}, torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"{'terms':27s} {'jacobian':>10s} {'structured':>11s} {'time x':>8s} "
          f"{'mem jac':>10s} {'mem str':>10s} {'mem x':>7s} {'rel diff':>9s} "
          f"{'faults jac':>11s} {'faults str':>11s}")
    for r in res:
        print(f"{r['case']:27s} {r['jacobian_s']:9.3f}s {r['structured_s']:10.4f}s "
              f"{r['time_ratio']:7.1f}x {r['jacobian_peak_bytes'] / 2**20:8.1f}Mi "
              f"{r['structured_peak_bytes'] / 2**20:8.1f}Mi {r['memory_ratio']:6.1f}x "
              f"{r['rel_diff']:9.1e} {r['jacobian_faults']:11.0f} "
              f"{r['structured_faults']:11.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
