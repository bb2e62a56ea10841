"""The benchmark scripts run end to end (tiny sizes; the figures themselves are not asserted)."""

import json
import warnings
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from pinnk.benchmarks import blas as blas_bench
from pinnk.benchmarks import ntk as ntk_bench

REPO = Path(__file__).resolve().parents[1]


def test_ntk_benchmark_runs_and_agrees(capsys):
    assert ntk_bench.main(["--n", "6", "--width", "12", "--euler-widths", "8,10", "--repeats", "1",
                           "--threads", "1", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["case"] for r in rows] == ["[f, d_h f]", "[f, laplacian f]", "[f, d_h^4 f]",
                                         "euler 1d 6x8 Positive", "euler 1d 6x10 Positive"]
    for r in rows:
        assert r["rel_diff"] <= 1e-10
        assert r["jacobian_s"] > 0 and r["structured_s"] > 0
        assert r["jacobian_peak_bytes"] >= 0 and r["structured_peak_bytes"] >= 0
        assert r["jacobian_faults"] >= 0 and r["structured_faults"] >= 0


def test_ntk_benchmark_rejects_bad_options(capsys):
    assert ntk_bench.main(["--n", "0"]) == 2
    assert ntk_bench.main(["--threads", "0"]) == 2
    assert ntk_bench.main(["--cases", "a,z"]) == 2
    assert "--cases: unknown case(s) ['z']" in capsys.readouterr().err
    assert ntk_bench.main(["--euler-widths", "64,x"]) == 2
    assert "--euler-widths: expected positive integers" in capsys.readouterr().err


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_blas_benchmark_routines_form_the_product_they_time(dtype, one_thread):
    """Each timed call writes a bᵀ into the kept buffer (syrk a aᵀ, its lower triangle): the
    rates are those of the structured path's products, not of a copy or another layout."""
    from scipy.linalg import blas
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(7, 3, generator=g, dtype=dtype), torch.randn(7, 3, generator=g, dtype=dtype)
    tol = 1e-12 if dtype == torch.float64 else 1e-5
    out = torch.full((7, 7), torch.nan, dtype=dtype)
    gemm = blas.dgemm if dtype == torch.float64 else blas.sgemm
    for name, (fn, macs) in blas_bench._routines(a, b, out, gemm).items():
        out.fill_(torch.nan)
        fn()
        if name == "scipy syrk":
            assert macs == 7 * 7 * 3 // 2
            assert torch.allclose(out.tril(), (a @ a.T).tril(), atol=tol)
        else:
            assert macs == 7 * 7 * 3
            assert torch.allclose(out, a @ b.T, atol=tol)


def test_blas_benchmark_runs_on_one_thread_and_restores_torch_threads(capsys, set_threads):
    set_threads(2)
    assert blas_bench.main(["--shapes", "8x3,5x2", "--repeats", "1", "--json"]) == 0
    assert torch.get_num_threads() == 2
    res = json.loads(capsys.readouterr().out)
    assert res["libraries"][0]["user"] == "torch"
    assert any(lib["library"] == "openblas" for lib in res["libraries"])
    assert [(r["routine"], r["n"], r["k"]) for r in res["rates"]] == [
        ("torch mm", 8, 3), ("scipy gemm", 8, 3), ("scipy syrk", 8, 3),
        ("torch mm", 5, 2), ("scipy gemm", 5, 2), ("scipy syrk", 5, 2)]
    assert all(r["seconds"] > 0 and r["gmacs"] > 0 for r in res["rates"])
    assert blas_bench.main(["--shapes", "4x2", "--repeats", "1", "--dtype", "float32"]) == 0
    out = capsys.readouterr().out
    assert "float32, one thread" in out and "scipy syrk" in out


@pytest.mark.parametrize("argv, message", [
    (["--shapes", "8y3"], "--shapes: expected positive n x k pairs"),
    (["--shapes", "0x3"], "--shapes: expected positive n x k pairs"),
    (["--shapes", ""], "--shapes: expected positive n x k pairs"),
    (["--repeats", "0"], "--repeats must be positive, got 0"),
    (["--dtype", "float16"], "--dtype: expected float64 or float32, got 'float16'"),
])
def test_blas_benchmark_rejects_bad_options(argv, message, capsys):
    assert blas_bench.main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_ntk_benchmark_euler_residuals_are_the_zoo_ones():
    """The benchmark's own copy of the Euler residuals (pinnk does not import problems) gives
    the same values as problems.euler_residuals_1d."""
    import torch

    import pinnk
    from problems._euler import euler_residuals_1d

    g = torch.Generator().manual_seed(0)
    model = pinnk.MLP(2, 3, 8, 2, output_transform=pinnk.Positive([0, 2]), generator=g,
                      dtype=torch.float64)
    x = torch.rand(7, 2, generator=g, dtype=torch.float64)
    mine, zoo = ntk_bench.euler_residuals_1d(), euler_residuals_1d()
    assert list(mine) == list(zoo)
    for name in mine:
        assert torch.allclose(mine[name](model, x), zoo[name](model, x), rtol=1e-13, atol=1e-13)


@pytest.mark.slow
def test_train_step_benchmark_runs(capsys):
    from solvers.benchmarks import train_step

    assert train_step.main(["--points", "64", "--steps", "2", "--repeats", "1", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["deepxde_s_per_step"] > 0 and out["pinnk_compiled_s_per_step"] > 0


def test_time_to_accuracy_runs_and_stops_at_the_tolerance():
    from dataclasses import replace

    from solvers.benchmarks import time_to_accuracy as tta
    from solvers.benchmarks.accuracy import BY_NAME

    gn = replace(BY_NAME["poisson-1d-gn"], steps=60, points={"residual": 64, "boundary": 2},
                 model_options={"width": 32, "depth": 2})
    row = tta.time_to(gn, tol=0.05, check_every=1)
    assert row["reached"] and row["steps"] < 60 and row["last_error"] <= 0.05, row
    adam = replace(BY_NAME["poisson-1d"], steps=20, points={"residual": 48, "boundary": 2},
                   model_options={"width": 8, "depth": 1})
    row = tta.time_to(adam, tol=1e-9, check_every=5)
    assert not row["reached"] and row["seconds"] is None and row["ran_s"] > 0


def test_trace_overhead_benchmark_runs(capsys):
    from solvers.benchmarks import trace_overhead

    row = trace_overhead.measure("poisson-1d", steps=6, every=3)
    assert row["updates"] == 2 and 0 < row["update_share"] < 1
    assert trace_overhead.main(["--impl", "fast"]) == 2


def test_gn_kernel_benchmark_runs(capsys):
    from solvers.benchmarks import gn_kernel

    r = gn_kernel.run(width=3, repeats=1)
    assert r["n"] == 3825 and len(r["seconds"]) == 1 and r["median_faults"] >= 0
    model, terms = gn_kernel.setup(3)
    assert not torch.equal(terms[0].points, terms[1].points)  # points of their own
    _, shared = gn_kernel.setup(3, shared_points=True)
    assert torch.equal(shared[0].points, shared[1].points)
    assert gn_kernel.main(["--width", "0"]) == 2
    assert "--width and --repeats must be positive" in capsys.readouterr().err
    r = gn_kernel.run(width=3, repeats=1, initial_window=0.01)
    assert r["n"] == 3825 + 3 * 16 and r["initial_window"] == 0.01
    _, terms = gn_kernel.setup(3, initial_window=0.01)
    assert [t.name for t in terms[-3:]] == ["window_mass", "window_momentum", "window_energy"]
    assert gn_kernel.main(["--width", "3", "--repeats", "1", "--initial-window", "0.01"]) == 0
    assert "window terms of half-width 0.01" in capsys.readouterr().out
    assert gn_kernel.main(["--initial-window", "0.4"]) == 2
    assert "error: --initial-window: initial_window: expected" in capsys.readouterr().err


def test_accuracy_continuation_target_measures_the_regularisation(tmp_path):
    """A continuation target (sod, viscosity in stages) runs every stage from the previous
    network and reports the final-time and whole-grid errors beside the error of the
    regularisation itself (the finite-volume viscous tube at the last ν)."""
    from dataclasses import replace

    from solvers.benchmarks import accuracy

    t = replace(accuracy.BY_NAME["sod-gn"], model_options={"width": 6, "depth": 1},
                points={k: 12 for k in accuracy._SOD_POINTS}, resample_every=0, sampler="uniform",
                continuation={"parameter": "viscosity", "values": [0.02, 0.01],
                              "steps": [2, 3]})
    row = accuracy.run_target(t, tmp_path)
    assert row["status"] == "ok", row
    assert row["steps_done"] == 5 and [s["steps"] for s in row["stages"]] == [2, 3]
    assert [s["viscosity"] for s in row["stages"]] == [0.02, 0.01]
    assert (tmp_path / "sod-gn" / "stage-1").is_dir()
    reg = row["regularisation"]
    assert reg["viscosity"] == 0.01 and 0 < reg["error"] < 0.1
    assert abs(reg["shock_x"] - 0.8504) < 0.02
    assert 0 < row["grid_error"] < 10 and row["meets"] is False
    assert 0 < row["grid_error_after_start"] < 10
    # at t = 0 the finite-volume solution is its (exact) initial data: that row adds nothing
    # to the error, only to the norm
    assert 0 < reg["grid_error"] < reg["grid_error_after_start"] < 0.1
    text = accuracy.render({"sod-gn": row}, 1)
    assert "whole (x, t) grid" in text and "whole grid" in text and "(t > 0: " in text
    # the classical schemes on the same measures, one table row per scheme
    assert "## Shock-capturing finite volumes on the same measures" in text
    assert text.count("| sod | HLLE, ") == len(accuracy.SCHEMES)
    # its regularisation measured again from the stored row: the same (the last stage's ν)
    stored = json.loads(json.dumps(row))
    assert accuracy.refresh_regularisation(stored) and stored["regularisation"] == reg
    assert not accuracy.refresh_regularisation({"config": row["config"]})
    # measuring the finished run again, without training, gives the same figures
    again = accuracy.remeasure(t, tmp_path)
    assert again["remeasured"] and again["steps_done"] == 5
    for k in ("error", "grid_error", "grid_error_after_start", "shock_x"):
        assert again[k] == pytest.approx(row[k], rel=1e-12, abs=1e-15), k


def test_accuracy_accept_loss_measures_the_last_converged_stage(tmp_path):
    """A continuation target with accept_loss measures the network of its last stage whose
    final loss is at or below it, against that stage's problem (its ν for the regularisation);
    the row says which stage, and remeasuring the run folder picks the same stage."""
    from dataclasses import replace

    from solvers.benchmarks import accuracy

    base = replace(accuracy.BY_NAME["sod-gn"], model_options={"width": 6, "depth": 1},
                   points={k: 12 for k in accuracy._SOD_POINTS}, resample_every=0,
                   sampler="uniform", continuation={"parameter": "viscosity",
                                                    "values": [0.02, 0.01], "steps": [30, 1]})
    plain = accuracy.run_target(base, tmp_path / "plain")
    assert plain["status"] == "ok", plain
    l0, l1 = (s["final_loss"] for s in plain["stages"])
    assert l0 < l1 and plain["final_stage"] == 1
    t = replace(base, accept_loss=math.sqrt(l0 * l1))
    with pytest.warns(UserWarning, match="accept_loss: the result is stage 0's network"):
        row = accuracy.run_target(t, tmp_path / "accept")
    assert row["status"] == "ok", row
    assert row["final_stage"] == 0 and row["config"]["accept_loss"] == t.accept_loss
    assert [s["final_loss"] for s in row["stages"]] == [l0, l1]
    assert row["final_loss"] == l0 and row["steps_done"] == 31
    assert row["grid_error"] == row["stages"][0]["relative_l2"]["rho"]
    assert row["regularisation"]["viscosity"] == 0.02
    assert row["error"] != plain["error"]
    again = accuracy.remeasure(t, tmp_path / "accept")
    assert again["final_stage"] == 0
    for k in ("error", "grid_error", "grid_error_after_start", "shock_x"):
        assert again[k] == pytest.approx(row[k], rel=1e-12, abs=1e-15), k
    stored = json.loads(json.dumps(row))
    assert accuracy.refresh_regularisation(stored)
    assert stored["regularisation"]["viscosity"] == 0.02
    text = accuracy.render({t.name: row}, 1)
    assert "the network of stage 0 (viscosity = 0.02, final loss " in text
    assert "the result: the last stage whose final loss is ≤ " in text
    assert accuracy._same_config(replace(t, steps=row["config"]["steps"]), row)
    assert not accuracy._same_config(replace(base, steps=row["config"]["steps"]), row)
    for bad in (dict(accept_loss=1e-5), dict(retries=1)):
        with pytest.raises(ValueError, match="sod-gn: accept_loss and retries apply to a "
                                             "continuation"):
            accuracy.run_target(replace(base, continuation=None, **bad), tmp_path)
    # retries: the stage above the bound trained again; every attempt in the row and its time
    r = replace(t, retries=1)
    with pytest.warns(UserWarning) as rec:
        row = accuracy.run_target(r, tmp_path / "retry")
    assert any("stage 1 (viscosity = 0.01) ended at " in str(w.message) for w in rec)
    assert row["status"] == "ok", row
    tries = row["stages"][1]["attempts"]
    assert len(tries) == 2 and "attempts" not in row["stages"][0]
    assert tries[0]["final_loss"] == l1 and tries[0]["seed"] == base.seed
    assert row["train_s"] == pytest.approx(row["stages"][0]["train_s"]
                                           + sum(a["wall_time_s"] for a in tries))
    assert row["config"]["retries"] == 1
    assert "other points, up to 1 time" in accuracy.render({r.name: row}, 1)
    assert accuracy._same_config(replace(r, steps=row["config"]["steps"]), row)
    assert not accuracy._same_config(replace(t, steps=row["config"]["steps"]), row)
    again = accuracy.remeasure(r, tmp_path / "retry")
    assert again["stages"][1]["attempts"] == tries and again["train_s"] == row["train_s"]


def test_accuracy_resume_continues_a_stopped_continuation(tmp_path):
    """--resume: a continuation target whose run stopped (here: its retried last stage gone,
    the first stage's folder a finished one) ends with the row of a run that never stopped;
    a marched target with a budget cannot, and --resume goes with training only."""
    import shutil
    from dataclasses import replace

    from solvers.benchmarks import accuracy

    t = replace(accuracy.BY_NAME["sod-gn"], model_options={"width": 6, "depth": 1},
                points={k: 12 for k in accuracy._SOD_POINTS}, resample_every=0,
                sampler="uniform", accept_loss=1e-12, retries=1,
                continuation={"parameter": "viscosity", "values": [0.02, 0.01],
                              "steps": [6, 2]})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        ref = accuracy.run_target(t, tmp_path / "ref")
        shutil.copytree(tmp_path / "ref", tmp_path / "cut")
        for d in (tmp_path / "cut" / t.name).glob("stage-1*"):
            shutil.rmtree(d)  # stopped before the second stage began
        row = accuracy.run_target(t, tmp_path / "cut", resume=True)
    assert ref["status"] == row["status"] == "ok", row
    assert row["resumed"] and "resumed" not in ref
    assert len(row["stages"][1]["attempts"]) == 2
    for k in ("error", "grid_error", "shock_x", "final_loss", "final_stage"):
        assert row[k] == ref[k], k
    assert [s["final_loss"] for s in row["stages"]] == [s["final_loss"] for s in ref["stages"]]
    assert row["stages"][0]["train_s"] == ref["stages"][0]["train_s"]  # (read back)
    marched = replace(accuracy.BY_NAME["sod-gn"], continuation=None, windows=2, budget_s=60.0)
    with pytest.raises(ValueError, match="resume: a marched target with a wall-time budget"):
        accuracy.run_target(marched, tmp_path, resume=True)
    with pytest.raises(SystemExit):
        accuracy.main(["--resume", "--remeasure", "--only", "sod-gn"])


def test_accuracy_target_passes_adaptive_start_and_hold_last(tmp_path):
    """A target's adaptive_start (from the second stage on) and hold_last reach every stage's
    trainer (its config.json), the row's config and its text; rows without them keep the
    config they had, and a stored row matches its target only with the same values."""
    from dataclasses import replace

    from solvers.benchmarks import accuracy

    t = replace(accuracy.BY_NAME["sod-gn-rad-dense-gap"], model_options={"width": 6, "depth": 1},
                points={k: 12 for k in accuracy._SOD_POINTS}, resample_every=2,
                continuation={"parameter": "viscosity", "values": [0.02, 0.01],
                              "steps": [4, 4]})
    assert t.adaptive_start and t.hold_last == 30
    t = replace(t, hold_last=2)
    row = accuracy.run_target(t, tmp_path)
    assert row["status"] == "ok", row
    cfgs = [json.loads((tmp_path / t.name / f"stage-{k}" / "config.json").read_text())
            for k in (0, 1)]
    assert [c["adaptive_start"] for c in cfgs] == [False, True]
    assert [c["hold_last"] for c in cfgs] == [2, 2]
    assert cfgs[1]["problem"]["params"]["initial_gap"] == 2e-3
    assert row["config"]["adaptive_start"] is True and row["config"]["hold_last"] == 2
    text = accuracy._config_text(row["config"])
    assert "adaptive start" in text and "no redraw in the last 2 steps of a stage" in text
    assert accuracy._same_config(replace(t, steps=row["config"]["steps"]), row)
    assert not accuracy._same_config(replace(t, steps=row["config"]["steps"], hold_last=0), row)
    plain = accuracy._new_row(accuracy.BY_NAME["sod-gn"], tmp_path, 0, False)["config"]
    assert "adaptive_start" not in plain and "hold_last" not in plain
    assert "adaptive start" not in accuracy._config_text(plain)


def test_accuracy_seeds_make_one_row_per_seed(tmp_path, monkeypatch):
    from solvers.benchmarks import accuracy

    seen = []

    def fake(target, out_root, steps=None, device="cpu", resume=False):
        seen.append((target.name, target.seed, device) + (("resume",) if resume else ()))
        return {"name": target.name, "status": "crashed", "message": "x", "meets": False,
                "goal": target.goal, "output": target.output, "config": {}, "error": None}

    monkeypatch.setattr(accuracy, "run_target", fake)
    monkeypatch.setattr(accuracy, "render", lambda rows, threads: "")
    md = tmp_path / "acc.md"
    assert accuracy.main(["--only", "poisson-1d-gn", "--seeds", "0", "2", "--md", str(md)]) == 0
    assert seen == [("poisson-1d-gn", 0, "cpu"), ("poisson-1d-gn@seed2", 2, "cpu")]
    rows = json.loads(md.with_suffix(".json").read_text())["rows"]
    assert sorted(rows) == ["poisson-1d-gn", "poisson-1d-gn@seed2"]
    # rows trained on a GPU are kept apart from the CPU rows
    seen.clear()
    monkeypatch.setattr(accuracy.torch.cuda, "is_available", lambda: True)
    assert accuracy.main(["--only", "poisson-1d-gn", "--seeds", "0", "2", "--md", str(md),
                          "--device", "cuda"]) == 0
    assert seen == [("poisson-1d-gn@cuda", 0, "cuda"), ("poisson-1d-gn@seed2@cuda", 2, "cuda")]
    rows = json.loads(md.with_suffix(".json").read_text())["rows"]
    assert sorted(rows) == ["poisson-1d-gn", "poisson-1d-gn@cuda", "poisson-1d-gn@seed2",
                            "poisson-1d-gn@seed2@cuda"]
    # --resume reaches every run
    seen.clear()
    assert accuracy.main(["--only", "poisson-1d-gn", "--seeds", "2", "--md", str(md),
                          "--resume"]) == 0
    assert seen == [("poisson-1d-gn@seed2", 2, "cpu", "resume")]


def test_accuracy_rejects_an_unknown_device(tmp_path, capsys):
    from solvers.benchmarks import accuracy

    with pytest.raises(SystemExit) as exc:
        accuracy.main(["--only", "poisson-1d-gn", "--device", "tpu", "--md",
                       str(tmp_path / "a.md")])
    assert exc.value.code == 2
    assert "--device: expected cpu or cuda[:N], got 'tpu'" in capsys.readouterr().err


def test_accuracy_grid_measures_of_a_riemann_problem():
    """The whole-grid measures: zero for the exact solution without the t = 0 row. The
    regularisation's snapshots agree with a run to t_end, and at t = 0 it holds its exact
    initial data: that row adds to the norm, not to the error."""
    import numpy as np
    import problems
    import torch

    from solvers.benchmarks import accuracy

    sod = problems.get("sod", viscosity=0.01)

    class Exact(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.p = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))

        def forward(self, x):
            return sod.solution(x) + 0 * self.p

    assert accuracy.grid_error_after_start(sod, Exact(), "rho") == 0.0
    reg = accuracy.regularisation_metrics(sod, "rho")
    x, w = sod.viscous_reference(cells=reg["cells"])
    xs = np.linspace(0, 1, accuracy.FINAL_GRID)
    ref = sod.solution(torch.tensor(np.stack([xs, np.full_like(xs, 0.2)], 1))).numpy()[:, 0]
    fv = np.interp(xs, x, w[:, 0])
    assert reg["error"] == pytest.approx(np.linalg.norm(fv - ref) / np.linalg.norm(ref),
                                         rel=1e-12)
    grid, exact = accuracy._grid_reference(sod, "rho")
    later = grid[:, sod.time_index].numpy() > 0
    shrink = np.linalg.norm(exact[later]) / np.linalg.norm(exact)
    assert reg["grid_error"] == pytest.approx(reg["grid_error_after_start"] * shrink, rel=1e-12)


def test_last_stage_trains_a_finished_continuation_run_further(tmp_path, capsys):
    """The last-stage script rebuilds a continuation run's final network, trains it on the
    changed problem and measures it; the start figures are the run's own; bad input exits 2."""
    from dataclasses import replace

    from solvers.benchmarks import accuracy, last_stage

    t = replace(accuracy.BY_NAME["sod-gn"], model_options={"width": 6, "depth": 1},
                points={k: 12 for k in accuracy._SOD_POINTS}, resample_every=2, sampler="uniform",
                continuation={"parameter": "viscosity", "values": [0.02, 0.01],
                              "steps": [3, 3]})
    row = accuracy.run_target(t, tmp_path)
    run = tmp_path / "sod-gn"
    js = tmp_path / "rec.jsonl"
    code = last_stage.main([str(run), "--steps", "3", "--param", "viscosity=0.005",
                            "--sampler", "rad:local=2", "--resample-every", "1", "--json", str(js),
                            "--threads", "1"])
    assert code == 0
    rec = json.loads(js.read_text().splitlines()[-1])
    assert rec["params"]["viscosity"] == 0.005 and rec["from_params"]["viscosity"] == 0.01
    assert rec["start"]["error"] == pytest.approx(row["error"], rel=1e-12)
    assert rec["start"]["grid_error"] == pytest.approx(row["grid_error"], rel=1e-12)
    assert rec["end"]["error"] != rec["start"]["error"] and rec["sampler"] == "rad:local=2"
    assert "end: ρ(x, t_end)" in capsys.readouterr().out
    assert last_stage.main([str(tmp_path / "none"), "--steps", "2"]) == 2
    assert "has no stage-K folders" in capsys.readouterr().err
    assert last_stage.main([str(run), "--steps", "2", "--param", "viscosity"]) == 2
    assert "--param: expected NAME=VALUE" in capsys.readouterr().err
    assert last_stage.main([str(run), "--steps", "0"]) == 2
    # more initial points, weights, an adaptive first draw, no redraw at the end, a run folder
    code = last_stage.main([str(run), "--steps", "4", "--points", "initial_rho=20",
                            "--weighting", "fixed:initial_rho=10", "--sampler", "rad",
                            "--resample-every", "1", "--adaptive-start", "--hold-last", "2",
                            "--out", str(tmp_path / "more"), "--json", str(js),
                            "--threads", "1"])
    assert code == 0
    rec = json.loads(js.read_text().splitlines()[-1])
    assert rec["points"]["initial_rho"] == 20 and rec["points"]["initial_u"] == 12
    assert rec["adaptive_start"] is True and rec["hold_last"] == 2
    cfg = json.loads((tmp_path / "more" / "config.json").read_text())
    assert cfg["points"]["initial_rho"] == 20 and cfg["weighting"]["weights"] == \
        {"initial_rho": 10.0}
    assert cfg["adaptive_start"] is True and cfg["hold_last"] == 2
    assert (tmp_path / "more" / "checkpoint.pt").is_file()
    # that run folder is the RUN of a further stage, which starts from its network
    code = last_stage.main([str(tmp_path / "more"), "--steps", "2", "--json", str(js),
                            "--threads", "1"])
    assert code == 0
    again = json.loads(js.read_text().splitlines()[-1])
    assert again["start"] == rec["end"] and again["points"]["initial_rho"] == 20
    capsys.readouterr()
    assert last_stage.main([str(tmp_path / "more"), "--steps", "2", "--stage", "0"]) == 2
    assert "is a single run folder, not a continuation" in capsys.readouterr().err
    assert last_stage.main([str(run), "--steps", "2", "--points", "initial_rho=0"]) == 2
    assert "--points: expected NAME=N with a positive integer N" in capsys.readouterr().err
    # tube_regions --fresh: the losses at the run's own final points and at fresh ones
    from solvers.benchmarks import tube_regions

    import problems
    from solvers._train import load_network, mlp_shape, read_checkpoint

    more = tmp_path / "more"
    got = tube_regions.own_and_fresh_losses(more, 50, start=0.1)
    own, fresh = got["own"], got["fresh"]
    names = [u.name for u in problems.get("sod").terms(2)]
    assert list(own) == names and list(fresh) == names
    assert got["residual"] == ["mass", "momentum", "energy"]
    # the labels stored with the points are the exact solution there (read in term order)
    ck = read_checkpoint(more / "checkpoint.pt", "run")
    prob = problems.get("sod", **cfg["problem"]["params"])
    model = load_network(prob, mlp_shape(ck["model"]), torch.float64, more, "run")
    k = names.index("initial_u")
    x = ck["points"][k].to(torch.float64)
    with torch.no_grad():
        r = model(x)[:, 1] - prob.solution(x)[:, 1]
    assert own["initial_u"] == pytest.approx(0.5 * float((r * r).mean()), rel=1e-12)
    assert tube_regions.own_and_fresh_losses(more, 50, start=0.1) == got
    assert tube_regions.own_and_fresh_losses(more, 60)["fresh"] != fresh
    # the mean over the fresh points with t > start, and the median point, by hand
    seeded = prob.terms({u: 50 for u in names}, torch.Generator().manual_seed(1234),
                        torch.float64)
    mass = [u for u in seeded if u.name == "mass"][0]
    with torch.no_grad():
        half = 0.5 * mass.residual(model) ** 2
    late = mass.points[:, 1] > 0.1
    assert got["after"]["mass"] == pytest.approx(float(half[late].mean()), rel=1e-12)
    assert got["median"]["mass"] == pytest.approx(float(half.median()), rel=1e-12)
    assert got["fresh"]["mass"] == pytest.approx(float(half.mean()), rel=1e-12)
    assert tube_regions.main(["sod", str(more), "--fresh", "40"]) == 0
    assert f"| {more} | {sum(own.values()):.2e} | " in capsys.readouterr().out
    with pytest.raises(SystemExit):
        tube_regions.main(["sod", "--smear", "1e-3", "--fresh", "40"])
    assert "--fresh: expected a positive number of points and run folders" in \
        capsys.readouterr().err
    # tube_regions --jump: the offset of the run's initial jump, as jump_offset gives it
    assert tube_regions.main(["sod", str(more), "--jump", "0.02"]) == 0
    want = tube_regions.jump_offset(prob, model, 0.02)
    assert (f"| {more} | {want['rho']:+.2e} | {want['p']:+.2e} | {want['rho_at_x0']:.3f} |"
            in capsys.readouterr().out)
    with pytest.raises(SystemExit):
        tube_regions.main(["sod", "--smear", "1e-3", "--jump"])
    assert "--jump: expected a half-width 0 < D <= 0.25 and run folders" in \
        capsys.readouterr().err


def test_accuracy_marched_target_measures_the_composite(tmp_path):
    """A marched target trains its windows in turn and is measured on the composite of the
    windows' networks; remeasuring rebuilds that composite from the windows' checkpoints."""
    from dataclasses import replace

    from solvers.benchmarks import accuracy

    t = replace(accuracy.BY_NAME["rotating-cone-gn"], windows=2, steps=2, resample_every=1,
                params={"T": 0.5}, model_options={"width": 6, "depth": 1},
                points={"residual": 20, "initial": 10, "boundary": 10})
    row = accuracy.run_target(t, tmp_path)
    assert row["status"] == "ok", row
    assert row["steps_done"] == 4 and len(row["windows"]) == 2
    assert [w["t"] for w in row["windows"]] == [[0.0, 0.25], [0.25, 0.5]]
    assert (tmp_path / "rotating-cone-gn" / "window-1").is_dir()
    assert 0 < row["error"] < 10 and row["meets"] is None
    assert "marched in 2 equal time windows" in accuracy.render({"rotating-cone-gn": row}, 1)
    again = accuracy.remeasure(t, tmp_path)
    assert again["remeasured"] and again["steps_done"] == 4
    assert again["error"] == pytest.approx(row["error"], rel=1e-12)


def test_accuracy_target_is_marched_or_continued_not_both(tmp_path):
    from dataclasses import replace

    from solvers.benchmarks import accuracy

    t = replace(accuracy.BY_NAME["sod-gn"], windows=2)
    with pytest.raises(ValueError, match="marched or continued, not both"):
        accuracy.run_target(t, tmp_path)


def test_regularisation_is_computed_once_per_problem(monkeypatch):
    """Seeds of one target measure the same finite-volume regularisation: it runs once."""
    import problems
    from solvers.benchmarks import accuracy

    import numpy as np

    calls = []
    first = problems.get("sod", viscosity=0.04, t_end=0.05)

    def counting(self, t, cells):  # a stand-in for the finite-volume run: constant states
        calls.append(self.params["viscosity"])
        return np.linspace(0.0, 1.0, 50), np.ones((len(t), 50, 3))

    monkeypatch.setattr(type(first), "viscous_reference", counting)
    monkeypatch.setattr(accuracy, "_REGULARISATIONS", {})
    a = accuracy.regularisation_metrics(first, "rho")
    b = accuracy.regularisation_metrics(problems.get("sod", viscosity=0.04, t_end=0.05), "rho")
    assert a == b and calls == [0.04]
    b["error"] = -1.0  # a caller's copy: the cached figures are not changed
    assert accuracy.regularisation_metrics(first, "rho")["error"] == a["error"]
    accuracy.regularisation_metrics(problems.get("sod", viscosity=0.05, t_end=0.05), "rho")
    assert calls == [0.04, 0.05]


def test_accuracy_scheme_metrics_measure_the_hlle_solutions_like_the_networks():
    """The HLLE references of a tube on the rows' measures: second order beats first order on
    every measure, the shock lies within a few cells of the exact one, and the t = 0 row (the
    initial data, exact) adds nothing to the grid error: it is the error of t > 0 over the
    larger norm."""
    import problems
    from solvers.benchmarks import accuracy

    sod = problems.get("sod")
    first, minmod, mc = accuracy.scheme_metrics(sod, "rho", cells=400)
    assert [m["scheme"] for m in (first, minmod, mc)] == [s[0] for s in accuracy.SCHEMES]
    for k in ("error", "grid_error", "grid_error_after_start"):
        assert mc[k] < minmod[k] < first[k] < 0.05, k
    for m in (first, minmod, mc):
        assert abs(m["shock_x"] - (0.5 + 1.75216 * 0.2)) < 5.0 / 400
    grid, ref = accuracy._grid_reference(sod, "rho")
    later = grid[:, sod.time_index].numpy() > 0
    shrink = np.linalg.norm(ref[later]) / np.linalg.norm(ref)
    for m in (first, minmod, mc):
        assert m["grid_error"] == pytest.approx(m["grid_error_after_start"] * shrink, rel=1e-12)
    assert accuracy._scheme_section({}) == []


def test_a_seed_row_shares_its_target_text_while_its_configuration_is_current():
    from solvers.benchmarks import accuracy

    stored = json.loads((REPO / "docs" / "results" / "accuracy.json").read_text())["rows"]
    name = "sod-gn-rad-dense-fine@seed1"
    row = json.loads(json.dumps(stored[name]))
    row["chosen"] = "a stale text"
    text = accuracy.render({name: row}, 1)
    assert f"* **{name}**: {accuracy.BY_NAME['sod-gn-rad-dense-fine'].chosen}" in text
    row["config"]["steps"] = 12345  # another configuration keeps the text it was run with
    assert f"* **{name}**: a stale text" in accuracy.render({name: row}, 1)


def test_tube_regions_split_the_whole_grid_error_by_front(capsys):
    """The regions of a tube's grid: the t = 0 row, a band around each front of the exact
    solution, the rest; the parts' squares add up to the whole-grid error's square, and the
    exact solution itself has no error anywhere."""
    import problems
    from solvers.benchmarks import accuracy, tube_regions

    sod = problems.get("sod")
    grid, ref = accuracy._grid_reference(sod, "rho")
    labels, order = tube_regions.front_regions(sod, grid, band=0.02)
    assert order == ["t = 0", "left fan head", "left fan tail", "contact", "right shock", "rest"]
    assert set(labels) == set(order) and (labels == "t = 0").sum() == 101
    x, t = grid[:, 0].numpy(), grid[:, 1].numpy()
    near_shock = (t > 0.06) & (np.abs(x - (0.5 + 1.75216 * t)) < 0.015)  # fronts apart
    assert (labels[near_shock] == "right shock").all()
    pred = ref + np.random.default_rng(0).normal(size=ref.shape) * 1e-2
    parts = tube_regions.error_by_region(pred, ref, labels, order)
    assert sum(parts[k] ** 2 for k in order) == pytest.approx(parts["total"] ** 2, rel=1e-12)
    assert tube_regions.error_by_region(ref, ref, labels, order)["total"] == 0.0
    lax = problems.get("lax")
    _, lax_order = tube_regions.front_regions(lax, accuracy._grid_reference(lax, "rho")[0])
    assert lax_order[1:-1] == ["left fan head", "left fan tail", "contact", "right shock"]
    with pytest.raises(ValueError, match="band: expected a positive half-width"):
        tube_regions.front_regions(sod, grid, band=0.0)
    # the first time rows as a region of their own (before the fronts)
    early, early_order = tube_regions.front_regions(sod, grid, start=0.01)
    assert early_order == ["t = 0", "0 < t ≤ 0.01", *order[1:]]
    assert (early == "0 < t ≤ 0.01").sum() == 5 * 101
    assert ((early == labels) | (early == "0 < t ≤ 0.01")).all()
    parts = tube_regions.error_by_region(pred, ref, early, early_order)
    assert sum(parts[k] ** 2 for k in early_order) == pytest.approx(parts["total"] ** 2,
                                                                     rel=1e-12)
    with pytest.raises(ValueError, match="start: expected a time >= 0"):
        tube_regions.front_regions(sod, grid, start=-1.0)
    # the command: the schemes' rows, the same totals as the accuracy page's table
    assert tube_regions.main(["sod", "--schemes"]) == 0
    out = capsys.readouterr().out
    first = accuracy.scheme_metrics(sod)[0]["grid_error"]
    assert f"| HLLE, first order, 1000 cells | {first:.2e} | 0.0e+00 |" in out


@pytest.mark.parametrize("name", ["sod", "lax"])
def test_jump_offset_finds_a_moved_jump(name):
    """jump_offset: the exact solution moved by s at t = 0 gives s (up to the trapezoid rule's
    node spacing), for ρ and p alike; a smooth jump centred at x0 + s (tanh profile, symmetric)
    gives s as well; equal states give NaN."""
    import problems
    from solvers.benchmarks import tube_regions

    prob = problems.get(name)
    for s in (-1.5e-3, 0.0, 7e-4):
        def moved(x, s=s):
            return prob.solution(x - torch.tensor([s, 0.0], dtype=x.dtype))

        got = tube_regions.jump_offset(prob, moved)
        assert got["rho"] == pytest.approx(s, abs=2e-6) and got["p"] == pytest.approx(s, abs=2e-6)
        # ρ(x0, 0): the right state unless the jump moved right of x0
        assert got["rho_at_x0"] == (prob.left[0] if s > 0 else prob.right[0])

        def smooth(x, s=s):
            w = 0.5 * (1 - torch.tanh((x[:, :1] - prob.x0 - s) / 3e-4))
            left = torch.tensor(prob.left, dtype=x.dtype)
            right = torch.tensor(prob.right, dtype=x.dtype)
            return right + w * (left - right)

        got = tube_regions.jump_offset(prob, smooth, 0.005)
        assert got["rho"] == pytest.approx(s, abs=1e-8) and got["p"] == pytest.approx(s, abs=1e-8)
        half = 0.5 * (1 - math.tanh(-s / 3e-4))  # centred on x0 + s
        assert got["rho_at_x0"] == pytest.approx(prob.right[0]
                                                 + half * (prob.left[0] - prob.right[0]))
    flat = problems.get("riemann", left=(1.0, 0.0, 1.0), right=(1.0, 0.0, 0.1))
    got = tube_regions.jump_offset(flat, flat.solution)
    assert math.isnan(got["rho"]) and got["p"] == pytest.approx(0.0, abs=2e-6)
    with pytest.raises(ValueError, match="half_width: expected 0 < D <= min"):
        tube_regions.jump_offset(prob, prob.solution, 0.6)


def test_smeared_exact_solution_is_a_gaussian_average_in_x(capsys):
    """The smeared exact solution: exact at W = 0 and on the t = 0 row, the Gaussian average
    of u(x − s, t) (checked against a fine trapezoidal quadrature at points near the fronts),
    and its whole-grid error grows with W, at fronts only."""
    import problems
    from solvers.benchmarks import accuracy, tube_regions

    sod = problems.get("sod")
    grid, ref = accuracy._grid_reference(sod, "rho")
    assert np.array_equal(tube_regions.smeared_exact(sod, grid, "rho", 0.0), ref)
    pts = torch.tensor([[0.55, 0.054], [0.84, 0.194], [0.37, 0.1], [0.3, 0.0]],
                       dtype=torch.float64)
    W = 3e-3
    got = tube_regions.smeared_exact(sod, pts, "rho", W)
    s = np.linspace(-10 * W, 10 * W, 40001)
    phi = np.exp(-0.5 * (s / W) ** 2) / (W * np.sqrt(2 * np.pi))
    for i in range(3):
        x = pts[i, 0].item() - s
        u = sod.solution(torch.tensor(np.stack([x, np.full_like(x, pts[i, 1].item())], 1)))
        assert got[i] == pytest.approx(np.trapezoid(u[:, 0].numpy() * phi, s), abs=1e-3)
    assert got[3] == 1.0  # t = 0: exact
    labels, order = tube_regions.front_regions(sod, grid)
    errs = []
    for w in (5e-4, 1e-3, 2e-3, 4e-3):
        parts = tube_regions.error_by_region(tube_regions.smeared_exact(sod, grid, "rho", w),
                                             ref, labels, order)
        assert parts["t = 0"] == 0.0 and parts["rest"] < 1e-2 * parts["total"]
        errs.append(parts["total"])
    assert errs == sorted(errs) and errs[-1] > 2 * errs[0]
    with pytest.raises(ValueError, match="width: expected a finite width >= 0"):
        tube_regions.smeared_exact(sod, grid, "rho", -1.0)
    assert tube_regions.main(["sod", "--smear", "3e-3"]) == 0
    assert "| exact, smeared by σ = 0.003 | " in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["burgers-1d"], "problem: expected a tube"),
    (["sod", "--smear", "0"], "--smear: expected positive widths"),
    (["sod", "--schemes", "--start", "-0.1"], "--start: expected a time >= 0"),
    (["sod"], "nothing to measure"),
    (["sod", "/nonexistent/run"], "runs: no checkpoint.pt in /nonexistent/run"),
    (["sod", "--viscosity", "-1"], "--viscosity: expected positive values"),
    (["sod", "--schemes", "--band", "0"], "--band: expected a positive half-width"),
])
def test_tube_regions_rejects_bad_arguments(argv, message, capsys):
    from solvers.benchmarks import tube_regions

    with pytest.raises(SystemExit) as e:
        tube_regions.main(argv)
    assert e.value.code == 2
    assert message in capsys.readouterr().err
