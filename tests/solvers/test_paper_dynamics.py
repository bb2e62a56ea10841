"""``pinnk paper prop4|seed002|batches`` in quick mode: files written, data consistent."""

import json
import math

import pytest

from solvers import _cli
from solvers.paper import get

EXPERIMENTS = ("prop4", "seed002", "batches")


@pytest.fixture(scope="module")
def outputs(tmp_path_factory):
    out = tmp_path_factory.mktemp("paper")
    for name in EXPERIMENTS:
        assert _cli.main(["paper", name, "--out", str(out), "--quiet"]) == 0
    return out


def load(out, name):
    return json.loads((out / f"{name}.json").read_text())


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_files_and_header(outputs, name):
    module = get(name)
    assert module.NAME == name and module.TITLE and module.CLAIM
    payload = load(outputs, name)
    assert payload["experiment"] == name and payload["mode"] == "quick"
    assert payload["verdict"] and all(isinstance(v, bool) for v in payload["verdict"].values())
    md = (outputs / f"{name}.md").read_text()
    for claim, held in payload["verdict"].items():
        assert f"| {claim} | {'yes' if held else 'no'} |" in md
    pngs = sorted(outputs.glob(f"{name}-*.png"))
    assert pngs and all(p.stat().st_size > 1000 for p in pngs)
    for p in pngs:
        assert f"]({p.name})" in md


def test_prop4_data_are_consistent(outputs):
    payload = load(outputs, "prop4")
    d = payload["data"]
    n = d["setup"]["points"]
    assert len(d["x"]) == n and all(-3 <= v <= 3 for v in d["x"])
    for enc in ("wo coding", "w coding"):
        for w in d["setup"]["widths"]:
            A = d["fluctuation"][enc][str(w)]
            fl = A["fluctuation"]
            assert len(fl) == n and len(A["cos0"]) == n
            assert max(fl) == pytest.approx(A["max"])
            assert all(-1 <= c <= 1 for c in A["cos0"])
            assert A["loss_end"] < A["loss0"]  # training happened
        G = d["growth"][enc]
        assert len(G["runs"]) == 2 * n
        agree = [r["agrees"] for r in G["runs"]]
        assert G["sign_agreement"] == pytest.approx(sum(agree) / len(agree))
        for r in G["runs"]:
            assert r["agrees"] == (math.copysign(1, r["delta_df"]) == r["predicted_sign"])
            assert abs(r["f1"] - r["f0"]) >= 0.9 * abs(r["label"] - r["f0"]) - 1e-9 \
                or r["steps"] == d["setup"]["max_single_point_steps"]
    key = [k for k in payload["verdict"] if k.startswith("wo coding")][0]
    G0 = d["growth"]["wo coding"]
    assert payload["verdict"][key] == (G0["clear_runs"] > 0 and G0["clear_sign_agreement"] >= 0.9)


def test_seed002_data_are_consistent(outputs):
    payload = load(outputs, "seed002")
    d = payload["data"]
    widths = d["setup"]["widths"]
    assert len(widths) >= 3
    import numpy as np
    final = [d["final_drift"][str(w)] for w in widths]
    for w, f in zip(widths, final):
        runs = d["runs"][str(w)]
        assert f == pytest.approx(np.mean([r["drift"][-1] for r in runs]))
        for r in runs:
            assert r["drift"][0] == 0.0
            assert len(r["loss"]) == d["setup"]["steps"] + 1
            assert len(r["bound"]) == len(r["steps"]) == len(r["predicted_loss"])
            assert r["bound"][0] == pytest.approx(r["loss"][0], rel=1e-9)
            assert r["predicted_loss"][0] == pytest.approx(r["loss"][0], rel=1e-9)
    assert d["slope"] == pytest.approx(np.polyfit(np.log(widths), np.log(final), 1)[0])
    key = [k for k in payload["verdict"] if k.startswith("kernel drift")][0]
    assert payload["verdict"][key] == (-0.8 <= d["slope"] <= -0.3)


def test_batches_data_are_consistent(outputs):
    payload = load(outputs, "batches")
    d = payload["data"]
    E, S = d["setup"]["epochs"], len(d["setup"]["seeds"])
    for s in ("normal", "adaptive", "worst", "orthogonal"):
        L = d["loss"][s]
        assert len(L) == S and all(len(c) == E + 1 for c in L)
        assert d["final_loss_mean"][s] == pytest.approx(sum(c[-1] for c in L) / S)
    # every run of a seed starts from the same network
    for k in range(S):
        assert len({d["loss"][s][k][0] for s in d["loss"]}) == 1
    # the strategies did what they say: orthogonal pairs are the closest to 90 degrees
    c = d["mean_abs_cos_pair"]
    assert c["orthogonal"] < c["normal"] < c["worst"]
    assert d["mean_cos_pair"]["adaptive"] < d["mean_cos_pair"]["normal"]
    assert d["best"] == min(d["final_loss_mean"], key=d["final_loss_mean"].get)
    assert payload["verdict"]["'orthogonal' reaches the lowest mean final loss of the four"] == \
        (d["best"] == "orthogonal")
