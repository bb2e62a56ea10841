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


@pytest.mark.parametrize("nu", [1e-3, 0.05])
def test_viscous_1d_residuals_match_conservative_form(nu):
    """viscosity ν: the residuals are ∂_t U + ∂_x F(U) − ν ∂_xx U, with the second partials of the
    conserved variables U(ρ, u, p) taken by nested autograd (one point at a time)."""
    gamma = 1.4
    model = smooth_field(2, 3, (0, 2), seed=4)
    x = torch.rand(16, 2, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    expected = []
    for xi in x:
        y = xi.clone().requires_grad_(True)
        U, F = conservative_1d(model(y.unsqueeze(0))[0], gamma)
        row = []
        for c in range(3):
            dU = torch.autograd.grad(U[c], y, create_graph=True)[0]
            dF = torch.autograd.grad(F[c], y, create_graph=True)[0]
            U_xx = torch.autograd.grad(dU[0], y, retain_graph=True)[0][0]
            row.append(dU[1] + dF[0] - nu * U_xx)
        expected.append(torch.stack(row))
    expected = torch.stack(expected).detach()
    residuals = problems.euler_residuals_1d(gamma, viscosity=nu)
    inviscid = problems.euler_residuals_1d(gamma)
    for k, name in enumerate(["mass", "momentum", "energy"]):
        torch.testing.assert_close(residuals[name](model, x), expected[:, k], rtol=1e-11,
                                   atol=1e-12)
        # the viscous part is a correction of the size of ν (not a replacement)
        diff = (residuals[name](model, x) - inviscid[name](model, x)).abs().max()
        assert 0 < diff < 100 * nu


@pytest.mark.parametrize("nu, c", [(0.0, 0.02), (1e-3, 0.5)])
def test_compression_viscosity_matches_conservative_form(nu, c):
    """compression_viscosity c: the residuals are ∂_t U + ∂_x F(U) − ∂_x(ν(x, t) ∂_x U) with the
    field ν(x, t) = ν + c max(0, −u_x), all taken by nested autograd of the conservative form
    (one point at a time); the points cover compressions and expansions."""
    gamma = 1.4
    model = smooth_field(2, 3, (0, 2), seed=14)  # u_x < 0 at 15 of the points, > 0 at 9
    x = torch.rand(24, 2, generator=torch.Generator().manual_seed(9), dtype=torch.float64)
    expected, signs = [], []
    for xi in x:
        y = xi.clone().requires_grad_(True)
        w = model(y.unsqueeze(0))[0]
        U, F = conservative_1d(w, gamma)
        u_x = torch.autograd.grad(w[1], y, create_graph=True)[0][0]
        field = nu + c * torch.clamp(-u_x, min=0.0)
        signs.append(float(u_x.detach()))
        row = []
        for k in range(3):
            dU = torch.autograd.grad(U[k], y, create_graph=True)[0]
            dF = torch.autograd.grad(F[k], y, create_graph=True)[0]
            diffusive = torch.autograd.grad(field * dU[0], y, retain_graph=True)[0][0]
            row.append(dU[1] + dF[0] - diffusive)
        expected.append(torch.stack(row))
    expected = torch.stack(expected).detach()
    assert min(signs) < 0 < max(signs)  # both branches of max(0, −u_x)
    residuals = problems.euler_residuals_1d(gamma, viscosity=nu, compression_viscosity=c)
    for k, name in enumerate(["mass", "momentum", "energy"]):
        torch.testing.assert_close(residuals[name](model, x), expected[:, k], rtol=1e-11,
                                   atol=1e-12)
    if nu > 0:  # where the flow expands only the background ν acts
        uniform = problems.euler_residuals_1d(gamma, viscosity=nu)
        expanding = torch.tensor(signs) > 0
        for name in residuals:
            torch.testing.assert_close(residuals[name](model, x)[expanding],
                                       uniform[name](model, x)[expanding], rtol=1e-12,
                                       atol=1e-14)


def test_compression_viscosity_is_validated_and_reaches_the_terms():
    with pytest.raises(ValueError, match="compression_viscosity: expected c >= 0, got -1.0"):
        problems.euler_residuals_1d(1.4, compression_viscosity=-1.0)
    with pytest.raises(TypeError, match="compression_viscosity: expected a real number"):
        problems.get("sod", compression_viscosity="big")
    sod = problems.get("sod", viscosity=1e-4, compression_viscosity=1e-5)
    assert sod.params["compression_viscosity"] == 1e-5
    with pytest.raises(ValueError, match="compression_viscosity: the finite-volume reference"):
        sod.viscous_reference()
    model = smooth_field(2, 3, (0, 2), seed=10)
    residual = sod.terms(8, torch.Generator().manual_seed(0), torch.float64)[0]
    torch.testing.assert_close(
        residual.residual(model),
        problems.euler_residuals_1d(1.4, viscosity=1e-4, compression_viscosity=1e-5)["mass"](
            model, residual.points), rtol=1e-12, atol=1e-14)


def test_viscosity_and_damping_compose_and_are_validated():
    """κ weights the whole (viscous) residual; ν < 0 is refused by both entry points."""
    model = smooth_field(2, 3, (0, 2), seed=6)
    x = torch.rand(16, 2, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    both = problems.euler_residuals_1d(1.4, shock_damping=0.5, viscosity=0.01)
    visc = problems.euler_residuals_1d(1.4, viscosity=0.01)
    u_x = vmap(jacfwd(lambda y: model(y.unsqueeze(0))[0]))(x)[:, 1, 0]
    w = 1.0 / (0.5 * (u_x.abs() - u_x) + 1.0)
    for name in both:
        torch.testing.assert_close(both[name](model, x), w * visc[name](model, x), rtol=1e-12,
                                   atol=1e-14)
    with pytest.raises(ValueError, match="viscosity: expected ν >= 0, got -0.1"):
        problems.euler_residuals_1d(1.4, viscosity=-0.1)
    with pytest.raises(ValueError, match="viscosity: expected ν >= 0"):
        problems.get("sod", viscosity=-1e-3)
    with pytest.raises(TypeError, match="viscosity: expected a real number"):
        problems.get("lax", viscosity="small")
    sod = problems.get("sod", viscosity=2e-3)
    assert sod.params["viscosity"] == 2e-3
    residual = sod.terms(8, torch.Generator().manual_seed(0), torch.float64)[0]
    torch.testing.assert_close(residual.residual(model),
                               problems.euler_residuals_1d(1.4, viscosity=2e-3)["mass"](
                                   model, residual.points), rtol=1e-12, atol=1e-14)


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
