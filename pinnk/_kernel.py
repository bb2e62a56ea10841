"""The multi-block empirical NTK of a list of terms: Θ_ij = J_i J_jᵀ, J_i = ∇_θ r_i."""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch.func import functional_call, jacrev, vmap

from ._operators import Operator, check_smoothness
from ._structured import (GramCache, StructuredFeatures, bytes_per_point, gram_many,
                          structured_features, structured_features_group, unsupported_reason)
from ._terms import Term, check_terms
from ._validation import available_memory as _available_memory
from ._validation import (as_tensor_arg, check_finite_parameters, check_float_dtype, check_int,
                          check_model_input, model_dtype_device)
from ._validation import format_bytes as _fmt_bytes


class Implementation(str, enum.Enum):
    """How the kernel is computed.

    - ``AUTO``: ``STRUCTURED`` for every term it applies to, ``JACOBIAN`` for the rest.
    - ``STRUCTURED``: the exact per-layer method of design.md §3, §3a for :class:`pinnk.MLP`
      (any activation with the derivatives needed — tanh, sin, gelu, softplus, erf to any order;
      relu for values), a fixed input embedding and any output transform: every operator built
      from :mod:`pinnk.ops` — linear with field coefficients, of any derivative order, mixed
      partials, and nonlinear residuals (linearised at the current network). Cost ≈
      n² S² Σ_l (w_l + w_{l−1}) with S the number of Taylor coefficients an operator reads (2 for
      ∂_h f, 5 for ∂_h⁴ f): it wins whenever the layers are wider than a handful of units (tens of
      times at width 200).
    - ``JACOBIAN``: materialise J with ``torch.func`` (vmap of jacrev per point) and form J Jᵀ.
      Cost ≈ n² P. Works for any ``nn.Module`` and any operator, including custom operators that
      evaluate the network themselves: the fallback and the reference.
    """

    AUTO = "auto"
    STRUCTURED = "structured"
    JACOBIAN = "jacobian"


def _parse_implementation(implementation: Any) -> Implementation:
    try:
        return Implementation(implementation)
    except ValueError:
        raise ValueError(f"implementation: unknown name {implementation!r}; expected one of "
                         f"'auto', 'structured', 'jacobian'") from None


class JacobianFeatures:
    """Materialised Jacobian rows J (n, P) of one term on a chunk of points."""

    def __init__(self, J: torch.Tensor):
        self.J = J
        self.n = J.shape[0]

    def rows(self) -> torch.Tensor:
        return self.J

    def gram(self, other) -> torch.Tensor:
        if isinstance(other, StructuredFeatures):
            return other.times(self.J).T
        return self.J @ other.J.T

    def cross_diag(self, other) -> torch.Tensor:
        return (self.J * other.rows()).sum(-1)

    def diag(self) -> torch.Tensor:
        return (self.J * self.J).sum(-1)


def _trainable(model: torch.nn.Module) -> dict:
    return {k: v.detach() for k, v in model.named_parameters() if v.requires_grad}


def jacobian_rows(model: torch.nn.Module, op: Operator, x: torch.Tensor) -> torch.Tensor:
    """J = ∇_θ (D f_θ)(x) for every point, shape (n, P), by ``vmap(jacrev)`` over points.

    Parameters are in ``model.parameters()`` order (trainable ones only).
    """
    params = _trainable(model)
    names = list(params)

    def single(p, xi):
        def f(y):
            return functional_call(model, p, (y,))
        return op.apply(f, xi.unsqueeze(0))[0]

    jac = vmap(jacrev(single), in_dims=(None, 0))(params, x)
    return torch.cat([jac[k].reshape(x.shape[0], -1) for k in names], dim=1)


class Kernel:
    """The empirical NTK blocks of a list of terms (lazy: blocks are computed on request).

    Built by :func:`ntk`. Blocks are Θ_ij = J_i J_jᵀ with J_i = ∇_θ r_i (n_i × P); Θ* has block
    (a, i) = λ_i Θ_ai (paper eq. 12, A-17). Diagonals and traces never build a block.
    """

    def __init__(self, model: torch.nn.Module, terms: Sequence[Term], implementation: Any = "auto",
                 *, chunk_size: int | None = None, max_memory: int | None = None):
        terms = check_terms(terms)
        self.model = model
        self.dtype, self.device = model_dtype_device(model)
        check_float_dtype(self.dtype, "model", "the NTK")
        check_finite_parameters(model)
        if not any(p.requires_grad for p in model.parameters()):
            raise ValueError("model: has no trainable parameters, so its NTK is zero")
        self.terms = list(terms)
        self.names = [t.name for t in self.terms]
        self.sizes = [t.n for t in self.terms]
        impl = _parse_implementation(implementation)
        self.implementations: list[str] = []
        for t in self.terms:
            pts = t.points[:, :t.points.shape[1] - t.operator.extra_columns]
            check_model_input(model, pts, f"terms: term {t.name!r}", probe=True)
            check_smoothness(model, t.operator)
            reason = unsupported_reason(model, t.operator)
            if impl is Implementation.STRUCTURED and reason is not None:
                raise ValueError(f"implementation: 'structured' does not apply to term {t.name!r}: "
                                 f"{reason}; use 'auto' or 'jacobian'")
            use = "structured" if impl is not Implementation.JACOBIAN and reason is None \
                else "jacobian"
            self.implementations.append(use)
        self.chunk_size = None if chunk_size is None else check_int(chunk_size, "chunk_size",
                                                                      minimum=1)
        self.max_memory = _available_memory(self.device) if max_memory is None else \
            check_int(max_memory, "max_memory", minimum=1)
        self._points = [t.points.to(dtype=self.dtype, device=self.device) for t in self.terms]
        self._n_params = sum(p.numel() for p in model.parameters() if p.requires_grad)
        self._itemsize = torch.empty((), dtype=self.dtype).element_size()
        self._cache: dict = {}
        self._blocks: dict = {}
        self._versions: dict = {}  # blocks that are views of a matrix handed out: its version
        self._diagonals: dict = {}
        cacheable = sum(self._bytes_per_point(i) * n for i, n in enumerate(self.sizes))
        self._cache_features = cacheable <= self.max_memory // 2
        self._grams = GramCache(self.max_memory // 4)

    # ---------------------------------------------------------------------------- bookkeeping
    def _bytes_per_point(self, i: int) -> int:
        if self.implementations[i] == "jacobian":
            return self._n_params * self._itemsize
        return bytes_per_point(self.model, self.terms[i].operator, self._points[i].shape[1],
                               self._itemsize)

    def _chunk(self, i: int) -> int:
        if self.chunk_size is not None:
            return self.chunk_size
        if self.implementations[i] == "jacobian":
            # vmap(jacrev) holds a few copies of the rows: keep a chunk near 256 MiB.
            return max(1, min(self.sizes[i], (256 << 20) // (4 * self._bytes_per_point(i))))
        return 4096

    def _slices(self, i: int) -> list[slice]:
        c, n = self._chunk(i), self.sizes[i]
        return [slice(s, min(s + c, n)) for s in range(0, n, c)]

    def _features(self, i: int, k: int):
        key = (i, k)
        if key in self._cache:
            return self._cache[key]
        x = self._points[i][self._slices(i)[k]]
        op = self.terms[i].operator
        if self.implementations[i] == "jacobian":
            feats = JacobianFeatures(jacobian_rows(self.model, op, x))
            if self._cache_features:
                self._cache[key] = feats
            return feats
        if not self._cache_features:
            with torch.no_grad():
                return structured_features(self.model, op, x)
        # Structured terms with the same points in this chunk share one forward pass.
        group = [(j, k) for j in range(len(self.terms))
                 if self.implementations[j] == "structured" and (j, k) not in self._cache
                 and k < len(self._slices(j)) and self._slices(j)[k] == self._slices(i)[k]
                 and (j == i or torch.equal(self._points[j][self._slices(j)[k]], x))]
        with torch.no_grad():
            feats = structured_features_group(self.model, [self.terms[j].operator
                                                           for j, _ in group], x)
        for jk, f in zip(group, feats):
            self._cache[jk] = f.share(self._grams)
        return self._cache[key]

    def index(self, key: int | str) -> int:
        """The position of a term given by index or name."""
        if isinstance(key, str):
            hits = [k for k, nm in enumerate(self.names) if nm == key]
            if not hits:
                raise ValueError(f"term: unknown name {key!r}; expected one of {self.names}")
            if len(hits) > 1:
                raise ValueError(f"term: name {key!r} is ambiguous; use an index")
            return hits[0]
        k = check_int(key, "term")
        if not -len(self.terms) <= k < len(self.terms):
            raise ValueError(f"term: index {k} out of range for {len(self.terms)} terms")
        return k % len(self.terms)

    def _check_fits(self, rows: int, cols: int, what: str) -> None:
        need = rows * cols * self._itemsize
        if need > self.max_memory:
            raise ValueError(f"max_memory: the {what} ({rows}×{cols}, {self.dtype}) needs "
                             f"{_fmt_bytes(need)}, more than max_memory={_fmt_bytes(self.max_memory)};"
                             f" use fewer points, a sub-block, or raise max_memory")

    # ------------------------------------------------------------------------------- blocks
    @staticmethod
    def _pair_gram(fa, fb) -> torch.Tensor:
        if isinstance(fa, StructuredFeatures) and isinstance(fb, StructuredFeatures):
            return fa.gram(fb)
        if isinstance(fa, JacobianFeatures):
            return fa.gram(fb)
        return fa.times(fb.J)  # a structured chunk against Jacobian rows

    def _compute(self, pairs, into: tuple | None = None) -> None:
        """Compute the blocks (i, j) of ``pairs`` that are not cached yet.

        With the features in memory, every structured chunk pair of every requested block goes
        into one layer-by-layer pass (:func:`gram_many`), so that the products of factors shared
        by terms at the same points are formed once per layer. With ``into = (M, offsets)`` (M
        zero) the blocks are computed in place in M's blocks and cached as views of M (the caller
        records their versions in ``_versions``); a cached view whose storage was changed since
        (M modified in place) is computed again."""
        stale = [k for k, v in self._versions.items() if self._blocks[k]._version != v]
        for k in stale:
            del self._blocks[k], self._versions[k]
        todo: list = []
        for i, j in pairs:
            if any(p in self._blocks or p in todo for p in ((i, j), (j, i))):
                continue
            self._check_fits(self.sizes[i], self.sizes[j],
                             f"block ({self.names[i]}, {self.names[j]})")
            todo.append((i, j))
        if not todo:
            return
        jobs, out = [], {}
        with torch.no_grad():
            for i, j in todo:
                if into is None:
                    G = torch.zeros(self.sizes[i], self.sizes[j], dtype=self.dtype,
                                    device=self.device)
                else:
                    M, offs = into
                    G = M[offs[i]:offs[i + 1], offs[j]:offs[j + 1]]
                out[(i, j)] = G
                for a, sa in enumerate(self._slices(i)):
                    fa = self._features(i, a)
                    for b, sb in enumerate(self._slices(j)):
                        if i == j and b < a:
                            continue
                        fb = fa if (i == j and a == b) else self._features(j, b)
                        if self._cache_features and isinstance(fa, StructuredFeatures) \
                                and isinstance(fb, StructuredFeatures):
                            jobs.append((fa, fb, G[sa, sb]))
                        else:
                            G[sa, sb] = self._pair_gram(fa, fb)
            gram_many(jobs)
            for (i, j), G in out.items():
                if i == j:  # the chunks below the diagonal by symmetry
                    sl = self._slices(i)
                    for a, sa in enumerate(sl):
                        for b in range(a):
                            G[sa, sl[b]] = G[sl[b], sa].T
                self._blocks[(i, j)] = G

    def block(self, i: int | str, j: int | str) -> torch.Tensor:
        """Θ_ij = J_i J_jᵀ, shape (n_i, n_j), by index or name (computed once, then cached)."""
        i, j = self.index(i), self.index(j)
        self._compute([(i, j)])
        return self._blocks[(i, j)] if (i, j) in self._blocks else self._blocks[(j, i)].T

    def diagonal(self, i: int | str) -> torch.Tensor:
        """The per-point diagonal Θ_ii(x_k, x_k) = ‖∇_θ r_i(x_k)‖², shape (n_i,); no block built."""
        i = self.index(i)
        if i not in self._diagonals:
            with torch.no_grad():
                self._diagonals[i] = torch.cat([self._features(i, a).diag()
                                                for a in range(len(self._slices(i)))])
        return self._diagonals[i]

    def cross_diagonal(self, i: int | str, j: int | str) -> torch.Tensor:
        """Θ_ij(x_k, x_k) for two terms at the same points, shape (n,); no block built."""
        i, j = self.index(i), self.index(j)
        pi, pj = self._points[i], self._points[j]
        if pi.shape != pj.shape or not torch.equal(pi, pj):
            raise ValueError(f"terms: {self.names[i]!r} and {self.names[j]!r} do not share their "
                             f"points (shapes {tuple(pi.shape)} and {tuple(pj.shape)})")
        out = []
        with torch.no_grad():
            for a in range(len(self._slices(i))):
                fa, fb = self._features(i, a), self._features(j, a)
                if isinstance(fa, StructuredFeatures) and isinstance(fb, StructuredFeatures):
                    out.append(fa.cross_diag(fb))
                else:
                    out.append((fa.rows() * fb.rows()).sum(-1))
        return torch.cat(out)

    def trace(self, i: int | str) -> float:
        """tr Θ_ii from the per-point diagonal."""
        return float(self.diagonal(i).sum())

    # -------------------------------------------------------------------------------- Θ*
    def _weights(self, weights: Any) -> torch.Tensor:
        T = len(self.terms)
        if weights is None:
            return torch.ones(T, dtype=self.dtype, device=self.device)
        if isinstance(weights, Mapping):
            unknown = set(weights) - set(self.names)
            if unknown:
                raise ValueError(f"weights: unknown term name(s) {sorted(unknown)}; expected "
                                 f"{self.names}")
            missing = [nm for nm in self.names if nm not in weights]
            if missing:
                raise ValueError(f"weights: missing a weight for term(s) {missing}")
            weights = [weights[nm] for nm in self.names]
        w = as_tensor_arg(weights, "weights", "one number per term or a mapping name -> weight"
                          ).to(dtype=self.dtype, device=self.device)
        if w.shape != (T,):
            raise ValueError(f"weights: expected {T} weights (one per term), got shape "
                             f"{tuple(w.shape)}")
        if not bool(torch.isfinite(w).all()):
            raise ValueError("weights: contains NaN or Inf")
        if bool((w < 0).any()):
            k = int((w < 0).nonzero()[0])
            raise ValueError(f"weights: must be non-negative, got {float(w[k]):g} for term "
                             f"{self.names[k]!r}")
        return w

    def matrix(self, weights: Any = None) -> torch.Tensor:
        """Θ* with block (a, i) = weights[i] · Θ_ai, shape (N, N), N = Σ n_i (paper eq. 12).

        ``weights`` is None (all ones, so Θ* = Θ), a sequence with one weight per term, or a
        mapping name -> weight.
        """
        w = self._weights(weights)
        N = sum(self.sizes)
        self._check_fits(N, N, "kernel matrix")
        T = len(self.terms)
        pairs = [(a, i) for a in range(T) for i in range(a, T)]
        offs = [0]
        for n in self.sizes:
            offs.append(offs[-1] + n)
        unit = weights is None
        if unit and not self._blocks:
            # Θ itself with nothing cached: the blocks are computed in place (no copies), the
            # lower ones are the transposes of the upper ones
            M = torch.zeros(N, N, dtype=self.dtype, device=self.device)
            self._compute(pairs, into=(M, offs))
            for a in range(T):
                for i in range(a):
                    M[offs[a]:offs[a + 1], offs[i]:offs[i + 1]].copy_(
                        M[offs[i]:offs[i + 1], offs[a]:offs[a + 1]].T)
            # every block is now a view of M: recomputed if M is changed from here on
            self._versions = {p: M._version for p in pairs}
            return M
        self._compute(pairs)
        M = torch.empty(N, N, dtype=self.dtype, device=self.device)
        for a in range(len(self.terms)):
            for i in range(len(self.terms)):
                dst = M[offs[a]:offs[a + 1], offs[i]:offs[i + 1]]
                if unit:
                    dst.copy_(self.block(a, i))
                else:
                    torch.mul(self.block(a, i), w[i], out=dst)
        return M

    def eigvalsh(self, weights: Any = None) -> torch.Tensor:
        """The real spectrum of Θ* = Θ Λ, ascending, shape (N,).

        Θ* is similar to Λ^{1/2} Θ Λ^{1/2}, which is symmetric PSD: its eigenvalues are computed
        with ``eigh`` on that form.
        """
        w = self._weights(weights)
        d = torch.cat([w[i].sqrt().expand(n) for i, n in enumerate(self.sizes)])
        S = self.matrix(None) * d[:, None] * d[None, :]
        S = 0.5 * (S + S.T)
        return torch.linalg.eigvalsh(S)

    def trace_weights(self, kind: str = "mean") -> torch.Tensor:
        """Loss weights by the trace rule (design.md §2, paper eq. 13, A-20), shape (T,).

        - ``"sum"``: λ_i = Σ_j tr Θ_jj / tr Θ_ii
        - ``"mean"``: λ_i = Σ_j m_j / m_i with m_i = tr Θ_ii / n_i (independent of point counts)

        Only the per-point diagonals are computed. Order follows :attr:`names`.
        """
        if kind not in ("mean", "sum"):
            raise ValueError(f"kind: expected 'mean' or 'sum', got {kind!r}")
        tr = torch.tensor([self.trace(i) for i in range(len(self.terms))], dtype=torch.float64)
        if kind == "mean":
            tr = tr / torch.tensor(self.sizes, dtype=torch.float64)
        if bool((tr <= 0).any()):
            k = int((tr <= 0).nonzero()[0])
            raise ValueError(f"terms: the kernel of term {self.names[k]!r} has zero trace, so the "
                             f"trace rule is undefined")
        return tr.sum() / tr

    def __repr__(self) -> str:
        parts = ", ".join(f"{nm}[{n}, {im}]" for nm, n, im in
                          zip(self.names, self.sizes, self.implementations))
        return f"Kernel({parts})"



def ntk(model: torch.nn.Module, terms: Sequence[Term], implementation: str = "auto", *,
        chunk_size: int | None = None, max_memory: int | None = None) -> Kernel:
    """The empirical multi-block NTK of ``terms`` for ``model``.

    Θ_ij = J_i J_jᵀ with J_i = ∇_θ r_i ∈ R^{n_i × P} (paper Prop. 1, eq. 6–7, A-15).

    Args:
        model: a :class:`pinnk.MLP` or any ``nn.Module`` mapping (n, d) -> (n, out) row-wise.
        terms: the :class:`pinnk.Term` list (any operators, any derivative order).
        implementation: ``"auto"``, ``"structured"`` or ``"jacobian"`` (see :class:`Implementation`).

    Other arguments:
        chunk_size: points per chunk (default: chosen from the memory per point).
        max_memory: bytes a single result may take (default: half the free RAM, or 80% of free
            GPU memory); a request beyond it raises a ValueError stating the size it needs.

    Returns:
        A lazy :class:`Kernel`: ``block``, ``diagonal``, ``matrix``, ``eigvalsh``,
        ``trace_weights``. Device and dtype follow the model; the points are converted.
    """
    return Kernel(model, terms, implementation, chunk_size=chunk_size, max_memory=max_memory)


def angles(model: torch.nn.Module, term_a: Term, term_b: Term, implementation: str = "auto", *,
           chunk_size: int | None = None) -> torch.Tensor:
    """Per-point cosine between the parameter gradients of two terms (paper eq. 14, A-21).

        cos α(x) = Θ_ab(x, x) / sqrt(Θ_aa(x, x) Θ_bb(x, x))

    Computed from per-point gradients only: no n×n block is formed. The two terms must share
    their points. Returns a tensor (n,) in [−1, 1] (NaN where a gradient vanishes).
    """
    for nm, t in (("term_a", term_a), ("term_b", term_b)):
        if not isinstance(t, Term):
            raise TypeError(f"{nm}: expected a pinnk.Term, got {type(t).__name__}")
    pa, pb = term_a.points, term_b.points
    if pa.shape != pb.shape or not torch.equal(pa, pb.to(pa.dtype)):
        raise ValueError(f"term_b: angles need two terms at the same points; {term_a.name!r} has "
                         f"{tuple(pa.shape)} points and {term_b.name!r} has {tuple(pb.shape)}, or "
                         f"their coordinates differ")
    K = Kernel(model, [term_a, term_b], implementation, chunk_size=chunk_size)
    cross = K.cross_diagonal(0, 1)
    denom = torch.sqrt(K.diagonal(0) * K.diagonal(1))
    cos = cross / denom
    return torch.where(denom > 0, cos.clamp(-1.0, 1.0), cos)
