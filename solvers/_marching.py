"""Time marching: train an evolution problem window by window in time.

A PINN on [0, T] must carry the solution through every time at once; on evolution problems whose
solution develops fine structure (Allen–Cahn's interfaces, KdV's solitons) the fit of the late
times lags behind the early ones and the error grows with t. Marching (Wight & Zhao 2020; the time
windows of Wang, Sankaran, Perdikaris 2022, "Respecting causality") cuts [0, T] into windows
[t_k, t_{k+1}] and trains one after the other: window k's initial condition is the value of window
k − 1's network at t_k. Each window is a short, easy problem — which is where a Gauss–Newton step
converges to round-off in tens of steps — and the composite model is the window networks side by
side.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

import pinnk
from pinnk._validation import check_float as check_real, check_int

__all__ = ["TimeWindow", "WindowedModel", "MarchResult", "train_marching", "window_edges"]


def window_edges(t0: float, t1: float, windows: int | Sequence[float]) -> list[float]:
    """The window edges t_0 = t0 < t_1 < … < t_K = t1: ``windows`` equal windows (an int) or
    the given interior edges (a sequence of times strictly inside (t0, t1), increasing)."""
    if isinstance(windows, bool):
        raise TypeError(f"windows: expected an int or a sequence of times, got {windows!r}")
    if isinstance(windows, int):
        k = check_int(windows, "windows", minimum=1)
        return [t0 + (t1 - t0) * j / k for j in range(k)] + [t1]
    inner = [check_real(v, "windows") for v in windows]
    edges = [t0, *inner, t1]
    if any(b <= a for a, b in zip(edges, edges[1:])):
        raise ValueError(f"windows: expected increasing times strictly inside ({t0}, {t1}), "
                         f"got {inner}")
    return edges


class TimeWindow(pinnk.Problem):
    """``base`` restricted to the time window [t0, t1], its initial condition taken from a model.

    The terms are the base problem's, sampled as it samples them: an *initial* term — one whose
    points all lie at t = T0 — lies at t = t0 with the labels D g(x, t0), D its operator and g
    the ``initial`` model (the previous window's network); a term with zero or callable labels
    (residuals, periodicity, boundary values given as functions) has its points mapped affinely
    in time from the base's interval [T0, T1] onto [t0, t1]; a term with labels at its sampled
    points (a tensor) keeps the base's points that fall in the window (drawn until there are as
    many as asked for), so its labels stay valid. With ``initial=None`` (the first window,
    t0 = T0) the base's own initial labels are kept. A term whose points all lie at t = T1 (a
    final-time condition) belongs to the last window only: an earlier window raises a
    ValueError. :meth:`solution` is the base's.

    Args:
        base: a time-dependent :class:`pinnk.Problem` (``time_index`` set).
        t0, t1: the window, T0 ≤ t0 < t1 ≤ T1.
        initial: a module (n, d) -> (n, out), or None for the base's initial condition (only
            when t0 = T0).
    """

    def __init__(self, base: pinnk.Problem, t0: float, t1: float,
                 initial: torch.nn.Module | None = None):
        if not isinstance(base, pinnk.Problem):
            raise TypeError(f"base: expected a pinnk.Problem, got {type(base).__name__}")
        if base.time_index is None:
            raise ValueError(f"base: {base.name!r} has no time coordinate (time_index is None)")
        ti = base.time_index
        lo, hi = float(base.domain.lower[ti]), float(base.domain.upper[ti])
        t0, t1 = check_real(t0, "t0"), check_real(t1, "t1")
        if not lo <= t0 < t1 <= hi:
            raise ValueError(f"t0, t1: expected {lo} <= t0 < t1 <= {hi}, got t0={t0}, t1={t1}")
        if initial is None and t0 != lo:
            raise ValueError(f"initial: a window that starts after the base's initial time {lo} "
                             f"needs the model whose values start it, got None (t0={t0})")
        if initial is not None and not isinstance(initial, torch.nn.Module):
            raise TypeError(f"initial: expected a torch.nn.Module or None, got "
                            f"{type(initial).__name__}")
        self.base, self.t0, self.t1, self.initial = base, t0, t1, initial
        self._span = (lo, hi)
        self.name = base.name
        self.input_names, self.output_names = base.input_names, base.output_names
        self.time_index, self.exact = ti, base.exact
        self.defaults = base.defaults
        lower, upper = list(base.domain.lower), list(base.domain.upper)
        lower[ti], upper[ti] = t0, t1
        self.domain = pinnk.Box(tuple(lower), tuple(upper))

    @property
    def params(self) -> dict:
        return {**self.base.params, "window": [self.t0, self.t1]}

    def _to_window(self, x: torch.Tensor) -> torch.Tensor:
        lo, hi = self._span
        x = x.clone()
        ti = self.time_index
        x[:, ti] = self.t0 + (x[:, ti] - lo) * ((self.t1 - self.t0) / (hi - lo))
        return x

    def terms(self, n=None, generator=None, dtype=None) -> list:
        out = []
        ti, lo = self.time_index, self._span[0]
        drawn = self.base.terms(n, generator, dtype)
        names = [t.name for t in drawn]
        for term in drawn:
            initial = bool((term.points[:, ti] == lo).all())
            if self.t1 < self._span[1] and bool((term.points[:, ti] == self._span[1]).all()):
                raise ValueError(f"base: term {term.name!r} holds at the final time "
                                 f"{self._span[1]}, which the window [{self.t0}, {self.t1}] "
                                 f"does not reach; marching takes initial-value problems")
            if initial and self.initial is None:
                out.append(term)  # the first window: the base's own initial condition
                continue
            if initial:
                x = self._to_window(term.points)
                p = next(iter(self.initial.parameters()), None)
                xm = x if p is None else x.to(dtype=p.dtype, device=p.device)
                y = term.operator(self.initial, xm).detach()
                out.append(term.with_points(x, y.to(dtype=x.dtype, device=x.device)))
            elif term.has_point_labels:
                out.append(self._inside(term, names, generator, dtype))
            else:  # zero or callable labels: the same term at the mapped points
                out.append(term.with_points(self._to_window(term.points)))
        return out

    def _inside(self, term, names, generator, dtype):
        """A term with labels at its sampled points (a tensor): its points inside the window,
        drawn from the base until there are as many as asked for (labels stay valid); the base's
        other terms (``names``) are drawn at one point each."""
        ti, want = self.time_index, term.n
        lo, hi = self._span
        share = (self.t1 - self.t0) / (hi - lo)
        xs, ys, have = [], [], 0
        for _ in range(100):
            if have >= want:
                break
            m = int(1.25 * (want - have) / share) + 16
            counts = {**{k: 1 for k in names}, term.name: m}
            draw = {t.name: t for t in self.base.terms(counts, generator, dtype)}
            d = draw[term.name]
            t = d.points[:, ti]
            keep = (t >= self.t0) & (t <= self.t1)
            xs.append(d.points[keep])
            ys.append(d.target_values()[keep])
            have += int(keep.sum())
        if have < want:
            raise ValueError(f"base: term {term.name!r} has labels at its sampled points and "
                             f"too few of them fall in the window [{self.t0}, {self.t1}]")
        return pinnk.Term(term.name, term.operator, torch.cat(xs)[:want], torch.cat(ys)[:want],
                          residual=term.is_residual)

    def term_names(self) -> list[str]:
        return self.base.term_names()

    def solution(self, x: torch.Tensor) -> torch.Tensor:
        return self.base.solution(x)

    def __getattr__(self, name: str) -> Any:
        # anything else the base offers (its reference, its residual operator, ...)
        if name == "base":
            raise AttributeError(name)
        return getattr(self.base, name)


class WindowedModel(torch.nn.Module):
    """The composite of the window networks: u(x) = f_k(x) for t in [t_k, t_{k+1}) (the last
    window closed), ``time_index`` the input coordinate that is t.

    Args:
        models: the K window networks, each (n, d) -> (n, out).
        edges: the K + 1 window edges, increasing.
        time_index: the coordinate of t in the inputs.
    """

    def __init__(self, models: Sequence[torch.nn.Module], edges: Sequence[float],
                 time_index: int):
        super().__init__()
        if len(edges) != len(models) + 1:
            raise ValueError(f"edges: expected {len(models) + 1} edges for {len(models)} models, "
                             f"got {len(edges)}")
        self.models = torch.nn.ModuleList(models)
        self.edges = [float(e) for e in edges]
        self.time_index = int(time_index)

    def window_of(self, t: torch.Tensor) -> torch.Tensor:
        """The window index of every time in ``t`` (n,): k with t_k ≤ t < t_{k+1}."""
        inner = torch.tensor(self.edges[1:-1], dtype=t.dtype, device=t.device)
        return torch.bucketize(t.contiguous(), inner, right=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k = self.window_of(x[:, self.time_index])
        outs = None
        for j, m in enumerate(self.models):
            rows = torch.nonzero(k == j).flatten()
            if rows.numel() == 0:
                continue
            y = m(x[rows])
            if outs is None:
                outs = y.new_zeros(x.shape[0], y.shape[1])
            outs = outs.index_copy(0, rows, y)
        return self.models[0](x) if outs is None else outs  # no rows: the empty output


class MarchResult:
    """What :func:`train_marching` returns: ``model`` (the :class:`WindowedModel`), ``results``
    (each window's :class:`~solvers.TrainResult`), ``edges``, ``metrics`` (the relative L2 per
    output of the composite on the base problem's evaluation grid, the total wall time)."""

    def __init__(self, model: WindowedModel, results: list, edges: list, metrics: dict):
        self.model, self.results, self.edges, self.metrics = model, results, edges, metrics

    def __repr__(self) -> str:
        return (f"MarchResult(windows={len(self.results)}, "
                f"relative_l2={self.metrics['relative_l2']})")


def march_metrics(problem: pinnk.Problem, composite: WindowedModel, edges: Sequence[float],
                  window_metrics: Sequence[Mapping]) -> dict:
    """The metrics of a marched run (:attr:`MarchResult.metrics`): the relative L2 per output of
    ``composite`` on ``problem``'s evaluation grid, the total wall time and steps, and per window
    its interval, steps, wall time, final loss and relative L2 (from each window's trainer
    ``metrics``, in window order)."""
    from ._export import evaluate_fields, relative_l2

    data = evaluate_fields(problem, composite)
    rel = relative_l2(data.prediction, data.reference)
    return {"relative_l2": {n: float(v) for n, v in zip(problem.output_names, rel)},
            "wall_time_s": sum(m["wall_time_s"] for m in window_metrics),
            "steps": sum(m["steps"] for m in window_metrics),
            "windows": [{"t": [edges[k], edges[k + 1]], "steps": m["steps"],
                         "wall_time_s": m["wall_time_s"], "final_loss": m["final_loss"],
                         "relative_l2": m["relative_l2"]}
                        for k, m in enumerate(window_metrics)]}


def train_marching(problem: pinnk.Problem, windows: int | Sequence[float], *,
                   steps: int | Sequence[int], model: torch.nn.Module | None = None,
                   warm_start: bool = True, out: str | Path | None = None,
                   model_options: Mapping | None = None, budget_s: float | None = None,
                   callback=None, resume: bool = False, **train_kwargs) -> MarchResult:
    """Train ``problem`` window by window in time (time marching).

    Window k is a :class:`TimeWindow` of ``problem`` on [t_k, t_{k+1}], trained by
    :func:`~solvers.train` with ``train_kwargs`` (optimizer, weighting, points, resample_every,
    dtype, seed, …); its initial condition is the value at t_k of window k − 1's network (the
    first window keeps the problem's own). With ``warm_start`` window k starts from a copy of
    window k − 1's network (its values at t_k already close to the labels), otherwise from a
    fresh network of the same configuration. Each window's points are the problem's point counts
    (so a window holds as many points as the whole interval would: K times the density).

    Args:
        problem: a time-dependent :class:`pinnk.Problem`.
        windows: the number of equal windows, or the interior edges (increasing times).
        steps: the steps of every window, or one count per window.
        model: the first window's network (default: built from the problem's defaults and
            ``model_options``).
        warm_start: start each window from the previous window's network (default True).
        out: a folder; window k writes its run folder ``out/window-k`` (its checkpoint holds
            the window's network), and ``out/march.json`` the metrics, written last.
        model_options: the network of the first window (and of every window without
            ``warm_start``).
        budget_s: a wall-time budget for all windows together: each window gets the time left
            divided by the windows left, and stops at its first step past it.
        callback: ``callback(trainer, k)`` after every step of window k.
        resume: continue a march that stopped (needs ``out``): every window whose run folder
            holds a checkpoint continues from it (:func:`~solvers.train` with ``resume``; a
            finished one only loads its network and measures it again, its configuration
            checked against the checkpoint's), the others train as they would have; the result
            is that of a march that never stopped. Not with ``budget_s`` (a window stopped by
            the clock would not end where it did).
        **train_kwargs: passed to :func:`~solvers.train` for every window.

    Returns:
        A :class:`MarchResult` (the composite model, every window's result, the edges, metrics).
    """
    import time

    from ._train import CHECKPOINT, train

    if problem.time_index is None:
        raise ValueError(f"problem: {problem.name!r} has no time coordinate (time_index is None)")
    ti = problem.time_index
    edges = window_edges(float(problem.domain.lower[ti]), float(problem.domain.upper[ti]),
                         windows)
    k_total = len(edges) - 1
    counts = [steps] * k_total if isinstance(steps, int) else list(steps)
    if len(counts) != k_total:
        raise ValueError(f"steps: expected one count per window ({k_total}), got {len(counts)}")
    for c in counts:
        check_int(c, "steps", minimum=1)
    if budget_s is not None:
        budget_s = check_real(budget_s, "budget_s", positive=True)
    if not isinstance(resume, bool):
        raise TypeError(f"resume: expected a bool, got {type(resume).__name__}")
    if resume and out is None:
        raise ValueError("resume: needs out= (the folder with the windows' run folders)")
    if resume and budget_s is not None:
        raise ValueError("resume: a march with a wall-time budget (budget_s) cannot be resumed "
                         "exactly")
    models: list = []
    results: list = []
    start = time.perf_counter()
    previous = None
    for k in range(k_total):
        window = TimeWindow(problem, edges[k], edges[k + 1], previous)
        state = {"limit": None}
        if budget_s is not None:
            left = budget_s - (time.perf_counter() - start)
            state["limit"] = max(left, 0.0) / (k_total - k)

        def step_callback(tr, k=k, state=state):
            if callback is not None:
                callback(tr, k)
            if state["limit"] is not None and tr.elapsed > state["limit"] \
                    and tr.step + 1 < tr.steps:
                tr.steps = tr.step + 1

        if previous is None:
            init, opts = model, model_options
        elif warm_start:
            init, opts = copy.deepcopy(previous), None
            for p in init.parameters():
                p.requires_grad_(True)
        else:
            init, opts = None, model_options
        folder = None if out is None else Path(out) / f"window-{k}"
        res = train(window, init, steps=counts[k], model_options=opts, out=folder,
                    resume=resume and (folder / CHECKPOINT).exists(), callback=step_callback,
                    **train_kwargs)
        previous = res.model
        for p in previous.parameters():
            p.requires_grad_(False)
        models.append(previous)
        results.append(res)
    composite = WindowedModel(models, edges, ti)
    metrics = march_metrics(problem, composite, edges, [r.metrics for r in results])
    if out is not None:
        from pinnk.io import write_json
        write_json(Path(out) / "march.json", metrics)  # last: the windows' folders are complete
    return MarchResult(composite, results, edges, metrics)
