"""The ETDRK4 Fourier reference solver: order 4 in the step, spectral accuracy in the modes,
agreement with exact solutions, dealiasing, the dense output and its derivatives, clear errors."""

from __future__ import annotations

import math

import numpy as np
import pytest

from problems import SemilinearPDE, etdrk4
from problems._cole_hopf import burgers_cole_hopf
from problems._spectral import _Nonlinear, etdrk4_coefficients

# A KdV soliton u_t + u u_x + b u_xxx = 0: u = 3c sech²(½ √(c/b) (x − ct − x0)). On [−2, 2] its
# tails are below 1e-27 at the far end, so the periodic problem has it as an exact solution to
# round-off.
B, C, X0, L = 0.022 ** 2, 0.5, -0.5, 2.0
KDV = SemilinearPDE([0.0, 0.0, 0.0, -B], flux=[0.0, 0.0, -0.5])


def soliton(x, t, p=0):
    """∂_x^p of the soliton, p ∈ {0, 1, 3}."""
    kappa = 0.5 * math.sqrt(C / B)
    z = kappa * (((np.asarray(x) - C * t - X0 + L) % (2 * L)) - L)
    s, th = 1.0 / np.cosh(z), np.tanh(z)
    if p == 0:
        return 3 * C * s ** 2
    if p == 1:
        return -6 * C * kappa * s ** 2 * th
    if p == 3:  # (sech z)^2 differentiated three times: 8 sech^2 tanh (2 sech^2 - tanh^2)
        return 3 * C * kappa ** 3 * 8 * s ** 2 * th * (2 * s ** 2 - th ** 2)
    raise ValueError(p)


def soliton_error(modes, dt, t_end=0.5, save_every=1, points=None):
    sol = etdrk4(KDV, soliton_at0, domain=(-L, L), t_end=t_end, modes=modes, dt=dt,
                 save_every=save_every)
    x = np.linspace(-L, L, 801) if points is None else points[0]
    t = t_end if points is None else points[1]
    return float(np.max(np.abs(sol(x, t) - soliton(x, t)))), sol


def soliton_at0(x):
    return soliton(x, 0.0)


def orders(errors, factor=2.0):
    return [math.log(a / b) / math.log(factor) for a, b in zip(errors, errors[1:])]


# ------------------------------------------------------------------------------ convergence
def test_order_four_in_the_step_on_a_kdv_soliton():
    errors = [soliton_error(384, dt)[0] for dt in (1.25e-3, 6.25e-4, 3.125e-4)]
    assert errors[-1] < 3e-9
    for p in orders(errors):
        assert 3.7 <= p <= 4.4, (errors, orders(errors))


def test_order_four_in_the_step_on_an_advection_diffusion_reaction_mode():
    """u_t = −c u_x + ν u_xx + λ u with λ u handed to the solver as the (explicit) reaction term:
    u = e^{(λ − νk²) t} sin(k(x − ct)). The linear part alone is integrated exactly."""
    c, nu, lam, k = 1.3, 0.05, 0.7, 3 * math.pi

    def exact(x, t):
        return np.exp((lam - nu * k * k) * t) * np.sin(k * (x - c * t))

    pde = SemilinearPDE([0.0, -c, nu], reaction=[0.0, lam])
    x = np.linspace(-1, 1, 101)
    errs = []
    for dt in (0.1, 0.05, 0.025):
        sol = etdrk4(pde, lambda s: exact(s, 0.0), domain=(-1, 1), t_end=1.0, modes=16, dt=dt)
        errs.append(float(np.max(np.abs(sol(x, 1.0) - exact(x, 1.0)))))
    for p in orders(errs):
        assert 3.8 <= p <= 4.2, (errs, orders(errs))
    sol = etdrk4(pde, lambda s: exact(s, 0.0), domain=(-1, 1), t_end=1.0, modes=16, dt=2e-3)
    assert float(np.max(np.abs(sol(x, 1.0) - exact(x, 1.0)))) < 1e-10
    # the same PDE with λu in the linear part: exact whatever the step (one step here)
    linear = SemilinearPDE([lam, -c, nu])
    one = etdrk4(linear, lambda s: exact(s, 0.0), domain=(-1, 1), t_end=1.0, modes=16, dt=1.0)
    assert one.steps == 1
    assert float(np.max(np.abs(one(x, 1.0) - exact(x, 1.0)))) < 1e-13


def test_spectral_accuracy_in_the_modes():
    """The error falls geometrically with the number of modes (faster than any power: the local
    algebraic order log(e_1/e_2)/log(M_2/M_1) keeps growing)."""
    modes = [64, 96, 128, 160]
    errors = [soliton_error(m, 1e-3)[0] for m in modes]
    for a, b in zip(errors, errors[1:]):
        assert b < a / 5, errors
    local = [math.log(a / b) / math.log(m2 / m1)
             for a, b, m1, m2 in zip(errors, errors[1:], modes, modes[1:])]
    assert all(q2 > q1 for q1, q2 in zip(local, local[1:])), local
    assert errors[-1] < 3e-4


def test_agrees_with_the_exact_soliton_to_1e_10_everywhere_in_space_time():
    rng = np.random.default_rng(0)
    pts = (rng.uniform(-L, L, 2000), rng.uniform(0.0, 0.5, 2000))
    err, sol = soliton_error(384, 1.25e-4, save_every=2, points=pts)
    assert err < 1e-10
    x = np.linspace(-L, L, 401)
    assert float(np.max(np.abs(sol(x, 0.5) - soliton(x, 0.5)))) < 1e-10
    # derivatives from the spectral representation, in x (orders 1 and 3) and in t (u_t = −c u_x)
    for p, tol in ((1, 1e-8), (3, 1e-5)):
        got = sol.derivative(pts[0], pts[1], x_order=p)
        want = soliton(pts[0], pts[1], p)
        assert float(np.max(np.abs(got - want))) < tol * float(np.max(np.abs(want))), p
    u_t = sol.derivative(pts[0], pts[1], t_order=1)
    want = -C * soliton(pts[0], pts[1], 1)
    assert float(np.max(np.abs(u_t - want))) < 1e-7 * float(np.max(np.abs(want)))


def test_burgers_agrees_with_the_cole_hopf_solution():
    """An independent check of the flux term: viscous Burgers u_t = ν u_xx − (u²/2)_x with
    u0 = −sin πx on the period [−1, 1] against the Cole–Hopf formula."""
    nu = 0.05
    pde = SemilinearPDE([0.0, 0.0, nu], flux=[0.0, 0.0, -0.5])
    sol = etdrk4(pde, lambda x: -np.sin(np.pi * x), domain=(-1, 1), t_end=0.5, modes=256,
                 dt=1e-3)
    x = np.linspace(-1, 1, 201)
    for t in (0.1, 0.37, 0.5):
        ref = burgers_cole_hopf(x, np.full_like(x, t), nu=nu, n_quad=256)
        assert float(np.max(np.abs(sol(x, t) - ref))) < 1e-9, t


def test_the_nonlinear_term_is_dealiased_exactly():
    """N̂_m of a band-limited u equals the exact Fourier coefficient of N(u) for |m| < M/2, for a
    cubic reaction and a quadratic flux (computed on a grid four times finer)."""
    m, period = 32, 2.0
    rng = np.random.default_rng(1)
    v = np.zeros(m // 2 + 1, dtype=complex)
    v[1:m // 2] = rng.normal(size=m // 2 - 1) + 1j * rng.normal(size=m // 2 - 1)
    v[0] = rng.normal()
    k = 2 * np.pi * np.arange(m // 2 + 1) / period
    pde = SemilinearPDE([0.0], reaction=[0.3, 0.0, 0.0, -5.0], flux=[0.0, 1.0, -0.5])
    got = _Nonlinear(pde, m, k)(v)
    fine = 4 * m
    big = np.zeros(fine // 2 + 1, dtype=complex)
    big[:m // 2] = v[:m // 2]
    u = np.fft.irfft(big, n=fine) * fine
    want = (np.fft.rfft(0.3 - 5 * u ** 3) / fine)[:m // 2]
    want += 1j * k[:m // 2] * (np.fft.rfft(u - 0.5 * u ** 2) / fine)[:m // 2]
    np.testing.assert_allclose(got[:m // 2], want, rtol=0, atol=1e-12)
    assert got[m // 2] == 0
    # without padding the cubic term would alias: the plain product differs
    plain = np.fft.irfft(v, n=m) * m
    aliased = (np.fft.rfft(0.3 - 5 * plain ** 3) / m)[:m // 2]
    assert np.max(np.abs(aliased - (np.fft.rfft(0.3 - 5 * u ** 3) / fine)[:m // 2])) > 1e-3


def test_contour_coefficients_match_the_formulas_and_their_limits():
    h = 0.1
    z = np.array([1e-12, 1e-6, -3.0, 2.5, 4j, -40.0 + 7j, -1e6])
    E, E2, Q, f1, f2, f3 = etdrk4_coefficients(z, h)
    np.testing.assert_allclose(E, np.exp(z))
    np.testing.assert_allclose(E2, np.exp(z / 2))
    # where the formulas do not cancel (|z| >= 1) they are the reference
    big = np.abs(z) >= 1
    zb = z[big]
    np.testing.assert_allclose(Q[big], h * (np.exp(zb / 2) - 1) / zb, rtol=1e-12)
    np.testing.assert_allclose(f1[big], h * (-4 - zb + np.exp(zb) * (4 - 3 * zb + zb ** 2))
                               / zb ** 3, rtol=1e-11)
    np.testing.assert_allclose(f2[big], h * (2 + zb + np.exp(zb) * (zb - 2)) / zb ** 3,
                               rtol=1e-11)
    np.testing.assert_allclose(f3[big], h * (-4 - 3 * zb - zb ** 2 + np.exp(zb) * (4 - zb))
                               / zb ** 3, rtol=1e-11)
    # z -> 0: the classical RK4 weights (Q = h/2, f1 = f2 = f3 = h/6)
    # (the first-order terms are O(z): below 2e-6 relative at z = 1e-6)
    for f, limit in ((Q, h / 2), (f1, h / 6), (f2, h / 6), (f3, h / 6)):
        np.testing.assert_allclose(f[0], limit, rtol=1e-11)
        np.testing.assert_allclose(f[1], limit, rtol=2e-6)


def test_dense_output_is_fourth_order_in_the_spacing_of_the_saved_times():
    rng = np.random.default_rng(2)
    pts = (rng.uniform(-L, L, 1000), rng.uniform(0.0, 0.5, 1000))
    errs = [soliton_error(384, 1.25e-4, save_every=k, points=pts)[0] for k in (32, 16)]
    assert 3.5 <= orders(errs)[0] <= 4.5, errs


# ------------------------------------------------------------------------------ the API
def test_solution_object_and_grid_values():
    sol = etdrk4(KDV, soliton_at0, domain=(-L, L), t_end=0.1, modes=64, dt=0.01,
                 save_every=3)
    assert sol.steps == 10 and sol.step == pytest.approx(0.01)
    np.testing.assert_allclose(sol.times, [0.0, 0.03, 0.06, 0.09, 0.1])
    assert sol.coefficients.shape == sol.rates.shape == (5, 33)
    assert np.all(sol.coefficients[:, -1] == 0)
    x = sol.grid()
    np.testing.assert_allclose(sol.values_at(0), sol(x, 0.0), atol=1e-12)
    # periodic in x; broadcasting of x and t; output shape
    assert sol(np.array([[0.3], [0.3 + 2 * L]]), np.array([0.05, 0.07])).shape == (2, 2)
    np.testing.assert_allclose(sol(0.3 + 2 * L, 0.05), sol(0.3, 0.05), atol=1e-12)
    assert "SpectralSolution" in repr(sol) and "SemilinearPDE" in repr(KDV)
    # u0 given as grid values gives the same solution
    again = etdrk4(KDV, soliton_at0(x), domain=(-L, L), t_end=0.1, modes=64, dt=0.01)
    np.testing.assert_allclose(again(x, 0.1), sol(x, 0.1), atol=1e-13)


def test_pde_spec():
    ac = SemilinearPDE([5.0, 0.0, 1e-4], reaction=[0, 0, 0, -5])
    assert ac.degree == 3 and ac.has_nonlinear_part
    assert SemilinearPDE([1.0], flux=[2.0]).degree == 0  # a constant flux has no derivative
    assert not SemilinearPDE([1.0], flux=[2.0]).has_nonlinear_part
    k = np.array([0.0, 1.0, 2.0])
    np.testing.assert_allclose(ac.symbol(k), 5 - 1e-4 * k ** 2)
    np.testing.assert_allclose(KDV.symbol(k), 1j * B * k ** 3)


@pytest.mark.parametrize("kwargs, error, match", [
    ({"modes": 7}, ValueError, "modes: expected an even number >= 4"),
    ({"modes": 2}, ValueError, "modes: expected an even number >= 4"),
    ({"modes": 8.0}, TypeError, "modes must be a positive integer"),
    ({"dt": 0.0}, ValueError, "dt: expected a positive number"),
    ({"t_end": -1.0}, ValueError, "t_end: expected a positive number"),
    ({"domain": (1.0, 1.0)}, ValueError, "domain: expected a < b"),
    ({"domain": (0.0,)}, ValueError, r"domain: expected \(a, b\)"),
    ({"save_every": 0}, ValueError, "save_every must be a positive integer"),
    ({"u0": np.zeros(5)}, ValueError, r"u0: expected 8 grid values"),
    ({"u0": lambda x: x[:3]}, ValueError, r"u0: the callable returned shape \(3,\)"),
    ({"u0": np.full(8, np.nan)}, ValueError, "u0 must contain only finite values"),
    ({"pde": "kdv"}, TypeError, "pde: expected a SemilinearPDE"),
])
def test_bad_arguments_are_named(kwargs, error, match):
    args = {"pde": KDV, "u0": np.zeros(8), "domain": (0.0, 1.0), "t_end": 1.0, "modes": 8,
            "dt": 0.1}
    args.update(kwargs)
    pde, u0 = args.pop("pde"), args.pop("u0")
    with pytest.raises(error, match=match):
        etdrk4(pde, u0, **args)


def test_bad_coefficients_and_queries_are_named():
    with pytest.raises(ValueError, match=r"linear: expected at least 1 coefficient"):
        SemilinearPDE([])
    with pytest.raises(TypeError, match=r"reaction\[1\] must be a real number"):
        SemilinearPDE([1.0], reaction=[0.0, "u"])
    with pytest.raises(ValueError, match=r"flux\[2\] must be finite"):
        SemilinearPDE([1.0], flux=[0.0, 0.0, math.inf])
    with pytest.raises(TypeError, match="linear: expected a sequence"):
        SemilinearPDE("1, 2")
    sol = etdrk4(KDV, np.zeros(8), domain=(0.0, 1.0), t_end=1.0, modes=8, dt=0.5)
    with pytest.raises(ValueError, match=r"t must lie in \[0, 1\]"):
        sol(0.5, 1.5)
    with pytest.raises(ValueError, match="t_order: expected 0 or 1"):
        sol.derivative(0.5, 0.5, t_order=2)
    with pytest.raises(ValueError, match="x_order: expected an integer >= 0"):
        sol.derivative(0.5, 0.5, x_order=-1)
    with pytest.raises(ValueError, match="must broadcast"):
        sol(np.zeros(3), np.zeros(2))


def test_a_blow_up_is_reported_with_its_time():
    """u_t = u² from u = 1 blows up at t = 1."""
    pde = SemilinearPDE([0.0], reaction=[0.0, 0.0, 1.0])
    with pytest.raises(ValueError, match=r"no longer finite at t = "):
        etdrk4(pde, np.ones(8), domain=(0.0, 1.0), t_end=2.0, modes=8, dt=0.01)
