"""Every DeepXDE boundary condition as a pinnk term, against DeepXDE itself.

For each condition the term's residual must equal DeepXDE's own error (``bc.error``, reverse-mode
``dde.grad`` on a requires_grad input) row for row, the mean squares must equal the loss vector
that DeepXDE's compiled model trains on (``model.outputs_losses_train``), and the kernel block
(pinnk's ``vmap(jacrev)`` path, where numpy data is looked up per point) must equal J Jᵀ of
DeepXDE's error built one row at a time — all in float64.
"""

import numpy as np
import pytest
import torch

from pinnk.interop import deepxde as pdx
from dde_oracle import dde_errors
from oracle import jacobian_oracle, rel_err

dde = pytest.importorskip("deepxde")

TOL = 1e-10


pytestmark = pytest.mark.usefixtures("f64")  # DeepXDE in float64 (conftest.py)


def check_against_deepxde(model, blocks=True):
    """Residuals, DeepXDE's training loss vector and the kernel blocks against DeepXDE."""
    ts = pdx.terms(model)
    ref = dde_errors(model)
    assert len(ts) == len(ref)
    for t, r in zip(ts, ref):
        assert t.residual(model.net).shape == r.shape, t.name
        assert rel_err(t.residual(model.net), r) <= 1e-12, t.name
    model.compile("adam", lr=1e-3)
    dde_losses = model.outputs_losses_train(model.data.train_x, model.data.train_y, None)[1]
    ours = torch.stack([(t.residual(model.net) ** 2).mean() for t in ts])
    assert rel_err(ours, dde_losses.detach()) <= 1e-12
    if blocks:
        K = pdx.kernel(model)
        J = [jacobian_oracle(lambda k=k: dde_errors(model)[k], model.net) for k in range(len(ts))]
        for i in range(len(ts)):
            assert rel_err(K.block(i, i), J[i] @ J[i].T) <= TOL, ts[i].name
        pde = 0
        for i in range(1, len(ts)):
            assert rel_err(K.block(pde, i), J[pde] @ J[i].T) <= TOL, ts[i].name
        return ts, K
    return ts, None


def _net(sizes, seed=0):
    torch.manual_seed(seed)
    return dde.nn.FNN(sizes, "tanh", "Glorot normal")


# ------------------------------------------------------------ one dimension, one output
def _pde_1d(x, y):
    return (-dde.grad.hessian(y, x) - np.pi ** 2 * torch.sin(np.pi * x)
            + y * dde.grad.jacobian(y, x))


def _left(x, on):
    return on and dde.utils.isclose(x[0], -1)


def _right(x, on):
    return on and dde.utils.isclose(x[0], 1)


def _robin_reads_x(X, y):  # (numpy X as DeepXDE hands it over, on the device of y)
    return y * torch.as_tensor(np.cos(X), device=y.device) + torch.as_tensor(X ** 2,
                                                                              device=y.device)


def _operator_reads_x(x, y, X):
    return dde.grad.jacobian(y, x) - torch.as_tensor(np.sin(X), device=y.device)


@pytest.fixture(scope="module")
def model_1d():
    geom = dde.geometry.Interval(-1, 1)
    bcs = [dde.icbc.DirichletBC(geom, lambda x: np.sin(np.pi * x), _left),
           dde.icbc.RobinBC(geom, lambda X, y: y, _right),
           dde.icbc.RobinBC(geom, _robin_reads_x, lambda x, on: on),
           dde.icbc.PeriodicBC(geom, 0, _right),
           dde.icbc.PeriodicBC(geom, 0, _right, derivative_order=1),
           dde.icbc.OperatorBC(geom, lambda x, y, _: dde.grad.hessian(y, x) + y, _right),
           dde.icbc.OperatorBC(geom, _operator_reads_x, _left),
           dde.icbc.NeumannBC(geom, lambda x: 2 * x, _right),
           dde.icbc.PointSetOperatorBC(np.array([[0.3], [0.7], [-0.2]]),
                                       np.array([[1.0], [2.0], [0.5]]),
                                       lambda x, y, X: dde.grad.jacobian(y, x)),
           dde.icbc.PointSetBC(np.array([[0.1], [0.5]]), np.array([[1.0], [-1.0]]))]
    data = dde.data.PDE(geom, _pde_1d, bcs, num_domain=8, num_boundary=4,
                        train_distribution="uniform")
    return dde.Model(data, _net([1, 8, 8, 1]))


def test_every_condition_1d_matches_deepxde(model_1d):
    ts, K = check_against_deepxde(model_1d)
    kinds = [type(t.operator).__name__ for t in ts]
    assert kinds == ["PDEOperator", "Linear", "RobinOperator", "RobinOperator",
                     "PeriodicOperator", "PeriodicOperator", "FunctionOperator",
                     "FunctionOperator", "Linear", "FunctionOperator", "Linear"]
    # orders: PDE 2; Robin 1; periodic 0 and 1; OperatorBC hessian 2, jacobian 1; Neumann 1
    assert [t.order for t in ts] == [2, 0, 1, 1, 0, 1, 2, 1, 1, 1, 0]
    # a periodic pair is one row: DeepXDE's 2 points per pair become 1 row of the term
    assert ts[4].n * 2 == model_1d.data.num_bcs[3]
    # the functions that read X took the exact table route inside the kernel's transforms,
    # the others the direct one
    assert K.terms[3].operator._needs_x and K.terms[7].operator._needs_x
    assert not K.terms[2].operator._needs_x and not K.terms[6].operator._needs_x
    assert [t.is_residual for t in ts] == [True] + [False] * 10


def test_points_override_and_subsets(model_1d):
    x = torch.tensor([[1.0], [-1.0], [1.0]], dtype=torch.float64)
    ts = pdx.terms(model_1d, {"bc2": x, "bc3": x})
    # Robin at new points: ∂u/∂n − (u cos x + x²), by reverse mode
    xr = x.clone().requires_grad_(True)
    u = model_1d.net(xr)
    du = torch.autograd.grad(u.sum(), xr)[0]
    want = (du * torch.sign(x)) - (u * torch.cos(x) + x ** 2)
    assert rel_err(ts[3].residual(model_1d.net), want[:, 0].detach()) <= 1e-12
    # periodic at new points: u(x) − u(partner), the partner of ±1 being ∓1
    u0 = model_1d.net(x)[:, 0]
    u1 = model_1d.net(-x)[:, 0]
    assert rel_err(ts[4].residual(model_1d.net), (u0 - u1).detach()) <= 1e-12
    # PointSetOperatorBC: a subset of its own points keeps its labels; other points are refused
    own = pdx.terms(model_1d)[9]
    sub = pdx.terms(model_1d, {"bc8": own.points[[2, 0]]})[9]
    assert torch.equal(sub.target_values(), own.target_values()[[2, 0]])
    with pytest.raises(ValueError, match=r"points\['bc8'\]: a PointSetOperatorBC term has labels "
                                         r"only at its own points; 1 of the 2 points"):
        pdx.terms(model_1d, {"bc8": torch.tensor([[0.3], [0.31]], dtype=torch.float64)})
    with pytest.raises(ValueError, match=r"points\['bc9'\]: a PointSetBC term has labels only"):
        pdx.terms(model_1d, {"bc9": torch.tensor([[0.2]], dtype=torch.float64)})
    with pytest.raises(ValueError, match=r"points\['bc0'\]: expected dimension 1, got 2"):
        pdx.terms(model_1d, {"bc0": torch.zeros(2, 2, dtype=torch.float64)})


# ------------------------------------------------- space-time, two outputs, every kind again
def _pde_xt(x, y):
    return [dde.grad.jacobian(y, x, i=0, j=1) - dde.grad.hessian(y, x, component=0, i=0, j=0)
            + y[:, 1:2],
            dde.grad.jacobian(y, x, i=1, j=1) - dde.grad.jacobian(y, x, i=0, j=0)]


def _x_is_1(x, on):
    return on and dde.utils.isclose(x[0], 1)


@pytest.fixture(scope="module")
def model_xt():
    geomtime = dde.geometry.GeometryXTime(dde.geometry.Interval(0, 1),
                                          dde.geometry.TimeDomain(0, 1))
    rng = np.random.default_rng(3)
    bcs = [dde.icbc.IC(geomtime, lambda x: np.sin(x[:, 0:1]), lambda x, on: on),
           dde.icbc.NeumannBC(geomtime, lambda x: np.cos(x[:, 1:2]), lambda x, on: on,
                              component=1),
           dde.icbc.DirichletBC(geomtime, lambda x: 0, lambda x, on: on),
           dde.icbc.RobinBC(geomtime,
                            lambda X, y: -2 * y[:, 0:1]
                            + torch.as_tensor(X[:, 1:2], device=y.device),
                            lambda x, on: on, component=1),
           dde.icbc.PeriodicBC(geomtime, 0, _x_is_1, derivative_order=1, component=1),
           dde.icbc.OperatorBC(geomtime, lambda x, y, _: dde.grad.jacobian(y, x, i=0, j=1),
                               lambda x, _: dde.utils.isclose(x[1], 0)),
           dde.icbc.PointSetBC(np.array([[0.5, 0.5], [0.25, 0.75], [0.6, 0.1]]),
                               np.array([[1.0, 3.0], [2.0, 4.0], [0.0, 1.0]]), component=[0, 1]),
           dde.icbc.PointSetBC(rng.random((5, 2)), rng.random((5, 1)), component=1,
                               batch_size=2)]
    np.random.seed(0)
    data = dde.data.TimePDE(geomtime, _pde_xt, bcs, num_domain=8, num_boundary=6,
                            num_initial=4, train_distribution="pseudo")
    return dde.Model(data, _net([2, 8, 8, 2]))


def test_every_condition_space_time_matches_deepxde(model_xt):
    ts, _ = check_against_deepxde(model_xt)
    assert [t.name for t in ts] == ["pde0", "pde1"] + [f"bc{k}" for k in range(8)]
    # the multi-component PointSetBC: n·k rows, the component's position as a last column
    pset = ts[8]
    assert pset.points.shape == (6, 3)
    assert pset.points[:, 2].tolist() == [0.0, 1.0] * 3
    assert pset.target_values().tolist() == [1.0, 3.0, 2.0, 4.0, 0.0, 1.0]
    # the batched PointSetBC: DeepXDE's current batch and its values
    bc = model_xt.data.bcs[7]
    assert ts[9].n == 2
    assert torch.equal(ts[9].target_values(), bc.values[bc.batch_indices][:, 0])


def test_geometry_x_time_regression(model_xt):
    """GeometryXTime was rejected by pdx.Geometry, so a NeumannBC on a space-time geometry broke
    terms, kernel, trace_weights, angles and the callback (issue 16)."""
    geomtime = model_xt.data.geom
    g = pdx.Geometry(geomtime)
    assert g.dim == 2
    xb, nb = g.sample_boundary(6, generator=1, dtype=torch.float64)
    assert torch.allclose(nb[:, 1], torch.zeros(6, dtype=torch.float64))  # no normal in time
    assert torch.allclose(nb[:, 0].abs(), torch.ones(6, dtype=torch.float64))
    x0 = g.sample_initial(4, generator=2, dtype=torch.float64)
    assert torch.equal(x0[:, 1], torch.zeros(4, dtype=torch.float64))
    with pytest.raises(TypeError, match="geom: sample_initial needs a GeometryXTime"):
        pdx.Geometry(dde.geometry.Interval(0, 1)).sample_initial(3)
    w = pdx.trace_weights(model_xt)
    assert len(w) == 10 and all(np.isfinite(w))
    cos = pdx.angles(model_xt, "bc1", "pde0")  # at the Neumann term's points
    assert cos.shape == (6,) and bool(torch.isfinite(cos).all())
    model_xt.compile("adam", lr=1e-3)
    cb = pdx.TraceWeights(every=1, max_points=4, generator=0)
    model_xt.train(iterations=1, callbacks=[cb], verbose=0)
    assert len(cb.history) == 2


def test_angles_with_point_sets(model_1d, model_xt):
    """angles with a PointSetBC failed whatever the points (issue 16): now the other term is
    evaluated at the PointSetBC's points, or both at the given points."""
    net = model_xt.net
    ts = {t.name: t for t in pdx.terms(model_xt)}

    def ref(rows_a, rows_b):
        Ja = jacobian_oracle(rows_a, net)
        Jb = jacobian_oracle(rows_b, net)
        return (Ja * Jb).sum(1) / (Ja.norm(dim=1) * Jb.norm(dim=1))

    # single-component PointSetBC against the PDE, at the PointSetBC's points, both orders
    p7 = ts["bc7"].points
    pde0 = pdx.terms(model_xt, {"pde0": p7})[0]
    want = ref(lambda: net(p7)[:, 1], lambda: pde0.residual(net))
    assert rel_err(pdx.angles(model_xt, "bc7", "pde0"), want) <= TOL
    assert rel_err(pdx.angles(model_xt, "pde0", "bc7"), want) <= TOL
    # the multi-component one: one angle per (point, component) row
    pts = ts["bc6"].points[:, :2]
    pde1 = pdx.terms(model_xt, {"pde1": pts})[1]
    comp = ts["bc6"].points[:, 2].long()
    want = ref(lambda: net(pts).gather(1, comp[:, None])[:, 0], lambda: pde1.residual(net))
    assert rel_err(pdx.angles(model_xt, "bc6", "pde1"), want) <= TOL
    # at given points, labels are not needed: the PointSetBC's gradient is that of u_c there
    x = torch.tensor([[0.1, 0.2], [0.9, 0.4]], dtype=torch.float64,
                     device=next(net.parameters()).device)
    pde0x = pdx.terms(model_xt, {"pde0": x})[0]
    want = ref(lambda: net(x)[:, 1], lambda: pde0x.residual(net))
    assert rel_err(pdx.angles(model_xt, "bc7", "pde0", x), want) <= TOL
    # the PointSetOperatorBC of the 1-D model
    cos = pdx.angles(model_1d, "bc8", "pde")
    assert cos.shape == (3,) and bool(torch.isfinite(cos).all())
    with pytest.raises(ValueError, match="term_b: angles between two PointSetBC terms with lists"):
        pdx.angles(model_xt, "bc6", "bc6")


# ------------------------------------------------------------------------- Interface2DBC
def _pde_rect(x, y):
    return dde.grad.hessian(y, x, component=0, i=0, j=0) + y[:, 1:2]


def test_interface_2d_matches_deepxde():
    geom = dde.geometry.Rectangle([0, 0], [1, 1])
    left = lambda x, on: on and dde.utils.isclose(x[0], 0)  # noqa: E731
    right = lambda x, on: on and dde.utils.isclose(x[0], 1)  # noqa: E731
    bcs = [dde.icbc.Interface2DBC(geom, lambda x: x[:, 1:2], left, right, direction="normal"),
           dde.icbc.Interface2DBC(geom, lambda x: 0, left, right, direction="tangent")]
    data = dde.data.PDE(geom, _pde_rect, bcs, num_domain=6, num_boundary=16,
                        train_distribution="uniform", exclusions=np.array([[0, 0], [0, 1],
                                                                           [1, 0], [1, 1]]))
    model = dde.Model(data, _net([2, 8, 2]))
    ts, _ = check_against_deepxde(model)
    assert ts[1].n * 2 == data.num_bcs[0]
    with pytest.raises(ValueError, match=r"points\['bc0'\]: a Interface2DBC term has labels only"):
        pdx.terms(model, {"bc0": torch.tensor([[0.5, 0.5]], dtype=torch.float64)})


# ------------------------------------------------------------------------------- errors
def test_unsupported_condition_and_bad_functions():
    geom = dde.geometry.Interval(0, 1)

    class Custom(dde.icbc.BC):
        def error(self, X, inputs, outputs, beg, end, aux_var=None):
            return outputs[beg:end]

    np.random.seed(0)
    data = dde.data.PDE(geom, lambda x, y: dde.grad.hessian(y, x),
                        [Custom(geom, lambda x, on: on, 0)], num_domain=5, num_boundary=2)
    m = dde.Model(data, _net([1, 4, 1]))
    with pytest.raises(ValueError, match=r"model.data.bcs\[0\]: unsupported boundary condition "
                                         r"Custom; supported: DirichletBC, NeumannBC, RobinBC"):
        pdx.terms(m)

    robin = dde.icbc.RobinBC(geom, lambda X, y, z: y, lambda x, on: on)
    data = dde.data.PDE(geom, lambda x, y: dde.grad.hessian(y, x), [robin], num_domain=5,
                        num_boundary=2)
    with pytest.raises(ValueError, match=r"model.data.bcs\[0\]: expected a Robin function "
                                         r"func\(X, y\), got 3 arguments"):
        pdx.terms(dde.Model(data, _net([1, 4, 1])))

    def slice_op(x, y, X):
        return dde.grad.jacobian(y[:, 0:1], x)

    op = dde.icbc.OperatorBC(geom, slice_op, lambda x, on: on)
    data = dde.data.PDE(geom, lambda x, y: dde.grad.hessian(y, x), [op], num_domain=5,
                        num_boundary=2)
    with pytest.raises(ValueError, match=r"model.data.bcs\[0\]: dde.grad.jacobian was called on "
                                         r"a tensor that is neither"):
        pdx.terms(dde.Model(data, _net([1, 4, 1])))
