"""The Problem contract: a PDE (or regression) task stated as derivative-label terms."""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from ._terms import Term
from ._validation import as_points, check_int, on_host


@dataclass(frozen=True)
class Box:
    """An axis-aligned box Π_k [lower_k, upper_k] in R^d."""

    lower: tuple
    upper: tuple

    def __post_init__(self):
        if len(self.lower) != len(self.upper) or not self.lower:
            raise ValueError("upper: expected as many upper bounds as lower bounds (>= 1)")
        for lo, hi in zip(self.lower, self.upper):
            if not float(hi) > float(lo):
                raise ValueError(f"upper: expected upper > lower, got [{lo}, {hi}]")

    @property
    def dim(self) -> int:
        return len(self.lower)

    @on_host
    def sample(self, n: int, generator: torch.Generator | None = None,
               dtype: torch.dtype | None = None, *, device: Any = None) -> torch.Tensor:
        """n points uniform in the box, shape (n, d), ``dtype`` (default torch's default) on
        ``device`` (drawn on the CPU, so a seeded generator gives the same points everywhere)."""
        n = check_int(n, "n", minimum=1)
        lo = torch.tensor(self.lower, dtype=dtype or torch.get_default_dtype())
        hi = torch.tensor(self.upper, dtype=lo.dtype)
        x = lo + (hi - lo) * torch.rand(n, self.dim, generator=generator, dtype=lo.dtype)
        return x.to(device=device) if device is not None else x

    @on_host
    def sample_boundary(self, n: int, generator: torch.Generator | None = None,
                        dtype: torch.dtype | None = None, *,
                        device: Any = None) -> tuple[torch.Tensor, torch.Tensor]:
        """n points uniform on the boundary of the box and their outward unit normals.

        A face {x_k = lower_k} or {x_k = upper_k} is drawn with probability proportional to its
        (d−1)-volume Π_{j≠k} (upper_j − lower_j) (in 1D the two end points, equally likely), then
        a uniform point on it; its normal is −e_k or +e_k. The same protocol as
        :class:`pinnk.mesh.MeshDomain` and :class:`pinnk.interop.deepxde.Geometry`.

        Returns:
            points (n, d) and normals (n, d), ``dtype`` (default torch's default) on ``device``.
        """
        n = check_int(n, "n", minimum=1)
        dt = dtype or torch.get_default_dtype()
        lo = torch.tensor(self.lower, dtype=torch.float64)
        hi = torch.tensor(self.upper, dtype=torch.float64)
        sides = hi - lo
        d = self.dim
        face_area = torch.stack([sides[torch.arange(d) != k].prod() for k in range(d)])
        probs = face_area.repeat_interleave(2)  # faces (k, lower), (k, upper), k = 0..d-1
        face = torch.multinomial(probs, n, replacement=True, generator=generator)
        k, upper = face // 2, (face % 2).bool()
        x = lo + sides * torch.rand(n, d, generator=generator, dtype=torch.float64)
        rows = torch.arange(n)
        x[rows, k] = torch.where(upper, hi[k], lo[k])
        normals = torch.zeros(n, d, dtype=torch.float64)
        normals[rows, k] = torch.where(upper, 1.0, -1.0).to(torch.float64)
        return x.to(dtype=dt, device=device), normals.to(dtype=dt, device=device)

    def grid(self, resolution: int | Sequence[int], dtype: torch.dtype | None = None):
        """A tensor-product grid: points (Π r_k, d) and the grid shape (r_0, ..., r_{d−1}),
        the first coordinate varying slowest (``indexing="ij"``)."""
        res = [resolution] * self.dim if isinstance(resolution, int) else list(resolution)
        if len(res) != self.dim:
            raise ValueError(f"resolution: expected {self.dim} entries, got {len(res)}")
        axes = [torch.linspace(lo, hi, check_int(r, "resolution", minimum=2),
                               dtype=dtype or torch.get_default_dtype())
                for lo, hi, r in zip(self.lower, self.upper, res)]
        mesh = torch.meshgrid(*axes, indexing="ij")
        return torch.stack([m.reshape(-1) for m in mesh], dim=-1), tuple(res)


@dataclass
class Defaults:
    """Suggested training setup for a problem (the trainer and benchmarks start from these)."""

    width: int = 50
    depth: int = 4
    activation: str = "tanh"
    steps: int = 5000
    lr: float = 1e-3
    points: Mapping[str, int] = field(default_factory=dict)  # term name -> number of points
    embedding: Mapping[str, Any] | None = None  # e.g. {"kind": "periodic", "dims": [0], ...}
    positive_outputs: Sequence[int] = ()         # output components kept positive


class Problem(abc.ABC):
    """A physics-informed task: terms (operators with labels at sampled points) and a solution.

    Subclasses set the class attributes and implement :meth:`terms` and :meth:`solution`.

    Attributes:
        name: the registry name, e.g. ``"convection"``.
        input_names: names of the d input coordinates, e.g. ``("x", "t")``.
        output_names: names of the outputs, e.g. ``("rho", "u", "p")``.
        domain: the bounding :class:`Box` of the inputs.
        time_index: the input coordinate that is time, or None.
        exact: True when :meth:`solution` is exact, False when it comes from a reference solver.
        defaults: the suggested :class:`Defaults`.
    """

    name: str = ""
    input_names: tuple = ()
    output_names: tuple = ()
    domain: Box
    time_index: int | None = None
    exact: bool = True
    defaults: Defaults = Defaults()

    @property
    def params(self) -> dict:
        """The problem's parameters (for configs and reports)."""
        return {}

    @property
    def in_dim(self) -> int:
        return len(self.input_names)

    @property
    def out_dim(self) -> int:
        return len(self.output_names)

    @abc.abstractmethod
    def terms(self, n: int | Mapping[str, int] | None = None,
              generator: torch.Generator | None = None,
              dtype: torch.dtype | None = None) -> list[Term]:
        """Sample the terms afresh.

        Args:
            n: points per term: an int for every term, a mapping term name -> count, or None for
                :attr:`defaults.points`.
            generator: the random generator for sampling (reproducible resampling).
            dtype: the dtype of the points and labels (default: torch's default).

        Returns:
            The list of :class:`pinnk.Term`, each with its operator and labels.
        """

    @abc.abstractmethod
    def solution(self, x: torch.Tensor) -> torch.Tensor:
        """The solution at ``x`` (n, d) as a tensor (n, out) with the dtype of ``x``."""

    def term_names(self) -> list[str]:
        """The names of the terms :meth:`terms` returns."""
        return [t.name for t in self.terms(1)]

    def counts(self, n: int | Mapping[str, int] | None, names: Sequence[str], *,
               name: str = "n") -> dict:
        """Resolve ``n`` (see :meth:`terms`) into a count per term name; error messages name the
        argument ``name`` (the caller's name for ``n``, e.g. ``"points"``)."""
        if n is None:
            missing = [k for k in names if k not in self.defaults.points]
            if missing:
                raise ValueError(f"{name}: no default point count for term(s) {missing}")
            return {k: int(self.defaults.points[k]) for k in names}
        if isinstance(n, Mapping):
            unknown = set(n) - set(names)
            if unknown:
                raise ValueError(f"{name}: unknown term name(s) {sorted(unknown)}; expected "
                                 f"{list(names)}")
            out = {}
            for k in names:
                v = n.get(k, self.defaults.points.get(k))
                if v is None:
                    raise ValueError(f"{name}: no point count for term {k!r}")
                out[k] = check_int(v, f"{name}[{k!r}]", minimum=1)
            return out
        n = check_int(n, name, minimum=1)
        return {k: n for k in names}

    def evaluation_points(self, resolution: int | Sequence[int] = 101,
                          dtype: torch.dtype | None = None):
        """A grid over :attr:`domain` for errors, plots and exports: (points (N, d), shape)."""
        return self.domain.grid(resolution, dtype=dtype)

    def check_points(self, x: Any) -> torch.Tensor:
        """Validate points for :meth:`solution`: shape (n, d) with d = :attr:`in_dim`."""
        x = as_points(x, "x")
        if x.shape[1] != self.in_dim:
            raise ValueError(f"x: expected {self.in_dim} coordinates {self.input_names}, got "
                             f"{x.shape[1]}")
        return x

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"{type(self).__name__}({params})"
