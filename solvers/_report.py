"""Weight-sweep reports: how the error of a PINN depends on one loss weight, and where the NTK trace
rule puts that weight.

:func:`report_weights` trains a problem once per weight on a log grid (fixed weights, the problem's
defaults otherwise, ``steps`` optimizer steps, ``seeds`` seeds each) and once per seed with the
trace-rule weighting (:class:`pinnk.weighting.TraceNTK`, design.md §2), then writes a report:

- ``report.html`` — self-contained (inline CSS, PNGs as base64 data URIs; nothing loaded remotely);
- ``report.md`` — the same text and table, the PNGs referenced by file name;
- ``report.json`` — every number of the report (:meth:`WeightReport.to_dict`);
- ``error.png`` — final relative L2 error against the weight (log-log), the trace-rule weight (at
  the end of its run and at init) and its measured error marked;
- ``loss.png`` — the final loss (the weighted total Σ λ_i L_i, and the unweighted Σ L_i) against
  the weight (log-log), the trace run marked;
- ``angles.png`` — per "regular|derivative" term pair, the mean and the 5/25/75/95th percentiles
  of cos α between the two gradients at the end of each run (the trainer's diagnostics);
- ``runs/`` — one JSON per finished training run (``fixed-III-sS.json``, ``trace-sS.json``),
  written atomically; a repeated call with the same options reuses them and trains nothing.
  ``sweep.json`` holds the options: a call with other options into the same folder is refused
  (``force=True`` discards the stored runs and starts over).

The swept weight. With one term swept (``term="boundary"``) it gets weight w and every other term
weight 1. With several terms (``term=["initial", "boundary"]``) they share one factor: each swept
term gets weight w, every other term 1 (one axis, not a product grid; a product grid over k terms
costs n^k runs and cannot be drawn as one curve). Scaling every term by one factor only rescales
the loss, so at least one term must stay unswept. Default terms: every term that is not a PDE
residual when the problem has residual terms (the classic "boundary weight" question), else every
derivative-label term (regression with derivative labels); otherwise ``term`` must be given.

The trace-rule weight on the same axis. The trace rule weights every term (λ_i = Σ_j m_j / m_i);
the sweep fixes the unswept terms at 1. The equivalent swept weight is

    w_trace = geomean(λ_swept) / geomean(λ_unswept)

which is exact for one swept and one unswept term (Adam is invariant to a common scale of the
loss); with more unswept terms the trace rule also rebalances those among themselves, which a
one-axis sweep cannot show. It is reported from the trace run's record: at init (the weights of
the first history record, computed by ``Kernel.trace_weights`` before the first step) and at the
end (the final weights).

Seeds: each setting is trained with seeds ``seed, seed+1, ...``; errors and losses are combined
as geometric means over the seeds (they span decades), angle statistics as arithmetic means. A
setting where any seed diverged (a NaN/Inf loss) is reported as failed and never recommended. The
error of a run with several outputs is the mean of the per-output relative L2 errors.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import html
import io
import json
import math
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

import pinnk
from pinnk import io as pio
from pinnk._validation import check_float, check_int
from pinnk.weighting import Fixed, TraceNTK, from_spec

from ._runfolder import lock_folder
from ._train import Trainer, TrainingError, model_config, resolve_device, resolve_dtype

__all__ = ["report_weights", "WeightReport", "WeightSetting", "TraceOutcome", "Recommendation",
           "parse_grid", "parse_values", "DEFAULT_GRID"]

DEFAULT_GRID = "0.01:100:9"
FORMAT_VERSION = 1
MANIFEST = "sweep.json"
RUNS = "runs"
PNGS = ("error.png", "loss.png", "angles.png")
_DPI = 110


# ------------------------------------------------------------------------------- the results
@dataclasses.dataclass
class _Combined:
    """What a group of runs (one per seed) measured, combined over the seeds.

    Attributes:
        relative_l2: the error (mean over outputs of the relative L2 error), geometric mean over
            the seeds; None when a seed failed.
        relative_l2_outputs: per output, geometric mean over the seeds (None when a seed failed).
        error_range: (min, max) of the error over the seeds, or None.
        final_loss: the weighted total loss Σ λ_i L_i of the last step (geometric mean).
        term_loss: the unweighted Σ L_i of the last step (geometric mean).
        angles: per "regular|derivative" pair, the cos α summary (mean, p5, ..., p95) at the end,
            averaged over the seeds.
        failed: the number of seeds whose training stopped on a NaN/Inf loss.
        runs: the per-seed run records (as stored under ``runs/``).
    """

    relative_l2: float | None
    relative_l2_outputs: dict
    error_range: tuple | None
    final_loss: float | None
    term_loss: float | None
    angles: dict
    failed: int
    runs: list


@dataclasses.dataclass
class WeightSetting(_Combined):
    """One fixed weight of the sweep, combined over its seeds (the fields of the combined
    measurement are described on the base class).

    Attributes:
        weight: the swept terms' weight w (the others are 1).
        weights: the full weight per term.
    """

    weight: float
    weights: dict


@dataclasses.dataclass
class TraceOutcome(_Combined):
    """The trace-rule runs (one per seed), combined over the seeds (the fields of the combined
    measurement as in :class:`WeightSetting`).

    Attributes:
        weight_init: the equivalent swept weight (see the module docstring) at init (geometric
            mean over the seeds).
        weight_final: the same at the end of the run.
        weights_init: the trace-rule weight per term at init (geometric mean).
        weights_final: the same at the end of the run.
        spec: the trace weighting's configuration.
    """

    weight_init: float | None
    weight_final: float | None
    weights_init: dict
    weights_final: dict
    spec: dict


@dataclasses.dataclass
class Recommendation:
    """The verdict of a sweep.

    Attributes:
        best_weight, best_error: the grid weight with the lowest error, and that error.
        trace_weight, trace_error: the trace rule's final equivalent weight and its error.
        gap: (trace_error − best_error) / best_error (negative: the trace rule beat the grid).
        decades: log10(trace_weight / best_weight).
        tolerance: the tolerance in percent.
        within: trace_error ≤ best_error · (1 + tolerance/100) (None if either is missing).
        at_edge: "low" / "high" when the best weight is the smallest / largest of the grid (the
            optimum may lie outside it), else None.
        text: the recommendation in words.
    """

    best_weight: float | None
    best_error: float | None
    trace_weight: float | None
    trace_error: float | None
    gap: float | None
    decades: float | None
    tolerance: float
    within: bool | None
    at_edge: str | None
    text: str


@dataclasses.dataclass
class WeightReport:
    """What :func:`report_weights` returns.

    Attributes:
        problem, params: the problem's name and parameters.
        terms: the swept terms (one shared weight); others: the terms held at weight 1.
        values: the grid of weights; steps, seeds (the list of seeds), points (per term).
        settings: one :class:`WeightSetting` per grid value, in grid order.
        trace: the :class:`TraceOutcome`.
        recommendation: the :class:`Recommendation`.
        trained, reused: training runs done by this call, and stored runs reused.
        wall_time_s: the time this call spent on the runs (training or loading).
        out: the report folder (None when nothing was written); files: the written files.
    """

    problem: str
    params: dict
    terms: list
    others: list
    values: list
    steps: int
    seeds: list
    points: dict
    settings: list
    trace: TraceOutcome
    recommendation: Recommendation
    trained: int = 0
    reused: int = 0
    wall_time_s: float = 0.0
    out: Path | None = None
    files: list = dataclasses.field(default_factory=list)

    def to_dict(self) -> dict:
        """Every field as JSON-able data (``report.json`` holds this, plus the table); the
        per-seed run records are included as stored under ``runs/``."""
        d = dataclasses.asdict(self)
        d["out"] = None if self.out is None else str(self.out)
        d["files"] = [str(f) for f in self.files]
        return d


# ------------------------------------------------------------------------------- option values
def parse_grid(text: Any, name: str = "grid") -> list:
    """``"lo:hi:n"`` (or a tuple ``(lo, hi, n)``) -> n log-spaced weights from lo to hi inclusive.

    Raises ValueError/TypeError naming ``name`` for a malformed spec, non-positive or non-finite
    bounds, lo >= hi, or n < 2.
    """
    if isinstance(text, str):
        parts = text.split(":")
        if len(parts) != 3:
            raise ValueError(f"{name}: expected LO:HI:N (e.g. {DEFAULT_GRID}), got {text!r}")
        try:
            lo, hi = float(parts[0]), float(parts[1])
        except ValueError:
            raise ValueError(f"{name}: expected numbers LO and HI in LO:HI:N, got {text!r}") \
                from None
        try:
            n = int(parts[2])
        except ValueError:
            raise ValueError(f"{name}: expected an integer N in LO:HI:N, got {text!r}") from None
    elif isinstance(text, Sequence) and len(text) == 3:
        lo = check_float(text[0], f"{name}[0]")
        hi = check_float(text[1], f"{name}[1]")
        n = check_int(text[2], f"{name}[2]")
    else:
        raise TypeError(f"{name}: expected 'LO:HI:N' or a tuple (lo, hi, n), got {text!r}")
    if not (math.isfinite(lo) and math.isfinite(hi)) or lo <= 0 or hi <= 0:
        raise ValueError(f"{name}: the weights must be positive and finite, got LO={lo:g}, "
                         f"HI={hi:g}")
    if lo >= hi:
        raise ValueError(f"{name}: expected LO < HI, got LO={lo:g}, HI={hi:g}")
    if n < 2:
        raise ValueError(f"{name}: expected N >= 2 grid points, got {n}")
    return [float(v) for v in np.logspace(math.log10(lo), math.log10(hi), n)]


def parse_values(values: Any, name: str = "values") -> list:
    """``"0.1,1,10"`` or a sequence of numbers -> the sorted list of weights.

    Raises ValueError/TypeError naming ``name`` for non-numbers, non-positive or non-finite
    weights, duplicates, or an empty list.
    """
    if isinstance(values, str):
        items = [v.strip() for v in values.split(",")]
        out = []
        for v in items:
            try:
                out.append(float(v))
            except ValueError:
                raise ValueError(f"{name}: expected comma-separated numbers, got {v!r} in "
                                 f"{values!r}") from None
    elif isinstance(values, Sequence) or isinstance(values, np.ndarray):
        out = [check_float(v, name) for v in values]
    else:
        raise TypeError(f"{name}: expected a list of weights or 'v1,v2,...', got "
                        f"{type(values).__name__}")
    if not out:
        raise ValueError(f"{name}: expected at least one weight")
    for v in out:
        if not math.isfinite(v) or v <= 0:
            raise ValueError(f"{name}: the weights must be positive and finite, got {v:g}")
    if len(set(out)) != len(out):
        dup = sorted({v for v in out if out.count(v) > 1})
        raise ValueError(f"{name}: duplicate weight(s) {', '.join(f'{v:g}' for v in dup)}")
    return sorted(float(v) for v in out)


def default_terms(problem: pinnk.Problem) -> list:
    """The terms swept when none are named (see the module docstring)."""
    import torch

    terms = problem.terms(2, torch.Generator().manual_seed(0), torch.float64)
    residual = [t.name for t in terms if t.is_residual]
    if residual:
        picked = [t.name for t in terms if not t.is_residual]
    else:
        picked = [t.name for t in terms if t.is_derivative]
    if not picked or len(picked) == len(terms):
        raise ValueError(f"term: no default term to sweep for {problem.name} (terms: "
                         f"{', '.join(t.name for t in terms)}); name one")
    return picked


def _resolve_terms(problem: pinnk.Problem, term: Any) -> tuple:
    names = list(problem.term_names())
    if len(names) < 2:
        raise ValueError(f"term: {problem.name} has a single loss term ({names[0]}); a weight "
                         f"sweep needs at least two")
    if term is None:
        swept = default_terms(problem)
    else:
        swept = [term] if isinstance(term, str) else list(term)
        if not swept:
            raise ValueError("term: expected at least one term name")
        for t in swept:
            if not isinstance(t, str):
                raise TypeError(f"term: expected term names (str), got {type(t).__name__}")
            if t not in names:
                raise ValueError(f"term: unknown term {t!r} of {problem.name}; its terms are "
                                 f"{', '.join(names)}")
        if len(set(swept)) != len(swept):
            raise ValueError(f"term: {', '.join(swept)} names a term twice")
        swept = [n for n in names if n in swept]  # the problem's order
    others = [n for n in names if n not in swept]
    if not others:
        raise ValueError(f"term: sweeping every term ({', '.join(names)}) by one shared factor "
                         f"only rescales the loss; leave at least one term out")
    return swept, others


# ------------------------------------------------------------------------------------ helpers
def _gmean(values: Sequence) -> float | None:
    """Geometric mean of positive finite values; arithmetic mean if one is ≤ 0; None if any is
    missing or non-finite, or there are none."""
    vals = [v for v in values]
    if not vals or any(v is None or not math.isfinite(v) for v in vals):
        return None
    if any(v <= 0 for v in vals):
        return float(np.mean(vals))
    return float(np.exp(np.mean(np.log(vals))))


def equivalent_weight(weights: Mapping, swept: Sequence, others: Sequence) -> float | None:
    """geomean(λ_swept) / geomean(λ_others): a full set of term weights as the one swept weight
    with the other terms at 1 (exact for one swept and one other term)."""
    try:
        a = [float(weights[t]) for t in swept]
        b = [float(weights[t]) for t in others]
    except (KeyError, TypeError):
        return None
    if not a or not b or any(not math.isfinite(v) or v <= 0 for v in a + b):
        return None
    return float(np.exp(np.mean(np.log(a)) - np.mean(np.log(b))))


def _jsonable(obj: Any) -> Any:
    from pinnk._io import _jsonable as conv

    return json.loads(json.dumps(conv(obj), allow_nan=False))


def _first_difference(mine: Mapping, theirs: Mapping) -> str:
    for key in sorted(set(mine) | set(theirs)):
        if mine.get(key) != theirs.get(key):
            def show(v):
                text = json.dumps(v, separators=(",", ":"))
                return text if len(text) <= 80 else text[:77] + "..."
            return f"{key}: {show(theirs.get(key))} there, {show(mine.get(key))} here"
    return "none"


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


# ------------------------------------------------------------------------------- one training
def _run_record(trainer: Trainer, result, error: str | None) -> dict:
    """The stored summary of one finished (or failed) training run."""
    hist = trainer.history
    train = hist.get("train") or []
    diags = hist.get("diagnostics") or []
    rec: dict = {"status": "ok" if error is None else "failed", "message": error,
                 "weights_init": dict(train[0]["weights"]) if train else None,
                 "weights_final": trainer.weighting.weights_dict(),
                 "term_losses": dict(train[-1]["losses"]) if train else None,
                 "steps_done": trainer.step, "wall_time_s": trainer.elapsed,
                 "device": str(trainer.device)}

    def diag(r):
        if r is None:
            return None
        return {k: r.get(k) for k in ("step", "lambda_min", "lambda_max", "theta_min",
                                      "theta_max", "condition", "drift", "angles")}

    rec["diagnostics_init"] = diag(diags[0] if diags else None)
    rec["diagnostics_final"] = diag(diags[-1] if len(diags) > 1 else None)
    if result is not None:
        m = result.metrics
        rel = {k: float(v) for k, v in m["relative_l2"].items()}
        rec["relative_l2"] = rel
        rec["error"] = float(np.mean(list(rel.values()))) if rel else None
        rec["final_loss"] = m.get("final_loss")
        losses = rec["term_losses"] or {}
        rec["term_loss"] = float(sum(losses.values())) if losses else None
    else:
        rec["relative_l2"] = None
        rec["error"] = rec["final_loss"] = rec["term_loss"] = None
    return rec


def _train_one(problem, weighting, seed, common) -> dict:
    trainer = Trainer(problem, weighting=weighting, steps=common["steps"],
                      points=common["points"], device=common["device"], dtype=common["dtype"],
                      seed=seed, ntk_every=common["steps"], out=None, export=False,
                      model_options=common["model_options"], progress=False)
    try:
        result = trainer.run()
    except TrainingError as exc:
        return _run_record(trainer, None, " ".join(str(exc).split()))
    return _run_record(trainer, result, None)


# -------------------------------------------------------------------------------- combining
def _combine(runs: list) -> dict:
    ok = [r for r in runs if r["status"] == "ok"]
    failed = len(runs) - len(ok)
    errors = [r["error"] for r in ok]
    outputs: dict = {}
    for r in ok:
        for k in r["relative_l2"]:
            outputs.setdefault(k, None)
    if failed:
        rel = None
        rel_out = {k: None for k in outputs}
        err_range = None
        loss = term_loss = None
    else:
        rel = _gmean(errors)
        rel_out = {k: _gmean([r["relative_l2"].get(k) for r in ok]) for k in outputs}
        finite = [e for e in errors if e is not None and math.isfinite(e)]
        err_range = (min(finite), max(finite)) if finite else None
        loss = _gmean([r["final_loss"] for r in ok])
        term_loss = _gmean([r["term_loss"] for r in ok])
    angles: dict = {}
    finals = [(r.get("diagnostics_final") or {}).get("angles") or {} for r in ok]
    for pair in dict.fromkeys(p for a in finals for p in a):
        stats: dict = {}
        for s in dict.fromkeys(k for a in finals if pair in a for k in a[pair]):
            vals = [a[pair][s] for a in finals if pair in a and a[pair].get(s) is not None]
            vals = [v for v in vals if math.isfinite(v)]
            stats[s] = float(np.mean(vals)) if vals else None
        angles[pair] = stats
    return {"relative_l2": rel, "relative_l2_outputs": rel_out, "error_range": err_range,
            "final_loss": loss, "term_loss": term_loss, "angles": angles, "failed": failed}


def _recommend(settings: list, trace: TraceOutcome, tolerance: float) -> Recommendation:
    good = [(s.relative_l2, s.weight) for s in settings if s.relative_l2 is not None]
    best_error, best_weight = min(good) if good else (None, None)
    tw, te = trace.weight_final, trace.relative_l2
    gap = decades = within = None
    at_edge = None
    values = [s.weight for s in settings]
    if best_weight is not None and len(values) > 1:
        at_edge = "low" if best_weight == min(values) else "high" if best_weight == max(values) \
            else None
    if best_error is not None and te is not None and best_error > 0:
        gap = (te - best_error) / best_error
        within = te <= best_error * (1 + tolerance / 100)
    if best_weight is not None and tw is not None:
        decades = math.log10(tw / best_weight)

    parts = []
    if best_weight is None:
        parts.append("Every grid weight failed (NaN/Inf loss); no measured best.")
    else:
        parts.append(f"Best measured weight: w = {best_weight:.4g} (relative L2 error "
                     f"{best_error:.3e}).")
        if at_edge:
            side = "smallest" if at_edge == "low" else "largest"
            parts.append(f"It is the {side} weight of the grid: the optimum may lie outside it; "
                         f"extend the grid.")
    if trace.failed or te is None:
        parts.append("The trace-rule run failed (NaN/Inf loss); no comparison.")
    else:
        init = f", {trace.weight_init:.4g} at init" if trace.weight_init is not None else ""
        wtext = f"w = {tw:.4g} at the end of its run{init}" if tw is not None else \
            "an undefined equivalent weight"
        parts.append(f"Trace rule: {wtext}, relative L2 error {te:.3e}.")
        if gap is not None:
            if gap < 0:
                verdict = (f"The trace rule beats every grid weight ({-gap:.0%} below the best "
                           f"measured error).")
            elif within:
                verdict = (f"The trace rule is within {tolerance:g}% of the best measured error "
                           f"({gap:.1%} above it): use it.")
            else:
                verdict = (f"The trace rule is not within {tolerance:g}% of the best measured "
                           f"error ({gap:.0%} above it): prefer w = {best_weight:.4g} at this "
                           f"budget.")
            parts.append(verdict)
        if decades is not None:
            rel = "above" if decades > 0 else "below"
            parts.append(f"The trace-rule weight lies {abs(decades):.2f} decades {rel} the best "
                         f"measured weight.")
    return Recommendation(best_weight, best_error, tw, te, gap, decades, tolerance, within,
                          at_edge, " ".join(parts))


# ----------------------------------------------------------------------------------- plotting
def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=_DPI)
    return buf.getvalue()


def _arr(values) -> np.ndarray:
    return np.array([np.nan if v is None else float(v) for v in values], dtype=float)


def _mark_trace(ax, trace: TraceOutcome, y: float | None, label: str) -> None:
    if trace.weight_init is not None:
        ax.axvline(trace.weight_init, color="tab:red", ls=":", lw=1.2,
                   label=f"trace rule at init (w = {trace.weight_init:.3g})")
    if trace.weight_final is not None:
        ax.axvline(trace.weight_final, color="tab:red", ls="--", lw=1.2,
                   label=f"trace rule at the end (w = {trace.weight_final:.3g})")
        if y is not None and math.isfinite(y) and y > 0:
            ax.plot([trace.weight_final], [y], marker="*", ms=14, color="tab:red", ls="none",
                    label=label)


def _plot_error(rep: WeightReport):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4.5), layout="constrained")
    ax = fig.add_subplot()
    w = np.array(rep.values)
    err = _arr(s.relative_l2 for s in rep.settings)
    ax.plot(w, err, marker="o", color="C0", label="fixed weight" + (
        f" (geometric mean of {len(rep.seeds)} seeds)" if len(rep.seeds) > 1 else ""))
    if len(rep.seeds) > 1:
        for s in rep.settings:
            for r in s.runs:
                if r.get("error") is not None:
                    ax.plot([s.weight], [r["error"]], ".", color="C0", alpha=0.35)
    failed = [s.weight for s in rep.settings if s.failed]
    if failed:
        top = np.nanmax(err) if np.any(np.isfinite(err)) else 1.0
        ax.plot(failed, [top] * len(failed), "x", color="k", ms=9, ls="none",
                label="diverged (NaN/Inf)")
    rec = rep.recommendation
    if rec.best_weight is not None:
        ax.plot([rec.best_weight], [rec.best_error], "o", ms=13, mfc="none", color="tab:green",
                label=f"best measured (w = {rec.best_weight:.3g})")
    te = rep.trace.relative_l2
    if te is not None:
        ax.axhline(te, color="tab:red", ls="-.", lw=0.8, alpha=0.6)
    _mark_trace(ax, rep.trace, te, f"trace rule error ({te:.2e})" if te else "trace rule")
    ax.set_xscale("log")
    if np.any(np.isfinite(err) & (err > 0)) or (te is not None and te > 0):
        ax.set_yscale("log")
    ax.set_xlabel(f"weight w of {', '.join(rep.terms)} (others at 1)")
    ax.set_ylabel("relative L2 error")
    ax.set_title(f"{rep.problem}: error against the weight ({rep.steps} steps)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize="small")
    return fig


def _plot_loss(rep: WeightReport):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4.5), layout="constrained")
    ax = fig.add_subplot()
    w = np.array(rep.values)
    total = _arr(s.final_loss for s in rep.settings)
    plain = _arr(s.term_loss for s in rep.settings)
    ax.plot(w, total, marker="o", color="C0", label="final loss Σ λ_i L_i (weighted)")
    ax.plot(w, plain, marker="s", color="C1", label="final Σ L_i (unweighted)")
    tr = rep.trace
    if tr.weight_final is not None:
        if tr.final_loss is not None and tr.final_loss > 0:
            ax.plot([tr.weight_final], [tr.final_loss], marker="*", ms=14, color="C0",
                    mec="tab:red", ls="none", label="trace run, weighted")
        if tr.term_loss is not None and tr.term_loss > 0:
            ax.plot([tr.weight_final], [tr.term_loss], marker="*", ms=14, color="C1",
                    mec="tab:red", ls="none", label="trace run, unweighted")
    _mark_trace(ax, tr, None, "")
    ax.set_xscale("log")
    if np.any(np.isfinite(total) & (total > 0)) or np.any(np.isfinite(plain) & (plain > 0)):
        ax.set_yscale("log")
    ax.set_xlabel(f"weight w of {', '.join(rep.terms)} (others at 1)")
    ax.set_ylabel("final loss")
    ax.set_title(f"{rep.problem}: final loss against the weight")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize="small")
    return fig


def _angle_pairs(rep: WeightReport) -> list:
    pairs = dict.fromkeys(p for s in rep.settings for p in s.angles)
    pairs.update(dict.fromkeys(rep.trace.angles))
    return list(pairs)


def _plot_angles(rep: WeightReport):
    from matplotlib.figure import Figure

    pairs = _angle_pairs(rep)
    if not pairs:
        return None
    fig = Figure(figsize=(7, 2.8 * len(pairs) + 0.6), layout="constrained")
    axes = fig.subplots(len(pairs), 1, sharex=True, squeeze=False)[:, 0]
    w = np.array(rep.values)
    init = None
    for s in rep.settings:
        for r in s.runs:
            a = ((r.get("diagnostics_init") or {}).get("angles") or {})
            if a:
                init = a
                break
        if init:
            break
    for ax, pair in zip(axes, pairs):
        def stat(name):
            return _arr((s.angles.get(pair) or {}).get(name) for s in rep.settings)
        mean = stat("mean")
        ax.fill_between(w, stat("p5"), stat("p95"), color="C0", alpha=0.15, lw=0,
                        label="p5–p95")
        ax.fill_between(w, stat("p25"), stat("p75"), color="C0", alpha=0.3, lw=0,
                        label="p25–p75")
        ax.plot(w, mean, marker="o", color="C0", label="mean")
        if init and pair in init and init[pair].get("mean") is not None:
            ax.axhline(init[pair]["mean"], color="gray", ls=":", lw=1.0,
                       label="mean at init (seed " + str(rep.seeds[0]) + ")")
        t = rep.trace.angles.get(pair) or {}
        if rep.trace.weight_final is not None and t.get("mean") is not None:
            lo = t.get("p5", t["mean"]) if t.get("p5") is not None else t["mean"]
            hi = t.get("p95", t["mean"]) if t.get("p95") is not None else t["mean"]
            ax.errorbar([rep.trace.weight_final], [t["mean"]],
                        yerr=[[t["mean"] - lo], [hi - t["mean"]]], fmt="*", ms=12,
                        color="tab:red", capsize=3, label="trace run (mean, p5–p95)")
        ax.axhline(0.0, color="k", lw=0.6)
        ax.set_ylim(-1.05, 1.05)
        ax.set_xscale("log")
        a, b = pair.split("|", 1) if "|" in pair else (pair, "")
        ax.set_ylabel(f"cos α({a}, {b})")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize="small", loc="best")
    axes[-1].set_xlabel(f"weight w of {', '.join(rep.terms)} (others at 1)")
    fig.suptitle(f"{rep.problem}: gradient angles at the end of training")
    return fig


# ------------------------------------------------------------------------------------ writing
def _fmt(v: Any, spec: str = ".3e") -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "—"
    return format(v, spec)


def _pair_label(pair: str) -> str:
    a, b = pair.split("|", 1) if "|" in pair else (pair, "")
    return f"cos α({a}, {b})"


def table_rows(rep: WeightReport) -> tuple:
    """The report table: (header, rows), each a list of cells (strings). One row per grid weight,
    then one for the trace rule (its final equivalent weight)."""
    outputs = list(dict.fromkeys(k for s in rep.settings for k in s.relative_l2_outputs))
    pairs = _angle_pairs(rep)
    header = ["weight", "relative L2 error"]
    if len(outputs) > 1:
        header += [f"rel. L2 ({o})" for o in outputs]
    if len(rep.seeds) > 1:
        header.append("error min–max over seeds")
    header += ["final loss (weighted)", "Σ term losses"]
    header += [f"{_pair_label(p)} mean [p5, p95]" for p in pairs]
    header.append("note")

    def row(first, item, note):
        cells = [first, _fmt(item.relative_l2)]
        if len(outputs) > 1:
            cells += [_fmt(item.relative_l2_outputs.get(o)) for o in outputs]
        if len(rep.seeds) > 1:
            r = item.error_range
            cells.append("—" if r is None else f"{r[0]:.3e}–{r[1]:.3e}")
        cells += [_fmt(item.final_loss), _fmt(item.term_loss)]
        for p in pairs:
            a = item.angles.get(p) or {}
            cells.append("—" if a.get("mean") is None else
                         f"{a['mean']:+.3f} [{_fmt(a.get('p5'), '+.3f')}, "
                         f"{_fmt(a.get('p95'), '+.3f')}]")
        if item.failed:
            note = (note + "; " if note else "") + f"{item.failed} seed(s) diverged"
        cells.append(note)
        return cells

    best = rep.recommendation.best_weight
    rows = [row(f"{s.weight:.4g}", s, "best" if s.weight == best else "") for s in rep.settings]
    tw = rep.trace.weight_final
    rows.append(row(f"trace rule ({_fmt(tw, '.4g')})", rep.trace,
                    f"at init {_fmt(rep.trace.weight_init, '.4g')}"))
    return header, rows


def _summary_lines(rep: WeightReport) -> list:
    params = ", ".join(f"{k}={json.dumps(v)}" for k, v in rep.params.items()) or "defaults"
    tr = rep.trace
    lam_init = ", ".join(f"{k} {v:.4g}" for k, v in tr.weights_init.items())
    lam_final = ", ".join(f"{k} {v:.4g}" for k, v in tr.weights_final.items())
    return [
        f"Problem: {rep.problem} ({params}); swept: {', '.join(rep.terms)} (one shared weight w); "
        f"held at 1: {', '.join(rep.others)}.",
        f"Budget: {rep.steps} steps per run, seeds {', '.join(map(str, rep.seeds))}, points "
        + ", ".join(f"{k}={v}" for k, v in rep.points.items()) + "; the problem's defaults "
        "otherwise (network, optimizer, learning rate).",
        f"Trace rule ({tr.spec.get('trace', 'mean')} form): λ at init {lam_init or '—'}; "
        f"at the end {lam_final or '—'}; equivalent w = geomean(λ swept) / geomean(λ others).",
    ]


def render_markdown(rep: WeightReport) -> str:
    """``report.md``: summary, recommendation, figures (by file name) and the table."""
    header, rows = table_rows(rep)
    lines = [f"# Weight sweep: {rep.problem}", ""]
    lines += [f"- {s}" for s in _summary_lines(rep)]
    lines += ["", "## Recommendation", "", rep.recommendation.text, ""]
    lines += ["## Results", ""]

    def esc(c):
        return c.replace("|", "\\|")
    lines.append("| " + " | ".join(esc(h) for h in header) + " |")
    lines.append("|" + "|".join("---" for _ in header) + "|")
    lines += ["| " + " | ".join(esc(c) for c in r) + " |" for r in rows]
    lines.append("")
    figs = [f for f in PNGS if rep.out is not None and (rep.out / f).is_file()]
    if figs:
        lines += ["## Figures", ""]
        lines += [f"![{f[:-4]}]({f})" for f in figs]
        lines.append("")
    return "\n".join(lines)


_CSS = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;
color:#222}table{border-collapse:collapse;font-size:0.9em;margin:1em 0}th,td{border:1px solid #ccc;
padding:0.3em 0.6em;text-align:right}th{background:#f3f3f3}td:first-child,th:first-child{
text-align:left}tr.best td{background:#e8f6e8}tr.trace td{background:#fbeaea}img{max-width:100%;
display:block;margin:1em 0}.rec{border-left:4px solid #2a7;padding:0.5em 1em;background:#f6fbf8}"""


def render_html(rep: WeightReport, images: Mapping[str, bytes]) -> str:
    """``report.html``: self-contained (inline CSS, PNGs as base64 data URIs)."""
    header, rows = table_rows(rep)
    e = html.escape
    parts = ["<!DOCTYPE html>", "<html lang=\"en\"><head><meta charset=\"utf-8\">",
             f"<title>Weight sweep: {e(rep.problem)}</title>", f"<style>{_CSS}</style>",
             "</head><body>", f"<h1>Weight sweep: {e(rep.problem)}</h1>", "<ul>"]
    parts += [f"<li>{e(s)}</li>" for s in _summary_lines(rep)]
    parts += ["</ul>", "<h2>Recommendation</h2>",
              f"<p class=\"rec\">{e(rep.recommendation.text)}</p>", "<h2>Results</h2>",
              "<table><thead><tr>" + "".join(f"<th>{e(h)}</th>" for h in header) +
              "</tr></thead><tbody>"]
    for k, r in enumerate(rows):
        cls = "trace" if k == len(rows) - 1 else ("best" if r[-1].startswith("best") else "")
        attr = f" class=\"{cls}\"" if cls else ""
        parts.append(f"<tr{attr}>" + "".join(f"<td>{e(c)}</td>" for c in r) + "</tr>")
    parts.append("</tbody></table>")
    if images:
        parts.append("<h2>Figures</h2>")
        for name, data in images.items():
            b64 = base64.b64encode(data).decode("ascii")
            parts.append(f"<img alt=\"{e(name)}\" src=\"data:image/png;base64,{b64}\">")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _write_report(rep: WeightReport) -> list:
    out = rep.out
    images: dict = {}
    written = []
    for name, plot in (("error.png", _plot_error), ("loss.png", _plot_loss),
                       ("angles.png", _plot_angles)):
        fig = plot(rep)
        if fig is None:
            continue
        data = _png(fig)
        pio.write_bytes(out / name, data)
        images[name] = data
        written.append(out / name)
    stale = [out / n for n in PNGS if n not in images and (out / n).is_file()]
    for p in stale:  # a figure this sweep has no data for, left by an earlier --force run
        p.unlink()
    pio.write_text(out / "report.md", render_markdown(rep))
    pio.write_text(out / "report.html", render_html(rep, images))
    written = [out / "report.html", out / "report.md", out / "report.json"] + written
    rep.files = written
    header, rows = table_rows(rep)
    data = rep.to_dict()
    data["table"] = {"header": header, "rows": rows}
    data["format_version"] = FORMAT_VERSION
    pio.write_json(out / "report.json", data)
    return written


# ------------------------------------------------------------------------------------ the API
def _resolve_problem(problem: Any, params: Mapping | None) -> pinnk.Problem:
    import problems as zoo

    if isinstance(problem, pinnk.Problem):
        if params:
            raise ValueError("params: only used with a problem name, not a Problem instance")
        return problem
    if not isinstance(problem, str):
        raise TypeError(f"problem: expected a problem name or a pinnk.Problem, got "
                        f"{type(problem).__name__}")
    return zoo.get(problem, **dict(params or {}))


def _check_out(out: Path, manifest: dict, force: bool) -> None:
    if out.exists() and not out.is_dir():
        raise ValueError(f"out: {str(out)!r} exists and is not a folder")
    path = out / MANIFEST
    runs = out / RUNS
    if force:
        if runs.is_dir():
            for p in list(runs.glob("fixed-*.json")) + list(runs.glob("trace-*.json")):
                p.unlink()
        return
    if not path.exists():
        return
    stored = _read_json(path)
    if not isinstance(stored, Mapping):
        raise ValueError(f"out: cannot read {str(path)!r}; pass --force (force=True) to start "
                         f"the sweep over, or choose another --out")
    if stored != manifest:
        raise ValueError(f"out: {str(out)!r} holds a weight sweep with other options "
                         f"({_first_difference(manifest, dict(stored))}); pass --force "
                         f"(force=True) to discard its runs, or choose another --out")


def report_weights(problem: str | pinnk.Problem, term: str | Sequence[str] | None = None,
                   values: Sequence[float] | str | None = None, *,
                   grid: str | tuple | None = None, steps: int | None = None, seeds: int = 1,
                   seed: int = 0, points: int | Mapping | None = None,
                   params: Mapping | None = None, trace: Any = "trace",
                   tolerance: float = 10.0, device: str = "auto", dtype: str = "float32",
                   model_options: Mapping | None = None, out: str | Path | None = None,
                   force: bool = False, progress: bool = False) -> WeightReport:
    """Sweep a loss weight, train each setting, compare with the trace rule and report.

    See the module docstring for the design (shared factor for several terms, the equivalent
    trace-rule weight, seeds, resuming).

    Main arguments:
        problem: a problem name (with ``params``) or a :class:`pinnk.Problem`.
        term: the term(s) whose weight is swept (one shared weight); default: the non-residual
            terms of a PDE problem, the derivative-label terms of a regression problem.
        values: the weights (a sequence or ``"v1,v2,..."``); or ``grid``: ``"lo:hi:n"`` /
            ``(lo, hi, n)``, n log-spaced weights. Default grid ``0.01:100:9``.
        steps: optimizer steps per run (default: the problem's).
        seeds: runs per setting, with seeds ``seed, seed+1, ...``.
        out: the report folder (report.html/.md/.json, PNGs, runs/, sweep.json); None writes
            nothing and does not resume.

    Other arguments:
        points: points per term (int or mapping; default the problem's).
        params: problem parameters (with a problem name).
        trace: the trace-rule weighting, a spec (``"trace:every=50,kind=sum"``) or a
            :class:`~pinnk.weighting.TraceNTK`.
        tolerance: percent; the trace rule "is within" when its error ≤ best · (1 + tol/100).
        device, dtype, model_options: as for :func:`solvers.train`.
        force: discard the runs stored in ``out`` when its options differ.
        progress: a progress bar over the runs (tqdm).

    Returns:
        A :class:`WeightReport`.

    Raises:
        ValueError / TypeError naming the argument: unknown problem or term, a bad grid, a
        non-positive weight, options that differ from those stored in ``out`` (without force).
    """
    prob = _resolve_problem(problem, params)
    swept, others = _resolve_terms(prob, term)
    if values is not None and grid is not None:
        raise ValueError("values: give either values or grid, not both")
    if values is not None:
        vals = parse_values(values, "values")
    else:
        vals = parse_grid(DEFAULT_GRID if grid is None else grid, "grid")
    steps = check_int(prob.defaults.steps if steps is None else steps, "steps", minimum=1)
    seeds = check_int(seeds, "seeds", minimum=1)
    seed = check_int(seed, "seed", minimum=0)
    tolerance = check_float(tolerance, "tolerance", nonnegative=True)
    names = list(prob.term_names())
    counts = prob.counts(points, names, name="points")
    try:
        trace_w = from_spec(trace)
    except (TypeError, ValueError, KeyError) as exc:
        msg = " ".join(str(exc).split())
        raise ValueError(f"trace: {msg.removeprefix('weighting: ')}") from None
    if not isinstance(trace_w, TraceNTK):
        raise ValueError(f"trace: expected a trace-rule weighting such as 'trace:every=100', got "
                         f"{trace!r}")
    dev = resolve_device(device)
    dt = str(resolve_dtype(dtype)).replace("torch.", "")
    model_cfg = model_config(prob, **dict(model_options or {}))
    seed_list = list(range(seed, seed + seeds))
    common = {"problem": {"name": prob.name, "params": prob.params}, "steps": steps,
              "points": counts, "dtype": dt, "model": model_cfg}
    manifest = _jsonable({"format_version": FORMAT_VERSION, **common, "terms": swept,
                          "values": vals, "seeds": seed_list, "trace": trace_w.config()})
    out_path = None if out is None else Path(out)
    # One sweep per folder at a time: the lock is held until the report is written.
    with lock_folder(out_path, "out") if out_path is not None else contextlib.nullcontext():
        if out_path is not None:
            _check_out(out_path, manifest, bool(force))
            (out_path / RUNS).mkdir(parents=True, exist_ok=True)
            pio.write_json(out_path / MANIFEST, manifest)
        train_kw = {"steps": steps, "points": counts, "device": dev, "dtype": dt,
                    "model_options": dict(model_options or {})}

        tasks = [("trace", None, None, s) for s in seed_list]
        tasks += [("fixed", i, v, s) for i, v in enumerate(vals) for s in seed_list]
        records: dict = {}
        trained = reused = 0
        bar = None
        if progress:
            from tqdm.auto import tqdm
            bar = tqdm(total=len(tasks), desc=f"weights {prob.name}", unit="run",
                       dynamic_ncols=True)
        t0 = time.perf_counter()
        try:
            for kind, i, v, s in tasks:
                if kind == "trace":
                    weighting = trace_w
                    fname = f"trace-s{s}.json"
                else:
                    weighting = Fixed({t: v for t in swept})
                    fname = f"fixed-{i:03d}-s{s}.json"
                key = _jsonable({**common, "weighting": weighting.config(), "seed": s})
                if bar is not None:
                    bar.set_postfix_str(("trace rule" if kind == "trace" else f"w={v:.3g}") +
                                        f" seed={s}", refresh=False)
                path = None if out_path is None else out_path / RUNS / fname
                stored = _read_json(path) if path is not None and path.is_file() else None
                if isinstance(stored, Mapping) and stored.get("key") == key:
                    rec = dict(stored)
                    reused += 1
                else:
                    rec = {"kind": kind, "weight": v, "seed": s, "key": key,
                           **_train_one(prob, weighting, s, train_kw)}
                    rec = _jsonable(rec)
                    trained += 1
                    if path is not None:
                        pio.write_json(path, rec)
                records[(kind, i, s)] = rec
                if bar is not None:
                    bar.update(1)
        finally:
            if bar is not None:
                bar.close()

        settings = []
        for i, v in enumerate(vals):
            runs = [records[("fixed", i, s)] for s in seed_list]
            c = _combine(runs)
            settings.append(WeightSetting(weight=v, weights={n: (v if n in swept else 1.0)
                                                             for n in names}, runs=runs, **c))
        truns = [records[("trace", None, s)] for s in seed_list]
        c = _combine(truns)

        def lam(which):
            per = [r.get(which) for r in truns]
            if any(not p for p in per):
                return {}
            return {n: _gmean([p.get(n) for p in per]) for n in names}

        def eq(which):
            return _gmean([equivalent_weight(r.get(which) or {}, swept, others) for r in truns])

        tr = TraceOutcome(weight_init=eq("weights_init"), weight_final=eq("weights_final"),
                          weights_init=lam("weights_init"), weights_final=lam("weights_final"),
                          runs=truns, spec=trace_w.config(), **c)
        rec = _recommend(settings, tr, tolerance)
        rep = WeightReport(problem=prob.name, params=_jsonable(prob.params), terms=swept,
                           others=others, values=vals, steps=steps, seeds=seed_list, points=counts,
                           settings=settings, trace=tr, recommendation=rec, trained=trained,
                           reused=reused, wall_time_s=time.perf_counter() - t0, out=out_path)
        if out_path is not None:
            _write_report(rep)
        return rep
