"""Allen–Cahn, KdV and Kuramoto–Sivashinsky: the terms, the periodicity, and the spectral
reference, whose residual (from its own spectral derivatives) is small at sampled points."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import pinnk
import problems

NAMES = ["allen-cahn", "kdv", "kuramoto-sivashinsky"]
ORDER = {"allen-cahn": 2, "kdv": 3, "kuramoto-sivashinsky": 4}


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def reference_residual(problem, x, t):
    """The residual of the reference with every derivative taken from its Fourier series (x) and
    its Hermite interpolant (t): no finite differences."""
    ref = problem.reference()
    values = {k: ref.derivative(x, t, x_order=p, t_order=q)
              for k, (p, q) in problem.derivatives.items()}
    return problem.residual_from(values), values


@pytest.mark.parametrize("name, params", [
    ("allen-cahn", {}), ("kdv", {}), ("kuramoto-sivashinsky", {}),
    ("kuramoto-sivashinsky", {"case": "chaotic", **problems.KuramotoSivashinsky.CHAOTIC}),
])
def test_reference_satisfies_the_pde_at_sampled_points(name, params):
    """|R| relative to the size of the largest term of the residual, at random points of the
    space-time box away from t = 0 (where the Allen–Cahn reference resolves u0's kink only to
    algebraic order)."""
    problem = problems.get(name, **params)
    rng = np.random.default_rng(3)
    lo, hi = problem.domain.lower, problem.domain.upper
    x = rng.uniform(lo[0], hi[0], 400)
    t = rng.uniform(0.05, hi[1], 400)
    r, v = reference_residual(problem, x, t)
    scale = max(float(np.max(np.abs(val))) for k, val in v.items() if k != "u")
    # measured: 1.7e-11, 8.6e-11, 4.2e-10 and (chaotic KS, 8 saved steps per Hermite interval)
    # 1.2e-8
    tol = 1e-6 if params else {"allen-cahn": 1e-9, "kdv": 1e-9, "kuramoto-sivashinsky": 1e-8}[name]
    assert float(np.max(np.abs(r))) < tol * scale, (float(np.max(np.abs(r))), scale)
    # the residual term's own function, given the same derivatives, agrees
    term = problem.terms(4, gen(), torch.float64)[0]
    tv = {k: torch.as_tensor(val) for k, val in v.items()}
    torch.testing.assert_close(term.operator.fn(None, **tv), torch.as_tensor(r))


@pytest.mark.parametrize("name", NAMES)
def test_reference_starts_at_the_initial_condition_and_is_periodic(name):
    problem = problems.get(name)
    terms = {t.name: t for t in problem.terms(64, gen(1), torch.float64)}
    ini = terms["initial"]
    u0 = problem.solution(ini.points)[:, 0]
    # u0 of Allen–Cahn has a kink at x = ±1: its truncated Fourier series is accurate to ~1e-6
    tol = 1e-5 if name == "allen-cahn" else 1e-12
    torch.testing.assert_close(u0, ini.target_values(), atol=tol, rtol=0)
    x = problem.domain.sample(32, gen(2), torch.float64)
    shifted = x + torch.tensor([problem.period, 0.0], dtype=torch.float64)
    torch.testing.assert_close(problem.solution(shifted), problem.solution(x), atol=1e-12,
                               rtol=0)


@pytest.mark.parametrize("name", NAMES)
def test_residual_operator_on_a_smooth_function(name):
    """The derivative labels of every order (up to 4) reach the residual: on u = sin(πx + t) the
    operator equals the residual written out by hand."""
    problem = problems.get(name)
    op = problem.residual_operator()
    assert op.order == ORDER[name] and not op.linear
    x = problem.domain.sample(16, gen(4), torch.float64)
    r = op(lambda y: torch.sin(math.pi * y[:, 0] + y[:, 1]).unsqueeze(-1), x)
    s, c = torch.sin(math.pi * x[:, 0] + x[:, 1]), torch.cos(math.pi * x[:, 0] + x[:, 1])
    pi = math.pi
    if name == "allen-cahn":
        want = c + 1e-4 * pi ** 2 * s + 5 * s ** 3 - 5 * s
    elif name == "kdv":
        want = c + s * pi * c + 0.022 ** 2 * (-pi ** 3 * c)
    else:
        want = c + 5 * s * pi * c + 0.5 * (-pi ** 2 * s) + 0.005 * pi ** 4 * s
    torch.testing.assert_close(r, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", NAMES)
def test_periodic_embedding_or_periodic_terms(name):
    """With the embedding (the default) the network is periodic with every derivative and there
    is no boundary term; without it, one Periodic term per derivative order below the PDE's."""
    k = ORDER[name]
    embedded = problems.get(name)
    assert embedded.term_names() == ["residual", "initial"]
    spec = embedded.defaults.embedding
    assert spec["kind"] == "periodic" and spec["dims"] == [0]
    assert spec["periods"] == [embedded.period]
    plain = problems.get(name, periodic_embedding=False)
    want = ["residual", "initial"] + ["periodic" + "_" * (j > 0) + "x" * j for j in range(k)]
    assert plain.term_names() == want and plain.defaults.embedding is None
    terms = {t.name: t for t in plain.terms(16, gen(), torch.float64)}
    emb = pinnk.PeriodicEmbedding(2, spec["dims"], spec["periods"], spec["harmonics"])
    periodic_net = pinnk.MLP(2, 1, width=8, depth=2, embedding=emb, generator=gen(),
                             dtype=torch.float64)
    net = pinnk.MLP(2, 1, width=8, depth=2, generator=gen(), dtype=torch.float64)
    for j in range(k):
        t = terms[want[2 + j]]
        assert isinstance(t.operator, problems.Periodic)
        assert t.order == j and t.target_values() is None
        assert bool((t.points[:, 0] == plain.domain.lower[0]).all())
        with torch.no_grad():
            assert float(t.residual(periodic_net).abs().max()) < 1e-10
            assert float(t.residual(net).abs().max()) > 1e-6


def test_periodic_terms_go_through_the_kernel():
    problem = problems.get("kuramoto-sivashinsky", periodic_embedding=False)
    model = pinnk.MLP(2, 1, width=6, depth=2, generator=gen(), dtype=torch.float64)
    terms = problem.terms(3, gen(), torch.float64)
    theta = pinnk.ntk(model, terms, "jacobian").matrix()
    assert theta.shape == (18, 18)
    torch.testing.assert_close(theta, theta.T)
    torch.testing.assert_close(pinnk.ntk(model, terms, "auto").matrix(), theta, rtol=1e-10,
                               atol=1e-10)


def test_parameters_and_set_ups():
    ks = problems.get("kuramoto-sivashinsky", case="chaotic",
                      **problems.KuramotoSivashinsky.CHAOTIC)
    assert ks.domain.lower == (0.0, 0.0) and ks.domain.upper == (2 * math.pi, 1.0)
    assert ks.params["alpha"] == 6.25 and ks.defaults.depth == 5
    x = torch.tensor([[0.3, 0.0]], dtype=torch.float64)
    torch.testing.assert_close(ks.initial(x), torch.cos(x[:, 0]) * (1 + torch.sin(x[:, 0])))
    kdv = problems.get("kdv", mu=0.05)  # Raissi et al. 2019: u_t + u u_x + 0.0025 u_xxx = 0
    assert kdv.pde.linear[3] == pytest.approx(-0.0025)
    ac = problems.get("allen-cahn", diffusion=1e-3, reaction=2.0)
    assert ac.pde.linear == (2.0, 0.0, 1e-3) and ac.pde.reaction == (0.0, 0.0, 0.0, -2.0)
    assert problems.get("kdv", modes=128, dt=1e-3).reference().modes == 128
    with pytest.raises(ValueError, match="case: expected 'regular' or 'chaotic'"):
        problems.get("kuramoto-sivashinsky", case="turbulent")
    with pytest.raises(ValueError, match="modes: expected an even number >= 4"):
        problems.get("kdv", modes=255)
    with pytest.raises(ValueError, match="gamma: expected a positive number"):
        problems.get("kuramoto-sivashinsky", gamma=0.0)
    with pytest.raises(ValueError, match="mu: expected a positive number"):
        problems.get("kdv", mu=-0.1)
    with pytest.raises(ValueError, match="dt: expected a positive number"):
        problems.get("allen-cahn", dt=0.0)
    with pytest.raises(ValueError, match=r"values: missing derivative\(s\) \['u_xx'\]"):
        ac.residual_from({"u": 0.0, "u_t": 0.0})


def test_reference_is_solved_once_and_not_pickled():
    import pickle

    problem = problems.get("kdv", modes=64, dt=1e-2)
    ref = problem.reference()
    assert problem.reference() is ref
    clone = pickle.loads(pickle.dumps(problem))
    assert clone._reference is None
    x = problem.domain.sample(8, gen(), torch.float64)
    torch.testing.assert_close(clone.solution(x), problem.solution(x))
