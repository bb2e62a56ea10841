"""Reference solution of variable-speed linear transport by the method of characteristics.

Problem:

    u_t + a(x) u_x = 0,   x ∈ ℝ,   u(x, 0) = u0(x).

``u`` is constant along the characteristics ``dX/ds = a(X)``, hence

    u(x, t) = u0(X(0)),   where   dX/ds = a(X),  X(t) = x.

The foot point ``X(0)`` is found by integrating the characteristic backward in time with
``scipy.integrate.solve_ivp``.  Many points are integrated together as one decoupled system: with
the rescaled time ``σ ∈ [0, 1]``, ``s = t (1 − σ)``, each point's characteristic satisfies

    dY_i/dσ = −t_i a(Y_i),   Y_i(0) = x_i,   X_i(0) = Y_i(1),

so points with different times share a single integration (``t_i = 0`` gives ``Y_i ≡ x_i``).
Points are integrated in batches of ``batch_size``.  ``solve_ivp`` bounds the RMS over a batch
of the scaled local errors ``err_i / (atol + rtol |Y_i|)``; the tolerances are divided by
``sqrt(batch)`` so that the local error of *every* point obeys ``|err_i| <= atol + rtol |Y_i|``
(a single badly resolved point cannot hide in the mean).  Pure numpy/scipy.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import sparse
from scipy.integrate import solve_ivp
from ._checks import positive_int, space_time
from ._checks import real_scalar as _real_scalar

__all__ = ["transport_characteristics"]

_EXPLICIT = ("RK23", "RK45", "DOP853")
_IMPLICIT = ("Radau", "BDF", "LSODA")


def _call_vectorised(name: str, func, y: np.ndarray) -> np.ndarray:
    """Call a user function on a 1-D float64 array and check it returns finite reals of the
    same shape."""
    out = np.asarray(func(y))
    if out.dtype.kind not in "iuf":
        raise TypeError(f"{name} must return a real numeric array, got dtype {out.dtype}")
    if out.shape == () and y.shape != ():
        out = np.broadcast_to(out, y.shape)  # a constant function written as `lambda x: 2.0`
    if out.shape != y.shape:
        raise ValueError(
            f"{name} must be vectorised: called on an array of shape {y.shape} it returned "
            f"shape {out.shape}")
    out = out.astype(np.float64, copy=False)
    if not np.all(np.isfinite(out)):
        raise ValueError(f"{name} returned non-finite values")
    return out


def _integrate_batch(speed, y0: np.ndarray, tm: np.ndarray, rtol: float, atol: float,
                     method: str) -> np.ndarray:
    """Foot points of one batch: integrate ``dY/dσ = −t a(Y)`` over ``σ ∈ [0, 1]``."""
    n = y0.size
    # solve_ivp controls the RMS over components of err_i / (atol + rtol |y_i|); dividing the
    # tolerances by sqrt(n) makes that a bound on every component (max <= sqrt(n) * RMS).
    # rtol is floored at the smallest value solve_ivp accepts without clamping (100 eps).
    shrink = math.sqrt(n)
    rtol_b = max(rtol / shrink, 100.0 * np.finfo(np.float64).eps)
    atol_b = atol / shrink

    def rhs(_sigma, y):
        return -tm * np.asarray(speed(y), dtype=np.float64)

    options = {}
    if method in ("Radau", "BDF"):
        options["jac_sparsity"] = sparse.identity(n, format="csc")
    elif method == "LSODA":
        options["lband"] = 0
        options["uband"] = 0
    sol = solve_ivp(rhs, (0.0, 1.0), y0, method=method, rtol=rtol_b, atol=atol_b,
                    t_eval=[1.0], **options)
    if not sol.success or sol.y.shape[1] != 1 or not np.all(np.isfinite(sol.y[:, -1])):
        raise RuntimeError(
            f"backward integration of the characteristics failed ({sol.message}); does a "
            "characteristic leave every bounded set on [0, t]?")
    return sol.y[:, -1]


def transport_characteristics(x, t, speed, u0, rtol: float = 1e-10, atol: float = 1e-12,
                              method: str = "DOP853", return_foot: bool = False,
                              batch_size: int = 1024):
    """Solve ``u_t + a(x) u_x = 0``, ``u(x, 0) = u0(x)`` at given points by characteristics.

    ``u(x, t) = u0(X(0))`` with ``dX/ds = a(X)``, ``X(t) = x``; the characteristics are
    integrated backward from ``s = t`` to ``s = 0``, ``batch_size`` points at a time (see the
    module docstring for the rescaling to ``σ ∈ [0, 1]``).

    The speed need not be positive; it must be smooth enough (Lipschitz) for the
    characteristics to exist on ``[0, t]`` — if a characteristic escapes to infinity backward
    in time (e.g. ``a(x) = 1 + x²`` with ``arctan x − t < −π/2``) the integration fails and a
    RuntimeError is raised.

    Args:
        x: array_like of finite reals, positions.
        t: array_like of finite reals ``>= 0``, times, broadcast with ``x``.
        speed: callable ``a``; receives a 1-D float64 array of positions and returns an array
            of the same shape (a scalar is accepted for a constant speed).
        u0: callable initial data; receives a 1-D float64 array of foot points and returns an
            array of the same shape.
        rtol, atol: finite ``> 0`` local error tolerances, enforced for every point (they are
            divided by ``sqrt(batch)`` before going to ``solve_ivp``, whose norm is an RMS;
            the scaled rtol is floored at 100 machine epsilons).  The global error of the foot
            points is typically a small multiple of ``rtol · |X(0)|``.
        method: a ``solve_ivp`` method: "RK23", "RK45", "DOP853" (default), "Radau", "BDF" or
            "LSODA".  Implicit methods get the diagonal Jacobian structure of the system.
        return_foot: if True also return the foot points ``X(0)``.
        batch_size: number of points integrated together as one ODE system (default 1024).

    Returns:
        ``u``, or ``(u, foot)`` when ``return_foot`` is True: float64 numpy arrays with the
        broadcast shape of ``x`` and ``t`` (0-d arrays for scalar input).  Where ``t == 0``,
        ``foot == x`` and ``u == u0(x)``.

    Raises:
        TypeError: non-numeric ``x``/``t``/tolerances, non-callable ``speed``/``u0``, a
            non-string ``method``, non-bool ``return_foot``, non-integer ``batch_size``, or
            callables returning non-numeric arrays.
        ValueError: non-finite values, ``t < 0``, non-positive tolerances or ``batch_size``, an
            unknown ``method``, shapes that do not broadcast, callables that are not vectorised or
            return non-finite values.
        RuntimeError: ``solve_ivp`` fails (e.g. a characteristic blows up).
    """
    if not callable(speed):
        raise TypeError(f"speed must be a callable a(x), got {type(speed).__name__}")
    if not callable(u0):
        raise TypeError(f"u0 must be a callable u0(x), got {type(u0).__name__}")
    rtol = _real_scalar("rtol", rtol)
    atol = _real_scalar("atol", atol)
    if rtol <= 0.0:
        raise ValueError(f"rtol must be > 0, got {rtol!r}")
    if atol <= 0.0:
        raise ValueError(f"atol must be > 0, got {atol!r}")
    if not isinstance(method, str):
        raise TypeError(f"method must be a string, got {type(method).__name__}")
    if method not in _EXPLICIT + _IMPLICIT:
        raise ValueError(f"method must be one of {_EXPLICIT + _IMPLICIT}, got {method!r}")
    if not isinstance(return_foot, (bool, np.bool_)):
        raise TypeError(f"return_foot must be a bool, got {type(return_foot).__name__}")
    batch_size = positive_int("batch_size", batch_size)
    x, t = space_time(x, t)
    shape = x.shape
    xs = np.array(x, dtype=np.float64).ravel()  # contiguous copy
    ts = np.array(t, dtype=np.float64).ravel()

    foot = xs.copy()
    moving = ts > 0.0
    if np.any(moving):
        y0 = xs[moving]
        tm = ts[moving]
        _call_vectorised("speed", speed, y0)  # validate once, with a clear message

        foot[moving] = np.concatenate([
            _integrate_batch(speed, y0[i:i + batch_size], tm[i:i + batch_size], rtol, atol,
                             method)
            for i in range(0, y0.size, batch_size)
        ])

    u = _call_vectorised("u0", u0, foot)
    u = u.reshape(shape)
    if return_foot:
        return u, foot.reshape(shape)
    return u
