"""Shared by the DeepXDE Gauss–Newton tutorials (``deepxde_poisson_dirichlet_1d.py``,
``deepxde_diffusion_1d.py``, ``deepxde_burgers.py``): train one DeepXDE problem three ways from
the same initial network and points, and compare the errors side by side.

1. DeepXDE's own recipe: Adam, then L-BFGS (``model.compile("L-BFGS")``);
2. the same with the :class:`pinnk.interop.deepxde.TraceWeights` callback in both phases;
3. :class:`pinnk.interop.deepxde.GaussNewton` from the initial network.

A problem module provides ``NAME``, ``setup(quick) -> dict`` (the run's sizes, with the keys
``adam``, ``lr``, ``lbfgs``, ``gn`` and ``gn_damping``), ``build_model(cfg) -> dde.Model`` (equal
calls give equal points and equal initial networks) and ``relative_l2(model) -> float`` against
its reference solution. Everything runs in float64 (``dde.config.set_default_float``), the dtype
Gauss–Newton needs; the wall times are of the training calls alone.
"""

from __future__ import annotations

import argparse
import json
import os
import time
import warnings
from pathlib import Path

os.environ.setdefault("DDE_BACKEND", "pytorch")  # before DeepXDE is first imported

import deepxde as dde  # noqa: E402
import torch  # noqa: E402

from pinnk.interop import deepxde as pdx  # noqa: E402


def parse_args(doc: str, argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=doc.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="a few seconds on one core")
    p.add_argument("--out", default=None, help="output folder (default runs/tutorial-<name>)")
    p.add_argument("--device", default="auto",
                   help="auto (DeepXDE's choice: CUDA when available), cpu, cuda")
    p.add_argument("--threads", type=int, default=0,
                   help="torch CPU threads (0: torch's default)")
    p.add_argument("--methods", default="adam,trace,gn",
                   help="comma-separated subset of adam (Adam + L-BFGS), trace (the same with "
                        "TraceWeights), gn (Gauss–Newton)")
    return p.parse_args(argv)


def set_lbfgs_iterations(maxiter: int) -> None:
    """DeepXDE's L-BFGS iteration limit. DeepXDE derives the iterations of one L-BFGS call (its
    'step', between which callbacks run) from the limit once, at import; redo that here."""
    dde.optimizers.set_LBFGS_options(maxiter=maxiter)
    opts = dde.optimizers.config.LBFGS_options
    opts["iter_per_step"] = min(1000, opts["maxiter"])
    opts["fun_per_step"] = opts["maxfun"] * opts["iter_per_step"] // opts["maxiter"]


def _loss(model: dde.Model) -> float:
    return float(sum(model.losshistory.loss_train[-1]))


def adam_lbfgs(problem, cfg: dict, trace: bool) -> dict:
    """DeepXDE's recipe, Adam then L-BFGS, optionally with the TraceWeights callback (kept across
    the switch: the L-BFGS phase is compiled with the weights found during Adam)."""
    model = problem.build_model(cfg)
    cb = [pdx.TraceWeights()] if trace else None   # every=500 iterations, 128 points per term
    model.compile("adam", lr=cfg["lr"])
    t0 = time.perf_counter()
    model.train(iterations=cfg["adam"], display_every=cfg["adam"], callbacks=cb, verbose=0)
    t_adam = time.perf_counter() - t0
    out = {"adam": {"iterations": cfg["adam"], "relative_l2": problem.relative_l2(model),
                    "loss": _loss(model), "wall_time_s": t_adam}}
    set_lbfgs_iterations(cfg["lbfgs"])
    model.compile("L-BFGS", loss_weights=model.loss_weights)
    t0 = time.perf_counter()
    model.train(display_every=1000, callbacks=cb, verbose=0)
    t_lbfgs = time.perf_counter() - t0
    out["adam+lbfgs"] = {"iterations": int(model.train_state.step),
                         "relative_l2": problem.relative_l2(model), "loss": _loss(model),
                         "wall_time_s": t_adam + t_lbfgs}
    if trace:
        out["loss_weights"] = [float(w) for w in model.loss_weights]
    return out


def gauss_newton(problem, cfg: dict, out_dir: Path) -> dict:
    """Gauss–Newton from the initial network: the model is compiled as for Adam (the compile
    sets the loss weights and DeepXDE's loss, which GaussNewton uses; its optimizer is not)."""
    model = problem.build_model(cfg)
    model.compile("adam", lr=cfg["lr"])
    gn = pdx.GaussNewton(damping=cfg["gn_damping"])   # geodesic acceleration 0.75 by default
    t0 = time.perf_counter()
    losshistory, train_state = gn.train(model, iterations=cfg["gn"],
                                        display_every=max(1, cfg["gn"] // 10), verbose=0)
    wall = time.perf_counter() - t0
    # DeepXDE's own tools read the history: loss.dat, train.dat, test.dat
    dde.saveplot(losshistory, train_state, issave=True, isplot=False, output_dir=str(out_dir))
    accepted = sum(h["step_size"] > 0 for h in gn.history)
    return {"gn": {"iterations": int(train_state.step), "accepted": accepted,
                   "relative_l2": problem.relative_l2(model), "loss": _loss(model),
                   "wall_time_s": wall, "final_damping": gn.damping,
                   "seconds_kernel": sum(h["time_kernel"] for h in gn.history),
                   "seconds_solve": sum(h["time_solve"] for h in gn.history)}}


_ROWS = [("adam", "adam", "Adam"), ("adam", "adam+lbfgs", "Adam + L-BFGS"),
         ("trace", "adam", "Adam, TraceWeights"),
         ("trace", "adam+lbfgs", "Adam + L-BFGS, TraceWeights"), ("gn", "gn", "Gauss–Newton")]


def compare(problem, doc: str, argv=None) -> int:
    """The tutorial's main(): parse the arguments, train every method, print the table and write
    summary.json."""
    args = parse_args(doc, argv)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = sorted(set(methods) - {"adam", "trace", "gn"})
    if unknown:
        raise SystemExit(f"--methods: unknown method(s) {unknown}; expected adam, trace, gn")
    cfg = problem.setup(args.quick)
    out = Path(args.out or f"runs/tutorial-{problem.NAME}")
    out.mkdir(parents=True, exist_ok=True)
    if args.threads:
        torch.set_num_threads(args.threads)
    dde.config.set_default_float("float64")
    if args.device != "auto":  # DeepXDE builds its tensors on torch's default device
        torch.set_default_device(args.device)
    load = os.getloadavg()
    print(f"{problem.NAME}: DeepXDE {dde.__version__} ({dde.backend.backend_name}), float64, "
          f"{torch.get_num_threads()} torch thread(s), load average {load[0]:.2f}")
    results = {}
    with warnings.catch_warnings():
        # DeepXDE's "... points required, but ... points sampled" notes are not ours
        warnings.filterwarnings("ignore", message=".*points required.*")
        for m in methods:
            if m == "gn":
                results["gn"] = gauss_newton(problem, cfg, out)["gn"]
            else:
                results[m] = adam_lbfgs(problem, cfg, trace=(m == "trace"))
            print(f"  {m}: done", flush=True)
    print(f"\n{'method':<30} {'iterations':>12} {'rel. L2 error':>14} {'wall time':>10}")
    table = []
    for m, key, label in _ROWS:
        if m not in results:
            continue
        r = results[m] if m == "gn" else results[m][key]
        table.append({"method": label, **r})
        print(f"{label:<30} {r['iterations']:>12} {r['relative_l2']:>14.2e} "
              f"{r['wall_time_s']:>9.1f}s")
    summary = {"problem": problem.NAME, "config": cfg, "threads": torch.get_num_threads(),
               "load_average_start": load, "load_average_end": os.getloadavg(),
               "results": results, "table": table}
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(f"summary.json in {out}")
    return 0
