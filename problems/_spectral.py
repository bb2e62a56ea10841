"""Fourier pseudo-spectral reference solver for 1D periodic semilinear PDEs: ETDRK4.

Problem: on the periodic interval [a, b) (period P = b − a), t ∈ [0, T],

    u_t = L u + N(u),      L = Σ_j c_j ∂_x^j   (constant coefficients, diagonal in Fourier space),
                           N(u) = Σ_p r_p u^p + ∂_x Σ_p q_p u^p   (a polynomial reaction and flux),

e.g. Allen–Cahn (L = ε ∂_xx + 5, N = −5u³), Korteweg–de Vries (L = −δ² ∂_xxx, N = −∂_x u²/2),
Kuramoto–Sivashinsky (L = −β ∂_xx − γ ∂_xxxx, N = −α ∂_x u²/2) or viscous Burgers.

Space: u(x) = Σ_{|m| < M/2} û_m e^{i k_m (x − a)}, k_m = 2π m / P, on M grid points (``modes``);
the Nyquist mode is kept at zero. The nonlinear term is computed on a zero-padded grid of
M' = (p + 1) M / 2 points for a polynomial of degree p (the 3/2 rule for quadratic terms, 2 for
cubic ones), which removes the aliasing of the products exactly: N̂_m is the exact Fourier
coefficient of N(u) for |m| < M/2.

Time: exponential time differencing with the fourth-order Runge–Kutta stages of Cox & Matthews
(2002), "Exponential time differencing for stiff systems", J. Comput. Phys. 176, eqs. (26)–(29).
With E = e^{hL} and v = û, one step of size h is

    a = E^{1/2} v + Q N(v),               b = E^{1/2} v + Q N(a),
    c = E^{1/2} a + Q (2N(b) − N(v)),
    v ← E v + f1 N(v) + 2 f2 (N(a) + N(b)) + f3 N(c),

    Q  = h (e^{z/2} − 1)/z,
    f1 = h (−4 − z + e^z (4 − 3z + z²))/z³,   f2 = h (2 + z + e^z (z − 2))/z³,
    f3 = h (−4 − 3z − z² + e^z (4 − z))/z³,   z = hL̂_m,

where the coefficients (which cancel catastrophically for small |z|) are evaluated as means over
a circle of radius 1 around each z (Kassam & Trefethen 2005, "Fourth-order time-stepping for stiff
PDEs", SIAM J. Sci. Comput. 26, section 3): the trapezoidal rule on the full circle, so complex
symbols (dispersive terms) are handled as well as real ones.

Output: a :class:`SpectralSolution` holding û and its time derivative û_t = L̂û + N̂(û) at the
saved times; between two saved times each Fourier coefficient is the cubic Hermite interpolant of
those values (O(H⁴) in the spacing H of the saved times, the order of the scheme), and in x the
Fourier series is summed at the requested points (spectral interpolation). Derivatives in x of any
order and the first derivative in t come from the same representation.

Pure numpy; no torch.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from ._checks import as_real_array, positive_int, real_scalar

__all__ = ["SemilinearPDE", "SpectralSolution", "etdrk4", "etdrk4_coefficients"]

#: points of the circle on which the ETDRK4 coefficients are averaged (Kassam & Trefethen use 32
#: on the upper half circle for real symbols; the full circle needs twice as many)
CONTOUR_POINTS = 64
#: points per chunk when summing Fourier series at scattered points (bounds the memory)
_CHUNK = 1024


def _coefficients(name: str, value, *, minimum_length: int = 0) -> tuple:
    if isinstance(value, (str, bytes)) or not isinstance(value, (Sequence, np.ndarray)):
        raise TypeError(f"{name}: expected a sequence of real coefficients, got "
                        f"{type(value).__name__}")
    items = list(value.ravel()) if isinstance(value, np.ndarray) else list(value)
    out = tuple(real_scalar(f"{name}[{j}]", v) for j, v in enumerate(items))
    if len(out) < minimum_length:
        raise ValueError(f"{name}: expected at least {minimum_length} coefficient(s), got "
                         f"{len(out)}")
    return out


class SemilinearPDE:
    """The right-hand side of u_t = L u + N(u) on a periodic interval.

    L = Σ_j ``linear[j]`` ∂_x^j and N(u) = Σ_p ``reaction[p]`` u^p + ∂_x Σ_p ``flux[p]`` u^p:
    index j is the derivative order, index p the power. Examples (x-derivatives):

    * Allen–Cahn u_t = 1e-4 u_xx + 5u − 5u³: ``linear=[5, 0, 1e-4]``, ``reaction=[0, 0, 0, -5]``
    * KdV u_t = −u u_x − δ² u_xxx: ``linear=[0, 0, 0, -δ²]``, ``flux=[0, 0, -0.5]``
    * Kuramoto–Sivashinsky u_t = −α u u_x − β u_xx − γ u_xxxx:
      ``linear=[0, 0, -β, 0, -γ]``, ``flux=[0, 0, -α/2]``

    Args:
        linear: the coefficients c_j of L (at least one; real).
        reaction: the coefficients of the polynomial reaction term (real; may be empty).
        flux: the coefficients of the polynomial flux whose x-derivative enters N (may be empty).

    Raises:
        TypeError / ValueError: a coefficient that is not a finite real number (the message names
            the list and the index), or an empty ``linear``.
    """

    def __init__(self, linear: Sequence[float], reaction: Sequence[float] = (),
                 flux: Sequence[float] = ()):
        self.linear = _coefficients("linear", linear, minimum_length=1)
        self.reaction = _coefficients("reaction", reaction)
        self.flux = _coefficients("flux", flux)

    @property
    def degree(self) -> int:
        """The highest power of u with a non-zero coefficient in N (0 when N is constant or 0)."""
        powers = [p for p, c in enumerate(self.reaction) if c != 0.0]
        powers += [p for p, c in enumerate(self.flux) if c != 0.0 and p > 0]
        return max(powers, default=0)

    @property
    def has_nonlinear_part(self) -> bool:
        """Whether N is not identically zero."""
        return any(c != 0.0 for c in self.reaction) or any(c != 0.0 for c in self.flux[1:])

    def symbol(self, k: np.ndarray) -> np.ndarray:
        """L̂(k) = Σ_j c_j (i k)^j for wavenumbers ``k`` (real array), complex, same shape."""
        ik = 1j * np.asarray(k, dtype=np.float64)
        out = np.zeros(ik.shape, dtype=np.complex128)
        for j, c in enumerate(self.linear):
            if c != 0.0:
                out = out + c * ik ** j
        return out

    def __repr__(self) -> str:
        return (f"SemilinearPDE(linear={list(self.linear)}, reaction={list(self.reaction)}, "
                f"flux={list(self.flux)})")


def _polyval(coef: Sequence[float], u: np.ndarray) -> np.ndarray:
    out = np.zeros_like(u)
    for c in reversed(coef):  # Horner
        out = out * u + c
    return out


class _Nonlinear:
    """N̂(v) for coefficient vectors v (..., M/2 + 1), dealiased by zero padding to M' points."""

    def __init__(self, pde: SemilinearPDE, modes: int, k: np.ndarray):
        self.pde = pde
        self.m = modes
        p = max(pde.degree, 1)
        padded = math.ceil((p + 1) * modes / 2)
        self.mp = padded + (padded % 2)
        self.ik = 1j * k
        self.has_flux = any(c != 0.0 for c in pde.flux[1:])
        self.has_reaction = any(c != 0.0 for c in pde.reaction)

    def __call__(self, v: np.ndarray) -> np.ndarray:
        half = self.m // 2
        big = np.zeros(v.shape[:-1] + (self.mp // 2 + 1,), dtype=np.complex128)
        big[..., :half] = v[..., :half]
        u = np.fft.irfft(big, n=self.mp) * self.mp
        out = np.zeros_like(v)
        if self.has_reaction:
            out[..., :half] += np.fft.rfft(_polyval(self.pde.reaction, u))[..., :half] / self.mp
        if self.has_flux:
            g = np.fft.rfft(_polyval(self.pde.flux, u))[..., :half] / self.mp
            out[..., :half] += self.ik[:half] * g
        return out


def etdrk4_coefficients(z: np.ndarray, h: float,
                        contour_points: int = CONTOUR_POINTS) -> tuple:
    """The ETDRK4 coefficients (E, E^{1/2}, Q, f1, f2, f3) for z = hL̂ (complex array).

    ``Q, f1, f2, f3`` are the h-scaled φ-function combinations of the module docstring, evaluated
    as the mean over ``contour_points`` equispaced points of the circle |ζ − z| = 1 (Kassam &
    Trefethen 2005), accurate to round-off for small and large |z| alike. Shapes follow ``z``.
    """
    z = np.asarray(z, dtype=np.complex128)
    r = np.exp(2j * np.pi * (np.arange(contour_points) + 0.5) / contour_points)
    lr = z[..., None] + r
    e = np.exp(lr)
    q = h * np.mean((np.exp(lr / 2) - 1.0) / lr, axis=-1)
    f1 = h * np.mean((-4.0 - lr + e * (4.0 - 3.0 * lr + lr ** 2)) / lr ** 3, axis=-1)
    f2 = h * np.mean((2.0 + lr + e * (lr - 2.0)) / lr ** 3, axis=-1)
    f3 = h * np.mean((-4.0 - 3.0 * lr - lr ** 2 + e * (4.0 - lr)) / lr ** 3, axis=-1)
    return np.exp(z), np.exp(z / 2), q, f1, f2, f3


class SpectralSolution:
    """A solution u(x, t) on [a, b) × [0, T] stored as Fourier coefficients at saved times.

    Attributes:
        domain: (a, b), the periodic interval.
        modes: M, the number of grid points (Fourier modes |m| < M/2).
        wavenumbers: k_m = 2π m / (b − a), m = 0..M/2, shape (M/2 + 1,).
        times: the saved times t_0 = 0 < ... < t_S = T, shape (S + 1,).
        coefficients: û_m(t_s), complex, shape (S + 1, M/2 + 1) (the Nyquist column is zero).
        rates: ∂_t û_m(t_s) = L̂ û + N̂(û), same shape.
        steps: the number of ETDRK4 steps taken; ``step``: their size h.

    Evaluation (:meth:`__call__`, :meth:`derivative`) sums the Fourier series at the points, with
    each coefficient interpolated in t by the cubic Hermite polynomial through (û, ∂_t û) at the
    two saved times around t.
    """

    def __init__(self, domain: tuple, wavenumbers: np.ndarray, times: np.ndarray,
                 coefficients: np.ndarray, rates: np.ndarray, modes: int, steps: int,
                 step: float):
        self.domain = (float(domain[0]), float(domain[1]))
        self.wavenumbers = wavenumbers
        self.times = times
        self.coefficients = coefficients
        self.rates = rates
        self.modes = modes
        self.steps = steps
        self.step = step

    @property
    def t_end(self) -> float:
        return float(self.times[-1])

    def grid(self) -> np.ndarray:
        """The M equispaced grid points a + jP/M, shape (M,)."""
        a, b = self.domain
        return a + (b - a) * np.arange(self.modes) / self.modes

    def values_at(self, index: int) -> np.ndarray:
        """u on :meth:`grid` at the saved time ``times[index]``, shape (M,)."""
        return np.fft.irfft(self.coefficients[index], n=self.modes) * self.modes

    def __call__(self, x, t) -> np.ndarray:
        """u(x, t) at points ``x``, ``t`` (array-likes broadcast together; t in [0, T])."""
        return self.derivative(x, t)

    def derivative(self, x, t, x_order: int = 0, t_order: int = 0) -> np.ndarray:
        """∂_x^p ∂_t^q u at the points (p = ``x_order`` >= 0, q = ``t_order`` ∈ {0, 1}).

        ``x`` and ``t`` are array-likes broadcast to one shape; x may be any real (the solution is
        periodic), t must lie in [0, T]. Returns a float64 array of the broadcast shape.

        Raises:
            ValueError: t outside [0, T], a bad order, or x and t that do not broadcast.
        """
        if isinstance(x_order, bool) or not isinstance(x_order, (int, np.integer)) \
                or x_order < 0:
            raise ValueError(f"x_order: expected an integer >= 0, got {x_order!r}")
        if t_order not in (0, 1) or isinstance(t_order, bool):
            raise ValueError(f"t_order: expected 0 or 1 (the time interpolant is cubic), got "
                             f"{t_order!r}")
        x = as_real_array("x", x)
        t = as_real_array("t", t)
        try:
            x, t = np.broadcast_arrays(x, t)
        except ValueError:
            raise ValueError(f"x and t must broadcast to a common shape, got x {x.shape} and "
                             f"t {t.shape}") from None
        shape = x.shape
        x, t = x.ravel(), t.ravel()
        tol = 1e-12 * max(1.0, self.t_end)
        if t.size and (t.min() < -tol or t.max() > self.t_end + tol):
            raise ValueError(f"t must lie in [0, {self.t_end:g}] (the solved interval), got values "
                             f"in [{t.min():g}, {t.max():g}]")
        t = np.clip(t, 0.0, self.t_end)
        out = np.empty(x.shape, dtype=np.float64)
        k = self.wavenumbers
        weight = np.full(k.shape, 2.0)
        weight[0] = 1.0
        mult = weight * (1j * k) ** x_order
        a = self.domain[0]
        for lo in range(0, x.size, _CHUNK):
            sl = slice(lo, lo + _CHUNK)
            c = self._in_time(t[sl], t_order)
            phase = np.exp(1j * np.outer(x[sl] - a, k))
            out[sl] = np.real(np.sum(c * phase * mult, axis=-1))
        return out.reshape(shape)

    def _in_time(self, t: np.ndarray, t_order: int) -> np.ndarray:
        """The Hermite-interpolated coefficients at times t (n,), shape (n, M/2 + 1)."""
        ts = self.times
        n = np.clip(np.searchsorted(ts, t, side="right") - 1, 0, len(ts) - 2)
        hh = (ts[n + 1] - ts[n])
        s = ((t - ts[n]) / hh)[:, None]
        hh = hh[:, None]
        if t_order == 0:
            h00, h10 = 2 * s ** 3 - 3 * s ** 2 + 1, s ** 3 - 2 * s ** 2 + s
            h01, h11 = -2 * s ** 3 + 3 * s ** 2, s ** 3 - s ** 2
            scale = 1.0
        else:
            h00, h10 = 6 * s ** 2 - 6 * s, 3 * s ** 2 - 4 * s + 1
            h01, h11 = -6 * s ** 2 + 6 * s, 3 * s ** 2 - 2 * s
            scale = 1.0 / hh
        v, dv = self.coefficients, self.rates
        return scale * (h00 * v[n] + h10 * hh * dv[n] + h01 * v[n + 1] + h11 * hh * dv[n + 1])

    def __repr__(self) -> str:
        return (f"SpectralSolution(domain={self.domain}, modes={self.modes}, "
                f"t_end={self.t_end:g}, steps={self.steps}, saved={len(self.times)})")


def _march(v: np.ndarray, lk: np.ndarray, coefficients: tuple, nonlinear, h: float, steps: int,
           saved: list) -> tuple:
    """The ETDRK4 steps from v; û and ∂_t û at the step indices ``saved``."""
    E, E2, Q, f1, f2, f3 = coefficients
    coefs = np.empty((len(saved), v.shape[-1]), dtype=np.complex128)
    rates = np.empty_like(coefs)
    j = 0
    for i in range(steps + 1):
        nv = nonlinear(v) if nonlinear is not None else np.zeros_like(v)
        if i == saved[j]:
            coefs[j] = v
            rates[j] = lk * v + nv
            j += 1
        if i == steps:
            break
        if nonlinear is None:
            v = E * v
            continue
        a = E2 * v + Q * nv
        na = nonlinear(a)
        b = E2 * v + Q * na
        nb = nonlinear(b)
        c = E2 * a + Q * (2.0 * nb - nv)
        v = E * v + f1 * nv + 2.0 * f2 * (na + nb) + f3 * nonlinear(c)
        if not np.all(np.isfinite(v)):
            raise ValueError(f"etdrk4: the solution is no longer finite at t = {(i + 1) * h:g} "
                             f"(unstable or under-resolved; try a smaller dt or more modes)")
    return coefs, rates


def etdrk4(pde: SemilinearPDE, u0: Callable | np.ndarray, *, domain: tuple, t_end: float,
           modes: int, dt: float, save_every: int = 1,
           contour_points: int = CONTOUR_POINTS) -> SpectralSolution:
    """Solve u_t = L u + N(u) on the periodic interval ``domain`` for t ∈ [0, ``t_end``].

    Main arguments:
        pde: the :class:`SemilinearPDE`.
        u0: the initial condition: a callable x (float64 array) -> u0(x), evaluated on the M grid
            points, or their M values. Its Fourier coefficients with |m| < M/2 are kept.
        domain: (a, b) with a < b; the period is b − a.
        t_end: T > 0.
        modes: M, the number of grid points, even and >= 4 (modes |m| < M/2).
        dt: the largest step; the steps are T / ceil(T / dt), so that the last one ends at T.

    Other arguments:
        save_every: keep every K-th step (and always the last), the nodes of the time
            interpolation: memory (S + 1) × (M/2 + 1) complex numbers.
        contour_points: points of the contour mean for the coefficients.

    Returns:
        A :class:`SpectralSolution`.

    Raises:
        TypeError / ValueError: bad arguments (the message names the argument); ValueError when
            the solution stops being finite (the message gives the time).
    """
    if not isinstance(pde, SemilinearPDE):
        raise TypeError(f"pde: expected a SemilinearPDE, got {type(pde).__name__}")
    if isinstance(domain, (str, bytes)) or not isinstance(domain, (Sequence, np.ndarray)) \
            or len(domain) != 2:
        raise ValueError(f"domain: expected (a, b), got {domain!r}")
    a, b = real_scalar("domain[0]", domain[0]), real_scalar("domain[1]", domain[1])
    if not b > a:
        raise ValueError(f"domain: expected a < b, got ({a!r}, {b!r})")
    t_end = real_scalar("t_end", t_end)
    if t_end <= 0.0:
        raise ValueError(f"t_end: expected a positive number, got {t_end!r}")
    modes = positive_int("modes", modes)
    if modes < 4 or modes % 2:
        raise ValueError(f"modes: expected an even number >= 4, got {modes}")
    dt = real_scalar("dt", dt)
    if dt <= 0.0:
        raise ValueError(f"dt: expected a positive number, got {dt!r}")
    save_every = positive_int("save_every", save_every)
    contour_points = positive_int("contour_points", contour_points)

    period = b - a
    x = a + period * np.arange(modes) / modes
    if callable(u0):
        values = as_real_array("u0(x)", u0(x.copy()))
        if values.shape != (modes,):
            raise ValueError(f"u0: the callable returned shape {values.shape} on {modes} grid "
                             f"points; expected ({modes},)")
    else:
        values = as_real_array("u0", u0)
        if values.shape != (modes,):
            raise ValueError(f"u0: expected {modes} grid values (shape ({modes},)), got shape "
                             f"{values.shape}")
    half = modes // 2
    k = 2.0 * np.pi * np.arange(half + 1) / period
    v = np.fft.rfft(values) / modes
    v[half] = 0.0  # the Nyquist mode: its derivatives are not real

    steps = max(1, math.ceil(t_end / dt - 1e-9))
    h = t_end / steps
    lk = pde.symbol(k)
    lk[half] = 0.0
    E, E2, Q, f1, f2, f3 = etdrk4_coefficients(h * lk, h, contour_points)
    nonlinear = _Nonlinear(pde, modes, k) if pde.has_nonlinear_part else None
    saved = list(range(0, steps + 1, save_every))
    if saved[-1] != steps:
        saved.append(steps)
    with np.errstate(over="ignore", invalid="ignore"):  # a blow-up is reported by _march
        coefs, rates = _march(v, lk, (E, E2, Q, f1, f2, f3), nonlinear, h, steps, saved)
    times = np.array(saved, dtype=np.float64) * h
    times[-1] = t_end
    return SpectralSolution((a, b), k, times, coefs, rates, modes, steps, h)
