"""History, diagnostics and field plots; off-screen pyvista renders."""

import math
import os
import warnings

import matplotlib.image
import numpy as np
import pytest
import torch

import pinnk
from solvers import _plots
from solvers._export import evaluate_fields
from solvers._plots import plot_fields, plot_history, render_pyvista

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


# ------------------------------------------------------------------------------ small problems
class _Base(pinnk.Problem):
    def terms(self, n=None, generator=None, dtype=None):
        return []


class Steady1D(_Base):
    input_names, output_names = ("x",), ("u",)
    domain = pinnk.Box((0.0,), (1.0,))

    def solution(self, x):
        return torch.sin(math.pi * x[:, :1])


class Steady2D(_Base):
    input_names, output_names = ("x", "y"), ("u",)
    domain = pinnk.Box((0.0, 0.0), (1.0, 1.0))

    def solution(self, x):
        return (torch.sin(math.pi * x[:, 0]) * x[:, 1]).unsqueeze(-1)


class Euler(_Base):
    input_names, output_names = ("x", "t"), ("rho", "u", "p")
    domain = pinnk.Box((0.0, 0.0), (1.0, 0.5))
    time_index = 1

    def solution(self, x):
        rho = 1 + 0.2 * torch.sin(math.pi * (x[:, 0] - x[:, 1]))
        return torch.stack([rho, torch.ones_like(rho), torch.ones_like(rho)], dim=-1)


class Cone(_Base):
    input_names, output_names = ("x", "y", "t"), ("u", "v")
    domain = pinnk.Box((-1.0, -1.0, 0.0), (1.0, 1.0, 1.0))
    time_index = 2

    def solution(self, x):
        u = torch.exp(-(x[:, 0] - 0.5 * x[:, 2]) ** 2 - x[:, 1] ** 2)
        return torch.stack([u, x[:, 0] * x[:, 1]], dim=-1)


def _mlp(problem):
    torch.manual_seed(0)
    return pinnk.MLP(len(problem.input_names), len(problem.output_names), width=8, depth=1)


def _check_png(path, shape=None):
    assert path.exists(), path
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and image.shape[2] in (3, 4)
    if shape is not None:
        assert image.shape[:2] == shape
    return image


def _no_temp_files(folder):
    assert not [n for n in os.listdir(folder) if n.startswith(".")]


# --------------------------------------------------------------------------------------- history
def _history(n=6, with_diagnostics=True):
    train = [{"step": 10 * i, "loss": 1.0 / (i + 1), "losses": {"pde": 0.6 / (i + 1),
                                                                   "bc": 0.4 / (i + 1)},
              "weights": {"pde": 1.0, "bc": 1.0 + i}, "lr": 1e-3, "time": 0.1 * i}
             for i in range(n)]
    history = {"train": train}
    if with_diagnostics:
        history["diagnostics"] = [
            {"step": 20 * i, "lambda_min": 1e-3 * (i + 1), "lambda_max": 10.0 + i,
             "drift": 0.05 * i,
             "angles": {"pde|bc": {"mean": 80.0 - i, "p5": 60.0, "p25": 70.0 - i,
                                   "p50": 79.0, "p75": 85.0 - i, "p95": 89.0}}}
            for i in range(3)]
    return history


def test_plot_history_writes_three_pngs(tmp_path):
    paths = plot_history(_history(), tmp_path)
    assert [p.name for p in paths] == ["loss.png", "weights.png", "diagnostics.png"]
    for p in paths:
        _check_png(p)
    _no_temp_files(tmp_path)


def test_plot_history_marks_round_off_lambda_min(tmp_path):
    h = _history()
    h["diagnostics"][0]["lambda_min"] = -3e-13  # a numerically singular Θ*
    h["diagnostics"][1]["lambda_min"] = 0.0
    paths = plot_history(h, tmp_path)
    assert [p.name for p in paths] == ["loss.png", "weights.png", "diagnostics.png"]
    _check_png(paths[-1])


def test_plot_history_skips_missing_and_empty_parts(tmp_path):
    assert plot_history({}, tmp_path) == []
    assert plot_history(None, tmp_path) == []
    assert plot_history({"train": [], "diagnostics": []}, tmp_path) == []
    assert os.listdir(tmp_path) == []

    history = _history(with_diagnostics=False)
    for rec in history["train"]:
        del rec["weights"]
    history["train"][2]["loss"] = None  # JSON's null for a NaN loss
    paths = plot_history(history, tmp_path / "a")
    assert [p.name for p in paths] == ["loss.png"]

    diagnostics = [{"step": 0, "drift": 0.1}, {"step": 5, "drift": 0.2}]
    paths = plot_history({"diagnostics": diagnostics}, tmp_path / "b")
    assert [p.name for p in paths] == ["diagnostics.png"]
    _check_png(paths[0])
    # a diagnostics record with nothing to plot writes nothing
    assert plot_history({"diagnostics": [{"step": 0}]}, tmp_path / "c") == []


def test_plot_history_bad_input(tmp_path):
    with pytest.raises(TypeError, match="history: expected a dict"):
        plot_history([1, 2], tmp_path)
    with pytest.raises(TypeError, match=r"history\['train'\]: expected a list of dicts"):
        plot_history({"train": 3}, tmp_path)
    with pytest.raises(ValueError, match=r"history\['train'\]\[1\]: missing 'step'"):
        plot_history({"train": [{"step": 0, "loss": 1.0}, {"loss": 1.0}]}, tmp_path)
    with pytest.raises(TypeError, match=r"history\['train'\]\[0\]\['losses'\]\['pde'\]: "
                                        "expected a number"):
        plot_history({"train": [{"step": 0, "losses": {"pde": "big"}}]}, tmp_path)
    afile = tmp_path / "f"
    afile.write_text("")
    with pytest.raises(ValueError, match="out_dir: .* is not a folder"):
        plot_history(_history(), afile)


# ---------------------------------------------------------------------------------------- fields
@pytest.mark.parametrize("problem, resolution", [
    (Steady1D(), 50),
    (Steady2D(), 20),
    (Euler(), [20, 10]),
    (Cone(), [16, 16, 5]),
])
def test_plot_fields_writes_solution_png(tmp_path, problem, resolution):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        paths = plot_fields(problem, _mlp(problem), tmp_path, resolution=resolution, dpi=40)
    assert paths == [tmp_path / "solution.png"]
    _check_png(paths[0])
    _no_temp_files(tmp_path)


def test_plot_fields_exact_model_and_precomputed_data(tmp_path):
    problem = Steady1D()

    class Exact(torch.nn.Module):
        def forward(self, x):
            return problem.solution(x)

    data = evaluate_fields(problem, Exact(), 30, dtype=torch.float64)  # zero error, log axis
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        (path,) = plot_fields(None, None, tmp_path, data=data)
    _check_png(path)
    with pytest.raises(ValueError, match=r"data: output_names \('u',\) do not match "
                                         r"problem.output_names"):
        plot_fields(Euler(), None, tmp_path, data=data)
    with pytest.raises(TypeError, match="data: expected a FieldData"):
        plot_fields(problem, None, tmp_path, data=np.zeros(3))


def test_plot_fields_bad_model(tmp_path):
    with pytest.raises(ValueError, match="model: output shape .* does not match "
                                         "problem.output_names"):
        plot_fields(Euler(), pinnk.MLP(2, 1, width=4, depth=1), tmp_path, resolution=5)
    assert os.listdir(tmp_path) == []


# --------------------------------------------------------------------------------------- pyvista
def _render_or_warning(problem, tmp_path, names, window_size=(320, 240)):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        paths = render_pyvista(problem, _mlp(problem), tmp_path,
                               resolution=[12] * len(problem.input_names),
                               window_size=window_size)
    skipped = [w for w in caught if "render_pyvista" in str(w.message)]
    if paths:
        assert [p.name for p in paths] == [f"render_{n}.png" for n in names]
        for p in paths:
            _check_png(p, shape=(window_size[1], window_size[0]))
    else:
        assert skipped, "no render and no warning"
        assert "off-screen rendering failed" in str(skipped[0].message)
    _no_temp_files(tmp_path)


def test_render_pyvista_2d(tmp_path):
    _render_or_warning(Steady2D(), tmp_path, ["u"])


def test_render_pyvista_xyt_final_time(tmp_path):
    _render_or_warning(Cone(), tmp_path, ["u", "v"])


def test_render_pyvista_space_time_plane(tmp_path):
    _render_or_warning(Euler(), tmp_path, ["rho", "u", "p"])


def test_render_pyvista_skips_other_dimensions(tmp_path):
    assert render_pyvista(Steady1D(), _mlp(Steady1D()), tmp_path) == []
    assert os.listdir(tmp_path) == []


def test_render_failure_warns_and_skips(tmp_path, monkeypatch):
    pyvista = pytest.importorskip("pyvista")

    def broken(*args, **kwargs):
        raise RuntimeError("no OpenGL context")

    monkeypatch.setattr(pyvista, "Plotter", broken)
    with pytest.warns(UserWarning, match="off-screen rendering failed .*no OpenGL context"):
        assert render_pyvista(Steady2D(), _mlp(Steady2D()), tmp_path, resolution=5) == []
    assert os.listdir(tmp_path) == []


def test_structured_grid_point_order():
    pytest.importorskip("pyvista")
    data = evaluate_fields(Cone(), _mlp(Cone()), [5, 4, 3])
    X, Y, (pred, ref, _), suffix = _plots._planar(data)
    assert X.shape == (5, 4) and suffix == ", t = 1"
    grid = _plots.structured_grid(X, Y, {"f": X + 2 * Y, "u": ref[..., 0]})
    pts = np.asarray(grid.points)
    np.testing.assert_allclose(grid.point_data["f"], pts[:, 0] + 2 * pts[:, 1], atol=1e-6)
    t = np.ones(len(pts))
    expected = Cone().solution(torch.tensor(np.c_[pts[:, :2], t])).numpy()[:, 0]
    np.testing.assert_allclose(grid.point_data["u"], expected, atol=1e-6)


def test_render_pyvista_bad_input(tmp_path):
    with pytest.raises(ValueError, match="window_size"):
        render_pyvista(Steady2D(), _mlp(Steady2D()), tmp_path, window_size=(0, 10))
    with pytest.raises(TypeError, match="problem: expected a pinnk.Problem"):
        render_pyvista(object(), None, tmp_path)
