"""The expanded Euler residuals equal the conservative form ∂_t U + ∇·F(U) for any smooth field."""

from __future__ import annotations

import pytest
import torch
from torch.func import jacfwd, vmap

import pinnk
import problems


def smooth_field(in_dim, out_dim, positive, seed=0):
    """A random smooth field (n, in_dim) -> (n, out_dim) with positive density and pressure."""
    g = torch.Generator().manual_seed(seed)
    return pinnk.MLP(in_dim, out_dim, width=12, depth=2, generator=g, dtype=torch.float64,
                     output_transform=pinnk.Positive(positive, floor=0.1)).requires_grad_(False)


def conservative_1d(w, gamma):
    rho, u, p = w.unbind(-1)
    e = p / (gamma - 1) + 0.5 * rho * u * u
    return torch.stack([rho, rho * u, e]), torch.stack([rho * u, rho * u * u + p, u * (e + p)])


def conservative_2d(w, gamma):
    rho, u, v, p = w.unbind(-1)
    e = p / (gamma - 1) + 0.5 * rho * (u * u + v * v)
    U = torch.stack([rho, rho * u, rho * v, e])
    F = torch.stack([rho * u, rho * u * u + p, rho * u * v, u * (e + p)])
    G = torch.stack([rho * v, rho * u * v, rho * v * v + p, v * (e + p)])
    return U, F, G


@pytest.mark.parametrize("gamma", [1.4, 5.0 / 3.0])
def test_euler_1d_residuals_match_conservative_form(gamma):
    model = smooth_field(2, 3, (0, 2))
    x = torch.rand(32, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)

    def cons(y):  # y (2,) -> U (3,), F (3,)
        return conservative_1d(model(y.unsqueeze(0))[0], gamma)

    dU, dF = vmap(jacfwd(cons))(x)  # (n, 3, 2) each
    expected = dU[:, :, 1] + dF[:, :, 0]
    residuals = problems.euler_residuals_1d(gamma)
    assert list(residuals) == ["mass", "momentum", "energy"]
    for k, op in enumerate(residuals.values()):
        torch.testing.assert_close(op(model, x), expected[:, k], rtol=1e-12, atol=1e-12)


def test_euler_2d_residuals_match_conservative_form():
    gamma = 1.4
    model = smooth_field(3, 4, (0, 3), seed=2)
    x = torch.rand(32, 3, generator=torch.Generator().manual_seed(3), dtype=torch.float64)

    def cons(y):
        return conservative_2d(model(y.unsqueeze(0))[0], gamma)

    dU, dF, dG = vmap(jacfwd(cons))(x)  # (n, 4, 3) each
    expected = dU[:, :, 2] + dF[:, :, 0] + dG[:, :, 1]
    residuals = problems.euler_residuals_2d(gamma)
    assert list(residuals) == ["mass", "momentum_x", "momentum_y", "energy"]
    for k, op in enumerate(residuals.values()):
        torch.testing.assert_close(op(model, x), expected[:, k], rtol=1e-12, atol=1e-12)


def test_euler_residuals_are_differentiable_in_parameters():
    model = pinnk.MLP(2, 3, width=8, depth=2, generator=torch.Generator().manual_seed(0),
                      dtype=torch.float64, output_transform=pinnk.Positive([0, 2]))
    x = torch.rand(8, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    loss = sum((op(model, x) ** 2).mean() for op in problems.euler_residuals_1d().values())
    loss.backward()
    assert all(p.grad is not None and bool(torch.isfinite(p.grad).all())
               for p in model.parameters())


@pytest.mark.parametrize("fn", [problems.euler_residuals_1d, problems.euler_residuals_2d])
def test_gamma_is_validated(fn):
    with pytest.raises(ValueError, match="gamma: expected a ratio of specific heats > 1"):
        fn(1.0)
    with pytest.raises(ValueError, match="gamma: expected a finite number"):
        fn(float("nan"))
    with pytest.raises(TypeError, match="gamma: expected a real number"):
        fn("1.4")
