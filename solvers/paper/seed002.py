"""Seed 002 (NTK overview), Fig. 2 and eq. 7–8: the kernel moves less during training as the
width grows, and the training loss is bounded through λ_min of the initial kernel.

Setup: regression of y = x₁x₂ at points x = (cos γ, sin γ), γ ~ N(0, 1) (the source paper's
setting for Prop. 1–3), a tanh MLP in NTK parametrisation at several widths, full-batch gradient
descent (``torch.optim.SGD``) on pinnk's mean loss L = ‖r‖²/(2n).

- Kernel drift ‖Θ_t − Θ_0‖_F/‖Θ_0‖_F against the width, averaged over seeds, with the slope of
  a log-log fit (infinite-width theory: O(width^{-1/2}) in NTK parametrisation).
- The loss against its bound L_k ≤ (1 − η λ_min)^{2k} L_0 with λ_min = λ_min(Θ_0/n) (eq. 8 in
  pinnk's convention: seed 002 writes exp(−λ_min t) with L = ½‖r‖² and omits a factor 2 in the
  exponent), and against the linearised prediction (I − ηΘ_0/n)^k r_0.

Everything runs in float64 (λ_min of these nearly singular kernels is ~1e-8 or less).
Deviation: the learning rate is 1.0, not the source paper's 1e-3 (seed 002 gives none): with the
mean loss the kernel's largest eigenvalue is ≈ 0.5, so 1e-3 would barely train in the steps that
fit the time budget; 1.0 keeps η λ_max < 2 at every width.
"""

from __future__ import annotations

import numpy as np
import torch

import pinnk
from pinnk import diagnostics as dg
from pinnk import ops

NAME = "seed002"
TITLE = "Seed 002: kernel drift during training against width, and the λ_min loss bound"
CLAIM = ("In the infinite-width limit the NTK stays constant during training: the relative "
         "change ‖Θ_t − Θ_0‖_F/‖Θ_0‖_F shrinks as the width grows (Fig. 2; O(width^-1/2) in NTK "
         "parametrisation). The training loss obeys ‖y − f_t‖² ≤ exp(−λ_min t)‖y − f_0‖² "
         "(eq. 7–8), a bound that becomes relevant for wide networks (Fig. 5).")


def _term(n: int, seed: int, device) -> pinnk.Term:
    g = torch.Generator().manual_seed(seed)
    gamma = torch.randn(n, generator=g)
    x = torch.stack([torch.cos(gamma), torch.sin(gamma)], dim=1).to(device, torch.float64)
    return pinnk.Term("f", ops.value(), x, x[:, 0] * x[:, 1])


def _train(width, depth, term, seed, steps, lr, every, device) -> dict:
    model = pinnk.MLP(2, 1, width=width, depth=depth, parametrization="ntk",
                      generator=torch.Generator().manual_seed(seed),
                      dtype=torch.float64).to(device)
    recorded = list(range(0, steps + 1, every))
    pred = dg.linearized_prediction(model, [term], recorded, lr)
    theta0 = dg.kernel_matrix(model, [term])
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    loss_curve, drift, lam = [], [], []
    for k in range(steps + 1):
        if k % every == 0:
            theta = dg.kernel_matrix(model, [term])
            drift.append(dg.kernel_drift(theta, theta0))
            lam.append(float(torch.linalg.eigvalsh(theta / term.n)[0]))
        opt.zero_grad(set_to_none=True)
        loss = term.loss(model)
        loss_curve.append(float(loss.detach()))
        if k < steps:
            loss.backward()
            opt.step()
    actual = np.asarray(loss_curve)[recorded]
    predicted = pred.loss.double().cpu().numpy()
    return {"steps": recorded, "drift": drift, "lambda_min_t": lam, "loss": loss_curve,
            "predicted_loss": predicted.tolist(), "bound": pred.bound.double().cpu().tolist(),
            "lambda_min": pred.lambda_min, "lambda_max": pred.lambda_max,
            "contraction": pred.contraction,
            "linearised_deviation": float(np.max(np.abs(predicted - actual) / actual))}


def _slope(widths, values) -> float:
    return float(np.polyfit(np.log(widths), np.log(values), 1)[0])


def run(ctx):
    import matplotlib.pyplot as plt

    from ._common import Result

    widths = ctx.pick([32, 64, 128, 256], [50, 100, 200, 400, 800])
    depth = ctx.pick(3, 4)
    n = ctx.pick(16, 32)
    steps = ctx.pick(150, 1000)
    every = ctx.pick(15, 50)
    seeds = [ctx.seed + s for s in range(ctx.pick(3, 5))]
    lr = 1.0
    term = _term(n, ctx.seed, ctx.device)
    runs = {str(w): [_train(w, depth, term, s + 1000, steps, lr, every, ctx.device)
                     for s in seeds] for w in widths}
    final = [float(np.mean([r["drift"][-1] for r in runs[str(w)]])) for w in widths]
    slope = _slope(widths, final)
    wide = runs[str(widths[-1])][0]
    loss_at = np.asarray(wide["loss"])[wide["steps"]]
    bound = np.asarray(wide["bound"])
    below = bool(np.all(loss_at <= bound * (1 + 1e-6)))
    deviation = {str(w): float(np.mean([r["linearised_deviation"] for r in runs[str(w)]]))
                 for w in widths}
    data = {"setup": {"widths": widths, "depth": depth, "points": n, "steps": steps,
                      "record_every": every, "seeds": seeds, "lr": lr,
                      "parametrization": "ntk", "activation": "tanh",
                      "optimizer": "full-batch SGD (plain GD)",
                      "loss": "L = ||r||^2/(2n)", "target": "y = x1*x2, x = (cos g, sin g)"},
            "runs": runs, "final_drift": dict(zip(map(str, widths), final)), "slope": slope,
            "linearised_deviation": deviation, "bound_holds_widest": below}
    verdict = {
        "kernel drift shrinks with width about as width^-1/2 (log-log slope in [-0.8, -0.3])":
            -0.8 <= slope <= -0.3,
        f"training loss stays below the λ_min bound at width {widths[-1]}": below,
        "the linearised prediction is closer at the largest width than at the smallest":
            deviation[str(widths[-1])] < deviation[str(widths[0])],
    }

    figs = {}
    fig, ax = plt.subplots(1, 2, figsize=(11, 4))
    for w in widths:
        r = runs[str(w)]
        ax[0].plot(r[0]["steps"], np.mean([q["drift"] for q in r], axis=0), label=f"width {w}")
    ax[0].set(xlabel="step", ylabel="‖Θ_t − Θ_0‖_F / ‖Θ_0‖_F", title="kernel drift in training")
    ax[0].legend(fontsize=7)
    ax[1].loglog(widths, final, "o-", label=f"measured (slope {slope:.2f})")
    ref = final[0] * (np.asarray(widths) / widths[0]) ** -0.5
    ax[1].loglog(widths, ref, "k--", label="slope −1/2")
    ax[1].set(xlabel="width", ylabel=f"drift after {steps} steps", title="drift against width")
    ax[1].legend(fontsize=8)
    figs["drift"] = fig

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.semilogy(np.arange(steps + 1), wide["loss"], label="training loss")
    ax.semilogy(wide["steps"], wide["predicted_loss"], "o", ms=3, label="linearised (Θ_0)")
    ax.semilogy(wide["steps"], wide["bound"], "r--",
                label=f"(1 − ηλ_min)^(2k) L_0, λ_min = {wide['lambda_min']:.2e}")
    ax.set(xlabel="step k", ylabel="L", title=f"width {widths[-1]}: loss and its λ_min bound")
    ax.legend(fontsize=7)
    figs["bound"] = fig

    rows = ["| width | drift after training | linearised loss deviation (max rel.) | λ_min(Θ_0/n) | "
            "λ_max(Θ_0/n) | loss start → end |", "| --- | --- | --- | --- | --- | --- |"]
    for w, fd in zip(widths, final):
        r = runs[str(w)]
        rows.append(f"| {w} | {fd:.3e} | {deviation[str(w)]:.3e} | "
                    f"{np.mean([q['lambda_min'] for q in r]):.2e} | "
                    f"{np.mean([q['lambda_max'] for q in r]):.3f} | "
                    f"{np.mean([q['loss'][0] for q in r]):.3g} → "
                    f"{np.mean([q['loss'][-1] for q in r]):.3g} |")
    summary = "\n".join([
        f"{n} points, tanh MLP depth {depth} (NTK parametrisation), {steps} full-batch GD steps "
        f"at lr {lr}, {len(seeds)} seeds per width (means shown).", "", *rows, "",
        f"Log-log slope of the drift against width: **{slope:.3f}** (theory: −0.5).",
        "", f"At width {widths[-1]} the bound (1 − ηλ_min)^(2k) L_0 "
        f"{'holds at every recorded step' if below else 'is violated at some step'}; with "
        f"λ_min = {wide['lambda_min']:.2e} the bound stays at L_0 to plotting "
        "accuracy (points on an arc give a nearly singular kernel): true but uninformative, as "
        "seed 002 found for its narrow networks. Convention: "
        "L = ‖r‖²/(2n), so the rate is λ_min(Θ/n) and the exponent carries the factor 2 that "
        "seed 002's eq. 7 omits."])
    return Result(data=data, figures=figs, summary=summary, verdict=verdict)
