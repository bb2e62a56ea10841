"""The structured kernel path for every operator (design.md §3a): nonlinear residuals,
output transforms, derivatives of any order, multi-output models — against the brute-force
oracle (one ``torch.autograd.grad`` row at a time, derivatives in x by reverse mode), float64,
relative error <= 1e-10: blocks, diagonals, cross-diagonals, Θ*, angles and trace weights."""

import pytest
import torch

import pinnk
from pinnk import ops
from oracle import jacobian_oracle, op_ref, rel_err
from problems._base import Periodic
from problems._euler import euler_residuals_1d, euler_residuals_2d

TOL = 1e-10
NU = 0.0025


def _points(n, d, seed, lo=-1.0, hi=1.0):
    g = torch.Generator().manual_seed(seed)
    return lo + (hi - lo) * torch.rand(n, d, generator=g, dtype=torch.float64)


def _mlp(d, out, act="tanh", seed=0, transform=None, **kw):
    g = torch.Generator().manual_seed(seed)
    return pinnk.MLP(d, out, [9, 8], activation=act, parametrization="ntk", generator=g,
                     dtype=torch.float64, output_transform=transform, **kw)


def _burgers():
    return ops.residual(lambda x, u, u_t, u_x, u_xx: u_t + u * u_x - 0.01 / 3.14159 * u_xx,
                        u=ops.value(), u_t=ops.partial([0, 1]), u_x=ops.partial([1, 0]),
                        u_xx=ops.partial([2, 0]))


def _kdv():
    return ops.residual(lambda x, u, u_t, u_x, u_xxx: u_t + u * u_x + NU * u_xxx,
                        u=ops.value(), u_t=ops.partial([0, 1]), u_x=ops.partial([1, 0]),
                        u_xxx=ops.partial([3, 0]))


def _biharmonic():
    return ops.partial([4, 0]) + 2.0 * ops.partial([2, 2]) + ops.partial([0, 4])


def _field(x):
    return torch.stack([torch.cos(x[:, 0] - x[:, 1]), torch.sin(x[:, 0] + 0.5 * x[:, 1])], -1)


H = torch.tensor([0.7, -0.4], dtype=torch.float64)


def _hard(x, y):
    """An x-dependent output transform (a hard boundary constraint), expanded by forward mode."""
    return x[:, :1] * (1 - x[:, :1]) * torch.sin(y) + torch.cos(x[:, 1:2])


# name -> (model, [(term name, operator, point-set key)], input dimension)
def _cases():
    yield "burgers", _mlp(2, 1), [("u", ops.value(), 0), ("res", _burgers(), 0),
                                  ("ux", ops.partial([1, 0]), 1)]
    yield "kdv", _mlp(2, 1, "sin"), [("res", _kdv(), 0), ("u0", ops.value(), 1),
                                     ("ux", ops.partial([1, 0]), 0)]
    yield "dh3-dh4", _mlp(2, 1, "gelu"), [("f", ops.value(), 0),
                                           ("d3", ops.directional(H, 3), 0),
                                           ("d4", ops.directional(H, 4), 0),
                                           ("d4field", ops.directional(_field, 4), 1)]
    yield "mixed", _mlp(2, 1, "softplus"), [("a21", ops.partial([2, 1]), 0),
                                            ("a22", ops.partial([2, 2]), 0),
                                            ("a12", ops.partial([1, 2]), 1)]
    yield "biharmonic", _mlp(2, 1, "erf"), [("f", ops.value(), 0), ("bih", _biharmonic(), 0)]
    pos = pinnk.Positive([0, 2])
    for label, kw in (("euler1d", {}), ("euler1d-damped", {"shock_damping": 2.0}),
                      ("euler1d-viscous", {"viscosity": 0.01}),
                      ("euler1d-both", {"shock_damping": 1.5, "viscosity": 0.02}),
                      ("euler1d-compression", {"viscosity": 1e-3, "compression_viscosity": 0.05})):
        res = euler_residuals_1d(**kw)
        yield label, _mlp(2, 3, transform=pos), (
            [(nm, op, 0) for nm, op in res.items()]
            + [("rho0", ops.value(0), 1), ("p0", ops.value(2), 1)])
    res2 = euler_residuals_2d()
    yield "euler2d", _mlp(3, 4, transform=pinnk.Positive([0, 3], kind="exp", floor=0.05)), (
        [(nm, op, 0) for nm, op in res2.items()] + [("u0", ops.value(1), 1)])
    four = (ops.partial([1, 0, 0], 0) + ops.value(3) * 0.5 + ops.partial([0, 2, 1], 2)
            - ops.laplacian(component=1))
    yield "four-outputs", _mlp(3, 4, "tanh"), [("mix", four, 0), ("v3", ops.value(3), 0),
                                              ("d3c1", ops.directional([0.3, 0.1, -0.9], 3, 1), 1)]
    yield "positive-linear", _mlp(2, 2, transform=pinnk.Positive([1])), [
        ("p", ops.value(1), 0), ("px", ops.partial([1, 0], 1), 0),
        ("plap", ops.laplacian(component=1), 0), ("pxxx", ops.partial([3, 0], 1), 1)]
    yield "periodic", _mlp(2, 2, "sin"), [
        ("per", Periodic(dim=0, period=2.0), 0), ("res", _kdv(), 0),
        ("per_x", Periodic(ops.partial([1, 0], component=1), dim=0, period=2.0), 0),
        ("per_t", Periodic(ops.partial([0, 1]) + ops.value(1), dim=1, period=0.5), 1)]
    yield "hard-constraint", _mlp(2, 1, "tanh", transform=_hard), [
        ("f", ops.value(), 0), ("res", _burgers(), 0), ("d3", ops.directional(H, 3), 1)]


CASES = {name: (model, spec) for name, model, spec in _cases()}


def _terms(model, spec):
    d = model.in_dim
    xs = {0: _points(5, d, 11), 1: _points(4, d, 12)}
    return [pinnk.Term(nm, op, xs[key]) for nm, op, key in spec]


@pytest.mark.parametrize("case", list(CASES))
def test_every_block_and_diagonal_against_the_oracle(case):
    model, spec = CASES[case]
    terms = _terms(model, spec)
    K = pinnk.ntk(model, terms, "structured")
    assert K.implementations == ["structured"] * len(terms)
    Js = [jacobian_oracle(lambda t=t: op_ref(model, t.points, t.operator), model) for t in terms]
    for i in range(len(terms)):
        for j in range(i, len(terms)):
            err = rel_err(K.block(i, j), Js[i] @ Js[j].T)
            assert err <= TOL, (case, terms[i].name, terms[j].name, err)
        fresh = pinnk.ntk(model, terms, "structured")  # diagonals without any block built
        assert rel_err(fresh.diagonal(i), (Js[i] * Js[i]).sum(-1)) <= TOL
    # cross-diagonals and angles of terms at the same points; Θ* and trace weights
    same = [k for k, (_, _, key) in enumerate(spec) if key == 0]
    fresh = pinnk.ntk(model, terms, "structured")
    for a in same:
        for b in same:
            ref = (Js[a] * Js[b]).sum(-1)
            assert rel_err(fresh.cross_diagonal(a, b), ref) <= TOL
    a, b = same[0], same[1]
    cos = pinnk.angles(model, terms[a], terms[b], "structured")
    ref = (Js[a] * Js[b]).sum(-1) / ((Js[a] ** 2).sum(-1) * (Js[b] ** 2).sum(-1)).sqrt()
    assert rel_err(cos, ref) <= TOL
    w = torch.linspace(0.5, 2.0, len(terms), dtype=torch.float64)
    J = torch.cat(Js)
    lam = torch.cat([w[k].expand(t.n) for k, t in enumerate(terms)])
    assert rel_err(fresh.matrix(w), (J @ J.T) * lam[None, :]) <= TOL
    tr = torch.tensor([float((Jk * Jk).sum()) for Jk in Js], dtype=torch.float64)
    m = tr / torch.tensor([t.n for t in terms], dtype=torch.float64)
    assert rel_err(fresh.trace_weights("sum"), tr.sum() / tr) <= TOL
    assert rel_err(fresh.trace_weights("mean"), m.sum() / m) <= TOL


@pytest.mark.parametrize("act", ["tanh", "sin", "gelu", "softplus", "erf"])
@pytest.mark.parametrize("order", [3, 4, 5])
def test_directional_derivatives_of_any_order_for_every_smooth_activation(act, order):
    model = _mlp(2, 1, act, seed=order)
    x = _points(4, 2, order)
    terms = [pinnk.Term("f", ops.value(), x), pinnk.Term("dk", ops.directional(H, order), x)]
    K = pinnk.ntk(model, terms, "structured")
    Js = [jacobian_oracle(lambda t=t: op_ref(model, x, t.operator), model) for t in terms]
    assert rel_err(K.matrix(), torch.cat(Js) @ torch.cat(Js).T) <= TOL


def test_operator_values_of_any_order_match_reverse_mode():
    """The Taylor-mode evaluation (training path) of every operator above, on every model."""
    for case, (model, spec) in CASES.items():
        x = _points(6, model.in_dim, 3)
        for nm, op, _ in spec:
            assert rel_err(op(model, x), op_ref(model, x, op)) <= 1e-11, (case, nm)


def test_embedding_with_high_order_operators():
    g = torch.Generator().manual_seed(5)
    emb = pinnk.PeriodicEmbedding(2, dims=[0], periods=[2.0], harmonics=2, keep_input=[0])
    model = pinnk.MLP(2, 1, [8, 7], activation="tanh", parametrization="ntk", embedding=emb,
                      generator=g,
                      dtype=torch.float64)
    x = _points(5, 2, 9)
    terms = [pinnk.Term("kdv", _kdv(), x), pinnk.Term("bih", _biharmonic(), x)]
    K = pinnk.ntk(model, terms, "structured")
    J = torch.cat([jacobian_oracle(lambda t=t: op_ref(model, x, t.operator), model)
                   for t in terms])
    assert rel_err(K.matrix(), J @ J.T) <= TOL


def test_frozen_parameters_and_chunks():
    model = _mlp(2, 3, transform=pinnk.Positive([0, 2]))
    model.weights[1].requires_grad_(False)
    model.biases[0].requires_grad_(False)
    res = euler_residuals_1d(viscosity=0.01)
    x = _points(7, 2, 4)
    terms = [pinnk.Term(nm, op, x) for nm, op in res.items()]
    J = torch.cat([jacobian_oracle(lambda t=t: op_ref(model, x, t.operator), model)
                   for t in terms])
    for kw in ({}, {"chunk_size": 3}, {"chunk_size": 2, "max_memory": 20_000}):
        K = pinnk.ntk(model, terms, "structured", **kw)
        assert rel_err(K.matrix(), J @ J.T) <= TOL, kw


def test_times_contracts_the_rows_layer_by_layer():
    """StructuredFeatures.times(M) is J Mᵀ without the concatenated rows; a wrong width raises."""
    from pinnk._structured import structured_features

    g = torch.Generator().manual_seed(3)
    model = pinnk.MLP(2, 2, [6, 5], activation="tanh", generator=g, dtype=torch.float64)
    model.biases[1].requires_grad_(False)
    x = torch.rand(7, 2, generator=g, dtype=torch.float64)
    f = structured_features(model, ops.laplacian(component=1), x)
    J = f.rows()
    M = torch.randn(4, J.shape[1], generator=g, dtype=torch.float64)
    assert rel_err(f.times(M), J @ M.T) <= 1e-13
    with pytest.raises(ValueError, match=f"M: expected {J.shape[1]} columns"):
        f.times(M[:, 1:])


class _Quadrature(pinnk.ops.Operator):
    """Σ_q c (D f)(ξ_q, x_1) over nodes ξ_q, one part per node (all with one operator D), or,
    with ``bad``, a part with one row too few."""

    def __init__(self, inner, nodes, c, bad=False):
        self.inner, self.nodes, self.c, self.bad = inner, nodes, c, bad

    @property
    def order(self):
        return self.inner.order

    def _y(self, x, q):
        return torch.stack([self.nodes[q].expand(x.shape[0]), x[:, 1]], dim=1)

    def apply(self, f, x):
        return sum(self.c * self.inner.apply(f, self._y(x, q)) for q in range(len(self.nodes)))

    def parts(self, x):
        out = [(self.c, self.inner, self._y(x, q)) for q in range(len(self.nodes))]
        if self.bad:
            out[-1] = (self.c, self.inner, out[-1][2][1:])
        return out

    def inner_operators(self):
        return [self.inner] * len(self.nodes)


def test_quadrature_parts_in_one_pass_against_the_oracle():
    """Two quadratures of 40 parts on the same nodes (a nonlinear residual and a derivative):
    their blocks with each other and with a plain term, by streams and materialised rows."""
    g = torch.Generator().manual_seed(8)
    model = pinnk.MLP(2, 2, [7, 6], activation="tanh", generator=g, dtype=torch.float64)
    nodes = torch.rand(40, generator=g, dtype=torch.float64)
    x = torch.rand(5, 2, generator=g, dtype=torch.float64)
    square = ops.residual(lambda x, u, v: u * v + u * u, u=ops.value(0), v=ops.value(1))
    terms = [pinnk.Term("q_res", _Quadrature(square, nodes, 0.025), x),
             pinnk.Term("q_dx", _Quadrature(ops.partial([1, 0], 1), nodes, 0.025), x),
             pinnk.Term("lap", ops.laplacian(), torch.rand(6, 2, generator=g, dtype=torch.float64))]
    K = pinnk.ntk(model, terms, "structured")
    J = [jacobian_oracle(lambda t=t: t.residual(model), model) for t in terms]
    for i in range(3):
        for j in range(3):
            assert rel_err(K.block(i, j), J[i] @ J[j].T) <= 1e-10, (i, j)
    bad = pinnk.Term("bad", _Quadrature(square, nodes, 0.025, bad=True), x)
    with pytest.raises(ValueError, match=r"has points of shape \(4, 2\); expected one row per "
                                         r"point of the term \(5 rows\)"):
        pinnk.ntk(model, [bad], "structured").matrix()
