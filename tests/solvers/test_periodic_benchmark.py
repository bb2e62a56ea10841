"""The periodic accuracy benchmark script runs end to end at a tiny size (figures not asserted)."""

from __future__ import annotations

import json

from solvers.benchmarks import periodic


def test_periodic_benchmark_runs_with_given_optimizer_and_weighting(tmp_path, capsys):
    md = tmp_path / "periodic.md"
    argv = ["--only", "kdv", "--windows", "0", "--steps", "3", "--budget-s", "0",
            "--optimizer", "adam:lr=1e-3", "--resample-every", "1",
            "--weighting", "causal:epsilon=1,chunks=4+trace:every=2",
            "--points", "residual=32,initial=16", "--model", '{"width": 8, "depth": 2}',
            "--params", '{"modes": 64, "dt": 0.01}', "--label", "tiny", "--eval-every-s", "0",
            "--md", str(md), "--out", str(tmp_path / "runs")]
    assert periodic.main(argv) == 0
    rows = json.loads(md.with_suffix(".json").read_text())["rows"]
    row = rows["tiny"]
    assert row["status"] == "ok" and row["steps_done"] == 3 and row["bound"] == 1e-3
    assert row["config"]["optimizer"] == "adam:lr=1e-3" and len(row["slabs"]) == 10
    assert len(row["trace"]) == 3 and "--optimizer adam:lr=1e-3" in row["command"]
    text = md.read_text()
    assert "| tiny | kdv |" in text and "Error per tenth" in text
    # --render rewrites the page from the JSON alone
    md.unlink()
    assert periodic.main(["--render", "--md", str(md)]) == 0 and "| tiny | kdv |" in md.read_text()


def test_periodic_benchmark_marches_in_time(tmp_path):
    md = tmp_path / "periodic.md"
    argv = ["--only", "allen-cahn", "--windows", "2", "--steps", "2", "--budget-s", "0",
            "--resample-every", "1",
            "--optimizer", "gn", "--dtype", "float64", "--weighting", "fixed",
            "--points", "residual=32,initial=16", "--model", '{"width": 8, "depth": 2}',
            "--params", '{"modes": 64, "dt": 0.01}', "--no-compile", "--label", "march",
            "--md", str(md), "--out", str(tmp_path / "runs")]
    assert periodic.main(argv) == 0
    row = json.loads(md.with_suffix(".json").read_text())["rows"]["march"]
    assert row["status"] == "ok" and row["steps_done"] == 4
    assert [w["t"] for w in row["windows"]] == [[0.0, 0.5], [0.5, 1.0]]
    # the trace: after each window, the composite's error up to its end
    assert [s for _, s, _ in row["trace"]] == [2, 4] and len(row["slabs"]) == 10
    assert "time marching: 2 windows" in md.read_text()


def test_periodic_benchmark_rejects_bad_options(capsys):
    assert periodic.main(["--points", "residual=many"]) == 2
    assert "--points: expected name=count" in capsys.readouterr().err
    assert periodic.main(["--threads", "0"]) == 2
    assert periodic.main(["--windows", "-1"]) == 2
    assert "--windows: expected a count >= 0" in capsys.readouterr().err
