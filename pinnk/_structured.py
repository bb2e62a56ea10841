"""The structured (per-layer, exact) NTK path for :class:`pinnk.MLP` (design.md §3).

For a linear operator D = Σ_m c_m(x) ∂_{u_m1}···∂_{u_mk} f_{c_m} with k ≤ 2, the derivative is
carried through the forward pass as Taylor streams — the primal z_l, one tangent ż_l^a per
direction u_a and one second-order stream z̈_l^{ab} per direction pair — and the output seed is
pulled back through the same streams. The gradient of D f with respect to W_l is then a short sum
of outer products, ∂(Df)/∂W_l = c_w Σ_s A_s ⊗ H_s (A_s the stream adjoints at layer l, H_s the
stream activations of layer l−1), so every kernel block is a sum over layers and stream pairs of
Hadamard products of small Gram matrices:

    Θ_ab = Σ_l c_w,l² Σ_{s,t} (A_s^a A_t^bᵀ) ⊙ (H_s^a H_t^bᵀ) + c_b,l² A_0^a A_0^bᵀ.

Nothing of size P (the parameter count) is formed unless a layer is so narrow that forming its
Jacobian rows is cheaper, which is decided per layer by operation count.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch

from ._networks import MLP
from ._operators import Linear, Operator


def unsupported_reason(model: torch.nn.Module, op: Operator) -> str | None:
    """Why the structured path cannot take (model, op), or None when it can."""
    if not isinstance(model, MLP):
        return f"the model is a {type(model).__name__}, not a pinnk.MLP"
    if not isinstance(op, Linear):
        return f"the operator {op!r} is nonlinear"
    if op.order > 2:
        return f"the operator {op!r} has derivative order {op.order} > 2"
    if model.output_transform is not None:
        return "the model has an output transform"
    if model.embedding is not None and any(p.requires_grad for p in model.embedding.parameters()):
        return "the model's embedding has trainable parameters"
    act = model.act
    need = {0: act.d1, 1: act.d2, 2: act.d3}
    for k in range(op.order + 1):
        if need[k] is None:
            return f"the activation {act.name!r} has no derivative of order {k + 1}"
    return None


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


def structured_features(model: MLP, op: Linear, x: torch.Tensor) -> StructuredFeatures:
    """Compute the stream factors of D f at points ``x`` (n, d) for the structured kernel path."""
    return structured_features_group(model, [op], x)[0]


def structured_features_group(model: MLP, ops: list, x: torch.Tensor) -> list:
    """Stream factors of several operators at the same points ``x`` (n, d).

    One forward pass carries the union of the directions they need. Each operator then has its
    own backward pass, except that adjoint streams obeying the plain recursion
    g_{l−1} = σ'(z_{l−1}) ⊙ (c_w g_l W_l) — the primal adjoint of a value operator, the tangent
    adjoint of a first derivative — are shared between operators whose seeds are equal (f and
    ∂_h f both need δ_l = ∂f/∂z_l).
    """
    n, d = x.shape
    act = model.act
    monos_per_op = [op.monomials(d) for op in ops]

    # Directions and direction pairs that the operators need.
    tangents: dict = {}
    pairs: dict = {}
    for monos in monos_per_op:
        for m in monos:
            for h in m.directions:
                tangents.setdefault(h.key, h)
            if m.order == 2:
                ka, kb = m.directions[0].key, m.directions[1].key
                if (kb, ka) in pairs:
                    ka, kb = kb, ka
                pairs.setdefault((ka, kb), None)
    tkeys = list(tangents)
    tindex = {k: i for i, k in enumerate(tkeys)}
    plist = [(tindex[a], tindex[b]) for a, b in pairs]
    pindex = {k: i for i, k in enumerate(pairs)}
    U = [tangents[k].evaluate(x) for k in tkeys]

    # Forward pass through the streams (shared with MLP.taylor).
    record: list = []
    model._taylor(x, U, plist, record)
    inputs = [r["in"] for r in record]
    pre = [r["pre"] for r in record[:-1]]
    order = 1 + bool(tkeys) + bool(plist)  # derivatives of the activation needed: 1 to 3
    derivs = [act.series(z, order)[1:] + [None] * (3 - order) for z, _, _ in pre]

    plain: list = []  # [(seed, {layer: (g_l, hb_l)})]
    return [_backward(model, monos, x, tindex, pindex, plist, inputs, pre, derivs, plain)
            for monos in monos_per_op]


def _backward(model, monos, x, tindex, pindex, plist, inputs, pre, derivs, plain):
    """One operator's adjoint streams, layer by layer, and its kernel factors."""
    n = x.shape[0]
    out_dim = model.out_dim
    L = len(model.weights)
    T = len(tindex)
    g0 = None
    g1 = [None] * T
    g2 = [None] * len(plist)

    def seed(buf, m):
        if m.component >= out_dim:
            raise ValueError(f"component: {m.component} is out of range for a model with "
                             f"{out_dim} output(s)")
        c = m.coef.evaluate(x)
        s = torch.zeros(n, out_dim, dtype=x.dtype, device=x.device)
        s[:, m.component] = c if not isinstance(c, torch.Tensor) else c.to(x.dtype)
        return _add(buf, s)

    for m in monos:
        if m.order == 0:
            g0 = seed(g0, m)
        elif m.order == 1:
            i = tindex[m.directions[0].key]
            g1[i] = seed(g1[i], m)
        else:
            ka, kb = m.directions[0].key, m.directions[1].key
            p = pindex[(ka, kb)] if (ka, kb) in pindex else pindex[(kb, ka)]
            g2[p] = seed(g2[p], m)

    # Pairs with equal seeds have equal adjoints at every layer: propagate one per group.
    groups: list[list[int]] = []
    for p in range(len(plist)):
        if g2[p] is None:
            continue
        for grp in groups:
            if torch.equal(g2[grp[0]], g2[p]):
                grp.append(p)
                break
        else:
            groups.append([p])
    gg = [g2[grp[0]] for grp in groups]

    # Streams on the plain recursion share their adjoints through ``plain``.
    in_pairs = {i for grp in groups for p in grp for i in plist[p]}
    has_derivs = any(g is not None for g in g1) or bool(groups)

    def plain_slot(g):
        for sd, slot in plain:
            if torch.equal(sd, g):
                return slot
        slot: dict = {}
        plain.append((g, slot))
        return slot

    slot0 = plain_slot(g0) if g0 is not None and not has_derivs else None
    slots1 = [plain_slot(g) if g is not None and i not in in_pairs else None
              for i, g in enumerate(g1)]
    for slot, g in [(slot0, g0)] + list(zip(slots1, g1)):
        if slot is not None:
            slot.setdefault(L - 1, (g, None))

    def pull(slot, g, l, Wc):
        """h̄ = g (c_w W_l), shared through ``slot`` when the stream is plain."""
        if g is None:
            return None
        if slot is None:
            return g @ Wc
        g_l, hb = slot[l]
        if hb is None:
            hb = g_l @ Wc
            slot[l] = (g_l, hb)
        return hb

    layers: list[_Layer] = [None] * L
    for l in range(L - 1, -1, -1):
        W, b = model.weights[l], model.biases[l]
        cw, cb = model.weight_scales[l], model.bias_scales[l]
        h_in, dh_in, ddh_in = inputs[l]
        A, H = [], []
        if g0 is not None:
            A.append(g0)
            H.append(h_in)
        for i, g in enumerate(g1):
            if g is not None:
                A.append(g)
                H.append(dh_in[i])
        for k, grp in enumerate(groups):
            hs = [ddh_in[p] for p in grp if ddh_in[p] is not None]
            if gg[k] is not None and hs:
                A.append(gg[k])
                H.append(torch.stack(hs).sum(0) if len(hs) > 1 else hs[0])
        layers[l] = _Layer(A or None, H or None, g0,
                           cw, cb, W.requires_grad, b.requires_grad, W.shape[0], W.shape[1])
        if l == 0:
            break
        # Pull the adjoints back through W_l and the activation of layer l−1.
        Wc = W if cw == 1.0 else cw * W
        hb0 = pull(slot0, g0, l, Wc)
        hb1 = [pull(slots1[i], g, l, Wc) for i, g in enumerate(g1)]
        hb2 = [None if g is None else g @ Wc for g in gg]
        z, dz, ddz = pre[l - 1]
        s1, s2, s3 = derivs[l - 1]

        def advance(slot, hb):
            if hb is None:
                return None
            if slot is None:
                return s1 * hb
            if l - 1 not in slot:
                slot[l - 1] = (s1 * hb, None)
            return slot[l - 1][0]

        new_g0 = advance(slot0, hb0)
        new_g1 = [advance(slots1[i], t) for i, t in enumerate(hb1)]
        if slot0 is None:
            for i, t in enumerate(hb1):
                if t is not None:
                    new_g0 = _add(new_g0, s2 * dz[i] * t)
        for k, grp in enumerate(groups):
            hb = hb2[k]
            if hb is None:
                continue
            curv = None
            for p in grp:
                a, bb = plist[p]
                curv = _add(curv, _add(_mul(s2, ddz[p]), s3 * dz[a] * dz[bb]))
                if a == bb:
                    new_g1[a] = _add(new_g1[a], 2 * s2 * dz[a] * hb)
                else:
                    new_g1[a] = _add(new_g1[a], s2 * dz[bb] * hb)
                    new_g1[bb] = _add(new_g1[bb], s2 * dz[a] * hb)
            new_g0 = _add(new_g0, curv * hb)
        g0, g1 = new_g0, new_g1
        gg = [_mul(s1, t) for t in hb2]
    return StructuredFeatures(layers, n, x.dtype, x.device)
