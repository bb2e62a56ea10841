"""Infinite-width NNGP and NTK of :class:`pinnk.MLP` in NTK parametrisation (design.md §4).

For an MLP with ``depth`` hidden layers, z_1 = (σ_w/√n₀) W_1 x + σ_b b_1,
z_{l+1} = (σ_w/√n_l) W_{l+1} φ(z_l) + σ_b b_{l+1}, W, b ~ N(0, 1) and a linear last layer, the
kernels of one output component converge as the hidden widths grow (Neal 1996; Lee et al. 2018;
Jacot et al. 2018) to

    Σ¹(x, x')      = σ_w² xᵀx'/n₀ + σ_b²                                    (n₀ = d)
    Σ^{l+1}(x, x') = σ_w² E[φ(u) φ(v)] + σ_b²
    Σ̇^{l+1}(x, x') = σ_w² E[φ'(u) φ'(v)],
    (u, v) ~ N(0, [[Σ^l(x,x), Σ^l(x,x')], [Σ^l(x',x), Σ^l(x',x')]])
    Θ¹ = Σ¹,   Θ^{l+1} = Θ^l Σ̇^{l+1} + Σ^{l+1}

and the output kernels are the NNGP Σ^{depth+1} and the NTK Θ^{depth+1}; different output
components are independent (their cross kernels are 0).

The Gaussian expectations
    G_{p,q}(a, b, c) = E[φ^{(p)}(u) φ^{(q)}(v)],  (u, v) ~ N(0, [[a, c], [c, b]])
come from closed forms (erf: Williams 1997; relu: the arc-cosine kernels of Cho & Saul 2009) or,
for any smooth activation, from a tensor-product Gauss–Hermite rule. The quadrature is wrapped in
an autograd function whose derivatives follow Price's theorem,

    ∂G_{p,q}/∂c = G_{p+1,q+1},   ∂G_{p,q}/∂a = ½ G_{p+2,q},   ∂G_{p,q}/∂b = ½ G_{p,q+2},

so the kernels are differentiable in x and x' to any order by reverse-mode autograd, exactly (no
derivative of the square root of the covariance, which is singular at x = x'): use
``torch.autograd.grad`` or ``torch.func.grad``/``jacrev`` (nested too). Forward mode
(``torch.func.jvp``/``jacfwd``/``hessian``) raises NotImplementedError through the quadrature (a
custom function's forward rule does not nest in torch, so none is given rather than a silently
wrong one). Derivative blocks (paper appendix A.1: Θ' = ∂_h Θ in x, Θ'' = ∂_{h'} Θ' in x') are
per-pair derivatives of the kernel, taken by reverse mode on a grid of point pairs.

Quadrature accuracy. Gauss–Hermite converges sub-exponentially for tanh-like activations (poles
at distance π/(2σ) from the real axis, σ the pre-activation scale), and the derivative kernels
need high derivatives φ^{(p)} (each derivative of the kernel raises p + q by 2), which oscillate;
G_{p,q} therefore uses order + 10 (p + q) nodes per dimension (:func:`quadrature_order`).
Measured for tanh, depth 2, σ_w = 1.5, σ_b = 0.1, points in [−1, 1]², max relative error against
order 300, with the default order 64: value 2e-10; value × ∂ 1e-9; ∂ × ∂² 2e-8; ∂² × ∂² 2e-8;
∂³ × ∂³ 4e-7 (order 96: 6e-13, 1e-11, 6e-10, 7e-10, 3e-8). Raise ``quadrature`` for larger σ_w
or inputs. Product weights below 1e-20 of the largest are dropped and, for the odd built-in
activations (tanh, sin, erf), the z -> −z symmetry halves the nodes, so the cost grows about
linearly with the order: about 25·order nodes per point pair and expectation (half that for the
odd activations). Evaluations are memoised within one block.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any

import numpy as np
import torch

from ._activations import _ACTIVATIONS, Activation, _named_derivative, get_activation
from ._networks import MLP
from ._operators import Linear, Operator
from ._terms import Term, check_terms
from ._validation import as_points, check_float, check_int

__all__ = ["AnalyticKernel", "nngp", "ntk", "derivative_ntk", "gaussian_expectation",
           "CLOSED_FORMS", "DEFAULT_QUADRATURE"]

#: activations with closed-form Gaussian expectations G_{0,0} and G_{1,1}
CLOSED_FORMS = ("erf", "relu")
#: the default Gauss–Hermite order per dimension (DEFAULT_QUADRATURE² nodes per expectation)
DEFAULT_QUADRATURE = 64
_METHODS = ("auto", "closed_form", "quadrature")
_KERNELS = ("ntk", "nngp")
#: elements (pairs × nodes) per chunk of a quadrature evaluation
_CHUNK_ELEMENTS = 1 << 21
#: extra Gauss–Hermite order per derivative of φ (see :func:`quadrature_order`)
_ORDER_STEP = 10
#: the largest base quadrature order accepted
_MAX_QUADRATURE = 400
#: product Gauss–Hermite weights below this fraction of the largest are dropped
_PRUNE = 1e-20
#: built-in odd activations: E[φ^{(p)}(u) φ^{(q)}(v)] has an even integrand when p + q is even
_ODD = ("tanh", "sin", "erf")


# ------------------------------------------------------------------ activation derivatives
def _is_builtin(act: Activation) -> bool:
    """Whether ``act`` is one of pinnk's named activations (not a custom one of the same name)."""
    return _ACTIVATIONS.get(act.name) is act


def _autograd_derivative(base: Callable, steps: int) -> Callable:
    """The ``steps``-th derivative of an elementwise function by repeated reverse mode."""
    def fn(z: torch.Tensor) -> torch.Tensor:
        with torch.enable_grad():
            y = z.detach().requires_grad_(True)
            out = base(y)
            for _ in range(steps):
                out = torch.autograd.grad(out.sum(), y, create_graph=True,
                                          materialize_grads=True)[0]
        return out.detach()
    return fn


class _Derivatives:
    """φ, φ', φ'', ... of an activation, built on demand (closed forms for the built-in names,
    the given d1–d3 and then autograd for a custom :class:`Activation`)."""

    def __init__(self, act: Activation):
        self.act = act
        self._fns: dict = {}

    def __call__(self, k: int) -> Callable:
        if k not in self._fns:
            self._fns[k] = self._make(k)
        fn = self._fns[k]
        if fn is None:
            raise ValueError(f"activation: {self.act.name!r} has no derivative of order {k}; the "
                             f"kernel derivatives asked for need a smooth activation (tanh, sin, "
                             f"gelu, softplus, erf)")
        return fn

    def _make(self, k: int) -> Callable | None:
        act = self.act
        if k > act.smoothness + 1:
            return None
        if _is_builtin(act):
            return _named_derivative(act.name, k)
        given = [act.fn, act.d1, act.d2, act.d3]
        if k < len(given) and given[k] is not None:
            return given[k]
        m = max(j for j in range(min(k, 3) + 1) if given[j] is not None)
        return _autograd_derivative(given[m], k - m)


# ------------------------------------------------------------------------ Gaussian expectations
@lru_cache(maxsize=None)
def _hermgauss(order: int, half: bool = False) -> tuple:
    """The tensor-product Gauss–Hermite rule for E over N(0, I₂): nodes z1, z2 and weights w
    (summing to 1).

    The 1D nodes and weights come from the Golub–Welsch eigenproblem of the probabilists'
    Hermite recurrence (stable for any order, unlike the explicit weight formula). Product
    weights below 1e-20 of the largest are dropped (a disc instead of the square's corners: a
    third to a fifth of the nodes, and a dropped mass < 1e-19). With ``half``, only one of each
    pair ±z is kept, with twice the weight: exact for integrands even under z -> −z.
    """
    k = np.sqrt(np.arange(1, order, dtype=float))
    z, vecs = np.linalg.eigh(np.diag(k, 1) + np.diag(k, -1))
    w = vecs[0] ** 2
    z, w = (z - z[::-1]) / 2, (w + w[::-1]) / 2          # exactly symmetric
    z[np.abs(z) < 1e-14] = 0.0
    z1, z2 = np.meshgrid(z, z, indexing="ij")
    ww = np.outer(w, w)
    keep = ww > _PRUNE * ww.max()
    z1, z2, ww = z1[keep], z2[keep], ww[keep] / ww[keep].sum()
    if half:
        pos = (z1 > 0) | ((z1 == 0) & (z2 > 0))
        origin = (z1 == 0) & (z2 == 0)
        z1, z2, ww = z1[pos | origin], z2[pos | origin], np.where(origin, 1.0, 2.0)[pos | origin] \
            * ww[pos | origin]
    return z1, z2, ww


def quadrature_order(order: int, p: int, q: int) -> int:
    """The Gauss–Hermite order used for G_{p,q} when the base order is ``order``:
    order + STEP·(p + q). High derivatives φ^{(p)} oscillate, so the derivatives of the kernel
    (Price's theorem raises p + q by 2 per derivative in the covariance) get more nodes."""
    return order + _ORDER_STEP * (p + q)


class _Rule:
    """A Gauss–Hermite rule for one activation: G_{p,q}(a, b, c) by quadrature."""

    def __init__(self, derivs: _Derivatives, order: int):
        self.derivs = derivs
        self.order = order
        self.odd = _is_builtin(derivs.act) and derivs.act.name in _ODD
        self._nodes: dict = {}
        self.memo: dict | None = None
        self._depth = 0

    @contextlib.contextmanager
    def memoize(self):
        """Memoise G_{p,q} evaluations inside the block (see :func:`_expectation`)."""
        if self._depth == 0:
            self.memo = {}
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1
            if self._depth == 0:
                self.memo = None

    def nodes(self, order: int, half: bool, dtype, device) -> tuple:
        key = (order, half, dtype, device)
        if key not in self._nodes:
            self._nodes[key] = tuple(torch.as_tensor(v, dtype=dtype, device=device)
                                     for v in _hermgauss(order, half))
        return self._nodes[key]

    def expect(self, a: torch.Tensor, b: torch.Tensor, c: torch.Tensor, p: int,
               q: int) -> torch.Tensor:
        """E[φ^{(p)}(u) φ^{(q)}(v)] elementwise; a, b, c of one shape.

        (u, v) = L z with L the symmetric square root of K = [[a, c], [c, b]],
        L = (K + √det K · I) / √(tr K + 2√det K): exact symmetry under (a, p) ↔ (b, q), no
        division by a variance (a = 0 is fine), and at det K = 0 (x = x') the rule still
        samples u = v on order² distinct points (a Cholesky factor would reduce it to order
        points and converges about twice slower for the derivative kernels).
        """
        fp, fq = self.derivs(p), self.derivs(q)
        if self.odd and (p + q) % 2:  # an odd integrand: exactly zero
            return torch.zeros_like(a)
        # odd φ, p + q even: the integrand is even in z, half the nodes suffice
        z1, z2, w = self.nodes(quadrature_order(self.order, p, q), self.odd, a.dtype, a.device)
        shape = a.shape
        a, b, c = (t.reshape(-1) for t in (a, b, c))
        out = torch.empty_like(a)
        step = max(1, _CHUNK_ELEMENTS // w.numel())
        for s in range(0, a.numel(), step):
            aa, bb, cc = a[s:s + step, None], b[s:s + step, None], c[s:s + step, None]
            sd = torch.sqrt((aa * bb - cc * cc).clamp_min(0.0))
            tau = torch.sqrt((aa + bb + 2 * sd).clamp_min(1e-300))
            l11, l22, l12 = (aa + sd) / tau, (bb + sd) / tau, cc / tau
            u = l11 * z1 + l12 * z2
            v = l12 * z1 + l22 * z2
            out[s:s + step] = (fp(u) * fq(v)) @ w
        return out.reshape(shape)


class _GaussExpectation(torch.autograd.Function):
    """G_{p,q}(a, b, c) by quadrature; derivatives by Price's theorem (any order, reverse mode)."""

    @staticmethod
    def forward(a, b, c, p, q, rule):
        return rule.expect(a, b, c, p, q)

    @staticmethod
    def setup_context(ctx, inputs, output):
        a, b, c, p, q, rule = inputs
        ctx.save_for_backward(a, b, c)
        ctx.p, ctx.q, ctx.rule = p, q, rule

    @staticmethod
    def backward(ctx, grad):
        a, b, c = ctx.saved_tensors
        p, q, rule = ctx.p, ctx.q, ctx.rule
        need_a, need_b, need_c = ctx.needs_input_grad[:3]
        ga = 0.5 * grad * _expectation(a, b, c, p + 2, q, rule) if need_a else None
        gb = 0.5 * grad * _expectation(a, b, c, p, q + 2, rule) if need_b else None
        gc = grad * _expectation(a, b, c, p + 1, q + 1, rule) if need_c else None
        return ga, gb, gc, None, None, None

    @staticmethod
    def vmap(info, in_dims, a, b, c, p, q, rule):
        """Elementwise in (a, b, c): move the vmapped dimensions to the front and apply once
        (lets ``torch.func.grad``/``jacrev`` differentiate the kernels)."""
        def front(t, dim):
            return t.unsqueeze(0) if dim is None else t.movedim(dim, 0)
        a, b, c = (front(t, dim) for t, dim in zip((a, b, c), in_dims[:3]))
        a, b, c = torch.broadcast_tensors(a, b, c)
        if a.shape[0] != info.batch_size:
            a, b, c = (t.expand(info.batch_size, *t.shape[1:]) for t in (a, b, c))
        return _expectation(a, b, c, p, q, rule), 0


def _tensor_key(t: torch.Tensor) -> tuple:
    return (t.data_ptr(), t._version, tuple(t.shape), t.stride(), t.storage_offset(), t.dtype,
            t.device)


def _expectation(a, b, c, p: int, q: int, rule: "_Rule") -> torch.Tensor:
    """G_{p,q}(a, b, c) through :class:`_GaussExpectation`, memoised while ``rule.memo`` is
    active: the nested backward passes of a derivative block ask for the same (a, b, c, p, q)
    many times (the saved a, b, c share their storage and autograd history, so a cached result
    is the same node of the graph)."""
    memo = rule.memo
    if memo is None:
        return _GaussExpectation.apply(a, b, c, p, q, rule)
    try:
        key = (_tensor_key(a), _tensor_key(b), _tensor_key(c), p, q, torch.is_grad_enabled())
    except RuntimeError:  # tensors without storage (e.g. under torch.func transforms)
        return _GaussExpectation.apply(a, b, c, p, q, rule)
    hit = memo.get(key)
    if hit is None:
        hit = (_GaussExpectation.apply(a, b, c, p, q, rule), (a, b, c))  # keep a, b, c alive
        memo[key] = hit
    return hit[0]


def _erf_expect(a, b, c, p):
    d = (1 + 2 * a) * (1 + 2 * b)
    if p == 0:  # Williams (1997)
        return (2 / math.pi) * torch.asin(2 * c / torch.sqrt(d))
    return (4 / math.pi) / torch.sqrt(d - 4 * c * c)


def _relu_expect(a, b, c, p):
    """Arc-cosine kernels (Cho & Saul 2009): with cos θ = c/√(ab),
    E[relu(u) relu(v)] = (√(ab − c²) + (π − θ) c) / (2π),  E[step(u) step(v)] = (π − θ)/(2π)."""
    ab = a * b
    norm = torch.sqrt(ab.clamp_min(1e-300))
    theta = torch.acos((c / norm).clamp(-1.0, 1.0))
    if p == 0:
        return (torch.sqrt((ab - c * c).clamp_min(0.0)) + (math.pi - theta) * c) / (2 * math.pi)
    return (math.pi - theta) / (2 * math.pi)


_CLOSED = {"erf": _erf_expect, "relu": _relu_expect}


def gaussian_expectation(a: Any, b: Any, c: Any, activation: str | Activation = "erf",
                         p: int = 0, q: int | None = None, *, method: str = "auto",
                         quadrature: int | None = None) -> torch.Tensor:
    """G_{p,q}(a, b, c) = E[φ^{(p)}(u) φ^{(q)}(v)] for (u, v) ~ N(0, [[a, c], [c, b]]).

    Args:
        a: the variance of u, a tensor (a ≥ 0); a, b and c broadcast to one shape.
        b: the variance of v, a tensor (b ≥ 0).
        c: the covariance of u and v, a tensor (c² ≤ ab).
        activation: φ, a name of :func:`pinnk.activation_names` or an :class:`Activation`.
        p: the derivative order of the first factor; the closed forms cover (p, q) = (0, 0)
            and (1, 1).
        q: the derivative order of the second factor (default p).
        method: ``"auto"`` (the closed form when there is one for (p, q), else quadrature),
            ``"closed_form"`` or ``"quadrature"``.
        quadrature: the Gauss–Hermite order per dimension (default :data:`DEFAULT_QUADRATURE`).

    Returns:
        A tensor of the broadcast shape, differentiable in (a, b, c) (Price's theorem for the
        quadrature).
    """
    q = p if q is None else q
    p, q = check_int(p, "p", minimum=0), check_int(q, "q", minimum=0)
    spec = _Spec(activation, method, quadrature)
    a, b, c = torch.broadcast_tensors(*(t if isinstance(t, torch.Tensor)
                                        else torch.as_tensor(t, dtype=torch.float64)
                                        for t in (a, b, c)))
    if spec.closed and (p, q) in ((0, 0), (1, 1)):
        return spec.closed(a, b, c, p)
    if spec.closed and method == "closed_form":
        raise ValueError(f"method: the closed form covers (p, q) = (0, 0) and (1, 1), got "
                         f"({p}, {q}); use method='auto' or 'quadrature'")
    if spec.closed:  # "auto": the quadrature covers the other orders
        spec = _Spec(activation, "quadrature", quadrature)
    return _expectation(a, b, c, p, q, spec.rule)


class _Spec:
    """The resolved activation and expectation strategy."""

    def __init__(self, activation, method, quadrature):
        self.act = get_activation(activation)
        if not isinstance(method, str) or method not in _METHODS:
            raise ValueError(f"method: expected one of {', '.join(map(repr, _METHODS))}, got "
                             f"{method!r}")
        if quadrature is not None:
            quadrature = check_int(quadrature, "quadrature", minimum=2)
            if quadrature > _MAX_QUADRATURE:
                raise ValueError(f"quadrature: expected an order <= {_MAX_QUADRATURE} "
                                 f"({_MAX_QUADRATURE}² nodes per expectation), got {quadrature}")
        has_closed = self.act.name in _CLOSED and _is_builtin(self.act)
        if method == "closed_form" and not has_closed:
            raise ValueError(f"method: activation {self.act.name!r} has no closed form (those "
                             f"with one: {', '.join(CLOSED_FORMS)}); use 'auto' or 'quadrature'")
        use_closed = has_closed and method != "quadrature"
        self.method = "closed_form" if use_closed else "quadrature"
        self.closed = _CLOSED[self.act.name] if use_closed else None
        self.quadrature = None if use_closed else (quadrature or DEFAULT_QUADRATURE)
        self.rule = None if use_closed else _Rule(_Derivatives(self.act), self.quadrature)


# ------------------------------------------------------------------------------- the kernel
class AnalyticKernel:
    """The infinite-width NNGP and NTK of an NTK-parametrised :class:`pinnk.MLP`.

    Args:
        depth: the number of hidden layers (``MLP(depth=...)``), ≥ 1; the output kernels are
            Σ^{depth+1} and Θ^{depth+1}.
        activation: a name of :func:`pinnk.activation_names` or an :class:`Activation`.
        sigma_w: σ_w > 0, the weight scale (``MLP(sigma_w=...)``).
        sigma_b: σ_b ≥ 0, the bias scale (``MLP(sigma_b=...)``).
        method: how the Gaussian expectations are computed: ``"auto"`` (the closed form for erf
            and relu, quadrature otherwise), ``"closed_form"`` or ``"quadrature"``.
        quadrature: the Gauss–Hermite order per dimension (order² nodes per expectation;
            default :data:`DEFAULT_QUADRATURE`), used by the quadrature method.

    Recursion (module docstring): Σ¹ = σ_w² xᵀx'/d + σ_b², Σ^{l+1} = σ_w² E[φ(u)φ(v)] + σ_b²,
    Σ̇^{l+1} = σ_w² E[φ'(u)φ'(v)], Θ¹ = Σ¹, Θ^{l+1} = Θ^l Σ̇^{l+1} + Σ^{l+1}.

    All results follow the dtype and device of the points (use float64 for accuracy) and are
    differentiable in the points by reverse-mode autograd (``torch.autograd``,
    ``torch.func.grad``/``jacrev``), to any order for a smooth activation (the relu closed form
    has an infinite derivative at x = x'). Forward mode (``torch.func.jvp``) raises through the
    quadrature. See the module docstring for the quadrature accuracy.
    """

    def __init__(self, depth: int, activation: str | Activation = "erf", sigma_w: float = 1.0,
                 sigma_b: float = 0.1, *, method: str = "auto", quadrature: int | None = None):
        self.depth = check_int(depth, "depth", minimum=1)
        self._spec = _Spec(activation, method, quadrature)
        self.activation = self._spec.act
        self.sigma_w = check_float(sigma_w, "sigma_w", positive=True)
        self.sigma_b = check_float(sigma_b, "sigma_b", nonnegative=True)

    @classmethod
    def from_model(cls, model: MLP, *, method: str = "auto",
                   quadrature: int | None = None) -> "AnalyticKernel":
        """The infinite-width limit of ``model``: an NTK-parametrised :class:`pinnk.MLP` without
        embedding or output transform (depth, activation, σ_w and σ_b are read from it)."""
        if not isinstance(model, MLP):
            raise TypeError(f"model: expected a pinnk.MLP, got {type(model).__name__}")
        if model.parametrization != "ntk":
            raise ValueError(f"model: the analytic kernel is the limit of the NTK "
                             f"parametrisation, got parametrization={model.parametrization!r}")
        if model.embedding is not None:
            raise ValueError("model: has an input embedding; the analytic kernel covers the plain "
                             "MLP on its input")
        if model.output_transform is not None:
            raise ValueError("model: has an output transform; the analytic kernel covers the "
                             "plain MLP")
        return cls(model.depth, model.act, model.sigma_w, model.sigma_b, method=method,
                   quadrature=quadrature)

    # ------------------------------------------------------------------------- properties
    @property
    def method(self) -> str:
        """``"closed_form"`` or ``"quadrature"``: the strategy in use."""
        return self._spec.method

    @property
    def quadrature(self) -> int | None:
        """The Gauss–Hermite order per dimension (None with the closed form)."""
        return self._spec.quadrature

    def __repr__(self) -> str:
        extra = f", quadrature={self.quadrature}" if self.quadrature else ""
        return (f"AnalyticKernel(depth={self.depth}, activation={self.activation.name!r}, "
                f"sigma_w={self.sigma_w:g}, sigma_b={self.sigma_b:g}, method={self.method!r}"
                f"{extra})")

    # -------------------------------------------------------------------------- core
    def _expect(self, a, b, c, p):
        a, b, c = torch.broadcast_tensors(a, b, c)
        if self._spec.closed is not None:
            return self._spec.closed(a, b, c, p)
        return _expectation(a, b, c, p, p, self._spec.rule)

    def _recursion(self, xx, yy, xy, d: int, want: str) -> torch.Tensor:
        """The output kernel from the inner products xᵀx (shape A), x'ᵀx' (B), xᵀx' (C), with
        A, B broadcastable to C; ``want`` is "nngp" or "ntk"."""
        sw2, sb2 = self.sigma_w ** 2, self.sigma_b ** 2
        a = sw2 * xx / d + sb2
        b = sw2 * yy / d + sb2
        c = sw2 * xy / d + sb2
        theta = c
        for _ in range(self.depth):
            if want == "ntk":
                theta = theta * (sw2 * self._expect(a, b, c, 1))
            c = sw2 * self._expect(a, b, c, 0) + sb2
            a = sw2 * self._expect(a, a, a, 0) + sb2
            b = sw2 * self._expect(b, b, b, 0) + sb2
            if want == "ntk":
                theta = theta + c
        return theta if want == "ntk" else c

    def _matrix(self, x1, x2, want):
        x1, x2 = _points_pair(x1, x2)
        xx = (x1 * x1).sum(-1)[:, None]
        yy = (x2 * x2).sum(-1)[None, :]
        return self._recursion(xx, yy, x1 @ x2.T, x1.shape[1], want)

    # ------------------------------------------------------------------------ public
    def nngp(self, x1: Any, x2: Any = None) -> torch.Tensor:
        """The NNGP kernel Σ^{depth+1}(x1_i, x2_j), shape (n1, n2).

        x1: (n1, d), x2: (n2, d) (default x1), floating (float64 recommended). The covariance of
        one output component of the randomly initialised network.
        """
        return self._matrix(x1, x2, "nngp")

    def ntk(self, x1: Any, x2: Any = None) -> torch.Tensor:
        """The NTK Θ^{depth+1}(x1_i, x2_j), shape (n1, n2), of one output component.

        x1: (n1, d), x2: (n2, d) (default x1). The limit of ``pinnk.ntk(model, [Term(…,
        ops.value(), x1), Term(…, ops.value(), x2)]).block(0, 1)`` as the widths grow.
        """
        return self._matrix(x1, x2, "ntk")

    def block(self, op_a: Operator, x1: Any, op_b: Operator | None = None, x2: Any = None, *,
              kernel: str = "ntk") -> torch.Tensor:
        """The kernel block of two linear operators: D_a^{x} D_b^{x'} K(x, x'), shape (n1, n2).

        The analytic counterpart of ``pinnk.ntk(model, [Term(a, op_a, x1), Term(b, op_b,
        x2)]).block(0, 1)`` (paper appendix A.1: Θ' = ∂_h Θ in x, Θ'' = ∂_{h'} Θ' in x').

        Args:
            op_a: a linear :mod:`pinnk.ops` operator (``value``, ``directional`` of any
                order with a constant or field direction, ``partial``, ``laplacian``,
                ``transport``, linear combinations with constant or field coefficients).
                Monomials on different output components do not couple (their kernel is 0).
            x1: (n1, d) points of op_a.
            op_b: the operator at ``x2``, of the same kinds (default ``op_a``).
            x2: (n2, d) points of op_b (default x1).
            kernel: ``"ntk"`` (Θ) or ``"nngp"`` (Σ, the prior covariance of the derivatives).

        Derivatives are taken per point pair by reverse-mode autograd on a grid of pairs (a
        field direction h(x) is evaluated at the base point and held fixed, as in
        :func:`pinnk.ops.directional`). Any derivative order needs a smooth activation: relu
        raises a ValueError.
        """
        if op_b is None:
            op_b = op_a
        x1, x2 = _points_pair(x1, x2)
        if not isinstance(kernel, str) or kernel not in _KERNELS:
            raise ValueError(f"kernel: expected 'ntk' or 'nngp', got {kernel!r}")
        d = x1.shape[1]
        monos_a = self._monomials(op_a, "op_a", d)
        monos_b = self._monomials(op_b, "op_b", d)
        out = torch.zeros(x1.shape[0], x2.shape[0], dtype=x1.dtype, device=x1.device)
        # value-only operators: the (cheaper) matrix path; otherwise one grid of pairs
        plain = all(not m.directions for m in monos_a + monos_b)
        source = None
        with self._memoize():
            for ma in monos_a:
                ca = ma.coef.evaluate(x1)
                for mb in monos_b:
                    if ma.component != mb.component:
                        continue
                    if source is None:
                        source = self._matrix(x1, x2, kernel) if plain \
                            else _PairGrid(self, x1, x2, kernel)
                    term = source if plain else source.derivative(ma.directions, mb.directions)
                    cb = mb.coef.evaluate(x2)
                    if not (isinstance(ca, float) and ca == 1.0):
                        term = (ca[:, None] if isinstance(ca, torch.Tensor) else ca) * term
                    if not (isinstance(cb, float) and cb == 1.0):
                        term = term * (cb[None, :] if isinstance(cb, torch.Tensor) else cb)
                    out = out + term
        return out

    def matrix(self, terms: Sequence[Term], *, kernel: str = "ntk") -> torch.Tensor:
        """The full multi-block kernel of ``terms`` (their operators and points; targets are
        ignored), shape (Σ n_i, Σ n_i), symmetric positive semi-definite: block (i, j) is
        :meth:`block` of terms i and j. The analytic counterpart of ``pinnk.ntk(model,
        terms).matrix()``."""
        terms = check_terms(terms)
        rows = []
        blocks: dict = {}
        for i, ti in enumerate(terms):
            row = []
            for j, tj in enumerate(terms):
                if j < i:
                    row.append(blocks[(j, i)].T)
                else:
                    blocks[(i, j)] = self.block(ti.operator, ti.points, tj.operator, tj.points,
                                                kernel=kernel)
                    row.append(blocks[(i, j)])
            rows.append(torch.cat(row, dim=1))
        return torch.cat(rows, dim=0)

    # ------------------------------------------------------------------------ derivatives
    def _monomials(self, op: Any, name: str, d: int) -> list:
        if not isinstance(op, Operator):
            raise TypeError(f"{name}: expected a pinnk.ops operator, got {type(op).__name__}")
        if not isinstance(op, Linear):
            raise ValueError(f"{name}: the analytic kernel needs a linear operator (value, "
                             f"directional, partial, laplacian, transport and their linear "
                             f"combinations), got {op!r}")
        order = op.order
        act = self.activation
        if order > 0 and (act.smoothness < order or act.name == "relu"):
            raise ValueError(f"{name}: activation {act.name!r} is not differentiable {order} "
                             f"time(s); derivative kernels need a smooth activation (tanh, sin, "
                             f"gelu, softplus, erf)")
        monos = op.monomials(d)
        for m in monos:
            for h in m.directions:
                if h.field is None:
                    h.evaluate(torch.zeros(1, d))  # dimension checks with a clear message
        return monos

    def _memoize(self):
        rule = self._spec.rule
        return contextlib.nullcontext() if rule is None else rule.memoize()


class _PairGrid:
    """K(x1_i, x2_j) on a grid of point pairs, with per-pair derivatives in x and x'.

    X1 (n1, n2, d) holds x1_i and X2 (n1, n2, d) holds x2_j, each pair its own copy, so the
    gradient of Σ K with respect to X1 is the per-pair gradient ∇_x K(x1_i, x2_j). Directional
    derivatives are taken one after the other (x first, then x') by reverse mode with
    ``create_graph``; shared prefixes (∂_{e0} of ∂_{e0}∂_{e0} and ∂_{e0}∂_{e1}) are computed
    once.
    """

    def __init__(self, kernel: AnalyticKernel, x1: torch.Tensor, x2: torch.Tensor, which: str):
        n1, n2, d = x1.shape[0], x2.shape[0], x1.shape[1]
        self.x1, self.x2 = x1, x2
        self.keep = torch.is_grad_enabled() and (x1.requires_grad or x2.requires_grad)
        with torch.enable_grad():
            X1 = x1[:, None, :].expand(n1, n2, d).clone()
            X2 = x2[None, :, :].expand(n1, n2, d).clone()
            for X in (X1, X2):
                if not X.requires_grad:
                    X.requires_grad_(True)
            val = kernel._recursion((X1 * X1).sum(-1), (X2 * X2).sum(-1), (X1 * X2).sum(-1), d,
                                    which)
        self.X1, self.X2 = X1, X2
        self._cache: dict = {((), ()): val}
        self._tangents: dict = {}

    def _tangent(self, h, side: int) -> torch.Tensor:
        key = (h.key, side)
        if key not in self._tangents:
            # a field direction is evaluated at the base point and held fixed
            t = h.evaluate(self.x1)[:, None, :] if side == 0 else h.evaluate(self.x2)[None, :, :]
            self._tangents[key] = t
        return self._tangents[key]

    def derivative(self, dirs_a: tuple, dirs_b: tuple) -> torch.Tensor:
        """∂_{h_a1}···∂_{h_ak} in x and ∂_{h_b1}···∂_{h_bm} in x' of K, shape (n1, n2)
        (attached to the points' graph only when they require grad)."""
        out = self._derivative(dirs_a, dirs_b)
        return out if self.keep else out.detach()

    def _derivative(self, dirs_a: tuple, dirs_b: tuple) -> torch.Tensor:
        ka = tuple(h.key for h in dirs_a)
        kb = tuple(h.key for h in dirs_b)
        if (ka, kb) in self._cache:
            out = self._cache[(ka, kb)]
        else:
            if kb:
                prev = self._derivative(dirs_a, dirs_b[:-1])
                X, t = self.X2, self._tangent(dirs_b[-1], 1)
            else:
                prev = self._derivative(dirs_a[:-1], ())
                X, t = self.X1, self._tangent(dirs_a[-1], 0)
            with torch.enable_grad():
                g = torch.autograd.grad(prev.sum(), X, create_graph=True,
                                        materialize_grads=True)[0]
                out = (g * t).sum(-1)
            self._cache[(ka, kb)] = out
        return out


# ------------------------------------------------------------------------------- helpers
def _points_pair(x1: Any, x2: Any) -> tuple:
    x1 = as_points(x1, "x1")
    x2 = x1 if x2 is None else as_points(x2, "x2")
    if x2.shape[1] != x1.shape[1]:
        raise ValueError(f"x2: expected points of dimension {x1.shape[1]} like x1, got shape "
                         f"{tuple(x2.shape)}")
    if x2.dtype != x1.dtype or x2.device != x1.device:
        dtype = torch.promote_types(x1.dtype, x2.dtype)
        x1, x2 = x1.to(dtype), x2.to(dtype=dtype, device=x1.device)
    return x1, x2


# ------------------------------------------------------------------------ functional API
def nngp(x1: Any, x2: Any, depth: int, activation: str | Activation = "erf",
         sigma_w: float = 1.0, sigma_b: float = 0.1, *, method: str = "auto",
         quadrature: int | None = None) -> torch.Tensor:
    """The infinite-width NNGP kernel Σ^{depth+1}(x1_i, x2_j), shape (n1, n2).

    Shorthand for ``AnalyticKernel(depth, activation, sigma_w, sigma_b, method=…,
    quadrature=…).nngp(x1, x2)``; x1 (n1, d), x2 (n2, d) or None for x1.
    """
    return AnalyticKernel(depth, activation, sigma_w, sigma_b, method=method,
                          quadrature=quadrature).nngp(x1, x2)


def ntk(x1: Any, x2: Any, depth: int, activation: str | Activation = "erf", sigma_w: float = 1.0,
        sigma_b: float = 0.1, *, method: str = "auto",
        quadrature: int | None = None) -> torch.Tensor:
    """The infinite-width NTK Θ^{depth+1}(x1_i, x2_j), shape (n1, n2).

    Shorthand for ``AnalyticKernel(depth, activation, sigma_w, sigma_b, method=…,
    quadrature=…).ntk(x1, x2)``; x1 (n1, d), x2 (n2, d) or None for x1.
    """
    return AnalyticKernel(depth, activation, sigma_w, sigma_b, method=method,
                          quadrature=quadrature).ntk(x1, x2)


def derivative_ntk(op_a: Operator, x1: Any, op_b: Operator, x2: Any, depth: int,
                   activation: str | Activation = "erf", sigma_w: float = 1.0,
                   sigma_b: float = 0.1, *, method: str = "auto", quadrature: int | None = None,
                   kernel: str = "ntk") -> torch.Tensor:
    """The infinite-width kernel block D_a^{x} D_b^{x'} Θ(x1_i, x2_j), shape (n1, n2): the
    analytic counterpart of ``pinnk.ntk(model, [Term(a, op_a, x1), Term(b, op_b,
    x2)]).block(0, 1)``. See :meth:`AnalyticKernel.block`."""
    return AnalyticKernel(depth, activation, sigma_w, sigma_b, method=method,
                          quadrature=quadrature).block(op_a, x1, op_b, x2, kernel=kernel)
