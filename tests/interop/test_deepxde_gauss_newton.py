"""Gauss–Newton training of DeepXDE models (``pinnk.interop.deepxde.GaussNewton``), in float64.

The step is pinnk's ``gauss_newton_step`` on the converted terms with weights 2·loss_weights,
and also the parameter-space Levenberg–Marquardt step of DeepXDE's own loss (its gradient by
DeepXDE's backward pass, J of DeepXDE's errors one row at a time); accepted steps never increase
DeepXDE's loss; the loss history has DeepXDE's layout; callbacks are called as ``model.train``
calls them; unsupported set-ups are clear errors.
"""

import warnings

import numpy as np
import pytest
import torch

import pinnk
from pinnk.interop import deepxde as pdx
from dde_oracle import dde_errors
from oracle import jacobian_oracle, rel_err

dde = pytest.importorskip("deepxde")

pytestmark = pytest.mark.usefixtures("f64")  # DeepXDE in float64 (conftest.py)


def _pde(x, y):
    return -dde.grad.hessian(y, x) - np.pi ** 2 * torch.sin(np.pi * x)


def _poisson(seed=0, sizes=(1, 8, 8, 1), compile=True, loss_weights=(1.0, 10.0, 3.0), **net_kw):
    """−u'' = π² sin(πx) on [−1, 1], Dirichlet left, Neumann right: three loss terms."""
    geom = dde.geometry.Interval(-1, 1)
    bcs = [dde.icbc.DirichletBC(geom, lambda x: 0, lambda x, on: on and x[0] < 0),
           dde.icbc.NeumannBC(geom, lambda x: -np.pi, lambda x, on: on and x[0] > 0)]
    np.random.seed(seed)
    data = dde.data.PDE(geom, _pde, bcs, num_domain=14, num_boundary=2,
                        train_distribution="uniform", solution=lambda x: np.sin(np.pi * x),
                        num_test=50)
    torch.manual_seed(seed)
    model = dde.Model(data, dde.nn.FNN(list(sizes), "tanh", "Glorot normal", **net_kw))
    if compile:
        model.compile("adam", lr=1e-3, loss_weights=None if loss_weights is None
                      else list(loss_weights), metrics=["l2 relative error"], verbose=0)
    return model


def _diffusion(seed=0):
    """DeepXDE's diffusion_1d, small: a GeometryXTime with a DirichletBC and an IC."""
    geom = dde.geometry.GeometryXTime(dde.geometry.Interval(-1, 1),
                                      dde.geometry.TimeDomain(0, 1))

    def pde(x, y):
        s = torch.sin(np.pi * x[:, 0:1])
        return (dde.grad.jacobian(y, x, j=1) - dde.grad.hessian(y, x, j=0)
                + torch.exp(-x[:, 1:]) * (s - np.pi ** 2 * s))

    def exact(x):
        return np.sin(np.pi * x[:, 0:1]) * np.exp(-x[:, 1:])

    np.random.seed(seed)
    data = dde.data.TimePDE(geom, pde, [dde.icbc.DirichletBC(geom, exact, lambda _, on: on),
                                        dde.icbc.IC(geom, exact, lambda _, on: on)],
                            num_domain=20, num_boundary=8, num_initial=6, solution=exact,
                            num_test=100)
    torch.manual_seed(seed)
    model = dde.Model(data, dde.nn.FNN([2, 12, 12, 1], "tanh", "Glorot normal"))
    model.compile("adam", lr=1e-3, metrics=["l2 relative error"], verbose=0)
    return model


def _params(model):
    return torch.cat([p.detach().reshape(-1).clone() for p in model.net.parameters()])


def _flat(direction):
    return torch.cat([d.reshape(-1) for d in direction])


def _dde_loss(model):
    data = model.data
    return float(model.outputs_losses_train(data.train_x, data.train_y, None)[1].sum().detach())


# ------------------------------------------------------------------------------- the step
def test_the_step_is_pinnk_gauss_newton_step_on_the_converted_terms():
    model = _poisson()
    mu = 10.0  # accepted at the first solve from this initialisation
    gn = pdx.GaussNewton(damping=mu, geodesic=0.0)
    assert gn.weights(model) == [2.0, 20.0, 6.0]  # DeepXDE's Σ w mean(r²) = pinnk's λ = 2w
    ref = pinnk.gauss_newton_step(model.net, pdx.terms(model), [2.0, 20.0, 6.0], damping=mu)
    system = gn.system(model)
    assert system.loss == pytest.approx(_dde_loss(model), rel=1e-12)
    assert rel_err(_flat(system.solve(mu).direction), _flat(ref.direction)) <= 1e-12
    theta0 = _params(model)
    rec = gn.step(model)
    assert rec["solves"] == 1 and rec["step_size"] == 1.0 and rec["damping"] == mu
    assert rel_err(_params(model) - theta0, _flat(ref.direction)) <= 1e-10
    assert rec["loss"] == pytest.approx(ref.loss, rel=1e-12)
    assert rec["loss_after"] == pytest.approx(_dde_loss(model), rel=1e-14)
    assert rec["loss_after"] < rec["loss"]


def test_the_step_is_levenberg_marquardt_on_deepxdes_own_loss():
    """δ = −(JᵀS²J + μI)⁻¹ ∇L with ∇L by DeepXDE's own backward pass and J of DeepXDE's errors
    built one row at a time (reverse-mode dde.grad): independent of pinnk's kernel and terms."""
    model = _poisson(loss_weights=(2.0, 5.0, 0.5))
    mu = 1e-2
    data = model.data
    loss = model.outputs_losses_train(data.train_x, data.train_y, None)[1].sum()
    params = list(model.net.parameters())
    grad = torch.cat([g.reshape(-1) for g in torch.autograd.grad(loss, params)])
    errors = dde_errors(model)
    w = [2.0, 5.0, 0.5]
    JtJ = sum((2.0 * wi / e.shape[0]) * (J.T @ J) for wi, e, J in zip(
        w, errors, [jacobian_oracle(lambda k=k: dde_errors(model)[k], model.net)
                    for k in range(len(errors))]))
    delta = -torch.linalg.solve(JtJ + mu * torch.eye(JtJ.shape[0], dtype=JtJ.dtype), grad)
    step = pdx.GaussNewton(damping=mu).system(model).solve(mu)
    assert rel_err(_flat(step.direction), delta) <= 1e-8


# ---------------------------------------------------------------------- training, history
def test_train_never_increases_the_loss_and_reports_like_deepxde(tmp_path):
    model = _diffusion()
    model.train(iterations=5, display_every=5, verbose=0)  # an Adam warm start: steps 0, 5
    gn = pdx.GaussNewton(damping=1e-2)
    lh, ts = gn.train(model, iterations=12, display_every=4, verbose=0)
    assert lh is model.losshistory and ts is model.train_state
    # DeepXDE's layout: a record at the start, at every multiple of display_every, at the end
    assert lh.steps == [0, 5, 5, 8, 12, 16, 17]
    assert ts.step == ts.iteration == 17
    n_terms = 3  # pde, bc0 (Dirichlet), bc1 (IC)
    for name in ("loss_train", "loss_test"):
        rows = getattr(lh, name)
        assert len(rows) == len(lh.steps)
        assert all(np.shape(r) == (n_terms,) for r in rows)
    assert all(len(m) == 1 for m in lh.metrics_test)  # the l2 relative error
    totals = [float(np.sum(r)) for r in lh.loss_train[2:]]  # from the start of GN
    assert all(b <= a for a, b in zip(totals, totals[1:]))
    assert totals[-1] < 1e-2 * totals[0]
    # gn.history: every iteration, each loss no larger than the one before
    assert [h["step"] for h in gn.history] == list(range(6, 18))
    seq = [h["loss"] for h in gn.history] + [gn.history[-1]["loss_after"]]
    assert all(b <= a for a, b in zip(seq, seq[1:]))
    assert seq[-1] == pytest.approx(totals[-1], rel=1e-12)
    for h in gn.history:
        assert h["loss_after"] <= h["loss"]
        assert h["step_size"] in (0.0, 1.0) and h["solves"] >= 1
        assert (h["loss_after"] < h["loss"]) == (h["step_size"] == 1.0)
    assert ts.best_step == 17 and ts.best_loss_train == pytest.approx(totals[-1], rel=1e-12)
    # DeepXDE's own tools read it
    dde.saveplot(lh, ts, issave=True, isplot=False, output_dir=str(tmp_path))
    saved = np.loadtxt(tmp_path / "loss.dat")
    assert saved.shape == (len(lh.steps), 1 + 2 * n_terms + 1)
    # a second call continues with the damping where the first stopped (the first solve of an
    # iteration uses μ; an accepted re-solve a larger one)
    mu = gn.damping
    assert mu != 1e-2
    gn.train(model, iterations=1, verbose=0)
    assert gn.history[-1]["damping"] >= mu
    # and DeepXDE's own optimizer carries on from there
    model.train(iterations=2, display_every=1, verbose=0)
    assert model.losshistory.steps[-3:] == [18, 19, 20]


def test_loss_weights_are_deepxdes_and_geodesic_steps_are_accepted():
    model = _poisson(sizes=(1, 16, 16, 1), loss_weights=(1.0, 100.0, 10.0))
    gn = pdx.GaussNewton(damping=1e-3, geodesic=0.75)
    lh, _ = gn.train(model, iterations=25, display_every=25, verbose=0)
    assert any(h.get("accelerated") for h in gn.history)
    first, last = np.asarray(lh.loss_train[0]), np.asarray(lh.loss_train[-1])
    assert last.sum() < 1e-6 * first.sum()
    # the weighted losses DeepXDE recorded are the weights times the mean squares of its errors
    means = np.array([float((e.detach() ** 2).mean()) for e in dde_errors(model)])
    np.testing.assert_allclose(last, [1.0, 100.0, 10.0] * means, rtol=1e-6, atol=1e-30)


@pytest.mark.parametrize("options", [dict(kernel_points=6, generator=0),
                                     dict(method="cg", cg_tol=1e-10, geodesic=0.0)])
def test_subset_and_matrix_free_variants_never_increase_the_loss(options):
    model = _poisson()
    gn = pdx.GaussNewton(damping=1e-2, **options)
    gn.train(model, iterations=6, display_every=1, verbose=0)
    totals = [float(np.sum(r)) for r in model.losshistory.loss_train]
    assert all(b <= a for a, b in zip(totals, totals[1:]))
    assert totals[-1] < 0.5 * totals[0]
    if options.get("method") == "cg":
        assert all(h["cg_iterations"] > 0 for h in gn.history)


def test_cg_and_dense_give_the_same_step():
    model = _poisson()
    dense = pdx.GaussNewton(method="dense").system(model).solve(1e-2)
    cg = pdx.GaussNewton(method="cg", cg_tol=1e-13).system(model).solve(1e-2)
    assert rel_err(_flat(cg.direction), _flat(dense.direction)) <= 1e-6


# ------------------------------------------------------------------------------ callbacks
class _Recorder(dde.callbacks.Callback):
    def __init__(self, stop_at=None):
        super().__init__()
        self.calls = []
        self.stop_at = stop_at

    def on_train_begin(self):
        self.calls.append("train_begin")

    def on_epoch_begin(self):
        self.calls.append("epoch_begin")

    def on_batch_begin(self):
        self.calls.append("batch_begin")

    def on_batch_end(self):
        self.calls.append("batch_end")

    def on_epoch_end(self):
        self.calls.append(("epoch_end", self.model.train_state.step))
        if self.stop_at is not None and self.model.train_state.step >= self.stop_at:
            self.model.stop_training = True

    def on_train_end(self):
        self.calls.append("train_end")


def test_callbacks_are_called_as_model_train_calls_them():
    model = _poisson()
    rec = _Recorder()
    pdx.GaussNewton().train(model, iterations=3, callbacks=[rec], verbose=0)
    per = ["epoch_begin", "batch_begin", "batch_end"]
    assert rec.calls == (["train_begin"] + per + [("epoch_end", 1)] + per + [("epoch_end", 2)]
                         + per + [("epoch_end", 3)] + ["train_end"])
    stop = _Recorder(stop_at=5)
    pdx.GaussNewton().train(model, iterations=10, callbacks=[stop], verbose=0)
    assert model.train_state.step == 5 and stop.calls[-1] == "train_end"


def test_resampled_points_and_trace_weights_are_used_from_the_next_iteration():
    model = _poisson(loss_weights=None)
    old = model.data.train_x
    resampler = dde.callbacks.PDEPointResampler(period=2)
    trace = pdx.TraceWeights(every=2, max_points=None)
    gn = pdx.GaussNewton(damping=1e-2)
    gn.train(model, iterations=4, callbacks=[resampler, trace], verbose=0)
    assert model.data.train_x is not old
    # the last iteration ran on the points and weights set by the callbacks before it
    w = [float(v) for v in model.loss_weights]
    assert gn.weights(model) == [2.0 * v for v in w]
    sys_ = gn.system(model)
    assert torch.equal(sys_.terms[0].points,
                       torch.as_tensor(model.data.train_x[sum(model.data.num_bcs):]))
    assert trace.history and all(len(h[1]) == 3 for h in trace.history)


def test_converged_to_round_off_stops_early():
    model = _poisson(sizes=(1, 16, 16, 1))
    gn = pdx.GaussNewton(damping=1e-3, max_damping=1e-2)
    gn.train(model, iterations=200, display_every=1000, verbose=0)
    last = gn.history[-1]
    assert model.train_state.step < 200
    assert last["step_size"] == 0.0 and last["next_damping"] == 1e-2
    assert model.losshistory.steps[-1] == model.train_state.step


# --------------------------------------------------------------------------------- errors
def test_float32_warns():
    dde.config.set_default_float("float32")
    try:
        model = _poisson()
        with pytest.warns(UserWarning, match=r"GaussNewton: model.net is torch.float32; "
                                             r"Gauss–Newton in float32 stalls .* "
                                             r"dde.config.set_default_float\('float64'\)"):
            pdx.GaussNewton().train(model, iterations=2, verbose=0)
    finally:
        dde.config.set_default_float("float64")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pdx.GaussNewton().train(_poisson(), iterations=1, verbose=0)


@pytest.mark.parametrize("kw, match", [
    (dict(damping=0), "damping: expected a positive number"),
    (dict(damping=1e9), r"damping: expected a value in \[min_damping, max_damping\]"),
    (dict(method="lu"), "method: expected one of auto, dense, cg, got 'lu'"),
    (dict(geodesic=-1), "geodesic"),
    (dict(retries=-1), "retries"),
    (dict(kernel_points=0), "kernel_points"),
])
def test_bad_options(kw, match):
    with pytest.raises(ValueError, match=match):
        pdx.GaussNewton(**kw)


def test_bad_generator():
    with pytest.raises(TypeError, match="generator: expected a torch.Generator"):
        pdx.GaussNewton(kernel_points=4, generator="seed")
    with pytest.raises(ValueError, match="generator: draws the subsets of kernel_points, which "
                                         "is not set"):
        pdx.GaussNewton(generator=0)


def test_bad_train_arguments():
    model = _poisson()
    gn = pdx.GaussNewton()
    with pytest.raises(ValueError, match="iterations"):
        gn.train(model, iterations=0)
    with pytest.raises(ValueError, match="display_every"):
        gn.train(model, iterations=1, display_every=0)
    with pytest.raises(TypeError, match=r"callbacks\[0\]: expected a deepxde.callbacks.Callback"):
        gn.train(model, iterations=1, callbacks=[print])


def test_unsupported_models_are_clear_errors(monkeypatch):
    gn = pdx.GaussNewton()
    with pytest.raises(ValueError, match=r"model: not compiled; call model.compile"):
        gn.train(_poisson(compile=False), iterations=1)
    with pytest.raises(TypeError, match="model: expected a deepxde.Model"):
        gn.train(object(), iterations=1)
    model = _poisson()
    model.loss_weights = [1.0, 2.0]
    with pytest.raises(ValueError, match=r"model.loss_weights: expected 3 weights"):
        gn.train(model, iterations=1, verbose=0)
    model = _poisson()
    model.compile("adam", lr=1e-3, loss="MAE", verbose=0)
    with pytest.raises(ValueError, match=r"DeepXDE's loss entry 'pde' \(PDE\) is .* Gauss–Newton "
                                         r"needs DeepXDE's mean-square loss"):
        gn.train(model, iterations=1, verbose=0)
    model = _poisson()
    model.compile("adam", lr=1e-3, external_trainable_variables=[dde.Variable(1.0)], verbose=0)
    with pytest.raises(ValueError, match="external_trainable_variables"):
        gn.train(model, iterations=1, verbose=0)
    with pytest.raises(ValueError, match="regularizer"):
        gn.train(_poisson(regularization=["l2", 1e-4]), iterations=1, verbose=0)
    model = _poisson()
    model.net.linears.insert(1, torch.nn.Dropout(0.1))  # a user's network with dropout
    with pytest.raises(ValueError, match=r"dropout \(p=0.1\)"):
        gn.train(model, iterations=1, verbose=0)
    model = _poisson()
    monkeypatch.setattr(dde.backend, "backend_name", "tensorflow")
    with pytest.raises(TypeError, match="'tensorflow' backend; pinnk needs the PyTorch"):
        gn.train(model, iterations=1, verbose=0)
