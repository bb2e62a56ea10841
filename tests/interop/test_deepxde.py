"""pinnk.interop.deepxde: DeepXDE geometries, models, kernels and the trace-rule callback.

Kernel blocks are checked against the brute-force oracle applied to DeepXDE's *own* residuals
(reverse-mode dde.grad on a requires_grad input, bc.error), in float64 (relative error <= 1e-10).
"""

import numpy as np
import pytest
import torch

import pinnk
from pinnk.interop import deepxde as pdx
from oracle import jacobian_oracle, rel_err

dde = pytest.importorskip("deepxde")

TOL = 1e-10


def _pde(x, y):
    # -Δu = 2π² sin(πx) sin(πy), plus a nonlinear term to exercise products with y
    f = 2 * np.pi**2 * torch.sin(np.pi * x[:, 0:1]) * torch.sin(np.pi * x[:, 1:2])
    return (-dde.grad.hessian(y, x, i=0, j=0) - dde.grad.hessian(y, x, i=1, j=1) - f
            + 0.5 * y * dde.grad.jacobian(y, x, i=0, j=1))


def _build(num_domain=14, num_boundary=10, seed=0):
    geom = dde.geometry.Rectangle([0, 0], [1, 1])
    bcs = [dde.icbc.DirichletBC(geom, lambda x: np.sin(np.pi * x[:, 0:1]),
                                lambda x, on: on and x[0] < 0.5),
           dde.icbc.NeumannBC(geom, lambda x: np.cos(x[:, 1:2]),
                              lambda x, on: on and x[0] >= 0.5)]
    np.random.seed(seed)
    data = dde.data.PDE(geom, _pde, bcs, num_domain=num_domain, num_boundary=num_boundary,
                        train_distribution="pseudo")
    torch.manual_seed(seed)
    net = dde.nn.FNN([2, 10, 10, 1], "tanh", "Glorot normal")
    return dde.Model(data, net)


@pytest.fixture(scope="module")
def model(f64):
    return _build()


def _dde_residuals(model):
    """DeepXDE's own residuals (reverse mode), in its loss order: [pde, bc0, bc1]."""
    data, net = model.data, model.net
    X = data.train_x
    starts = np.cumsum([0] + data.num_bcs)

    def run():
        x = torch.as_tensor(X, device=next(net.parameters()).device).requires_grad_(True)
        y = net(x)
        dde.grad.clear()
        out = [_pde(x, y)[starts[-1]:, 0]]
        for k, bc in enumerate(data.bcs):
            out.append(bc.error(X, x, y, int(starts[k]), int(starts[k + 1]))[:, 0])
        dde.grad.clear()
        return out

    return run


def test_terms_follow_deepxde_loss_order(model):
    ts = pdx.terms(model)
    assert [t.name for t in ts] == ["pde", "bc0", "bc1"]
    assert [t.order for t in ts] == [2, 0, 1]
    assert ts[0].is_residual and not ts[1].is_residual and not ts[2].is_residual
    assert ts[0].points.dtype == torch.float64
    # the residuals equal DeepXDE's own (reverse-mode) residuals
    ref = _dde_residuals(model)()
    for t, r in zip(ts, ref):
        assert rel_err(t.residual(model.net), r) <= TOL


def test_blocks_match_oracle(model):
    K = pdx.kernel(model)
    assert K.implementations == ["jacobian"] * 3
    run = _dde_residuals(model)
    J = [jacobian_oracle(lambda k=k: run()[k], model.net) for k in range(3)]
    for i in range(3):
        for j in range(i, 3):
            assert rel_err(K.block(i, j), J[i] @ J[j].T) <= TOL, (i, j)
    m = torch.tensor([float((Ji * Ji).sum()) / Ji.shape[0] for Ji in J], dtype=torch.float64)
    expected = (m.sum() / m).tolist()
    assert np.allclose(pdx.trace_weights(model), expected, rtol=1e-10, atol=0)


def test_angles_match_oracle(model):
    g = pdx.Geometry(model.data.geom)
    xb, _ = g.sample_boundary(5, generator=3, dtype=torch.float64)
    cos = pdx.angles(model, "pde", "bc1", xb)
    ts = {t.name: t for t in pdx.terms(model, {"pde": xb, "bc1": xb})}
    Ja = jacobian_oracle(lambda: ts["pde"].residual(model.net), model.net)
    Jb = jacobian_oracle(lambda: ts["bc1"].residual(model.net), model.net)
    ref = (Ja * Jb).sum(1) / (Ja.norm(dim=1) * Jb.norm(dim=1))
    assert cos.shape == (5,)
    assert rel_err(cos, ref) <= TOL


def test_points_override_and_targets(model):
    xs = torch.tensor([[0.0, 0.25], [0.0, 0.75]], dtype=torch.float64)
    ts = pdx.terms(model, {"bc0": xs})
    assert torch.equal(ts[1].points, xs)
    assert torch.allclose(ts[1].target_values(), torch.sin(np.pi * xs[:, 0]))
    with pytest.raises(ValueError, match=r"points: unknown term name\(s\) \['nope'\]"):
        pdx.terms(model, {"nope": xs})
    with pytest.raises(TypeError, match="points: expected a mapping"):
        pdx.terms(model, [xs])


def test_geometry_sampling_reproducible_and_normals(f64):
    geom = dde.geometry.Disk([0.2, -0.1], 0.7)
    g = pdx.Geometry(geom)
    assert g.dim == 2
    a = g.sample(50, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    b = g.sample(50, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    c = g.sample(50, generator=torch.Generator().manual_seed(6), dtype=torch.float64)
    assert a.shape == (50, 2) and a.dtype == torch.float64
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert bool(torch.as_tensor(geom.inside(a.cpu().numpy())).all())
    state = np.random.get_state()[1].copy()
    xb, nb = g.sample_boundary(40, generator=7, dtype=torch.float64)
    assert np.array_equal(np.random.get_state()[1], state)  # numpy's global RNG restored
    xb2, _ = g.sample_boundary(40, generator=7, dtype=torch.float64)
    assert torch.equal(xb, xb2)
    assert torch.allclose(nb.norm(dim=1), torch.ones(40, dtype=torch.float64))
    eps = 1e-3
    assert not bool(torch.as_tensor(geom.inside((xb + eps * nb).cpu().numpy())).any())
    assert bool(torch.as_tensor(geom.inside((xb - eps * nb).cpu().numpy())).all())
    # a Neumann term with the normal field: the jacobian kernel path uses the lookup table
    net = pinnk.MLP(2, 1, 8, 2, dtype=torch.float64)
    term = pinnk.Term("flux", pinnk.ops.directional(g.normal_field(xb)), xb,
                      target=torch.zeros(40, dtype=torch.float64))
    K = pinnk.ntk(net, [term], "jacobian")
    J = jacobian_oracle(lambda: term.residual(net), net)  # numpy normals on plain tensors
    assert rel_err(K.block(0, 0), J @ J.T) <= TOL
    with pytest.raises(TypeError, match="geom: expected a deepxde.geometry.Geometry"):
        pdx.Geometry("disk")
    with pytest.raises(ValueError, match="n: expected an integer >= 1"):
        g.sample(0)
    with pytest.raises(TypeError, match="generator: expected a torch.Generator"):
        g.sample(3, generator="seed")


def test_callback_sets_trace_weights(f64):
    model = _build(num_domain=10, num_boundary=8, seed=1)
    model.compile("adam", lr=1e-3, loss_weights=[1.0, 1.0, 1.0])
    cb = pdx.TraceWeights(every=2, kind="mean")
    model.train(iterations=4, callbacks=[cb], display_every=1000, verbose=0)
    assert len(cb.history) == 3  # train begin, iterations 2 and 4
    assert [it for it, _ in cb.history] == [0, 2, 4]
    expected = pdx.trace_weights(model, "mean")
    assert np.allclose(model.loss_weights, expected, rtol=1e-10, atol=0)
    assert not np.allclose(model.loss_weights, [1.0, 1.0, 1.0])
    # DeepXDE's training loss uses the new weights without recompiling
    X = model.data.train_x
    weighted = model.outputs_losses_train(X, model.data.train_y, None)[1].detach()
    saved, model.loss_weights = model.loss_weights, None
    raw = model.outputs_losses_train(X, model.data.train_y, None)[1].detach()
    model.loss_weights = saved
    assert torch.allclose(weighted, raw * torch.tensor(expected, dtype=raw.dtype), rtol=1e-12)


def test_callback_momentum_and_subsets(f64):
    model = _build(num_domain=10, num_boundary=8, seed=2)
    model.compile("adam", lr=1e-3, loss_weights=[1.0, 1.0, 1.0])
    cb = pdx.TraceWeights(every=1, momentum=0.5, max_points=4, generator=0)
    ref = pdx.TraceWeights(every=1, max_points=4, generator=0)  # same subsets, no momentum
    cb.set_model(model)
    ref.set_model(model)
    losses = pdx._losses(model)[0]
    full = [loss.points.shape[0] for loss in losses]
    sizes = [t.n for t in pdx.TraceWeights(max_points=4, generator=0)._terms(losses)]
    assert sizes == [min(4, n) for n in full] and max(full) > 4
    w1, r1 = cb.update(), ref.update()
    assert np.allclose(w1, r1, rtol=1e-12)
    w2, r2 = cb.update(), ref.update()
    assert not np.allclose(r1, r2)  # new subsets
    assert np.allclose(w2, [0.5 * a + 0.5 * b for a, b in zip(r1, r2)], rtol=1e-12)
    assert cb.trace == w2


def test_errors(model, monkeypatch, f64):
    with pytest.raises(TypeError, match="model: expected a deepxde.Model"):
        pdx.terms(torch.nn.Linear(2, 1))
    with pytest.raises(ValueError, match="kind: expected 'mean' or 'sum'"):
        pdx.trace_weights(model, kind="max")
    with pytest.raises(ValueError, match="every: expected an integer >= 1"):
        pdx.TraceWeights(every=0)
    with pytest.raises(ValueError, match=r"momentum: expected a number in \[0, 1\)"):
        pdx.TraceWeights(momentum=1.0)
    with pytest.raises(ValueError, match="term_a: unknown term name 'u'"):
        pdx.angles(model, "u", "pde", torch.rand(3, 2, dtype=torch.float64))
    with pytest.raises(ValueError, match="index: the PDE function returned 1 residual"):
        pdx.PDEOperator(_pde, 3)(model.net, torch.rand(3, 2, dtype=torch.float64))
    with pytest.raises(ValueError, match="pde: expected a function of \\(x, y\\)"):
        pdx.PDEOperator(lambda x, y, aux: y)

    monkeypatch.setattr(dde.backend, "backend_name", "tensorflow")
    with pytest.raises(TypeError, match="model: DeepXDE uses the 'tensorflow' backend"):
        pdx.kernel(model)
    monkeypatch.undo()

    geom = dde.geometry.Interval(0, 1)
    def autograd_pde(x, y):
        return torch.autograd.grad(y.sum(), x, create_graph=True)[0]

    data = dde.data.PDE(geom, autograd_pde, [], num_domain=5)
    m = dde.Model(data, dde.nn.FNN([1, 4, 1], "tanh", "Glorot normal"))
    with pytest.raises(ValueError, match="pde: the DeepXDE function failed"):
        pdx.terms(m)

    def slice_pde(x, y):
        return dde.grad.jacobian(y[:, 0:1], x)

    data = dde.data.PDE(geom, slice_pde, [], num_domain=5)
    m = dde.Model(data, dde.nn.FNN([1, 4, 1], "tanh", "Glorot normal"))
    with pytest.raises(ValueError, match="pde: dde.grad.jacobian was called on a tensor that is "
                                         "neither the network output"):
        pdx.terms(m)


def test_multi_output_pde_and_pointset_ic(f64):
    geom = dde.geometry.GeometryXTime(dde.geometry.Interval(0, 1), dde.geometry.TimeDomain(0, 1))

    def pde(x, y):
        return [dde.grad.jacobian(y, x, i=0, j=1) - dde.grad.jacobian(y, x, i=1, j=0),
                dde.grad.jacobian(y, x, i=1, j=1) - dde.grad.hessian(y, x, component=0, i=0, j=0)]

    ic = dde.icbc.IC(geom, lambda x: np.sin(x[:, 0:1]), lambda x, on: on, component=1)
    obs = dde.icbc.PointSetBC(np.array([[0.5, 0.5], [0.25, 0.75]]), np.array([[1.0], [2.0]]),
                              component=0)
    np.random.seed(0)
    data = dde.data.TimePDE(geom, pde, [ic, obs], num_domain=8, num_initial=4,
                            train_distribution="pseudo")
    torch.manual_seed(0)
    net = dde.nn.FNN([2, 6, 2], "tanh", "Glorot normal")
    model = dde.Model(data, net)
    ts = pdx.terms(model)
    assert [t.name for t in ts] == ["pde0", "pde1", "bc0", "bc1"]
    assert torch.equal(ts[3].target_values(), torch.tensor([1.0, 2.0], dtype=torch.float64))
    K = pdx.kernel(model)
    start = sum(data.num_bcs)

    def r1():
        xx = torch.as_tensor(data.train_x).requires_grad_(True)
        dde.grad.clear()
        out = pde(xx, net(xx))[1][start:, 0]
        dde.grad.clear()
        return out

    J1 = jacobian_oracle(r1, net)
    assert rel_err(K.block("pde1", "pde1"), J1 @ J1.T) <= TOL
    Jic = jacobian_oracle(lambda: ts[2].residual(net), net)
    assert rel_err(K.block("pde1", "bc0"), J1 @ Jic.T) <= TOL
