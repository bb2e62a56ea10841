"""The trainer: weighting strategies and optimizers train, exact resume, NaN stop, atomic outputs,
the run folder, devices and dtypes, the config round trip. Small and fast (CPU)."""

import json
import math
import warnings
from pathlib import Path

import meshio
import numpy as np
import pytest
import torch

import pinnk
import problems
from pinnk import io as pio
from pinnk.weighting import Fixed, TraceNTK, from_spec
from solvers import AdamLBFGS, Trainer, TrainingError, optimizer_from_spec, train
from solvers._train import CHECKPOINT, resolve_device, resolve_dtype
from train_util import Interrupt

SMALL = {"width": 16, "depth": 2}


def convection(beta=1.0, **kw):
    return problems.get("convection", beta=beta, **kw)


def poisson():
    return problems.get("poisson-1d")


QUICK = dict(points=64, model_options=SMALL, export=False, ntk_every=0, log_every=1, steps=40,
             optimizer="adam:lr=1e-2")


def quick(problem, **kw):
    """A short run that writes nothing unless told otherwise."""
    return train(problem, **{**QUICK, **kw})


def term_loss_sums(history):
    """The unweighted sum of the term losses per record (comparable while the weights move)."""
    return [sum(r["losses"].values()) for r in history["train"]]


def assert_decreased(history, k=5, factor=0.9):
    L = term_loss_sums(history)
    assert all(math.isfinite(v) for v in L)
    first, last = float(np.mean(L[:k])), float(np.mean(L[-k:]))
    assert last < factor * first, (first, last)


def strip_time(history):
    return {"train": [{k: v for k, v in r.items() if not k.startswith("time")}  # wall clock
                      for r in history["train"]],
            "diagnostics": history["diagnostics"]}


def temp_files(folder):
    return [p.name for p in Path(folder).rglob(".*")]


# ------------------------------------------------------------------------------ strategies
@pytest.mark.parametrize("weighting", ["fixed", "trace:every=10", "gradnorm:every=5",
                                       "causal:epsilon=1,chunks=4+trace:every=10"])
def test_weighting_strategies_decrease_the_loss(weighting):
    res = quick(convection(), weighting=weighting)
    assert len(res.history["train"]) == 40
    assert_decreased(res.history)
    w = [r["weights"] for r in res.history["train"]]
    assert set(w[0]) == {"residual", "initial", "periodic"}
    if weighting == "fixed":
        assert all(v == 1.0 for r in w for v in r.values())
    else:  # the adaptive strategies move the weights away from 1
        assert any(abs(v - 1.0) > 1e-6 for v in w[-1].values())
    if weighting.startswith("causal"):
        mins = [r["causal_min_weight"] for r in res.history["train"]]
        assert all(0.0 < m <= 1.0 for m in mins)


def test_trace_weighting_on_a_steady_problem_decreases_the_loss():
    assert_decreased(quick(poisson(), weighting="trace:every=10,kind=sum").history)


@pytest.mark.parametrize("optimizer", ["adam:lr=1e-2", "lbfgs", "adam+lbfgs:lr=1e-2,switch=0.5"])
def test_optimizers_decrease_the_loss(optimizer):
    res = quick(convection(), optimizer=optimizer, steps=30)
    assert_decreased(res.history, k=3)
    phases = [r["phase"] for r in res.history["train"]]
    if optimizer.startswith("adam+lbfgs"):
        assert phases == ["adam"] * 15 + ["lbfgs"] * 15
    else:
        assert set(phases) == {optimizer.split(":")[0]}


def test_lbfgs_keeps_making_progress_after_adam():
    # Regression: L-BFGS with max_iter=1 had no line-search budget (torch's max_eval = 1), so
    # the first rejected trial step froze the loss for the rest of the run.
    res = quick(convection(), optimizer="adam+lbfgs:lr=1e-2,switch=0.5", steps=30)
    losses = [r["loss"] for r in res.history["train"] if r["phase"] == "lbfgs"]
    assert len(losses) == 15
    assert all(b <= a for a, b in zip(losses, losses[1:]))  # the line search never goes up
    assert losses[-1] < 0.7 * losses[0]
    assert not any(a == b == c for a, b, c in zip(losses, losses[1:], losses[2:]))


def test_a_failed_line_search_restarts_lbfgs(monkeypatch):
    import importlib

    lbfgs_module = importlib.import_module("torch.optim.lbfgs")
    original = lbfgs_module._strong_wolfe
    calls = {"n": 0}

    def failing_once(obj_func, x, t, d, f, g, gtd, **kw):
        calls["n"] += 1
        if calls["n"] == 3:  # the third step's line search finds nothing
            return f, g, 0, 1
        return original(obj_func, x, t, d, f, g, gtd, **kw)

    monkeypatch.setattr(lbfgs_module, "_strong_wolfe", failing_once)
    states = []
    res = quick(convection(), optimizer="lbfgs", steps=8,
                callback=lambda tr: states.append(dict(tr.lbfgs.state)))
    assert states[2] == {}  # the memory was dropped after the failed step
    assert states[3] != {}
    losses = [r["loss"] for r in res.history["train"]]
    assert losses[3] == losses[2] and losses[-1] < losses[3]


def test_resampling_restarts_the_lbfgs_memory():
    """New collocation points change the loss: L-BFGS's curvature pairs from the old points are
    dropped at each resampling (its state is empty when the step on the new points starts)."""
    seen = {}

    def spy(tr):  # runs after the step: record the history length the step started from
        st = tr.lbfgs.state.get(tr.lbfgs._params[0], {})
        seen[tr.step] = (len(st.get("old_dirs", [])), int(st.get("n_iter", 0)))

    res = quick(convection(), optimizer="lbfgs", steps=12, resample_every=4, callback=spy)
    assert [seen[s][1] for s in range(12)] == [1, 2, 3, 4] * 3  # the iteration count restarts
    assert seen[3][0] == 3 and seen[4][0] == 0 and seen[8][0] == 0
    losses = [r["loss"] for r in res.history["train"]]
    assert all(np.isfinite(losses)) and losses[-1] < losses[0]


def test_optimizer_specs():
    opt = optimizer_from_spec("adam+lbfgs:lr=1e-3,switch=100,lbfgs_history_size=10")
    assert isinstance(opt, AdamLBFGS) and opt.switch_step(1000) == 100
    assert opt.lbfgs.history_size == 10 and opt.switch_step(10) == 100
    assert AdamLBFGS(switch=0.25).switch_step(40) == 10
    assert optimizer_from_spec(opt.config()).config() == opt.config()
    for bad in ("sgd", "adam:lr=x", "adam:foo=1", "lbfgs:history_size=0", "adam:decay_rate=2"):
        with pytest.raises(ValueError):
            optimizer_from_spec(bad)


# ---------------------------------------------------------------------------- exact resume
RESUME_CASES = {
    "fixed-adam": dict(problem="poisson", weighting="fixed"),
    "resample-trace-diagnostics": dict(problem="convection", weighting="trace:every=5",
                                       resample_every=7, ntk_every=10, probe_points=8),
    "causal-trace-diagnostics": dict(problem="convection",
                                     weighting="causal:epsilon=1,chunks=4+trace:every=6",
                                     resample_every=5, ntk_every=7, probe_points=8),
    "gradnorm-adam+lbfgs": dict(problem="convection", weighting="gradnorm:every=3",
                                optimizer="adam+lbfgs:lr=1e-2,switch=12", resample_every=9),
    "causal-trace-adam+gn-subset": dict(problem="convection",
                                        weighting="causal:epsilon=1,chunks=4+trace:every=5",
                                        optimizer="adam+gn:lr=1e-2,switch=9,gn_kernel_points=20",
                                        resample_every=7),
}


@pytest.mark.parametrize("case", list(RESUME_CASES))
def test_interrupted_and_resumed_run_equals_uninterrupted_run(tmp_path, case):
    spec = dict(RESUME_CASES[case])
    problem = {"poisson": poisson, "convection": convection}[spec.pop("problem")]
    opts = dict(points=32, steps=24, checkpoint_every=4, **spec)
    a = quick(problem(), out=tmp_path / "a", **opts)

    with pytest.raises(KeyboardInterrupt):
        quick(problem(), out=tmp_path / "b", callback=Interrupt(17), **opts)
    st = torch.load(tmp_path / "b" / CHECKPOINT, weights_only=False)
    assert st["step"] == 16  # steps 16 and 17 are done again after the resume
    b = quick(problem(), out=tmp_path / "b", resume=True, **opts)

    assert strip_time(b.history) == strip_time(a.history)
    assert len(a.history["train"]) == 24
    if opts.get("ntk_every"):
        assert len(a.history["diagnostics"]) >= 3
    pa, pb = a.model.state_dict(), b.model.state_dict()
    assert pa.keys() == pb.keys()
    for k in pa:
        assert torch.equal(pa[k], pb[k]), k
    assert b.metrics["relative_l2"] == a.metrics["relative_l2"]
    assert b.metrics["steps"] == 24
    saved = json.loads((tmp_path / "b" / "history.json").read_text())
    assert strip_time(saved) == strip_time(json.loads((tmp_path / "a" / "history.json")
                                                      .read_text()))


def test_resume_rejects_a_different_config_and_a_missing_checkpoint(tmp_path):
    quick(poisson(), out=tmp_path, steps=4)
    with pytest.raises(ValueError, match="steps=4"):
        quick(poisson(), out=tmp_path, steps=5, resume=True)
    with pytest.raises(ValueError, match="seed"):
        quick(poisson(), out=tmp_path, steps=4, seed=1, resume=True)
    with pytest.raises(ValueError, match="no checkpoint"):
        quick(poisson(), out=tmp_path / "empty", steps=4, resume=True)
    with pytest.raises(ValueError, match="out="):
        quick(poisson(), steps=4, resume=True)


def test_resume_accepts_the_config_read_back_from_json(tmp_path):
    # Tuples in the options come back from config.json as lists; resuming must still match.
    opts = dict(steps=12, checkpoint_every=4,
                model_options={**SMALL, "positive_outputs": (0,)})
    with pytest.raises(KeyboardInterrupt):
        quick(poisson(), out=tmp_path, weighting=Fixed((1.0, 10.0)), callback=Interrupt(6),
              **opts)
    cfg = json.loads((tmp_path / "config.json").read_text())
    assert cfg["weighting"]["weights"] == [1.0, 10.0]
    opts["model_options"] = cfg["model"]
    res = quick(poisson(), out=tmp_path, weighting=from_spec(cfg["weighting"]), resume=True,
                **opts)
    assert res.metrics["steps"] == 12


def test_a_weighting_object_can_be_reused_across_runs():
    w = TraceNTK(every=5, momentum=0.5)
    a = quick(convection(), weighting=w, steps=12)
    b = quick(convection(), weighting=w, steps=12)
    assert strip_time(a.history) == strip_time(b.history)


# -------------------------------------------------------------------------------- NaN stop
class Poisonable(torch.nn.Module):
    """An MLP whose output turns NaN once ``poisoned`` is set (by a callback)."""

    def __init__(self):
        super().__init__()
        self.net = pinnk.MLP(1, 1, 16, 2, generator=torch.Generator().manual_seed(0))
        self.poisoned = False

    def forward(self, x):
        y = self.net(x)
        return y * float("nan") if self.poisoned else y


def test_nan_loss_stops_training_and_keeps_the_last_good_checkpoint(tmp_path):
    model = Poisonable()

    def poison(trainer):
        if trainer.step == 9:
            model.poisoned = True  # the loss of step 10 is NaN

    with pytest.raises(TrainingError) as err:
        train(poisson(), model, points=16, steps=30, checkpoint_every=3, ntk_every=0,
              export=False, out=tmp_path, callback=poison)
    msg = str(err.value)
    assert "'residual'" in msg and "step 10" in msg and "nan" in msg
    st = torch.load(tmp_path / CHECKPOINT, weights_only=False)
    assert st["step"] == 9 < 10
    assert all(torch.isfinite(v).all() for v in st["model"].values())
    history = json.loads((tmp_path / "history.json").read_text())
    assert [r["step"] for r in history["train"]] == list(range(10))
    # The checkpoint loads into a fresh trainer of the same run.
    t = Trainer(poisson(), Poisonable(), points=16, steps=30, checkpoint_every=3, ntk_every=0,
                export=False, out=tmp_path)
    t.load_checkpoint()
    assert t.step == 9
    for k, v in t.model.state_dict().items():
        assert torch.equal(v, st["model"][k])


def test_nan_parameters_are_never_checkpointed(tmp_path):
    # A finite loss with a non-finite gradient leaves NaN parameters; the checkpoint due next is
    # refused and the previous one stays.
    def corrupt(trainer):
        if trainer.step == 7:  # after its update; the checkpoint after 8 steps is due next
            with torch.no_grad():
                trainer.params[0].view(-1)[0] = float("nan")

    with pytest.raises(TrainingError, match=r"parameters became NaN/Inf at step 7"):
        quick(poisson(), steps=20, checkpoint_every=4, out=tmp_path, callback=corrupt)
    st = torch.load(tmp_path / CHECKPOINT, weights_only=False)
    assert st["step"] == 4
    assert all(torch.isfinite(v).all() for v in st["model"].values())


# --------------------------------------------------------------------------- atomic writes
def _half_write_then_fail(monkeypatch):
    original = Path.write_bytes

    def broken(self, data):
        original(self, data[: len(data) // 2])
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(Path, "write_bytes", broken)


def test_a_failed_checkpoint_write_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    res = quick(poisson(), steps=8, checkpoint_every=4, out=tmp_path)
    before = (tmp_path / CHECKPOINT).read_bytes()
    t = Trainer(poisson(), **{**QUICK, "steps": 8, "checkpoint_every": 4, "out": tmp_path})
    t.load_checkpoint()
    _half_write_then_fail(monkeypatch)
    with pytest.raises(OSError, match="simulated"):
        t.save_checkpoint()
    with pytest.raises(OSError, match="simulated"):
        pio.write_json(tmp_path / "metrics.json", {"new": 1})
    monkeypatch.undo()
    assert (tmp_path / CHECKPOINT).read_bytes() == before
    assert torch.load(tmp_path / CHECKPOINT, weights_only=False)["step"] == 8
    assert json.loads((tmp_path / "metrics.json").read_text()) == \
        json.loads(json.dumps(res.metrics))
    t.unlock()  # load_checkpoint took the run folder's lock (run() would release it)
    assert temp_files(tmp_path) == []


def test_a_failure_while_writing_mid_run_keeps_the_last_checkpoint(tmp_path, monkeypatch):
    calls = {"n": 0}
    original = torch.save

    def flaky(obj, f, *args, **kw):
        calls["n"] += 1
        if calls["n"] == 2:  # the second checkpoint (step 8)
            raise RuntimeError("serialisation failed (simulated)")
        return original(obj, f, *args, **kw)

    monkeypatch.setattr(torch, "save", flaky)
    with pytest.raises(RuntimeError, match="simulated"):
        quick(poisson(), steps=20, checkpoint_every=4, out=tmp_path)
    monkeypatch.undo()
    assert torch.load(tmp_path / CHECKPOINT, weights_only=False)["step"] == 4
    assert temp_files(tmp_path) == []


def test_a_failed_json_serialisation_keeps_the_previous_file(tmp_path, monkeypatch):
    pio.write_json(tmp_path / "metrics.json", {"old": True})

    def boom(*args, **kw):
        raise ValueError("not serialisable (simulated)")

    monkeypatch.setattr(json, "dumps", boom)
    with pytest.raises(ValueError, match="simulated"):
        pio.write_json(tmp_path / "metrics.json", {"new": True})
    monkeypatch.undo()
    assert json.loads((tmp_path / "metrics.json").read_text()) == {"old": True}
    assert temp_files(tmp_path) == []


# ---------------------------------------------------------------------------- run folder
def test_run_folder_of_a_steady_problem(tmp_path):
    res = quick(poisson(), steps=10, ntk_every=5, probe_points=8, out=tmp_path, export=True)
    names = {p.name for p in tmp_path.iterdir()}
    for n in ("config.json", "history.json", "metrics.json", CHECKPOINT, "solution.vtu",
              "loss.png", "weights.png", "diagnostics.png", "solution.png"):
        assert n in names, n
    assert all(Path(f).is_file() for f in res.files)
    assert {Path(f).name for f in res.files} <= names
    assert temp_files(tmp_path) == []

    cfg = json.loads((tmp_path / "config.json").read_text())
    assert cfg["problem"] == {"name": "poisson-1d", "params": {"a": 4.0}} and cfg["steps"] == 10
    hist = json.loads((tmp_path / "history.json").read_text())
    assert len(hist["train"]) == 10 and len(hist["diagnostics"]) == 3  # steps 0, 5 and the end
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert set(metrics["relative_l2"]) == {"u"} and metrics["steps"] == 10
    assert metrics["relative_l2"]["u"] == pytest.approx(res.metrics["relative_l2"]["u"])
    assert torch.load(tmp_path / CHECKPOINT, weights_only=False)["step"] == 10

    mesh = meshio.read(tmp_path / "solution.vtu")
    assert {"u", "u_reference", "u_error"} <= set(mesh.point_data)
    for png in tmp_path.glob("*.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_run_folder_of_a_time_dependent_problem(tmp_path):
    res = quick(convection(), steps=5, out=tmp_path, export=True)
    names = {p.name for p in tmp_path.iterdir()}
    for n in ("config.json", "history.json", "metrics.json", CHECKPOINT, "solution.xdmf",
              "solution.h5", "solution_final.vtu", "loss.png", "solution.png"):
        assert n in names, n
    assert all(Path(f).is_file() for f in res.files)
    with meshio.xdmf.TimeSeriesReader(str(tmp_path / "solution.xdmf")) as reader:
        points, _ = reader.read_points_cells()
        assert reader.num_steps > 1
        t, point_data, _ = reader.read_data(reader.num_steps - 1)
    assert {"u", "u_reference", "u_error"} <= set(point_data)
    assert len(point_data["u"]) == len(points)
    final = meshio.read(tmp_path / "solution_final.vtu")
    np.testing.assert_allclose(final.point_data["u"], point_data["u"])


# ------------------------------------------------------------------------- device, dtype
@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only behaviour")
def test_device_auto_is_cpu_and_cuda_is_a_clear_error():
    assert resolve_device("auto") == torch.device("cpu")
    t = Trainer(poisson(), points=8, model_options=SMALL, steps=1, device="auto")
    assert t.device.type == "cpu" and t.config()["device"] == "cpu"
    with pytest.raises(ValueError, match="CUDA was requested but is not available"):
        quick(poisson(), device="cuda")
    with pytest.raises(ValueError, match="CUDA"):
        resolve_device("cuda:0")
    with pytest.raises(ValueError, match="unknown device"):
        resolve_device("gpu")


def test_float64_training():
    res = quick(convection(), dtype="float64", steps=20)
    assert all(p.dtype == torch.float64 for p in res.model.parameters())
    assert res.config["dtype"] == "float64"
    assert_decreased(res.history, k=3)
    assert resolve_dtype(torch.float64) is torch.float64
    with pytest.raises(ValueError, match="dtype"):
        resolve_dtype("float16")


@pytest.mark.parametrize("bad, match", [
    (dict(steps=0), "steps"), (dict(steps=2.5), "steps"), (dict(resample_every=-1),
                                                            "resample_every"),
    (dict(weighting="bogus"), "weighting"), (dict(optimizer="sgd"), "optimizer"),
    (dict(model_options={"colour": 1}), "model"), (dict(points={"nope": 3}), "nope"),
])
def test_bad_arguments_are_value_or_type_errors(bad, match):
    with pytest.raises((ValueError, TypeError), match=match):
        quick(poisson(), **bad)


# --------------------------------------------------------------------------- config round trip
def test_config_round_trip():
    kw = dict(weighting="causal:epsilon=2,chunks=4+trace:every=5,kind=sum,momentum=0.5",
              optimizer="adam+lbfgs:lr=2e-3,decay_rate=0.5,switch=0.7,lbfgs_history_size=7",
              steps=10, points={"residual": 40, "initial": 20}, resample_every=3, ntk_every=4,
              probe_points=5, checkpoint_every=2, log_every=2, seed=3, dtype="float64",
              model_options={"width": 12, "depth": 3, "activation": "sin"})
    t1 = Trainer(convection(beta=2.0, periodic_embedding=True), **kw)
    cfg = json.loads(json.dumps(t1.config()))  # as config.json holds it
    assert cfg["points"] == {"residual": 40, "initial": 20}
    assert cfg["model"]["embedding"]["kind"] == "periodic"
    t2 = Trainer(problems.get(cfg["problem"]["name"], **cfg["problem"]["params"]),
                 weighting=from_spec(cfg["weighting"]),
                 optimizer=optimizer_from_spec(cfg["optimizer"]),
                 model_options=cfg["model"], device=cfg["device"],
                 **{k: cfg[k] for k in ("steps", "points", "resample_every", "ntk_every",
                                        "probe_points", "checkpoint_every", "log_every", "seed",
                                        "dtype", "compile")})
    assert json.loads(json.dumps(t2.config())) == cfg
    for a, b in zip(t1.model.parameters(), t2.model.parameters()):
        assert torch.equal(a, b)


# ---------------------------------------------------------------------------- Gauss–Newton
def test_gauss_newton_never_increases_the_loss_and_records_its_state():
    res = quick(poisson(), optimizer="gn", steps=60, points=64,
                model_options={"width": 32, "depth": 2})
    assert res.config["dtype"] == "float64"  # the default for a Gauss–Newton run
    h = res.history["train"]
    losses = [r["loss"] for r in h]
    assert all(b <= a for a, b in zip(losses, losses[1:]))
    assert losses[-1] < 1e-5 * losses[0]
    for key in ("damping", "next_damping", "step_size", "gain_ratio", "cg_iterations", "solves",
                "time_kernel", "time_solve", "time_line_search"):
        assert key in h[-1], key
    assert {r["phase"] for r in h} == {"gn"}
    assert res.metrics["relative_l2"]["u"] < 0.02


def test_geodesic_acceleration_is_a_second_order_correction():
    """On a model linear in its trainable parameters the residual of a linear operator is affine
    in them: its second directional derivative, hence the acceleration, vanishes; elsewhere an
    accelerated run never increases the loss."""
    from solvers._optim import GaussNewton

    def frozen(tr):
        for k in range(len(tr.model.weights) - 1):
            tr.model.weights[k].requires_grad_(False)
            tr.model.biases[k].requires_grad_(False)
        tr.params = [p for p in tr.model.parameters() if p.requires_grad]

    tr = Trainer(poisson(), optimizer=GaussNewton(geodesic=0.75), steps=3, points=32,
                 model_options=SMALL, ntk_every=0, export=False)
    frozen(tr)
    stepper = tr.optimizer.build(tr)
    system = pinnk.GaussNewtonSystem(tr.model, tr.terms)
    st = system.solve(1e-3)
    saved = [p.detach().clone() for p in tr.params]
    direction, used = stepper._accelerated(tr, system, st, saved)
    assert used
    for d, d0 in zip(direction, st.direction):
        assert torch.allclose(d, d0, rtol=1e-7, atol=1e-9 * float(d0.abs().max()))
    acc = quick(poisson(), optimizer="gn:geodesic=0.75", steps=60, points=64,
                model_options={"width": 32, "depth": 2})
    losses = [r["loss"] for r in acc.history["train"]]
    assert all(b <= a for a, b in zip(losses, losses[1:]))
    assert any(r.get("accelerated") for r in acc.history["train"])
    assert losses[-1] < 1e-6 * losses[0]


@pytest.mark.parametrize("spec", ["gn:mode=line,damping=1e-2", "gn:method=cg,cg_tol=1e-10",
                                  "gn:kernel_points=20"])
def test_gauss_newton_variants_train(spec):
    res = quick(convection(), optimizer=spec, steps=8, points=32)
    losses = [r["loss"] for r in res.history["train"]]
    assert all(b <= a for a, b in zip(losses, losses[1:])) and losses[-1] < 0.5 * losses[0]
    if "cg" in spec:
        assert all(r["cg_iterations"] > 0 for r in res.history["train"])


def test_gauss_newton_sequences_and_causal_weights():
    res = quick(convection(), optimizer="adam+gn:lr=1e-2,switch=5,gn_damping=1e-2",
                weighting="causal:epsilon=1,chunks=4+trace:every=3", steps=10, points=32)
    phases = [r["phase"] for r in res.history["train"]]
    assert phases == ["adam"] * 5 + ["gn"] * 5
    # the causal and trace weights change the objective between steps, so only each accepted
    # step is a decrease (of the objective it was taken on); overall the loss falls
    gn = [r["loss"] for r in res.history["train"] if r["phase"] == "gn"]
    assert all(math.isfinite(v) for v in gn) and gn[-1] < 0.5 * gn[0]
    assert all(r["step_size"] == 1.0 for r in res.history["train"] if r["phase"] == "gn")


def test_gauss_newton_in_float32_warns():
    with pytest.warns(UserWarning, match="Gauss–Newton in float32"):
        quick(poisson(), optimizer="gn", steps=2, dtype="float32")


def test_gauss_newton_and_sequence_specs():
    opt = optimizer_from_spec("adam+lbfgs+gn:lr=1e-3,switch=0.5/0.8,gn_damping=1e-4,"
                              "lbfgs_history_size=5,gn_mode=line,gn_etas=1/0.5")
    assert opt.kind == "adam+lbfgs+gn" and opt.switch_steps(100) == [50, 80]
    adam, lbfgs, gn = opt.phases()
    assert adam.lr == 1e-3 and lbfgs.history_size == 5
    assert gn.damping == 1e-4 and gn.mode == "line" and gn.etas == (1.0, 0.5)
    assert optimizer_from_spec(opt.config()).config() == opt.config()
    assert opt.uses_gauss_newton and not optimizer_from_spec("adam").uses_gauss_newton
    assert optimizer_from_spec("adam+gn:switch=100").warnings_for(50) == [
        "optimizer: switch=100 is at step 100, at or after the last step of a run of 50 steps, "
        "so Gauss–Newton never runs"]
    for bad, msg in [("gn:damping=0", "damping: expected a positive number"),
                     ("gn:mode=newton", "mode: expected 'lm' or 'line'"),
                     ("gn:method=lu", "method: expected auto, dense or cg"),
                     ("gn:etas=1/2", r"etas: expected step sizes in \(0, 1\]"),
                     ("gn:down=0.5", "down, up: expected factors > 1"),
                     ("gn:kernel_points=-1", "kernel_points: expected an integer >= 0"),
                     ("gn:foo=1", "optimizer: bad option in 'gn:foo=1'"),
                     ("adam+gn:switch=1/2", "switch: expected 1 switch point"),
                     ("adam+adam", "a sequence runs each kind once"),
                     ("adam+sgd", "unknown kind 'sgd'")]:
        with pytest.raises(ValueError, match=msg):
            optimizer_from_spec(bad)


def test_accepted_stage_is_the_last_converged_one():
    from solvers import accepted_stage

    assert accepted_stage([1.0, 2.0], None) == 1
    assert accepted_stage([1e-8, 1e-3, 1e-9, 1e-2], 1e-5) == 2
    assert accepted_stage([1e-5, 2e-5], 1e-5) == 0          # at the bound counts
    assert accepted_stage([1e-8, float("nan")], 1e-5) == 0  # a NaN never does
    assert accepted_stage([1.0, 2.0], 1e-5) == 1            # none converged: the last
    with pytest.raises(ValueError, match="final_losses: expected at least one stage"):
        accepted_stage([], 1e-5)


def test_continuation_accept_loss_keeps_the_last_converged_network(tmp_path):
    """With accept_loss, a last stage that ends above it leaves the result to the stage before:
    that stage's own network (its checkpoint's weights, not the shared network trained on),
    with a warning naming the stage after it; the training itself is unchanged."""
    from solvers import train_continuation
    from solvers._train import load_network

    kw = dict(steps=[6, 3], points=16, model_options=SMALL, export=False, ntk_every=0,
              optimizer="gn", seed=0, dtype="float64")
    plain = train_continuation("convection", "beta", [1.0, 30.0], **kw)
    losses = [r.metrics["final_loss"] for r in plain]
    assert plain.final_stage == 1 and plain.final is plain[1]
    assert losses[0] < losses[1]  # β = 30 in 3 steps from the β = 1 network: far from fitted
    between = math.sqrt(losses[0] * losses[1])
    with pytest.warns(UserWarning, match=r"accept_loss: the result is stage 0's network "
                                         r"\(beta = 1, final loss .*\); the stages after it "
                                         r"ended above .*: stage 1 \(beta = 30: "):
        res = train_continuation("convection", "beta", [1.0, 30.0], out=tmp_path,
                                 accept_loss=between, **kw)
    assert [r.metrics["final_loss"] for r in res] == losses
    assert res.final_stage == 0 and res.values == [1.0, 30.0] and res.final is res[0]
    x = torch.rand(50, 2, dtype=torch.float64)
    stage0 = load_network(problems.get("convection", beta=1.0), SMALL, torch.float64,
                          tmp_path / "stage-0")
    with torch.no_grad():
        assert torch.equal(res.final.model(x), stage0(x))
        assert not torch.allclose(res.final.model(x), res[1].model(x))
    # a bound every stage meets: the last stage, no warning
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = train_continuation("convection", "beta", [1.0, 30.0], accept_loss=10 * losses[1],
                                 **kw)
    assert res.final_stage == 1 and res.final.model is res[1].model
    with pytest.warns(UserWarning, match=r"accept_loss: no stage ended at or below 1e-30 "
                                         r"\(final losses .*\); the result is the last"):
        res = train_continuation("convection", "beta", [1.0, 30.0], accept_loss=1e-30, **kw)
    assert res.final_stage == 1


def test_continuation_retries_a_stage_from_where_it_started(tmp_path):
    """retries: a stage that ends above accept_loss is trained again from the network it
    started from with retry_seed's seed — each attempt exactly what one training of that stage
    from that network with that seed gives; none converging, the lowest loss is kept (its run
    folder stage-k, the others stage-k-attempt-j) and the next stage starts from it."""
    import copy

    from solvers import retry_seed, train, train_continuation
    from solvers._train import load_network

    kw = dict(points=16, export=False, ntk_every=0, optimizer="gn", dtype="float64")
    plain = train_continuation("convection", "beta", [1.0, 30.0], steps=[6, 3], seed=0,
                               model_options=SMALL, **kw)
    # neither stage meets the bound (stage 1 is far from fitted in 3 steps); stage 0 has no
    # retries (one count per stage), stage 1 two
    bound = plain[0].metrics["final_loss"] / 2
    with pytest.warns(UserWarning) as rec:
        res = train_continuation("convection", "beta", [1.0, 30.0], steps=[6, 3], seed=0,
                                 model_options=SMALL, accept_loss=bound, retries=[0, 2],
                                 out=tmp_path, **kw)
    retried = [str(w.message) for w in rec if "training it again" in str(w.message)]
    seeds = [retry_seed(0, 1, j) for j in range(3)]
    assert seeds[0] == 0 and len(set(seeds)) == 3
    assert len(retried) == 2 and all(
        m.startswith("stage 1 (beta = 30) ended at ") and f"seed {s} (attempt {j + 2} of 3)" in m
        for j, (m, s) in enumerate(zip(retried, seeds[1:])))
    assert [len(a) for a in res.attempts] == [1, 3]
    assert [{k: a[k] for k in ("seed", "final_loss", "kept")} for a in res.attempts[0]] == [
        {"seed": 0, "final_loss": plain[0].metrics["final_loss"], "kept": True}]
    stage1 = [a["final_loss"] for a in res.attempts[1]]
    assert [a["seed"] for a in res.attempts[1]] == seeds
    assert stage1[0] == plain[1].metrics["final_loss"]  # attempt 0: the run without retries
    # each attempt is one training of stage 1 from stage 0's network with its seed
    beta30 = problems.get("convection", beta=30.0)
    start = train_continuation("convection", "beta", [1.0], steps=6, seed=0,
                               model_options=SMALL, **kw).final.model
    for s, loss in zip(seeds, stage1):
        alone = train(beta30, copy.deepcopy(start), steps=3, seed=s, **kw)
        assert alone.metrics["final_loss"] == loss
    best = min(range(3), key=stage1.__getitem__)
    assert [a["kept"] for a in res.attempts[1]] == [j == best for j in range(3)]
    assert res[1].metrics["final_loss"] == stage1[best] and res.final_stage == 1
    assert res.wall_time_s == pytest.approx(sum(a["wall_time_s"] for st in res.attempts
                                                for a in st))
    assert sorted(d.name for d in tmp_path.iterdir()) == (
        ["stage-0", "stage-1"] + [f"stage-1-attempt-{j}" for j in range(3) if j != best])
    x = torch.rand(40, 2, dtype=torch.float64)
    on_disk = load_network(beta30, SMALL, torch.float64, tmp_path / "stage-1")
    with torch.no_grad():
        assert torch.equal(on_disk(x), res[1].model(x))
    for j in range(3):
        if j != best:
            other = load_network(beta30, SMALL, torch.float64, tmp_path / f"stage-1-attempt-{j}")
            with torch.no_grad():
                assert not torch.equal(other(x), res[1].model(x))


def test_continuation_retry_keeps_the_first_converged_attempt():
    """An attempt that converges ends the retries; a retried first stage starts from a fresh
    network of its own seed."""
    from solvers import retry_seed, train, train_continuation

    kw = dict(points=16, export=False, ntk_every=0, optimizer="gn", dtype="float64")
    beta = problems.get("convection", beta=5.0)
    losses = [train(beta, None, steps=2, seed=retry_seed(3, 0, j), model_options=SMALL,
                    **kw).metrics["final_loss"] for j in range(3)]
    first = next(j for j in (1, 2) if losses[j] < losses[0])  # (a later draw does better)
    bound = (losses[first] + min(losses[0], *losses[1:first] or [math.inf])) / 2
    with pytest.warns(UserWarning, match="stage 0 .* training it again"):
        res = train_continuation("convection", "beta", [5.0], steps=2, seed=3,
                                 model_options=SMALL, accept_loss=bound, retries=2, **kw)
    assert [a["final_loss"] for a in res.attempts[0]] == losses[:first + 1]
    assert res.attempts[0][-1]["kept"] and res[0].metrics["final_loss"] == losses[first]
    assert res.final_stage == 0


def _diverge_with(seeds):
    """A train callback that makes a run of one of ``seeds`` diverge (NaN parameters at step 1,
    refused at the checkpoint after it)."""
    def corrupt(trainer):
        if trainer.seed in seeds and trainer.step == 1:
            with torch.no_grad():
                trainer.params[0].view(-1)[0] = float("nan")
    return corrupt


def _diverging_stage(out, seeds):
    """One stage of convection (β = 5, 3 Gauss–Newton steps) retried twice against a bound
    none meets, its attempts with ``seeds`` diverging."""
    from solvers import train_continuation

    return train_continuation("convection", "beta", [5.0], steps=3, seed=0, out=out,
                              accept_loss=1e-30, retries=2, callback=_diverge_with(seeds),
                              points=16, export=False, ntk_every=0, optimizer="gn",
                              dtype="float64", checkpoint_every=1, model_options=SMALL)


def test_continuation_retries_a_stage_that_diverged(tmp_path):
    """With retries, an attempt that diverges (TrainingError) is recorded (final loss NaN, its
    error, an attempt.json in its folder) and the stage is trained again; the attempt after it
    is what one training with its seed gives, and --remeasure reads the records back."""
    from solvers import retry_seed, train
    from solvers.benchmarks.accuracy import _stage_attempts

    seeds = [retry_seed(0, 0, j) for j in range(3)]
    with pytest.warns(UserWarning) as rec:
        res = _diverging_stage(tmp_path, set(seeds[:2]))
    retried = [str(w.message) for w in rec if "training it again" in str(w.message)]
    assert len(retried) == 2 and all(
        m.startswith("stage 0 (beta = 5) diverged (the network parameters became NaN/Inf at "
                     "step 1") and f"seed {s} (attempt {j + 2} of 3)" in m
        for j, (m, s) in enumerate(zip(retried, seeds[1:])))
    tries = res.attempts[0]
    assert [a["seed"] for a in tries] == seeds and [a["kept"] for a in tries] == [0, 0, 1]
    assert all(math.isnan(a["final_loss"]) and "NaN/Inf at step 1" in a["error"]
               for a in tries[:2])
    alone = train(problems.get("convection", beta=5.0), None, steps=3, seed=seeds[2],
                  points=16, export=False, ntk_every=0, optimizer="gn", dtype="float64",
                  model_options=SMALL)
    assert tries[2]["final_loss"] == alone.metrics["final_loss"] == res[0].metrics["final_loss"]
    assert "error" not in tries[2]
    assert res.wall_time_s == pytest.approx(sum(a["wall_time_s"] for a in tries))
    assert sorted(d.name for d in tmp_path.iterdir()) == [
        "stage-0", "stage-0-attempt-0", "stage-0-attempt-1"]
    assert not (tmp_path / "stage-0" / "attempt.json").exists()
    for j in (0, 1):
        on_disk = json.loads((tmp_path / f"stage-0-attempt-{j}" / "attempt.json").read_text())
        assert on_disk["final_loss"] is None and on_disk["seed"] == seeds[j]
    again = _stage_attempts(tmp_path, 0)
    assert [{k: v for k, v in a.items() if k != "final_loss"} for a in again] == [
        {k: v for k, v in a.items() if k != "final_loss"} for a in tries]
    assert math.isnan(again[0]["final_loss"]) and again[2]["final_loss"] == tries[2]["final_loss"]


def test_continuation_a_diverged_last_attempt_keeps_the_best_before(tmp_path):
    """The last attempt diverging, the lowest of the attempts that finished is kept (its folder
    stage-k, the diverged one's stage-k-attempt-j)."""
    from solvers import retry_seed

    seeds = [retry_seed(0, 0, j) for j in range(3)]
    with pytest.warns(UserWarning) as rec:
        res = _diverging_stage(tmp_path, {seeds[2]})
    assert sum("training it again" in str(w.message) for w in rec) == 2
    assert any(str(w.message).startswith("accept_loss: no stage ended") for w in rec)
    tries = res.attempts[0]
    assert math.isnan(tries[2]["final_loss"]) and not tries[2]["kept"]
    best = min((0, 1), key=lambda j: tries[j]["final_loss"])
    assert [a["kept"] for a in tries] == [j == best for j in range(3)]
    assert res[0].metrics["final_loss"] == tries[best]["final_loss"]
    assert sorted(d.name for d in tmp_path.iterdir()) == [
        "stage-0", f"stage-0-attempt-{1 - best}", "stage-0-attempt-2"]
    assert (tmp_path / "stage-0-attempt-2" / "attempt.json").exists()
    cfg = json.loads((tmp_path / "stage-0" / "config.json").read_text())
    assert cfg["seed"] == seeds[best]


def test_continuation_divergence_propagates_without_retries_or_when_every_attempt_fails():
    from solvers import retry_seed, train_continuation

    kw = dict(points=16, export=False, ntk_every=0, optimizer="gn", dtype="float64",
              checkpoint_every=1, model_options=SMALL, accept_loss=1e-30)
    with pytest.raises(TrainingError, match="NaN/Inf at step 1"):
        train_continuation("convection", "beta", [5.0], steps=3, seed=0,
                           callback=_diverge_with({0}), **kw)
    seeds = {retry_seed(0, 0, j) for j in range(2)}
    with pytest.warns(UserWarning, match=r"diverged .* \(attempt 2 of 2\)"):
        with pytest.raises(TrainingError, match="NaN/Inf at step 1"):
            train_continuation("convection", "beta", [5.0], steps=3, seed=0, retries=1,
                               callback=_diverge_with(seeds), **kw)


class _Stop(Exception):
    """An interruption (a killed process) in the middle of a continuation."""


def _continuation_run(callback, out, **extra):
    """Two stages of convection (β = 1, 30), the second retried twice without converging, its
    attempt 1 diverging; ``callback`` also runs after every step."""
    from solvers import retry_seed, train_continuation

    diverge = _diverge_with({retry_seed(0, 1, 1)})

    def both(trainer):
        if trainer.problem.params["beta"] == 30.0:
            diverge(trainer)
        if callback is not None:
            callback(trainer)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return train_continuation(
            "convection", "beta", [1.0, 30.0], steps=[5, 3], seed=0, model_options=SMALL,
            accept_loss=1e-30, retries=[0, 2], out=out, callback=both, points=16, export=False,
            ntk_every=0, optimizer="gn", dtype="float64", checkpoint_every=1, **extra)


def _stop_at(beta, seed, step):
    """A callback that interrupts the run of that stage and seed after that step, once."""
    done = []

    def stop(trainer):
        if (not done and trainer.problem.params["beta"] == beta and trainer.seed == seed
                and trainer.step == step):
            done.append(1)
            raise _Stop
    return stop


def _same_continuation(res, ref, out, ref_out):
    """Two continuations agree: attempts (but their times), result stage, final networks and
    the run folders' names."""
    def plain(attempts):
        return [[{k: (None if k == "final_loss" and math.isnan(v) else v)
                  for k, v in a.items() if k != "wall_time_s"} for a in st] for st in attempts]

    assert plain(res.attempts) == plain(ref.attempts)
    assert res.final_stage == ref.final_stage
    x = torch.rand(40, 2, dtype=torch.float64)
    with torch.no_grad():
        for a, b in zip(res, ref):
            assert torch.equal(a.model(x), b.model(x))
            assert a.metrics["final_loss"] == b.metrics["final_loss"]
    assert sorted(d.name for d in Path(out).iterdir()) == sorted(
        d.name for d in Path(ref_out).iterdir())


@pytest.mark.parametrize("cut", [
    (1.0, 0, 2),  # in the first stage, after a checkpoint
    (30.0, 0, 1),  # in the second stage's first attempt
    (30.0, "retry 2", 0),  # in its last attempt, before its first checkpoint
    (30.0, "retry 2", 2),  # in its last attempt, after a checkpoint
])
def test_continuation_resume_ends_as_an_uninterrupted_run(tmp_path, cut):
    """resume: a continuation stopped anywhere (a stage, a retried attempt, a diverged one
    behind it) and resumed ends with the attempts, losses, networks and folders of one that
    never stopped."""
    from solvers import retry_seed

    calls = []  # the steps each run trained (a resumed run only those it had not)
    count = calls.append
    ref = _continuation_run(count, tmp_path / "ref")
    assert len(ref.attempts[1]) == 3 and "error" in ref.attempts[1][1]
    n_ref = len(calls)
    beta, seed, step = cut
    seed = retry_seed(0, 1, 2) if seed == "retry 2" else seed
    stop = _stop_at(beta, seed, step)
    with pytest.raises(_Stop):
        _continuation_run(lambda t: (stop(t), count(t)), tmp_path / "cut")
    n_cut = len(calls) - n_ref  # (the stopped step not among them: it is trained again)
    res = _continuation_run(count, tmp_path / "cut", resume=True)
    assert len(calls) - n_ref - n_cut == n_ref - n_cut
    _same_continuation(res, ref, tmp_path / "cut", tmp_path / "ref")


def test_continuation_resume_of_a_finished_or_half_swapped_run(tmp_path):
    """A finished continuation resumed measures the same again; one stopped while its kept
    attempt moved into stage-k (stage-k already renamed) finishes the move."""
    import shutil

    ref = _continuation_run(None, tmp_path / "ref")
    again = _continuation_run(None, tmp_path / "ref", resume=True)
    shutil.copytree(tmp_path / "ref", tmp_path / "ref0")  # (compared against a copy)
    _same_continuation(again, ref, tmp_path / "ref", tmp_path / "ref0")
    kept = next(j for j, a in enumerate(ref.attempts[1]) if a["kept"])
    shutil.copytree(tmp_path / "ref0", tmp_path / "half")
    # stopped between the two renames: stage-1's attempt already moved to its own folder
    (tmp_path / "half" / "stage-1").rename(tmp_path / "half" / f"stage-1-attempt-{kept}")
    res = _continuation_run(None, tmp_path / "half", resume=True)
    _same_continuation(res, ref, tmp_path / "half", tmp_path / "ref0")


def test_continuation_resume_needs_out():
    from solvers import train_continuation

    with pytest.raises(ValueError, match=r"resume: needs out="):
        train_continuation("convection", "beta", [1.0], steps=1, resume=True)
    with pytest.raises(TypeError, match="resume: expected a bool, got int"):
        train_continuation("convection", "beta", [1.0], steps=1, resume=1, out="x")


@pytest.mark.parametrize("kw, exc, msg", [
    (dict(retries=-1, accept_loss=1e-5), ValueError, "retries: expected an integer >= 0, got -1"),
    (dict(retries=1.0, accept_loss=1e-5), TypeError, "retries: expected an integer, got float"),
    (dict(retries=1), ValueError, "retries: a stage is trained again when its final loss ends "
                                  "above accept_loss; give accept_loss too"),
    (dict(retries=[0, 1], accept_loss=1e-5), ValueError,
     r"retries: expected one count per stage \(1\), got 2"),
    (dict(retries=[-2], accept_loss=1e-5), ValueError, "retries: expected an integer >= 0"),
    (dict(retries="1", accept_loss=1e-5), TypeError, "retries: expected an integer, got str"),
])
def test_continuation_rejects_bad_retries(kw, exc, msg):
    from solvers import train_continuation

    with pytest.raises(exc, match=msg):
        train_continuation("convection", "beta", [1.0], steps=1, **kw)


@pytest.mark.parametrize("bad, exc, msg", [
    ("1e-5", TypeError, "accept_loss: expected a real number, got str"),
    (True, TypeError, "accept_loss: expected a real number, got bool"),
    (0.0, ValueError, "accept_loss: expected a positive number, got 0.0"),
    (-1e-5, ValueError, "accept_loss: expected a positive number, got -1e-05"),
    (float("nan"), ValueError, "accept_loss: expected a finite number, got nan"),
    (float("inf"), ValueError, "accept_loss: expected a finite number, got inf"),
])
def test_continuation_rejects_a_bad_accept_loss(bad, exc, msg):
    from solvers import train_continuation

    with pytest.raises(exc, match=msg):
        train_continuation("convection", "beta", [1.0], steps=1, accept_loss=bad)


def test_continuation_starts_each_stage_from_the_previous_network(tmp_path):
    from solvers import train_continuation

    seen = []
    res = train_continuation("convection", "beta", [1.0, 2.0], steps=[4, 3], points=16,
                             model_options=SMALL, export=False, ntk_every=0, log_every=1,
                             optimizer="gn", out=tmp_path,
                             callback=lambda tr: seen.append((tr.problem.params["beta"],
                                                              tr.step)))
    assert [r.metrics["steps"] for r in res] == [4, 3]
    assert res[1].model is res[0].model  # the same network, trained on
    assert seen == [(1.0, s) for s in range(4)] + [(2.0, s) for s in range(3)]
    assert (tmp_path / "stage-1" / "metrics.json").exists()
    with pytest.raises(ValueError, match="steps: expected one count per stage"):
        train_continuation("convection", "beta", [1.0, 2.0], steps=[4])
