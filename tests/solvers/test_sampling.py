"""Collocation-point samplers: uniform resampling (today's behaviour, bit for bit) and
residual-based adaptive sampling (RAD, Wu et al. 2023): where it puts the points, its
probabilities, labels kept matched to points, exact resume, errors, the command line."""

import json
import math

import numpy as np
import pytest
import torch

import pinnk
import problems
import solvers
from pinnk import ops
from solvers import ResidualAdaptive, Trainer, TrainingError, Uniform, sampler_from_spec, train
from solvers._sampling import rad_probabilities, select_rows
from solvers._train import CHECKPOINT
from cli_util import assert_one_line_error, run_cli
from train_util import Interrupt

SMALL = {"width": 16, "depth": 2}
QUICK = dict(points=64, model_options=SMALL, export=False, ntk_every=0, log_every=1, steps=40,
             optimizer="adam:lr=1e-2", device="cpu")
CPU = torch.device("cpu")
F64 = torch.float64


def quick(problem, **kw):
    return train(problem, **{**QUICK, **kw})


def convection():
    return problems.get("convection", beta=1.0)


def poisson():
    return problems.get("poisson-1d")


def strip_time(history):
    return {"train": [{k: v for k, v in r.items() if k != "time"} for r in history["train"]],
            "diagnostics": history["diagnostics"]}


def net(problem, seed=0):
    return pinnk.MLP(problem.in_dim, problem.out_dim, 16, 2,
                     generator=torch.Generator().manual_seed(seed), dtype=F64)


def gen(seed):
    return torch.Generator().manual_seed(seed)


# ----------------------------------------------------------- a problem with tensor labels
def _forcing(x):
    return torch.sin(3.0 * x[:, 0]) + x[:, 0]


def _data(x):
    return torch.cos(2.0 * x[:, 0])


class Labelled(pinnk.Problem):
    """Three terms whose labels are tensors computed from their points: a forced residual
    u'' = g (declared a residual), a value term (data) and a derivative label u' = h (not a
    residual). Labels stay matched to points iff target == function(points)."""

    name = "labelled"
    input_names = ("x",)
    output_names = ("u",)
    domain = pinnk.Box((0.0,), (1.0,))
    defaults = pinnk.Defaults(width=8, depth=1, steps=10, points={"forced": 24, "data": 12,
                                                                   "slope": 10})

    def terms(self, n=None, generator=None, dtype=None):
        c = self.counts(n, ["forced", "data", "slope"])
        x = {k: torch.rand(v, 1, generator=generator, dtype=dtype) for k, v in c.items()}
        return [pinnk.Term("forced", ops.laplacian(), x["forced"], _forcing(x["forced"]),
                           residual=True),
                pinnk.Term("data", ops.value(), x["data"], _data(x["data"])),
                pinnk.Term("slope", ops.partial([1]), x["slope"], _data(x["slope"]))]

    def solution(self, x):
        return torch.cos(2.0 * x)


LABELS = {"forced": _forcing, "data": _data, "slope": _data}


def assert_labels_match(terms):
    for t in terms:
        assert isinstance(t._target, torch.Tensor), t.name
        assert torch.equal(t._target, LABELS[t.name](t.points)), t.name


# --------------------------------------------------------------------- where RAD puts points
def _rad_and_candidates(sampler, problem, n, model, seed=3):
    """The RAD sample and, from the same generator state, its uniform candidates."""
    terms = problem.terms(n, gen(1), F64)
    new = sampler.sample(problem, n, gen(seed), dtype=F64, device=CPU, model=model, terms=terms)
    counts = {t.name: n * sampler.candidates if t.is_residual else n for t in terms}
    cand = problem.terms(counts, gen(seed), F64)
    return terms, new, cand


def test_rad_with_a_large_k_keeps_the_points_with_large_residuals():
    p, n = poisson(), 256
    model = net(p)
    _, new, cand = _rad_and_candidates(ResidualAdaptive(k=4, c=0, candidates=8), p, n, model)
    r_cand = ResidualAdaptive.residual_magnitudes(cand[0], model)
    r_new = ResidualAdaptive.residual_magnitudes(new[0], model)
    assert new[0].n == n and cand[0].n == 8 * n
    # the kept points are candidates
    assert bool(torch.isin(new[0].points[:, 0], cand[0].points[:, 0]).all())
    se = float(r_cand.std()) / math.sqrt(n)
    assert float(r_new.mean()) > float(r_cand.mean()) + 6 * se
    assert float(r_new.mean()) > 1.2 * float(r_cand.mean())
    # the boundary term is the uniform draw of the same call
    assert torch.equal(new[1].points, cand[1].points)


@pytest.mark.parametrize("c", [0.0, 1.0])
def test_rad_with_k_zero_is_uniform_over_the_candidates(c):
    p, n, cands = poisson(), 256, 8
    model = net(p)
    _, new, cand = _rad_and_candidates(ResidualAdaptive(k=0, c=c, candidates=cands), p, n, model)
    r_cand = ResidualAdaptive.residual_magnitudes(cand[0], model)
    r_new = ResidualAdaptive.residual_magnitudes(new[0], model)
    m = cands * n
    # standard error of the mean of n of m drawn without replacement (finite-population factor)
    se = float(r_cand.std()) / math.sqrt(n) * math.sqrt((m - n) / (m - 1))
    assert abs(float(r_new.mean()) - float(r_cand.mean())) < 4 * se


def test_choose_with_k_zero_picks_every_candidate_equally_often():
    s = ResidualAdaptive(k=0, c=0)
    r = torch.tensor([0.0, 1.0, 5.0, 0.1, 2.0, 0.0, 3.0, 1e3, 4.0, 0.5], dtype=F64)
    g, reps, n = gen(0), 4000, 3
    counts = torch.zeros(10)
    for _ in range(reps):
        idx = s.choose(r, n, g)
        assert len(set(idx.tolist())) == n and idx.tolist() == sorted(idx.tolist())
        counts[idx] += 1
    q = n / 10
    se = math.sqrt(q * (1 - q) / reps)
    assert float((counts / reps - q).abs().max()) < 4 * se


# ------------------------------------------------------------------ the RAD probabilities
@pytest.mark.parametrize("k,c", [(1.0, 1.0), (2.0, 0.0), (0.0, 0.0), (0.5, 3.0), (4.0, 0.25)])
def test_rad_probabilities_follow_the_formula(k, c):
    r = torch.tensor([0.3, -2.0, 0.0, 1.5, 1e-3, -0.7], dtype=F64)
    expected = r.abs() ** k / (r.abs() ** k).mean() + c
    p = rad_probabilities(r, k, c)
    assert p.dtype == F64 and p.device.type == "cpu"
    torch.testing.assert_close(p, expected, rtol=1e-13, atol=0)


def test_rad_probabilities_edge_cases():
    # all residuals zero: equal weights, also with c = 0 (no 0/0)
    for c in (0.0, 2.0):
        p = rad_probabilities(torch.zeros(5), 2.0, c)
        assert torch.equal(p / p.sum(), torch.full((5,), 0.2, dtype=F64))
    # a large k does not overflow (computed as (|r|/max|r|)^k)
    p = rad_probabilities(torch.tensor([1e30, 1e29, 0.0], dtype=F64), 50.0, 0.0)
    assert bool(torch.isfinite(p).all()) and p[0] > 0 and p[2] == 0
    torch.testing.assert_close(p[1] / p[0], torch.tensor(1e-50, dtype=F64))
    with pytest.raises(FloatingPointError, match="NaN/Inf at 1 of 3"):
        rad_probabilities(torch.tensor([1.0, float("nan"), 0.0]), 1.0, 1.0)


def test_one_draw_follows_the_probabilities():
    s = ResidualAdaptive(k=2, c=0.5)
    r = torch.tensor([0.1, 1.0, 2.0, 0.0, 3.0], dtype=F64)
    q = s.probabilities(r) / s.probabilities(r).sum()
    g, reps = gen(1), 20000
    counts = torch.zeros(5, dtype=F64)
    for _ in range(reps):
        counts[s.choose(r, 1, g)] += 1
    se = torch.sqrt(q * (1 - q) / reps)
    assert bool(((counts / reps - q).abs() < 4 * se).all()), (counts / reps, q)


def test_draws_without_replacement_follow_successive_sampling():
    # n = 2 of m: P(i kept) = q_i + sum_{j != i} q_j q_i / (1 - q_j) (first draw j, then i)
    s = ResidualAdaptive(k=1, c=0.2)
    r = torch.tensor([0.1, 1.0, 2.0, 0.0, 3.0], dtype=F64)
    q = s.probabilities(r) / s.probabilities(r).sum()
    incl = q + torch.stack([sum(q[j] * q[i] / (1 - q[j]) for j in range(5) if j != i)
                            for i in range(5)])
    assert abs(float(incl.sum()) - 2.0) < 1e-12
    g, reps = gen(2), 10000
    counts = torch.zeros(5, dtype=F64)
    for _ in range(reps):
        idx = s.choose(r, 2, g)
        assert idx[0] != idx[1]
        counts[idx] += 1
    se = torch.sqrt(incl * (1 - incl) / reps)
    assert bool(((counts / reps - incl).abs() < 4 * se).all()), (counts / reps, incl)


def test_choose_keeps_everything_when_there_are_no_more_candidates():
    s = ResidualAdaptive()
    assert s.choose(torch.ones(4), 4, gen(0)).tolist() == [0, 1, 2, 3]


def test_choose_fills_up_uniformly_when_too_few_candidates_have_weight():
    # c = 0 and only two non-zero residuals, three points to keep: both are kept, and the third
    # is uniform over the zero-residual candidates
    s = ResidualAdaptive(k=1, c=0)
    r = torch.tensor([0.0, 2.0, 0.0, 0.0, 1.0, 0.0], dtype=F64)
    g, reps = gen(4), 4000
    counts = torch.zeros(6, dtype=F64)
    for _ in range(reps):
        idx = s.choose(r, 3, g)
        assert len(set(idx.tolist())) == 3 and {1, 4} <= set(idx.tolist())
        counts[idx] += 1
    q, se = 0.25, math.sqrt(0.25 * 0.75 / reps)
    assert float((counts[[0, 2, 3, 5]] / reps - q).abs().max()) < 4 * se


def test_residuals_are_evaluated_in_chunks_without_gradients():
    p = poisson()
    model = net(p)
    term = p.terms(100, gen(0), F64)[0]
    whole = ResidualAdaptive.residual_magnitudes(term, model)
    chunked = ResidualAdaptive.residual_magnitudes(term, model, chunk=7)
    assert not whole.requires_grad and whole.dtype == F64 and whole.shape == (100,)
    torch.testing.assert_close(chunked, whole, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(whole, term.residual(model).detach().abs(), rtol=0, atol=0)


@pytest.mark.parametrize("name", ["poisson-1d", "wave-1d", "convection", "euler-smooth"])
def test_rad_keeps_the_names_counts_and_flags_of_the_terms(name):
    p = problems.get(name)
    terms = p.terms(16, gen(0), F64)
    new = ResidualAdaptive(k=2, c=0.5).sample(p, 16, gen(1), dtype=F64, device=CPU,
                                               model=net(p), terms=terms)
    assert [(t.name, t.n, t.is_residual, t.points.dtype) for t in new] == \
        [(t.name, t.n, t.is_residual, t.points.dtype) for t in terms]


# -------------------------------------------------------------------- labels follow points
def test_tensor_labels_stay_matched_to_the_chosen_points():
    p = Labelled()
    terms = p.terms(None, gen(0), F64)
    assert [t.is_residual for t in terms] == [True, False, False]
    assert_labels_match(terms)
    new = ResidualAdaptive(k=4, c=0, candidates=5).sample(p, None, gen(1), dtype=F64, device=CPU,
                                                          model=net(p), terms=terms)
    assert [t.n for t in new] == [24, 12, 10]
    assert [t.is_residual for t in new] == [True, False, False]
    assert_labels_match(new)


def test_select_rows_keeps_labels_and_the_residual_flag():
    p = Labelled()
    forced = p.terms(None, gen(0), F64)[0]
    rows = torch.tensor([5, 0, 7])
    sub = select_rows(forced, rows)
    assert torch.equal(sub.points, forced.points[rows]) and sub.is_residual
    assert torch.equal(sub._target, forced._target[rows])
    pois = poisson().terms(8, gen(0), F64)[0]  # a forced residual with a callable label
    sub = select_rows(pois, slice(2, 5))
    assert sub.is_residual and sub._target is pois._target and sub.n == 3


def test_labels_stay_matched_while_training_with_rad():
    seen = []

    def check(trainer):
        assert_labels_match(trainer.terms)
        seen.append(trainer.terms[0].points.clone())

    quick(Labelled(), sampler="rad:k=2,c=0.1", resample_every=3, steps=10, points=None,
          dtype="float64", callback=check)
    assert not torch.equal(seen[0], seen[3])  # resampled at step 3


# --------------------------------------------------------------- uniform: today's behaviour
def test_no_sampler_uniform_and_the_problem_draw_are_bit_identical():
    opts = dict(resample_every=5, steps=16)
    kept = []
    a = quick(convection(), **opts, callback=lambda tr: kept.append([t.points.clone()
                                                                      for t in tr.terms]))
    b = quick(convection(), sampler=Uniform(), **opts)
    c = quick(convection(), sampler="uniform", **opts)
    assert strip_time(a.history) == strip_time(b.history) == strip_time(c.history)
    for k in a.model.state_dict():
        assert torch.equal(a.model.state_dict()[k], b.model.state_dict()[k])
    # the points are the problem's own draws from the sampling generator (seed + 1) in turn
    g = gen(1)
    draws = [p_.points for p_ in convection().terms(64, g, torch.float32)]
    for step in range(16):
        if step and step % 5 == 0:
            draws = [p_.points for p_ in convection().terms(64, g, torch.float32)]
        assert all(torch.equal(x, y) for x, y in zip(kept[step], draws)), step
    assert a.config["sampler"] == {"kind": "uniform"}


def test_the_first_sample_is_uniform_and_rad_differs_afterwards():
    opts = dict(resample_every=4, steps=9)
    pts = {"u": [], "r": []}
    quick(convection(), callback=lambda tr: pts["u"].append(tr.terms[0].points.clone()), **opts)
    quick(convection(), sampler="rad", callback=lambda tr: pts["r"].append(
        tr.terms[0].points.clone()), **opts)
    assert all(torch.equal(a, b) for a, b in zip(pts["u"][:4], pts["r"][:4]))
    assert not torch.equal(pts["u"][4], pts["r"][4])


# ------------------------------------------------------------------------------ training
@pytest.mark.parametrize("spec", ["rad", "rad:k=2,c=0,candidates=8"])
def test_training_with_rad_decreases_the_loss(spec):
    res = quick(convection(), sampler=spec, resample_every=5)
    L = [sum(r["losses"].values()) for r in res.history["train"]]
    assert len(L) == 40 and all(math.isfinite(v) for v in L)
    assert float(np.mean(L[-5:])) < 0.9 * float(np.mean(L[:5]))
    assert res.config["sampler"] == sampler_from_spec(spec).config()


# -------------------------------------------------------------------------------- resume
@pytest.mark.parametrize("problem,every", [("convection", 7), ("poisson", 4)])
def test_interrupted_and_resumed_rad_run_equals_uninterrupted_run(tmp_path, problem, every):
    make = {"poisson": poisson, "convection": convection}[problem]
    opts = dict(points=32, steps=24, checkpoint_every=4, resample_every=every,
                sampler="rad:k=2,c=0.5,candidates=3", weighting="gradnorm:every=3")
    a = quick(make(), out=tmp_path / "a", **opts)
    with pytest.raises(KeyboardInterrupt):
        quick(make(), out=tmp_path / "b", callback=Interrupt(17), **opts)
    assert torch.load(tmp_path / "b" / CHECKPOINT, weights_only=False)["step"] == 16
    b = quick(make(), out=tmp_path / "b", resume=True, **opts)
    assert strip_time(b.history) == strip_time(a.history)
    for k in a.model.state_dict():
        assert torch.equal(a.model.state_dict()[k], b.model.state_dict()[k]), k
    assert json.loads((tmp_path / "b" / "config.json").read_text())["sampler"] == \
        {"kind": "rad", "k": 2.0, "c": 0.5, "candidates": 3}


def test_resume_keeps_the_residual_flag_of_a_forced_residual(tmp_path):
    # poisson-1d's residual has a label (u'' = f) and is declared a residual; the checkpoint's
    # terms must stay residuals (RAD and GradNorm select the residual terms by this flag)
    quick(poisson(), out=tmp_path, steps=4, checkpoint_every=2)
    t = Trainer(poisson(), **{**QUICK, "steps": 4}, out=tmp_path)
    t.load_checkpoint()
    assert [x.is_residual for x in t.terms] == [True, False]


def test_resume_rejects_a_different_sampler(tmp_path):
    quick(convection(), out=tmp_path, steps=4, resample_every=2, sampler="rad")
    with pytest.raises(ValueError, match="sampler="):
        quick(convection(), out=tmp_path, steps=4, resample_every=2, sampler="rad:k=2",
              resume=True)
    with pytest.raises(ValueError, match="sampler="):
        quick(convection(), out=tmp_path, steps=4, resample_every=2, resume=True)


def test_a_checkpoint_from_before_samplers_resumes_as_uniform(tmp_path):
    opts = dict(steps=4, resample_every=2, checkpoint_every=2)
    with pytest.raises(KeyboardInterrupt):
        quick(convection(), out=tmp_path, callback=Interrupt(2), **opts)
    st = torch.load(tmp_path / CHECKPOINT, weights_only=False)
    assert st["step"] == 2
    del st["config"]["sampler"]
    torch.save(st, tmp_path / CHECKPOINT)
    assert quick(convection(), out=tmp_path, resume=True, **opts).metrics["steps"] == 4
    st = torch.load(tmp_path / CHECKPOINT, weights_only=False)
    del st["config"]["sampler"]
    torch.save(st, tmp_path / CHECKPOINT)
    with pytest.raises(ValueError, match="sampler="):
        quick(convection(), out=tmp_path, steps=4, resample_every=2, sampler="rad", resume=True)


# -------------------------------------------------------------------------------- errors
@pytest.mark.parametrize("kwargs,exc,match", [
    ({"k": -1}, ValueError, r"k: expected a real number >= 0, got -1"),
    ({"k": float("inf")}, ValueError, r"k: expected a real number >= 0, got inf"),
    ({"k": "2"}, TypeError, r"k: expected a real number >= 0, got '2'"),
    ({"k": True}, TypeError, r"k: expected a real number >= 0, got True"),
    ({"c": -0.5}, ValueError, r"c: expected a real number >= 0, got -0.5"),
    ({"c": None}, TypeError, r"c: expected a real number >= 0, got None"),
    ({"candidates": 0}, ValueError, r"candidates: expected an integer >= 1, got 0"),
    ({"candidates": 2.5}, TypeError, r"candidates: expected an integer >= 1, got 2.5"),
])
def test_bad_rad_arguments(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        ResidualAdaptive(**kwargs)


def test_specs_and_their_errors():
    assert sampler_from_spec("uniform") == Uniform()
    assert sampler_from_spec("rad") == ResidualAdaptive()
    s = sampler_from_spec(" rad:k=2, c=0,candidates=8 ")
    assert (s.k, s.c, s.candidates) == (2.0, 0.0, 8)
    assert sampler_from_spec(s.config()) == s and sampler_from_spec(s) is s
    assert sampler_from_spec({"kind": "uniform"}) == Uniform()
    assert repr(s) == "ResidualAdaptive(k=2.0, c=0.0, candidates=8)"
    with pytest.raises(ValueError, match=r"sampler: unknown kind 'bogus'; expected one of "
                                         r"uniform, rad"):
        sampler_from_spec("bogus")
    with pytest.raises(ValueError, match=r"sampler: unknown option\(s\) foo for 'rad'; "
                                         r"expected k, c, candidates, local, scale"):
        sampler_from_spec("rad:foo=1")
    with pytest.raises(ValueError, match=r"unknown option\(s\) k for 'uniform'; expected no "
                                         r"options"):
        sampler_from_spec("uniform:k=1")
    with pytest.raises(ValueError, match=r"sampler: cannot read 'k' in 'rad:k'; expected "
                                         r"key=value"):
        sampler_from_spec("rad:k")
    with pytest.raises(ValueError, match=r"unknown kind None"):
        sampler_from_spec({"k": 1})
    with pytest.raises(ValueError, match=r"candidates: expected an integer >= 1, got 0"):
        sampler_from_spec("rad:candidates=0")
    with pytest.raises(TypeError, match=r"k: expected a real number >= 0, got 'x'"):
        sampler_from_spec("rad:k=x")
    with pytest.raises(ValueError, match=r"local: expected an integer >= 0, got -1"):
        sampler_from_spec("rad:local=-1")
    with pytest.raises(TypeError, match=r"local: expected an integer >= 0, got 1.5"):
        sampler_from_spec("rad:local=1.5")
    with pytest.raises(ValueError, match=r"scale: expected a real number in \(0, 1\], got 0"):
        sampler_from_spec("rad:local=2,scale=0")
    s = sampler_from_spec("rad:k=1,c=0,local=4,scale=0.05")
    assert (s.local, s.scale) == (4, 0.05) and sampler_from_spec(s.config()) == s
    assert "local" not in ResidualAdaptive().config()  # unchanged for runs without them
    for bad in (3, "", None):
        with pytest.raises(TypeError, match="sampler: expected a spec string"):
            sampler_from_spec(bad)


def test_rad_without_resampling_is_an_error():
    with pytest.raises(ValueError, match=r"sampler: 'rad' .*needs resample_every > 0, got "
                                         r"resample_every=0"):
        Trainer(convection(), sampler="rad", **QUICK)
    with pytest.raises(ValueError, match="sampler: unknown kind"):
        Trainer(convection(), sampler="radial", resample_every=2, **QUICK)
    Trainer(convection(), sampler="uniform", **QUICK)  # uniform without resampling is fine


class Poisonable(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.net = pinnk.MLP(2, 1, 8, 1, generator=gen(0))
        self.poisoned = False

    def forward(self, x):
        y = self.net(x)
        return y * float("nan") if self.poisoned else y


def test_a_nan_residual_at_the_candidates_stops_training():
    model = Poisonable()

    def poison(trainer):
        if trainer.step == 3:
            model.poisoned = True

    opts = {k: v for k, v in QUICK.items() if k != "model_options"}
    with pytest.raises(TrainingError, match=r"sampler 'rad': term 'residual': the residual is "
                                            r"NaN/Inf at .* candidate points at step 4"):
        train(convection(), model, **{**opts, "steps": 8}, sampler="rad", resample_every=4,
              callback=poison)


def test_a_nan_residual_at_the_first_adaptive_draw_stops_training():
    model = Poisonable()
    model.poisoned = True
    opts = {k: v for k, v in QUICK.items() if k != "model_options"}
    with pytest.raises(TrainingError, match=r"sampler 'rad': term 'residual': the residual is "
                                            r"NaN/Inf at .* at step 0; training stopped"):
        train(convection(), model, **opts, sampler="rad", resample_every=4, adaptive_start=True)


# ---------------------------------------------------------------------------- command line
TINY = ["--steps", "12", "--points", "16", "--width", "8", "--depth", "1", "--quiet",
        "--no-export", "--device", "cpu", "--ntk-every", "0"]


@pytest.mark.parametrize("argv,fragment", [
    (["--sampler", "bogus", "--resample-every", "2"], "sampler: unknown kind 'bogus'"),
    (["--sampler", "rad:k=-1", "--resample-every", "2"],
     'sampler "rad:k=-1": k: expected a real number >= 0, got -1'),
    (["--sampler", "rad:size=3", "--resample-every", "2"], "expected k, c, candidates"),
    (["--sampler", "rad"], "needs resample_every > 0"),
])
def test_bad_sampler_options_exit_2_with_one_line(capsys, tmp_path, monkeypatch, argv, fragment):
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(capsys, "train", "convection", *TINY, *argv)
    assert code == 2
    assert_one_line_error(err, fragment)
    assert not (tmp_path / "runs").exists()


def test_sampler_in_a_config_file(capsys, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"problem": "convection", "sampler": "rad:candidates=0",
                               "resample_every": 2}))
    code, _, err = run_cli(capsys, "train", "--config", bad, "--out", tmp_path / "x")
    assert code == 2
    assert_one_line_error(err, "candidates: expected an integer >= 1")

    good = tmp_path / "good.json"
    good.write_text(json.dumps({"problem": "convection", "sampler": "rad:k=2",
                                "resample-every": 4}))
    code, _, err = run_cli(capsys, "train", "--config", good, *TINY, "--out", tmp_path / "a")
    assert code == 0, err
    cfg = json.loads((tmp_path / "a" / "config.json").read_text())
    assert cfg["sampler"] == {"kind": "rad", "k": 2.0, "c": 1.0, "candidates": 4}
    assert cfg["resample_every"] == 4

    # the run's own config.json repeats it; the command line overrides the sampler
    code, _, err = run_cli(capsys, "train", "--config", tmp_path / "a", *TINY, "--out",
                           tmp_path / "b")
    assert code == 0, err
    a, b = (json.loads((tmp_path / d / "history.json").read_text()) for d in ("a", "b"))
    assert strip_time(a) == strip_time(b)
    code, _, err = run_cli(capsys, "train", "--config", tmp_path / "a", *TINY, "--sampler",
                           "uniform", "--out", tmp_path / "c")
    assert code == 0, err
    assert json.loads((tmp_path / "c" / "config.json").read_text())["sampler"] == \
        {"kind": "uniform"}


def test_cli_resume_of_a_rad_run(capsys, tmp_path):
    out = tmp_path / "run"
    argv = ["train", "convection", "--sampler", "rad:k=2,c=0", "--resample-every", "3",
            "--checkpoint-every", "4", *TINY, "--out", out]
    assert run_cli(capsys, *argv)[0] == 0
    full = json.loads((out / "history.json").read_text())
    assert torch.load(out / CHECKPOINT, weights_only=False)["config"]["sampler"]["kind"] == "rad"
    # --resume of a finished run reads the sampler from config.json and changes nothing
    code, _, err = run_cli(capsys, "train", "--out", out, "--resume", "--quiet", "--no-export",
                           "--device", "cpu")
    assert code == 0, err
    assert strip_time(json.loads((out / "history.json").read_text())) == strip_time(full)
    code, _, err = run_cli(capsys, "train", "--out", out, "--resume", "--quiet", "--sampler",
                           "uniform", "--device", "cpu")
    assert code == 2
    assert_one_line_error(err, "sampler=")


def test_help_mentions_the_sampler(capsys):
    code, out, _ = run_cli(capsys, "train", "--help")
    flat = " ".join(out.split())  # argparse wraps the help text
    assert code == 0 and "--sampler" in out
    assert "rad[:k=K,c=C,candidates=M,local=L,scale=S]" in flat


# ------------------------------------------------------- local candidates for a thin layer
class Spike(pinnk.Problem):
    """One residual term r = u (a value, zero label) on [0, 1] and nothing else."""

    name = "spike"
    input_names = ("x",)
    output_names = ("u",)
    domain = pinnk.Box((0.0,), (1.0,))
    defaults = pinnk.Defaults(width=8, depth=1, steps=10, points={"r": 200})

    def terms(self, n=None, generator=None, dtype=None):
        c = self.counts(n, ["r"])
        x = torch.rand(c["r"], 1, generator=generator, dtype=dtype)
        return [pinnk.Term("r", ops.value(), x, residual=True)]

    def solution(self, x):
        return torch.zeros_like(x)


class SpikeNet(torch.nn.Module):
    """u(x) = 1 + 1000 exp(−((x − x*)/w)²): a residual 1000 times larger in a layer of width
    w = 1e-3 around x* = 0.6137."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.tensor(1e-3, dtype=F64))

    def forward(self, x):
        return 1.0 + 1000.0 * torch.exp(-((x - 0.6137) / self.w) ** 2)


@pytest.mark.parametrize("local", [0, 4])
def test_rad_local_candidates_find_a_layer_thinner_than_the_candidates_spacing(local):
    p, model, n = Spike(), SpikeNet(), 200
    s = ResidualAdaptive(k=1, c=0, candidates=4, local=local, scale=0.01)
    terms = p.terms(n, gen(1), F64)
    hits = []
    for seed in range(5):
        new = s.sample(p, n, gen(seed), dtype=F64, device=CPU, model=model, terms=terms)
        x = new[0].points[:, 0]
        assert new[0].n == n and bool(((x >= 0) & (x <= 1)).all())
        hits.append(int(((x - 0.6137).abs() < 3e-3).sum()))
    if local:
        assert min(hits) >= 20, hits  # the layer is found at every draw
    else:
        assert max(hits) <= 8, hits  # 800 uniform candidates put ~5 points in it


def test_rad_local_candidates_skip_terms_with_labels_at_their_points():
    p = Labelled()
    model = net(p)
    s = ResidualAdaptive(k=1, c=1, candidates=3, local=2)
    terms = p.terms(None, gen(1), F64)
    new = s.sample(p, None, gen(4), dtype=F64, device=CPU, model=model, terms=terms)
    assert_labels_match(new)
    cand = p.terms({"forced": 24 * 3, "data": 12, "slope": 10}, gen(4), F64)
    assert bool(torch.isin(new[0].points[:, 0], cand[0].points[:, 0]).all())


def test_a_checkpoint_from_before_a_new_problem_parameter_resumes_at_its_default(tmp_path):
    """A parameter the problem class gained after the checkpoint was written (here sod's
    compression_viscosity) takes its default, what the old run computed; another value is
    refused."""
    sod = lambda **kw: problems.get("sod", viscosity=0.01, **kw)  # noqa: E731
    opts = dict(steps=4, checkpoint_every=2, points=16)
    with pytest.raises(KeyboardInterrupt):
        quick(sod(), out=tmp_path, callback=Interrupt(2), **opts)
    st = torch.load(tmp_path / CHECKPOINT, weights_only=False)
    del st["config"]["problem"]["params"]["compression_viscosity"]
    torch.save(st, tmp_path / CHECKPOINT)
    with pytest.raises(ValueError, match="problem="):
        quick(sod(compression_viscosity=1e-3), out=tmp_path, resume=True, **opts)
    assert quick(sod(), out=tmp_path, resume=True, **opts).metrics["steps"] == 4


# --------------------------------------------- the first draw from a trained network; the last
def _spike_trainer(**kw):
    opts = dict(optimizer="adam:lr=1e-4", steps=4, points=200, resample_every=2,
                sampler="rad:k=1,c=0,candidates=4,local=4,scale=0.01", export=False,
                ntk_every=0, device="cpu", dtype="float64")
    return Trainer(Spike(), SpikeNet(), **{**opts, **kw})


def test_adaptive_start_draws_the_first_points_from_the_given_network():
    """With adaptive_start the first points are the sampler's draw from the given network (the
    spike's thin layer is found at once); without it they are uniform (it is missed)."""
    near = lambda tr: int(((tr.terms[0].points[:, 0] - 0.6137).abs() < 3e-3).sum())  # noqa: E731
    assert near(_spike_trainer(adaptive_start=True)) >= 20
    assert near(_spike_trainer()) <= 8
    assert _spike_trainer(adaptive_start=True).config()["adaptive_start"] is True


def test_hold_last_keeps_the_points_of_the_last_steps():
    """Redraws every 2 steps of 9, none in the last 3: at steps 2, 4 and 6 only."""
    pts = []
    quick(convection(), steps=9, resample_every=2, hold_last=3, sampler="rad",
          callback=lambda tr: pts.append(tr.terms[0].points.clone()))
    changed = [s for s in range(1, 9) if not torch.equal(pts[s], pts[s - 1])]
    assert changed == [2, 4, 6]
    pts.clear()
    quick(convection(), steps=9, resample_every=2,
          callback=lambda tr: pts.append(tr.terms[0].points.clone()))
    assert [s for s in range(1, 9) if not torch.equal(pts[s], pts[s - 1])] == [2, 4, 6, 8]


def test_interrupted_and_resumed_run_with_adaptive_start_and_hold_last(tmp_path):
    p = convection()
    opts = dict(points=32, steps=12, checkpoint_every=4, resample_every=3, sampler="rad",
                adaptive_start=True, hold_last=5, export=False, ntk_every=0, log_every=1,
                optimizer="adam:lr=1e-2", device="cpu")
    a = train(p, net(p, 3), out=tmp_path / "a", **opts)
    with pytest.raises(KeyboardInterrupt):
        train(p, net(p, 3), out=tmp_path / "b", callback=Interrupt(9), **opts)
    b = train(p, net(p, 3), out=tmp_path / "b", resume=True, **opts)
    assert strip_time(b.history) == strip_time(a.history)
    for k in a.model.state_dict():
        assert torch.equal(a.model.state_dict()[k], b.model.state_dict()[k]), k
    with pytest.raises(ValueError, match="hold_last="):
        train(p, net(p, 3), out=tmp_path / "b", resume=True, **{**opts, "hold_last": 4})


@pytest.mark.parametrize("kwargs,exc,match", [
    (dict(adaptive_start=True), ValueError, "adaptive_start: draws the first points from a "
                                            "trained network; pass model="),
    (dict(adaptive_start=1), TypeError, "adaptive_start: expected a bool, got int"),
    (dict(hold_last=-1), ValueError, "hold_last"),
    (dict(hold_last=2, resample_every=0, sampler=None), ValueError,
     "hold_last: keeps the points of the last 2 steps and needs resample_every > 0"),
])
def test_bad_adaptive_start_and_hold_last(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        quick(convection(), **{"resample_every": 2, "sampler": "rad", **kwargs})


def test_adaptive_start_needs_an_adaptive_sampler():
    p = convection()
    with pytest.raises(ValueError, match="adaptive_start: the first points are drawn by an "
                                         "adaptive sampler"):
        train(p, net(p), steps=2, resample_every=1, adaptive_start=True, export=False)


def test_continuation_draws_adaptively_from_the_second_stage_on(tmp_path):
    res = solvers.train_continuation(
        "poisson-1d", "a", [1.0, 2.0], steps=2, out=tmp_path, model_options=SMALL,
        points=32, resample_every=1, sampler="rad", adaptive_start=True, hold_last=1,
        export=False, ntk_every=0, optimizer="adam:lr=1e-3")
    assert [r.config["adaptive_start"] for r in res] == [False, True]
    assert [r.config["hold_last"] for r in res] == [1, 1]
    with pytest.raises(TypeError, match="adaptive_start: expected a bool, got int"):
        solvers.train_continuation("poisson-1d", "a", [1.0], steps=1, adaptive_start=1)
