"""Bad inputs, table-driven: each one gives a ValueError/TypeError naming the argument (Python API)
or one line ``pinnk: error: ...`` and exit status 2 (command line), matched to its message. No
traceback, no silent NaN, no allocation that cannot fit, no work before the error."""

import contextlib
import re
import math
import shutil
from pathlib import Path

import pytest
import torch

import pinnk
import problems
from pinnk import ops
from solvers import Trainer, report_weights, train
from solvers import _bench as B
from solvers._runfolder import lock_folder
from solvers._train import CHECKPOINT
from cli_util import assert_one_line_error, run_cli

TINY = ["--steps", "4", "--points", "16", "--width", "4", "--depth", "1", "--quiet",
        "--no-export", "--ntk-every", "0"]
QUICK = dict(steps=4, points=16, model_options={"width": 4, "depth": 1}, export=False,
             ntk_every=0, device="cpu")
NAN = math.nan


def mlp(d_in=2, d_out=1, **kw):
    return pinnk.MLP(d_in, d_out, 8, 2, generator=torch.Generator().manual_seed(0), **kw)


X1 = torch.linspace(0, 1, 5)[:, None]
X2 = torch.rand(5, 2, generator=torch.Generator().manual_seed(1))


class Linear2(torch.nn.Module):
    """A custom model without ``in_dim``: two inputs, one output."""

    def __init__(self):
        super().__init__()
        self.layer = torch.nn.Linear(2, 1)

    def forward(self, x):
        return self.layer(x)


def nan_params():
    m = mlp()
    with torch.no_grad():
        m.weights[0][0, 0] = NAN
    return m


def nan_field(x):
    return x * NAN


def zero_field(x):
    return torch.zeros_like(x)


def nan_coefficient(x):
    return x[:, 0] * NAN


def nan_target(x):
    return x[:, 0] * NAN


def half_nan_target(x):  # finite at the term's points (in [0, 1]), NaN beyond
    return torch.where(x[:, 0] > 2, NAN, 0.0)


def kernel(model=None, terms=None):
    return pinnk.ntk(model or mlp(1), terms or [pinnk.Term("a", ops.value(), X1),
                                               pinnk.Term("b", ops.laplacian(), X1)])


def poisson():
    return problems.get("poisson-1d")


# ------------------------------------------------------------------------------ the Python API
API = {
    # points that do not fit the model
    "residual: points of another width": (
        lambda: pinnk.Term("r", ops.value(), X1).residual(mlp(2)), ValueError,
        r"points: the model takes 2 input coordinate\(s\), got points of dimension 1"),
    "residual: custom model, points of another width": (
        lambda: pinnk.Term("r", ops.laplacian(), X1).residual(Linear2()), ValueError,
        r"points: the model cannot be evaluated at points of dimension 1"),
    "operator: points of another width": (
        lambda: ops.laplacian()(mlp(2), X1), ValueError, r"x: the model takes 2 input"),
    "operator: custom model, points of another width": (
        lambda: ops.value()(Linear2(), X1), ValueError,
        r"x: the model cannot be evaluated at points of dimension 1"),
    "ntk: points of another width": (
        lambda: kernel(mlp(2)), ValueError, r"terms: term 'a': the model takes 2 input"),
    "ntk: custom model, points of another width": (
        lambda: kernel(Linear2()), ValueError,
        r"terms: term 'a': the model cannot be evaluated at points of dimension 1"),
    "train: a model for another problem (inputs)": (
        lambda: train(poisson(), mlp(2), **{k: v for k, v in QUICK.items()
                                            if k != "model_options"}),
        ValueError, r"model: the model takes 2 input coordinate\(s\), problem 'poisson-1d' "
                    r"has 1"),
    "train: a model for another problem (outputs)": (
        lambda: train(poisson(), mlp(1, 3), **{k: v for k, v in QUICK.items()
                                               if k != "model_options"}),
        ValueError, r"model: the model returns shape \(1, 3\) for one point; problem "
                    r"'poisson-1d' has 1 output"),
    "train: a custom model for another problem": (
        lambda: train(poisson(), Linear2(), **{k: v for k, v in QUICK.items()
                                               if k != "model_options"}),
        ValueError, r"model: cannot evaluate the model at a point of problem 'poisson-1d'"),
    # silent NaN/Inf
    "a callable target returning NaN": (
        lambda: pinnk.Term("r", ops.value(), X1, nan_target), ValueError,
        r"target: the callable 'nan_target' returned NaN or Inf at row 0"),
    "a callable target returning NaN at other points": (
        lambda: pinnk.Term("r", ops.value(), X1, half_nan_target).residual(mlp(1), X1 + 5),
        ValueError, r"target: the callable returned NaN or Inf at row 0"),
    "a direction field returning NaN (operator)": (
        lambda: ops.directional(nan_field)(mlp(), X2), ValueError,
        r"h: the direction field 'nan_field' returned NaN or Inf at row 0"),
    "a direction field returning NaN (term, kernel diagonal)": (
        lambda: kernel(mlp(2), [pinnk.Term("n", ops.directional(nan_field), X2)]).diagonal(0),
        ValueError, r"h: the direction field 'nan_field' returned NaN or Inf"),
    "a direction field that is zero everywhere (operator)": (
        lambda: ops.directional(zero_field)(mlp(), X2), ValueError,
        r"h: the direction field 'zero_field' is zero at every point"),
    "a direction field that is zero everywhere (term)": (
        lambda: pinnk.Term("n", ops.directional(zero_field, 2), X2), ValueError,
        r"h: the direction field 'zero_field' is zero at every point"),
    "a zero constant direction": (
        lambda: ops.directional([0.0, 0.0]), ValueError, r"h: direction has zero norm"),
    "a coefficient field returning NaN (operator)": (
        lambda: (nan_coefficient * ops.value())(mlp(), X2), ValueError,
        r"coefficient: the field 'nan_coefficient' returned NaN or Inf at row 0"),
    "a coefficient field returning NaN (term, kernel diagonal)": (
        lambda: kernel(mlp(2), [pinnk.Term("c", nan_coefficient * ops.laplacian(), X2)])
        .diagonal(0), ValueError, r"coefficient: the field 'nan_coefficient' returned NaN"),
    "a coefficient field of a nonlinear operator returning NaN": (
        lambda: pinnk.Term("c", nan_coefficient * ops.residual(lambda x, u: u * u,
                                                                u=ops.value()), X2),
        ValueError, r"coefficient: the field 'nan_coefficient' returned NaN"),
    "nan * op": (lambda: NAN * ops.value(), ValueError,
                 r"coefficient: expected a finite number, got nan"),
    "inf * op": (lambda: math.inf * ops.laplacian(), ValueError,
                 r"coefficient: expected a finite number, got inf"),
    "op * -inf": (lambda: ops.value() * -math.inf, ValueError,
                  r"coefficient: expected a finite number, got -inf"),
    "a 0-d NaN tensor * op": (lambda: torch.tensor(NAN) * ops.value(), ValueError,
                              r"coefficient: expected a finite number"),
    "transport([nan, 1])": (lambda: ops.transport([NAN, 1]), ValueError,
                            r"coefficients\[0\]: expected a finite number, got nan"),
    "transport([1, inf])": (lambda: ops.transport([1.0, math.inf]), ValueError,
                            r"coefficients\[1\]: expected a finite number, got inf"),
    "a residual function returning NaN (operator)": (
        lambda: ops.residual(lambda x, u: u * NAN, u=ops.value(), label="bad")(mlp(), X2),
        ValueError, r"fn: the residual 'bad' returned NaN or Inf at row 0 of the points, "
                    r"from finite inputs \['u'\]"),
    "a residual function returning Inf (term)": (
        lambda: pinnk.Term("r", ops.residual(lambda x, u, u_x: u_x + math.inf, u=ops.value(),
                                             u_x=ops.partial([1, 0]), label="inf"), X2)
        .residual(mlp()), ValueError, r"fn: the residual 'inf' returned NaN or Inf"),
    "NaN parameters (trace_weights)": (
        lambda: kernel(nan_params(), [pinnk.Term("a", ops.value(), X2),
                                      pinnk.Term("b", ops.laplacian(), X2)]).trace_weights(),
        ValueError, r"model: parameter 'weights.0' contains NaN or Inf"),
    "NaN parameters (residual)": (
        lambda: pinnk.Term("a", ops.value(), X2).residual(nan_params()), ValueError,
        r"model: parameter 'weights.0' contains NaN or Inf"),
    "NaN points (operator)": (
        lambda: ops.value()(mlp(), torch.tensor([[0.0, NAN]])), ValueError,
        r"x: contains NaN or Inf \(first at row 0\)"),
    "NaN points (term)": (
        lambda: pinnk.Term("a", ops.value(), [[0.0, NAN]]), ValueError,
        r"points: contains NaN or Inf"),
    # unnamed or misnamed arguments
    "Term(target='abc')": (
        lambda: pinnk.Term("r", ops.value(), X1, target="abc"), TypeError,
        r"target: expected a tensor of shape \(n,\), a callable x -> \(n,\) or None, got str"),
    "Term(target=True)": (
        lambda: pinnk.Term("r", ops.value(), X1[:1], target=True), TypeError,
        r"target: expected a tensor .* got a tensor of torch.bool"),
    "K.matrix(weights='abc')": (
        lambda: kernel().matrix(weights="abc"), TypeError,
        r"weights: expected one number per term or a mapping name -> weight, got str"),
    "K.matrix(weights=[1, nan])": (
        lambda: kernel().matrix(weights=[1.0, NAN]), ValueError, r"weights: contains NaN"),
    "K.matrix(weights={'x': 1})": (
        lambda: kernel().matrix(weights={"x": 1.0}), ValueError,
        r"weights: unknown term name\(s\) \['x'\]"),
    "train(callback='x')": (
        lambda: Trainer(poisson(), callback="x", **QUICK), TypeError,
        r"callback: expected a callable callback\(trainer\), got str"),
    "train(points=0)": (
        lambda: Trainer(poisson(), **{**QUICK, "points": 0}), ValueError,
        r"^points: expected an integer >= 1, got 0"),
    "train(points={'nope': 3})": (
        lambda: Trainer(poisson(), **{**QUICK, "points": {"nope": 3}}), ValueError,
        r"^points: unknown term name\(s\) \['nope'\]"),
    "transport([1.0]) on 2-D points": (
        lambda: ops.transport([1.0])(mlp(), X2), ValueError,
        r"coefficients: sequence of length 1 for points of dimension 2"),
    "divergence([0]) on 2-D points": (
        lambda: pinnk.Term("d", ops.divergence([0]), X2), ValueError,
        r"components: sequence of length 1 for points of dimension 2"),
    "partial([1, 0, 0]) on 2-D points": (
        lambda: pinnk.Term("p", ops.partial([1, 0, 0]), X2), ValueError,
        r"alpha: multi-index of length 3 for points of dimension 2"),
    "ntk of a float16 model": (
        lambda: kernel(mlp(1).half()), ValueError,
        r"model: the NTK needs float32 or float64 parameters, got torch.float16"),
    "ntk of a bfloat16 model": (
        lambda: kernel(mlp(1).to(torch.bfloat16)), ValueError,
        r"model: the NTK needs float32 or float64 parameters, got torch.bfloat16"),
    "train(dtype='float16')": (
        lambda: Trainer(poisson(), dtype="float16", **QUICK), ValueError,
        r"dtype: expected 'float32' or 'float64'"),
    # problem parameters
    "poisson-1d a=1e200": (lambda: problems.get("poisson-1d", a=1e200), ValueError,
                           r"a: expected a number of magnitude <= 1e\+06, got 1e\+200"),
    "wave-1d c=1e200": (lambda: problems.get("wave-1d", c=1e200), ValueError,
                        r"c: expected a number of magnitude <= 1e\+06"),
    "convection beta=-1e9": (lambda: problems.get("convection", beta=-1e9), ValueError,
                             r"beta: expected a number of magnitude <= 1e\+06"),
    "burgers-1d nu=1e-12": (lambda: problems.get("burgers-1d", nu=1e-12), ValueError,
                            r"nu: expected a number >= 0.0001"),
    "sod conservation_nodes=10**9": (
        lambda: problems.get("sod", conservation_nodes=10**9), ValueError,
        r"conservation_nodes: expected a positive integer <= 100000"),
    # sizes that cannot fit
    "width 10**12": (lambda: Trainer(poisson(), **{**QUICK, "model_options": {"width": 10**12}}),
                     ValueError, r"model: a network of width 1000000000000 and depth 2 .* "
                                 r"needs at least .* more than the .* of memory on cpu"),
    "depth 10**8": (lambda: Trainer(poisson(), **{**QUICK, "model_options": {"depth": 10**8}}),
                    ValueError, r"model: a network of width 100 and depth 100000000"),
    "points 10**12": (lambda: Trainer(poisson(), **{**QUICK, "points": 10**12}), ValueError,
                      r"points: one training step on 2000000000000 points .* needs at least"),
    "probe_points 10**6": (
        lambda: Trainer(poisson(), **{**QUICK, "ntk_every": 1, "probe_points": 10**6}),
        ValueError, r"probe_points: the NTK diagnostics on 1000000 points per term build a "
                    r"2000000×2000000 float64 kernel matrix"),
    "embedding without its keys": (
        lambda: Trainer(poisson(), **{**QUICK, "model_options": {"embedding": {
            "kind": "periodic"}}}), ValueError,
        r"embedding: a 'periodic' embedding needs 'dims', 'periods'; missing 'dims', 'periods'"),
    "embedding with an unknown key": (
        lambda: Trainer(poisson(), **{**QUICK, "model_options": {"embedding": {
            "kind": "fourier", "sigma": 1}}}), ValueError,
        r"embedding: unknown key\(s\) 'sigma' for a 'fourier' embedding"),
}


@pytest.mark.parametrize("case", list(API))
def test_api_bad_input_raises_a_named_error(case):
    fn, exc, pattern = API[case]
    with pytest.raises(exc, match=pattern):
        fn()


# ------------------------------------------------------------------------- output folders
@pytest.fixture
def a_file(tmp_path):
    f = tmp_path / "a-file"
    f.write_text("x")
    return f


def test_api_output_folders_are_checked_before_any_work(tmp_path, a_file, monkeypatch):
    import solvers._report as R

    monkeypatch.setattr(R, "_train_one", lambda *a, **k: pytest.fail("trained"))
    for out, pattern in ((a_file, "exists and is not a folder"),
                         (a_file / "sub", "lies under .*, which is a file, not a folder")):
        with pytest.raises(ValueError, match=f"^out: .*{pattern}"):
            Trainer(poisson(), out=out, **QUICK)
        with pytest.raises(ValueError, match=f"^out: .*{pattern}"):
            report_weights("poisson-1d", steps=2, values=[1.0], out=out)
        with pytest.raises(ValueError, match=f"^out: .*{pattern}"):
            B.run_suite([], out, B.LocalExecutor())


def test_api_a_locked_output_folder_is_refused(tmp_path, monkeypatch):
    import solvers._report as R

    monkeypatch.setattr(R, "_train_one", lambda *a, **k: pytest.fail("trained"))
    with lock_folder(tmp_path / "busy"):
        with pytest.raises(ValueError, match=r"^out: '.*busy' is in use by another run \(pid "):
            train(poisson(), out=tmp_path / "busy", **QUICK)
        with pytest.raises(ValueError, match=r"^out: '.*busy' is in use by another run"):
            report_weights("poisson-1d", steps=2, values=[1.0], out=tmp_path / "busy")
        with pytest.raises(ValueError, match=r"^out: '.*busy' is in use by another run"):
            B.run_suite([], tmp_path / "busy", B.LocalExecutor())


# -------------------------------------------------------------------------- the command line
@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """A finished tiny poisson-1d run, and damaged copies of it (config.json kept)."""
    root = tmp_path_factory.mktemp("bad-inputs")
    run = root / "run"
    code = run_cli(_NoCapture(), "train", "poisson-1d", *TINY, "--out", run)[0]
    assert code == 0
    good = torch.load(run / CHECKPOINT, weights_only=False)

    def damaged(name, write):
        d = root / name
        d.mkdir()
        shutil.copy(run / "config.json", d / "config.json")
        write(d / CHECKPOINT)
        return d

    data = (run / CHECKPOINT).read_bytes()
    wrong = dict(good, model={**good["model"], "weights.0": torch.zeros(9, 1)})
    state = good["optimizer"]["adam"]  # the Adam stepper's torch state
    adam = {**state, "state": {**state["state"], 0: {**state["state"][0],
                                                     "exp_avg": torch.zeros(3)}}}
    out = {
        "run": run, "file": root / "a-file", "root": root,
        "truncated": damaged("truncated", lambda p: p.write_bytes(data[:500])),
        "random": damaged("random", lambda p: p.write_bytes(
            bytes(torch.randint(0, 256, (3000,), generator=torch.Generator().manual_seed(0),
                                dtype=torch.uint8).tolist()))),
        "empty": damaged("empty", lambda p: p.write_bytes(b"")),
        "dict": damaged("dict", lambda p: torch.save({"a": 1}, p)),
        "no-config": damaged("no-config", lambda p: torch.save(
            {k: v for k, v in good.items() if k != "config"}, p)),
        "shape": damaged("shape", lambda p: torch.save(wrong, p)),
        "adam-shape": damaged("adam-shape", lambda p: torch.save(
            dict(good, optimizer={**good["optimizer"], "adam": adam}, step=2), p)),
    }
    out["file"].write_text("x")
    (root / "embedding.json").write_text('{"problem": "convection", "model": {"embedding": '
                                         '{"kind": "periodic"}}, "steps": 2}')
    return out


class _NoCapture:
    """A stand-in for capsys in a module fixture (the output is not checked there)."""

    def readouterr(self):
        return "", ""


CLI = {
    # --resume with a damaged checkpoint while config.json is present
    "--resume, truncated checkpoint": (
        lambda f: ["train", "--out", f["truncated"], "--resume"],
        r"resume: the checkpoint '.*truncated/checkpoint.pt' cannot be read \(RuntimeError"),
    "--resume, random bytes": (
        lambda f: ["train", "--out", f["random"], "--resume"],
        r"resume: the checkpoint '.*random/checkpoint.pt' cannot be read \(UnpicklingError"),
    "--resume, empty checkpoint": (
        lambda f: ["train", "--out", f["empty"], "--resume"],
        r"resume: the checkpoint '.*empty/checkpoint.pt' is empty; it is damaged"),
    "--resume, a dict without the keys": (
        lambda f: ["train", "--out", f["dict"], "--resume"],
        r"resume: '.*dict/checkpoint.pt' is not a pinnk checkpoint \(missing 'step', 'model'"),
    "--resume, no config in the checkpoint": (
        lambda f: ["train", "--out", f["no-config"], "--resume"],
        r"resume: '.*no-config/checkpoint.pt' is not a pinnk checkpoint \(missing 'config'\)"),
    "--resume, tensors of the wrong shape": (
        lambda f: ["train", "--out", f["shape"], "--resume"],
        r"resume: the checkpoint '.*shape/checkpoint.pt' does not fit this run \(RuntimeError: "
        r".*size mismatch for weights.0"),
    "--resume, optimizer state of the wrong shape": (
        lambda f: ["train", "--out", f["adam-shape"], "--resume"],
        r"does not fit this run \(RuntimeError: the adam state 'exp_avg' has shape \(3,\)"),
    # misleading messages
    "--resume on a folder that does not exist": (
        lambda f: ["train", "--out", f["root"] / "nope", "--resume"],
        r"--resume: there is no run folder '.*nope'; nothing to resume"),
    "--resume with another problem": (
        lambda f: ["train", "wave-1d", "--out", f["run"], "--resume"],
        r"--resume: '.*run' holds a run of poisson-1d, not of wave-1d"),
    "a new run into a finished run folder": (
        lambda f: ["train", "poisson-1d", *TINY, "--out", f["run"]],
        r"out: '.*run' already holds a run \(checkpoint.pt\); pass --resume"),
    # configs and parameters
    "a config whose model.embedding lacks keys": (
        lambda f: ["train", "--config", f["root"] / "embedding.json", "--out",
                   f["root"] / "emb"],
        r"embedding: a 'periodic' embedding needs 'dims', 'periods'"),
    "--param a=1e200": (
        lambda f: ["train", "poisson-1d", "--param", "a=1e200", "--out", f["root"] / "a"],
        r"poisson-1d: a: expected a number of magnitude <= 1e\+06, got 1e\+200"),
    "--param c=1e200": (
        lambda f: ["train", "wave-1d", "--param", "c=1e200", "--out", f["root"] / "c"],
        r"wave-1d: c: expected a number of magnitude <= 1e\+06"),
    "--param nu=1e-300": (
        lambda f: ["train", "burgers-1d", "--param", "nu=1e-300", "--out", f["root"] / "nu"],
        r"burgers-1d: nu: expected a number >= 0.0001"),
    # sizes
    "--width 10**12": (
        lambda f: ["train", "poisson-1d", "--width", str(10**12), "--out", f["root"] / "w"],
        r"model: a network of width 1000000000000 and depth 2 \(1e\+24 parameters\) needs at "
        r"least .*; choose a smaller width or depth"),
    "--points 10**12": (
        lambda f: ["train", "poisson-1d", "--points", str(10**12), "--out", f["root"] / "p"],
        r"points: one training step on 2000000000000 points .*; use fewer points"),
    "--depth 10**8": (
        lambda f: ["train", "poisson-1d", "--depth", str(10**8), "--out", f["root"] / "d"],
        r"model: a network of width 100 and depth 100000000 \(1.01e\+12 parameters\)"),
    "--probe-points 10**6": (
        lambda f: ["train", "poisson-1d", "--probe-points", str(10**6), "--out",
                   f["root"] / "pp"],
        r"probe_points: the NTK diagnostics on 1000000 points per term"),
    "--points 0": (
        lambda f: ["train", "poisson-1d", "--points", "0", "--out", f["root"] / "p0"],
        r"points: expected an integer >= 1, got 0"),
    # output folders
    "train --out a file": (
        lambda f: ["train", "poisson-1d", *TINY, "--out", f["file"]],
        r"out: '.*a-file' exists and is not a folder"),
    "train --out under a file": (
        lambda f: ["train", "poisson-1d", *TINY, "--out", f["file"] / "sub"],
        r"out: '.*a-file/sub' lies under '.*a-file', which is a file, not a folder"),
    "bench --out a file": (
        lambda f: ["bench", "--out", f["file"]], r"--out: '.*a-file' exists and is not a folder"),
    "bench --out under a file": (
        lambda f: ["bench", "--out", f["file"] / "sub"],
        r"--out: '.*a-file/sub' lies under '.*a-file', which is a file"),
    "paper --out a file": (
        lambda f: ["paper", "prop1", "--out", f["file"]],
        r"--out: '.*a-file' exists and is not a folder"),
    "paper --out under a file": (
        lambda f: ["paper", "prop1", "--out", f["file"] / "sub"],
        r"--out: '.*a-file/sub' lies under '.*a-file', which is a file"),
    "report --out a file": (
        lambda f: ["report", "weights", "poisson-1d", "--steps", "2", "--values", "1",
                   "--out", f["file"]], r"out: '.*a-file' exists and is not a folder"),
    "report --out under a file": (
        lambda f: ["report", "weights", "poisson-1d", "--steps", "2", "--values", "1",
                   "--out", f["file"] / "sub"], r"out: '.*a-file/sub' lies under"),
}

# Cases run while another process holds the folder's lock.
LOCKED = {
    "train into a folder another run writes": (
        lambda f: ["train", "poisson-1d", *TINY, "--out", f["root"] / "busy-train"],
        "busy-train"),
    "--resume while the first run still writes": (
        lambda f: ["train", "--out", f["run"], "--resume"], "run"),
    "bench into a folder another suite writes": (
        lambda f: ["bench", "--suite", "quick", "--problems", "poisson-1d", "--methods", "fixed",
                   "--seeds", "1", "--out", f["root"] / "busy-bench"], "busy-bench"),
    "report into a folder another sweep writes": (
        lambda f: ["report", "weights", "poisson-1d", "--steps", "2", "--values", "1",
                   "--out", f["root"] / "busy-report"], "busy-report"),
}


@pytest.mark.parametrize("case", list(CLI))
def test_cli_bad_input_exits_2_with_one_line(capsys, folders, case, monkeypatch):
    import solvers._bench
    import solvers._report

    monkeypatch.setattr(solvers._report, "_train_one", lambda *a, **k: pytest.fail("trained"))
    monkeypatch.setattr(solvers._bench, "execute", lambda *a, **k: pytest.fail("trained"))
    argv, pattern = CLI[case]
    code, out, err = run_cli(capsys, *argv(folders))
    assert code == 2, (out, err)
    assert_one_line_error(err)
    assert re.search(pattern, err), (pattern, err)


@pytest.mark.parametrize("case", list(LOCKED))
def test_cli_a_locked_folder_exits_2_with_one_line(capsys, folders, case, monkeypatch):
    import solvers._bench
    import solvers._report

    monkeypatch.setattr(solvers._report, "_train_one", lambda *a, **k: pytest.fail("trained"))
    monkeypatch.setattr(solvers._bench, "execute", lambda *a, **k: pytest.fail("trained"))
    argv, name = LOCKED[case]
    folder = folders["root"] / name
    before = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else None
    with lock_folder(folder):  # held through another open file: refused like another process
        code, out, err = run_cli(capsys, *argv(folders))
    assert code == 2, (out, err)
    assert_one_line_error(err, f"'{folder}' is in use by another run (pid ",
                          "wait for it to finish or choose another folder")
    if before is not None:
        assert sorted(p.name for p in folder.iterdir()) == before


@pytest.mark.skipif(not Path("/sys").is_dir(), reason="needs a read-only /sys")
@pytest.mark.parametrize("argv", [
    ["train", "poisson-1d", *TINY, "--out", "/sys/pinnk-test"],
    ["bench", "--out", "/sys/pinnk-test"],
    ["paper", "prop1", "--out", "/sys/pinnk-test"],
    ["report", "weights", "poisson-1d", "--steps", "2", "--values", "1", "--out",
     "/sys/pinnk-test"],
])
def test_cli_a_read_only_output_folder_exits_2_before_any_work(capsys, argv):
    with contextlib.suppress(OSError):
        Path("/sys/pinnk-test").mkdir()
        Path("/sys/pinnk-test").rmdir()
        pytest.skip("/sys is writable here")
    code, _, err = run_cli(capsys, *argv)
    assert code == 2
    assert_one_line_error(err, "cannot create the folder '/sys/pinnk-test'")


def test_at_least_sixty_cases():
    assert len(API) + len(CLI) + len(LOCKED) >= 60
