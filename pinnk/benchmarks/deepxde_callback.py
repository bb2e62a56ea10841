"""Benchmark: the cost of the ``pinnk.interop.deepxde.TraceWeights`` callback in DeepXDE training.

    python -m pinnk.benchmarks.deepxde_callback [--problems all] [--iterations 1000]
        [--configs 100:all,100:128,250:128,500:128] [--repeats 3] [--threads N] [--json]

Problems: DeepXDE's own example problems (PyTorch backend, DeepXDE's default float32, the
examples' networks, points and Adam learning rate), written out here in short:

- ``poisson_dirichlet_1d``: −u'' = π² sin(πx) on [−1, 1], DirichletBC; 16 + 2 points, 3 × 50 tanh.
- ``poisson_neumann_1d``: u'' = 2, DirichletBC left, NeumannBC right; 16 + 2 points, 3 × 50.
- ``poisson_robin_1d``: u'' = 2, DirichletBC left, RobinBC u' = u right; 16 + 2 points, 3 × 50.
- ``euler_beam``: u'''' = −1 on [0, 1], Dirichlet and Neumann left, two OperatorBC right (u'' and
  u''' vanish); 10 + 2 points, 3 × 20.
- ``diffusion_1d``: u_t = u_xx − e^{−t}(sin πx − π² sin πx) on [−1, 1] × [0, 1], DirichletBC and IC
  on a ``GeometryXTime``; 40 + 20 + 10 points, 3 × 32.
- ``burgers``: u_t + u u_x = (0.01/π) u_xx on [−1, 1] × [0, 0.99], DirichletBC and IC;
  2540 + 80 + 160 points, 3 × 20.
- ``lotka_volterra``: the two-species ODE system on [0, 1] (two residual terms, no conditions),
  3000 + 2 points, 6 × 64 on the features t, sin t, ..., sin 6t, with an output transform for
  the initial values.
- ``helmholtz_hard``: −Δu − k²u = f on [0, 1]², the Dirichlet condition imposed by an output
  transform (one loss term: the callback warns and makes no updates); 400 + 80 points,
  3 × 150 sin.

For every problem and repeat it trains the same model from the same initialisation for
``--iterations`` Adam iterations without the callback and then with the callback in each
configuration ``every:max_points`` (``all`` = every point), alternating, and reports the median
over repeats of

- the time per iteration without the callback;
- the callback's own time (its ``on_train_begin`` and ``on_epoch_end``, timed inside the run) as a
  share of the rest of that run's training time — the overhead, measured in one run (it includes
  the update at the start of training, a large part of a short run's updates);
- the steady-state overhead, the seconds per update over ``every`` plain iterations; and
- the side-by-side ratio of the two runs' wall times minus one (noisier on a shared machine).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import warnings

os.environ.setdefault("DDE_BACKEND", "pytorch")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from . import add_threads_option, apply_threads  # noqa: E402


def _dde():
    import deepxde as dde

    return dde


# ------------------------------------------------------------------------------- problems
def poisson_dirichlet_1d():
    dde = _dde()
    geom = dde.geometry.Interval(-1, 1)

    def pde(x, y):
        return -dde.grad.hessian(y, x) - np.pi ** 2 * torch.sin(np.pi * x)

    bc = dde.icbc.DirichletBC(geom, lambda x: np.sin(np.pi * x), lambda _, on: on)
    data = dde.data.PDE(geom, pde, bc, 16, 2)
    return data, dde.nn.FNN([1, 50, 50, 50, 1], "tanh", "Glorot uniform")


def _poisson_1d(condition):
    dde = _dde()
    geom = dde.geometry.Interval(-1, 1)

    def pde(x, y):
        return dde.grad.hessian(y, x) - 2

    left = dde.icbc.DirichletBC(geom, lambda x: (x + 1) ** 2,
                                lambda x, on: on and dde.utils.isclose(x[0], -1))
    right = condition(geom, lambda x, on: on and dde.utils.isclose(x[0], 1))
    data = dde.data.PDE(geom, pde, [left, right], 16, 2)
    return data, dde.nn.FNN([1, 50, 50, 50, 1], "tanh", "Glorot uniform")


def poisson_neumann_1d():
    dde = _dde()
    return _poisson_1d(lambda g, on: dde.icbc.NeumannBC(g, lambda x: 2 * (x + 1), on))


def poisson_robin_1d():
    dde = _dde()
    return _poisson_1d(lambda g, on: dde.icbc.RobinBC(g, lambda x, y: y, on))


def euler_beam():
    dde = _dde()
    geom = dde.geometry.Interval(0, 1)

    def d2(x, y):
        return dde.grad.hessian(y, x)

    def pde(x, y):
        return dde.grad.hessian(d2(x, y), x) + 1

    left = lambda x, on: on and dde.utils.isclose(x[0], 0)  # noqa: E731
    right = lambda x, on: on and dde.utils.isclose(x[0], 1)  # noqa: E731
    bcs = [dde.icbc.DirichletBC(geom, lambda x: 0, left),
           dde.icbc.NeumannBC(geom, lambda x: 0, left),
           dde.icbc.OperatorBC(geom, lambda x, y, _: d2(x, y), right),
           dde.icbc.OperatorBC(geom, lambda x, y, _: dde.grad.jacobian(d2(x, y), x), right)]
    data = dde.data.PDE(geom, pde, bcs, num_domain=10, num_boundary=2)
    return data, dde.nn.FNN([1, 20, 20, 20, 1], "tanh", "Glorot uniform")


def _x_time(a: float, b: float, t1: float):
    """[a, b] × [0, t1] as a DeepXDE GeometryXTime."""
    dde = _dde()
    return dde.geometry.GeometryXTime(dde.geometry.Interval(a, b), dde.geometry.TimeDomain(0, t1))


def diffusion_1d():
    dde = _dde()
    geomtime = _x_time(-1, 1, 1)

    def pde(x, y):
        s = torch.sin(np.pi * x[:, 0:1])
        return (dde.grad.jacobian(y, x, j=1) - dde.grad.hessian(y, x, j=0)
                + torch.exp(-x[:, 1:]) * (s - np.pi ** 2 * s))

    def exact(x):
        return np.sin(np.pi * x[:, 0:1]) * np.exp(-x[:, 1:])

    bcs = [dde.icbc.DirichletBC(geomtime, exact, lambda _, on: on),
           dde.icbc.IC(geomtime, exact, lambda _, on: on)]
    data = dde.data.TimePDE(geomtime, pde, bcs, num_domain=40, num_boundary=20, num_initial=10)
    return data, dde.nn.FNN([2, 32, 32, 32, 1], "tanh", "Glorot uniform")


def burgers():
    dde = _dde()
    geomtime = _x_time(-1, 1, 0.99)

    def pde(x, y):
        return (dde.grad.jacobian(y, x, i=0, j=1) + y * dde.grad.jacobian(y, x, i=0, j=0)
                - 0.01 / np.pi * dde.grad.hessian(y, x, i=0, j=0))

    bcs = [dde.icbc.DirichletBC(geomtime, lambda x: 0, lambda _, on: on),
           dde.icbc.IC(geomtime, lambda x: -np.sin(np.pi * x[:, 0:1]), lambda _, on: on)]
    data = dde.data.TimePDE(geomtime, pde, bcs, num_domain=2540, num_boundary=80,
                            num_initial=160)
    return data, dde.nn.FNN([2, 20, 20, 20, 1], "tanh", "Glorot normal")


def lotka_volterra():
    dde = _dde()
    ub, rb = 200.0, 20.0

    def pde(x, y):
        r, p = y[:, 0:1], y[:, 1:2]
        return [dde.grad.jacobian(y, x, i=0) - rb / ub * (2.0 * ub * r - 0.04 * ub * r * ub * p),
                dde.grad.jacobian(y, x, i=1) - rb / ub * (0.02 * r * ub * p * ub - 1.06 * p * ub)]

    data = dde.data.PDE(dde.geometry.TimeDomain(0, 1.0), pde, [], 3000, 2)
    # the example's [1] + [64] * 6 + [2] takes the 7 features as input on the PyTorch backend
    net = dde.nn.FNN([7] + [64] * 6 + [2], "tanh", "Glorot normal")
    net.apply_feature_transform(
        lambda t: torch.cat([t] + [torch.sin(k * t) for k in range(1, 7)], dim=1))
    net.apply_output_transform(lambda t, y: torch.cat(
        [y[:, 0:1] * torch.tanh(t) + 100 / ub, y[:, 1:2] * torch.tanh(t) + 15 / ub], dim=1))
    return data, net


def helmholtz_hard():
    dde = _dde()
    k0 = 4 * np.pi

    def pde(x, y):
        f = k0 ** 2 * torch.sin(k0 * x[:, 0:1]) * torch.sin(k0 * x[:, 1:2])
        return (-dde.grad.hessian(y, x, i=0, j=0) - dde.grad.hessian(y, x, i=1, j=1)
                - k0 ** 2 * y - f)

    data = dde.data.PDE(dde.geometry.Rectangle([0, 0], [1, 1]), pde, [], num_domain=400,
                        num_boundary=80)
    net = dde.nn.FNN([2, 150, 150, 150, 1], "sin", "Glorot uniform")
    net.apply_output_transform(
        lambda x, y: x[:, 0:1] * (1 - x[:, 0:1]) * x[:, 1:2] * (1 - x[:, 1:2]) * y)
    return data, net


PROBLEMS = {f.__name__: f for f in (poisson_dirichlet_1d, poisson_neumann_1d, poisson_robin_1d,
                                    euler_beam, diffusion_1d, burgers, lotka_volterra,
                                    helmholtz_hard)}


# -------------------------------------------------------------------------------- timing
def _build(problem: str, seed: int):
    dde = _dde()
    np.random.seed(seed)
    torch.manual_seed(seed)
    data, net = PROBLEMS[problem]()
    model = dde.Model(data, net)
    model.compile("adam", lr=1e-3, verbose=0)
    return model


def _timed_callback(every: int, max_points: int | None):
    from pinnk.interop import deepxde as pdx

    class Timed(pdx.TraceWeights):
        seconds = 0.0

        def on_train_begin(self):
            t0 = time.perf_counter()
            super().on_train_begin()
            self.seconds += time.perf_counter() - t0

        def on_epoch_end(self):
            t0 = time.perf_counter()
            super().on_epoch_end()
            self.seconds += time.perf_counter() - t0

    return Timed(every=every, max_points=max_points, generator=0)


def _train(problem: str, iterations: int, config, seed: int) -> tuple[float, float, int]:
    """(wall seconds of model.train, seconds inside the callback, number of updates)."""
    model = _build(problem, seed)
    cb = None if config is None else _timed_callback(*config)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the single-term warning, once per run
        model.train(iterations=iterations, callbacks=[cb] if cb else None, display_every=10**9,
                    verbose=0)
    wall = time.perf_counter() - t0
    return wall, (cb.seconds if cb else 0.0), (len(cb.history) if cb else 0)


def _parse_configs(text: str) -> list[tuple[int, int | None]]:
    out = []
    for item in text.split(","):
        every, _, mp = item.partition(":")
        every_i = int(every)
        mp_i = None if mp in ("all", "") else int(mp)
        if every_i < 1 or (mp_i is not None and mp_i < 1):
            raise ValueError(item)
        out.append((every_i, mp_i))
    return out


def _label(config) -> str:
    every, mp = config
    return f"every={every}, max_points={'all' if mp is None else mp}"


def run(problems, iterations: int = 1000,
        configs=((100, None), (100, 128), (250, 128), (500, 128)),
        repeats: int = 3, seed: int = 0) -> list[dict]:
    """One dict per problem: sizes, the plain time per iteration and, per configuration, the
    medians of the callback's share, the side-by-side overhead and the seconds per update."""
    rows = []
    for problem in problems:
        model = _build(problem, seed)
        n_points = int(len(model.data.train_x))
        n_params = sum(p.numel() for p in model.net.parameters())
        _train(problem, 5, configs[0], seed)  # warm-up: imports, first-call caches
        plain, res = [], {c: {"share": [], "side": [], "per_update": [], "updates": 0}
                          for c in configs}
        for _ in range(repeats):
            wall0, _, _ = _train(problem, iterations, None, seed)
            plain.append(wall0)
            for c in configs:
                wall, inside, updates = _train(problem, iterations, c, seed)
                r = res[c]
                r["share"].append(inside / max(wall - inside, 1e-12))
                r["side"].append(wall / wall0 - 1.0)
                r["per_update"].append(inside / max(updates, 1))
                r["updates"] = updates
        rows.append({
            "problem": problem, "points": n_points, "parameters": n_params,
            "iterations": iterations, "repeats": repeats,
            "ms_per_iteration": 1e3 * statistics.median(plain) / iterations,
            "configs": [{"every": c[0], "max_points": c[1], "updates": res[c]["updates"],
                         "overhead": statistics.median(res[c]["share"]),
                         "side_by_side": statistics.median(res[c]["side"]),
                         "s_per_update": statistics.median(res[c]["per_update"]),
                         "steady_state": 0.0 if res[c]["updates"] == 0 else
                         statistics.median(res[c]["per_update"])
                         / (c[0] * statistics.median(plain) / iterations)}
                        for c in configs],
        })
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m pinnk.benchmarks.deepxde_callback",
                                 description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--problems", default="all",
                    help=f"comma-separated, or all: {', '.join(PROBLEMS)}")
    ap.add_argument("--iterations", type=int, default=1000)
    ap.add_argument("--configs", default="100:all,100:128,250:128,500:128",
                    help="comma-separated every:max_points (max_points an int or all)")
    ap.add_argument("--repeats", type=int, default=3)
    add_threads_option(ap)
    ap.add_argument("--json", action="store_true", help="print JSON instead of a table")
    a = ap.parse_args(argv)
    problems = list(PROBLEMS) if a.problems == "all" else a.problems.split(",")
    unknown = [p for p in problems if p not in PROBLEMS]
    if unknown:
        print(f"error: --problems: unknown {unknown}; expected {list(PROBLEMS)} or all",
              file=sys.stderr)
        return 2
    try:
        configs = _parse_configs(a.configs)
    except ValueError:
        print("error: --configs: expected every:max_points items such as 100:128 or 100:all",
              file=sys.stderr)
        return 2
    if a.iterations < 1 or a.repeats < 1:
        print("error: --iterations and --repeats must be positive", file=sys.stderr)
        return 2
    if not apply_threads(a.threads):
        return 2
    rows = run(problems, a.iterations, configs, a.repeats)
    if a.json:
        print(json.dumps(rows, indent=2))
        return 0
    dde = _dde()
    print(f"DeepXDE {dde.__version__}, torch {torch.__version__}, {torch.get_num_threads()} "
          f"threads, {a.iterations} Adam iterations, median of {a.repeats}")
    print(f"{'problem':22s} {'points':>6s} {'params':>7s} {'ms/it':>6s}  "
          + "  ".join(f"{_label(c):>30s}" for c in configs))
    for r in rows:
        cells = [f"{100 * c['overhead']:5.1f}% {100 * c['steady_state']:5.1f}% "
                 f"({100 * c['side_by_side']:+6.1f}%) {c['s_per_update']:6.3f}s"
                 for c in r["configs"]]
        print(f"{r['problem']:22s} {r['points']:6d} {r['parameters']:7d} "
              f"{r['ms_per_iteration']:6.2f}  " + "  ".join(f"{s:>30s}" for s in cells))
    print("cells: the callback's own time as a share of the rest of the run, the steady-state "
          "share (seconds per update / every iterations), (the side-by-side wall ratio − 1) and "
          "seconds per update")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
