"""The problem zoo: exact solutions satisfy their own terms, sampling is reproducible and sound."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import pinnk
import problems

EXACT = ["circle-product", "sin-cos", "jacobian-regularization", "convection", "rotating-cone",
         "euler-smooth", "isentropic-vortex", "poisson-1d", "wave-1d"]
REFERENCE = ["variable-transport", "burgers-1d", "sod", "lax", "riemann", "allen-cahn", "kdv",
             "kuramoto-sivashinsky"]


class SolutionModel(torch.nn.Module):
    """The problem's solution as a parameter-free model x (n, d) -> (n, out)."""

    def __init__(self, problem):
        super().__init__()
        self.problem = problem

    def forward(self, x):
        return self.problem.solution(x)


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def small_counts(problem, n=16):
    return {k: n for k in problem.defaults.points}


# (name, params, absolute tolerance on every residual): the residual of an exact solution is a
# cancellation of terms of size ~ (scale of the derivatives), so the tolerance follows that scale.
CASES = [
    ("circle-product", {}, 1e-14),
    ("circle-product", {"tangential": True, "derivative_labels": True}, 1e-14),
    ("sin-cos", {"derivative_labels": True}, 1e-14),
    ("sin-cos", {"derivative_labels": True, "half_width": 5.0}, 1e-14),
    ("jacobian-regularization", {}, 1e-14),
    ("convection", {}, 1e-12),
    ("convection", {"beta": -7.5, "periodic_embedding": True}, 1e-12),
    ("rotating-cone", {}, 1e-12),
    ("rotating-cone", {"T": 1.0, "center": (-0.3, 0.4), "width": 0.25}, 1e-12),
    ("euler-smooth", {}, 1e-13),
    ("euler-smooth", {"amplitude": 0.7, "gamma": 5.0 / 3.0}, 1e-13),
    ("isentropic-vortex", {}, 1e-12),
    ("isentropic-vortex", {"strength": 3.0, "T": 4.0, "gamma": 1.3}, 1e-12),
    ("poisson-1d", {}, 1e-11),
    ("poisson-1d", {"a": 2.5}, 1e-11),
    ("wave-1d", {}, 1e-11),
    ("wave-1d", {"c": 1.5}, 1e-11),
]


@pytest.mark.parametrize("name,params,tol", CASES,
                         ids=[f"{c[0]}-{k}" for k, c in enumerate(CASES)])
def test_exact_solution_satisfies_every_term(name, params, tol):
    problem = problems.get(name, **params)
    assert problem.exact
    model = SolutionModel(problem)
    for term in problem.terms(64, gen(3), torch.float64):
        if name == "jacobian-regularization" and term.name.startswith("jacobian"):
            continue  # a regulariser, not satisfied by the target (tested below)
        r = term.residual(model)
        assert r.shape == (term.n,) and r.dtype == torch.float64
        assert float(r.abs().max()) <= tol, (term.name, float(r.abs().max()))


def test_jacobian_regularization_terms_are_zero_derivative_labels():
    problem = problems.get("jacobian-regularization", frequency=2.0)
    terms = {t.name: t for t in problem.terms(32, gen(), torch.float64)}
    assert [*terms] == ["value", "jacobian_x1", "jacobian_x2"]
    for k in (1, 2):
        t = terms[f"jacobian_x{k}"]
        assert t.target_values() is None and t.is_derivative and not t.is_residual
        assert torch.equal(t.points, terms["value"].points)
    x = terms["jacobian_x1"].points
    model = SolutionModel(problem)
    # D f − 0 is the true partial derivative of f = sin(4π x1) x2
    torch.testing.assert_close(terms["jacobian_x1"].residual(model),
                               4 * math.pi * torch.cos(4 * math.pi * x[:, 0]) * x[:, 1])
    torch.testing.assert_close(terms["jacobian_x2"].residual(model),
                               torch.sin(4 * math.pi * x[:, 0]))


def test_circle_product_points_and_labels():
    problem = problems.get("circle-product", tangential=True)
    terms = {t.name: t for t in problem.terms(50, gen(), torch.float64)}
    assert [*terms] == ["value", "d_x1", "d_x2", "tangential"]
    x = terms["value"].points
    torch.testing.assert_close(x.norm(dim=1), torch.ones(50, dtype=torch.float64))
    for t in terms.values():  # equal counts share the points (per-point angles need that)
        assert torch.equal(t.points, x)
    torch.testing.assert_close(terms["tangential"].target_values(), x[:, 0] ** 2 - x[:, 1] ** 2)
    # d/dγ (cos γ sin γ) = cos 2γ
    gamma = torch.atan2(x[:, 1], x[:, 0])
    torch.testing.assert_close(terms["tangential"].target_values(), torch.cos(2 * gamma))
    plain = problems.get("circle-product", derivative_labels=False)
    assert [t.name for t in plain.terms(5, gen())] == ["value"]
    assert problems.get("sin-cos").term_names() == ["value"]


def test_wave_initial_velocity_is_a_derivative_label():
    terms = {t.name: t for t in problems.get("wave-1d").terms(8, gen(), torch.float64)}
    vel = terms["initial_velocity"]
    assert vel.order == 1 and not vel.is_residual
    assert torch.equal(vel.target_values(), torch.zeros(8, dtype=torch.float64))
    assert terms["residual"].is_residual and terms["residual"].order == 2


# ----------------------------------------------------------------------------------- sampling
@pytest.mark.parametrize("name", EXACT + REFERENCE)
def test_terms_reproducible_counts_domain_dtype(name):
    problem = problems.get(name)
    counts = small_counts(problem, 6)
    a = problem.terms(counts, gen(7), torch.float64)
    b = problem.terms(counts, gen(7), torch.float64)
    c = problem.terms(counts, gen(8), torch.float64)
    assert [t.name for t in a] == list(problem.defaults.points) == problem.term_names()
    assert len({t.name for t in a}) == len(a)
    differs = False
    lo = torch.tensor(problem.domain.lower, dtype=torch.float64)
    hi = torch.tensor(problem.domain.upper, dtype=torch.float64)
    for ta, tb, tc in zip(a, b, c):
        assert ta.n == 6 and ta.points.shape == (6, problem.in_dim)
        assert ta.points.dtype == torch.float64
        assert torch.equal(ta.points, tb.points)
        ya, yb = ta.target_values(), tb.target_values()
        assert (ya is None) == (yb is None)
        if ya is not None:
            assert ya.dtype == torch.float64 and torch.equal(ya, yb)
        differs |= not torch.equal(ta.points, tc.points)
        assert bool(((ta.points >= lo - 1e-12) & (ta.points <= hi + 1e-12)).all()), ta.name
    assert differs

    # an int count for every term, a partial mapping (the rest from defaults), float32
    for t in problem.terms(3, gen(), torch.float32):
        assert t.n == 3 and t.points.dtype == torch.float32
        y = t.target_values()
        assert y is None or y.dtype == torch.float32
    first = problem.term_names()[0]
    sizes = {t.name: t.n for t in problem.terms({first: 2, **{k: 1 for k in counts if k != first}},
                                                 gen())}
    assert sizes[first] == 2 and all(v == 1 for k, v in sizes.items() if k != first)
    # the default dtype is torch's
    assert problem.terms(2, gen())[0].points.dtype == torch.get_default_dtype()


@pytest.mark.parametrize("name", EXACT + REFERENCE)
def test_metadata_is_consistent(name):
    problem = problems.get(name)
    assert isinstance(problem, pinnk.Problem)
    assert problem.name == name
    assert problem.domain.dim == problem.in_dim == len(problem.input_names)
    assert problem.out_dim == len(problem.output_names) >= 1
    if problem.time_index is None:
        assert "t" not in problem.input_names
    else:
        assert problem.time_index == problem.in_dim - 1 and problem.input_names[-1] == "t"
    assert problem.exact == (name in EXACT or name in ("sod", "lax", "riemann"))
    d = problem.defaults
    assert set(d.points) == set(problem.term_names())
    assert d.width >= 1 and d.depth >= 1 and d.activation in pinnk.activation_names()
    assert all(0 <= c < problem.out_dim for c in d.positive_outputs)
    if "rho" in problem.output_names:
        assert tuple(d.positive_outputs) == (0, problem.out_dim - 1)
    assert isinstance(problems.describe(name), str) and "\n" not in problems.describe(name)
    assert repr(problem).startswith(type(problem).__name__ + "(")


@pytest.mark.parametrize("name", EXACT + REFERENCE)
def test_default_counts_are_used(name):
    problem = problems.get(name)
    # None -> defaults.points; checked without sampling the large default sets everywhere
    assert problem.counts(None, problem.term_names()) == dict(problem.defaults.points)


@pytest.mark.parametrize("name", ["convection", "poisson-1d", "circle-product"])
def test_none_counts_sample_defaults(name):
    problem = problems.get(name)
    assert {t.name: t.n for t in problem.terms(None, gen())} == dict(problem.defaults.points)


@pytest.mark.parametrize("name", EXACT + REFERENCE)
def test_solution_shape_and_dtype(name):
    problem = problems.get(name)
    x32 = problem.domain.sample(5, gen(), torch.float32)
    y = problem.solution(x32)
    assert y.shape == (5, problem.out_dim) and y.dtype == torch.float32
    assert bool(torch.isfinite(y).all())
    with pytest.raises(ValueError, match="x: expected"):
        problem.solution(torch.zeros(3, problem.in_dim + 1))


@pytest.mark.parametrize("name", EXACT + REFERENCE)
def test_evaluation_points(name):
    problem = problems.get(name)
    x, shape = problem.evaluation_points(4, dtype=torch.float64)
    assert x.shape == (4 ** problem.in_dim, problem.in_dim) and shape == (4,) * problem.in_dim
    y = problem.solution(x)
    assert y.shape == (x.shape[0], problem.out_dim) and bool(torch.isfinite(y).all())
    with pytest.raises(ValueError, match="resolution: expected an integer >= 2"):
        problem.evaluation_points(0)


def test_term_names_do_not_touch_the_global_generator():
    torch.manual_seed(5)
    before = torch.get_rng_state()
    for name in EXACT + REFERENCE:
        problems.get(name).term_names()
    assert torch.equal(before, torch.get_rng_state())


def test_initial_and_boundary_points_lie_on_their_faces():
    for name in EXACT + REFERENCE:
        problem = problems.get(name)
        for t in problem.terms(10, gen(), torch.float64):
            if t.name.startswith("initial"):
                assert bool((t.points[:, problem.time_index] == 0).all()), (name, t.name)
            if t.name.startswith("boundary") or t.name == "periodic":
                lo = torch.tensor(problem.domain.lower, dtype=torch.float64)
                hi = torch.tensor(problem.domain.upper, dtype=torch.float64)
                space = slice(0, problem.in_dim - (0 if problem.time_index is None else 1))
                on = ((t.points[:, space] == lo[space]) | (t.points[:, space] == hi[space]))
                assert bool(on.any(dim=1).all()), (name, t.name)


def test_rotating_cone_boundary_is_inflow():
    problem = problems.get("rotating-cone")
    x = problem.inflow_points(400, gen())
    a = torch.stack([-x[:, 1], x[:, 0]], dim=-1)
    normal = torch.zeros_like(a)
    normal[x[:, 0] == 1.0, 0], normal[x[:, 0] == -1.0, 0] = 1.0, -1.0
    normal[x[:, 1] == 1.0, 1], normal[x[:, 1] == -1.0, 1] = 1.0, -1.0
    assert bool(((a * normal).sum(dim=1) <= 0).all())
    # the cone returns after a full revolution and is rotated by a quarter turn at t = π/2
    xy = torch.tensor([[0.5, 0.0, 2 * math.pi], [0.0, 0.5, math.pi / 2]], dtype=torch.float64)
    torch.testing.assert_close(problem.solution(xy)[:, 0], torch.ones(2, dtype=torch.float64))


def test_isentropic_vortex_is_periodic_and_translates():
    problem = problems.get("isentropic-vortex")
    g = gen(4)
    x = problem.domain.sample(64, g, torch.float64)
    shifted = x + torch.tensor([10.0, 0.0, 0.0], dtype=torch.float64)
    torch.testing.assert_close(problem.solution(shifted), problem.solution(x))
    later = x + torch.tensor([1.5, 1.5, 1.5], dtype=torch.float64)
    torch.testing.assert_close(problem.solution(later), problem.solution(x))
    core = problem.solution(torch.tensor([[5.0, 5.0, 0.0]], dtype=torch.float64))[0]
    temp = 1 - 0.4 * 25 / (8 * 1.4 * math.pi ** 2) * math.e
    torch.testing.assert_close(core, torch.tensor([temp ** 2.5, 1.0, 1.0, temp ** 3.5],
                                                  dtype=torch.float64))


def test_convection_periodic_term_with_embedding():
    problem = problems.get("convection", periodic_embedding=True)
    spec = problem.defaults.embedding
    assert spec == {"kind": "periodic", "dims": [0], "periods": [2 * math.pi]}
    emb = pinnk.PeriodicEmbedding(2, spec["dims"], spec["periods"])
    model = pinnk.MLP(2, 1, width=8, depth=2, embedding=emb, generator=gen(), dtype=torch.float64)
    plain = pinnk.MLP(2, 1, width=8, depth=2, generator=gen(), dtype=torch.float64)
    # the periodic term is exactly zero on the embedded network, so the problem leaves it out
    assert [t.name for t in problem.terms(16, gen(), torch.float64)] == ["residual", "initial"]
    periodic = {t.name: t for t in problems.get("convection").terms(16, gen(), torch.float64)}[
        "periodic"]
    with torch.no_grad():
        assert float(periodic.residual(model).abs().max()) < 1e-12
        assert float(periodic.residual(plain).abs().max()) > 1e-3


@pytest.mark.parametrize("name", EXACT + REFERENCE)
def test_every_term_goes_through_the_kernel(name):
    """All operators (custom periodic, nonlinear residuals, field directions) work with the
    jacobian NTK path (vmap/jacrev over parameters) and the kernel is symmetric PSD."""
    problem = problems.get(name)
    if name == "circle-product":
        problem = problems.get(name, tangential=True)
    model = pinnk.MLP(problem.in_dim, problem.out_dim, width=6, depth=2, generator=gen(),
                      dtype=torch.float64)
    terms = problem.terms(3, gen(), torch.float64)
    k = pinnk.ntk(model, terms, "jacobian")
    theta = k.matrix()
    n = sum(t.n for t in terms)
    assert theta.shape == (n, n)
    torch.testing.assert_close(theta, theta.T)
    assert float(torch.linalg.eigvalsh(theta).min()) > -1e-8 * float(theta.diagonal().max())
    # the structured path (taken for the linear terms) agrees with the jacobian oracle
    auto = pinnk.ntk(model, terms, "auto")
    torch.testing.assert_close(auto.matrix(), theta, rtol=1e-10, atol=1e-10)


# --------------------------------------------------------------------------- reference problems
def test_burgers_reference():
    problem = problems.get("burgers-1d")
    assert not problem.exact
    x = problem.domain.sample(64, gen(), torch.float64)
    u = problem.solution(x)
    assert u.shape == (64, 1) and bool(torch.isfinite(u).all())
    mirrored = torch.stack([-x[:, 0], x[:, 1]], dim=-1)
    torch.testing.assert_close(problem.solution(mirrored), -u, atol=1e-10, rtol=0)
    terms = {t.name: t for t in problem.terms(32, gen(), torch.float64)}
    torch.testing.assert_close(problem.solution(terms["initial"].points)[:, 0],
                               terms["initial"].target_values(), atol=1e-14, rtol=0)
    assert float(problem.solution(terms["boundary"].points).abs().max()) < 1e-10
    assert terms["residual"].is_residual and terms["boundary"].target_values() is None
    # the residual of a smooth function: u = x t gives u_t + u u_x − ν u_xx = x + x t²
    xt = terms["residual"].points
    r = terms["residual"].operator(lambda y: (y[:, 0] * y[:, 1]).unsqueeze(-1), xt)
    torch.testing.assert_close(r, xt[:, 0] + xt[:, 0] * xt[:, 1] ** 2)
    # float32 points get a float32 reference
    assert problem.solution(x.float()).dtype == torch.float32
    # smaller viscosity asks for more quadrature nodes
    assert problems.get("burgers-1d", nu=0.001 / math.pi).n_quad > problem.n_quad


def test_variable_transport_reference():
    pytest.importorskip("problems._characteristics")
    problem = problems.get("variable-transport", T=0.5)
    assert not problem.exact
    x = problem.domain.sample(40, gen(), torch.float64)
    u = problem.solution(x)
    assert u.shape == (40, 1) and u.dtype == torch.float64 and bool(torch.isfinite(u).all())
    assert problem.solution(x.float()).dtype == torch.float32
    x0 = torch.stack([x[:, 0], torch.zeros(40, dtype=torch.float64)], dim=-1)
    torch.testing.assert_close(problem.solution(x0)[:, 0], torch.sin(2 * math.pi * x[:, 0]),
                               atol=1e-9, rtol=0)
    terms = {t.name: t for t in problem.terms(16, gen(), torch.float64)}
    assert [*terms] == ["residual", "initial", "boundary"]
    torch.testing.assert_close(terms["initial"].target_values(),
                               torch.sin(2 * math.pi * terms["initial"].points[:, 0]))
    # constant along a characteristic: x' = a(x) traced with a fine RK4 from (x0, 0) to (X, t)
    xs, t_end, steps = 0.1, 0.4, 4000
    dt = t_end / steps
    a = lambda s: 1 + 0.5 * math.sin(2 * math.pi * s)  # noqa: E731
    for _ in range(steps):
        k1 = a(xs)
        k2 = a(xs + 0.5 * dt * k1)
        k3 = a(xs + 0.5 * dt * k2)
        k4 = a(xs + dt * k3)
        xs += dt * (k1 + 2 * k2 + 2 * k3 + k4) / 6
    u_end = problem.solution(torch.tensor([[xs, t_end]], dtype=torch.float64))
    assert abs(float(u_end) - math.sin(2 * math.pi * 0.1)) < 1e-7
    # the residual of the reference is small (finite differences in x and t)
    h = 1e-5
    pts = torch.tensor([[0.3, 0.2], [0.7, 0.45]], dtype=torch.float64)
    ex = torch.tensor([h, 0.0], dtype=torch.float64)
    et = torch.tensor([0.0, h], dtype=torch.float64)
    u_x = (problem.solution(pts + ex) - problem.solution(pts - ex))[:, 0] / (2 * h)
    u_t = (problem.solution(pts + et) - problem.solution(pts - et))[:, 0] / (2 * h)
    res = u_t + (1 + 0.5 * torch.sin(2 * math.pi * pts[:, 0])) * u_x
    assert float(res.abs().max()) < 1e-4


STAR = {
    # name: (ξ in the left star region, ξ in the right star region, p*, u*, ρ*L, ρ*R)
    "sod": (0.5, 1.3, 0.30313, 0.92745, 0.42632, 0.26557),
    "lax": (1.0, 2.0, 2.4661, 1.5287, None, None),
}


@pytest.mark.parametrize("name", ["sod", "lax"])
def test_shock_tube_star_states(name):
    problem = problems.get(name)
    t_end = problem.t_end
    assert t_end == {"sod": 0.2, "lax": 0.14}[name]
    xi_l, xi_r, p_star, u_star, rho_l, rho_r = STAR[name]
    x = torch.tensor([[0.5 + xi_l * t_end, t_end], [0.5 + xi_r * t_end, t_end]],
                     dtype=torch.float64)
    y = problem.solution(x)
    digits = 5e-5 * max(1.0, p_star)
    torch.testing.assert_close(y[:, 2], torch.full((2,), p_star, dtype=torch.float64),
                               atol=digits, rtol=0)
    torch.testing.assert_close(y[:, 1], torch.full((2,), u_star, dtype=torch.float64),
                               atol=digits, rtol=0)
    if rho_l is not None:
        assert abs(float(y[0, 0]) - rho_l) < 5e-6 and abs(float(y[1, 0]) - rho_r) < 5e-6
    # the initial and boundary labels are the data states
    left, right = problem.LEFT, problem.RIGHT
    for t in problem.terms(40, gen(), torch.float64):
        if t.name.startswith(("initial", "boundary")):
            c = ["rho", "u", "p"].index(t.name.split("_")[1])
            xs = t.points[:, 0]
            want = torch.where(xs < 0.5, torch.tensor(left[c], dtype=torch.float64),
                               torch.tensor(right[c], dtype=torch.float64))
            torch.testing.assert_close(t.target_values(), want)
        else:
            assert t.is_residual


def test_riemann_user_states_and_clustering():
    problem = problems.get("riemann", left=(1.0, -2.0, 0.4), right=(1.0, 2.0, 0.4), x0=0.4,
                           t_end=0.15, time_exponent=3.0)
    assert problem.solver.left_wave == problem.solver.right_wave == "rarefaction"
    assert problem.params["left"] == (1.0, -2.0, 0.4) and problem.params["x0"] == 0.4
    x = problem.domain.sample(64, gen(), torch.float64)
    y = problem.solution(x)
    assert bool(torch.isfinite(y).all()) and bool((y[:, 0] > 0).all()) and bool((y[:, 2] > 0).all())
    at0 = problem.solution(torch.tensor([[0.3, 0.0], [0.5, 0.0]], dtype=torch.float64))
    torch.testing.assert_close(at0, torch.tensor([[1.0, -2.0, 0.4], [1.0, 2.0, 0.4]],
                                                 dtype=torch.float64))
    mass = problem.terms(2000, gen(), torch.float64)[0]
    assert mass.name == "mass"
    # t = t_end s³: mean t_end/4 instead of t_end/2
    assert abs(float(mass.points[:, 1].mean()) / 0.15 - 0.25) < 0.03
    # symmetric data: the density is even about x0, the velocity odd
    pts = torch.tensor([[0.3, 0.1], [0.5, 0.1]], dtype=torch.float64)
    y = problem.solution(pts)
    assert abs(float(y[0, 0] - y[1, 0])) < 1e-12 and abs(float(y[0, 1] + y[1, 1])) < 1e-12


@pytest.mark.parametrize("name,x0,t_end", [("sod", 0.5, 0.2), ("riemann", 0.3, 0.15)])
def test_riemann_similarity_points_are_uniform_in_xi_and_t(name, x0, t_end):
    """similarity_fraction = 1: every residual point is x0 + ξ t with ξ uniform in
    [−x0, 1 − x0]/t_end and t uniform in [0, t_end] (Kolmogorov–Smirnov); a fraction f mixes
    them with the uniform points (the share inside the narrow cone |x − x0| <= t·t_end/… is
    the mixture's), every residual term gets its share, and f = 0 is the plain draw."""
    from scipy import stats

    kw = {} if name == "sod" else {"x0": x0, "t_end": t_end}
    n = {"mass": 20000, "momentum": 20000, "energy": 20000}
    p1 = problems.get(name, similarity_fraction=1.0, **kw)
    pts = p1.terms(n, gen(), torch.float64)[0].points.numpy()
    x, t = pts[:, 0], pts[:, 1]
    xi = (x - x0) / t
    lo, hi = -x0 / t_end, (1 - x0) / t_end
    assert stats.kstest(xi, stats.uniform(lo, hi - lo).cdf).pvalue > 1e-3
    assert stats.kstest(t, stats.uniform(0, t_end).cdf).pvalue > 1e-3
    assert ((x >= 0) & (x <= 1)).all()
    # a cone of half-width a·t: probability a/(hi − lo) for similarity points,
    # E[2 a t] = a t_end for uniform points (while the cone is inside the tube)
    a = 0.5 * min(x0, 1 - x0) / t_end
    for f in (0.0, 0.25):
        prob = problems.get(name, similarity_fraction=f, **kw)
        terms = prob.terms(n, gen(), torch.float64)
        for term in terms[:3]:
            q = term.points.numpy()
            inside = float(np.mean(np.abs(q[:, 0] - x0) <= a * q[:, 1]))
            want = (1 - f) * a * t_end + f * 2 * a / (hi - lo)
            assert abs(inside - want) < 0.015, (f, inside, want)
    plain = problems.get(name, **kw).terms(n, gen(), torch.float64)
    zero = problems.get(name, similarity_fraction=0.0, **kw).terms(n, gen(), torch.float64)
    assert all(torch.equal(u.points, v.points) for u, v in zip(plain, zero))
    assert p1.params["similarity_fraction"] == 1.0
    # the initial points take x = x0 + ξ τ with τ uniform on [0, t_end]: concentrated at x0
    ini = [u for u in p1.terms({"initial_rho": 20000}, gen(), torch.float64)
           if u.name == "initial_rho"][0].points.numpy()
    assert (ini[:, 1] == 0).all() and ((ini[:, 0] >= 0) & (ini[:, 0] <= 1)).all()
    for d in (1e-3, 1e-2):
        # |ξ| τ <= d with ξ uniform on [lo, hi], τ uniform on [0, t_end]: for each side
        # P(0 < ξ τ <= d) = ∫ min(1, d/(ξ t_end)) dξ/(hi − lo) over ξ in (0, hi]
        side = lambda L: (d / t_end / (hi - lo)) * (1 + math.log(L * t_end / d))  # noqa: E731
        want = side(hi) + side(-lo)
        got = float(np.mean(np.abs(ini[:, 0] - x0) <= d))
        assert abs(got - want) < 5 * math.sqrt(want / 20000), (d, got, want)


@pytest.mark.parametrize("name,x0,f", [("sod", 0.5, 0.0), ("sod", 0.5, 0.5),
                                        ("riemann", 0.3, 1.0)])
def test_riemann_initial_gap_conditions_the_initial_points(name, x0, f):
    """initial_gap h: no initial point within h of x0, the counts kept, and the points the
    conditional distribution — uniform on [0, 1] minus the gap (Kolmogorov–Smirnov), or for the
    similarity share P(|x − x0| <= d | >= h) from the closed form; the residual and boundary
    points and h = 0 unchanged."""
    from scipy import stats

    kw = {} if name == "sod" else {"x0": x0, "t_end": 0.15}
    t_end = 0.2 if name == "sod" else 0.15
    h = 2e-3
    n = {"mass": 3000, "initial_rho": 20000, "initial_p": 20000, "boundary_rho": 100}
    gapped = problems.get(name, similarity_fraction=f, initial_gap=h, **kw)
    plain = problems.get(name, similarity_fraction=f, **kw)
    assert gapped.params["initial_gap"] == h and plain.params["initial_gap"] == 0.0
    a, b = gapped.terms(n, gen(), torch.float64), plain.terms(n, gen(), torch.float64)
    by = {t.name: t for t in a}
    ini = by["initial_rho"].points.numpy()
    assert ini.shape == (20000, 2) and (ini[:, 1] == 0).all()
    d = np.abs(ini[:, 0] - x0)
    assert d.min() >= h
    assert torch.equal(by["initial_p"].points, by["initial_rho"].points)
    # the labels follow the moved points
    torch.testing.assert_close(by["initial_rho"].target_values().reshape(-1),
                               gapped.solution(by["initial_rho"].points)[:, 0])
    # the residual points are drawn before the initial ones and do not move
    assert torch.equal(by["mass"].points, b[0].points)
    if f == 0.0:
        # uniform on [0, 1] without (x0 − h, x0 + h): squeeze the gap out and test uniformity
        y = np.where(ini[:, 0] > x0, ini[:, 0] - 2 * h, ini[:, 0])
        assert stats.kstest(y, stats.uniform(0, 1 - 2 * h).cdf).pvalue > 1e-3
    else:
        lo, hi = -x0 / t_end, (1 - x0) / t_end

        def near(r):  # P(|ξ τ| <= r) for the similarity share (see the test above)
            side = lambda L: (r / t_end / (hi - lo)) * (1 + math.log(L * t_end / r))  # noqa: E731
            return side(hi) + side(-lo)

        for r in (5e-3, 2e-2):
            inside_sim = (near(r) - near(h)) / (1 - near(h))
            inside_uni = (2 * r - 2 * h) / (1 - 2 * h)
            want = f * inside_sim + (1 - f) * inside_uni
            got = float(np.mean(d <= r))
            assert abs(got - want) < 5 * math.sqrt(want / 20000), (r, got, want)
    zero = problems.get(name, similarity_fraction=f, initial_gap=0.0, **kw)
    assert all(torch.equal(u.points, v.points)
               for u, v in zip(zero.terms(n, gen(), torch.float64), b))


@pytest.mark.parametrize("name, x0", [("sod", 0.5), ("lax", 0.5), ("riemann", 0.3)])
def test_riemann_initial_window_pins_the_jump(name, x0):
    """initial_window δ: three terms, ∫U dx over [x0 − δ, x0 + δ] at times in [0, τ] (first row
    t = 0); their labels are the exact integrals (checked by fine quadrature of the exact
    solution), the exact solution meets them up to the stratified quadrature's error, and the
    exact solution moved by s misses the mass label by s (ρ_L − ρ_R) at every row — every wave
    moves with the jump. δ = 0 adds nothing and draws nothing."""
    kw = {} if name != "riemann" else {"x0": x0, "left": (1.0, 0.75, 1.0),
                                       "right": (0.125, 0.0, 0.1)}
    d, m, s = 0.02, 4096, 2e-3
    problem = problems.get(name, initial_window=d, conservation_nodes=m, **kw)
    assert problem.params["initial_window"] == d
    names = problem._names()
    assert names[-3:] == ["window_mass", "window_momentum", "window_energy"]
    assert all(problem.defaults.points[k] == 16 for k in names[-3:])
    terms = {t.name: t for t in problem.terms(None, gen(5), torch.float64)}
    win = [terms[k] for k in names[-3:]]
    t = win[0].points[:, 1]
    tau = problem.window_horizon()
    sv = problem.solver
    fastest = max(abs(v) for v in (sv.left_head_speed, sv.left_shock_speed, sv.right_head_speed,
                                   sv.right_shock_speed) if v is not None)
    assert tau == pytest.approx(d / (2 * fastest))
    assert t.shape == (16,) and float(t[0]) == 0.0 and float(t.max()) <= tau
    assert (t[1:] > 0).all() and all(torch.equal(w.points, win[0].points) for w in win)
    # labels: the exact integrals of the Riemann solution over the window
    x = torch.linspace(x0 - d, x0 + d, 400001, dtype=torch.float64)
    spread = np.zeros(3)
    for i in (0, 5, 15):
        pts = torch.stack([x, torch.full_like(x, float(t[i]))], dim=1)
        u = problems._euler.conserved_1d(problem.solution(pts), problem.gamma).numpy()
        exact = np.trapezoid(u, x.numpy(), axis=0)
        got = [float(w.target_values().reshape(-1)[i]) for w in win]
        np.testing.assert_allclose(got, exact, rtol=0, atol=5e-7)  # trapezoid over jumps
        spread = np.maximum(spread, u.max(axis=0) - u.min(axis=0))
    # the exact solution fits them up to the quadrature: a node per cell of width 2δ/m errs by
    # at most the cell's share of each of the (at most three) jumps in the window
    for k, w in enumerate(win):
        assert float(w.residual(problem.solution).abs().max()) <= 3 * (2 * d / m) * spread[k]

    def moved(pts):
        return problem.solution(pts - torch.tensor([s, 0.0], dtype=pts.dtype))

    mass = win[0].residual(moved).reshape(-1)
    jump = problem.left[0] - problem.right[0]
    torch.testing.assert_close(mass, torch.full_like(mass, s * jump), rtol=0, atol=5e-5)
    # δ = 0: the same terms as without the option, the same random draws
    plain, zero = problems.get(name, **kw), problems.get(name, initial_window=0.0, **kw)
    n = {"mass": 20, "initial_rho": 10, "boundary_rho": 4}
    a, b = plain.terms(n, gen(), torch.float64), zero.terms(n, gen(), torch.float64)
    assert [u.name for u in a] == [u.name for u in b]
    assert all(torch.equal(u.points, v.points) for u, v in zip(a, b))


@pytest.mark.parametrize("impl", ["structured", "jacobian"])
def test_window_kernel_matches_the_oracle(impl):
    """The window integrals (nonlinear in the outputs, 16 nodes each) on both kernel paths —
    the structured one takes them as one part per node, the three on the same nodes in one
    pass — beside a residual: blocks, diagonals, cross-diagonals, trace weights."""
    from oracle import jacobian_oracle, rel_err

    problem = problems.get("sod", initial_window=0.01, conservation_nodes=16, viscosity=1e-3)
    terms = {t.name: t for t in problem.terms(6, gen(4), torch.float64)}
    pair = [terms["window_energy"], terms["mass"], terms["window_mass"], terms["window_momentum"]]
    torch.manual_seed(0)
    model = pinnk.MLP(2, 3, width=12, depth=2,
                       output_transform=pinnk.Positive((0, 2))).double()
    J = [jacobian_oracle(lambda t=t: t.residual(model), model) for t in pair]
    K = pinnk.ntk(model, pair, impl)
    assert K.implementations == [impl] * 4
    for i in range(4):
        assert rel_err(K.diagonal(i), (J[i] * J[i]).sum(1)) < 1e-10
        for j in range(4):
            assert rel_err(K.block(i, j), J[i] @ J[j].T) < 1e-10
    assert rel_err(K.cross_diagonal(0, 3), (J[0] * J[3]).sum(1)) < 1e-10
    tr = torch.tensor([float((Ji * Ji).sum()) / Ji.shape[0] for Ji in J], dtype=torch.float64)
    assert rel_err(K.trace_weights(), tr.sum() / tr) < 1e-10


def test_riemann_residuals_vanish_on_constant_states():
    problem = problems.get("sod")
    const = torch.tensor([0.7, 0.3, 1.9], dtype=torch.float64)
    model = lambda x: const.expand(x.shape[0], 3)  # noqa: E731
    for t in problem.terms(8, gen(), torch.float64):
        if t.is_residual:
            assert float(t.residual(model).abs().max()) < 1e-15


def test_terms_follow_global_generator_state_when_none():
    problem = problems.get("poisson-1d")
    torch.manual_seed(11)
    a = problem.terms(5)[0].points
    torch.manual_seed(11)
    b = problem.terms(5)[0].points
    assert torch.equal(a, b)


def test_targets_are_numpy_free_tensors():
    for name in REFERENCE:
        problem = problems.get(name, **({"T": 0.2} if name == "variable-transport" else {}))
        if name == "variable-transport":
            pytest.importorskip("problems._characteristics")
        for t in problem.terms(4, gen(), torch.float64):
            y = t.target_values()
            assert y is None or (isinstance(y, torch.Tensor) and not isinstance(y, np.ndarray))


def test_shock_damping_weights_each_residual_by_the_compression():
    """κ > 0 multiplies every residual by w = 1/(κ(|u_x| − u_x) + 1): 1 where u_x >= 0,
    1/(1 + 2κ|u_x|) in a compression."""
    kappa = 0.3
    plain = problems.get("sod")
    damped = problems.get("sod", shock_damping=kappa)
    assert damped.params["shock_damping"] == kappa

    def model(x):  # u_x = −4 sin(4x)(1 + t) changes sign at x = π/4; ρ, p smooth and positive
        return torch.stack([1.0 + 0.2 * torch.sin(3 * x[:, 0] + x[:, 1]),
                            torch.cos(4 * x[:, 0]) * (1 + x[:, 1]),
                            1.0 + 0.1 * x[:, 0] * x[:, 1]], dim=1)

    a = plain.terms(64, gen(), torch.float64)
    b = damped.terms(64, gen(), torch.float64)
    x = a[0].points
    u_x = -4.0 * torch.sin(4 * x[:, 0]) * (1 + x[:, 1])
    assert (u_x < 0).any() and (u_x > 0).any()
    w = 1.0 / (kappa * (u_x.abs() - u_x) + 1.0)
    for ta, tb in zip(a, b):
        if ta.is_residual:
            torch.testing.assert_close(tb.residual(model), w * ta.residual(model), rtol=1e-12,
                                       atol=1e-14)
    with pytest.raises(ValueError, match=r"shock_damping: expected a weight κ >= 0"):
        problems.get("lax", shock_damping=-1.0)


def test_conservation_terms_hold_for_the_exact_solution_and_converge_with_nodes():
    """The integral labels ∫U dx at time t equal the initial integral plus the boundary fluxes;
    the exact solution satisfies them up to the quadrature error, which falls with the nodes m
    (stratified Monte Carlo of a piecewise-smooth integrand: error O(m^-3/2) per jump)."""
    errors = []
    for m in (64, 1024):
        problem = problems.get("sod", conservation=True, conservation_nodes=m)
        terms = {t.name: t for t in problem.terms(16, gen(3), torch.float64)}
        cons = [terms[f"conservation_{k}"] for k in ("mass", "momentum", "energy")]
        t = cons[0].points[:, 1]
        # Sod: u = 0 at both ends until the waves arrive, so only the momentum flux p acts
        torch.testing.assert_close(cons[0]._target, torch.full_like(t, 0.5 + 0.5 * 0.125))
        torch.testing.assert_close(cons[1]._target, (1.0 - 0.1) * t)
        torch.testing.assert_close(cons[2]._target, torch.full_like(t, (0.5 + 0.05) / 0.4))
        errors.append(max(float(c.residual(problem.solution).abs().max()) for c in cons))
    assert errors[1] < errors[0] / 8 and errors[1] < 1e-3


def test_conservation_kernel_matches_the_oracle():
    from oracle import jacobian_oracle, rel_err

    problem = problems.get("lax", conservation=True, conservation_nodes=16)
    terms = {t.name: t for t in problem.terms(6, gen(4), torch.float64)}
    pair = [terms["conservation_energy"], terms["initial_rho"]]
    torch.manual_seed(0)
    model = pinnk.MLP(2, 3, width=12, depth=2).double()
    J = [jacobian_oracle(lambda t=t: t.residual(model), model) for t in pair]
    for impl in ("structured", "jacobian"):
        K = pinnk.ntk(model, pair, impl)
        assert rel_err(K.block(0, 1), J[0] @ J[1].T) < 1e-10
        assert rel_err(K.block(0, 0), J[0] @ J[0].T) < 1e-10
    assert pair[0].operator.order == 0 and not pair[0].is_derivative
