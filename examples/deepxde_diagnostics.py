"""Tutorial: NTK diagnostics and trace-rule loss weights for a DeepXDE model.

A standard DeepXDE Poisson problem with the PyTorch backend,

    −Δu = 8π² sin(2πx) sin(2πy)  on  [0, 1]²,    exact solution u = sin(2πx) sin(2πy),

with a DirichletBC (u = 0) on the left, bottom and top sides and a NeumannBC
(∂u/∂n = 2π sin(2πy)) on the right side x = 1, an FNN with tanh and Glorot initialisation. This
script

1. builds the model the DeepXDE way (geometry, PDE function with ``dde.grad.hessian``, the two
   conditions, ``dde.data.PDE``, ``dde.nn.FNN``, ``dde.Model``) and lists the pinnk terms that
   :func:`pinnk.interop.deepxde.terms` makes of it, in DeepXDE's loss order;
2. looks at the empirical NTK at initialisation (:func:`pinnk.interop.deepxde.kernel`): the trace
   and mean diagonal of every block Θ_ii, the trace-rule weights (both forms), the spectrum of Θ*
   with unit and with trace weights, and the per-point angles between each condition's gradient
   and the PDE residual's gradient at the condition's points;
3. trains the same network (same points, same initialisation) twice with Adam — fixed loss
   weights [1, 1, 1], and the :class:`pinnk.interop.deepxde.TraceWeights` callback — and compares
   the relative L2 errors against the exact solution on a 101 × 101 grid.

``python examples/deepxde_diagnostics.py --quick`` takes about 15 s on one CPU core (a 2 × 32
network, 600 Adam iterations per run); without ``--quick`` it trains a 3 × 64 network on 1000 + 200
points for 10000 iterations per run (a few minutes per run on one CPU thread).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("DDE_BACKEND", "pytorch")  # before DeepXDE is first imported

import deepxde as dde  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from pinnk.diagnostics import summarize  # noqa: E402
from pinnk.interop import deepxde as pdx  # noqa: E402

K = 2.0 * np.pi  # the wave number of the exact solution in x and in y


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="about 15 s on one core")
    p.add_argument("--out", default="runs/tutorial-deepxde", help="output folder")
    p.add_argument("--device", default="auto",
                   help="auto (DeepXDE's choice: CUDA when available), cpu, cuda")
    return p.parse_args(argv)


def setup(quick: bool) -> dict:
    if quick:
        return {"num_domain": 200, "num_boundary": 64, "layers": [2, 32, 32, 1],
                "iterations": 600, "lr": 1e-3, "every": 100, "max_points": 64}
    return {"num_domain": 1000, "num_boundary": 200, "layers": [2, 64, 64, 64, 1],
            "iterations": 10000, "lr": 1e-3, "every": 500, "max_points": 128}


# ---------------------------------------------------------------------- the DeepXDE model
def exact(x: np.ndarray) -> np.ndarray:
    """u = sin(2πx) sin(2πy), shape (n, 1)."""
    return np.sin(K * x[:, 0:1]) * np.sin(K * x[:, 1:2])


def pde(x, y):
    """The residual −u_xx − u_yy − f, written as in any DeepXDE example."""
    u_xx = dde.grad.hessian(y, x, i=0, j=0)
    u_yy = dde.grad.hessian(y, x, i=1, j=1)
    f = 2 * K**2 * torch.sin(K * x[:, 0:1]) * torch.sin(K * x[:, 1:2])
    return -u_xx - u_yy - f


def on_dirichlet(x, on_boundary):
    return on_boundary and not np.isclose(x[0], 1.0)


def on_neumann(x, on_boundary):
    return on_boundary and np.isclose(x[0], 1.0)


def neumann_value(x):
    """∂u/∂n on x = 1 (outward normal (1, 0)): ∂u/∂x = 2π cos(2π) sin(2πy)."""
    return K * np.cos(K * x[:, 0:1]) * np.sin(K * x[:, 1:2])


def build_model(cfg: dict, seed: int = 0) -> dde.Model:
    """The model; equal seeds give equal collocation points and equal initial networks."""
    dde.config.set_random_seed(seed)
    geom = dde.geometry.Rectangle([0.0, 0.0], [1.0, 1.0])
    bcs = [dde.icbc.DirichletBC(geom, exact, on_dirichlet),
           dde.icbc.NeumannBC(geom, neumann_value, on_neumann)]
    data = dde.data.PDE(geom, pde, bcs, num_domain=cfg["num_domain"],
                        num_boundary=cfg["num_boundary"], solution=exact, num_test=256,
                        train_distribution="pseudo")
    net = dde.nn.FNN(cfg["layers"], "tanh", "Glorot normal")
    return dde.Model(data, net)


# -------------------------------------------------------------- step 1-2: terms and kernel
def diagnostics(model: dde.Model) -> dict:
    ts = pdx.terms(model)                       # [pde, bc0 (Dirichlet), bc1 (Neumann)]
    print("terms (DeepXDE's loss order):")
    for t in ts:
        kind = "PDE residual" if t.is_residual else "condition"
        print(f"  {t.name:>4}: {t.operator!r:<24} order {t.order}, {t.n:>4} points, {kind}")

    Kn = pdx.kernel(model)                      # lazy: blocks are built on demand
    names = Kn.names
    traces = {n: Kn.trace(n) for n in names}
    means = {n: traces[n] / t.n for n, t in zip(names, ts)}
    lam_mean = pdx.trace_weights(model, "mean")  # λ_i = Σ_j m_j / m_i, m_i = tr Θ_ii / n_i
    lam_sum = pdx.trace_weights(model, "sum")    # λ_i = Σ_j tr Θ_jj / tr Θ_ii
    print("kernel at initialisation")
    for n, lm, ls in zip(names, lam_mean, lam_sum):
        print(f"  {n:>4}: tr Θ_ii = {traces[n]:.3e}, tr Θ_ii / n_i = {means[n]:.3e}, "
              f"trace weight λ = {lm:.4g} (mean form), {ls:.4g} (sum form)")
    spectra = {}
    for label, weights in (("unit weights ", None), ("trace weights", lam_mean)):
        ev = Kn.eigvalsh(weights)               # real spectrum of Θ* = Θ Λ, ascending
        top = float(ev[-1])
        rank = int((ev > 1e-8 * top).sum())
        # the share of tr Θ* that each term's block carries
        w = [1.0] * len(names) if weights is None else weights
        total = sum(wi * traces[n] for wi, n in zip(w, names))
        share = ", ".join(f"{n} {wi * traces[n] / total:.1%}" for wi, n in zip(w, names))
        print(f"  Θ* with {label}: λ_max = {top:.3e}, {rank} of {ev.numel()} eigenvalues above "
              f"1e-8 λ_max; share of tr Θ*: {share}")
        spectra[label.strip()] = {"lambda_max": top, "rank_1e-8": rank}

    # per-point cos α between a condition's gradient and the PDE residual's gradient, both taken
    # at the condition's own training points
    by_name = {t.name: t for t in ts}
    angle_stats = {}
    print("angles between the conditions and the PDE residual, at the conditions' points")
    for bc in ("bc0", "bc1"):
        cos = pdx.angles(model, bc, "pde", by_name[bc].points)
        s = summarize(cos)
        angle_stats[f"{bc}|pde"] = s
        print(f"  cos α({bc}, pde): mean {s['mean']:+.2f}, p5 {s['p5']:+.2f}, "
              f"p50 {s['p50']:+.2f}, p95 {s['p95']:+.2f}")
    return {"terms": {t.name: {"operator": repr(t.operator), "order": t.order, "points": t.n}
                      for t in ts},
            "trace": traces, "mean_diagonal": means,
            "trace_weights_mean": dict(zip(names, lam_mean)),
            "trace_weights_sum": dict(zip(names, lam_sum)),
            "spectrum": spectra, "angles": angle_stats}


# ------------------------------------------------------------------------ step 3: training
def relative_l2(model: dde.Model) -> float:
    g = np.linspace(0.0, 1.0, 101)
    xy = np.stack(np.meshgrid(g, g, indexing="ij"), -1).reshape(-1, 2)
    u, ref = model.predict(xy), exact(xy)
    return float(np.linalg.norm(u - ref) / np.linalg.norm(ref))


def train(cfg: dict, callback: pdx.TraceWeights | None) -> dict:
    model = build_model(cfg, seed=0)
    model.compile("adam", lr=cfg["lr"], loss_weights=[1.0, 1.0, 1.0])
    t0 = time.perf_counter()
    losshistory, _ = model.train(iterations=cfg["iterations"],
                                 callbacks=[callback] if callback else None,
                                 display_every=cfg["iterations"], verbose=0)
    wall = time.perf_counter() - t0
    raw = [float(v) for v in losshistory.loss_train[-1]]  # DeepXDE's weighted loss vector
    weights = [float(w) for w in model.loss_weights]
    return {"relative_l2": relative_l2(model), "wall_time_s": wall,
            "final_weights": dict(zip(["pde", "bc0", "bc1"], weights)),
            "final_losses_weighted": dict(zip(["pde", "bc0", "bc1"], raw))}


def main(argv=None) -> int:
    args = parse_args(argv)
    cfg = setup(args.quick)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    dde.config.set_default_float("float64")  # kernels and angles in float64
    if args.device != "auto":  # DeepXDE builds its tensors on torch's default device
        torch.set_default_device(args.device)

    model = build_model(cfg, seed=0)
    print(f"DeepXDE {dde.__version__} ({dde.backend.backend_name}): -Δu = f on [0, 1]², "
          f"net {cfg['layers']}, {cfg['num_domain']} domain + {cfg['num_boundary']} boundary "
          f"points")
    summary = {"config": cfg, "initial": diagnostics(model)}

    print(f"\ntraining {cfg['iterations']} Adam iterations (lr {cfg['lr']:g}) from the same "
          f"initialisation")
    runs = {}
    cb = pdx.TraceWeights(every=cfg["every"], kind="mean", max_points=cfg["max_points"],
                          generator=0)
    for name, callback in (("fixed", None), ("trace", cb)):
        runs[name] = r = train(cfg, callback)
        w = ", ".join(f"{k}={v:.3g}" for k, v in r["final_weights"].items())
        print(f"  {name:>5}: relative L2 error {r['relative_l2']:.3e} ({r['wall_time_s']:.1f} s); "
              f"loss weights {w}")
    print("  trace weights during training (iteration: pde, bc0, bc1):")
    for it, w in cb.history:
        print(f"    {it:>6}: " + ", ".join(f"{v:.3g}" for v in w))
    runs["trace"]["history"] = [{"iteration": it, "weights": w} for it, w in cb.history]
    ratio = runs["fixed"]["relative_l2"] / runs["trace"]["relative_l2"]
    print(f"error with fixed weights / error with trace weights = {ratio:.2f}")
    summary.update(runs, ratio=ratio)
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(f"summary.json in {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
