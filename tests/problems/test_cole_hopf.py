"""Tests for the Cole–Hopf Burgers reference solution in problems/_cole_hopf.py."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import sparse
from scipy.integrate import solve_ivp

from problems._cole_hopf import DEFAULT_NU, burgers_cole_hopf


def test_default_nu():
    assert DEFAULT_NU == 0.01 / math.pi


def test_initial_condition_is_exact():
    x = np.linspace(-1.0, 1.0, 101)
    np.testing.assert_array_equal(burgers_cole_hopf(x, 0.0), -np.sin(np.pi * x))
    u = burgers_cole_hopf(0.25, 0)
    assert isinstance(u, np.ndarray) and u.shape == () and u.dtype == np.float64
    assert float(u) == -math.sin(math.pi * 0.25)


def test_shapes_broadcasting_and_mixed_times():
    x = np.linspace(-1.0, 1.0, 33)
    t = np.array([0.0, 0.2, 0.7])
    u = burgers_cole_hopf(x[:, None], t[None, :])
    assert u.shape == (33, 3) and u.dtype == np.float64
    np.testing.assert_array_equal(u[:, 0], -np.sin(np.pi * x))
    np.testing.assert_allclose(u[:, 2], burgers_cole_hopf(x, 0.7), rtol=0, atol=1e-15)
    # chunking does not change the result
    np.testing.assert_allclose(burgers_cole_hopf(x[:, None], t[None, :], chunk_size=7), u,
                               rtol=0, atol=1e-15)
    # integer input is accepted
    assert burgers_cole_hopf(np.array([0, 1]), 1).dtype == np.float64


def test_odd_symmetry_and_zero_at_origin():
    x = np.linspace(0.0, 1.0, 201)
    for t in (0.1, 1.0 / math.pi, 0.5, 1.0):
        up = burgers_cole_hopf(x, t)
        um = burgers_cole_hopf(-x, t)
        np.testing.assert_allclose(um, -up, rtol=0, atol=1e-13)
        assert abs(float(burgers_cole_hopf(0.0, t))) < 1e-13
        # Dirichlet boundary values of the benchmark: u(±1, t) = 0
        assert abs(float(burgers_cole_hopf(1.0, t))) < 1e-13
        assert abs(float(burgers_cole_hopf(-1.0, t))) < 1e-13


def test_periodicity():
    x = np.linspace(-1.0, 1.0, 51)
    t = 0.6
    np.testing.assert_allclose(burgers_cole_hopf(x + 2.0, t), burgers_cole_hopf(x, t),
                               rtol=0, atol=1e-12)


def test_small_time_taylor_expansion():
    """u(x, t) = u0 + t u_t(x, 0) + O(t²), u_t(x,0) = −u0 u0' + ν u0''."""
    nu = DEFAULT_NU
    x = np.linspace(-1.0, 1.0, 101)
    u0 = -np.sin(np.pi * x)
    ut0 = -np.pi * np.sin(np.pi * x) * np.cos(np.pi * x) + nu * np.pi**2 * np.sin(np.pi * x)
    errors = []
    for t in (1e-2, 5e-3, 2.5e-3):
        errors.append(np.abs(burgers_cole_hopf(x, t) - u0 - t * ut0).max())
    # second order: halving t divides the remainder by ~4
    for e_big, e_small in zip(errors[:-1], errors[1:]):
        assert 3.5 < e_big / e_small < 4.5
    assert errors[-1] < 5e-5


@pytest.mark.parametrize("t", [0.5, 0.75])
def test_convergence_in_n_quad_away_from_shock(t):
    x = np.linspace(-1.0, 1.0, 401)
    x = x[np.abs(x) >= 0.2]
    reference = burgers_cole_hopf(x, t, n_quad=600)  # also exercises the scipy node path
    errors = [np.abs(burgers_cole_hopf(x, t, n_quad=n) - reference).max()
              for n in (8, 16, 24, 32, 48, 64)]
    assert all(e2 < e1 for e1, e2 in zip(errors[:-1], errors[1:])), errors
    assert errors[0] > 0.1  # too few nodes really is wrong ...
    assert errors[-1] < 1e-12  # ... and the rule converges spectrally
    # the default (256 nodes) is converged to rounding level on the whole interval
    x_all = np.linspace(-1.0, 1.0, 401)
    np.testing.assert_allclose(burgers_cole_hopf(x_all, t),
                               burgers_cole_hopf(x_all, t, n_quad=600), rtol=0, atol=1e-13)


def test_convergence_in_n_quad_through_the_shock():
    x = np.linspace(-1.0, 1.0, 401)
    t = 1.0
    reference = burgers_cole_hopf(x, t, n_quad=1000)
    errors = [np.abs(burgers_cole_hopf(x, t, n_quad=n) - reference).max()
              for n in (16, 32, 64, 128)]
    assert all(e2 < 1e-2 * e1 for e1, e2 in zip(errors[:-1], errors[1:])), errors
    assert errors[-1] < 1e-12


def test_maximal_slope_matches_basdevant_et_al():
    """Basdevant et al. (1986), Computers & Fluids 14: for ν = 0.01/π the maximal |u_x| is
    152.00516, reached at x = 0, t = 1.6037/π."""
    t_star = 1.6037 / math.pi
    h = 1e-6
    slope = lambda t: (burgers_cole_hopf(h, t) - burgers_cole_hopf(-h, t)) / (2 * h)  # noqa: E731
    s = float(slope(t_star))
    assert abs(abs(s) - 152.00516) < 5e-5
    # it is a maximum in time: slightly earlier and later the slope is smaller
    assert abs(float(slope(t_star - 0.01))) < abs(s)
    assert abs(float(slope(t_star + 0.01))) < abs(s)
    # and a maximum in space: the slope elsewhere is smaller
    x = np.linspace(0.01, 1.0, 100)
    grad = (burgers_cole_hopf(x + h, t_star) - burgers_cole_hopf(x - h, t_star)) / (2 * h)
    assert np.abs(grad).max() < abs(s)


def _fd_periodic_burgers(nu, n, times):
    """Second-order central finite differences on a periodic grid of n points over [−1, 1),
    integrated with BDF (sparse periodic tridiagonal Jacobian pattern)."""
    h = 2.0 / n
    x = -1.0 + h * np.arange(n)

    def rhs(_t, u):
        f = 0.5 * u * u
        return (-(np.roll(f, -1) - np.roll(f, 1)) / (2 * h)
                + nu * (np.roll(u, -1) - 2 * u + np.roll(u, 1)) / h**2)

    pattern = sparse.diags([1.0, 1.0, 1.0], [-1, 0, 1], shape=(n, n)).tolil()
    pattern[0, n - 1] = pattern[n - 1, 0] = 1
    sol = solve_ivp(rhs, (0.0, max(times)), -np.sin(np.pi * x), method="BDF", t_eval=times,
                    rtol=1e-9, atol=1e-11, jac_sparsity=pattern.tocsc())
    assert sol.success
    return x, sol.y


def test_against_finite_differences():
    """Independent method-of-lines solve, ν = 0.05/π (cheap), 2000 points; the difference is
    the O(h²) truncation error of the FD scheme (~4e-5), and halving h divides it by ~4."""
    nu = 0.05 / math.pi
    times = [0.25, 0.5, 0.9]
    errs = {}
    for n in (1000, 2000):
        x, y = _fd_periodic_burgers(nu, n, times)
        errs[n] = np.array([np.abs(y[:, j] - burgers_cole_hopf(x, t, nu=nu)).max()
                            for j, t in enumerate(times)])
    assert np.all(errs[2000] < 1e-4), errs
    ratio = errs[1000] / errs[2000]
    assert np.all((ratio > 3.5) & (ratio < 4.5)), ratio


def test_against_fourier_spectral_solution():
    """Independent pseudo-spectral solve (integrating-factor RK4, fixed step) of the periodic
    problem, ν = 0.05/π: the whole-line Cole–Hopf formula agrees to ~1e-11."""
    nu = 0.05 / math.pi
    n, dt, t_end = 512, 2e-4, 0.5
    x = -1.0 + 2.0 * np.arange(n) / n
    k = np.pi * np.fft.rfftfreq(n, d=1.0 / n)  # wavenumbers of the period-2 grid
    e_half = np.exp(-nu * k**2 * dt / 2)
    e_full = e_half * e_half

    def nonlinear(uh):
        u = np.fft.irfft(uh, n=n)
        return -0.5j * k * np.fft.rfft(u * u)

    uh = np.fft.rfft(-np.sin(np.pi * x))
    for _ in range(int(round(t_end / dt))):
        a = dt * nonlinear(uh)
        b = dt * nonlinear(e_half * (uh + a / 2))
        c = dt * nonlinear(e_half * uh + b / 2)
        d = dt * nonlinear(e_full * uh + e_half * c)
        uh = e_full * uh + (e_full * a + 2 * e_half * (b + c) + d) / 6
    u_spectral = np.fft.irfft(uh, n=n)
    np.testing.assert_allclose(burgers_cole_hopf(x, t_end, nu=nu), u_spectral, rtol=0, atol=1e-9)


def test_no_overflow_for_small_viscosity():
    # exponents up to 1/(2πν) = 500 would overflow without the log-sum-exp shift
    nu = 0.001 / math.pi
    x = np.linspace(-1.0, 1.0, 81)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        u = burgers_cole_hopf(x, 0.4, nu=nu, n_quad=300)
    assert np.all(np.isfinite(u)) and np.abs(u).max() <= 1.0 + 1e-12


@pytest.mark.parametrize(
    "kwargs,exc,pattern",
    [
        (dict(nu=0.0), ValueError, r"nu must be > 0"),
        (dict(nu=-1.0), ValueError, r"nu must be > 0"),
        (dict(nu=np.nan), ValueError, r"nu must be finite"),
        (dict(nu="0.1"), TypeError, r"nu must be a real number"),
        (dict(n_quad=0), ValueError, r"n_quad must be a positive integer"),
        (dict(n_quad=-4), ValueError, r"n_quad must be a positive integer"),
        (dict(n_quad=10.0), TypeError, r"n_quad must be a positive integer"),
        (dict(n_quad=True), TypeError, r"n_quad must be a positive integer"),
        (dict(chunk_size=0), ValueError, r"chunk_size must be a positive integer"),
        (dict(t=-0.1), ValueError, r"t must be >= 0"),
        (dict(t=np.inf), ValueError, r"t must contain only finite values"),
        (dict(x=np.array([0.0, np.nan])), ValueError, r"x must contain only finite values"),
        (dict(x="a"), TypeError, r"x must be a real numeric array_like"),
        (dict(x=np.zeros(3), t=np.ones(2)), ValueError, r"x and t must broadcast"),
    ],
)
def test_bad_input(kwargs, exc, pattern):
    args = dict(x=np.linspace(-1, 1, 5), t=0.5)
    args.update(kwargs)
    with pytest.raises(exc, match=pattern):
        burgers_cole_hopf(**args)
