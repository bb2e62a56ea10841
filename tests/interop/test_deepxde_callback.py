"""The TraceWeights callback's behaviour around the user's weights, recompiles, L-BFGS and
single-term models (issue 16's "behaviour a DeepXDE user trips over")."""

import warnings

import numpy as np
import pytest
import torch

from pinnk.interop import deepxde as pdx

dde = pytest.importorskip("deepxde")


pytestmark = pytest.mark.usefixtures("f64")  # DeepXDE in float64 (conftest.py)


def _pde(x, y):
    return -dde.grad.hessian(y, x) - np.pi ** 2 * torch.sin(np.pi * x)


def _model(seed=0):
    """Poisson on [-1, 1] with a Dirichlet (left) and a Neumann (right) condition: 3 terms."""
    geom = dde.geometry.Interval(-1, 1)
    bcs = [dde.icbc.DirichletBC(geom, lambda x: 0, lambda x, on: on and x[0] < 0),
           dde.icbc.NeumannBC(geom, lambda x: -np.pi, lambda x, on: on and x[0] > 0)]
    np.random.seed(seed)
    data = dde.data.PDE(geom, _pde, bcs, num_domain=12, num_boundary=2,
                        train_distribution="uniform")
    torch.manual_seed(seed)
    return dde.Model(data, dde.nn.FNN([1, 8, 8, 1], "tanh", "Glorot normal"))


def _ours(record):
    return [str(w.message) for w in record if "TraceWeights" in str(w.message)]


def test_user_weights_multiply_is_the_default():
    model = _model()
    model.compile("adam", lr=1e-3, loss_weights=[1, 100, 1000])
    cb = pdx.TraceWeights(every=1, max_points=None)
    with pytest.warns(UserWarning, match=r"TraceWeights\(user_weights='multiply'\): "
                                         r"model.loss_weights \[1, 100, 1000\] are kept as "
                                         r"factors: loss_weights = \[1, 100, 1000\] × trace "
                                         r"weights \(user_weights='replace' drops them\)"):
        model.train(iterations=2, callbacks=[cb], verbose=0)
    lam = pdx.trace_weights(model)
    assert np.allclose(model.loss_weights, [1 * lam[0], 100 * lam[1], 1000 * lam[2]],
                       rtol=1e-12)
    assert np.allclose(cb.trace, lam, rtol=1e-12)
    # a second training with the same callback: the base stays the user's, no second warning
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        model.train(iterations=1, callbacks=[cb], verbose=0)
    assert _ours(rec) == []
    lam = pdx.trace_weights(model)
    assert np.allclose(model.loss_weights, [lam[0], 100 * lam[1], 1000 * lam[2]], rtol=1e-12)


def test_user_weights_replace():
    model = _model()
    cb = pdx.TraceWeights(every=1, max_points=None, user_weights="replace")
    model.compile("adam", lr=1e-3, loss_weights=[1, 100, 1])
    with pytest.warns(UserWarning, match=r"TraceWeights\(user_weights='replace'\): "
                                         r"model.loss_weights \[1, 100, 1\] are replaced by the "
                                         r"trace weights \(user_weights='multiply' keeps them"):
        model.train(iterations=2, callbacks=[cb], verbose=0)
    assert np.allclose(model.loss_weights, pdx.trace_weights(model), rtol=1e-12)


def test_no_warning_without_user_weights():
    for lw in (None, [1.0, 1.0, 1.0]):
        model = _model()
        model.compile("adam", lr=1e-3, loss_weights=lw)
        with warnings.catch_warnings(record=True) as rec:
            warnings.simplefilter("always")
            model.train(iterations=1, callbacks=[pdx.TraceWeights(every=1)], verbose=0)
        assert _ours(rec) == []


@pytest.fixture
def lbfgs_steps():
    """L-BFGS in steps of 10 iterations up to 40 (DeepXDE: 1000 up to 15000); reset after."""
    from deepxde.optimizers.config import LBFGS_options

    dde.optimizers.set_LBFGS_options(maxiter=40)
    LBFGS_options["iter_per_step"], LBFGS_options["fun_per_step"] = 10, 13
    yield
    dde.optimizers.set_LBFGS_options()


def test_weights_kept_across_lbfgs_recompile(lbfgs_steps):
    model = _model()
    model.compile("adam", lr=1e-3)
    cb = pdx.TraceWeights(every=2)
    model.train(iterations=4, callbacks=[cb], verbose=0)
    last = cb.history[-1][1]
    with pytest.warns(UserWarning, match=r"TraceWeights: model.compile\('L-BFGS'\) reset "
                                         r"model.loss_weights; kept the trace weights \[.*\] of "
                                         r"the last update \(pass loss_weights= to compile"):
        model.compile("L-BFGS")
    assert model.loss_weights == last
    # L-BFGS without the callback trains on the kept weights
    model.train(callbacks=[], verbose=0)
    X, Y = model.data.train_x, model.data.train_y
    weighted = model.outputs_losses_train(X, Y, None)[1].detach()
    model.loss_weights = None
    raw = model.outputs_losses_train(X, Y, None)[1].detach()
    assert torch.allclose(weighted, raw * torch.tensor(last), rtol=1e-12)
    # explicit weights at compile are the user's choice: no warning, no restore
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        model.compile("adam", lr=1e-3, loss_weights=[2.0, 3.0, 4.0])
    assert _ours(rec) == [] and model.loss_weights == [2.0, 3.0, 4.0]


def test_weights_dropped_on_recompile_when_asked():
    model = _model()
    model.compile("adam", lr=1e-3)
    cb = pdx.TraceWeights(every=2, keep_weights=False)
    model.train(iterations=2, callbacks=[cb], verbose=0)
    with pytest.warns(UserWarning, match=r"TraceWeights: model.compile\('adam'\) reset "
                                         r"model.loss_weights to None; the trace weights \[.*\] "
                                         r"are no longer applied \(pass this callback to "
                                         r"model.train again"):
        model.compile("adam", lr=1e-3)
    assert model.loss_weights is None


def test_the_kept_weights_belong_to_the_model():
    """A callback reused on a second model: each model keeps its own trace weights."""
    a, b = _model(0), _model(1)
    cb = pdx.TraceWeights(every=1)
    for m in (a, b):
        m.compile("adam", lr=1e-3)
        m.train(iterations=1, callbacks=[cb], verbose=0)
    wa, wb = list(a.loss_weights), list(b.loss_weights)
    assert wa != wb
    with pytest.warns(UserWarning, match="kept the trace weights"):
        a.compile("adam", lr=1e-3)
    assert a.loss_weights == wa and b.loss_weights == wb


def test_every_counts_iterations(lbfgs_steps):
    model = _model()
    model.compile("adam", lr=1e-3)
    cb = pdx.TraceWeights(every=3)
    model.train(iterations=7, callbacks=[cb], verbose=0)
    assert [s for s, _ in cb.history] == [0, 3, 6]
    # under L-BFGS DeepXDE calls callbacks only between its steps (10 iterations here): the
    # weights change at the first step end at least `every` iterations after the last update
    with pytest.warns(UserWarning, match="kept the trace weights"):
        model.compile("L-BFGS")
    cb = pdx.TraceWeights(every=15)  # a new callback: the kept weights are not the user's
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        model.train(callbacks=[cb], verbose=0)
    assert _ours(rec) == []
    assert model.loss_weights == cb.history[-1][1] == cb.trace
    steps = [s for s, _ in cb.history]
    assert steps[0] == 7 and len(steps) >= 2
    assert all(b - a >= 15 for a, b in zip(steps, steps[1:]))
    assert all(b - a < 15 + 10 for a, b in zip(steps, steps[1:]))


def test_resampled_points_are_used():
    """The callback reuses its terms between updates until DeepXDE resamples its points."""
    geom = dde.geometry.Interval(-1, 1)
    bcs = [dde.icbc.DirichletBC(geom, lambda x: 0, lambda x, on: on)]
    np.random.seed(0)
    data = dde.data.PDE(geom, _pde, bcs, num_domain=12, num_boundary=2,
                        train_distribution="pseudo")
    torch.manual_seed(0)
    model = dde.Model(data, dde.nn.FNN([1, 8, 1], "tanh", "Glorot normal"))
    model.compile("adam", lr=1e-3)
    cb = pdx.TraceWeights(every=2, max_points=None)
    first = None
    for _ in range(2):  # the resampler first, so the callback's update sees the new points
        model.train(iterations=2, callbacks=[dde.callbacks.PDEPointResampler(period=2), cb],
                    verbose=0)
        assert np.allclose(model.loss_weights, pdx.trace_weights(model), rtol=1e-12)
        if first is None:
            first = model.data.train_x.copy()
    assert not np.array_equal(first, model.data.train_x)


def test_single_term_model_warns_once_and_skips():
    geom = dde.geometry.Interval(-1, 1)
    data = dde.data.PDE(geom, _pde, [], num_domain=12, train_distribution="uniform")
    torch.manual_seed(0)
    net = dde.nn.FNN([1, 8, 1], "tanh", "Glorot normal")
    net.apply_output_transform(lambda x, y: (1 - x ** 2) * y)  # hard Dirichlet constraint
    model = dde.Model(data, net)
    model.compile("adam", lr=1e-3)
    cb = pdx.TraceWeights(every=1)
    with pytest.warns(UserWarning, match=r"TraceWeights: the model has a single loss term "
                                         r"\('pde'\), whose trace weight is always 1; the callback "
                                         r"makes no updates"):
        model.train(iterations=3, callbacks=[cb], verbose=0)
    assert cb.history == [] and model.loss_weights is None
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        model.train(iterations=2, callbacks=[cb], verbose=0)
    assert _ours(rec) == [] and cb.history == []


def test_option_errors():
    model = _model()
    model.compile("adam", lr=1e-3)
    model.loss_weights = [1.0, 100.0]
    cb = pdx.TraceWeights()
    cb.set_model(model)
    with pytest.raises(ValueError, match=r"model.loss_weights: expected 3 weights \(one per loss "
                                         r"term\), got 2"):
        cb.on_train_begin()
    with pytest.raises(ValueError, match="user_weights: expected 'multiply' or 'replace', got "
                                         "'add'"):
        pdx.TraceWeights(user_weights="add")
    with pytest.raises(TypeError, match="keep_weights: expected True or False, got 1"):
        pdx.TraceWeights(keep_weights=1)
    with pytest.raises(ValueError, match="max_points: expected an integer >= 1, got 0"):
        pdx.TraceWeights(max_points=0)
    assert pdx.TraceWeights().max_points == 128 and pdx.TraceWeights().every == 500
