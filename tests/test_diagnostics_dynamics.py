"""Linearised training dynamics, the λ_min loss bound, sample angles and batch strategies
(pinnk.diagnostics), checked in float64 against independent references."""

import math

import pytest
import torch

import pinnk
from oracle import jacobian_oracle, rel_err
from pinnk import diagnostics as dg
from pinnk import ops


class RandomFeatures(torch.nn.Module):
    """f(x) = tanh(x Aᵀ + b) w: linear in its only parameter w, so the NTK is constant and the
    linearised dynamics are exact."""

    def __init__(self, d, m, generator):
        super().__init__()
        self.register_buffer("A", torch.randn(m, d, generator=generator))
        self.register_buffer("b", torch.randn(m, generator=generator))
        self.w = torch.nn.Parameter(torch.randn(m, 1, generator=generator) / math.sqrt(m))

    def forward(self, x):
        return torch.tanh(x @ self.A.T + self.b) @ self.w


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def two_terms(n=12, seed=0):
    x = torch.rand(n, 1, generator=gen(seed)) * 6 - 3
    return [pinnk.Term("u", ops.value(), x, torch.sin(x[:, 0])),
            pinnk.Term("du", ops.directional([1.0]), x, torch.cos(x[:, 0]))]


def explicit_theta_tilde(model, terms, weights):
    """Θ̃ = Θ · diag(λ_i/n_i) from Jacobians built one row at a time (tests/oracle.py)."""
    J = torch.cat([jacobian_oracle(lambda t=t: t.residual(model), model) for t in terms])
    d = torch.cat([torch.full((t.n,), float(w) / t.n) for t, w in zip(terms, weights)])
    return (J @ J.T) * d[None, :]


def stacked_residuals(model, terms):
    return torch.cat([t.residual(model).detach() for t in terms])


# ----------------------------------------------------------------------- linearised dynamics
def test_prediction_is_exact_for_a_model_linear_in_its_parameters(f64):
    model, terms = RandomFeatures(1, 48, gen(1)), two_terms()
    weights = [2.0, 0.5]
    mu_max = dg.linearized_prediction(model, terms, 0, 1.0, weights).lambda_max
    lr = 1.0 / mu_max
    cmp = dg.compare_linearized(model, terms, 40, lr, weights, record_every=5)
    assert cmp.steps.tolist() == list(range(0, 41, 5))
    assert float(cmp.relative_deviation.max()) < 1e-8
    for name in ("u", "du"):
        assert rel_err(cmp.predicted_residuals[name], cmp.actual_residuals[name]) < 1e-8
    # the caller's model is untouched; the trained copy moved
    assert not torch.equal(cmp.model.w, model.w)
    assert float(cmp.actual_loss[-1]) < float(cmp.actual_loss[0])


def test_prediction_equals_the_explicit_matrix_power_and_exponential(f64):
    model, terms = RandomFeatures(1, 40, gen(2)), two_terms(n=10, seed=3)
    weights = [1.0, 3.0]
    A = explicit_theta_tilde(model, terms, weights)   # independent Jacobian path
    r0 = stacked_residuals(model, terms)
    lr = 0.5 / float(torch.linalg.eigvals(A).real.max())
    gd = dg.linearized_prediction(model, terms, [0, 3, 17], lr, weights)
    for k, row in zip((0, 3, 17), range(3)):
        want = torch.linalg.matrix_power(torch.eye(20) - lr * A, k) @ r0
        got = torch.cat([gd.residuals["u"][row], gd.residuals["du"][row]])
        assert rel_err(got, want) < 1e-9
    flow = dg.linearized_prediction(model, terms, [0.0, 2.5, 40.0], lr, weights, mode="flow")
    for t, row in zip((0.0, 2.5, 40.0), range(3)):
        want = torch.linalg.matrix_exp(-lr * t * A) @ r0
        got = torch.cat([flow.residuals["u"][row], flow.residuals["du"][row]])
        assert rel_err(got, want) < 1e-9
        loss = 1.0 / (2 * 10) * (want[:10] ** 2).sum() + 3.0 / (2 * 10) * (want[10:] ** 2).sum()
        assert abs(float(flow.loss[row]) - float(loss)) < 1e-10 * float(loss)


def test_an_untrained_term_follows_the_trained_one_exactly(f64):
    # weight 0 on ∂f: the derivative is not trained but moves with f (Prop. 4's mechanism)
    model, terms = RandomFeatures(1, 48, gen(4)), two_terms(seed=5)
    mu_max = dg.linearized_prediction(model, terms, 0, 1.0, [1.0, 0.0]).lambda_max
    cmp = dg.compare_linearized(model, terms, 30, 1.5 / mu_max, [1.0, 0.0], record_every=10)
    moved = cmp.actual_residuals["du"][-1] - cmp.actual_residuals["du"][0]
    assert float(moved.norm()) > 1e-3
    assert rel_err(cmp.predicted_residuals["du"], cmp.actual_residuals["du"]) < 1e-8
    assert float(cmp.prediction.term_losses["du"].abs().max()) == 0.0


def test_prediction_matches_training_of_a_wide_ntk_mlp(f64):
    """A wide NTK-parametrised MLP trains like its linearisation: over the first 20 steps at
    η = 0.5/μ_max (the loss falls by ~40%) the loss curves agree within 1e-2 relative."""
    terms = two_terms(n=12, seed=6)
    model = pinnk.MLP(1, 1, width=1024, depth=2, parametrization="ntk", generator=gen(7))
    mu_max = dg.linearized_prediction(model, terms, 0, 1.0).lambda_max
    cmp = dg.compare_linearized(model, terms, 20, 0.5 / mu_max, record_every=5)
    assert float(cmp.actual_loss[-1]) < 0.8 * float(cmp.actual_loss[0])
    assert cmp.max_relative_deviation < 1e-2
    # a narrow network departs further from its linearisation
    narrow = pinnk.MLP(1, 1, width=16, depth=2, parametrization="ntk", generator=gen(7))
    mu_n = dg.linearized_prediction(narrow, terms, 0, 1.0).lambda_max
    assert dg.compare_linearized(narrow, terms, 20, 0.5 / mu_n, record_every=5) \
        .max_relative_deviation > cmp.max_relative_deviation


# ----------------------------------------------------------------------------------- bound
def full_rank_problem(seed=8):
    x = torch.rand(6, 2, generator=gen(seed)) * 2 - 1
    model = RandomFeatures(2, 200, gen(seed + 1))
    return model, x


def test_bound_holds_for_the_linearised_dynamics(f64):
    model, x = full_rank_problem()
    terms = [pinnk.Term("u", ops.value(), x, x[:, 0] * x[:, 1]),
             pinnk.Term("dx", ops.partial([1, 0]), x, x[:, 1])]
    lr = 1.0 / dg.linearized_prediction(model, terms, 0, 1.0, [1.0, 2.0]).lambda_max
    for mode, steps in (("gd", 200), ("flow", [0.0, 1.0, 10.0, 100.0, 250.5])):
        p = dg.linearized_prediction(model, terms, steps, lr, [1.0, 2.0], mode=mode)
        assert p.lambda_min > 1e-6  # a full-rank kernel, so the bound is not trivial
        assert bool((p.loss <= p.bound * (1 + 1e-12)).all())
        assert float(p.loss[-1]) < float(p.bound[-1])  # strict for a generic start
        b = dg.loss_bound(model, terms, steps, lr, [1.0, 2.0], mode=mode)
        assert torch.allclose(b.bound, p.bound) and b.lambda_min == p.lambda_min
    # λ_min is that of the paper's Θ* with weights λ_i / n_i
    spec = dg.spectrum(model, terms, [1.0 / 6, 2.0 / 6])
    assert abs(spec["lambda_min"] - p.lambda_min) < 1e-10 * spec["lambda_max"]


def test_bound_is_attained_along_the_lowest_eigen_direction(f64):
    model, x = full_rank_problem(seed=11)
    n = x.shape[0]
    terms = [pinnk.Term("u", ops.value(), x, torch.zeros(n))]
    K = pinnk.ntk(model, terms)
    theta = K.matrix()
    mu, V = torch.linalg.eigh(theta / n)
    with torch.no_grad():
        f0 = model(x)[:, 0]
    # choose labels so that D^{1/2} r_0 = v_min (D = I/n): r_0 = sqrt(n) v_min
    tight = [pinnk.Term("u", ops.value(), x, f0 - math.sqrt(n) * V[:, 0])]
    lr = 1.0 / float(mu[-1])
    for mode in ("gd", "flow"):
        b = dg.loss_bound(model, tight, 50, lr, mode=mode)
        p = dg.linearized_prediction(model, tight, 50, lr, mode=mode)
        assert b.tight_rate
        assert abs(b.lambda_min - float(mu[0])) < 1e-12 * float(mu[-1])
        assert float((p.loss - b.bound).abs().max()) < 1e-10 * b.loss0
        expected = (1 - lr * mu[0]) ** (2 * 50) if mode == "gd" else torch.exp(-2 * lr * mu[0] * 50)
        assert abs(float(b.bound[-1]) - float(expected) * b.loss0) < 1e-10 * b.loss0
    # beyond η(μ_min + μ_max) <= 2 the rate is set by the top eigenvalue: ρ = η μ_max − 1
    big = dg.loss_bound(model, tight, 5, 2.5 / float(mu[-1]))
    assert not big.tight_rate
    assert abs(big.contraction - 1.5) < 1e-9


# --------------------------------------------------------------------------- sample angles
@pytest.mark.parametrize("operator", [ops.value(), ops.directional([1.0, -0.5])])
def test_sample_angles_equal_the_normalised_oracle_block(f64, operator):
    x = torch.rand(9, 2, generator=gen(12)) * 2 - 1
    model = pinnk.MLP(2, 1, width=24, depth=2, generator=gen(13))
    term = pinnk.Term("t", operator, x)
    J = jacobian_oracle(lambda: term.residual(model), model)
    G = J @ J.T
    want = G / torch.sqrt(G.diagonal()[:, None] * G.diagonal()[None, :])
    C = dg.sample_angles(model, term)
    assert C.shape == (9, 9) and C.dtype == torch.float64
    assert rel_err(C, want) < 1e-10
    assert torch.equal(C, C.T) and torch.equal(C.diagonal(), torch.ones(9))
    rows = dg.sample_angles(model, term, [4, 0], implementation="jacobian")
    assert rel_err(rows, want[[4, 0]]) < 1e-10


# ------------------------------------------------------------------------ batch strategies
@pytest.fixture
def batch_setup(f64):
    x = torch.rand(24, 2, generator=gen(14)) * 2 * math.pi - math.pi
    y = torch.sin(x[:, 0]) * torch.cos(x[:, 1])
    model = pinnk.MLP(2, 1, width=32, depth=2, generator=gen(15))
    term = pinnk.Term("u", ops.value(), x, y)
    return model, term, dg.sample_angles(model, term)


@pytest.mark.parametrize("name", sorted(dg.BATCH_STRATEGIES))
def test_every_strategy_returns_distinct_valid_indices(batch_setup, name):
    model, term, C = batch_setup
    s = dg.batch_strategy(name)
    assert s.name == name
    for b in (1, 2, 5, 24):
        idx = s.select(model, term, b, gen(0), anchor=3)
        assert idx.dtype == torch.int64 and idx.shape == (b,)
        assert len(set(idx.tolist())) == b and 0 <= int(idx.min()) and int(idx.max()) < 24
        assert int(idx[0]) == 3
    a = s.select(model, term, 4, gen(9))
    assert torch.equal(a, s.select(model, term, 4, gen(9)))  # reproducible with a generator
    if s.uses_angles:  # precomputed cosines give the same choice
        assert torch.equal(s.select(model, term, 4, anchor=7),
                           s.select(model, term, 4, anchor=7, cosines=C))


def test_paper_pairs_pick_by_the_cosine_to_the_anchor(batch_setup):
    model, term, C = batch_setup
    for anchor in (0, 5, 17):
        row = C[anchor].clone()
        row[anchor] = float("nan")
        others = [k for k in range(24) if k != anchor]
        lowest = min(others, key=lambda k: float(row[k]))
        highest = max(others, key=lambda k: float(row[k]))
        closest_to_zero = min(others, key=lambda k: abs(float(row[k])))
        assert int(dg.Adaptive().select(model, term, 2, anchor=anchor)[1]) == lowest
        assert int(dg.Worst().select(model, term, 2, anchor=anchor)[1]) == highest
        assert int(dg.Orthogonal().select(model, term, 2, anchor=anchor)[1]) == closest_to_zero


def mean_abs_cos(C, idx):
    sub = C[idx][:, idx]
    b = len(idx)
    return float((sub.abs().sum() - sub.diagonal().abs().sum()) / (b * (b - 1)))


def test_orthogonal_batches_are_closer_to_orthogonal_than_random_ones(batch_setup):
    model, term, C = batch_setup
    ortho, normal = [], []
    g = gen(21)
    for anchor in range(24):
        ortho.append(mean_abs_cos(C, dg.Orthogonal().select(model, term, 4, anchor=anchor,
                                                           cosines=C)))
        normal.append(mean_abs_cos(C, dg.Normal().select(model, term, 4, g, anchor=anchor)))
    assert sum(ortho) / 24 < 0.8 * sum(normal) / 24
    worst = [mean_abs_cos(C, dg.Worst().select(model, term, 4, anchor=a, cosines=C))
             for a in range(24)]
    assert sum(worst) / 24 > sum(normal) / 24


def test_largest_residual_picks_the_top_residuals(batch_setup):
    model, term, _ = batch_setup
    r = term.residual(model).detach().abs()
    top = set(torch.topk(r, 5).indices.tolist())
    assert set(dg.LargestResidual().select(model, term, 5).tolist()) == top
    with_anchor = dg.LargestResidual().select(model, term, 3, anchor=int(r.argmin()))
    assert int(with_anchor[0]) == int(r.argmin())
    assert set(with_anchor[1:].tolist()) == set(torch.topk(r, 2).indices.tolist())


# ------------------------------------------------------------------------------ bad inputs
def test_bad_inputs_raise_clear_errors(f64):
    model, terms = RandomFeatures(1, 8, gen(0)), two_terms(n=4)
    cases = [
        (dict(steps=-1), ValueError, "steps"),
        (dict(steps="10"), TypeError, "steps"),
        (dict(steps=[0, 1.5]), ValueError, "integer step counts"),
        (dict(steps=[]), ValueError, "steps"),
        (dict(lr=0.0), ValueError, "lr"),
        (dict(lr="a"), TypeError, "lr"),
        (dict(mode="euler"), ValueError, "mode"),
        (dict(weights=[0.0, 0.0]), ValueError, "weights: all weights are zero"),
        (dict(weights=[1.0]), ValueError, "weights"),
        (dict(kernel="K"), TypeError, "kernel"),
    ]
    for kwargs, exc, msg in cases:
        args = {"steps": 3, "lr": 0.1, **{k: v for k, v in kwargs.items() if k in ("steps", "lr")}}
        extra = {k: v for k, v in kwargs.items() if k not in ("steps", "lr")}
        with pytest.raises(exc, match=msg):
            dg.linearized_prediction(model, terms, args["steps"], args["lr"], **extra)
    with pytest.raises(ValueError, match="kernel: was built"):
        dg.linearized_prediction(model, terms, 3, 0.1, kernel=pinnk.ntk(model, terms[:1]))
    with pytest.raises(ValueError, match="steps"):
        dg.compare_linearized(model, terms, 0, 0.1)
    with pytest.raises(ValueError, match="record_every"):
        dg.compare_linearized(model, terms, 3, 0.1, record_every=0)
    with pytest.raises(TypeError, match="model"):
        dg.linearized_prediction("net", terms, 3, 0.1)
    term = terms[0]
    with pytest.raises(TypeError, match="term"):
        dg.sample_angles(model, "u")
    with pytest.raises(ValueError, match="rows"):
        dg.sample_angles(model, term, [0, 4])
    with pytest.raises(TypeError, match="rows"):
        dg.sample_angles(model, term, [0.5])
    s = dg.Orthogonal()
    with pytest.raises(ValueError, match="batch_size"):
        s.select(model, term, 5)
    with pytest.raises(ValueError, match="batch_size"):
        s.select(model, term, 0)
    with pytest.raises(TypeError, match="batch_size"):
        s.select(model, term, 2.0)
    with pytest.raises(ValueError, match="anchor"):
        s.select(model, term, 2, anchor=4)
    with pytest.raises(TypeError, match="generator"):
        s.select(model, term, 2, generator=0)
    with pytest.raises(ValueError, match="cosines"):
        s.select(model, term, 2, cosines=torch.zeros(3, 3))
    with pytest.raises(TypeError, match="term"):
        s.select(model, [term], 2)
    with pytest.raises(ValueError, match="unknown batch strategy 'best'"):
        dg.batch_strategy("best")
    with pytest.raises(TypeError, match="name"):
        dg.batch_strategy(3)
