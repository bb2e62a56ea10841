"""The benchmark scripts run end to end (tiny sizes; the figures themselves are not asserted)."""

import json

import pytest

from pinnk.benchmarks import ntk as ntk_bench


def test_ntk_benchmark_runs_and_agrees(capsys):
    assert ntk_bench.main(["--n", "6", "--width", "12", "--repeats", "1", "--threads", "1",
                           "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["case"] for r in rows] == ["[f, d_h f]", "[f, laplacian f]"]
    for r in rows:
        assert r["rel_diff"] <= 1e-10
        assert r["jacobian_s"] > 0 and r["structured_s"] > 0
        assert r["jacobian_peak_bytes"] >= 0 and r["structured_peak_bytes"] >= 0


def test_ntk_benchmark_rejects_bad_options(capsys):
    assert ntk_bench.main(["--n", "0"]) == 2
    assert ntk_bench.main(["--threads", "0"]) == 2


@pytest.mark.slow
def test_train_step_benchmark_runs(capsys):
    from solvers.benchmarks import train_step

    assert train_step.main(["--points", "64", "--steps", "2", "--repeats", "1", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["deepxde_s_per_step"] > 0 and out["pinnk_compiled_s_per_step"] > 0
