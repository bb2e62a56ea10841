"""Elementwise activations with their derivatives of any order.

Closed forms for the built-in activations (polynomials in tanh or the sigmoid, Hermite
polynomials times a Gaussian, the cycle of sin): the Taylor-mode network passes need σ, σ', …,
σ^(K+1) for a derivative operator of order K, and the infinite-width kernels need σ^(p) of
any p.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

_INV_SQRT_2 = 1.0 / math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)


@dataclass(frozen=True)
class Activation:
    """An elementwise activation σ with its derivatives σ', σ'', σ''' (None where undefined).

    ``smoothness`` is how many times σ may be differentiated for derivative terms (0 for relu).
    ``series_fn(z, k)``, when given, returns [σ(z), σ'(z), ..., σ^(k)(z)] for any k, sharing
    work between the orders; without it, orders up to 3 come from ``d1``–``d3``.
    """

    name: str
    fn: Callable
    d1: Callable | None
    d2: Callable | None = None
    d3: Callable | None = None
    smoothness: float = math.inf
    series_fn: Callable | None = None

    @property
    def max_order(self) -> float:
        """The highest derivative order :meth:`series` can give (inf for the smooth built-ins)."""
        if self.series_fn is not None:
            return self.smoothness + 1
        k = 0
        for f in (self.d1, self.d2, self.d3):
            if f is None:
                break
            k += 1
        return k

    def series(self, z: torch.Tensor, k: int) -> list:
        """[σ(z), σ'(z), ..., σ^(k)(z)], each shaped like ``z``.

        Raises:
            ValueError: the activation has no derivative of order k.
        """
        if k > self.max_order:
            raise ValueError(f"activation: {self.name!r} has no derivative of order {k}; "
                             f"derivative terms of this order need a smooth activation (tanh, "
                             f"sin, gelu, softplus, erf)")
        if self.series_fn is not None:
            return self.series_fn(z, k)
        return [f(z) for f in (self.fn, self.d1, self.d2, self.d3)[:k + 1]]


# ------------------------------------------------------------------------ closed forms
def _chain(k: int, start: list, factor: list) -> np.ndarray:
    """P_k for P_0 = ``start`` and P_{j+1} = factor · P_j' (polynomials in increasing powers)."""
    P = np.polynomial.polynomial
    p = np.asarray(start, dtype=float)
    for _ in range(k):
        p = P.polymul(factor, P.polyder(p))
    return p


def _horner(coefs: np.ndarray, t: torch.Tensor) -> torch.Tensor:
    out = torch.full_like(t, float(coefs[-1]))
    for c in coefs[-2::-1]:
        out = out * t + float(c)
    return out


def _hermite_phys(k: int, z: torch.Tensor) -> torch.Tensor:
    """Physicists' Hermite polynomial H_k(z): H_0 = 1, H_1 = 2z, H_{n+1} = 2z H_n − 2n H_{n−1}."""
    h0, h1 = torch.ones_like(z), 2 * z
    if k == 0:
        return h0
    for n in range(1, k):
        h0, h1 = h1, 2 * z * h1 - 2 * n * h0
    return h1


def _hermite_prob(k: int, z: torch.Tensor) -> torch.Tensor:
    """Probabilists' Hermite polynomial He_k(z): He_{n+1} = z He_n − n He_{n−1}."""
    h0, h1 = torch.ones_like(z), z
    if k == 0:
        return h0
    for n in range(1, k):
        h0, h1 = h1, z * h1 - n * h0
    return h1


def _normal_pdf(z: torch.Tensor) -> torch.Tensor:
    return torch.exp(-0.5 * z * z) * _INV_SQRT_2PI


@lru_cache(maxsize=None)
def _tanh_poly(k: int) -> np.ndarray:
    return _chain(k, [0.0, 1.0], [1.0, 0.0, -1.0])          # d/dz tanh = 1 − t²


@lru_cache(maxsize=None)
def _sigmoid_poly(k: int) -> np.ndarray:
    return _chain(k, [0.0, 1.0], [0.0, 1.0, -1.0])          # d/dz sigmoid = s − s²


def _named_derivative(name: str, k: int) -> Callable | None:
    """φ^{(k)} in closed form for the built-in activations (None: not available)."""
    if name == "tanh":
        coefs = _tanh_poly(k)
        return lambda z: _horner(coefs, torch.tanh(z))
    if name == "sin":
        return [torch.sin, torch.cos, lambda z: -torch.sin(z), lambda z: -torch.cos(z)][k % 4]
    if name == "erf":
        if k == 0:
            return torch.erf
        c = _TWO_OVER_SQRT_PI * (-1) ** (k - 1)
        return lambda z: c * _hermite_phys(k - 1, z) * torch.exp(-z * z)
    if name == "gelu":
        if k == 0:
            return torch.nn.functional.gelu
        if k == 1:
            return lambda z: 0.5 * (1 + torch.erf(z * _INV_SQRT_2)) + z * _normal_pdf(z)
        # gelu = z Φ(z): gelu^{(k)} = z ϕ^{(k−1)} + k ϕ^{(k−2)}, ϕ^{(m)} = (−1)^m He_m ϕ
        return lambda z: _normal_pdf(z) * ((-1) ** (k - 1) * z * _hermite_prob(k - 1, z)
                                           + k * (-1) ** (k - 2) * _hermite_prob(k - 2, z))
    if name == "softplus":
        if k == 0:
            return torch.nn.functional.softplus
        coefs = _sigmoid_poly(k - 1)
        return lambda z: _horner(coefs, torch.sigmoid(z))
    if name == "relu":
        return {0: torch.relu, 1: lambda z: (z > 0).to(z.dtype)}.get(k)
    return None


# -------------------------------------------------------------- series of the built-ins
def _tanh(z):
    """tanh; in float64 on the CPU as 2σ(2z) − 1, which is vectorised where libm's double tanh
    is not (3–4× faster) and differs from it by a few units in the last place of 1."""
    if z.dtype == torch.float64 and z.device.type == "cpu":
        return 2.0 * torch.sigmoid(2.0 * z) - 1.0
    return torch.tanh(z)


def _tanh_series(z, k):
    t = _tanh(z)
    out = [t]
    if k >= 1:
        s = 1 - t * t
        out.append(s)
        if k >= 2:
            out.append(-2 * t * s)
        if k >= 3:
            out.append(s * (6 * t * t - 2))
        out += [_horner(_tanh_poly(j), t) for j in range(4, k + 1)]
    return out


def _sigmoid_series(s, k):
    """[s, s', ..., s^(k)] of the sigmoid from its value s."""
    out = [s]
    if k >= 1:
        ds = s * (1 - s)
        out.append(ds)
        if k >= 2:
            out.append(ds * (1 - 2 * s))
        out += [_horner(_sigmoid_poly(j), s) for j in range(3, k + 1)]
    return out


def _softplus_series(z, k):
    out = [torch.nn.functional.softplus(z)]
    if k >= 1:
        out += _sigmoid_series(torch.sigmoid(z), k - 1)
    return out


def _sin_series(z, k):
    s, c = torch.sin(z), torch.cos(z)
    cycle = [s, c, -s, -c] if k >= 2 else [s, c]
    return [cycle[j % 4] for j in range(k + 1)]


def _erf_series(z, k):
    out = [torch.erf(z)]
    if k >= 1:
        g = _TWO_OVER_SQRT_PI * torch.exp(-z * z)
        # d^m/dz^m e^{−z²} = (−1)^m H_m(z) e^{−z²}, by the recurrence of H
        h0, h1 = torch.ones_like(z), 2 * z
        out.append(g)
        for m in range(1, k):
            out.append((-1) ** m * h1 * g)
            h0, h1 = h1, 2 * z * h1 - 2 * m * h0
    return out


def _gelu_series(z, k):
    out = [torch.nn.functional.gelu(z)]
    if k >= 1:
        phi = _normal_pdf(z)
        out.append(0.5 * (1 + torch.erf(z * _INV_SQRT_2)) + z * phi)
        # gelu = z Φ(z): gelu^(m) = z ϕ^(m−1) + m ϕ^(m−2), ϕ^(j) = (−1)^j He_j ϕ
        he = [torch.ones_like(z), z]
        for m in range(2, k + 1):
            while len(he) < m:
                j = len(he) - 1
                he.append(z * he[j] - j * he[j - 1])
            out.append(phi * ((-1) ** (m - 1) * z * he[m - 1] + m * (-1) ** (m - 2) * he[m - 2]))
    return out


def _relu_series(z, k):
    out = [torch.relu(z)]
    if k >= 1:
        out.append((z > 0).to(z.dtype))
    return out


def _builtin(name: str, fn: Callable, series_fn: Callable, smoothness: float = math.inf):
    d = [(_named_derivative(name, k) if k <= smoothness + 1 else None) for k in (1, 2, 3)]
    return Activation(name, fn, d[0], d[1], d[2], smoothness=smoothness, series_fn=series_fn)


_ACTIVATIONS = {
    "tanh": _builtin("tanh", torch.tanh, _tanh_series),
    "sin": _builtin("sin", torch.sin, _sin_series),
    "gelu": _builtin("gelu", torch.nn.functional.gelu, _gelu_series),
    "softplus": _builtin("softplus", torch.nn.functional.softplus, _softplus_series),
    "erf": _builtin("erf", torch.erf, _erf_series),
    "relu": _builtin("relu", torch.relu, _relu_series, smoothness=0),
}


def activation_names() -> list[str]:
    """The names accepted by ``MLP(activation=...)``."""
    return sorted(_ACTIVATIONS)


def get_activation(activation: str | Activation) -> Activation:
    """Look up an activation by name (or pass an :class:`Activation` through)."""
    if isinstance(activation, Activation):
        return activation
    if not isinstance(activation, str):
        raise TypeError(f"activation: expected a name or an Activation, got "
                        f"{type(activation).__name__}")
    try:
        return _ACTIVATIONS[activation]
    except KeyError:
        raise ValueError(f"activation: unknown name {activation!r}; expected one of "
                         f"{', '.join(activation_names())}") from None
