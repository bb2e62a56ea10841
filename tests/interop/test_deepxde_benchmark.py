"""The callback-cost benchmark runs end to end on DeepXDE's example problems (tiny budgets; the
figures themselves are not asserted)."""

import json

import pytest

pytest.importorskip("deepxde")

from pinnk.benchmarks import deepxde_callback as bench  # noqa: E402


def test_every_problem_builds_and_its_terms_match_deepxde_losses():
    """Each adapted example problem is a model the bridge accepts (its conditions included)."""
    import numpy as np
    import torch

    from pinnk.interop import deepxde as pdx

    for name in bench.PROBLEMS:
        model = bench._build(name, 0)
        ts = pdx.terms(model)
        losses = model.outputs_losses_train(model.data.train_x, model.data.train_y, None)[1]
        ours = torch.stack([(t.residual(model.net) ** 2).mean() for t in ts]).detach()
        assert np.allclose(ours.cpu().numpy(), losses.detach().cpu().numpy(), rtol=1e-4,
                           atol=0), name


def test_benchmark_runs(capsys):
    assert bench.main(["--problems", "poisson_robin_1d,helmholtz_hard", "--iterations", "3",
                       "--repeats", "1", "--configs", "2:4,1:all", "--threads", "1",
                       "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["problem"] for r in rows] == ["poisson_robin_1d", "helmholtz_hard"]
    robin, helmholtz = rows
    assert [c["updates"] for c in robin["configs"]] == [2, 4]  # train begin, then every 2 / 1
    assert [c["updates"] for c in helmholtz["configs"]] == [0, 0]  # one loss term: no updates
    for r in rows:
        assert r["ms_per_iteration"] > 0
        for c in r["configs"]:
            assert c["overhead"] >= 0 and c["s_per_update"] >= 0


def test_benchmark_rejects_bad_options(capsys):
    assert bench.main(["--problems", "nope"]) == 2
    assert bench.main(["--configs", "0:5"]) == 2
    assert bench.main(["--configs", "100:x"]) == 2
    assert bench.main(["--iterations", "0"]) == 2
    assert "error: --problems: unknown ['nope']" in capsys.readouterr().err
