"""Field evaluation, relative L2 and VTU / XDMF exports (read back with meshio)."""

import math
import os
import warnings

import meshio
import numpy as np
import pytest
import torch

import pinnk
from solvers import _export
from solvers._export import FieldData, evaluate_fields, export_solution, relative_l2


# ------------------------------------------------------------------------------ small problems
class _Base(pinnk.Problem):
    def terms(self, n=None, generator=None, dtype=None):
        return []


class Steady1D(_Base):
    name = "steady-1d"
    input_names = ("x",)
    output_names = ("u",)
    domain = pinnk.Box((0.0,), (1.0,))

    def solution(self, x):
        return torch.sin(math.pi * x[:, :1])


class Steady2D(_Base):
    name = "steady-2d"
    input_names = ("x", "y")
    output_names = ("u",)
    domain = pinnk.Box((0.0, 0.0), (1.0, 1.0))

    def solution(self, x):
        return (torch.sin(math.pi * x[:, 0]) * torch.cos(x[:, 1])).unsqueeze(-1)


class Steady3D(_Base):
    name = "steady-3d"
    input_names = ("x", "y", "z")
    output_names = ("u",)
    domain = pinnk.Box((0.0, 0.0, 0.0), (1.0, 2.0, 1.0))

    def solution(self, x):
        return (x[:, 0] + 2 * x[:, 1] - x[:, 2]).unsqueeze(-1)


class Wave(_Base):
    name = "wave"
    input_names = ("x", "t")
    output_names = ("u",)
    domain = pinnk.Box((0.0, 0.0), (2 * math.pi, 1.0))
    time_index = 1

    def solution(self, x):
        return torch.sin(x[:, :1] - x[:, 1:])


class Euler(_Base):
    name = "euler"
    input_names = ("x", "t")
    output_names = ("rho", "u", "p")
    domain = pinnk.Box((0.0, 0.0), (1.0, 0.5))
    time_index = 1

    def solution(self, x):
        rho = 1 + 0.2 * torch.sin(math.pi * (x[:, 0] - x[:, 1]))
        return torch.stack([rho, torch.ones_like(rho), torch.ones_like(rho)], dim=-1)


class Cone(_Base):
    name = "cone"
    input_names = ("x", "y", "t")
    output_names = ("u",)
    domain = pinnk.Box((-1.0, -1.0, 0.0), (1.0, 1.0, 1.0))
    time_index = 2

    def solution(self, x):
        return torch.exp(-(x[:, :1] - 0.5 * x[:, 2:]) ** 2 - x[:, 1:2] ** 2)


class Exact(torch.nn.Module):
    """A parameter-free model that returns the problem's solution (+ an optional offset)."""

    def __init__(self, problem, offset=0.0):
        super().__init__()
        self.problem, self.offset = problem, offset

    def forward(self, x):
        return self.problem.solution(x) + self.offset


def _mlp(problem):
    torch.manual_seed(0)
    return pinnk.MLP(len(problem.input_names), len(problem.output_names), width=8, depth=1)


# ---------------------------------------------------------------------------------- relative_l2
def test_relative_l2_per_column():
    ref = np.array([[3.0, 1.0], [4.0, -1.0]])
    pred = ref + np.array([[0.0, 1.0], [0.5, 1.0]])
    np.testing.assert_allclose(relative_l2(pred, ref), [0.5 / 5.0, math.sqrt(2) / math.sqrt(2)])
    np.testing.assert_allclose(relative_l2(torch.tensor(pred), torch.tensor(ref)),
                               [0.1, 1.0])
    np.testing.assert_allclose(relative_l2(np.ones(4), np.ones(4)), [0.0])


def test_relative_l2_zero_reference_gives_absolute_norm_and_a_note():
    ref = np.array([[1.0, 0.0], [1.0, 0.0]])
    pred = np.array([[1.0, 3.0], [1.0, 4.0]])
    with pytest.warns(UserWarning, match=r"zero in output\(s\) \['p'\].*absolute"):
        np.testing.assert_allclose(relative_l2(pred, ref, names=("u", "p")), [0.0, 5.0])


def test_relative_l2_bad_input():
    with pytest.raises(ValueError, match="pred: shape"):
        relative_l2(np.ones((3, 2)), np.ones((3, 1)))
    with pytest.raises(TypeError, match="pred: expected a numeric"):
        relative_l2(object(), np.ones(3))


# ------------------------------------------------------------------------------ evaluate_fields
def test_evaluate_fields_grid_values_and_defaults():
    problem = Euler()
    data = evaluate_fields(problem, Exact(problem, offset=0.25), resolution=[7, 5])
    assert data.shape == (7, 5) and data.points.shape == (35, 2)
    assert data.prediction.dtype == np.float64 and data.prediction.shape == (35, 3)
    x, _ = problem.evaluation_points([7, 5], dtype=torch.float64)
    np.testing.assert_allclose(data.points, x.numpy())
    np.testing.assert_allclose(data.reference, problem.solution(x).numpy())
    np.testing.assert_allclose(data.error, 0.25, rtol=1e-6)
    assert data.output_names == ("rho", "u", "p") and data.time_index == 1
    np.testing.assert_allclose(data.times, np.linspace(0, 0.5, 5))
    np.testing.assert_allclose(data.axes()[0], np.linspace(0, 1, 7))
    assert data.spatial_shape == (7,)
    np.testing.assert_allclose(data.relative_l2(),
                               relative_l2(data.prediction, data.reference))

    assert evaluate_fields(Steady1D(), _mlp(Steady1D())).shape == (201,)
    assert _export.default_resolution(2) == 101 and _export.default_resolution(3) == 41
    assert 10 ** 4 <= _export.default_resolution(4) ** 4 <= 10 ** 5


def test_evaluate_fields_batches_without_grad_and_restores_mode():
    problem = Steady2D()
    model = _mlp(problem).train()
    calls = []

    def hook(module, args, output):
        calls.append((args[0].shape[0], torch.is_grad_enabled(), module.training))

    model.register_forward_hook(hook)
    data = evaluate_fields(problem, model, resolution=10, batch_size=30)
    assert [c[0] for c in calls] == [30, 30, 30, 10]
    assert not any(c[1] for c in calls) and not any(c[2] for c in calls)
    assert model.training
    x = torch.as_tensor(data.points, dtype=torch.float32)
    np.testing.assert_allclose(data.prediction, model(x).detach().numpy(), rtol=1e-6, atol=1e-6)


def test_evaluate_fields_bad_input():
    problem = Euler()
    with pytest.raises(ValueError, match=r"model: output shape \(\d+, 2\) does not match "
                                         r"problem.output_names \('rho', 'u', 'p'\)"):
        evaluate_fields(problem, pinnk.MLP(2, 2, width=4, depth=1), resolution=4)
    with pytest.raises(ValueError, match="model: failed on points"):
        evaluate_fields(problem, pinnk.MLP(3, 3, width=4, depth=1), resolution=4)
    with pytest.raises(TypeError, match="model: expected a torch.nn.Module"):
        evaluate_fields(problem, lambda x: x, resolution=4)
    with pytest.raises(TypeError, match="problem: expected a pinnk.Problem"):
        evaluate_fields("euler", _mlp(problem))
    with pytest.raises(ValueError, match="resolution"):
        evaluate_fields(problem, _mlp(problem), resolution=[4, 4, 4])
    with pytest.raises(ValueError, match="batch_size"):
        evaluate_fields(problem, _mlp(problem), resolution=4, batch_size=0)


# --------------------------------------------------------------------------------------- export
def _check_point_data(point_data, data, rows=slice(None)):
    for j, name in enumerate(data.output_names):
        np.testing.assert_allclose(point_data[name], data.prediction[rows, j], rtol=0, atol=0)
        np.testing.assert_allclose(point_data[f"{name}_reference"], data.reference[rows, j],
                                   rtol=0, atol=0)
        np.testing.assert_allclose(point_data[f"{name}_error"], data.error[rows, j],
                                   rtol=0, atol=0)


@pytest.mark.parametrize("problem, resolution, cell_type, n_cells", [
    (Steady1D(), 9, "line", 8),
    (Steady2D(), [5, 4], "quad", 4 * 3),
    (Steady3D(), [4, 3, 3], "hexahedron", 3 * 2 * 2),
])
def test_export_steady_vtu(tmp_path, problem, resolution, cell_type, n_cells):
    model = _mlp(problem)
    paths = export_solution(problem, model, tmp_path / "out", resolution)
    assert paths == [tmp_path / "out" / "solution.vtu"]
    assert sorted(os.listdir(tmp_path / "out")) == ["solution.vtu"]
    mesh = meshio.read(paths[0])
    data = evaluate_fields(problem, model, resolution)
    assert [c.type for c in mesh.cells] == [cell_type]
    assert len(mesh.cells[0].data) == n_cells
    expected = np.zeros((data.n_points, 3))
    expected[:, :data.dim] = data.points
    np.testing.assert_allclose(mesh.points, expected)
    _check_point_data(mesh.point_data, data)
    # the cells are the grid's: every cell's corners span one grid step per axis
    steps = [np.diff(a)[0] for a in data.axes()]
    corners = mesh.points[mesh.cells[0].data]
    np.testing.assert_allclose(np.ptp(corners, axis=1)[:, :data.dim],
                               np.broadcast_to(steps, (n_cells, data.dim)))


def test_quads_are_counter_clockwise(tmp_path):
    (path,) = export_solution(Steady2D(), _mlp(Steady2D()), tmp_path, 3)
    mesh = meshio.read(path)
    p = mesh.points[mesh.cells[0].data][..., :2]
    area = 0.5 * np.sum(p[:, :, 0] * np.roll(p[:, :, 1], -1, axis=1)
                        - np.roll(p[:, :, 0], -1, axis=1) * p[:, :, 1], axis=1)
    assert np.all(area > 0)


@pytest.mark.parametrize("problem, resolution, cell_type", [
    (Euler(), [6, 4], "line"),
    (Cone(), [5, 4, 3], "quad"),
])
def test_export_time_series_xdmf(tmp_path, monkeypatch, problem, resolution, cell_type):
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # the .h5 must land beside the .xdmf, not in the cwd
    out = tmp_path / "out"
    model = _mlp(problem)
    paths = export_solution(problem, model, out, resolution)
    assert paths == [out / "solution.xdmf", out / "solution.h5", out / "solution_final.vtu"]
    assert sorted(os.listdir(out)) == ["solution.h5", "solution.xdmf", "solution_final.vtu"]
    assert os.listdir(elsewhere) == []

    data = evaluate_fields(problem, model, resolution)
    nt, d = resolution[-1], len(resolution)
    spatial = data.points.reshape(-1, nt, d)[:, 0, :d - 1]
    with meshio.xdmf.TimeSeriesReader(out / "solution.xdmf") as reader:
        points, cells = reader.read_points_cells()
        assert reader.num_steps == nt
        assert [c.type for c in cells] == [cell_type]
        np.testing.assert_allclose(points[:, :d - 1], spatial)
        np.testing.assert_allclose(points[:, d - 1:], 0.0)
        for k in range(nt):
            t, point_data, _ = reader.read_data(k)
            assert t == pytest.approx(data.times[k])
            _check_point_data(point_data, data, rows=slice(k, None, nt))

    final = meshio.read(out / "solution_final.vtu")
    assert [c.type for c in final.cells] == [cell_type]
    _check_point_data(final.point_data, data, rows=slice(nt - 1, None, nt))


def test_export_xdmf_without_h5py_writes_inline_xml(tmp_path, monkeypatch):
    monkeypatch.setattr(_export, "_has_h5py", lambda: False)
    problem = Euler()
    with pytest.warns(UserWarning, match="h5py is not installed"):
        paths = export_solution(problem, _mlp(problem), tmp_path, [4, 3])
    assert [p.name for p in paths] == ["solution.xdmf", "solution_final.vtu"]
    assert sorted(os.listdir(tmp_path)) == ["solution.xdmf", "solution_final.vtu"]
    with meshio.xdmf.TimeSeriesReader(tmp_path / "solution.xdmf") as reader:
        reader.read_points_cells()
        assert reader.num_steps == 3
        _, point_data, _ = reader.read_data(2)
    assert set(point_data) == {f"{n}{s}" for n in ("rho", "u", "p")
                               for s in ("", "_reference", "_error")}


def test_export_time_only_problem_is_a_line_vtu(tmp_path):
    class Decay(_Base):
        input_names, output_names = ("t",), ("u",)
        domain = pinnk.Box((0.0,), (1.0,))
        time_index = 0

        def solution(self, x):
            return torch.exp(-x)

    (path,) = export_solution(Decay(), Exact(Decay()), tmp_path, 5)
    mesh = meshio.read(path)
    assert path.name == "solution.vtu" and mesh.cells[0].type == "line"
    np.testing.assert_allclose(mesh.point_data["u_error"], 0.0, atol=1e-6)  # float32 model


def test_export_with_precomputed_data(tmp_path):
    problem = Steady2D()
    data = evaluate_fields(problem, Exact(problem, 1.0), 4)
    (path,) = export_solution(problem, None, tmp_path, data=data)
    np.testing.assert_allclose(meshio.read(path).point_data["u_error"], 1.0, rtol=1e-6)
    with pytest.raises(TypeError, match="data: expected a FieldData"):
        export_solution(problem, None, tmp_path, data={"u": 1})


def _failing_write(calls):
    real_write = meshio.write

    def write(path, mesh, *args, **kwargs):
        calls.append(path)
        real_write(path, mesh, *args, **kwargs)  # a complete file in the temporary path ...
        with open(path, "r+b") as fh:             # ... then truncated mid-way
            fh.truncate(100)
        raise OSError("disk full")

    return write


def test_failing_vtu_writer_leaves_nothing(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(meshio, "write", _failing_write(calls))
    with pytest.raises(OSError, match="disk full"):
        export_solution(Steady2D(), _mlp(Steady2D()), tmp_path, 4)
    assert len(calls) == 1 and calls[0] != tmp_path / "solution.vtu"
    assert os.listdir(tmp_path) == []


def test_failing_vtu_writer_keeps_previous_file(tmp_path, monkeypatch):
    problem = Steady2D()
    (path,) = export_solution(problem, Exact(problem), tmp_path, 4)
    before = path.read_bytes()
    monkeypatch.setattr(meshio, "write", _failing_write([]))
    with pytest.raises(OSError):
        export_solution(problem, Exact(problem, 1.0), tmp_path, 4)
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["solution.vtu"]


def test_failing_xdmf_writer_leaves_nothing(tmp_path, monkeypatch):
    real = meshio.xdmf.TimeSeriesWriter.write_data
    steps = []

    def write_data(self, t, point_data=None, cell_data=None):
        steps.append(t)
        if len(steps) == 3:
            raise OSError("killed mid-series")
        return real(self, t, point_data, cell_data)

    monkeypatch.setattr(meshio.xdmf.TimeSeriesWriter, "write_data", write_data)
    with pytest.raises(OSError, match="killed mid-series"):
        export_solution(Euler(), _mlp(Euler()), tmp_path, [4, 5])
    assert len(steps) == 3
    assert os.listdir(tmp_path) == []


def test_export_bad_out_dir_and_problem(tmp_path):
    afile = tmp_path / "file.txt"
    afile.write_text("x")
    with pytest.raises(ValueError, match="out_dir: .* is not a folder"):
        export_solution(Steady1D(), _mlp(Steady1D()), afile, 5)
    with pytest.raises(TypeError, match="out_dir: expected a path"):
        export_solution(Steady1D(), _mlp(Steady1D()), 3, 5)

    class Steady4D(_Base):
        input_names, output_names = ("a", "b", "c", "d"), ("u",)
        domain = pinnk.Box((0.0,) * 4, (1.0,) * 4)

        def solution(self, x):
            return x[:, :1]

    with pytest.raises(ValueError, match="problem: cannot export a grid with 4 spatial axes"):
        export_solution(Steady4D(), Exact(Steady4D()), tmp_path / "o", 2)


def test_field_data_validates_shapes():
    pts = np.zeros((6, 2))
    vals = np.zeros((6, 1))
    FieldData(pts, (3, 2), vals, vals, vals, ("x", "t"), ("u",), 1)
    with pytest.raises(ValueError, match="shape: expected 2 axes whose product is 6"):
        FieldData(pts, (3, 3), vals, vals, vals, ("x", "t"), ("u",), 1)
    with pytest.raises(ValueError, match="error: expected shape"):
        FieldData(pts, (3, 2), vals, vals, np.zeros((6, 2)), ("x", "t"), ("u",), 1)
    with pytest.raises(ValueError, match="time_index"):
        FieldData(pts, (3, 2), vals, vals, vals, ("x", "t"), ("u",), 0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        FieldData(pts, (3, 2), vals, vals, vals, ("x", "y"), ("u",), None)
