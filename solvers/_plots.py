"""Plots of a run: training history, NTK diagnostics, fields, and pyvista renders.

Figures are built on :class:`matplotlib.figure.Figure` directly (no pyplot, no global backend
state) and every PNG is written atomically with :func:`pinnk.io.write_with`.
"""

from __future__ import annotations

import math
import os
import re
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure

from pinnk import Problem
from pinnk.io import write_with

from ._export import FieldData, check_out_dir, evaluate_fields

__all__ = ["plot_history", "plot_fields", "render_pyvista"]

_DPI = 110


def _save(fig: Figure, path: Path, dpi: int = _DPI) -> Path:
    write_with(path, lambda p: fig.savefig(p, dpi=dpi, format="png"))
    return path


# --------------------------------------------------------------------------------------- history
def _records(history: Mapping, key: str) -> list:
    value = history.get(key)
    if value is None:
        return []
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise TypeError(f"history[{key!r}]: expected a list of dicts, got {type(value).__name__}")
    for i, rec in enumerate(value):
        if not isinstance(rec, Mapping):
            raise TypeError(f"history[{key!r}][{i}]: expected a dict, got {type(rec).__name__}")
        if "step" not in rec:
            raise ValueError(f"history[{key!r}][{i}]: missing 'step'")
    return list(value)


def _num(value: Any, where: str) -> float:
    """A record value as a float; None (JSON's null for NaN/Inf) becomes NaN."""
    if value is None:
        return math.nan
    if isinstance(value, torch.Tensor):
        value = value.item()
    try:
        return float(value)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{where}: expected a number, got {type(value).__name__}") from exc


def _series(records: list, key: str, field: str) -> tuple:
    """Steps (n,) and {name: values (n,)} of the per-name dicts ``record[field]`` (NaN where a
    record lacks a name), names in order of first appearance."""
    steps = np.array([_num(r["step"], f"history[{key!r}][{i}]['step']")
                      for i, r in enumerate(records)])
    names: dict = {}
    for i, r in enumerate(records):
        sub = r.get(field)
        if sub is None:
            continue
        if not isinstance(sub, Mapping):
            raise TypeError(f"history[{key!r}][{i}][{field!r}]: expected a dict, got "
                            f"{type(sub).__name__}")
        for name in sub:
            names.setdefault(name, None)
    series = {}
    for name in names:
        series[name] = np.array([_num((r.get(field) or {}).get(name),
                                      f"history[{key!r}][{i}][{field!r}][{name!r}]")
                                 for i, r in enumerate(records)])
    return steps, series


def _scalar(records: list, key: str, field: str) -> np.ndarray | None:
    """The values (n,) of ``record[field]`` (NaN where missing), or None if no record has it."""
    if not any(field in r for r in records):
        return None
    return np.array([_num(r.get(field), f"history[{key!r}][{i}][{field!r}]")
                     for i, r in enumerate(records)])


def _log_y(ax, *arrays: np.ndarray) -> None:
    """Log y axis when there is positive data to show (else matplotlib warns)."""
    if any(np.any(np.isfinite(a) & (a > 0)) for a in arrays):
        ax.set_yscale("log")


def _any_finite(*arrays: np.ndarray) -> bool:
    return any(np.any(np.isfinite(a)) for a in arrays)


def plot_history(history: Mapping | None, out_dir: str | os.PathLike, *,
                 dpi: int = _DPI) -> list:
    """Plot the training history.

    Args:
        history: ``{"train": [{"step", "loss", "losses": {term: float}, "weights":
            {term: float}, "lr", "time"}, ...], "diagnostics": [{"step", "lambda_min",
            "lambda_max", "drift", "angles": {"a|b": {"mean", "p5", "p25", "p50", "p75",
            "p95"}}}, ...]}``. Every part is optional; None values (JSON's null) count as NaN.
        out_dir: the output folder (created if missing; ValueError if it is a file).
        dpi: the PNG resolution.

    Writes (each only when there is data for it):
        ``loss.png``: the total loss and each term's loss against step (log y);
        ``weights.png``: each term's weight against step (log y);
        ``diagnostics.png``: λ_min and λ_max (log y), the drift, and per term pair the mean
        angle with its p25–p75 band, one panel each.

    Returns:
        The written paths (empty for an empty history).
    """
    out = check_out_dir(out_dir)
    if history is None:
        return []
    if not isinstance(history, Mapping):
        raise TypeError(f"history: expected a dict, got {type(history).__name__}")
    train = _records(history, "train")
    diagnostics = _records(history, "diagnostics")
    written = []

    if train:
        steps, losses = _series(train, "train", "losses")
        total = _scalar(train, "train", "loss")
        curves = ([("total", total)] if total is not None else []) + list(losses.items())
        if curves and _any_finite(*(c for _, c in curves)):
            written.append(_curves_png(steps, curves, "loss", "Training loss",
                                       out / "loss.png", dpi, bold=total))

        steps, weights = _series(train, "train", "weights")
        if weights and _any_finite(*weights.values()):
            written.append(_curves_png(steps, list(weights.items()), "weight", "Term weights",
                                       out / "weights.png", dpi))

    if diagnostics:
        path = _plot_diagnostics(diagnostics, out / "diagnostics.png", dpi)
        if path is not None:
            written.append(path)
    return written


def _curves_png(steps, curves: list, ylabel: str, title: str, path: Path, dpi: int,
                bold=None) -> Path:
    """One log-y figure of named curves against the step (``bold`` drawn thicker)."""
    fig = Figure(figsize=(7, 4.5), layout="constrained")
    ax = fig.add_subplot()
    for name, values in curves:
        ax.plot(steps, values, label=str(name), lw=2.0 if values is bold else 1.2)
    _log_y(ax, *(c for _, c in curves))
    ax.set_xlabel("step")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize="small")
    return _save(fig, path, dpi)


def _plot_diagnostics(records: list, path: Path, dpi: int) -> Path | None:
    key = "diagnostics"
    steps = np.array([_num(r["step"], f"history[{key!r}][{i}]['step']")
                      for i, r in enumerate(records)])
    panels = []
    lam = [(label, v) for label, field in (("λ_min", "lambda_min"), ("λ_max", "lambda_max"))
           if (v := _scalar(records, key, field)) is not None and _any_finite(v)]
    if lam:
        panels.append("lambda")
    drift = _scalar(records, key, "drift")
    if drift is not None and _any_finite(drift):
        panels.append("drift")
    angles: dict = {}
    for i, r in enumerate(records):
        a = r.get("angles")
        if a is None:
            continue
        if not isinstance(a, Mapping):
            raise TypeError(f"history[{key!r}][{i}]['angles']: expected a dict, got "
                            f"{type(a).__name__}")
        for pair, stats in a.items():
            if not isinstance(stats, Mapping):
                raise TypeError(f"history[{key!r}][{i}]['angles'][{pair!r}]: expected a dict, "
                                f"got {type(stats).__name__}")
            angles.setdefault(pair, None)
    stats = {}
    for pair in angles:
        stats[pair] = {
            s: np.array([_num(((r.get("angles") or {}).get(pair) or {}).get(s),
                              f"history[{key!r}][{i}]['angles'][{pair!r}][{s!r}]")
                         for i, r in enumerate(records)])
            for s in ("mean", "p25", "p75")}
    stats = {p: s for p, s in stats.items() if _any_finite(s["mean"], s["p25"], s["p75"])}
    if stats:
        panels.append("angles")
    if not panels:
        return None

    fig = Figure(figsize=(7, 3.0 * len(panels) + 0.5), layout="constrained")
    axes = fig.subplots(len(panels), 1, sharex=True, squeeze=False)[:, 0]
    for ax, panel in zip(axes, panels):
        if panel == "lambda":
            shown = []
            vmax = dict(lam).get("λ_max")
            for label, v in lam:
                if label == "λ_min" and vmax is not None:
                    # λ_min of a numerically singular Θ* is round-off (possibly negative): mark
                    # it at a floor instead of dropping it from the log axis
                    floor = 1e-12 * np.abs(vmax)
                    low = np.isfinite(v) & (v <= floor)
                    if low.any():
                        ax.plot(steps[low], floor[low], "v", mfc="none", color="C0",
                                label="λ_min ≤ 1e-12·λ_max (round-off)")
                        shown.append(floor[low])
                    v = np.where(low, np.nan, v)
                ax.plot(steps, v, marker=".", label=label)
                shown.append(v)
            _log_y(ax, *shown)
            ax.set_ylabel("NTK eigenvalue")
            ax.legend(fontsize="small")
        elif panel == "drift":
            ax.plot(steps, drift, marker=".", color="tab:purple")
            ax.set_ylabel("kernel drift")
        else:
            for k, (pair, s) in enumerate(stats.items()):
                color = f"C{k % 10}"
                ax.plot(steps, s["mean"], marker=".", color=color, label=str(pair))
                if _any_finite(s["p25"], s["p75"]):
                    ax.fill_between(steps, s["p25"], s["p75"], color=color, alpha=0.2, lw=0)
            ax.set_ylabel("angle (mean, p25–p75)")
            ax.legend(fontsize="small")
        ax.grid(True, alpha=0.3)
    axes[-1].set_xlabel("step")
    fig.suptitle("NTK diagnostics")
    return _save(fig, path, dpi)


# ---------------------------------------------------------------------------------------- fields
def _fields(problem: Problem | None, model: torch.nn.Module | None, data: FieldData | None,
            resolution: Any) -> FieldData:
    if data is None:
        return evaluate_fields(problem, model, resolution)
    if not isinstance(data, FieldData):
        raise TypeError(f"data: expected a FieldData, got {type(data).__name__}")
    if problem is not None and tuple(problem.output_names) != tuple(data.output_names):
        raise ValueError(f"data: output_names {tuple(data.output_names)} do not match "
                         f"problem.output_names {tuple(problem.output_names)}")
    return data


def _range(*arrays: np.ndarray) -> tuple:
    """A common finite (vmin, vmax), widened when constant; (None, None) if nothing is finite."""
    finite = [a[np.isfinite(a)] for a in arrays]
    finite = [a for a in finite if a.size]
    if not finite:
        return None, None
    lo = float(min(a.min() for a in finite))
    hi = float(max(a.max() for a in finite))
    if hi <= lo:
        pad = 1e-12 + 1e-6 * abs(lo)
        lo, hi = lo - pad, hi + pad
    return lo, hi


def _image(fig: Figure, ax, X: np.ndarray, Y: np.ndarray, Z: np.ndarray, title: str,
           labels: tuple, vrange: tuple, cmap: str) -> None:
    mesh = ax.pcolormesh(X, Y, Z, shading="nearest", cmap=cmap, vmin=vrange[0], vmax=vrange[1],
                         rasterized=True)
    fig.colorbar(mesh, ax=ax)
    ax.set_title(title, fontsize="medium")
    ax.set_xlabel(labels[0])
    ax.set_ylabel(labels[1])


def _fields_1d(data: FieldData) -> Figure:
    x = data.axes()[0]
    out = data.out_dim
    fig = Figure(figsize=(11, 3.4 * out), layout="constrained")
    axes = fig.subplots(out, 2, squeeze=False)
    tiny = float(np.finfo(np.float64).tiny)
    for j, name in enumerate(data.output_names):
        left, right = axes[j]
        left.plot(x, data.reference[:, j], "k--", lw=1.5, label="reference")
        left.plot(x, data.prediction[:, j], color="tab:blue", lw=1.2, label="prediction")
        left.set_xlabel(data.input_names[0])
        left.set_ylabel(str(name))
        left.set_title(f"{name}: prediction and reference", fontsize="medium")
        left.legend(fontsize="small")
        err = data.error[:, j]
        positive = err[np.isfinite(err) & (err > 0)]
        if positive.size:  # log axis; zeros (exact boundary values) drawn at a floor
            floor = max(float(positive.max()) * 1e-12, tiny)
            right.plot(x, np.maximum(err, floor), color="tab:red")
            right.set_yscale("log")
        else:
            right.plot(x, err, color="tab:red")
        right.set_xlabel(data.input_names[0])
        right.set_ylabel(f"|{name} error|")
        right.set_title(f"{name}: |prediction − reference|", fontsize="medium")
        for ax in (left, right):
            ax.grid(True, alpha=0.3)
    return fig


def _fields_2d(data: FieldData) -> Figure:
    a0, a1 = data.axes()
    X, Y = np.meshgrid(a0, a1, indexing="ij")
    labels = tuple(data.input_names[:2])
    out = data.out_dim
    fig = Figure(figsize=(14, 3.8 * out), layout="constrained")
    axes = fig.subplots(out, 3, squeeze=False)
    for j, name in enumerate(data.output_names):
        pred = data.on_grid(data.prediction[:, j])[..., 0]
        ref = data.on_grid(data.reference[:, j])[..., 0]
        err = data.on_grid(data.error[:, j])[..., 0]
        _image(fig, axes[j, 0], X, Y, pred, f"{name}: prediction", labels, _range(pred),
               "viridis")
        _image(fig, axes[j, 1], X, Y, ref, f"{name}: reference", labels, _range(ref), "viridis")
        _image(fig, axes[j, 2], X, Y, err, f"{name}: |error|", labels, _range(err), "magma")
    return fig


def _fields_3d(data: FieldData) -> Figure:
    """Snapshots along the last axis (time, or the third coordinate) at its first, middle and
    last value."""
    a0, a1, a2 = data.axes()
    X, Y = np.meshgrid(a0, a1, indexing="ij")
    labels = tuple(data.input_names[:2])
    n = len(a2)
    slices = sorted({0, n // 2, n - 1})
    out = data.out_dim
    rows = out * len(slices)
    fig = Figure(figsize=(14, 3.6 * rows), layout="constrained")
    axes = fig.subplots(rows, 3, squeeze=False)
    sname = data.input_names[2]
    for j, name in enumerate(data.output_names):
        pred = data.on_grid(data.prediction[:, j])[..., 0]
        ref = data.on_grid(data.reference[:, j])[..., 0]
        err = data.on_grid(data.error[:, j])[..., 0]
        pr, rr, er = _range(pred), _range(ref), _range(err)  # one scale per field over time
        for i, k in enumerate(slices):
            row = axes[j * len(slices) + i]
            at = f"{sname} = {a2[k]:.4g}"
            _image(fig, row[0], X, Y, pred[..., k], f"{name}: prediction, {at}", labels, pr,
                   "viridis")
            _image(fig, row[1], X, Y, ref[..., k], f"{name}: reference, {at}", labels, rr,
                   "viridis")
            _image(fig, row[2], X, Y, err[..., k], f"{name}: |error|, {at}", labels, er, "magma")
    return fig


def plot_fields(problem: Problem | None, model: torch.nn.Module | None,
                out_dir: str | os.PathLike, data: FieldData | None = None, *,
                resolution: int | Sequence[int] | None = None, dpi: int = _DPI) -> list:
    """Plot prediction, reference and |error| of every output to ``out_dir/solution.png``.

    * One grid axis (1D steady): per output, prediction and reference overlaid against the
      input, and |error| on a log axis.
    * Two grid axes (2D steady, or (x, t)): per output, three images (prediction, reference,
      |error|), each with its own colourbar (a poor prediction does not wash out the
      reference), axes labelled with the input names (first input horizontal).
    * Three grid axes ((x, y, t), or 3D steady): the same three images at the first, middle
      and last value of the last axis (time); each field keeps one colour scale over time.
    * More axes: nothing is written and a warning says so.

    Args:
        problem, model: evaluated with :func:`evaluate_fields` unless ``data`` is given (then
            either may be None; a given problem's output names must match ``data``'s).
        out_dir: the output folder (created if missing; ValueError if it is a file).
        data: a :class:`FieldData` from :func:`evaluate_fields`, to evaluate only once.
        resolution: the grid resolution when evaluating.
        dpi: the PNG resolution.

    Returns:
        ``[out_dir/solution.png]`` (empty for grids of more than 3 axes).
    """
    out = check_out_dir(out_dir)
    data = _fields(problem, model, data, resolution)
    axes = len(data.shape)
    if axes == 1:
        fig = _fields_1d(data)
    elif axes == 2:
        fig = _fields_2d(data)
    elif axes == 3:
        fig = _fields_3d(data)
    else:
        warnings.warn(f"plot_fields: cannot plot a grid with {axes} axes; solution.png skipped",
                      UserWarning, stacklevel=2)
        return []
    return [_save(fig, out / "solution.png", dpi)]


# --------------------------------------------------------------------------------------- pyvista
def _spatial_dims(problem: Problem | None, data: FieldData | None) -> int:
    if data is not None:
        return data.dim - (data.time_index is not None)
    if not isinstance(problem, Problem):
        raise TypeError(f"problem: expected a pinnk.Problem, got {type(problem).__name__}")
    return len(problem.input_names) - (problem.time_index is not None)


def _time_index(problem: Problem | None, data: FieldData | None) -> int | None:
    return data.time_index if data is not None else problem.time_index


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", str(name)) or "output"


def _planar(data: FieldData) -> tuple:
    """X, Y (r_x, r_y) and the three fields (r_x, r_y, out) on the plane of the render — the
    spatial plane (at the final time for time-dependent problems), or the space-time plane
    (x, t) of a problem with one spatial input — and a title suffix."""
    grid = data.points.reshape(*data.shape, data.dim)
    fields = [data.on_grid(a) for a in (data.prediction, data.reference, data.error)]
    suffix = ""
    if data.time_index is not None and data.dim == 3:
        grid = grid[..., -1, :]
        fields = [f[..., -1, :] for f in fields]
        suffix = f", {data.input_names[-1]} = {grid[0, 0, -1]:.4g}"
    return grid[..., 0], grid[..., 1], fields, suffix


def structured_grid(X: np.ndarray, Y: np.ndarray, values: Mapping[str, np.ndarray]):
    """A ``pyvista.StructuredGrid`` in the plane z = 0 from "ij" arrays X, Y (r_x, r_y) with
    point data ``values`` (each (r_x, r_y))."""
    import pyvista

    grid = pyvista.StructuredGrid(X, Y, np.zeros_like(X))
    for name, v in values.items():
        grid.point_data[name] = np.asarray(v, dtype=np.float64).ravel(order="F")
    return grid


def _quiet_vtk() -> None:
    """VTK logs a warning to stderr when it falls back from X11 to EGL for off-screen
    rendering; only VTK errors are worth a line on the console."""
    try:
        from vtkmodules.vtkCommonCore import vtkLogger
    except ImportError:
        return
    vtkLogger.SetStderrVerbosity(vtkLogger.VERBOSITY_ERROR)


def _render(grid, scalars: str, title: str, path: Path, window_size: tuple) -> None:
    import pyvista

    _quiet_vtk()
    plotter = pyvista.Plotter(off_screen=True, window_size=list(window_size))
    try:
        plotter.add_mesh(grid, scalars=scalars, cmap="viridis", show_scalar_bar=True,
                         scalar_bar_args={"title": scalars, "vertical": True})
        plotter.add_text(title, font_size=10)
        plotter.view_xy()
        write_with(path, lambda p: plotter.screenshot(str(p)))
    finally:
        plotter.close()


def render_pyvista(problem: Problem | None, model: torch.nn.Module | None,
                   out_dir: str | os.PathLike, data: FieldData | None = None, *,
                   resolution: int | Sequence[int] | None = None,
                   window_size: tuple = (800, 600)) -> list:
    """Off-screen pyvista renders ``out_dir/render_<output>.png`` of each predicted output.

    For fields on a plane: 2D steady problems, (x, y, t) problems at the final time, and the
    space-time plane (x, t) of 1D time-dependent problems; for any other problem nothing is
    evaluated or written. Each render is a StructuredGrid of the
    prediction in the plane, viewed from +z, with a scalar bar and a title; the PNG is
    ``window_size`` = (width, height) pixels, RGB. ``<output>`` is the output name with
    characters other than letters, digits, ``_.-`` replaced by ``_``.

    Off-screen rendering needs an OpenGL context (VTK's EGL or OSMesa builds provide one
    without a display). If pyvista is missing or the first render fails, a warning says why and
    the renders are skipped; a later failure keeps the renders already written.

    Args:
        problem, model, data, resolution: as for :func:`plot_fields`.
        out_dir: the output folder (created if missing; ValueError if it is a file).
        window_size: (width, height) of the PNG in pixels.

    Returns:
        The written paths (empty when skipped).
    """
    out = check_out_dir(out_dir)
    if (not isinstance(window_size, Sequence) or len(window_size) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0
                       for v in window_size)):
        raise ValueError(f"window_size: expected (width, height) positive integers, got "
                         f"{window_size!r}")
    space = _spatial_dims(problem, data)
    total = space + (_time_index(problem, data) is not None)
    if not (space == 2 or (space == 1 and total == 2)):
        return []
    data = _fields(problem, model, data, resolution)
    try:
        import pyvista  # noqa: F401
    except ImportError as exc:
        warnings.warn(f"render_pyvista: pyvista is not available ({exc}); renders skipped",
                      UserWarning, stacklevel=2)
        return []
    X, Y, (pred, _, _), suffix = _planar(data)
    written = []
    for j, name in enumerate(data.output_names):
        path = out / f"render_{_safe_name(name)}.png"
        grid = structured_grid(X, Y, {str(name): pred[..., j]})
        try:
            _render(grid, str(name), f"{name} (prediction{suffix})", path, tuple(window_size))
        except Exception as exc:  # noqa: BLE001 - no OpenGL context is not an error of the run
            what = "off-screen rendering failed" if not written else "a render failed"
            warnings.warn(f"render_pyvista: {what} ({type(exc).__name__}: {exc}); "
                          f"{path.name} and later renders skipped", UserWarning, stacklevel=2)
            break
        written.append(path)
    return written
