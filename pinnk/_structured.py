"""The structured (per-layer, exact) NTK path for :class:`pinnk.MLP` (design.md §3, §3a).

Every operator is reduced to one form. Along the curve x(t) = x + Σ_a t_a u_a through each point
(u_a the directions the operators differentiate along: axes, constant vectors, per-point fields)
the raw network output v (before the output transform) has Taylor coefficients
v_β = ∂^β v / β!, carried through the layers as truncated multivariate series (a
:class:`pinnk._jets.JetFamily`, any order). An operator D — linear with field coefficients,
through an output transform y = T(x, v), or a nonlinear residual R(x, D_1 f, …, D_K f) — reads
finitely many coefficients, so at the current network its parameter Jacobian is

    J_D = Σ_β Σ_c w_{β,c}(x) J_{v_{β,c}},    w_{β,c} = ∂(D f)/∂v_{β,c}

(the linearisation of design.md §3a; the weights come from one autograd pass over the operator's
inputs at the points). The Jacobian of a Taylor coefficient of v with respect to W_l is the
coefficient of a product of series, c_w Σ_{γ≤β} δ_{β−γ} ⊗ h_γ, where h(t) is the series of the
activations entering layer l and δ(t) the series of the adjoint ∂v/∂z_l along the same curve.
The adjoint series obeys the usual backward recursion δ_{l−1} = σ'(z_{l−1}(t)) ⊙ (δ_l c_w W_l),
in series arithmetic, from a unit seed per output component (one basis pass shared by every term
at the same points). Collecting by γ,

    ∂(D f)/∂W_l = c_w Σ_γ A_γ ⊗ h_γ,    A_γ = Σ_{β ≥ γ} Σ_c w_{β,c} δ^c_{β−γ},

so every kernel block is a sum over layers and stream pairs of Hadamard products of small Gram
matrices:

    Θ_ab = Σ_l c_w,l² Σ_{s,t} (A_s^a A_t^bᵀ) ⊙ (H_s^a H_t^bᵀ) + c_b,l² A_0^a A_0^bᵀ.

Nothing of size P (the parameter count) is formed unless a layer is so narrow that forming its
Jacobian rows is cheaper, which is decided per layer by operation count.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch

from ._jets import JetPlan, product, transform_series
from ._networks import MLP
from ._operators import Linear, Operator, Residual


class _NotLinearisable(ValueError):
    pass


def _linearisable(op: Operator) -> bool:
    """Whether every part of ``op`` reads the network only through its derivatives."""
    if isinstance(op, Linear):
        return True
    if isinstance(op, Residual):
        return all(_linearisable(o) for o in op.inputs.values())
    return type(op).evaluate is not Operator.evaluate


def unsupported_reason(model: torch.nn.Module, op: Operator) -> str | None:
    """Why the structured path cannot take (model, op), or None when it can."""
    if not isinstance(model, MLP):
        return f"the model is a {type(model).__name__}, not a pinnk.MLP"
    if model.embedding is not None and any(p.requires_grad for p in model.embedding.parameters()):
        return "the model's embedding has trainable parameters"
    if not _linearisable(op):
        return f"the operator {op!r} evaluates the network itself (no derivative requests)"
    need = op.order + 1  # the adjoint series needs σ' to the operator's order
    if model.act.max_order < need:
        return f"the activation {model.act.name!r} has no derivative of order {need}"
    return None


def bytes_per_point(model: MLP, op: Operator, d: int, itemsize: int) -> int:
    """The memory the stream factors of ``op`` take per point (an estimate for chunking)."""
    plan = JetPlan(tuple(h.key for h in r) for r in op.derivative_keys(d))
    F = len(plan.family)
    return (F * (model.out_dim + 2) + 2) * sum(model.widths) * itemsize


def _add(a, b):
    if a is None:
        return b
    if b is None:
        return a
    return a + b


def _mul(a, b):
    return None if a is None or b is None else a * b


@dataclass
class _Layer:
    """The kernel factors of one linear layer: stream adjoints As[s] (n, w_out) and stream
    activations Hs[s] (n, w_in); ``A``/``H`` stack them (S, n, ·) on first use."""

    As: list | None
    Hs: list | None
    A0: torch.Tensor | None  # primal adjoint (bias gradient / c_b); None where zero
    cw: float
    cb: float
    train_w: bool
    train_b: bool
    w_out: int
    w_in: int

    @functools.cached_property
    def A(self) -> torch.Tensor | None:
        return None if self.As is None else torch.stack(self.As)

    @functools.cached_property
    def H(self) -> torch.Tensor | None:
        return None if self.Hs is None else torch.stack(self.Hs)

    def materialized(self) -> torch.Tensor:
        """The weight-Jacobian rows c_w Σ_s A_s ⊗ H_s, shape (n, w_out·w_in)."""
        n = self.A.shape[1]
        return self.cw * torch.einsum("snw,snv->nwv", self.A, self.H).reshape(n, -1)


class GramCache:
    """Shares Gram products X Yᵀ between blocks and terms.

    Terms at the same points carry equal stream factors (the value and a derivative of f share
    the primal activations h_l and the adjoint δ_l = ∂f/∂z_l). Factors are mapped to one canonical
    tensor per distinct value (exact ``torch.equal``), and each product of canonical factors is
    computed once while the products fit in ``budget`` bytes.
    """

    def __init__(self, budget: int):
        self.budget = budget
        self.used = 0
        self._canon: dict = {}
        self._products: dict = {}

    def canonical(self, layer: int, t: torch.Tensor) -> torch.Tensor:
        bucket = self._canon.setdefault((layer, tuple(t.shape)), [])
        for c in bucket:
            if c is t or torch.equal(c, t):
                return c
        bucket.append(t)
        return t

    def product(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        key = (id(a), id(b))
        hit = self._products.get(key)
        if hit is not None:
            return hit
        hit = self._products.get((id(b), id(a)))
        if hit is not None:
            return hit.T
        out = a @ b.T
        size = out.numel() * out.element_size()
        if self.used + size <= self.budget:
            self._products[key] = out
            self.used += size
        return out


class StructuredFeatures:
    """Per-point gradient factors of one term on a chunk of points (see module docstring)."""

    def __init__(self, layers: list[_Layer], n: int, dtype, device):
        self.layers = layers
        self.n = n
        self.dtype = dtype
        self.device = device
        self.cache: GramCache | None = None
        # per layer: the stream factors as lists (canonical tensors once ``share`` is called)
        self.As = [None if la.As is None else list(la.As) for la in layers]
        self.Hs = [None if la.Hs is None else list(la.Hs) for la in layers]
        self.A0s = [la.A0 for la in layers]

    def share(self, cache: GramCache) -> "StructuredFeatures":
        """Map this chunk's factors to the canonical tensors of ``cache`` (see :class:`GramCache`)."""
        self.cache = cache
        for l in range(len(self.layers)):
            if self.As[l] is not None:
                self.As[l] = [cache.canonical(l, t) for t in self.As[l]]
                self.Hs[l] = [cache.canonical(l, t) for t in self.Hs[l]]
            if self.A0s[l] is not None:
                self.A0s[l] = cache.canonical(l, self.A0s[l])
        return self

    def _mm(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return a @ b.T if self.cache is None else self.cache.product(a, b)

    # -- helpers ---------------------------------------------------------------------------------
    def _prefer_materialized(self, la: _Layer, lb: _Layer, other: "StructuredFeatures") -> bool:
        """Form the layer's Jacobian rows when that takes fewer operations than the stream
        products (w_out·w_in against S_a·S_b·(w_out + w_in)); with a shared Gram cache the
        stream products are mostly reused, so only single-unit layers are materialised."""
        if la.As is None or lb.As is None:
            return False
        w_out, w_in = la.w_out, la.w_in
        pairs = 1 if (self.cache is not None and other.cache is self.cache) \
            else len(la.As) * len(lb.As)
        return w_out * w_in < pairs * (w_out + w_in)

    def rows(self) -> torch.Tensor:
        """The full Jacobian rows (n, P), parameters in ``model.parameters()`` order
        (all weights, then all biases)."""
        w_parts, b_parts = [], []
        for la in self.layers:
            if la.train_w:
                w_parts.append(la.materialized() if la.As is not None else
                               torch.zeros(self.n, la.w_out * la.w_in, dtype=self.dtype,
                                           device=self.device))
            if la.train_b:
                b_parts.append(la.cb * la.A0 if la.A0 is not None else
                               torch.zeros(self.n, la.w_out, dtype=self.dtype, device=self.device))
        return torch.cat(w_parts + b_parts, dim=1)

    # -- kernels ----------------------------------------------------------------------------------
    def gram(self, other: "StructuredFeatures") -> torch.Tensor:
        """Θ between the two chunks, shape (self.n, other.n)."""
        same = other is self
        G = torch.zeros(self.n, other.n, dtype=self.dtype, device=self.device)
        off = torch.zeros_like(G) if same else G  # pairs (s, t > s) of a diagonal block
        for l, (la, lb) in enumerate(zip(self.layers, other.layers)):
            if la.train_w and la.As is not None and lb.As is not None:
                if self._prefer_materialized(la, lb, other):
                    Ja = la.materialized()
                    Jb = Ja if same else lb.materialized()
                    G.addmm_(Ja, Jb.T)
                else:
                    cw2 = la.cw * la.cw
                    Aa, Ha, Ab, Hb = self.As[l], self.Hs[l], other.As[l], other.Hs[l]
                    for s in range(len(Aa)):
                        for t in range(s if same else 0, len(Ab)):
                            acc = off if same and t != s else G
                            acc.addcmul_(self._mm(Aa[s], Ab[t]), self._mm(Ha[s], Hb[t]),
                                         value=cw2)
            if la.train_b and self.A0s[l] is not None and other.A0s[l] is not None:
                G.add_(self._mm(self.A0s[l], other.A0s[l]), alpha=la.cb * la.cb)
        if same:
            G += off + off.T
        return G

    def cross_diag(self, other: "StructuredFeatures") -> torch.Tensor:
        """Θ(x_k, x_k) between two terms at the same points, shape (n,), without any n×n block."""
        out = torch.zeros(self.n, dtype=self.dtype, device=self.device)
        for la, lb in zip(self.layers, other.layers):
            if la.train_w and la.As is not None and lb.As is not None:
                AA = torch.einsum("snw,tnw->stn", la.A, lb.A)
                HH = torch.einsum("snw,tnw->stn", la.H, lb.H)
                out += la.cw * la.cw * (AA * HH).sum(dim=(0, 1))
            if la.train_b and la.A0 is not None and lb.A0 is not None:
                out += la.cb * la.cb * (la.A0 * lb.A0).sum(-1)
        return out

    def diag(self) -> torch.Tensor:
        """Θ(x_k, x_k) of the term, shape (n,)."""
        return self.cross_diag(self)


def structured_features(model: MLP, op: Operator, x: torch.Tensor) -> StructuredFeatures:
    """Compute the stream factors of D f at points ``x`` (n, d) for the structured kernel path."""
    return structured_features_group(model, [op], x)[0]


class _Linearisation:
    """A derivative provider for :meth:`Operator.evaluate` whose derivatives of f are
    differentiable functions of the raw Taylor coefficients (the leaves)."""

    def __init__(self, plan: JetPlan, series: list, op: Operator):
        self.plan = plan
        self.series = series
        self.op = op

    @property
    def function(self):
        raise _NotLinearisable(f"operator: {self.op!r} evaluates the network itself; its kernel "
                               f"needs implementation='jacobian'")

    def derivative(self, directions: tuple) -> torch.Tensor:
        i = self.plan.index(tuple(h.key for h in directions))
        c = self.series[i]
        if c is None:
            return torch.zeros_like(self.series[0])
        f = self.plan.family.factorial[i]
        return c if f == 1 else f * c


def _weights(model: MLP, op: Operator, x: torch.Tensor, U: list, plan: JetPlan,
             raw: list) -> list:
    """w_β = ∂(D f)/∂v_β at every point, shape (n, out) per multi-index (None where D does not
    depend on v_β): one autograd pass through the output transform and the operator."""
    fam = plan.family
    with torch.enable_grad():
        leaves = [None if t is None else t.detach().requires_grad_(True) for t in raw]
        T = model.output_transform
        series = leaves if T is None else transform_series(fam, T, x, U, leaves)
        out = op.evaluate(_Linearisation(plan, series, op), x)
        if not isinstance(out, torch.Tensor) or tuple(out.shape) != (x.shape[0],):
            shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise ValueError(f"operator: {op!r} must give a tensor of shape ({x.shape[0]},), got "
                             f"{shape}")
        live = [k for k, t in enumerate(leaves) if t is not None]
        if not out.requires_grad:  # D f does not depend on the network
            return [None] * len(fam)
        grads = torch.autograd.grad(out.sum(), [leaves[k] for k in live], allow_unused=True)
    w: list = [None] * len(fam)
    for k, g in zip(live, grads):
        if g is not None:
            w[k] = g.detach()
    return w


def _adjoint_basis(model: MLP, fam, record: list, dtype, device) -> list:
    """Per layer l, the series of the adjoint ∂v_c/∂z_l along the jet curve for every output
    component c at once: entry β is (C, n, w_l) (or (C, 1, w_l) at the output layer), None where
    exactly zero."""
    L = len(model.weights)
    C = model.out_dim
    delta: list = [torch.eye(C, dtype=dtype, device=device)[:, None, :]] + [None] * (len(fam) - 1)
    adj: list = [None] * L
    adj[L - 1] = delta
    for l in range(L - 1, 0, -1):
        cw = model.weight_scales[l]
        W = model.weights[l]
        Wc = W if cw == 1.0 else cw * W
        live = [i for i, t in enumerate(delta) if t is not None]
        if len(live) == 1:
            G = [delta[live[0]] @ Wc]
        else:
            G = (torch.stack([delta[i] for i in live]) @ Wc).unbind(0)
        g: list = [None] * len(fam)
        for i, t in zip(live, G):
            g[i] = t
        delta = product(fam, record[l - 1][1], g)
        adj[l - 1] = delta
    return adj


def _constant_unit(w: torch.Tensor) -> int | None:
    """The component c when every row of ``w`` (n, C) is the unit vector e_c, else None."""
    row = w[0]
    nz = (row != 0).nonzero()
    if nz.numel() != 1 or float(row[int(nz[0])]) != 1.0:
        return None
    return int(nz[0]) if bool((w == row).all()) else None


def _op_features(model: MLP, fam, record: list, adj: list, split: list, w: list, n: int,
                 dtype, device) -> StructuredFeatures:
    """The stream factors A_γ, H_γ of one operator (see the module docstring)."""
    L = len(model.weights)
    F = len(fam)
    nz = [i for i in range(F) if w[i] is not None]
    units = {i: _constant_unit(w[i]) for i in nz}
    layers: list = []
    for l in range(L):
        h_in = record[l][0]
        A: list = [None] * F
        for i in nz:
            if l == L - 1:  # the adjoint of the output layer is the unit seed itself
                A[i] = w[i] if A[i] is None else A[i] + w[i]
                continue
            for j, k in fam.splits[i]:
                if adj[l][k] is None:
                    continue
                c = units[i]
                if c is not None:
                    t = split[l][k][c]
                elif w[i].shape[1] == 1:
                    t = w[i] * split[l][k][0]
                else:
                    t = (w[i].T.unsqueeze(-1) * adj[l][k]).sum(0)
                A[j] = t if A[j] is None else A[j] + t
        As = [A[j] for j in range(F) if A[j] is not None and h_in[j] is not None]
        Hs = [h_in[j] for j in range(F) if A[j] is not None and h_in[j] is not None]
        W, b = model.weights[l], model.biases[l]
        layers.append(_Layer(As or None, Hs or None, A[0], model.weight_scales[l],
                             model.bias_scales[l], W.requires_grad, b.requires_grad, W.shape[0],
                             W.shape[1]))
    return StructuredFeatures(layers, n, dtype, device)


def structured_features_group(model: MLP, ops: list, x: torch.Tensor) -> list:
    """Stream factors of several operators at the same points ``x`` (n, d).

    One Taylor-mode forward pass carries the union of the coefficients they need, and one
    backward pass per output component gives the adjoint series; each operator then only
    weighs them by its own linearisation weights. Operators whose weights are plain unit vectors
    (a value, an undecorated derivative) share their adjoint tensors outright.
    """
    n, d = x.shape
    requests = [op.derivative_keys(d) for op in ops]
    dirs: dict = {}
    for keys in requests:
        for tup in keys:
            for h in tup:
                dirs.setdefault(h.key, h)
    plan = JetPlan(tuple(h.key for h in tup) for keys in requests for tup in keys)
    fam = plan.family
    U = [dirs[k].evaluate(x) for k in plan.keys]
    record: list = []
    with torch.no_grad():
        raw = model.jets(x, U, fam, record=record)
    ws = [_weights(model, op, x, U, plan, raw) for op in ops]
    with torch.no_grad():
        adj = _adjoint_basis(model, fam, record, x.dtype, x.device)
        split = [[None if t is None else t.unbind(0) for t in layer] for layer in adj]
        return [_op_features(model, fam, record, adj, split, w, n, x.dtype, x.device)
                for w in ws]
