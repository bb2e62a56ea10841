"""Proposition 1 / Fig. A1: the derivative kernels Θ', Θ'' converge to a fixed limit with width.

For a 1-D NTK-parametrised tanh MLP f(x), the three kernels of Prop. 1 (eq. 3, 6, 7) as curves
over x for a fixed x0,

    Θ(x0, x)   = ∇_θ f(x0) · ∇_θ f(x)            (value–value)
    Θ'(x0, x)  = ∇_θ ∂f(x0) · ∇_θ f(x)           (derivative–value, = ∂_{x0} Θ(x0, x))
    Θ''(x0, x) = ∇_θ ∂f(x0) · ∇_θ ∂f(x)          (derivative–derivative)

(``pinnk.ntk`` blocks of a value and an ``ops.partial([1])`` term), for two widths and three
initialisations each, at initialisation and after full-batch gradient descent on the paper's
circle-product target written in its angle, f(γ) = cos γ sin γ = ½ sin 2γ, with value labels and
the derivative labels f'(γ) = cos 2γ (the tangential Gâteaux derivative of x1 x2 on the circle) at
γ ~ N(0, 1). Measured per width:

* the spread across seeds: ‖std_seeds Θ(x0, ·)‖₂ / ‖Θ_∞(x0, ·)‖₂ per block, at init and trained;
* the relative error to the infinite-width kernel (``pinnk.AnalyticKernel.from_model``):
  ‖Θ_emp(x0, ·) − Θ_∞(x0, ·)‖₂ / ‖Θ_∞(x0, ·)‖₂ per block at init (mean over seeds), and the
  relative Frobenius error of the full multi-block kernel [[Θ, Θ'ᵀ], [Θ', Θ'']] on the grid;
* the kernel movement during training, ‖Θ_T − Θ_0‖_F / ‖Θ_0‖_F of that multi-block kernel.
"""

from __future__ import annotations

import time

import torch

import pinnk
from pinnk import ops

from ._common import Context, Result, progress, train_full_batch

NAME = "prop1"
TITLE = "Θ, Θ' and Θ'' converge to fixed limits as the width grows (Prop. 1, Fig. A1)"
CLAIM = ("The derivative kernels Θ'(x, x') = ∇θ∂_h f(x)·∇θ f(x') and Θ''(x, x') = "
         "∇θ∂_h f(x)·∇θ∂_h f(x'), like the NTK Θ, tend to a constant limit as the width grows, "
         "whether trained or not: three independent initialisations agree more closely, and "
         "move less in training, at the larger width.")

QUICK = {"widths": [32, 256], "depth": 3, "seeds": 3, "points": 8, "steps": 200, "grid": 31}
FULL = {"widths": [200, 2000], "depth": 3, "seeds": 3, "points": 16, "steps": 2000, "grid": 61}
X0 = 0.5
BLOCKS = ("theta", "theta_prime", "theta_double_prime")
DERIVATIVE = ops.partial([1])


def target(gamma: torch.Tensor) -> torch.Tensor:
    """Labels (n, 2): [½ sin 2γ, cos 2γ] (value and derivative) for angles γ (n, 1)."""
    g = gamma[:, 0]
    return torch.stack([0.5 * torch.sin(2 * g), torch.cos(2 * g)], dim=1)


def kernel_curves(model: pinnk.MLP, x0: torch.Tensor, grid: torch.Tensor) -> dict:
    """The three curves Θ(x0, ·), Θ'(x0, ·), Θ''(x0, ·) (each (G,)) and the multi-block kernel
    of [value, derivative] on the grid (2G, 2G), from ``pinnk.ntk``."""
    terms = [pinnk.Term("v0", ops.value(), x0), pinnk.Term("d0", DERIVATIVE, x0),
             pinnk.Term("v", ops.value(), grid), pinnk.Term("d", DERIVATIVE, grid)]
    K = pinnk.ntk(model, terms)
    curves = {"theta": K.block("v0", "v")[0], "theta_prime": K.block("d0", "v")[0],
              "theta_double_prime": K.block("d0", "d")[0]}
    G = grid.shape[0]
    full = torch.empty(2 * G, 2 * G, dtype=grid.dtype, device=grid.device)
    full[:G, :G] = K.block("v", "v")
    full[:G, G:] = K.block("v", "d")
    full[G:, :G] = full[:G, G:].T
    full[G:, G:] = K.block("d", "d")
    return {"curves": {k: v.clone() for k, v in curves.items()}, "matrix": full}


def analytic_curves(model: pinnk.MLP, x0: torch.Tensor, grid: torch.Tensor) -> dict:
    """The infinite-width counterparts of :func:`kernel_curves` (``pinnk.AnalyticKernel``)."""
    A = pinnk.AnalyticKernel.from_model(model)
    v, d = ops.value(), DERIVATIVE
    curves = {"theta": A.block(v, x0, v, grid)[0], "theta_prime": A.block(d, x0, v, grid)[0],
              "theta_double_prime": A.block(d, x0, d, grid)[0]}
    terms = [pinnk.Term("v", v, grid), pinnk.Term("d", d, grid)]
    return {"curves": curves, "matrix": A.matrix(terms)}


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


def _figures(data: dict) -> dict:
    import matplotlib.pyplot as plt

    grid = data["grid"]
    widths = data["setup"]["widths"]
    names = {"theta": "Θ(x0, x)", "theta_prime": "Θ'(x0, x)",
             "theta_double_prime": "Θ''(x0, x)"}
    fig, axes = plt.subplots(len(widths), 3, figsize=(13, 3.2 * len(widths)), squeeze=False)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for r, w in enumerate(widths):
        per = data["per_width"][str(w)]
        for c, b in enumerate(BLOCKS):
            ax = axes[r][c]
            for s, seed in enumerate(data["seeds"]):
                col = colours[s % len(colours)]
                ax.plot(grid, per["curves_init"][b][s], color=col, lw=1.2,
                        label=f"seed {seed}, init" if c == 0 else None)
                ax.plot(grid, per["curves_trained"][b][s], color=col, lw=1, ls="--",
                        label=f"seed {seed}, trained" if c == 0 else None)
            ax.plot(grid, data["analytic"][b], color="k", lw=1.5, ls=":",
                    label="infinite width" if c == 0 else None)
            ax.axvline(data["x0"], color="grey", lw=0.5)
            ax.set_title(f"{names[b]}, width {w}", fontsize=9)
            ax.set_xlabel("x")
        axes[r][0].legend(fontsize=6)
    fig.tight_layout()
    return {"kernels": fig}


def estimate_full_seconds(probe: int = 5) -> float:
    """Estimated full-mode wall time: ``probe`` timed GD steps per width, scaled to the seeds and
    steps, plus one timed kernel evaluation per width (used 3× per seed: init, trained)."""
    total = 0.0
    g = torch.Generator().manual_seed(0)
    gamma = torch.randn(FULL["points"], 1, generator=g, dtype=torch.float64)
    labels = target(gamma)
    grid = torch.linspace(-3, 3, FULL["grid"], dtype=torch.float64)[:, None]
    x0 = torch.tensor([[X0]], dtype=torch.float64)
    for w in FULL["widths"]:
        model = pinnk.MLP(1, 1, w, FULL["depth"], "tanh", "ntk", generator=g,
                          dtype=torch.float64)
        train_full_batch(model, gamma, labels, torch.ones(2, dtype=torch.float64), steps=1,
                         optimizer="gd", lr=1e-3, record=[0])  # warm-up
        t0 = time.perf_counter()
        train_full_batch(model, gamma, labels, torch.ones(2, dtype=torch.float64), steps=probe,
                         optimizer="gd", lr=1e-3, record=[0])
        step = (time.perf_counter() - t0) / probe
        t0 = time.perf_counter()
        kernel_curves(model, x0, grid)
        kern = time.perf_counter() - t0
        total += FULL["seeds"] * (step * FULL["steps"] + 2 * kern)
    return total


def run(ctx: Context) -> Result:
    cfg = ctx.pick(QUICK, FULL)
    if not ctx.quick:
        progress(ctx, f"prop1 full mode: about {estimate_full_seconds() / 60:.1f} min")
    dtype = torch.float64
    dev = ctx.device
    g = torch.Generator().manual_seed(ctx.seed)
    gamma = torch.randn(cfg["points"], 1, generator=g, dtype=dtype).to(dev)
    labels = target(gamma)
    grid = torch.linspace(-3.0, 3.0, cfg["grid"], dtype=dtype, device=dev)[:, None]
    x0 = torch.tensor([[X0]], dtype=dtype, device=dev)
    seeds = [ctx.seed + s for s in range(cfg["seeds"])]
    analytic = None
    per_width = {}
    for w in cfg["widths"]:
        init = {b: [] for b in BLOCKS}
        trained = {b: [] for b in BLOCKS}
        err_block = {b: [] for b in BLOCKS}
        err_matrix, drift, drift_block, final_loss = [], [], {b: [] for b in BLOCKS}, []
        for seed in seeds:
            gm = torch.Generator().manual_seed(10_000 * (w + 1) + seed)
            model = pinnk.MLP(1, 1, w, cfg["depth"], "tanh", "ntk", generator=gm,
                              dtype=dtype).to(dev)
            if analytic is None:
                analytic = analytic_curves(model, x0, grid)
            k0 = kernel_curves(model, x0, grid)
            # GD on the value + derivative labels, step 1/λ_max of the linearised dynamics
            terms = [pinnk.Term("value", ops.value(), gamma, labels[:, 0]),
                     pinnk.Term("derivative", DERIVATIVE, gamma, labels[:, 1])]
            lam_max = float(pinnk.ntk(model, terms).eigvalsh()[-1])
            eta = cfg["points"] / lam_max
            hist = train_full_batch(model, gamma, labels, torch.ones(2, dtype=dtype),
                                    steps=cfg["steps"], optimizer="gd", lr=eta,
                                    record=[0, cfg["steps"]])
            final_loss.append(hist["losses"][-1].tolist())
            k1 = kernel_curves(model, x0, grid)
            for b in BLOCKS:
                init[b].append(k0["curves"][b])
                trained[b].append(k1["curves"][b])
                err_block[b].append(_rel(k0["curves"][b], analytic["curves"][b]))
                drift_block[b].append(_rel(k1["curves"][b], k0["curves"][b]))
            err_matrix.append(_rel(k0["matrix"], analytic["matrix"]))
            drift.append(_rel(k1["matrix"], k0["matrix"]))
        spread = {}
        for when, store in (("init", init), ("trained", trained)):
            spread[when] = {b: float(torch.stack(store[b]).std(0).norm()
                                     / analytic["curves"][b].norm()) for b in BLOCKS}
        per_width[str(w)] = {
            "curves_init": {b: torch.stack(v).tolist() for b, v in init.items()},
            "curves_trained": {b: torch.stack(v).tolist() for b, v in trained.items()},
            "relative_spread": spread,
            "analytic_error": {b: sum(v) / len(v) for b, v in err_block.items()},
            "analytic_error_per_seed": err_block,
            "analytic_error_matrix": sum(err_matrix) / len(err_matrix),
            "analytic_error_matrix_per_seed": err_matrix,
            "drift": sum(drift) / len(drift),
            "drift_per_seed": drift,
            "drift_block": {b: sum(v) / len(v) for b, v in drift_block.items()},
            "final_losses": final_loss,
        }
        progress(ctx, f"prop1: width {w}: error to the limit "
                      f"{per_width[str(w)]['analytic_error_matrix']:.3g}, drift "
                      f"{per_width[str(w)]['drift']:.3g}")
    narrow, wide = (per_width[str(w)] for w in (min(cfg["widths"]), max(cfg["widths"])))
    data = {
        "setup": {**cfg, "activation": "tanh", "parametrization": "ntk", "sigma_w": 1.0,
                  "sigma_b": 0.1, "optimizer": "gd", "dtype": "float64",
                  "target": "f(γ) = ½ sin 2γ, f'(γ) = cos 2γ at γ ~ N(0, 1)",
                  "step_size": "eta = n / lambda_max(Theta) of the training terms at init"},
        "x0": X0,
        "grid": grid[:, 0].tolist(),
        "seeds": seeds,
        "analytic": {b: v.tolist() for b, v in analytic["curves"].items()},
        "per_width": per_width,
    }
    if ctx.quick:
        data["full_mode_estimate_s"] = estimate_full_seconds(probe=2)
    verdict = {
        "the spread across seeds at init shrinks with width (Θ, Θ', Θ'')":
            all(wide["relative_spread"]["init"][b] < narrow["relative_spread"]["init"][b]
                for b in BLOCKS),
        "the spread across seeds after training shrinks with width (Θ, Θ', Θ'')":
            all(wide["relative_spread"]["trained"][b] < narrow["relative_spread"]["trained"][b]
                for b in BLOCKS),
        "the kernels at init approach the infinite-width kernels (Θ, Θ', Θ'' and the full matrix)":
            all(wide["analytic_error"][b] < narrow["analytic_error"][b] for b in BLOCKS)
            and wide["analytic_error_matrix"] < narrow["analytic_error_matrix"],
        "the kernel moves less in training at the larger width": wide["drift"] < narrow["drift"],
    }
    lines = ["| width | block | spread init | spread trained | error to limit (init) | "
             "movement in training |", "| --- | --- | --- | --- | --- | --- |"]
    for w in cfg["widths"]:
        p = per_width[str(w)]
        for b in BLOCKS:
            lines.append(f"| {w} | {b} | {p['relative_spread']['init'][b]:.3g} | "
                         f"{p['relative_spread']['trained'][b]:.3g} | "
                         f"{p['analytic_error'][b]:.3g} | {p['drift_block'][b]:.3g} |")
        lines.append(f"| {w} | multi-block on the grid | — | — | "
                     f"{p['analytic_error_matrix']:.3g} | {p['drift']:.3g} |")
    summary = "\n".join([
        "## What was measured",
        "",
        f"1-D NTK-parametrised tanh MLP ({cfg['depth']} hidden layers, σ_w = 1, σ_b = 0.1, "
        f"float64), widths {', '.join(map(str, cfg['widths']))}, seeds {seeds}. Kernels as "
        f"curves over x ∈ [−3, 3] ({cfg['grid']} points) at x0 = {X0}; trained by full-batch GD "
        f"({cfg['steps']} steps, η = n/λ_max(Θ)) on f(γ) = ½ sin 2γ with the derivative labels "
        f"cos 2γ at {cfg['points']} angles γ ~ N(0, 1) (the paper's x1·x2 on the circle, in its "
        f"angle). 'Spread' is ‖std over seeds‖₂/‖Θ_∞‖₂, 'error to limit' "
        f"‖Θ − Θ_∞‖/‖Θ_∞‖ (mean over seeds), 'movement' ‖Θ_T − Θ_0‖/‖Θ_0‖ (mean over seeds). "
        f"The paper shows Fig. A1 for Θ', Θ'' on its 2-D task without giving widths; the 1-D "
        f"network here makes the curves directly comparable with the analytic limit.",
        "",
    ] + lines + (["", f"Estimated full-mode run time on this machine: "
                  f"{data['full_mode_estimate_s'] / 60:.1f} min."] if ctx.quick else []))
    return Result(data=data, figures=_figures(data), summary=summary, verdict=verdict)
