"""Sample-to-sample gradient angles of one term (paper eq. 23) and the batch-selection strategies
of the paper's Fig. A2b (section 3.3).

For one term with residuals r(x_a) the normalised kernel

    cos α_ab = Θ(x_a, x_b) / sqrt(Θ(x_a, x_a) Θ(x_b, x_b)),    Θ(x_a, x_b) = ∇_θ r(x_a) · ∇_θ r(x_b)

is the cosine between the parameter-update directions of two samples (Prop.* 4, eq. 23). The
paper trains with batches of two samples: every training sample in turn is the first one (the
anchor), and the second is chosen

- ``normal``: uniformly at random;
- ``adaptive``: "farthest away", the lowest cosine to the anchor;
- ``worst``: "nearest", the highest cosine to the anchor (the most redundant sample);
- ``orthogonal``: the cosine closest to zero (smallest |cos|) — the paper's best setting.

For larger batches the same rule is applied greedily against the samples already chosen:
``adaptive`` minimises the mean cosine to them, ``worst`` maximises it, ``orthogonal`` minimises
the largest |cos|. :class:`LargestResidual` (``residual``, not in the paper) picks the samples
with the largest |r|, the usual residual-based adaptive sampling.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

import torch

from ._kernel import Kernel
from ._terms import Term
from ._validation import check_int, model_dtype_device, random_permutation


def _check_term(term: Any) -> Term:
    if not isinstance(term, Term):
        raise TypeError(f"term: expected a pinnk.Term, got {type(term).__name__}")
    return term


def _check_rows(rows: Any, n: int) -> torch.Tensor:
    if isinstance(rows, torch.Tensor):
        if rows.is_floating_point() or rows.dtype == torch.bool or rows.is_complex():
            raise TypeError(f"rows: expected integer indices, got a {rows.dtype} tensor")
        idx = rows.detach().to("cpu", torch.int64).reshape(-1) if rows.ndim <= 1 else None
        if idx is None:
            raise ValueError(f"rows: expected a 1-D sequence of indices, got shape "
                             f"{tuple(rows.shape)}")
    elif isinstance(rows, Sequence) and not isinstance(rows, str):
        for v in rows:
            if isinstance(v, bool) or not isinstance(v, numbers.Integral):
                raise TypeError(f"rows: expected integer indices, got {type(v).__name__}")
        idx = torch.as_tensor([int(v) for v in rows], dtype=torch.int64)
    else:
        raise TypeError(f"rows: expected None or a 1-D sequence of indices, got "
                        f"{type(rows).__name__}")
    if idx.numel() == 0:
        raise ValueError("rows: expected at least one index")
    if bool((idx < 0).any()) or bool((idx >= n).any()):
        raise ValueError(f"rows: indices must lie in [0, {n}), got {idx.tolist()}")
    return idx


def _normalise(block: torch.Tensor, d_rows: torch.Tensor, d_cols: torch.Tensor) -> torch.Tensor:
    denom = torch.sqrt(d_rows[:, None] * d_cols[None, :])
    cos = block / denom
    return torch.where(denom > 0, cos.clamp(-1.0, 1.0), torch.full_like(cos, float("nan")))


def sample_angles(model: torch.nn.Module, term: Term, rows: Any = None,
                  implementation: str = "auto") -> torch.Tensor:
    """Cosines between the parameter gradients of the samples of one term (paper eq. 23).

        C_ab = Θ(x_a, x_b) / sqrt(Θ(x_a, x_a) Θ(x_b, x_b)),   Θ = J Jᵀ,  J = ∇_θ r  (n × P)

    Args:
        model: the network.
        term: a :class:`pinnk.Term` with n points (its labels do not matter).
        rows: None for the full matrix, or a 1-D sequence of m sample indices for those rows only
            (an m × n block: cheaper when only a few anchors are needed).
        implementation: how the kernel is computed (see :func:`pinnk.ntk`).

    Returns:
        (n, n) — or (m, n) — in [−1, 1], the model's dtype and device; symmetric with a unit
        diagonal for the full matrix; NaN where a sample's gradient vanishes.
    """
    term = _check_term(term)
    model_dtype_device(model)
    n = term.n
    if rows is None:
        K = Kernel(model, [term], implementation)
        B = K.block(0, 0)
        d = K.diagonal(0)
        C = _normalise(B, d, d)
        return _unit_diagonal(0.5 * (C + C.T), d)
    idx = _check_rows(rows, n)
    sub = Term(f"{term.name}[rows]", term.operator, term.points[idx.to(term.points.device)])
    K = Kernel(model, [sub, term], implementation)
    return _normalise(K.block(0, 1), K.diagonal(0), K.diagonal(1))


def _unit_diagonal(C: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
    C = C.clone()
    C.diagonal().copy_(torch.where(d > 0, torch.ones_like(d), torch.full_like(d, float("nan"))))
    return C


# ------------------------------------------------------------------------------- strategies
class BatchStrategy:
    """A rule that picks a batch of sample indices of one term.

    Subclasses implement :meth:`_pick`; :meth:`select` checks the arguments. ``name`` is the
    paper's label of the setting.
    """

    name = ""
    uses_angles = False

    def select(self, model: torch.nn.Module, term: Term, batch_size: int,
               generator: torch.Generator | None = None, *, anchor: int | None = None,
               cosines: torch.Tensor | None = None,
               implementation: str = "auto") -> torch.Tensor:
        """Pick ``batch_size`` distinct indices into the points of ``term``.

        Args:
            model: the network (read only).
            term: the :class:`pinnk.Term` whose samples are batched (n points).
            batch_size: 1 <= b <= n.
            generator: a ``torch.Generator`` for the random choices (the anchor when none is
                given, and ``normal``'s picks); None uses torch's global generator.
            anchor: the first sample (the paper iterates it through all training samples); None
                draws it uniformly.
            cosines: a precomputed (n, n) :func:`sample_angles` matrix to use instead of
                computing the needed rows (angles change little during training, Prop. 4).
            implementation: how the kernel is computed (see :func:`pinnk.ntk`).

        Returns:
            An int64 tensor (b,) of distinct indices, anchor first, on the model's device.
        """
        term = _check_term(term)
        _, device = model_dtype_device(model)
        n = term.n
        b = check_int(batch_size, "batch_size", minimum=1)
        if b > n:
            raise ValueError(f"batch_size: expected at most the {n} points of term "
                             f"{term.name!r}, got {b}")
        if generator is not None and not isinstance(generator, torch.Generator):
            raise TypeError(f"generator: expected a torch.Generator or None, got "
                            f"{type(generator).__name__}")
        if anchor is not None:
            anchor = check_int(anchor, "anchor", minimum=0)
            if anchor >= n:
                raise ValueError(f"anchor: expected an index below {n}, got {anchor}")
        if cosines is not None:
            if not isinstance(cosines, torch.Tensor):
                raise TypeError(f"cosines: expected a tensor (n, n), got "
                                f"{type(cosines).__name__}")
            if tuple(cosines.shape) != (n, n):
                raise ValueError(f"cosines: expected shape ({n}, {n}), got "
                                 f"{tuple(cosines.shape)}")
        idx = self._pick(model, term, b, generator, anchor, cosines, implementation)
        return idx.to(device=device, dtype=torch.int64)

    def _first(self, n, generator, anchor) -> int:
        if anchor is not None:
            return anchor
        return int(random_permutation(n, generator)[0])

    def _pick(self, model, term, b, generator, anchor, cosines, implementation) -> torch.Tensor:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class Normal(BatchStrategy):
    """``normal``: the anchor, then uniformly random distinct samples."""

    name = "normal"

    def _pick(self, model, term, b, generator, anchor, cosines, implementation):
        n = term.n
        first = self._first(n, generator, anchor)
        perm = random_permutation(n, generator)
        rest = perm[perm != first][:b - 1]
        return torch.cat([torch.tensor([first]), rest])


class _Greedy(BatchStrategy):
    """Greedy choice by a score of the cosines to the samples already chosen (minimised)."""

    uses_angles = True

    def _score(self, cos: torch.Tensor) -> torch.Tensor:
        """cos (m, n) to the m chosen samples -> score (n,), lower is better."""
        raise NotImplementedError

    def _pick(self, model, term, b, generator, anchor, cosines, implementation):
        n = term.n
        chosen = [self._first(n, generator, anchor)]
        if b == 1:
            return torch.tensor(chosen)
        if cosines is None:
            cosines = sample_angles(model, term, chosen if b == 2 else None, implementation)
            full = b > 2
        else:
            full = True
        rows = [cosines[chosen[0]] if full else cosines[0]]
        while len(chosen) < b:
            score = self._score(torch.stack(rows)).detach().to("cpu", torch.float64)
            free = torch.ones(n, dtype=torch.bool)
            free[torch.tensor(chosen)] = False
            # NaN (a vanishing gradient) ranks last; chosen samples are never candidates.
            score = torch.where(free & ~torch.isnan(score), score,
                                torch.full_like(score, float("inf")))
            k = int(score.argmin())
            if not bool(free[k]):
                k = int(free.nonzero()[0])
            chosen.append(k)
            if len(chosen) < b:
                rows.append(cosines[k])
        return torch.tensor(chosen)


class Adaptive(_Greedy):
    """``adaptive``: the sample "farthest away" — the lowest cosine to the anchor (greedy: the
    lowest mean cosine to the samples chosen so far)."""

    name = "adaptive"

    def _score(self, cos):
        return cos.mean(0)


class Worst(_Greedy):
    """``worst``: the "nearest" sample — the highest cosine to the anchor, the most redundant
    update direction (greedy: the highest mean cosine)."""

    name = "worst"

    def _score(self, cos):
        return -cos.mean(0)


class Orthogonal(_Greedy):
    """``orthogonal``: the sample whose gradient is closest to orthogonal to the anchor's —
    the smallest |cos| (greedy: the smallest largest |cos| to the samples chosen so far)."""

    name = "orthogonal"

    def _score(self, cos):
        return cos.abs().amax(0)


class LargestResidual(BatchStrategy):
    """``residual`` (not in the paper): the samples with the largest |r| = |D f(x) − y|, after the
    anchor when one is given. Needs the term's labels; ``generator`` is unused."""

    name = "residual"

    def _pick(self, model, term, b, generator, anchor, cosines, implementation):
        with torch.enable_grad():
            r = term.residual(model).detach().abs().to("cpu", torch.float64)
        r = torch.where(torch.isnan(r), torch.full_like(r, -1.0), r)
        if anchor is None:
            return torch.topk(r, b).indices
        r[anchor] = -float("inf")
        return torch.cat([torch.tensor([anchor]), torch.topk(r, b - 1).indices])


BATCH_STRATEGIES = {cls.name: cls for cls in (Normal, Adaptive, Worst, Orthogonal,
                                              LargestResidual)}


def batch_strategy(name: str | BatchStrategy) -> BatchStrategy:
    """A strategy by name: ``normal``, ``adaptive``, ``worst``, ``orthogonal`` (Fig. A2b) or
    ``residual`` (an instance is passed through)."""
    if isinstance(name, BatchStrategy):
        return name
    if not isinstance(name, str):
        raise TypeError(f"name: expected a strategy name or a BatchStrategy, got "
                        f"{type(name).__name__}")
    try:
        return BATCH_STRATEGIES[name]()
    except KeyError:
        raise ValueError(f"name: unknown batch strategy {name!r}; expected one of "
                         f"{', '.join(BATCH_STRATEGIES)}") from None


__all__ = ["sample_angles", "BatchStrategy", "Normal", "Adaptive", "Worst", "Orthogonal",
           "LargestResidual", "BATCH_STRATEGIES", "batch_strategy"]
