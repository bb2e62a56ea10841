"""`pinnk paper prop1|prop2|prop3` in quick mode: files, data consistency and the verdicts."""

import copy
import json
import math
import statistics

import pytest
import torch

import pinnk
from pinnk import ops
from solvers import _cli
from solvers.paper import _common, prop1, prop2, prop3

OURS = ("prop1", "prop2", "prop3")


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """Run each experiment once through the CLI (quick mode); {name: (out dir, JSON payload)}."""
    out = {}
    for name in OURS:
        folder = tmp_path_factory.mktemp(name)
        rc = _cli.main(["paper", name, "--out", str(folder), "--quiet"])
        assert rc == 0, name
        out[name] = (folder, json.loads((folder / f"{name}.json").read_text()))
    return out


@pytest.mark.parametrize("name", OURS)
def test_files_written(results, name):
    folder, payload = results[name]
    md = (folder / f"{name}.md").read_text()
    pngs = sorted(p.name for p in folder.glob(f"{name}-*.png"))
    assert pngs, "no figure written"
    for png in pngs:
        assert (folder / png).stat().st_size > 1000
        assert f"]({png})" in md
    assert payload["experiment"] == name and payload["mode"] == "quick"
    assert payload["claim"] and payload["title"]
    assert payload["verdict"] and all(isinstance(v, bool) for v in payload["verdict"].values())
    for claim, held in payload["verdict"].items():
        assert f"| {claim} | {'yes' if held else 'no'} |" in md
    assert payload["data"]["full_mode_estimate_s"] > 0
    assert "Estimated full-mode run time" in md


def test_unknown_experiment_exits_2(capsys):
    assert _cli.main(["paper", "nope"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "'nope'" in err[0] and all(n in err[0] for n in OURS)


def test_negative_seed_exits_2_before_running(capsys, tmp_path):
    assert _cli.main(["paper", "prop1", "--seed", "-1", "--out", str(tmp_path), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["pinnk: error: seed: expected an integer >= 0, got -1"]
    assert not any(tmp_path.iterdir())


# ----------------------------------------------------------------------------------- prop1
def test_prop1_data_consistent(results):
    _, payload = results["prop1"]
    d = payload["data"]
    widths = d["setup"]["widths"]
    G = len(d["grid"])
    analytic = {b: torch.tensor(v, dtype=torch.float64) for b, v in d["analytic"].items()}
    # the stored infinite-width curves are the analytic kernels at (x0, grid)
    x0 = torch.tensor([[d["x0"]]], dtype=torch.float64)
    grid = torch.tensor(d["grid"], dtype=torch.float64)[:, None]
    dd = pinnk.analytic.derivative_ntk(ops.partial([1]), x0, ops.partial([1]), grid,
                                       d["setup"]["depth"], "tanh", 1.0, 0.1)[0]
    assert torch.allclose(dd, analytic["theta_double_prime"], rtol=1e-8, atol=1e-10)
    recomputed = {}
    for w in widths:
        p = d["per_width"][str(w)]
        for b in prop1.BLOCKS:
            init = torch.tensor(p["curves_init"][b], dtype=torch.float64)
            assert init.shape == (len(d["seeds"]), G)
            spread = float(init.std(0).norm() / analytic[b].norm())
            assert spread == pytest.approx(p["relative_spread"]["init"][b], rel=1e-9)
            err = [float((c - analytic[b]).norm() / analytic[b].norm()) for c in init]
            assert sum(err) / len(err) == pytest.approx(p["analytic_error"][b], rel=1e-9)
        recomputed[w] = p
    narrow, wide = recomputed[min(widths)], recomputed[max(widths)]
    v = payload["verdict"]
    key = next(k for k in v if "approach the infinite-width" in k)
    assert v[key] == (all(wide["analytic_error"][b] < narrow["analytic_error"][b]
                          for b in prop1.BLOCKS)
                      and wide["analytic_error_matrix"] < narrow["analytic_error_matrix"])
    key = next(k for k in v if "moves less" in k)
    assert v[key] == (wide["drift"] < narrow["drift"])
    # quick mode, widths 32 vs 256: the finite-width fluctuations are far apart
    assert all(v.values()), v


def test_prop1_curves_are_kernel_blocks():
    """Θ'(x0, x) is ∂_{x0} Θ(x0, x) (paper A.1), checked on the empirical kernel by differences."""
    g = torch.Generator().manual_seed(3)
    model = pinnk.MLP(1, 1, 16, 2, "tanh", "ntk", generator=g, dtype=torch.float64)
    grid = torch.linspace(-2, 2, 7, dtype=torch.float64)[:, None]
    h = 1e-5
    c = prop1.kernel_curves(model, torch.tensor([[0.3]], dtype=torch.float64), grid)
    up = prop1.kernel_curves(model, torch.tensor([[0.3 + h]], dtype=torch.float64), grid)
    dn = prop1.kernel_curves(model, torch.tensor([[0.3 - h]], dtype=torch.float64), grid)
    fd = (up["curves"]["theta"] - dn["curves"]["theta"]) / (2 * h)
    assert torch.allclose(fd, c["curves"]["theta_prime"], rtol=1e-6, atol=1e-8)
    M = c["matrix"]
    assert torch.allclose(M, M.T) and float(torch.linalg.eigvalsh(M)[0]) > -1e-10


# ----------------------------------------------------------------------------------- prop2
def test_prop2_data_consistent(results):
    _, payload = results["prop2"]
    d = payload["data"]
    rows = d["per_seed"]
    assert len(rows) == len(d["seeds"]) == d["setup"]["seeds"]
    ratios = [math.log10(max(r["final_regular_loss_gradient"], 1e-300))
              - math.log10(max(r["final_regular_loss_regular"], 1e-300)) for r in rows]
    assert ratios == pytest.approx(d["log10_final_ratio"], abs=1e-9)
    med = statistics.median(ratios)
    assert med == pytest.approx(d["median_log10_final_ratio"], abs=1e-9)
    v = payload["verdict"]
    assert v[next(k for k in v if "lambda_min" in k)] == all(
        r["lambda_min_theta_star"] < r["lambda_min_theta"] for r in rows)
    assert v[next(k for k in v if "slow the regular loss" in k)] == (med > 0)
    # Cauchy interlacing: Θ is a principal sub-matrix of Θ* (unit weights)
    for r in rows:
        assert r["lambda_min_theta_star"] <= r["lambda_min_theta"] + 1e-12
        assert r["lambda_max_theta_star"] >= r["lambda_max_theta"] - 1e-12
    # the curves start at the same regular loss for both runs (same init and points)
    c = d["curves"]
    assert c["regular"]["geomean"][0] == pytest.approx(c["gradient"]["geomean"][0], rel=1e-12)
    assert len(c["regular"]["geomean"]) == len(d["steps"])


def test_prop2_eigenvalues_match_jacobian_oracle(results):
    """λ_min of seed 0 recomputed from materialised Jacobians (independent of the fast path)."""
    _, payload = results["prop2"]
    d = payload["data"]
    seed, cfg = d["seeds"][0], d["setup"]
    g = torch.Generator().manual_seed(seed)
    terms, _, _ = prop2.circle_data(cfg["points"], g)
    model = pinnk.MLP(2, 1, cfg["width"], cfg["depth"], "tanh", "ntk", generator=g,
                      dtype=torch.float64)
    J = torch.cat([pinnk._kernel.jacobian_rows(model, t.operator, t.points) for t in terms])
    n = cfg["points"]
    ev_star = torch.linalg.eigvalsh(J @ J.T)
    ev = torch.linalg.eigvalsh(J[:n] @ J[:n].T)
    row = d["per_seed"][0]
    assert row["lambda_min_theta"] == pytest.approx(float(ev[0]), rel=1e-7, abs=1e-13)
    assert row["lambda_min_theta_star"] == pytest.approx(float(ev_star[0]), rel=1e-6, abs=1e-13)


def test_prop2_linearised_prediction_tracks_wide_network():
    """The constant-kernel GD prediction of the regular loss agrees with a wide network."""
    g = torch.Generator().manual_seed(1)
    terms, x, labels = prop2.circle_data(4, g)
    model = pinnk.MLP(2, 1, 1024, 2, "tanh", "ntk", generator=g, dtype=torch.float64)
    K = pinnk.ntk(model, terms)
    eta = 4 / float(K.eigvalsh()[-1])
    with torch.no_grad():
        r0 = torch.cat([t.residual(model) for t in terms])
    pred = prop2.linearised_regular_loss(K.matrix(), r0, 4, eta, [0, 5, 20])
    hist = _common.train_full_batch(model, x, labels, torch.ones(3, dtype=torch.float64),
                                    steps=20, optimizer="gd", lr=eta, record=[0, 5, 20])
    assert torch.allclose(pred, hist["losses"][:, 0], rtol=0.05)
    assert float(pred[-1]) < float(pred[0])


# ----------------------------------------------------------------------------------- prop3
def test_prop3_data_consistent(results):
    _, payload = results["prop3"]
    d = payload["data"]
    rows = d["sweep"]
    lg = [r["lambda_g"] for r in rows]
    assert lg == sorted(lg) and len(rows) == len(d["setup"]["grid"]) + 1
    for r in rows:
        assert r["w_r"] + r["w_g"] == pytest.approx(1.0)
        assert r["w_g"] / r["w_r"] == pytest.approx(r["lambda_g"], rel=1e-6)
        # the recorded last-step loss is the loss of the trained network; the compared value
        # is its geometric mean over the last 10% of the steps (within the recorded range)
        assert r["recheck_value_mse"] == pytest.approx(r["value_mse_last_step"], rel=1e-5,
                                                       abs=1e-12)
        assert r["value_mse"] > 0 and r["derivative_mse"] > 0
    rule = d["trace_rule"]
    tr = rule["traces"]
    assert rule["lambda_g"] == pytest.approx(tr[0] / (tr[1] + tr[2]), rel=1e-9)
    assert rule["per_term"] == pytest.approx([sum(tr) / t for t in tr], rel=1e-9)
    assert sum(r["is_trace_rule"] for r in rows) == 1
    values = [r["value_mse"] for r in rows]
    best = values.index(min(values))
    assert d["best_lambda_g"] == lg[best]
    v = payload["verdict"]
    assert v[next(k for k in v if "interior minimum" in k)] == (0 < best < len(rows) - 1)
    decades = abs(math.log10(lg[best]) - math.log10(rule["lambda_g"]))
    assert v[next(k for k in v if "half a decade" in k)] == (decades <= 0.5)


def test_prop3_trace_rule_matches_diagonals():
    """The trace-rule λ_g from explicit per-point gradient norms (no kernel object)."""
    g = torch.Generator().manual_seed(0)
    terms, _, _ = prop2.circle_data(5, g, torch.float32)
    model = pinnk.MLP(2, 1, 8, 2, "tanh", "standard", generator=g)
    rule = prop3.trace_rule_lambda_g(model, terms)
    m64 = copy.deepcopy(model).double()
    tr = []
    for t in terms:
        J = pinnk._kernel.jacobian_rows(m64, t.operator, t.points.double())
        tr.append(float((J * J).sum()))
    assert rule["lambda_g"] == pytest.approx(tr[0] / (tr[1] + tr[2]), rel=1e-9)


# ---------------------------------------------------------------------------------- helpers
def test_partial_losses_match_terms():
    g = torch.Generator().manual_seed(2)
    terms, x, labels = prop2.circle_data(6, g)
    model = pinnk.MLP(2, 1, 12, 2, "tanh", "ntk", generator=g, dtype=torch.float64)
    fast = _common.partial_losses(model, x, labels)
    slow = torch.stack([t.loss(model) for t in terms])
    assert torch.allclose(fast, slow, rtol=1e-12, atol=1e-15)
    with pytest.raises(ValueError, match="labels"):
        _common.partial_losses(model, x, torch.zeros(6, 4, dtype=torch.float64))


def test_log_steps():
    s = _common.log_steps(1000, 30)
    assert s[0] == 0 and s[-1] == 1000 and s == sorted(set(s)) and len(s) <= 31
    assert _common.log_steps(0) == [0]
    with pytest.raises(ValueError, match="steps"):
        _common.log_steps(-1)
