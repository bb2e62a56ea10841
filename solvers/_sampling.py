"""Collocation-point samplers: how the trainer redraws the points every ``resample_every`` steps.

A sampler is a stateless strategy object passed to :func:`solvers.train` (``sampler=``). Its
randomness comes from the trainer's sampling generator, which the checkpoint saves, so a
resumed run draws the same points as an uninterrupted one.

* :class:`Uniform` — a fresh sample from the problem's own distribution (the default).
* :class:`ResidualAdaptive` — residual-based adaptive distribution (RAD) of Wu, Zhu, Tan,
  Kartha & Lu 2023: each residual term keeps the candidates where its residual is large.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from typing import Any

import torch

import pinnk
from pinnk._weighting import _parse_value

__all__ = ["Sampler", "Uniform", "ResidualAdaptive", "sampler_from_spec", "rad_probabilities",
           "select_rows"]

# Candidates whose residuals are evaluated in one pass (bounds the memory of the derivative
# streams; the residual of a point does not depend on the others).
_CHUNK = 16384
# torch.multinomial draws without replacement from at most 2^24 categories.
_MAX_CANDIDATES = 2 ** 24


def _uniform_terms(problem: pinnk.Problem, points: Any, generator: torch.Generator,
                   dtype: torch.dtype, device: torch.device) -> list:
    """``problem.terms(points, generator, dtype)`` moved to ``device`` (the trainer's draw)."""
    return [t.to(device=device, dtype=dtype) for t in problem.terms(points, generator, dtype)]


def select_rows(term: pinnk.Term, rows: torch.Tensor | slice) -> pinnk.Term:
    """A copy of ``term`` at the points ``term.points[rows]``; tensor labels take the same rows,
    callable or zero labels and the residual flag are kept."""
    if isinstance(rows, torch.Tensor):
        rows = rows.to(term.points.device)
    target = term._target
    if isinstance(target, torch.Tensor):
        target = target[rows]
    return term.with_points(term.points[rows], target=target)


class Sampler:
    """Base class of the samplers.

    ``sample(problem, points, generator, dtype=..., device=..., model=..., terms=...)`` returns the
    new list of terms; ``config()`` is its JSON description (written to config.json and compared on
    resume). ``adaptive`` samplers look at the model and so need ``resample_every > 0``.
    """

    name = "sampler"
    adaptive = False

    def sample(self, problem: pinnk.Problem, points: int | Mapping | None,
               generator: torch.Generator, *, dtype: torch.dtype, device: torch.device,
               model: torch.nn.Module | None = None,
               terms: Sequence[pinnk.Term] | None = None) -> list:
        """New terms for ``problem`` with ``points`` per term (as for ``problem.terms``).

        Args:
            problem: the problem whose terms are drawn.
            points: points per term (an int, a mapping name -> count or None for the defaults).
            generator: the (CPU) generator of every random draw.
            dtype, device: of the returned terms.
            model: the network being trained (adaptive samplers evaluate its residuals).
            terms: the current terms (their names and which are PDE residuals).
        """
        raise NotImplementedError

    def config(self) -> dict:
        """A JSON-able description (the resolved run config)."""
        return {"kind": self.name}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items() if k != "kind")
        return f"{type(self).__name__}({args})"

    def __eq__(self, other) -> bool:
        return type(other) is type(self) and other.config() == self.config()

    def __hash__(self) -> int:
        return hash((type(self).__name__, tuple(sorted(self.config().items()))))


class Uniform(Sampler):
    """Fresh points from the problem's own distribution (``problem.terms``) for every term: the
    default, and the trainer's behaviour without a sampler."""

    name = "uniform"

    def sample(self, problem, points, generator, *, dtype, device, model=None, terms=None):
        return _uniform_terms(problem, points, generator, dtype, device)


def _check_nonnegative(value: Any, name: str) -> float:
    """``value`` as a finite float >= 0, or a TypeError/ValueError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: expected a real number >= 0, got {value!r}")
    v = float(value)
    if not math.isfinite(v) or v < 0:
        raise ValueError(f"{name}: expected a real number >= 0, got {value!r}")
    return v


def _check_count(value: Any, name: str, least: int) -> int:
    """``value`` as an int >= ``least``, or a TypeError/ValueError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name}: expected an integer >= {least}, got {value!r}")
    if int(value) < least:
        raise ValueError(f"{name}: expected an integer >= {least}, got {int(value)}")
    return int(value)


def rad_probabilities(residuals: torch.Tensor, k: float, c: float) -> torch.Tensor:
    """The RAD sampling weights p_j = |r_j|^k / mean_i |r_i|^k + c (float64, on the CPU).

    Unnormalised (``torch.multinomial`` normalises). Computed as (|r|/max|r|)^k, which has the
    same ratios and cannot overflow for a large k. All-zero residuals give equal weights (also for
    c = 0). Raises FloatingPointError if a residual is NaN or Inf.
    """
    a = residuals.detach().abs().to(device="cpu", dtype=torch.float64).reshape(-1)
    if not bool(torch.isfinite(a).all()):
        bad = int((~torch.isfinite(a)).sum())
        raise FloatingPointError(f"the residual is NaN/Inf at {bad} of {a.numel()} candidate "
                                 f"points")
    top = a.max() if a.numel() else torch.tensor(0.0, dtype=torch.float64)
    if float(top) == 0.0:
        return torch.ones_like(a)
    w = (a / top) ** k
    return w / w.mean() + c


class ResidualAdaptive(Sampler):
    """Residual-based adaptive distribution, RAD (Wu, Zhu, Tan, Kartha & Lu 2023, CMAME 403).

    At every resampling, for each PDE residual term (``term.is_residual``) with n points:
    draw ``candidates``·n points from the problem's own distribution, evaluate |r(x_j)| with the
    current network (no gradients), and keep n of them, drawn without replacement with

        p(x_j) ∝ |r(x_j)|^k / mean_i |r(x_i)|^k + c.

    k = 0 (or a large c) is uniform sampling; a large k with c = 0 puts the points where the
    residual is largest (if fewer than n candidates then have p > 0, the rest are drawn
    uniformly from the others). The other terms (initial, boundary, data) are redrawn as by
    :class:`Uniform`, and tensor labels stay matched to the kept points. The first sample of a
    run is uniform (there is no trained network yet).

    A layer much thinner than the candidates' spacing (a shock at small viscosity) is rarely hit
    by uniform candidates at all. With ``local`` > 0, ``local``·n more candidates are drawn
    near the uniform ones: a uniform candidate chosen with the RAD weights above (with
    replacement), plus Gaussian noise of standard deviation ``scale`` times the domain's extent
    per axis (for half of them) or a tenth of that (the other half), clipped to the domain box —
    so that the draw zooms in on where the residual is largest. Terms with labels at their
    points (which cannot move) take no local candidates.

    Args:
        k: the exponent, a real number >= 0 (paper default 1).
        c: the uniform floor, a real number >= 0 (paper default 1).
        candidates: candidates per kept point, an integer >= 1.
        local: local candidates per kept point, an integer >= 0 (default 0: none).
        scale: their spread as a fraction of the domain's extent, a real number in (0, 1].
    """

    name = "rad"
    adaptive = True

    def __init__(self, k: float = 1.0, c: float = 1.0, candidates: int = 4, local: int = 0,
                 scale: float = 0.01):
        self.k = _check_nonnegative(k, "k")
        self.c = _check_nonnegative(c, "c")
        self.candidates = _check_count(candidates, "candidates", 1)
        self.local = _check_count(local, "local", 0)
        self.scale = _check_nonnegative(scale, "scale")
        if not 0.0 < self.scale <= 1.0:
            raise ValueError(f"scale: expected a real number in (0, 1], got {scale!r}")

    def config(self) -> dict:
        out = {"kind": self.name, "k": self.k, "c": self.c, "candidates": self.candidates}
        if self.local:  # (runs without local candidates keep the config they had)
            out.update(local=self.local, scale=self.scale)
        return out

    def probabilities(self, residuals: torch.Tensor) -> torch.Tensor:
        """The unnormalised weights of :func:`rad_probabilities` with this k and c."""
        return rad_probabilities(residuals, self.k, self.c)

    def choose(self, residuals: torch.Tensor, n: int, generator: torch.Generator) -> torch.Tensor:
        """Indices (sorted, CPU, int64) of ``n`` of the candidates with ``residuals``, drawn without
        replacement with the RAD probabilities from ``generator`` (all of them if n >= their
        number; candidates of weight 0 only once those of weight > 0 are used up, uniformly)."""
        p = self.probabilities(residuals)
        m = p.numel()
        if n >= m:
            return torch.arange(m)
        if m > _MAX_CANDIDATES:
            raise ValueError(f"candidates: {m} candidate points exceed the {_MAX_CANDIDATES} "
                             f"that can be drawn from; use fewer candidates or points")
        positive = p > 0
        n_pos = int(positive.sum())
        if n_pos < n:
            # Fewer candidates with weight > 0 than points to keep (c = 0 and residuals that
            # vanish or underflow): keep all of those and fill up uniformly from the others.
            rest = (~positive).nonzero()[:, 0]
            fill = torch.multinomial(torch.ones(rest.numel(), dtype=torch.float64), n - n_pos,
                                     replacement=False, generator=generator)
            idx = torch.cat([positive.nonzero()[:, 0], rest[fill]])
        else:
            idx = torch.multinomial(p, n, replacement=False, generator=generator)
        return idx.sort().values

    @staticmethod
    def residual_magnitudes(term: pinnk.Term, model: torch.nn.Module,
                            chunk: int = _CHUNK) -> torch.Tensor:
        """|r| of ``term`` under ``model`` at its points, (n,) float64 on the CPU (no gradients;
        evaluated ``chunk`` points at a time)."""
        parts = []
        with torch.no_grad():
            for start in range(0, term.n, chunk):
                part = term if term.n <= chunk else select_rows(term, slice(start, start + chunk))
                # unchecked: a NaN is reported by rad_probabilities as a stop of the training
                parts.append(part.residual(model, check=False).detach().abs().to(
                    device="cpu", dtype=torch.float64))
        return torch.cat(parts)

    def sample(self, problem, points, generator, *, dtype, device, model=None, terms=None):
        if model is None or terms is None:
            return _uniform_terms(problem, points, generator, dtype, device)
        names = [t.name for t in terms]
        residual = {t.name for t in terms if t.is_residual}
        counts = problem.counts(points, names)
        if not residual or self.candidates == 1:
            return _uniform_terms(problem, counts, generator, dtype, device)
        scaled = {nm: counts[nm] * self.candidates if nm in residual else counts[nm]
                  for nm in names}
        out = []
        for term in _uniform_terms(problem, scaled, generator, dtype, device):
            if term.name in residual:
                try:
                    r = self.residual_magnitudes(term, model)
                    if self.local and not term.has_point_labels:
                        term, r = self._with_local(problem, term, r, counts[term.name],
                                                   model, generator)
                    idx = self.choose(r, counts[term.name], generator)
                except FloatingPointError as exc:
                    raise FloatingPointError(f"term {term.name!r}: {exc}") from None
                term = select_rows(term, idx)
            out.append(term)
        return out

    def _with_local(self, problem, term: pinnk.Term, r: torch.Tensor, n: int,
                    model: torch.nn.Module, generator: torch.Generator) -> tuple:
        """``term`` with ``local``·n candidates added near its candidates (drawn with the RAD
        weights of ``r``), and the residual magnitudes of all of them."""
        x = term.points
        lo = torch.tensor(problem.domain.lower, dtype=torch.float64)
        hi = torch.tensor(problem.domain.upper, dtype=torch.float64)
        m = self.local * n
        pick = torch.multinomial(self.probabilities(r), m, replacement=True, generator=generator)
        seeds = x.detach().to("cpu", torch.float64)[pick]
        spread = torch.full((m, 1), self.scale, dtype=torch.float64)
        spread[m // 2:] *= 0.1
        noise = torch.randn(m, x.shape[1], generator=generator, dtype=torch.float64)
        near = torch.minimum(torch.maximum(seeds + noise * spread * (hi - lo), lo), hi)
        extra = term.with_points(near.to(device=x.device, dtype=x.dtype))
        r_extra = self.residual_magnitudes(extra, model)
        return (term.with_points(torch.cat([x, extra.points])), torch.cat([r, r_extra]))


_KINDS = {"uniform": Uniform, "rad": ResidualAdaptive}
_OPTIONS = {"uniform": (), "rad": ("k", "c", "candidates", "local", "scale")}


def _build(kind: Any, args: Mapping) -> Sampler:
    if kind not in _KINDS:
        raise ValueError(f"sampler: unknown kind {kind!r}; expected one of {', '.join(_KINDS)}")
    unknown = [k for k in args if k not in _OPTIONS[kind]]
    if unknown:
        valid = ", ".join(_OPTIONS[kind]) or "no options"
        raise ValueError(f"sampler: unknown option(s) {', '.join(map(str, unknown))} for "
                         f"{kind!r}; expected {valid}")
    return _KINDS[kind](**args)


def sampler_from_spec(spec: str | Mapping | Sampler) -> Sampler:
    """A sampler from an object, a spec string or a ``config()`` mapping.

    Strings: ``"uniform"``, ``"rad"``, ``"rad:k=2,c=0,candidates=8"``. Mappings:
    ``{"kind": "rad", "k": 2.0, "c": 0.0, "candidates": 8}``.
    """
    if isinstance(spec, Sampler):
        return spec
    if isinstance(spec, Mapping):
        args = {str(k): v for k, v in spec.items() if k != "kind"}
        return _build(spec.get("kind"), args)
    if not isinstance(spec, str) or not spec.strip():
        raise TypeError(f"sampler: expected a spec string such as 'rad:k=1,c=1', a mapping or a "
                        f"Sampler, got {spec!r}")
    kind, _, argtext = spec.strip().partition(":")
    args: dict = {}
    for item in filter(None, (s.strip() for s in argtext.split(","))):
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise ValueError(f"sampler: cannot read {item!r} in {spec!r}; expected key=value")
        args[key.strip()] = _parse_value(value.strip())
    return _build(kind.strip(), args)
