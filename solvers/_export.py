"""Evaluate a trained model on a problem's grid and export the fields for ParaView & co.

* :func:`evaluate_fields` evaluates the model and the reference solution on the problem's
  evaluation grid (batched, without autograd) and returns a :class:`FieldData`.
* :func:`relative_l2` is the per-output relative L2 error used for run metrics.
* :func:`export_solution` writes ``solution.vtu`` (steady problems) or an XDMF time series
  ``solution.xdmf`` + ``solution.h5`` and ``solution_final.vtu`` (time-dependent problems).

Every file is written atomically: a run killed mid-export leaves either the previous
``solution.*`` files or the complete new ones, never a truncated one (see
:func:`export_solution` for the two-file XDMF case).
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import meshio
import numpy as np
import torch

from pinnk import Problem
from pinnk.io import atomic_path

__all__ = ["FieldData", "default_resolution", "evaluate_fields", "relative_l2", "export_solution"]

#: points per grid axis by the number of grid axes (time counts as an axis): ~10^4–10^5 points
_DEFAULT_RESOLUTION = {1: 201, 2: 101, 3: 41}


def default_resolution(dim: int) -> int:
    """The default points per axis of a ``dim``-axis evaluation grid (time counts as an axis).

    201 in 1D, 101 in 2D, 41 in 3D and ⌊10^(5/dim)⌋ beyond: 10^4–10^5 grid points.
    """
    if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
        raise ValueError(f"dim: expected a positive integer, got {dim!r}")
    return _DEFAULT_RESOLUTION.get(dim, max(2, int(10 ** (5 / dim))))


# ------------------------------------------------------------------------------------ field data
@dataclass(frozen=True, eq=False)
class FieldData:
    """A model's prediction and the reference solution on a tensor-product grid.

    Attributes:
        points: (N, d) float64, the grid points, first coordinate varying slowest ("ij").
        shape: the grid shape (r_0, ..., r_{d−1}) with Π r_k = N.
        prediction: (N, out) float64, the model's output.
        reference: (N, out) float64, ``problem.solution`` at the points.
        error: (N, out) float64, |prediction − reference|.
        input_names: the d input names, e.g. ``("x", "t")``.
        output_names: the ``out`` output names, e.g. ``("rho", "u", "p")``.
        time_index: the index of the time coordinate (always the last one) or None.
    """

    points: np.ndarray
    shape: tuple
    prediction: np.ndarray
    reference: np.ndarray
    error: np.ndarray
    input_names: tuple
    output_names: tuple
    time_index: int | None = None

    def __post_init__(self):
        n, d = np.shape(self.points) if np.ndim(self.points) == 2 else (None, None)
        if n is None:
            raise ValueError(f"points: expected shape (N, d), got {np.shape(self.points)}")
        shape = tuple(int(s) for s in self.shape)
        if len(shape) != d or math.prod(shape) != n:
            raise ValueError(f"shape: expected {d} axes whose product is {n}, got {shape}")
        object.__setattr__(self, "shape", shape)
        if len(self.input_names) != d:
            raise ValueError(f"input_names: expected {d} names, got {tuple(self.input_names)}")
        out = len(self.output_names)
        if out < 1:
            raise ValueError("output_names: expected at least one name")
        for name in ("prediction", "reference", "error"):
            if np.shape(getattr(self, name)) != (n, out):
                raise ValueError(f"{name}: expected shape {(n, out)}, got "
                                 f"{np.shape(getattr(self, name))}")
        if self.time_index is not None and self.time_index != d - 1:
            raise ValueError(f"time_index: expected None or {d - 1} (time is the last input), got "
                             f"{self.time_index}")

    @property
    def n_points(self) -> int:
        return self.points.shape[0]

    @property
    def dim(self) -> int:
        return self.points.shape[1]

    @property
    def out_dim(self) -> int:
        return len(self.output_names)

    @property
    def spatial_shape(self) -> tuple:
        """The grid shape without the time axis."""
        return self.shape[:-1] if self.time_index is not None else self.shape

    def axes(self) -> list:
        """The coordinate values along each grid axis: d arrays, the k-th of shape (r_k,)."""
        grid = self.points.reshape(*self.shape, self.dim)
        out = []
        for k in range(self.dim):
            index = [0] * self.dim
            index[k] = slice(None)
            out.append(grid[tuple(index) + (k,)].copy())
        return out

    @property
    def times(self) -> np.ndarray | None:
        """The time values of the grid, shape (r_t,), or None for a steady problem."""
        return None if self.time_index is None else self.axes()[self.time_index]

    def on_grid(self, values: np.ndarray) -> np.ndarray:
        """Reshape point values (N, k) to the grid (r_0, ..., r_{d−1}, k)."""
        values = np.asarray(values)
        return values.reshape(*self.shape, -1)

    def relative_l2(self) -> np.ndarray:
        """The per-output relative L2 error, shape (out,), see :func:`relative_l2`."""
        return relative_l2(self.prediction, self.reference, names=self.output_names)


def relative_l2(pred: Any, ref: Any, names: Sequence[str] | None = None) -> np.ndarray:
    """Per-output relative L2 error ‖pred[:, j] − ref[:, j]‖₂ / ‖ref[:, j]‖₂.

    Args:
        pred: predicted values, an array or tensor of shape (N, out) or (N,) (one output).
        ref: reference values of the same shape as ``pred``.
        names: optional output names, used in the note about zero reference columns.

    Returns:
        float64 array of shape (out,). Where a reference column is identically zero the
        absolute norm ‖pred[:, j]‖₂ is reported instead and a ``UserWarning`` says so.
    """
    p, r = _as_array(pred, "pred"), _as_array(ref, "ref")
    if p.shape != r.shape:
        raise ValueError(f"pred: shape {p.shape} does not match ref shape {r.shape}")
    if p.ndim == 1:
        p, r = p[:, None], r[:, None]
    if p.ndim != 2 or p.shape[0] == 0:
        raise ValueError(f"pred: expected shape (N, out) or (N,) with N >= 1, got {p.shape}")
    num = np.linalg.norm(p - r, axis=0)
    den = np.linalg.norm(r, axis=0)
    zero = den == 0
    if zero.any():
        cols = [names[j] if names is not None and j < len(names) else j
                for j in np.flatnonzero(zero)]
        warnings.warn(f"relative_l2: the reference is zero in output(s) {cols}; reporting the "
                      "absolute L2 norm there", UserWarning, stacklevel=2)
    return np.where(zero, num, num / np.where(zero, 1.0, den))


def _as_array(a: Any, name: str) -> np.ndarray:
    if isinstance(a, torch.Tensor):
        a = a.detach().cpu().to(torch.float64).numpy()
    try:
        return np.asarray(a, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name}: expected a numeric array or tensor, got {type(a).__name__}") \
            from exc


# ------------------------------------------------------------------------------------ evaluation
def _check_problem(problem: Any) -> None:
    if not isinstance(problem, Problem):
        raise TypeError(f"problem: expected a pinnk.Problem, got {type(problem).__name__}")
    d = len(problem.input_names)
    if d < 1 or not problem.output_names:
        raise ValueError("problem: expected non-empty input_names and output_names")
    if problem.time_index is not None and problem.time_index != d - 1:
        raise ValueError(f"problem.time_index: expected None or {d - 1} (time is the last input), "
                         f"got {problem.time_index}")


def _model_dtype_device(model: torch.nn.Module) -> tuple:
    for t in list(model.parameters()) + list(model.buffers()):
        if t.is_floating_point():
            return t.dtype, t.device
    return torch.get_default_dtype(), torch.device("cpu")


def evaluate_fields(problem: Problem, model: torch.nn.Module,
                    resolution: int | Sequence[int] | None = None,
                    device: torch.device | str | None = None, dtype: torch.dtype | None = None,
                    *, batch_size: int = 8192) -> FieldData:
    """Evaluate ``model`` and ``problem.solution`` on the problem's evaluation grid.

    Args:
        problem: the :class:`pinnk.Problem`.
        model: a module mapping (n, d) -> (n, out) with out = len(problem.output_names).
        resolution: points per axis (an int or one per input); default
            :func:`default_resolution` of the number of inputs (time counts).
        device, dtype: where and in which dtype to evaluate the model; default that of the
            model's first floating parameter (CPU and torch's default dtype for a module
            without parameters).
        batch_size: points per forward pass.

    Returns:
        A :class:`FieldData` (all arrays float64 numpy). The model runs under ``torch.no_grad``
        in eval mode (its training flag is restored afterwards); the reference is computed in
        float64 on the CPU, also batched. Nothing is written.
    """
    _check_problem(problem)
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model: expected a torch.nn.Module, got {type(model).__name__}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size: expected a positive integer, got {batch_size!r}")
    d, out = len(problem.input_names), len(problem.output_names)
    if resolution is None:
        resolution = default_resolution(d)
    m_dtype, m_device = _model_dtype_device(model)
    dtype = dtype or m_dtype
    device = torch.device(device) if device is not None else m_device

    x64, shape = problem.evaluation_points(resolution, dtype=torch.float64)
    x64 = x64.detach().cpu()
    if x64.ndim != 2 or x64.shape[1] != d:
        raise ValueError(f"problem.evaluation_points: expected points of shape (N, {d}), got "
                         f"{tuple(x64.shape)}")

    def run_model(x: torch.Tensor) -> torch.Tensor:
        try:
            y = model(x.to(device=device, dtype=dtype))
        except (RuntimeError, ValueError, TypeError) as exc:
            raise ValueError(f"model: failed on points of shape {tuple(x.shape)} "
                             f"(inputs {tuple(problem.input_names)}): {exc}") from exc
        if not isinstance(y, torch.Tensor):
            raise TypeError(f"model: expected a tensor output, got {type(y).__name__}")
        if y.ndim == 1 and out == 1:
            y = y[:, None]
        if y.shape != (x.shape[0], out):
            raise ValueError(f"model: output shape {tuple(y.shape)} does not match "
                             f"problem.output_names {tuple(problem.output_names)} (expected "
                             f"({x.shape[0]}, {out}))")
        return y.detach().to("cpu", torch.float64)

    def run_solution(x: torch.Tensor) -> torch.Tensor:
        y = torch.as_tensor(problem.solution(x))
        if y.ndim == 1 and out == 1:
            y = y[:, None]
        if tuple(y.shape) != (x.shape[0], out):
            raise ValueError(f"problem.solution: returned shape {tuple(y.shape)}, expected "
                             f"({x.shape[0]}, {out}) for outputs {tuple(problem.output_names)}")
        return y.detach().to("cpu", torch.float64)

    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            pred = torch.cat([run_model(x64[i:i + batch_size])
                              for i in range(0, x64.shape[0], batch_size)])
            ref = torch.cat([run_solution(x64[i:i + batch_size])
                             for i in range(0, x64.shape[0], batch_size)])
    finally:
        model.train(was_training)
    pred, ref = pred.numpy(), ref.numpy()
    return FieldData(points=x64.numpy(), shape=tuple(shape), prediction=pred, reference=ref,
                     error=np.abs(pred - ref), input_names=tuple(problem.input_names),
                     output_names=tuple(problem.output_names), time_index=problem.time_index)


# ---------------------------------------------------------------------------------------- export
def check_out_dir(out_dir: Any) -> Path:
    """Return ``out_dir`` as a Path, creating the folder; ValueError when it is a file."""
    if not isinstance(out_dir, (str, os.PathLike)):
        raise TypeError(f"out_dir: expected a path, got {type(out_dir).__name__}")
    path = Path(out_dir)
    if path.exists() and not path.is_dir():
        raise ValueError(f"out_dir: {str(path)!r} exists and is not a folder")
    path.mkdir(parents=True, exist_ok=True)
    return path


def _grid_cells(shape: tuple) -> tuple:
    """The meshio cell type and connectivity of a tensor grid of ``shape`` ("ij" numbering)."""
    idx = np.arange(math.prod(shape)).reshape(shape)
    if len(shape) == 1:
        return "line", np.stack([idx[:-1], idx[1:]], axis=-1)
    if len(shape) == 2:
        quad = [idx[:-1, :-1], idx[1:, :-1], idx[1:, 1:], idx[:-1, 1:]]  # counter-clockwise
        return "quad", np.stack(quad, axis=-1).reshape(-1, 4)
    if len(shape) == 3:
        lo = [idx[:-1, :-1, :-1], idx[1:, :-1, :-1], idx[1:, 1:, :-1], idx[:-1, 1:, :-1]]
        hi = [idx[:-1, :-1, 1:], idx[1:, :-1, 1:], idx[1:, 1:, 1:], idx[:-1, 1:, 1:]]
        return "hexahedron", np.stack(lo + hi, axis=-1).reshape(-1, 8)
    raise ValueError(f"problem: cannot export a grid with {len(shape)} spatial axes; expected 1 "
                     "to 3")


def _points3(points: np.ndarray) -> np.ndarray:
    """Pad (n, k <= 3) coordinates with zeros to (n, 3)."""
    out = np.zeros((points.shape[0], 3), dtype=np.float64)
    out[:, :points.shape[1]] = points
    return out


def _point_data(names: Sequence[str], pred: np.ndarray, ref: np.ndarray,
                err: np.ndarray) -> dict:
    data = {}
    for j, name in enumerate(names):
        data[str(name)] = np.ascontiguousarray(pred[:, j])
        data[f"{name}_reference"] = np.ascontiguousarray(ref[:, j])
        data[f"{name}_error"] = np.ascontiguousarray(err[:, j])
    return data


def _write_vtu(path: Path, points: np.ndarray, shape: tuple, point_data: dict) -> None:
    cell_type, cells = _grid_cells(shape)
    mesh = meshio.Mesh(_points3(points), [(cell_type, cells)], point_data=point_data)
    with atomic_path(path) as tmp:
        meshio.write(tmp, mesh, file_format="vtu")


class _TimeSeriesWriter(meshio.xdmf.TimeSeriesWriter):
    """meshio's XDMF time-series writer with the HDF5 file next to the XDMF file.

    meshio 5.3 opens ``<stem>.h5`` relative to the current working directory rather than the
    XDMF file's folder; the XDMF refers to it by bare file name (``solution.h5:/data0``).
    """

    def __enter__(self):
        if self.data_format == "HDF":
            import h5py

            self.h5_filename = str(self.filename.with_suffix(".h5"))
            self.h5_file = h5py.File(self.h5_filename, "w")
        return self


def _has_h5py() -> bool:
    try:
        import h5py  # noqa: F401
    except ImportError:
        return False
    return True


def export_solution(problem: Problem, model: torch.nn.Module, out_dir: str | os.PathLike,
                    resolution: int | Sequence[int] | None = None, *,
                    data: FieldData | None = None) -> list:
    """Export prediction, reference and error on the evaluation grid for visualisation.

    Point data per output ``NAME``: ``NAME`` (the prediction), ``NAME_reference`` and
    ``NAME_error`` (|prediction − reference|), float64.

    * Steady problems (``time_index`` None), and problems whose only input is time: writes
      ``out_dir/solution.vtu`` on the tensor grid, with line (1D), quad (2D) or hexahedron (3D)
      cells; the coordinates are padded with zeros to 3D.
    * Time-dependent problems: writes the XDMF time series ``out_dir/solution.xdmf`` with its
      data in ``out_dir/solution.h5`` (meshio's ``TimeSeriesWriter``): the spatial grid (1-3
      spatial axes: lines, quads, hexahedra) as the mesh and one step per time value of the grid.
      Also ``out_dir/solution_final.vtu``, the last time step. Without h5py the XDMF holds its
      data inline (XML format, no ``.h5``) and a warning says so.

    Atomicity: the VTU files are written with :func:`pinnk.io.atomic_path`. The XDMF and its H5
    refer to each other by file name, so both are written with their final names into a
    temporary folder inside ``out_dir`` and then moved into place with ``os.replace``, the H5
    first and the XDMF last; the temporary folder is removed afterwards (also on failure). A
    run killed mid-export thus never leaves a truncated ``solution.*`` file; killed between the
    two renames, it leaves the new H5 beside the previous XDMF (a later export replaces both).

    Args:
        problem: the :class:`pinnk.Problem`.
        model: the model (n, d) -> (n, out).
        out_dir: the output folder (created if missing; ValueError if it is a file).
        resolution: the grid resolution, see :func:`evaluate_fields`.
        data: already evaluated fields (then ``resolution`` is ignored and the model is not run).

    Returns:
        The written paths: ``[solution.vtu]`` or ``[solution.xdmf, solution.h5,
        solution_final.vtu]``.
    """
    out = check_out_dir(out_dir)
    if data is None:
        data = evaluate_fields(problem, model, resolution)
    elif not isinstance(data, FieldData):
        raise TypeError(f"data: expected a FieldData, got {type(data).__name__}")
    names = data.output_names

    if data.time_index is None or data.dim == 1:
        if data.dim > 3:
            raise ValueError(f"problem: cannot export a grid with {data.dim} spatial axes; "
                             "expected 1 to 3")
        path = out / "solution.vtu"
        _write_vtu(path, data.points, data.shape,
                   _point_data(names, data.prediction, data.reference, data.error))
        return [path]

    spatial = data.spatial_shape
    if len(spatial) > 3:
        raise ValueError(f"problem: cannot export a grid with {len(spatial)} spatial axes; "
                         "expected 1 to 3")
    nt, d = data.shape[-1], data.dim
    grid_points = data.points.reshape(*spatial, nt, d)
    space = grid_points[..., 0, :d - 1].reshape(-1, d - 1)
    times = data.times
    fields = [data.on_grid(a).reshape(*spatial, nt, -1)
              for a in (data.prediction, data.reference, data.error)]

    def step(k: int) -> dict:
        return _point_data(names, *(f[..., k, :].reshape(-1, len(names)) for f in fields))

    cell_type, cells = _grid_cells(spatial)
    data_format = "HDF" if _has_h5py() else "XML"
    if data_format == "XML":
        warnings.warn("export_solution: h5py is not installed; writing solution.xdmf with inline "
                      "XML data and no solution.h5", UserWarning, stacklevel=2)
    xdmf, h5 = out / "solution.xdmf", out / "solution.h5"
    tmp_dir = Path(tempfile.mkdtemp(prefix=".solution-export-", dir=out))
    try:
        with _TimeSeriesWriter(tmp_dir / xdmf.name, data_format=data_format) as writer:
            writer.write_points_cells(_points3(space), [(cell_type, cells)])
            for k in range(nt):
                writer.write_data(float(times[k]), point_data=step(k))
        written = []
        if data_format == "HDF":
            _fsync(tmp_dir / h5.name)
            os.replace(tmp_dir / h5.name, h5)
            written.append(h5)
        _fsync(tmp_dir / xdmf.name)
        os.replace(tmp_dir / xdmf.name, xdmf)
        written.insert(0, xdmf)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)

    final = out / "solution_final.vtu"
    _write_vtu(final, space, spatial, step(nt - 1))
    return written + [final]


def _fsync(path: Path) -> None:
    with open(path, "rb+") as fh:
        os.fsync(fh.fileno())
