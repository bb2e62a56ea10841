"""Time marching (solvers._marching): windows, their terms, the composite model, a marched run."""

import json
import math

import pytest
import torch

import pinnk
import problems
from solvers import TimeWindow, WindowedModel, train_marching, window_edges


def _net(seed, out=1, d=2):
    return pinnk.MLP(d, out, width=8, depth=2, generator=torch.Generator().manual_seed(seed),
                     dtype=torch.float64)


def test_window_edges():
    assert window_edges(0.0, 1.0, 4) == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert window_edges(0.0, 1.0, [0.1, 0.5]) == [0.0, 0.1, 0.5, 1.0]
    with pytest.raises(ValueError, match="windows: expected increasing times"):
        window_edges(0.0, 1.0, [0.5, 0.1])
    with pytest.raises(ValueError, match="windows: expected increasing times"):
        window_edges(0.0, 1.0, [1.0])
    with pytest.raises(ValueError, match="windows"):
        window_edges(0.0, 1.0, 0)
    with pytest.raises(TypeError, match="windows"):
        window_edges(0.0, 1.0, True)


def test_first_window_keeps_the_base_terms_in_its_time_range():
    base = problems.get("allen-cahn")
    win = TimeWindow(base, 0.0, 0.25)
    g = torch.Generator().manual_seed(0)
    terms = {t.name: t for t in win.terms({"residual": 200, "initial": 50}, g, torch.float64)}
    ref = {t.name: t for t in base.terms({"residual": 200, "initial": 50},
                                         torch.Generator().manual_seed(0), torch.float64)}
    t = terms["residual"].points[:, 1]
    assert 0.0 <= float(t.min()) and float(t.max()) <= 0.25
    torch.testing.assert_close(terms["residual"].points[:, 1], ref["residual"].points[:, 1] / 4)
    torch.testing.assert_close(terms["residual"].points[:, 0], ref["residual"].points[:, 0])
    # the first window's initial condition is the base's own: u0 = x² cos πx
    x = terms["initial"].points
    torch.testing.assert_close(terms["initial"].target_values(),
                               x[:, 0] ** 2 * torch.cos(math.pi * x[:, 0]))
    assert win.domain.lower == (-1.0, 0.0) and win.domain.upper == (1.0, 0.25)
    assert win.params["window"] == [0.0, 0.25]
    assert win.term_names() == base.term_names()


@pytest.mark.parametrize("name", ["wave-1d", "euler-smooth"])
def test_later_window_takes_its_initial_labels_from_the_model(name):
    """Value and derivative initial conditions (wave-1d's u_t(x, 0)), one output of several
    (euler-smooth's ρ, u, p): every label is the term's operator applied to the model at t0."""
    base = problems.get(name)
    ti = base.time_index
    t_lo, t_hi = base.domain.lower[ti], base.domain.upper[ti]
    t0 = t_lo + 0.4 * (t_hi - t_lo)
    model = _net(1, out=base.out_dim, d=base.in_dim)
    win = TimeWindow(base, t0, t_hi, model)
    terms = win.terms(32, torch.Generator().manual_seed(2), torch.float64)
    initial = [t for t in terms if bool((t.points[:, ti] == t0).all())]
    assert len(initial) >= 2
    for term in initial:
        expect = term.operator(model, term.points).detach()
        torch.testing.assert_close(term.target_values(), expect, rtol=1e-12, atol=1e-12)
    for term in terms:
        t = term.points[:, ti]
        assert float(t.min()) >= t0 - 1e-12 and float(t.max()) <= t_hi + 1e-12


def test_time_window_rejects_bad_windows():
    base = problems.get("allen-cahn")
    with pytest.raises(ValueError, match=r"t0, t1: expected 0.0 <= t0 < t1 <= 1.0"):
        TimeWindow(base, 0.5, 0.2, _net(0))
    with pytest.raises(ValueError, match=r"t0, t1"):
        TimeWindow(base, 0.5, 1.5, _net(0))
    with pytest.raises(ValueError, match="initial: a window that starts after"):
        TimeWindow(base, 0.5, 1.0)
    with pytest.raises(TypeError, match="initial: expected a torch.nn.Module"):
        TimeWindow(base, 0.5, 1.0, lambda x: x)
    with pytest.raises(ValueError, match="base: 'poisson-1d' has no time coordinate"):
        TimeWindow(problems.get("poisson-1d"), 0.0, 1.0)
    with pytest.raises(TypeError, match="base: expected a pinnk.Problem"):
        TimeWindow("allen-cahn", 0.0, 1.0)


def test_windowed_model_takes_each_time_from_its_window():
    models = [_net(k) for k in range(3)]
    comp = WindowedModel(models, [0.0, 0.2, 0.5, 1.0], time_index=1)
    t = torch.tensor([0.0, 0.1, 0.2, 0.3, 0.5, 0.99, 1.0], dtype=torch.float64)
    x = torch.stack([torch.linspace(-1, 1, 7, dtype=torch.float64), t], dim=1)
    window = [0, 0, 1, 1, 2, 2, 2]  # t_k belongs to window k; the last edge to the last window
    with torch.no_grad():
        got = comp(x)
        for i, k in enumerate(window):
            values = [float(m(x[i:i + 1])[0, 0]) for m in models]
            assert abs(float(got[i, 0]) - values[k]) <= 1e-14
            assert all(abs(float(got[i, 0]) - v) > 1e-6 for j, v in enumerate(values) if j != k)
        assert comp(x[:0]).shape == (0, 1)
    with pytest.raises(ValueError, match="edges: expected 4 edges for 3 models"):
        WindowedModel(models, [0.0, 1.0], time_index=1)


def test_marching_carries_the_solution_across_windows():
    """Convection u_t + β u_x = 0 (β = 1), two windows of Gauss–Newton: each window fits, the
    second starts where the first ended, and the composite error is that of a good fit."""
    prob = problems.get("convection", beta=1.0, periodic_embedding=True)
    seen = []
    res = train_marching(prob, 2, steps=[12, 8], optimizer="gn", dtype="float64",
                         points={"residual": 200, "initial": 64},
                         model_options={"width": 16, "depth": 2}, ntk_every=0, export=False,
                         device="cpu", callback=lambda tr, k: seen.append(k))
    assert seen == [0] * 12 + [1] * 8
    assert res.edges == [0.0, 0.5, 1.0]
    assert [w["steps"] for w in res.metrics["windows"]] == [12, 8]
    assert res.metrics["steps"] == 20
    first, second = res.model.models
    # the second window's initial labels are the first network's values at t = 0.5
    win = TimeWindow(prob, 0.5, 1.0, first)
    init = {t.name: t for t in win.terms(16, torch.Generator().manual_seed(0))}["initial"]
    with torch.no_grad():
        torch.testing.assert_close(init.target_values(),
                                   first(init.points.double())[:, 0].to(init.points.dtype))
        # both windows fit: the composite matches the solution on the whole interval
        x = prob.domain.grid(41, dtype=torch.float64)[0]
        err = (res.model(x) - prob.solution(x)).norm() / prob.solution(x).norm()
    assert float(err) < 1e-2
    assert abs(float(err) - res.metrics["relative_l2"]["u"]) < 0.5 * float(err) + 1e-3
    assert not any(p.requires_grad for p in res.model.parameters())


def test_marching_budget_and_argument_errors(tmp_path):
    prob = problems.get("convection", beta=1.0, periodic_embedding=True)
    kw = dict(optimizer="adam", points={"residual": 32, "initial": 16},
              model_options={"width": 8, "depth": 1}, ntk_every=0, export=False, device="cpu")
    res = train_marching(prob, 2, steps=50, budget_s=1e-6, out=tmp_path / "m", **kw)
    assert (tmp_path / "m" / "window-1" / "metrics.json").exists()
    assert json.loads((tmp_path / "m" / "march.json").read_text())["steps"] == \
        res.metrics["steps"]
    # each window stops within its first steps past its share of the budget (the trainer's
    # clock is read once per step)
    assert all(1 <= w["steps"] <= 2 for w in res.metrics["windows"])
    with pytest.raises(ValueError, match=r"steps: expected one count per window \(2\), got 3"):
        train_marching(prob, 2, steps=[1, 1, 1], **kw)
    with pytest.raises(ValueError, match="budget_s: expected a positive number"):
        train_marching(prob, 2, steps=1, budget_s=0, **kw)
    with pytest.raises(ValueError, match="problem: 'poisson-1d' has no time coordinate"):
        train_marching(problems.get("poisson-1d"), 2, steps=1)


class _Stop(Exception):
    """A march interrupted (a killed process)."""


@pytest.mark.parametrize("cut", [(0, 3), (1, 0), (1, 3), (2, 2)])
def test_marching_resume_ends_as_an_uninterrupted_march(tmp_path, cut):
    """resume: a march stopped in any window (before or after a checkpoint) and resumed ends
    with the networks, windows' losses and march.json of one that never stopped, training only
    the steps it had not."""
    prob = problems.get("convection", beta=1.0, periodic_embedding=True)
    kw = dict(steps=[5, 4, 4], optimizer="gn", dtype="float64", checkpoint_every=1,
              points={"residual": 32, "initial": 16}, model_options={"width": 8, "depth": 1},
              ntk_every=0, export=False, device="cpu")
    calls = []
    ref = train_marching(prob, 3, out=tmp_path / "ref", callback=lambda tr, k: calls.append(k),
                         **kw)

    def stop(tr, k):
        if (k, tr.step) == cut:
            raise _Stop
        calls.append(k)

    n_ref = len(calls)
    with pytest.raises(_Stop):
        train_marching(prob, 3, out=tmp_path / "cut", callback=stop, **kw)
    n_cut = len(calls) - n_ref
    res = train_marching(prob, 3, out=tmp_path / "cut", resume=True,
                         callback=lambda tr, k: calls.append(k), **kw)
    assert len(calls) - n_ref - n_cut == n_ref - n_cut  # only what was left
    assert [w["final_loss"] for w in res.metrics["windows"]] == [
        w["final_loss"] for w in ref.metrics["windows"]]
    x = prob.domain.grid(21, dtype=torch.float64)[0]
    with torch.no_grad():
        assert torch.equal(res.model(x), ref.model(x))
    march = json.loads((tmp_path / "cut" / "march.json").read_text())
    assert march["relative_l2"] == ref.metrics["relative_l2"]
    with pytest.raises(ValueError, match="resume: a march with a wall-time budget"):
        train_marching(prob, 3, out=tmp_path / "cut", resume=True, budget_s=10.0, **kw)
    with pytest.raises(ValueError, match=r"resume: needs out="):
        train_marching(prob, 3, resume=True, **kw)


class _Terminal(pinnk.Problem):
    """u_t = 0 with u(x, 1) = 0: a final-time condition, which only the last window holds."""

    name = "terminal"
    input_names, output_names, time_index = ("x", "t"), ("u",), 1
    domain = pinnk.Box((0.0, 0.0), (1.0, 1.0))

    def terms(self, n=None, generator=None, dtype=None):
        x = self.domain.sample(8, generator, dtype)
        xf = x.clone()
        xf[:, 1] = 1.0
        return [pinnk.Term("residual", pinnk.ops.partial([0, 1]), x),
                pinnk.Term("final", pinnk.ops.value(), xf, torch.zeros(8, dtype=xf.dtype))]

    def solution(self, x):
        return torch.zeros(x.shape[0], 1, dtype=x.dtype)


def test_a_final_time_term_belongs_to_the_last_window_only():
    last = {t.name: t for t in TimeWindow(_Terminal(), 0.5, 1.0, _net(0)).terms()}
    assert bool((last["final"].points[:, 1] == 1.0).all()) and last["final"].n == 8
    with pytest.raises(ValueError, match="base: term 'final' holds at the final time 1.0, "
                                         r"which the window \[0.0, 0.5\] does not reach"):
        TimeWindow(_Terminal(), 0.0, 0.5).terms()
