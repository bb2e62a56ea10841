"""Tests for the method-of-characteristics transport solver in problems/_characteristics.py."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.integrate import quad, solve_ivp

from problems._characteristics import transport_characteristics


def _u0(y):
    return np.sin(2.0 * y) + 0.3 * y**2


def test_constant_speed_is_a_shift():
    x = np.linspace(-3.0, 3.0, 61)
    u, foot = transport_characteristics(x, 1.3, lambda y: np.full_like(y, 2.0), _u0,
                                        return_foot=True)
    np.testing.assert_allclose(foot, x - 2.6, rtol=0, atol=1e-12)
    np.testing.assert_allclose(u, _u0(x - 2.6), rtol=0, atol=1e-11)
    # a scalar-valued speed function is accepted for a constant speed
    u2 = transport_characteristics(x, 1.3, lambda y: 2.0, _u0)
    np.testing.assert_allclose(u2, u, rtol=0, atol=1e-12)


def test_linear_speed_closed_form():
    """a(x) = c x: X(0) = x exp(−c t)."""
    c = 0.7
    x = np.linspace(-2.0, 2.0, 101)
    t = 0.9
    u, foot = transport_characteristics(x, t, lambda y: c * y, _u0, return_foot=True)
    exact_foot = x * math.exp(-c * t)
    np.testing.assert_allclose(foot, exact_foot, rtol=0, atol=1e-11)
    np.testing.assert_allclose(u, _u0(exact_foot), rtol=0, atol=1e-10)


def test_quadratic_speed_closed_form_with_broadcasting():
    """a(x) = 1 + x²: X(0) = tan(arctan x − t); x on a column, t on a row.

    (arctan x − t must stay above −π/2, else the backward characteristic escapes: see
    test_blow_up_raises_runtime_error.)"""
    x = np.linspace(-0.8, 1.5, 41)[:, None]
    t = np.array([0.0, 0.2, 0.5, 0.8])[None, :]
    u, foot = transport_characteristics(x, t, lambda y: 1.0 + y * y, _u0, return_foot=True)
    assert u.shape == foot.shape == (41, 4)
    assert u.dtype == foot.dtype == np.float64
    exact_foot = np.tan(np.arctan(x) - t)
    np.testing.assert_allclose(foot, exact_foot, rtol=1e-8, atol=1e-9)
    np.testing.assert_allclose(u, _u0(exact_foot), rtol=1e-8, atol=1e-8)
    # t == 0 column is the initial data exactly
    np.testing.assert_array_equal(foot[:, 0], x[:, 0])
    np.testing.assert_array_equal(u[:, 0], _u0(x[:, 0]))


def test_periodic_speed_against_travel_time_quadrature():
    """a(x) = 1 + 0.5 sin x: the travel time ∫_{X(0)}^{x} dξ / a(ξ) must equal t."""
    speed = lambda y: 1.0 + 0.5 * np.sin(y)  # noqa: E731
    x = np.linspace(-4.0, 4.0, 17)
    t = 1.7
    _, foot = transport_characteristics(x, t, speed, _u0, return_foot=True)
    for xi, fi in zip(x, foot):
        travel, _ = quad(lambda s: 1.0 / (1.0 + 0.5 * math.sin(s)), fi, xi, epsabs=1e-13,
                         epsrel=1e-13)
        assert travel == pytest.approx(t, rel=1e-9)
    # a > 0 so the foot lies upstream
    assert np.all(foot < x)


def test_solution_is_constant_along_forward_characteristics():
    speed = lambda y: 1.0 + 0.5 * np.sin(y)  # noqa: E731
    starts = np.linspace(-2.0, 2.0, 9)
    times = np.array([0.3, 0.8, 1.5, 2.5])
    fwd = solve_ivp(lambda s, y: speed(y), (0.0, times[-1]), starts, method="DOP853",
                    t_eval=times, rtol=1e-12, atol=1e-14)
    assert fwd.success
    X = fwd.y  # (n_starts, n_times): X(t_k) of the characteristic starting at starts[i]
    T = np.broadcast_to(times, X.shape)
    u, foot = transport_characteristics(X, T, speed, _u0, return_foot=True)
    np.testing.assert_allclose(foot, np.broadcast_to(starts[:, None], X.shape), rtol=0,
                               atol=1e-9)
    np.testing.assert_allclose(u, np.broadcast_to(_u0(starts)[:, None], X.shape), rtol=0,
                               atol=1e-9)


@pytest.mark.parametrize(
    "method,speed,exact",
    [
        ("RK45", lambda y: 0.7 * y, lambda x, t: x * np.exp(-0.7 * t)),
        ("DOP853", lambda y: 1.0 + y * y, lambda x, t: np.tan(np.arctan(x) - t)),
    ],
    ids=["RK45-linear", "DOP853-quadratic"],
)
def test_error_decreases_with_rtol(method, speed, exact):
    x = np.linspace(-1.5, 1.5, 201)
    t = 0.5
    rtols = [1e-4, 1e-6, 1e-8, 1e-10, 1e-12]
    errors = []
    for rtol in rtols:
        _, foot = transport_characteristics(x, t, speed, _u0, rtol=rtol, atol=1e-14,
                                            method=method, return_foot=True)
        errors.append(np.abs(foot - exact(x, t)).max())
    # tolerance is enforced per point, so the global error stays within a small multiple of
    # rtol; the error decreases monotonically, and every 10^4 tightening buys at least two
    # orders of magnitude (single 100x steps can gain less at loose rtol, where the step-size
    # controller takes only a couple of steps)
    for rtol, err in zip(rtols, errors):
        assert err <= 10.0 * rtol, (rtol, err)
    assert all(e_tight < e_loose for e_loose, e_tight in zip(errors[:-1], errors[1:])), errors
    assert all(e_tight < e_loose / 100.0 for e_loose, e_tight in zip(errors[:-2], errors[2:])), \
        errors
    assert errors[-1] < 1e-5 * errors[0], errors


def test_batching_does_not_change_the_accuracy():
    x = np.linspace(-1.5, 1.5, 301)
    t = 0.5
    speed = lambda y: 1.0 + y * y  # noqa: E731
    exact = np.tan(np.arctan(x) - t)
    for batch_size in (1, 7, 64, 10_000):
        _, foot = transport_characteristics(x, t, speed, _u0, return_foot=True,
                                            batch_size=batch_size)
        np.testing.assert_allclose(foot, exact, rtol=1e-8, atol=1e-9)


@pytest.mark.parametrize("method,tol", [("RK23", 1e-8), ("Radau", 1e-8), ("BDF", 1e-5),
                                        ("LSODA", 1e-6)])
def test_other_methods(method, tol):
    x = np.linspace(-1.5, 1.5, 51)
    _, foot = transport_characteristics(x, 0.5, lambda y: 1.0 + y * y, _u0, method=method,
                                        rtol=1e-10, atol=1e-12, return_foot=True)
    np.testing.assert_allclose(foot, np.tan(np.arctan(x) - 0.5), rtol=0, atol=tol)


def test_scalar_and_zero_time():
    u = transport_characteristics(0.4, 0.0, lambda y: 1.0 + y * y, _u0)
    assert isinstance(u, np.ndarray) and u.shape == () and float(u) == float(_u0(0.4))
    u, foot = transport_characteristics(0.4, 0.3, lambda y: 0.7 * y, _u0, return_foot=True)
    assert u.shape == foot.shape == ()
    assert float(foot) == pytest.approx(0.4 * math.exp(-0.21), abs=1e-12)
    # integer inputs are accepted
    assert transport_characteristics(np.array([0, 1]), 1, lambda y: 0.0 * y + 1, _u0).dtype \
        == np.float64


def test_blow_up_raises_runtime_error():
    # a = 1 + x²: tan(arctan(0) − 2) does not exist; the backward characteristic escapes
    with np.errstate(over="ignore", invalid="ignore"):
        with pytest.raises(RuntimeError, match="backward integration of the characteristics"):
            transport_characteristics(0.0, 2.0, lambda y: 1.0 + y * y, _u0)


@pytest.mark.parametrize(
    "kwargs,exc,pattern",
    [
        (dict(speed=2.0), TypeError, r"speed must be a callable"),
        (dict(u0=None), TypeError, r"u0 must be a callable"),
        (dict(rtol=0.0), ValueError, r"rtol must be > 0"),
        (dict(rtol=-1e-6), ValueError, r"rtol must be > 0"),
        (dict(atol=0.0), ValueError, r"atol must be > 0"),
        (dict(rtol=np.nan), ValueError, r"rtol must be finite"),
        (dict(atol="1e-9"), TypeError, r"atol must be a real number"),
        (dict(method="Euler"), ValueError, r"method must be one of"),
        (dict(method=3), TypeError, r"method must be a string"),
        (dict(return_foot=1), TypeError, r"return_foot must be a bool"),
        (dict(batch_size=0), ValueError, r"batch_size must be a positive integer"),
        (dict(batch_size=2.0), TypeError, r"batch_size must be a positive integer"),
        (dict(t=-1.0), ValueError, r"t must be >= 0"),
        (dict(t=np.nan), ValueError, r"t must contain only finite values"),
        (dict(x=np.array([0.0, np.inf])), ValueError, r"x must contain only finite values"),
        (dict(x=["a"]), TypeError, r"x must be a real numeric array_like"),
        (dict(x=np.zeros(3), t=np.ones(2)), ValueError, r"x and t must broadcast"),
        (dict(speed=lambda y: np.ones(3)), ValueError, r"speed must be vectorised"),
        (dict(speed=lambda y: y * np.nan), ValueError, r"speed returned non-finite values"),
        (dict(speed=lambda y: y.astype(str)), TypeError, r"speed must return a real numeric"),
        (dict(u0=lambda y: y[:1]), ValueError, r"u0 must be vectorised"),
        (dict(u0=lambda y: np.log(y - 10.0)), ValueError, r"u0 returned non-finite values"),
    ],
)
def test_bad_input(kwargs, exc, pattern):
    args = dict(x=np.linspace(-1.0, 1.0, 5), t=0.5, speed=lambda y: 1.0 + 0.0 * y, u0=_u0)
    args.update(kwargs)
    with np.errstate(invalid="ignore"):
        with pytest.raises(exc, match=pattern):
            transport_characteristics(**args)
