"""NTK diagnostics of a training run: spectrum of Θ*, gradient angles, kernel drift."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from ._kernel import Kernel, angles
from ._terms import Term

PERCENTILES = (5, 25, 50, 75, 95)


def spectrum(model: torch.nn.Module, terms: Sequence[Term], weights: Any = None,
             implementation: str = "auto") -> dict:
    """λ_min and λ_max of Θ* (block (a, i) = λ_i Θ_ai) and of the unweighted Θ.

    Returns a dict with ``lambda_min``, ``lambda_max`` (of Θ*), ``theta_min``, ``theta_max``
    (of Θ) and ``condition`` = λ_max/λ_min of Θ* (inf when λ_min <= 0).
    """
    K = Kernel(model, terms, implementation)
    ev_star = K.eigvalsh(weights)
    ev = K.eigvalsh(None)
    lo, hi = float(ev_star[0]), float(ev_star[-1])
    return {"lambda_min": lo, "lambda_max": hi, "theta_min": float(ev[0]),
            "theta_max": float(ev[-1]), "condition": hi / lo if lo > 0 else float("inf")}


def summarize(values: torch.Tensor) -> dict:
    """Mean and the 5/25/50/75/95th percentiles of a 1-D tensor (NaNs dropped)."""
    v = values.detach().double().flatten().cpu()  # a handful of numbers: summarised on the host
    v = v[torch.isfinite(v)]
    if v.numel() == 0:
        return {"mean": float("nan"), **{f"p{p}": float("nan") for p in PERCENTILES}}
    q = torch.quantile(v, torch.tensor([p / 100 for p in PERCENTILES], dtype=torch.float64))
    return {"mean": float(v.mean()), **{f"p{p}": float(x) for p, x in zip(PERCENTILES, q)}}


def angle_statistics(model: torch.nn.Module, terms: Sequence[Term],
                     implementation: str = "auto") -> dict:
    """Per-point cos α between each regular (value) term and each derivative term — a derivative
    label or a PDE residual (paper eq. 14, Prop. 4).

    The derivative operator is evaluated at the regular term's points, so both gradients are
    taken at the same x. Returns ``{"regular|derivative": summary}`` (:func:`summarize`).
    """
    regular = [t for t in terms if not t.is_derivative]
    residual = [t for t in terms if t.is_derivative]
    out = {}
    for a in regular:
        for b in residual:
            at_a = Term(b.name, b.operator, a.points)
            out[f"{a.name}|{b.name}"] = summarize(angles(model, a, at_a, implementation))
    return out


def kernel_matrix(model: torch.nn.Module, terms: Sequence[Term],
                  implementation: str = "auto") -> torch.Tensor:
    """The unweighted Θ of ``terms`` (N × N), for drift measurements."""
    return Kernel(model, terms, implementation).matrix()


def kernel_drift(theta: torch.Tensor, theta0: torch.Tensor) -> float:
    """Relative kernel change ‖Θ_t − Θ_0‖_F / ‖Θ_0‖_F (seed 002, Fig. 2)."""
    if theta.shape != theta0.shape:
        raise ValueError(f"theta: expected shape {tuple(theta0.shape)} like theta0, got "
                         f"{tuple(theta.shape)}")
    return float((theta - theta0.to(theta)).norm() / theta0.norm())
