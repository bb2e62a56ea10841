"""Cole–Hopf reference solution of the viscous Burgers equation with sine initial data.

Problem (the classic PINN benchmark):

    u_t + u u_x = ν u_xx,   x ∈ [−1, 1],   u(x, 0) = −sin(π x),   default ν = 0.01/π.

With ``u = −2ν φ_x / φ`` the equation becomes the heat equation ``φ_t = ν φ_xx`` with
``φ(x, 0) = exp(−cos(π x)/(2πν))``.  Solving it on the whole line and integrating by parts gives

    u(x, t) = − ∫ sin(π(x−η)) e^{−cos(π(x−η))/(2πν)} e^{−η²/(4νt)} dη
              / ∫ e^{−cos(π(x−η))/(2πν)} e^{−η²/(4νt)} dη.

The initial data are 2-periodic, hence so is ``φ`` and the whole-line formula is also the
solution of the periodic problem on [−1, 1] (no boundary correction needed; u(±1, t) = 0).

With ``η = sqrt(4νt) s`` both integrals take the Gauss–Hermite form ``∫ g(s) e^{−s²} ds``, which
is evaluated with ``numpy.polynomial.hermite.hermgauss``.  The factor ``e^{−cos/(2πν)}`` ranges
over ``e^{±1/(2πν)}`` (``e^{±50}`` for the default ν), so the exponents ``log w_i − cos(·)/(2πν)``
are shifted by their maximum over the nodes before exponentiating (log-sum-exp); the ratio is
unchanged and nothing overflows or underflows to a 0/0.

Pure numpy; no torch.
"""

from __future__ import annotations

import math

import numpy as np
from ._checks import positive_int, space_time
from ._checks import real_scalar as _real_scalar

__all__ = ["burgers_cole_hopf", "DEFAULT_NU"]

#: The viscosity of the standard benchmark, ν = 0.01/π.
DEFAULT_NU = 0.01 / math.pi


def _gauss_hermite(n: int):
    """Gauss–Hermite nodes and weights for the weight ``e^{-s²}`` (float64 arrays of shape (n,)).

    ``numpy.polynomial.hermite.hermgauss`` overflows for ``n`` beyond ~350, so larger rules are
    taken from ``scipy.special.roots_hermite`` (asymptotic formulas, accurate for large ``n``).
    """
    if n <= _NUMPY_HERMGAUSS_MAX:
        return np.polynomial.hermite.hermgauss(n)
    from scipy.special import roots_hermite

    return roots_hermite(n)


_NUMPY_HERMGAUSS_MAX = 300


def burgers_cole_hopf(x, t, nu: float = DEFAULT_NU, n_quad: int = 256, *,
                      chunk_size: int = 8192) -> np.ndarray:
    """Exact solution of ``u_t + u u_x = ν u_xx``, ``u(x, 0) = −sin(πx)``, by Cole–Hopf.

    Evaluates, for every point with ``t > 0``,

        u(x, t) = − Σ_i w_i sin(π(x − c s_i)) E_i / Σ_i w_i E_i,
        E_i = exp(−cos(π(x − c s_i))/(2πν) − m(x)),   c = sqrt(4νt),

    where ``(s_i, w_i)`` are the ``n_quad`` Gauss–Hermite nodes and weights and ``m(x)`` is the
    largest exponent ``log w_i − cos(·)/(2πν)`` over ``i`` (it cancels in the ratio).  Where
    ``t == 0`` the initial condition ``−sin(πx)`` is returned exactly.

    Accuracy: Gauss–Hermite converges spectrally; the integrand is sharply peaked (width
    ``~ sqrt(2ν/π)/c`` in ``s``) and, near the shock at ``x = 0`` for ``t ≳ 1/π``, its mass sits
    at ``|s| ≈ 1/c``, so ``n_quad`` must be large enough for the largest node
    (``≈ sqrt(2 n_quad)``) to reach it.  The default 256 gives about 1e-12 for ν = 0.01/π and
    ``t ∈ [0, 1]``.  Smaller ν needs more nodes.

    Args:
        x: array_like of finite reals, positions (any real x is valid; the solution is
            2-periodic and odd).
        t: array_like of finite reals ``>= 0``, broadcast with ``x``.
        nu: viscosity, finite and ``> 0`` (default 0.01/π).
        n_quad: number of Gauss–Hermite nodes, a positive integer.
        chunk_size: number of points processed at once (memory ~ chunk_size * n_quad * 8 B).

    Returns:
        float64 numpy array ``u`` with the broadcast shape of ``x`` and ``t`` (0-d for scalars).

    Raises:
        TypeError: non-numeric ``x``/``t``/``nu``, or non-integer ``n_quad``/``chunk_size``.
        ValueError: non-finite values, ``t < 0``, ``nu <= 0``, ``n_quad < 1``, shapes that do
            not broadcast.
    """
    nu = _real_scalar("nu", nu)
    if nu <= 0.0:
        raise ValueError(f"nu must be > 0 (viscosity), got {nu!r}")
    n_quad = positive_int("n_quad", n_quad)
    chunk_size = positive_int("chunk_size", chunk_size)
    x, t = space_time(x, t)

    u = np.array(-np.sin(np.pi * x), dtype=np.float64)  # exact at t == 0; overwritten where t > 0
    pos = t > 0.0
    if not np.any(pos):
        return u

    xs = x[pos]
    cs = np.sqrt(4.0 * nu * t[pos])
    nodes, weights = _gauss_hermite(n_quad)
    with np.errstate(divide="ignore"):  # tiny weights underflow to 0 for large n_quad
        log_w = np.log(weights)
    inv = 1.0 / (2.0 * np.pi * nu)

    out = np.empty(xs.shape, dtype=np.float64)
    for start in range(0, xs.size, chunk_size):
        stop = min(start + chunk_size, xs.size)
        arg = np.pi * (xs[start:stop, None] - cs[start:stop, None] * nodes[None, :])
        expo = log_w[None, :] - np.cos(arg) * inv
        expo -= expo.max(axis=1, keepdims=True)
        e = np.exp(expo)
        out[start:stop] = -(np.sin(arg) * e).sum(axis=1) / e.sum(axis=1)
    u[pos] = out
    return u
