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

The streams obey a reverse recursion of their own, A^{l−1}_γ = Σ_κ s_κ ⊙ (A^l_{γ+κ} c_w W_l)
(s the series of σ'), from A^L_γ = w_γ: an operator with per-point weights (a residual, an output
transform) runs it when such operators are no more than the output components, and skips the
weighted combination of the basis. So every kernel block is a sum over layers and stream pairs of
Hadamard products of small Gram matrices:

    Θ_ab = Σ_l c_w,l² Σ_{s,t} (A_s^a A_t^bᵀ) ⊙ (H_s^a H_t^bᵀ) + c_b,l² A_0^a A_0^bᵀ.

Nothing of size P (the parameter count) is formed unless a layer is so narrow that forming its
Jacobian rows is cheaper, which is decided per layer by operation count. A product of a factor
with itself (the pairs (s, s) of a chunk with itself, a materialised layer there) is symmetric:
on the CPU with one torch thread it is formed by BLAS ``?syrk`` at half the multiply-adds (with
more, by torch's threaded general product: see :func:`_syrk`), its lower triangle
accumulated and mirrored once per block. A product several blocks share is kept in the layout
it was formed in; a block that needs it the other way round forms the other product of the
pair transposed as well and sums the transpose of the pair's term, added once at the end — no
Hadamard accumulation reads a transposed operand (on the CPU two to three times slower than a
contiguous one). The bias term joins the primal pair: (A_0 A_0ᵀ) ⊙ (c_w² H_0 H_0ᵀ + c_b²).
"""

from __future__ import annotations

import contextlib
import functools
import threading
from dataclasses import dataclass

import torch

from ._jets import JetPlan, product, transform_series
from ._networks import MLP
from ._operators import Linear, Operator, Residual, jet_plan


#: the cost of accumulating one stream pair of a kernel block, in multiply-adds per entry
_HADAMARD = 16


class _NotLinearisable(ValueError):
    pass


@functools.lru_cache(maxsize=None)
def _blas():
    """SciPy's BLAS and a thread-pool controller for it, or None without them."""
    try:
        from scipy.linalg import blas
        from threadpoolctl import ThreadpoolController
    except ImportError:  # pragma: no cover - both are dependencies
        return None
    return blas, ThreadpoolController()


def _syrk(a: torch.Tensor):
    """BLAS ?syrk for ``a`` (a CPU float32/float64 tensor), or None where there is none — and
    None where torch runs on more than one thread: SciPy's BLAS (OpenBLAS) threads and torch's
    OpenMP threads, which spin after each of torch's operations, then take the cores from each
    other. Measured on 2 cores, [f, ∂_h f] on 2 → 200³ → 1 at 256 points: 110–186 ms a kernel
    with syrk on 2 threads, 11 ms with OpenBLAS held to one thread, 8–9 ms by torch's general
    products on 2 threads, against 16.5 ms with syrk (17.6 ms without) on one thread."""
    if a.device.type != "cpu" or a.dtype not in (torch.float32, torch.float64) \
            or _blas() is None or torch.get_num_threads() != 1:
        return None
    blas = _blas()[0]
    return blas.dsyrk if a.dtype == torch.float64 else blas.ssyrk


def syrk_lower(a: torch.Tensor, out: torch.Tensor, beta: float = 0.0) -> bool:
    """Lower triangle of ``out`` (n, n) ← a aᵀ + beta · out by BLAS ?syrk — half the
    multiply-adds of ``torch.mm(a, a.T)``; the strict upper triangle of ``out`` is left as it
    was. ``a`` (n, k) and ``out`` must be C-contiguous CPU tensors of the same float dtype.
    Returns False (nothing written) where there is no BLAS routine for them, or where torch
    runs on more than one thread (see :func:`_syrk`)."""
    fn = _syrk(a)
    if fn is None or out.dtype != a.dtype or not (a.is_contiguous() and out.is_contiguous()):
        return False
    # C-order (n, k) is F-order (k, n): op(aᵀ)ᵀ op(aᵀ) with trans=1 is a aᵀ; the F-order upper
    # triangle of the (F-order) result is the C-order lower triangle of ``out``
    c = out.detach().numpy().T
    res = fn(1.0, a.detach().numpy().T, beta=beta, c=c, trans=1, overwrite_c=1)
    if res.ctypes.data != c.ctypes.data:  # pragma: no cover - f2py copied instead
        c[...] = res
    return True


def _blas_threads(like: torch.Tensor):
    """A context that runs SciPy's BLAS on one thread — torch's count wherever syrk is used (a
    no-op where it is not: off the CPU, or with more than one torch thread, see :func:`_syrk`)."""
    if _syrk(like) is None:
        return contextlib.nullcontext()
    return _blas()[1].limit(limits=1, user_api="blas")


def _linearisable(op: Operator) -> bool:
    """Whether every part of ``op`` reads the network only through its derivatives (or is a
    combination of such operators at other points, see :meth:`Operator.parts`)."""
    if isinstance(op, Linear):
        return True
    if isinstance(op, Residual):
        return all(_linearisable(o) for o in op.inputs.values())
    if type(op).parts is not Operator.parts:
        return all(_linearisable(o) for o in op.inner_operators())
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
    if type(op).parts is not Operator.parts:
        return sum(bytes_per_point(model, o, d, itemsize) for o in op.inner_operators())
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


#: up to this width a row-wise outer-product sum is formed one column (or row) at a time
_NARROW = 16


def _outer_sum(As: list, Hs: list, out: torch.Tensor, scale: float) -> None:
    """out[k] ← scale Σ_s As[s][k] ⊗ Hs[s][k] for every row k: ``As[s]`` (n, w_out),
    ``Hs[s]`` (n, w_in), ``out`` an (n, w_out, w_in) tensor or view.

    A narrow side (an input layer of a low-dimensional problem, an output layer) is looped over,
    a few vector operations each; two wide sides go to one batched product."""
    n, wo, wi = out.shape
    if min(wo, wi) <= _NARROW:
        lines = [(out[:, :, j], As, [h[:, j:j + 1] for h in Hs]) for j in range(wi)] \
            if wi <= wo else [(out[:, i, :], Hs, [a[:, i:i + 1] for a in As]) for i in range(wo)]
        for o, wide, cols in lines:
            torch.mul(wide[0], cols[0], out=o)
            for w, c in zip(wide[1:], cols[1:]):
                o.addcmul_(w, c)
    else:
        out.copy_(torch.bmm(torch.stack(As, 2), torch.stack(Hs, 1)))
    if scale != 1.0:
        out.mul_(scale)


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

    @functools.cached_property
    def rows_with_bias(self) -> torch.Tensor:
        """The layer's Jacobian rows, weights then bias (c_b A_0) when it is trained, shape
        (n, w_out·w_in [+ w_out]) (formed once)."""
        like = self.As[0]
        n, wo, wi = like.shape[0], self.w_out, self.w_in
        bias = self.train_b and self.A0 is not None
        out = torch.empty(n, wo * wi + (wo if bias else 0), dtype=like.dtype, device=like.device)
        _outer_sum(self.As, self.Hs, out[:, :wo * wi].view(n, wo, wi), self.cw)
        if bias:
            torch.mul(self.A0, self.cb, out=out[:, wo * wi:])
        return out

    def materialized(self) -> torch.Tensor:
        """The weight-Jacobian rows c_w Σ_s A_s ⊗ H_s, shape (n, w_out·w_in) (formed once)."""
        return self.rows_with_bias[:, :self.w_out * self.w_in]


class GramCache:
    """Canonical stream factors shared between blocks and terms.

    Terms at the same points carry the same stream factors (every term there shares the
    activation series h_γ; a value and a derivative of f share the adjoint δ_l = ∂f/∂z_l): the
    feature builder hands them out as the same tensor or as views of the same memory. Factors
    are mapped to one canonical tensor per distinct view (storage, offset, shape and strides),
    so that :func:`gram_many` recognises a product that several blocks ask for; ``budget``
    bounds the bytes of the products it keeps within a layer.
    """

    def __init__(self, budget: int):
        self.budget = budget
        self._canon: dict = {}

    def canonical(self, layer: int, t: torch.Tensor) -> torch.Tensor:
        key = (layer, t.data_ptr(), tuple(t.shape), t.stride(), t.dtype, t.device)
        return self._canon.setdefault(key, t)


#: the most bytes of :func:`gram_many`'s temporary buffers kept between calls (per thread, CPU)
_WORKSPACE_BYTES = 128 << 20


class _Workspace(threading.local):
    """Temporary buffers of :func:`gram_many` (products, accumulators) kept between calls, per
    thread, on the CPU.

    Fresh memory of a kernel block's size comes from the operating system a page at a time on
    first touch (a minor page fault per 4 KiB page, about 2 µs on a virtual machine: a fifth of
    the structured [f, ∂_h f] kernel, measured), and every kernel — one per Gauss–Newton step —
    asks for the same sizes again. Buffers are given back at the end of a call and kept while
    they total at most ``_WORKSPACE_BYTES``; off the CPU, torch's caching allocator does this.
    """

    def __init__(self):
        self.clear()

    def clear(self) -> None:
        """Drop every kept buffer."""
        self.free: dict = {}
        self.masks: dict = {}
        self.bytes = 0

    def take(self, shape: tuple, like: torch.Tensor) -> torch.Tensor:
        """An uninitialised tensor of ``shape`` with the dtype and device of ``like``."""
        free = self.free.get((shape, like.dtype)) if like.device.type == "cpu" else None
        if free:
            t = free.pop()
            self.bytes -= t.numel() * t.element_size()
            return t
        return torch.empty(shape, dtype=like.dtype, device=like.device)

    def upper(self, n: int, device) -> torch.Tensor:
        """The (n, n) boolean mask of the strict upper triangle (kept on the CPU)."""
        mask = self.masks.get((n, device))
        if mask is None:
            mask = torch.ones(n, n, dtype=torch.bool, device=device).triu_(1)
            if mask.device.type == "cpu" and self.bytes + n * n <= _WORKSPACE_BYTES:
                self.masks[(n, device)] = mask
                self.bytes += n * n
        return mask

    def give(self, tensors) -> None:
        """Keep ``tensors`` (no longer referenced by the caller) for later calls, within the
        byte limit."""
        for t in tensors:
            size = t.numel() * t.element_size()
            if t.device.type == "cpu" and self.bytes + size <= _WORKSPACE_BYTES:
                self.free.setdefault((tuple(t.shape), t.dtype), []).append(t)
                self.bytes += size


_WORKSPACE = _Workspace()


class _Products:
    """The Gram products a bᵀ of one layer, for a batch of blocks computed layer by layer.

    A product that the layer's blocks ask for more than once (``counts``, set per layer) is
    kept for the rest of the layer, in buffers recycled from layer to layer (so they stay in
    cache) while they fit in ``budget`` bytes; any other product is used once and written into
    one of two scratch buffers (``slot`` 0 or 1), valid until the next product in the same slot.
    Every buffer comes from the workspace; :meth:`release` gives them back.
    """

    def __init__(self, budget: int):
        self.budget = budget
        self.workspace = _WORKSPACE
        self.counts: dict = {}
        self.full: set = set()  # keys of products some block needs whole (not just a triangle)
        self._kept: dict = {}
        self._shifted: dict = {}  # (id of a kept product, c) -> product + c
        self._scratch: dict = {}
        self._lower_only: set = set()  # keys of kept products valid in their lower triangle only

    def next_layer(self, counts: dict, full: set) -> None:
        self.workspace.give([*self._kept.values(), *self._shifted.values()])
        self._kept = {}
        self._shifted = {}
        self._lower_only = set()
        self.counts = counts
        self.full = full

    def release(self) -> None:
        """Give every buffer back to the workspace (the products are invalid afterwards)."""
        self.next_layer({}, set())
        self.workspace.give(self._scratch.values())
        self._scratch = {}

    def _scratch_buffer(self, slot: int, shape, like) -> torch.Tensor:
        key = (slot, shape, like.dtype, like.device)
        buf = self._scratch.get(key)
        if buf is None:
            buf = self._scratch[key] = self.workspace.take(shape, like)
        return buf

    def __call__(self, a: torch.Tensor, b: torch.Tensor, slot: int = 0,
                 lower: bool = False) -> torch.Tensor:
        """a bᵀ; with ``lower`` the caller reads only its lower triangle (the product may then
        be valid there only). May be a transposed view of a kept product."""
        P, swapped = self.oriented(a, b, slot, lower)
        return P.T if swapped else P

    def oriented(self, a: torch.Tensor, b: torch.Tensor, slot: int = 0, lower: bool = False,
                 swap: bool = False) -> tuple:
        """(P, swapped): the product a bᵀ as a tensor P laid out as it was formed, P = a bᵀ or,
        with ``swapped``, P = b aᵀ (its transpose). A kept product comes in the orientation it
        was formed in; a new one is formed as b aᵀ when ``swap`` asks for it — so that a caller
        can combine it elementwise with another product without reading either transposed."""
        key = _pair_key(a, b)
        hit = self._kept.get((id(a), id(b)))
        if hit is not None and (lower or key not in self._lower_only):
            return hit, False
        hit = self._kept.get((id(b), id(a)))
        if hit is not None and key not in self._lower_only:
            return hit, True
        swap = swap and a is not b
        x, y = (b, a) if swap else (a, b)
        shape = (x.shape[0], y.shape[0])
        if not lower and key in self._lower_only:  # kept as a triangle: a whole one, once
            return torch.mm(x, y.T, out=self._scratch_buffer(slot, shape, a)), swap
        keep = (self.counts.get(key, 0) > 1
                and (len(self._kept) + 1) * shape[0] * shape[1] * a.element_size() <= self.budget)
        out = self.workspace.take(shape, a) if keep else self._scratch_buffer(slot, shape, a)
        half = a is b and lower and key in self.counts and key not in self.full
        if half and syrk_lower(a, out):
            if keep:
                self._lower_only.add(key)
        elif not (a is b and key in self.counts and self._mirrored(a, out, slot)):
            torch.mm(x, y.T, out=out)
        if keep:
            self._kept[(id(x), id(y))] = out
        return out, swap

    def shifted(self, P: torch.Tensor, c: float) -> torch.Tensor:
        """P + c for a product P handed out by :meth:`oriented` in this layer: a product used
        once is shifted in place; a kept one is left as it is, its shifted copy formed once and
        kept beside it (or in a scratch buffer when the budget is spent)."""
        if not any(P is t for t in self._kept.values()):
            return P.add_(c)
        key = (id(P), c)
        hit = self._shifted.get(key)
        if hit is not None:
            return hit
        room = (len(self._kept) + len(self._shifted) + 1) * P.numel() * P.element_size() \
            <= self.budget
        if not room:
            return torch.add(P, c, out=self._scratch_buffer(4, tuple(P.shape), P))
        hit = self._shifted[key] = torch.add(P, c, out=self.workspace.take(tuple(P.shape), P))
        return hit

    def _mirrored(self, a: torch.Tensor, out: torch.Tensor, slot: int) -> bool:
        """The whole a aᵀ into ``out`` by BLAS syrk and one mirror pass, for factors wide enough
        that half a product outweighs one pass over the result. False where not done."""
        if a.shape[1] < _SYRK_MIRROR_MIN_WIDTH:
            return False
        tmp = self._scratch_buffer(slot + 2, tuple(out.shape), a)
        if not syrk_lower(a, tmp):
            return False
        torch.where(self.workspace.upper(out.shape[0], a.device), tmp.T, tmp, out=out)
        return True


#: the factor width from which a symmetric product that is read whole is done by syrk and a
#: mirror pass (measured on one core: 256 × 200 factors 441 µs by mm, ~250 + 70 µs by syrk and
#: mirror; at width 64, 143 µs against 86 + 70 µs)
_SYRK_MIRROR_MIN_WIDTH = 128


def _pair_key(a: torch.Tensor, b: torch.Tensor) -> tuple:
    ia, ib = id(a), id(b)
    return (ia, ib) if ia <= ib else (ib, ia)


def gram_many(jobs: list) -> None:
    """Accumulate Θ between pairs of feature chunks: each job is ``(fa, fb, out)`` with ``out``
    a (fa.n, fb.n) tensor (or view) that receives the kernel (added to it).

    The blocks are computed layer by layer. For each layer the products every block needs are
    listed first, so that a product asked for by several blocks (the activation series of terms
    at the same points, an adjoint shared by a value and its derivatives) is formed once, and a
    layer whose Jacobian rows are cheaper to form than its stream products is materialised.
    """
    if not jobs:
        return
    first = jobs[0][0]
    budget = first.cache.budget if first.cache is not None else 0
    pool = _Products(budget)
    blocks = [_Block(out, fa is fb) for fa, fb, out in jobs]
    with _blas_threads(jobs[0][2]):
        for l in range(len(first.layers)):
            plans = [fa._layer_plan(l, fb, blk.same) for (fa, fb, _), blk in zip(jobs, blocks)]
            counts: dict = {}
            for plan in plans:
                for a, b, _ in plan or ():
                    counts[_pair_key(a, b)] = counts.get(_pair_key(a, b), 0) + 1
            for k, (fa, fb, _) in enumerate(jobs):
                if plans[k] and fa._prefer_materialized(l, fb, counts):
                    plans[k] = None
            full = {_pair_key(a, b) for plan in plans for a, b, lower in plan or () if not lower}
            pool.next_layer(counts, full)
            for (fa, fb, _), blk, plan in zip(jobs, blocks, plans):
                fa._gram_layer(l, fb, blk, pool, plan is None)
    for blk in blocks:
        blk.finish()
    pool.release()


class _Block:
    """The accumulators of one kernel block ``out`` in :func:`gram_many`.

    A chunk with itself (``same``) sums its stream pairs s < t in ``off`` and its pairs (s, s)
    in the lower triangle of ``sym`` (their products are symmetric and may be formed as a
    triangle); ``finish`` adds both with their transposes. For two chunks both are ``out``
    itself. A pair whose products come transposed (kept by another block in the other layout)
    is summed as the transpose of its term, in ``transposed`` — for a chunk with itself that is
    ``off`` again, for two chunks a buffer of its own that ``finish`` adds transposed. The
    buffers come from the workspace and go back to it."""

    def __init__(self, out: torch.Tensor, same: bool):
        self.out = out
        self.same = same
        self.workspace = _WORKSPACE
        self.off = self._zeros(out.shape) if same else out  # the stream pairs s ≠ t
        self.sym = self._zeros(out.shape) if same else out  # the symmetric parts
        self._t = None

    def _zeros(self, shape) -> torch.Tensor:
        return self.workspace.take(tuple(shape), self.out).zero_()

    @property
    def transposed(self) -> torch.Tensor:
        if self.same:
            return self.off
        if self._t is None:
            self._t = self._zeros(self.out.shape[::-1])
        return self._t

    def finish(self) -> None:
        """Add the accumulators to ``out`` and give them back to the workspace."""
        if self.same:
            low = self.sym.tril_()
            self.out.diagonal().sub_(low.diagonal())
            self.off.add_(low)
            self.out.add_(self.off).add_(self.off.T)
            self.workspace.give([self.off, self.sym])
        elif self._t is not None:
            self.out.add_(self._t.T)
            self.workspace.give([self._t])
        self.off = self.sym = self._t = None


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
            first = None if self.As[l] is None else self.As[l][0]
            if self.As[l] is not None:
                self.As[l] = [cache.canonical(l, t) for t in self.As[l]]
                self.Hs[l] = [cache.canonical(l, t) for t in self.Hs[l]]
            if self.A0s[l] is not None:
                # the bias factor is usually the primal stream itself: one slot, not two
                self.A0s[l] = self.As[l][0] if self.A0s[l] is first \
                    else cache.canonical(l, self.A0s[l])
        return self

    # -- helpers ---------------------------------------------------------------------------------
    def _layer_plan(self, l: int, other: "StructuredFeatures", same: bool) -> list | None:
        """The Gram products layer l of block (self, other) asks for, in the order
        :meth:`_gram_layer` asks for them, as ``(a, b, lower)`` with ``lower`` True where the
        block reads only the lower triangle of a bᵀ (the pairs (s, s) of a chunk with itself);
        None when the layer has no weight streams."""
        la, lb = self.layers[l], other.layers[l]
        if not (la.train_w and la.As is not None and lb.As is not None):
            return None
        Aa, Ha, Ab, Hb = self.As[l], self.Hs[l], other.As[l], other.Hs[l]
        if _HADAMARD * len(Aa) * len(Ab) > la.w_out * (la.w_in + 1):
            # so many stream pairs (a quadrature's parts) that accumulating them alone costs
            # more than the layer's rows: materialised, without listing the pairs
            return None
        out = []
        for s in range(len(Aa)):
            for t in range(s if same else 0, len(Ab)):
                lower = same and s == t
                out += [(Aa[s], Ab[t], lower), (Ha[s], Hb[t], lower)]
        return out

    def _prefer_materialized(self, l: int, other: "StructuredFeatures", counts: dict) -> bool:
        """Form layer l's Jacobian rows when that is cheaper than the stream products.

        Per kernel entry, the rows cost w_out·w_in multiply-adds (plus w_out for the bias
        columns); the streams cost w_out per
        product of adjoint factors and w_in per product of activation factors — shared by the
        ``counts[pair]`` blocks of the layer that ask for it — plus about ``_HADAMARD`` for
        accumulating each stream pair. So the input layer of a low-dimensional problem and a
        narrow output layer are usually materialised, hidden layers not."""
        la = self.layers[l]
        Aa, Ab, Ha, Hb = self.As[l], other.As[l], self.Hs[l], other.Hs[l]

        def cost(X, Y, w):
            return sum(w / counts.get(_pair_key(x, y), 1) for x in X for y in Y)

        streams = cost(Aa, Ab, la.w_out) + cost(Ha, Hb, la.w_in) + _HADAMARD * len(Aa) * len(Ab)
        rows = la.w_out * la.w_in
        if la.train_b and self.A0s[l] is not None:
            # the rows carry the bias columns too; the streams reuse the product of the primal
            # streams for it when the bias factor is the primal stream itself
            rows += la.w_out
            if not (self.A0s[l] is Aa[0] and other.A0s[l] is Ab[0]):
                streams += la.w_out / counts.get(_pair_key(self.A0s[l], other.A0s[l]), 1)
        return rows < streams

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

    def times(self, M: torch.Tensor) -> torch.Tensor:
        """J Mᵀ for materialised rows M (m, P) in :meth:`rows`' parameter order, shape (n, m).

        Layer by layer (each layer's rows formed once and kept, never concatenated into the
        (n, P) rows): the cross block of this term with a term on the Jacobian path."""
        out = torch.zeros(self.n, M.shape[0], dtype=self.dtype, device=self.device)
        col = 0
        for la in self.layers:
            if la.train_w:
                k = la.w_out * la.w_in
                if la.As is not None:
                    out.addmm_(la.materialized(), M[:, col:col + k].T)
                col += k
        for la in self.layers:
            if la.train_b:
                if la.A0 is not None:
                    out.addmm_(la.A0, M[:, col:col + la.w_out].T, alpha=la.cb)
                col += la.w_out
        if col != M.shape[1]:
            raise ValueError(f"M: expected {col} columns (one per trainable parameter), got "
                             f"{M.shape[1]}")
        return out

    # -- kernels ----------------------------------------------------------------------------------
    def gram(self, other: "StructuredFeatures") -> torch.Tensor:
        """Θ between the two chunks, shape (self.n, other.n)."""
        G = torch.zeros(self.n, other.n, dtype=self.dtype, device=self.device)
        gram_many([(self, other, G)])
        return G

    def _gram_layer(self, l: int, other: "StructuredFeatures", blk: _Block, mm: _Products,
                    materialize: bool) -> None:
        """Add layer l's part of Θ to the accumulators of block ``blk`` (see :class:`_Block`)."""
        same, sym = blk.same, blk.sym
        la, lb = self.layers[l], other.layers[l]
        done_bias = False
        if la.train_w and la.As is not None and lb.As is not None:
            if materialize:
                whole = la.train_b == lb.train_b and (la.A0 is None) == (lb.A0 is None)
                Ja = la.rows_with_bias if whole else la.materialized()
                if same:
                    if not syrk_lower(Ja, sym, beta=1.0):
                        sym.addmm_(Ja, Ja.T)
                else:
                    sym.addmm_(Ja, (lb.rows_with_bias if whole else lb.materialized()).T)
                done_bias = whole
            else:
                cw2 = la.cw * la.cw
                Aa, Ha, Ab, Hb = self.As[l], self.Hs[l], other.As[l], other.Hs[l]
                # the bias term c_b² A_0 A_0ᵀ joins the stream pair (0, 0):
                # (A_0 A_0ᵀ) ⊙ (c_w² H_0 H_0ᵀ + c_b²)
                done_bias = la.train_b and self.A0s[l] is Aa[0] and other.A0s[l] is Ab[0]
                for s in range(len(Aa)):
                    for t in range(s if same else 0, len(Ab)):
                        lower = same and t == s
                        # both products in one layout, so that neither is read transposed
                        HH, swapped = mm.oriented(Ha[s], Hb[t], 1, lower)
                        AA, a_swapped = mm.oriented(Aa[s], Ab[t], 0, lower, swap=swapped)
                        if a_swapped != swapped:  # both kept, in the two layouts
                            AA = AA.T
                        acc = sym if lower else (blk.transposed if swapped else blk.off)
                        if done_bias and s == 0 and t == 0:
                            HH = mm.shifted(HH, la.cb * la.cb / cw2)
                        acc.addcmul_(AA, HH, value=cw2)
        if la.train_b and not done_bias and self.A0s[l] is not None \
                and other.A0s[l] is not None:
            sym.add_(mm(self.A0s[l], other.A0s[l], 0, same), alpha=la.cb * la.cb)

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
        return self.plan.derivative(self.series, tuple(h.key for h in directions))


def _weights(model: MLP, ops: list, x: torch.Tensor, U: list, plan: JetPlan,
             raw: list) -> list:
    """Per operator, w_β = ∂(D f)/∂v_β at every point, shape (n, out) per multi-index (None
    where D does not depend on v_β): the output transform is expanded once, then one autograd
    pass per operator."""
    fam = plan.family
    out_ws = []
    with torch.enable_grad():
        leaves = [None if t is None else t.detach().requires_grad_(True) for t in raw]
        live = [k for k, t in enumerate(leaves) if t is not None]
        T = model.output_transform
        series = leaves if T is None else transform_series(fam, T, x, U, leaves)
        for q, op in enumerate(ops):
            out = op.evaluate(_Linearisation(plan, series, op), x)
            if not isinstance(out, torch.Tensor) or tuple(out.shape) != (x.shape[0],):
                shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
                raise ValueError(f"operator: {op!r} must give a tensor of shape ({x.shape[0]},), "
                                 f"got {shape}")
            w: list = [None] * len(fam)
            if out.requires_grad:  # else D f does not depend on the network
                grads = torch.autograd.grad(out.sum(), [leaves[k] for k in live],
                                            allow_unused=True, retain_graph=q < len(ops) - 1)
                for k, g in zip(live, grads):
                    if g is not None:
                        w[k] = g.detach()
            out_ws.append(w)
    return out_ws


def _scaled_weight(model: MLP, l: int) -> torch.Tensor:
    """c_w W of layer l (W itself where c_w = 1)."""
    cw, W = model.weight_scales[l], model.weights[l]
    return W if cw == 1.0 else cw * W


def _adjoint_basis(model: MLP, fam, record: list, dtype, device) -> list:
    """Per layer l, the series of the adjoint ∂v_c/∂z_l along the jet curve for every output
    component c at once: entry β is (C, n, w_l) (or (C, 1, w_l) at the output layer), None where
    exactly zero."""
    L = len(model.weights)
    C = model.out_dim
    F = len(fam)
    delta: list = [torch.eye(C, dtype=dtype, device=device)[:, None, :]] + [None] * (F - 1)
    adj: list = [None] * L
    adj[L - 1] = delta
    for l in range(L - 1, 0, -1):
        Wc = _scaled_weight(model, l)
        live = [i for i, t in enumerate(delta) if t is not None]
        # (C, n, w) @ (w, w') as one 2-D product (a 3-D matmul goes through a slower path)
        G = [(delta[i].reshape(-1, delta[i].shape[-1]) @ Wc).view(*delta[i].shape[:-1], -1)
             for i in live]
        g: list = [None] * F
        for i, t in zip(live, G):
            g[i] = t
        delta = product(fam, record[l - 1][1], g)
        adj[l - 1] = delta
    return adj


def _operator_streams(model: MLP, fam, record: list, w: list) -> list:
    """Per layer l, the adjoint streams of one operator, A_γ = Σ_{β≥γ} Σ_c w_{β,c} δ^c_{β−γ},
    by their own reverse recursion instead of from the basis of :func:`_adjoint_basis`:

        A^L_γ = w_γ (the output layer's),
        A^{l−1}_γ = Σ_κ s_κ ⊙ (A^l_{γ+κ} c_w W_l)   (s the series of σ'(z_{l−1}(t))),

    which follows from δ^{l−1} = s ⊙ (δ^l c_w W_l) in series arithmetic (the per-point weights
    commute with the matrix product). Entry γ of layer l is (n, w_l) (the output layer's
    (n, C)), None where zero. One product per stream and layer, against one per output
    component and coefficient for the basis — and no weighted combination afterwards."""
    L = len(model.weights)
    F = len(fam)
    streams: list = [None] * L
    A = list(w)
    streams[L - 1] = A
    for l in range(L - 1, 0, -1):
        Wc = _scaled_weight(model, l)
        G = [None if a is None else a @ Wc for a in A]
        s = record[l - 1][1]
        nxt: list = [None] * F
        for v in range(F):  # A_ν W feeds every γ ≤ ν, through s_{ν−γ}
            if G[v] is None:
                continue
            for j, k in fam.splits[v]:
                if s[k] is None:
                    continue
                nxt[j] = s[k] * G[v] if nxt[j] is None else nxt[j].addcmul_(s[k], G[v])
        A = nxt
        streams[l - 1] = A
    return streams


def _own_stream_operators(ws: list, out_dim: int) -> list:
    """The operators (indices into ``ws``, their linearisation weights) that get their own
    adjoint streams (:func:`_operator_streams`): those with a weight that is not a constant
    multiple of a unit vector (a residual, an output transform), while there are no more of them
    than output components — as many products as the basis then, and no weighted combination.
    The others share the adjoint basis (a value or an undecorated derivative uses it as is)."""
    own = [k for k, w in enumerate(ws) if any(t is not None and _scaled_unit(t) is None for t in w)]
    return own if len(own) <= out_dim else []


def _streams_features(model: MLP, record: list, streams: list, n: int, dtype,
                      device) -> StructuredFeatures:
    """The stream factors of one operator from its own adjoint streams (:func:`_operator_streams`):
    stream γ of layer l pairs A_γ with the activation coefficient h_γ entering the layer."""
    layers = []
    for l, A in enumerate(streams):
        h_in = record[l][0]
        pairs = [(a, h_in[j]) for j, a in enumerate(A) if a is not None and h_in[j] is not None]
        layers.append(_model_layer(model, l, pairs, A[0]))
    return StructuredFeatures(layers, n, dtype, device)


def _model_layer(model: MLP, l: int, streams: list, A0: torch.Tensor | None) -> _Layer:
    """Layer l of ``model`` with the stream factors ``streams`` ((A, H) pairs) and the bias
    factor ``A0``."""
    W, b = model.weights[l], model.biases[l]
    return _Layer([a for a, _ in streams] or None, [h for _, h in streams] or None, A0,
                  model.weight_scales[l], model.bias_scales[l], W.requires_grad,
                  b.requires_grad, W.shape[0], W.shape[1])


def _scaled_unit(w: torch.Tensor) -> tuple | None:
    """(c, a) when every row of ``w`` (n, C) is a·e_c (a constant multiple of one unit vector),
    else None: the weight of an operator with constant coefficients."""
    row = w[0]
    nz = (row != 0).nonzero()
    if nz.numel() != 1:
        return None
    c = int(nz[0])
    return (c, float(row[c])) if bool((w == row).all()) else None


def _op_features(model: MLP, fam, record: list, adj: list, split: list, w: list, n: int,
                 dtype, device) -> StructuredFeatures:
    """The stream factors of one operator (see the module docstring).

    Stream γ pairs A_γ = Σ_{β≥γ} Σ_c w_{β,c} δ^c_{β−γ} with H_γ. Where A_γ is a constant multiple
    a·δ of one adjoint tensor (an operator with constant coefficients), the stream keeps δ itself
    — shared with every other operator at the points — and the constant moves to the activation
    side; streams with the same adjoint are merged, δ ⊗ (a H_γ + a' H_γ'), as for the two second
    derivatives of a Laplacian."""
    L = len(model.weights)
    F = len(fam)
    nz = [i for i in range(F) if w[i] is not None]
    units = {i: _scaled_unit(w[i]) for i in nz}
    # the output components each weight vector touches (a residual rarely reads them all)
    cols = {i: [c for c in range(w[i].shape[1]) if bool((w[i][:, c] != 0).any())] for i in nz}
    layers: list = []
    for l in range(L):
        h_in = record[l][0]
        streams: list = []  # [A, H] pairs
        by_adjoint: dict = {}  # id(A) -> position in streams, for shared adjoints
        A0 = None
        if l == L - 1:  # the adjoint of the output layer is the unit seed itself
            for i in nz:
                if h_in[i] is not None:
                    streams.append([w[i], h_in[i]])
            A0 = w[0]
        for j in range(F if l < L - 1 else 0):
            pieces: list = []  # (weight column or scalar, adjoint view)
            for i in nz:
                for jj, k in fam.splits[i]:
                    if jj != j or split[l][k] is None:
                        continue
                    if units[i] is not None:
                        c, a = units[i]
                        pieces.append((a, split[l][k][c]))
                    else:
                        pieces += [(w[i][:, c:c + 1], split[l][k][c]) for c in cols[i]]
            if not pieces:
                continue
            views = {id(t) for _, t in pieces}
            scalar = all(isinstance(a, float) for a, _ in pieces) and len(views) == 1
            if scalar:
                a, t = sum(a for a, _ in pieces), pieces[0][1]
                if j == 0:
                    A0 = t if a == 1.0 else a * t
                if h_in[j] is None or a == 0.0:
                    continue
                H = h_in[j] if a == 1.0 else a * h_in[j]
                k = by_adjoint.get(id(t))
                if k is None:
                    by_adjoint[id(t)] = len(streams)
                    streams.append([t, H])
                else:
                    streams[k][1] = streams[k][1] + H
            else:
                A = _combine(pieces)
                if j == 0:
                    A0 = A
                if h_in[j] is not None:
                    streams.append([A, h_in[j]])
        layers.append(_model_layer(model, l, streams, A0))
    return StructuredFeatures(layers, n, dtype, device)


def _combine(pieces: list) -> torch.Tensor:
    """Σ a_k t_k over (a_k, t_k) pairs (a_k a column (n, 1) or a float), as a new tensor."""
    a, t = pieces[0]
    acc = a * t
    for a, t in pieces[1:]:
        if isinstance(a, float):
            acc.add_(t, alpha=a)
        else:
            acc.addcmul_(a, t)
    return acc


def _rows(f: StructuredFeatures, sl: slice) -> list:
    """The layers of features ``f`` restricted to the points ``sl`` (views, no copies)."""
    return [_Layer(None if la.As is None else [a[sl] for a in la.As],
                   None if la.Hs is None else [h[sl] for h in la.Hs],
                   None if la.A0 is None else la.A0[sl], la.cw, la.cb, la.train_w, la.train_b,
                   la.w_out, la.w_in) for la in f.layers]


def _parts_layers(model: MLP, combined: dict, n: int, dtype, device) -> dict:
    """Per combined operator k, the layers of each of its parts (c_k, D_k, y_k).

    Parts are batched: the points of all parts with the same operator D are one batch, and the
    batches at equal points (the parts of several operators on the same nodes, such as the
    integrals of several conserved variables) share one forward pass — so an operator with
    hundreds of parts (a quadrature) costs one structured pass over all its nodes."""
    runs = []  # (k, D, part indices, stacked points)
    for k, parts in combined.items():
        by_op: dict = {}
        for q, (_, op, _) in enumerate(parts):
            by_op.setdefault(id(op), (op, []))[1].append(q)
        for op, qs in by_op.values():
            for q in qs:
                if tuple(parts[q][2].shape) != (n, parts[q][2].shape[-1]):
                    raise ValueError(f"operator: a part ({op!r}) has points of shape "
                                     f"{tuple(parts[q][2].shape)}; expected one row per point "
                                     f"of the term ({n} rows)")
            y = torch.cat([parts[q][2] for q in qs]).to(dtype=dtype, device=device)
            runs.append((k, op, qs, y))
    batches: list = []  # (stacked points, [run indices])
    for r, (_, _, _, y) in enumerate(runs):
        for yb, members in batches:
            if yb.shape == y.shape and torch.equal(yb, y):
                members.append(r)
                break
        else:
            batches.append((y, [r]))
    out = {k: [None] * len(parts) for k, parts in combined.items()}
    for y, members in batches:
        feats = structured_features_group(model, [runs[r][1] for r in members], y)
        for r, f in zip(members, feats):
            k, _, qs, _ = runs[r]
            for j, q in enumerate(qs):
                out[k][q] = _rows(f, slice(j * n, (j + 1) * n))
    return out


def _combined_features(model: MLP, parts: list, layers: list, n: int, dtype,
                       device) -> StructuredFeatures:
    """The features of Σ_k c_k (D_k f)(y_k): each part's streams (``layers[k]``, the layers of
    part k), its adjoints scaled by c_k."""
    out = []
    for l in range(len(model.weights)):
        As, Hs, A0 = [], [], None
        for (c, _, _), part in zip(parts, layers):
            c, la = float(c), part[l]
            if la.As is not None:
                As += [a if c == 1.0 else c * a for a in la.As]
                Hs += list(la.Hs)
            if la.A0 is not None:
                a0 = la.A0 if c == 1.0 else c * la.A0
                A0 = a0 if A0 is None else A0 + a0
        la = layers[0][l]
        out.append(_Layer(As or None, Hs or None, A0, la.cw, la.cb, la.train_w, la.train_b,
                          la.w_out, la.w_in))
    return StructuredFeatures(out, n, dtype, device)


def structured_features_group(model: MLP, ops: list, x: torch.Tensor) -> list:
    """Stream factors of several operators at the same points ``x`` (n, d).

    One Taylor-mode forward pass carries the union of the coefficients they need, and one
    backward pass per output component gives the adjoint series; each operator then only
    weighs them by its own linearisation weights. Operators whose weights are plain unit vectors
    (a value, an undecorated derivative) share their adjoint tensors outright.
    """
    n, d = x.shape
    combined = {k: op.parts(x) for k, op in enumerate(ops)}
    combined = {k: v for k, v in combined.items() if v is not None}
    if combined:
        local = [k for k in range(len(ops)) if k not in combined]
        out: list = [None] * len(ops)
        for k, f in zip(local, structured_features_group(model, [ops[k] for k in local], x)
                        if local else []):
            out[k] = f
        layers = _parts_layers(model, combined, n, x.dtype, x.device)
        for k, parts in combined.items():
            out[k] = _combined_features(model, parts, layers[k], n, x.dtype, x.device)
        return out
    plan, U = jet_plan([tup for op in ops for tup in op.derivative_keys(d)], x)
    fam = plan.family
    record: list = []
    with torch.no_grad():
        raw = model.jets(x, U, fam, record=record)
    ws = _weights(model, ops, x, U, plan, raw)
    own = _own_stream_operators(ws, model.out_dim)
    with torch.no_grad():
        out = [None] * len(ws)
        for k in own:
            out[k] = _streams_features(model, record, _operator_streams(model, fam, record, ws[k]),
                                       n, x.dtype, x.device)
        if len(own) < len(ws):
            adj = _adjoint_basis(model, fam, record, x.dtype, x.device)
            split = [[None if t is None else t.unbind(0) for t in layer] for layer in adj]
            for k, w in enumerate(ws):
                if out[k] is None:
                    out[k] = _op_features(model, fam, record, adj, split, w, n, x.dtype, x.device)
        return out
