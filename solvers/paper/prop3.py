"""Proposition 3 / Fig. 1: the trace rule picks the loss weights near the best ones.

Setup (paper section 2.2 and Fig. 1): fit f(x) = x1 x2 at x = (cos γ, sin γ), γ ~ N(0, 1)
(``circle-product``) with value labels and the derivative labels ∂f/∂x1 = x2, ∂f/∂x2 = x1 at the
same n points. The loss (paper eq. 2, 15, as a mean per term) is

    L = w_r ‖f(x) − y‖²/(2n) + w_g (‖∂₁f(x) − x2‖² + ‖∂₂f(x) − x1‖²)/(2n),
    w_r = λ_r/(λ_r + λ_g),  w_g = λ_g/(λ_r + λ_g),  λ_r = 1,

so one λ_g weighs both derivative labels (the paper's normalisation to a sum of 1). Each λ_g of a
log grid trains the same initial network on the same points with full-batch Adam; the final
regular (value) loss — its geometric mean over the last 10% of the steps, because Adam's loss at
a single step fluctuates by decades — is plotted against λ_g, as the paper's L² loss.

The trace rule (paper eq. 13, A-14) balances tr(λ_r Θ) = tr(λ_g Θ''), with Θ'' the kernel of the
derivative labels (both partials stacked, so tr Θ'' = tr Θ_∂₁ + tr Θ_∂₂):

    λ_g/λ_r = tr Θ / (tr Θ_∂₁ + tr Θ_∂₂) = (1/λ_1)/(1/λ_∂₁ + 1/λ_∂₂)

in terms of ``pinnk.ntk(model, terms).trace_weights("sum")`` = (λ_1, λ_∂₁, λ_∂₂), evaluated at
initialisation in float64. It is added to the sweep and marked in the figure.
"""

from __future__ import annotations

import copy
import math
import time

import torch

import pinnk

from ._common import Context, Result, partial_losses, progress, train_full_batch
from .prop2 import circle_data

NAME = "prop3"
TITLE = "Trace-rule loss weights against a sweep of λ_g (Prop. 3, Fig. 1)"
CLAIM = ("With λ_r = 1 and the weights normalised to sum 1, the final L² loss of the circle-product "
         "fit (f = x1·x2 with derivative labels; width 200, 4 layers, lr 1e-3, 40,000 full-batch "
         "epochs) has an obvious minimum around the trace-rule value λ_g ≈ 3 "
         "(λ_g = tr Θ*/tr Θ'', λ_r = tr Θ*/tr Θ).")

QUICK = {"width": 32, "depth": 3, "points": 16, "steps": 1500, "lr": 3e-3,
         "grid": [0.01, 0.1, 1.0, 10.0, 100.0]}
# The paper: width 200, a 4-layer network (3 hidden layers), lr 1e-3 (Adam assumed: the paper
# names no optimiser), 40,000 full-batch epochs. The point count is not given: 32 per term.
FULL = {"width": 200, "depth": 3, "points": 32, "steps": 40000, "lr": 1e-3,
        "grid": [10 ** (k / 2) for k in range(-4, 5)]}
TEST_POINTS = 512


def trace_rule_lambda_g(model: pinnk.MLP, terms: list) -> dict:
    """The trace-rule weights of the value and derivative labels at the model's current state.

    terms: [value, d_x1, d_x2] (:func:`solvers.paper.prop2.circle_data`). The kernel is taken on
    a float64 copy of the model. Returns ``{"per_term": [λ_1, λ_∂₁, λ_∂₂]`` (sum form, paper eq.
    13/A-20), ``"lambda_g"``: the single λ_g for λ_r = 1 that balances tr(λ_r Θ) = tr(λ_g Θ'')}.
    """
    m64 = copy.deepcopy(model).to(torch.float64)
    K = pinnk.ntk(m64, [t.to(dtype=torch.float64) for t in terms])
    w = K.trace_weights("sum")
    lam_g = float((1.0 / w[0]) / (1.0 / w[1] + 1.0 / w[2]))
    traces = [K.trace(i) for i in range(3)]
    return {"per_term": w.tolist(), "traces": traces, "lambda_g": lam_g}


def _figures(data: dict) -> dict:
    import matplotlib.pyplot as plt

    rows = data["sweep"]
    lg = [r["lambda_g"] for r in rows]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, key, label in ((axes[0], "value_mse",
                            "regular L² loss mean (f − y)², last 10% of steps"),
                           (axes[1], "test_rel_l2", "relative L² error of f (held-out points)")):
        ax.plot(lg, [r[key] for r in rows], "o-", color="tab:blue", label="sweep")
        if key == "value_mse":
            ax.plot(lg, [r["derivative_mse"] for r in rows], "s--", color="tab:green", lw=1,
                    label="derivative loss mean (∂f − y')²")
        t = data["trace_rule"]["lambda_g"]
        ax.axvline(t, color="tab:red", ls=":", label=f"trace rule λ_g = {t:.3g}")
        ax.axvline(3.0, color="tab:orange", ls="--", lw=1, label="paper's λ_g ≈ 3")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("λ_g (λ_r = 1; weights normalised to sum 1)")
        ax.set_ylabel(label)
        ax.legend(fontsize=7)
    fig.suptitle(f"circle-product, width {data['setup']['width']}, "
                 f"{data['setup']['steps']} Adam steps")
    fig.tight_layout()
    return {"sweep": fig}


def _setup(cfg: dict, seed: int, device: torch.device):
    g = torch.Generator().manual_seed(seed)
    terms, x, labels = circle_data(cfg["points"], g, torch.float32)
    model = pinnk.MLP(2, 1, cfg["width"], cfg["depth"], "tanh", "standard", generator=g)
    gamma = torch.randn(TEST_POINTS, generator=g, dtype=torch.float64)
    x_test = torch.stack([torch.cos(gamma), torch.sin(gamma)], dim=-1)
    return terms, x.to(device), labels.to(device), model.to(device), x_test.to(device)


def estimate_full_seconds(probe: int = 20) -> float:
    """Estimated wall time of the full mode from ``probe`` timed Adam steps at full size."""
    terms, x, labels, model, _ = _setup(FULL, 0, torch.device("cpu"))
    train_full_batch(model, x, labels, torch.ones(3), steps=2, optimizer="adam", lr=1e-3,
                     record=[0])  # warm-up
    t0 = time.perf_counter()
    train_full_batch(model, x, labels, torch.ones(3), steps=probe, optimizer="adam", lr=1e-3,
                     record=[0])
    per_step = (time.perf_counter() - t0) / probe
    return per_step * FULL["steps"] * (len(FULL["grid"]) + 1)


def tail_steps(steps: int, fraction: float = 0.1, records: int = 400) -> list[int]:
    """About ``records`` evenly spaced steps in the last ``fraction`` of training, ending at
    ``steps`` (the losses averaged for the sweep)."""
    start = steps - max(1, int(fraction * steps))
    stride = max(1, (steps - start) // records)
    return list(range(start, steps + 1, stride)) + [steps]


def run(ctx: Context) -> Result:
    cfg = ctx.pick(QUICK, FULL)
    if not ctx.quick:
        progress(ctx, f"prop3 full mode: about {estimate_full_seconds() / 60:.1f} min")
    terms, x, labels, model0, x_test = _setup(cfg, ctx.seed, ctx.device)
    rule = trace_rule_lambda_g(model0, terms)
    grid = sorted(set(float(v) for v in cfg["grid"]) | {rule["lambda_g"]})
    y_test = (x_test[:, 0] * x_test[:, 1]).to(torch.float32)
    rows = []
    for lam_g in grid:
        w = torch.tensor([1.0, lam_g, lam_g]) / (1.0 + lam_g)
        model = copy.deepcopy(model0)
        steps = cfg["steps"]
        hist = train_full_batch(model, x, labels, w.to(x), steps=steps, optimizer="adam",
                                lr=cfg["lr"], record=tail_steps(steps))
        final = hist["losses"][-1]  # ‖r‖²/(2n) per term at the last step
        # Adam's loss at one step fluctuates by decades: the sweep compares the geometric mean
        # over the last 10% of the steps
        tail = hist["losses"].clamp_min(1e-300).log().mean(dim=0).exp()
        with torch.no_grad():
            pred = model(x_test.to(torch.float32))[:, 0]
            rel = float((pred - y_test).norm() / y_test.norm())
            check = partial_losses(model, x, labels)
        rows.append({"lambda_g": lam_g, "w_r": float(w[0]), "w_g": float(w[1]),
                     "value_mse": float(2 * tail[0]),
                     "derivative_mse": float(tail[1] + tail[2]),
                     "value_mse_last_step": float(2 * final[0]),
                     "total_unweighted_mse_last_step": float(2 * final.sum()),
                     "test_rel_l2": rel, "is_trace_rule": lam_g == rule["lambda_g"],
                     "recheck_value_mse": float(2 * check[0])})
        progress(ctx, f"prop3: λ_g {lam_g:.3g}: value MSE {rows[-1]['value_mse']:.3g}")
    values = [r["value_mse"] for r in rows]
    best = min(range(len(rows)), key=lambda k: values[k])
    best_lg = rows[best]["lambda_g"]
    trace_row = next(r for r in rows if r["is_trace_rule"])
    decades = abs(math.log10(best_lg) - math.log10(rule["lambda_g"]))
    data = {
        "setup": {**cfg, "problem": "circle-product", "activation": "tanh",
                  "parametrization": "standard", "optimizer": "adam", "dtype": "float32",
                  "full_batch": True, "lambda_r": 1.0, "test_points": TEST_POINTS},
        "paper": {"lambda_g_optimum": 3.0, "lambda_r": 1.0},
        "trace_rule": rule,
        "sweep": rows,
        "best_lambda_g": best_lg,
        "best_value_mse": values[best],
        "trace_rule_value_mse": trace_row["value_mse"],
        "decades_best_to_trace_rule": decades,
    }
    if ctx.quick:
        data["full_mode_estimate_s"] = estimate_full_seconds(probe=10)
    verdict = {
        "the regular loss has an interior minimum over λ_g": 0 < best < len(rows) - 1,
        "the trace-rule λ_g lies within half a decade of the best λ_g": decades <= 0.5,
        "the trace-rule λ_g reaches within 2x of the best regular loss":
            trace_row["value_mse"] <= 2.0 * values[best],
    }
    table = ["| λ_g | w_r | w_g | regular MSE | derivative MSE | test rel. L² |",
             "| --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        mark = " (trace rule)" if r["is_trace_rule"] else ""
        table.append(f"| {r['lambda_g']:.3g}{mark} | {r['w_r']:.3f} | {r['w_g']:.3f} | "
                     f"{r['value_mse']:.3g} | {r['derivative_mse']:.3g} | "
                     f"{r['test_rel_l2']:.3g} |")
    summary = "\n".join([
        "## What was measured",
        "",
        f"Problem `circle-product` (f = x1·x2 at (cos γ, sin γ), γ ~ N(0, 1); derivative labels "
        f"∂f/∂x1 = x2 and ∂f/∂x2 = x1 at the same {cfg['points']} points), a standard-"
        f"parametrised tanh MLP of width {cfg['width']} and {cfg['depth']} hidden layers "
        f"(float32), full-batch Adam, lr {cfg['lr']:g}, {cfg['steps']} steps, one initial "
        f"network and training set (seed {ctx.seed}) for every λ_g. λ_r = 1, weights "
        f"w_r = 1/(1+λ_g), w_g = λ_g/(1+λ_g). The paper's 'L² loss' is read as the final "
        f"regular (value) loss, mean (f − y)² on the training points — the geometric mean over "
        f"the last 10% of the steps, since Adam's loss at a single step fluctuates by decades; "
        f"the derivative loss (same average) and "
        f"the relative L² error of f on {TEST_POINTS} held-out points are reported too. The "
        f"paper names neither the optimiser (Adam assumed) nor the point count.",
        "",
        f"Trace rule at initialisation: per-term weights (sum form) "
        f"{', '.join(f'{v:.3g}' for v in rule['per_term'])} for (value, ∂₁, ∂₂); one λ_g for "
        f"λ_r = 1: **{rule['lambda_g']:.3g}** (paper: ≈ 3). Best λ_g of the sweep: "
        f"**{best_lg:.3g}** ({decades:.2f} decades from the trace rule).",
        "",
    ] + table + (["", f"Estimated full-mode run time on this machine: "
                  f"{data['full_mode_estimate_s'] / 60:.1f} min."] if ctx.quick else []))
    return Result(data=data, figures=_figures(data), summary=summary, verdict=verdict)
