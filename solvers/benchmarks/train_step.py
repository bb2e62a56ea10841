"""Benchmark: one training step of pinnk against DeepXDE's PyTorch backend, side by side.

    python -m solvers.benchmarks.train_step [--points 4096] [--steps 200] [--repeats 3]

Both train ``burgers-1d`` (u_t + u u_x = (0.01/π) u_xx on [−1, 1] × [0, 1], u₀ = −sin πx,
u(±1, t) = 0) with the same network (4 hidden layers of 64 tanh units, Glorot-normal weights),
the same points (``--points`` residual points, 256 initial and 256 boundary points, sampled once
and given to both), Adam at lr 1e-3, unit loss weights, float32, on one device. Each repeat runs
``--steps`` steps of DeepXDE then of pinnk (alternating, after a warm-up) and the median seconds
per step and their ratios are printed, for pinnk eager and with ``compile=True`` (the network's
Taylor-stream pass compiled by ``torch.compile``; compile time excluded, it is paid once).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import statistics
import sys
import time

import numpy as np
import torch

from pinnk.benchmarks import add_threads_option, apply_threads


def _pinnk_setup(points, device, compile=False):
    import problems
    import solvers

    prob = problems.get("burgers-1d")
    tr = solvers.Trainer(prob, steps=10**9, points={"residual": points, "initial": 256,
                                                   "boundary": 256},
                         model_options={"width": 64, "depth": 4}, weighting="fixed",
                         optimizer=solvers.Adam(lr=1e-3), device=device, ntk_every=0,
                         export=False, seed=0, compile=compile)
    return tr


def _pinnk_steps(tr, n, device):
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(n):
        tr._train_step()
        tr.step += 1
    _sync(device)
    return (time.perf_counter() - t0) / n


def _deepxde_setup(tr, device):
    os.environ.setdefault("DDE_BACKEND", "pytorch")
    import deepxde as dde

    if dde.backend.backend_name != "pytorch":
        raise RuntimeError("DeepXDE must use its PyTorch backend (DDE_BACKEND=pytorch)")
    torch.set_default_device(device)
    nu = 0.01 / math.pi
    geom = dde.geometry.Interval(-1, 1)
    timedomain = dde.geometry.TimeDomain(0, 1)
    geomtime = dde.geometry.GeometryXTime(geom, timedomain)

    def pde(x, y):
        dy_x = dde.grad.jacobian(y, x, i=0, j=0)
        dy_t = dde.grad.jacobian(y, x, i=0, j=1)
        dy_xx = dde.grad.hessian(y, x, i=0, j=0)
        return dy_t + y * dy_x - nu * dy_xx

    pts = {t.name: t.points.cpu().numpy().astype(np.float32) for t in tr.terms}
    # the same points as pinnk: residual points as anchors, boundary/initial as PointSetBC
    bc = dde.icbc.PointSetBC(pts["boundary"], np.zeros((len(pts["boundary"]), 1), np.float32))
    ic = dde.icbc.PointSetBC(pts["initial"],
                             -np.sin(np.pi * pts["initial"][:, :1]).astype(np.float32))
    data = dde.data.TimePDE(geomtime, pde, [bc, ic], num_domain=0, num_boundary=0,
                            num_initial=0, anchors=pts["residual"])
    net = dde.nn.FNN([2] + [64] * 4 + [1], "tanh", "Glorot normal")
    model = dde.Model(data, net)
    model.compile("adam", lr=1e-3)
    return model


def _deepxde_steps(model, n, device):
    _sync(device)
    t0 = time.perf_counter()
    model.train(iterations=n, display_every=10 * n, verbose=0)
    _sync(device)
    return (time.perf_counter() - t0) / n


def _sync(device):
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()


def run(points=4096, steps=200, repeats=3, device="cpu", compiled=True) -> dict:
    """Per-step seconds of DeepXDE, pinnk (eager) and pinnk (compiled Taylor streams).

    ``compiled=False`` skips the compiled variant (its compilation takes tens of seconds); its
    entries are then None."""
    torch.set_default_dtype(torch.float32)
    tr = _pinnk_setup(points, device)
    tc = _pinnk_setup(points, device, compile=True) if compiled else None
    with contextlib.redirect_stdout(sys.stderr):  # DeepXDE prints its progress to stdout
        dm = _deepxde_setup(tr, device)
        _deepxde_steps(dm, 10, device)
    _pinnk_steps(tr, 10, device)
    if tc is not None:
        _pinnk_steps(tc, 10, device)  # compiles
    td, tp, tcs = [], [], []
    for _ in range(repeats):
        with contextlib.redirect_stdout(sys.stderr):
            td.append(_deepxde_steps(dm, steps, device))
        tp.append(_pinnk_steps(tr, steps, device))
        if tc is not None:
            tcs.append(_pinnk_steps(tc, steps, device))
    d, p = statistics.median(td), statistics.median(tp)
    c = statistics.median(tcs) if tcs else None
    return {"problem": "burgers-1d", "network": "4x64 tanh", "points": points + 512,
            "device": str(device), "deepxde_s_per_step": d, "pinnk_s_per_step": p,
            "pinnk_compiled_s_per_step": c, "speedup": d / p,
            "speedup_compiled": d / c if c is not None else None,
            "torch": torch.__version__, "threads": torch.get_num_threads()}


def measure(points=4096, steps=200, repeats=3, device="cpu", compiled=True) -> dict:
    """The per-step times and speed-up ratios of :func:`run` (pinnk vs DeepXDE, measured side
    by side), for callers such as ``pinnk bench perf``."""
    return run(points, steps, repeats, device, compiled=compiled)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m solvers.benchmarks.train_step",
                                 description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--points", type=int, default=4096)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    add_threads_option(ap)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    if min(a.points, a.steps, a.repeats) < 1:
        print("error: --points, --steps and --repeats must be positive", file=sys.stderr)
        return 2
    if not apply_threads(a.threads):
        return 2
    r = run(a.points, a.steps, a.repeats, a.device)
    if a.json:
        print(json.dumps(r, indent=2))
    else:
        print(f"burgers-1d, 4x64 tanh, {r['points']} points, {r['device']}, torch {r['torch']}, "
              f"{r['threads']} threads")
        print(f"DeepXDE {r['deepxde_s_per_step'] * 1e3:8.2f} ms/step")
        print(f"pinnk   {r['pinnk_s_per_step'] * 1e3:8.2f} ms/step   "
              f"speed-up {r['speedup']:.2f}x (eager)")
        print(f"pinnk   {r['pinnk_compiled_s_per_step'] * 1e3:8.2f} ms/step   "
              f"speed-up {r['speedup_compiled']:.2f}x (compile=True)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
