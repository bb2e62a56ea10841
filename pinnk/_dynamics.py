"""Training dynamics predicted from the empirical NTK: the linearised residuals and loss of
gradient descent or gradient flow, the λ_min loss bound, and a check against a real training run.

Conventions (design.md §1–2). The loss is the weighted mean loss of pinnk,

    L(θ) = Σ_i λ_i / (2 n_i) · ‖r_i(θ)‖²,      ∇_θ L = Σ_i (λ_i / n_i) J_iᵀ r_i,

so one gradient-descent step θ ← θ − η ∇_θ L moves the linearised residuals by

    r_a ← r_a − η Σ_i (λ_i / n_i) Θ_ai r_i,   i.e.   r ← (I − η Θ̃) r,   Θ̃ = Θ D,

with D = diag(λ_i / n_i) repeated over the n_i points of term i. Θ̃ is the paper's Θ* (eq. 12,
A-17: block (a, i) = λ_i Θ_ai) with the weights λ_i replaced by λ_i / n_i: the paper drops the
1/n of its mean loss ("omitting scale 1/m", eq. 8). Θ̃ is not symmetric but similar to the
symmetric PSD S = D^{1/2} Θ D^{1/2} = V diag(μ) Vᵀ, so

    GD, k steps:       r_k = D^{-1/2} V (1 − η μ)^k Vᵀ D^{1/2} r_0
    gradient flow:     r(t) = D^{-1/2} V exp(−η μ t) Vᵀ D^{1/2} r_0   (time η t, t in "steps")
    loss:              L = ½ ‖D^{1/2} r‖² = ½ Σ_j c_j² (1 − η μ_j)^{2k},  c = Vᵀ D^{1/2} r_0.

Terms with weight 0 are not trained but still move: their residuals follow the trained ones,

    r_Z(k) = r_Z(0) − η Θ_ZA D_A Σ_{j<k} r_A(j)
           = r_Z(0) − η Θ_ZA D_A^{1/2} V diag((1 − (1 − η μ)^k) / (η μ)) c

(∫_0^t exp(−η μ s) ds = (1 − exp(−η μ t)) / (η μ) for the flow): this is how a value-only
training moves ∂_h f (Prop. 4). The spectrum μ and the bound use the trained terms only.

Loss bound (seed 002, eq. 7–8, with the factors of this convention): since L = ½‖u‖² with
u = D^{1/2} r and u_k = V (1 − η μ)^k Vᵀ u_0,

    GD:    L_k ≤ ρ^{2k} L_0,  ρ = max_j |1 − η μ_j|  (= 1 − η μ_min when η (μ_min + μ_max) ≤ 2)
    flow:  L(t) ≤ exp(−2 η μ_min t) L_0

with μ_min = λ_min(Θ̃) = λ_min of the paper's Θ* built with weights λ_i / n_i. (Seed 002 writes
exp(−λ_min t) for ‖r‖² with L = ½‖r‖², η = 1: true but loose by the factor 2 in the exponent.)
Equality holds when D^{1/2} r_0 is an eigenvector of S for μ_min.
"""

from __future__ import annotations

import copy
import numbers
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from ._kernel import Kernel
from ._terms import Term, check_terms
from ._validation import check_float, check_int, model_dtype_device

MODES = ("gd", "flow")


# ------------------------------------------------------------------------------------ checks
def _check_mode(mode: Any) -> str:
    if mode not in MODES:
        raise ValueError(f"mode: expected 'gd' (gradient descent) or 'flow' (gradient flow), "
                         f"got {mode!r}")
    return mode


def _check_steps(steps: Any, mode: str, dtype: torch.dtype, device) -> torch.Tensor:
    """``steps`` as a 1-D tensor of times: an int k means 0, 1, ..., k."""
    if isinstance(steps, bool):
        raise TypeError("steps: expected an int or a 1-D sequence of step counts, got bool")
    if isinstance(steps, numbers.Integral):
        k = check_int(steps, "steps", minimum=0)
        return torch.arange(k + 1, dtype=dtype, device=device)
    if isinstance(steps, torch.Tensor):
        s = steps.detach()
    elif isinstance(steps, Sequence) and not isinstance(steps, str):
        for v in steps:
            if isinstance(v, bool) or not isinstance(v, numbers.Real):
                raise TypeError(f"steps: expected numbers, got {type(v).__name__}")
        s = torch.as_tensor(list(steps), dtype=torch.float64)
    else:
        raise TypeError(f"steps: expected an int or a 1-D sequence of step counts, got "
                        f"{type(steps).__name__}")
    if s.ndim != 1 or s.numel() == 0:
        raise ValueError(f"steps: expected a non-empty 1-D sequence, got shape {tuple(s.shape)}")
    s = s.to(torch.float64)
    if not bool(torch.isfinite(s).all()) or bool((s < 0).any()):
        raise ValueError("steps: expected finite, non-negative step counts")
    if mode == "gd" and not bool((s == s.round()).all()):
        raise ValueError("steps: gradient descent ('gd') needs integer step counts; use "
                         "mode='flow' for continuous times")
    return s.to(dtype=dtype, device=device)


def _offsets(sizes: Sequence[int]) -> list[int]:
    out = [0]
    for n in sizes:
        out.append(out[-1] + n)
    return out


def _decay(a: torch.Tensor, s: torch.Tensor, mode: str) -> torch.Tensor:
    """(1 − a)^s (GD) or exp(−a s) (flow) for a (N,) and s (K,) -> (K, N)."""
    a, s = a[None, :], s[:, None]
    if mode == "flow":
        return torch.exp(-a * s)
    return torch.pow(1 - a, s)


def _accumulated(a: torch.Tensor, s: torch.Tensor, mode: str) -> torch.Tensor:
    """Σ_{j<s} (1 − a)^j (GD) or ∫_0^s exp(−a u) du (flow), shape (K, N); s where a = 0.

    Written with expm1/log1p so that it stays accurate when a·s is tiny.
    """
    a, s = a[None, :], s[:, None]
    small = a.abs() < 1e-300
    safe = torch.where(small, torch.ones_like(a), a)
    if mode == "flow":
        acc = -torch.expm1(-safe * s) / safe
    else:
        below = safe < 1
        lg = torch.log1p(-torch.where(below, safe, torch.zeros_like(safe)))
        acc_below = -torch.expm1(s * lg) / safe
        acc_above = (1 - torch.pow(1 - safe, s)) / safe
        acc = torch.where(below, acc_below, acc_above)
    return torch.where(small, s.expand_as(acc), acc)


# ------------------------------------------------------------------------------------ result
@dataclass
class LinearizedPrediction:
    """The residuals and loss of the linearised training (see the module docstring).

    Attributes:
        steps: the times at which the prediction is given, shape (K,) (step counts; for the
            flow the physical time is ``lr * steps``).
        residuals: ``{term name: (K, n_i)}``, the predicted residuals r_i.
        term_losses: ``{term name: (K,)}``, the weighted contributions λ_i ‖r_i‖² / (2 n_i).
        loss: the total loss L, shape (K,).
        bound: the λ_min bound on L (GD: ρ^{2k} L_0; flow: exp(−2 η μ_min t) L_0), shape (K,).
        eigenvalues: the spectrum μ of Θ̃ over the trained terms, ascending, shape (N_A,).
        weights: the loss weights λ_i, shape (T,).
        lr, mode: the learning rate η and ``"gd"`` or ``"flow"``.
        contraction: ρ = max_j |1 − η μ_j| (GD) or exp(−η μ_min) (flow): the per-step factor of
            ‖D^{1/2} r‖ in the worst direction.
        loss0: L at the current parameters (trained terms only).

    All tensors have the model's dtype and device.
    """

    steps: torch.Tensor
    residuals: dict
    term_losses: dict
    loss: torch.Tensor
    bound: torch.Tensor
    eigenvalues: torch.Tensor
    weights: torch.Tensor
    lr: float
    mode: str
    contraction: float
    loss0: float

    @property
    def lambda_min(self) -> float:
        """μ_min = λ_min(Θ̃), the rate in the bound."""
        return float(self.eigenvalues[0])

    @property
    def lambda_max(self) -> float:
        """μ_max = λ_max(Θ̃); GD is stable for η < 2 / μ_max."""
        return float(self.eigenvalues[-1])


def _bound_curve(mu: torch.Tensor, loss0: torch.Tensor, s: torch.Tensor, lr: float,
                 mode: str) -> tuple[torch.Tensor, float]:
    mu_min = mu[0].clamp_min(0)
    if mode == "flow":
        rho = float(torch.exp(-lr * mu_min))
        return loss0 * torch.exp(-2 * lr * mu_min * s), rho
    rho_t = torch.maximum((1 - lr * mu[0]).abs(), (1 - lr * mu[-1]).abs())
    return loss0 * torch.pow(rho_t, 2 * s), float(rho_t)


def linearized_prediction(model: torch.nn.Module, terms: Sequence[Term], steps: Any,
                          lr: float, weights: Any = None, *, mode: str = "gd",
                          implementation: str = "auto",
                          kernel: Kernel | None = None) -> LinearizedPrediction:
    """Predict the residuals and the loss of training from the NTK at the current parameters.

    GD with learning rate η on L = Σ_i λ_i/(2 n_i) ‖r_i‖²:  r_k = (I − η Θ̃)^k r_0, Θ̃ = Θ D,
    D = diag(λ_i / n_i); gradient flow: r(t) = exp(−η t Θ̃) r_0. Both are evaluated through the
    eigendecomposition of the symmetric S = D^{1/2} Θ D^{1/2} (never a general ``eig``); terms
    with weight 0 are carried along passively (module docstring).

    Args:
        model: the network (its parameters are read, not changed).
        terms: the :class:`pinnk.Term` list of the loss.
        steps: an int k (predict at 0, 1, ..., k) or a 1-D sequence of step counts, shape (K,);
            for ``mode="flow"`` any non-negative reals (time = ``lr * steps``).
        lr: the learning rate η > 0.
        weights: λ_i: None (all 1), one per term, or a mapping name -> weight; all >= 0, at
            least one > 0.
        mode: ``"gd"`` (gradient descent) or ``"flow"`` (gradient flow).
        implementation: how the kernel is computed (see :func:`pinnk.ntk`).
        kernel: a :class:`pinnk.Kernel` of ``model`` and ``terms`` to reuse (optional).

    Returns:
        A :class:`LinearizedPrediction` (residuals (K, n_i) per term, loss (K,), bound (K,)), in
        the model's dtype and device.
    """
    mode = _check_mode(mode)
    lr = check_float(lr, "lr", positive=True)
    terms = check_terms(terms)
    dtype, device = model_dtype_device(model)
    if kernel is None:
        kernel = Kernel(model, terms, implementation)
    elif not isinstance(kernel, Kernel):
        raise TypeError(f"kernel: expected a pinnk.Kernel, got {type(kernel).__name__}")
    elif kernel.model is not model or [t.name for t in terms] != kernel.names:
        raise ValueError("kernel: was built for another model or other terms")
    s = _check_steps(steps, mode, dtype, device)
    w = kernel._weights(weights)
    if not bool((w > 0).any()):
        raise ValueError("weights: all weights are zero, so nothing is trained")
    sizes = kernel.sizes
    offs = _offsets(sizes)
    with torch.enable_grad():
        r0 = [t.residual(model).detach().to(dtype=dtype, device=device).reshape(-1)
              for t in terms]
    active = [i for i in range(len(terms)) if float(w[i]) > 0]
    passive = [i for i in range(len(terms)) if float(w[i]) == 0]
    ia = torch.cat([torch.arange(offs[i], offs[i + 1], device=device) for i in active])
    theta = kernel.matrix(None)
    d = torch.cat([(w[i] / sizes[i]).expand(sizes[i]) for i in active])
    sq = d.sqrt()
    S = sq[:, None] * theta[ia][:, ia] * sq[None, :]
    mu, V = torch.linalg.eigh(0.5 * (S + S.T))
    rA0 = torch.cat([r0[i] for i in active])
    c = V.T @ (sq * rA0)                                       # (N_A,)
    a = lr * mu
    U = (_decay(a, s, mode) * c[None, :]) @ V.T                 # (K, N_A): D^{1/2} r_A
    rA = U / sq[None, :]
    residuals: dict = {}
    pos = 0
    for i in active:
        residuals[terms[i].name] = rA[:, pos:pos + sizes[i]]
        pos += sizes[i]
    if passive:
        acc = (_accumulated(a, s, mode) * c[None, :]) @ V.T     # (K, N_A)
        push = (acc * sq[None, :]).T                              # D_A Σ r_A, (N_A, K)
        for i in passive:
            rows = torch.arange(offs[i], offs[i + 1], device=device)
            residuals[terms[i].name] = r0[i][None, :] - lr * (theta[rows][:, ia] @ push).T
    residuals = {t.name: residuals[t.name] for t in terms}
    term_losses = {t.name: w[i] / (2 * sizes[i]) * (residuals[t.name] ** 2).sum(-1)
                   for i, t in enumerate(terms)}
    loss = torch.stack(list(term_losses.values())).sum(0)
    loss0 = sum(w[i] / (2 * sizes[i]) * (r0[i] ** 2).sum() for i in active)
    bound, rho = _bound_curve(mu, loss0, s, lr, mode)
    return LinearizedPrediction(steps=s, residuals=residuals, term_losses=term_losses, loss=loss,
                                bound=bound, eigenvalues=mu, weights=w, lr=lr, mode=mode,
                                contraction=rho, loss0=float(loss0))


# ------------------------------------------------------------------------------------- bound
@dataclass
class LossBound:
    """The λ_min bound of seed 002 (eq. 7–8) in pinnk's convention (module docstring).

    Attributes:
        steps: shape (K,); bound: the bound on L at those steps, shape (K,).
        loss0: L at the current parameters; lambda_min, lambda_max: μ_min, μ_max of Θ̃ = Θ D
            over the trained terms; contraction: ρ (GD) or exp(−η μ_min) (flow).
        tight_rate: True when ρ = 1 − η μ_min, i.e. the bound is (1 − η λ_min)^{2k} L_0 and
            attained by the μ_min eigen-direction (η (μ_min + μ_max) ≤ 2, or the flow).
    """

    steps: torch.Tensor
    bound: torch.Tensor
    loss0: float
    lambda_min: float
    lambda_max: float
    contraction: float
    lr: float
    mode: str
    tight_rate: bool


def loss_bound(model: torch.nn.Module, terms: Sequence[Term], steps: Any, lr: float,
               weights: Any = None, *, mode: str = "gd", implementation: str = "auto",
               kernel: Kernel | None = None) -> LossBound:
    """The loss bound from λ_min of the kernel at the current parameters (seed 002, eq. 8).

        GD:    L_k ≤ ρ^{2k} L_0,  ρ = max_j |1 − η μ_j|, equal to (1 − η λ_min)^{2k} L_0 when
               η (λ_min + λ_max) ≤ 2
        flow:  L(t) ≤ exp(−2 η λ_min t) L_0

    with λ_min = λ_min(Θ̃), Θ̃ = Θ · diag(λ_i / n_i) for pinnk's loss Σ_i λ_i/(2 n_i) ‖r_i‖². It is
    exact for the linearised dynamics and holds for a real network only while its kernel stays
    near the initial one (wide networks). Arguments as :func:`linearized_prediction`.

    Returns:
        A :class:`LossBound` (``bound`` of shape (K,) in the model's dtype and device).
    """
    p = linearized_prediction(model, terms, steps, lr, weights, mode=mode,
                              implementation=implementation, kernel=kernel)
    mu = p.eigenvalues
    tight = mode == "flow" or bool(lr * (mu[0] + mu[-1]) <= 2)
    return LossBound(steps=p.steps, bound=p.bound, loss0=p.loss0, lambda_min=p.lambda_min,
                     lambda_max=p.lambda_max, contraction=p.contraction, lr=p.lr,
                     mode=p.mode, tight_rate=tight)


# -------------------------------------------------------------------------------- comparison
@dataclass
class LinearizationComparison:
    """Predicted (linearised) against actual (trained) loss curves.

    Attributes:
        steps: the recorded step counts, shape (K,) (0 first).
        predicted_loss, actual_loss: L_k, shape (K,).
        relative_deviation: |predicted − actual| / actual, shape (K,).
        max_relative_deviation: its maximum.
        predicted_residuals, actual_residuals: ``{term name: (K, n_i)}``.
        prediction: the full :class:`LinearizedPrediction` (with the bound).
        model: the trained copy (the caller's model is left unchanged).
    """

    steps: torch.Tensor
    predicted_loss: torch.Tensor
    actual_loss: torch.Tensor
    relative_deviation: torch.Tensor
    max_relative_deviation: float
    predicted_residuals: dict
    actual_residuals: dict
    prediction: LinearizedPrediction
    model: torch.nn.Module = field(repr=False)


def weighted_loss(model: torch.nn.Module, terms: Sequence[Term], weights: torch.Tensor
                  ) -> torch.Tensor:
    """L = Σ_i λ_i ‖r_i‖² / (2 n_i) (a differentiable scalar); ``weights`` (T,)."""
    return sum(float(w) * t.loss(model) for w, t in zip(weights, terms))


def compare_linearized(model: torch.nn.Module, terms: Sequence[Term], steps: int, lr: float,
                       weights: Any = None, *, record_every: int = 1,
                       implementation: str = "auto") -> LinearizationComparison:
    """Train a copy of ``model`` by full-batch gradient descent and compare with the prediction.

    The copy is trained with ``torch.optim.SGD(lr)`` (no momentum) on exactly the loss
    L = Σ_i λ_i ‖r_i‖² / (2 n_i) that :func:`linearized_prediction` linearises; the loss and the
    residuals are recorded at steps 0, ``record_every``, 2·``record_every``, …, ``steps``. For a
    model linear in its parameters the two agree to rounding; for a wide NTK-parametrised MLP
    at a small learning rate the deviation is small (and shrinks with the width).

    Args:
        model: the network at the parameters to start from (not modified).
        terms: as :func:`linearized_prediction`.
        lr: as :func:`linearized_prediction`.
        weights: as :func:`linearized_prediction`.
        implementation: as :func:`linearized_prediction`.
        steps: the number k >= 1 of gradient-descent steps.
        record_every: the recording interval (>= 1).

    Returns:
        A :class:`LinearizationComparison` (curves of shape (K,), model's dtype and device).
    """
    terms = check_terms(terms)
    steps = check_int(steps, "steps", minimum=1)
    record_every = check_int(record_every, "record_every", minimum=1)
    lr = check_float(lr, "lr", positive=True)
    dtype, device = model_dtype_device(model)
    recorded = sorted(set(range(0, steps + 1, record_every)) | {steps})
    kernel = Kernel(model, terms, implementation)
    pred = linearized_prediction(model, terms, recorded, lr, weights, kernel=kernel)
    w = pred.weights
    trained = copy.deepcopy(model)
    params = [p for p in trained.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=lr)
    actual_loss, actual_res = [], {t.name: [] for t in terms}

    def record():
        res = [t.residual(trained).detach() for t in terms]
        for t, r in zip(terms, res):
            actual_res[t.name].append(r.to(dtype=dtype, device=device))
        actual_loss.append(sum(w[i] / (2 * t.n) * (res[i] ** 2).sum()
                               for i, t in enumerate(terms)))

    record()
    for k in range(1, steps + 1):
        opt.zero_grad(set_to_none=True)
        weighted_loss(trained, terms, w).backward()
        opt.step()
        if k in recorded:
            record()
    actual = torch.stack(actual_loss).to(dtype=dtype, device=device)
    dev = (pred.loss - actual).abs() / actual.abs().clamp_min(torch.finfo(dtype).tiny)
    return LinearizationComparison(
        steps=pred.steps, predicted_loss=pred.loss, actual_loss=actual, relative_deviation=dev,
        max_relative_deviation=float(dev.max()), predicted_residuals=pred.residuals,
        actual_residuals={k: torch.stack(v) for k, v in actual_res.items()}, prediction=pred,
        model=trained)


__all__ = ["LinearizedPrediction", "LossBound", "LinearizationComparison",
           "linearized_prediction", "loss_bound", "compare_linearized", "weighted_loss"]
