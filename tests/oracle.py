"""Brute-force references for the tests: derivatives in x by reverse-mode ``torch.autograd.grad``
(an independent path from pinnk's forward-mode operators) and Jacobians built one row at a time."""

from __future__ import annotations

import torch


def grad_x(y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """∇_x of a per-point quantity y (n,), shape (n, d), keeping the graph."""
    return torch.autograd.grad(y.sum(), x, create_graph=True)[0]


def directional_ref(model, x, H, order, component=0):
    """∂_H^k f_c by repeated reverse-mode gradients; H (n, d) held fixed."""
    x = x.detach().clone().requires_grad_(True)
    g = model(x)[:, component]
    for _ in range(order):
        g = (grad_x(g, x) * H).sum(-1)
    return g


def partial_ref(model, x, alpha, component=0, reverse=False):
    """∂^α f_c by reverse-mode gradients, differentiating coordinates in the given or reversed
    order (mixed partials must agree either way)."""
    x = x.detach().clone().requires_grad_(True)
    g = model(x)[:, component]
    seq = [k for k, a in enumerate(alpha) for _ in range(a)]
    if reverse:
        seq = seq[::-1]
    for k in seq:
        g = grad_x(g, x)[:, k]
    return g


def jacobian_oracle(residual_fn, model) -> torch.Tensor:
    """J (n, P): one ``torch.autograd.grad`` call per row of r = residual_fn() (n,)."""
    params = [p for p in model.parameters() if p.requires_grad]
    r = residual_fn()
    rows = []
    for i in range(r.shape[0]):
        gs = torch.autograd.grad(r[i], params, retain_graph=True, allow_unused=True)
        rows.append(torch.cat([(torch.zeros_like(p) if g is None else g).reshape(-1)
                               for g, p in zip(gs, params)]))
    return torch.stack(rows)


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.detach(), b.detach()
    return float((a - b).norm() / b.norm().clamp_min(1e-300))


def op_ref(model, x, op):
    """Any pinnk operator built from ``pinnk.ops`` (linear, any order, field coefficients,
    nonlinear residuals), evaluated with every derivative in x taken by repeated reverse-mode
    ``torch.autograd.grad`` (direction fields evaluated at the base point and held fixed)."""
    from pinnk._operators import Linear, Residual

    if isinstance(op, Residual):
        return op.fn(x, **{k: op_ref(model, x, inner) for k, inner in op.inputs.items()})
    parts = op.parts(x)
    if parts is not None:  # a combination of operators at other points (a periodicity defect)
        return sum(c * op_ref(model, y, inner) for c, inner, y in parts)
    if not isinstance(op, Linear):
        raise TypeError(f"op_ref: cannot evaluate {op!r}")
    total = 0.0
    for m in op.monomials(x.shape[1]):
        xx = x.detach().clone().requires_grad_(True)
        g = model(xx)[:, m.component]
        for h in m.directions:
            g = (grad_x(g, xx) * h.evaluate(x.detach())).sum(-1)
        total = total + m.coef.evaluate(x.detach()) * g
    return total
