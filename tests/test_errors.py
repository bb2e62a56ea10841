"""Bad input raises ValueError/TypeError naming the argument."""

import pytest
import torch

import pinnk
from pinnk import ops


@pytest.fixture
def model():
    return pinnk.MLP(2, 2, 8, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)


X = torch.rand(5, 2, dtype=torch.float64)


def test_point_shapes_and_nan():
    with pytest.raises(ValueError, match=r"points: expected shape \(n, d\), got \(5,\)"):
        pinnk.Term("u", ops.value(), torch.rand(5))
    bad = X.clone()
    bad[3, 1] = float("nan")
    with pytest.raises(ValueError, match="points: contains NaN or Inf \\(first at row 3\\)"):
        pinnk.Term("u", ops.value(), bad)
    with pytest.raises(ValueError, match="points: expected at least one point"):
        pinnk.Term("u", ops.value(), torch.zeros(0, 2))
    with pytest.raises(TypeError, match="points: expected a tensor or array"):
        pinnk.Term("u", ops.value(), object())
    with pytest.raises(ValueError, match=r"target: expected shape \(5,\) to match points, got \(4,\)"):
        pinnk.Term("u", ops.value(), X, torch.zeros(4))
    with pytest.raises(TypeError, match="name: expected a non-empty string"):
        pinnk.Term("", ops.value(), X)
    with pytest.raises(TypeError, match="operator: expected a pinnk.ops operator"):
        pinnk.Term("u", lambda m, x: m(x), X)


def test_directions():
    with pytest.raises(ValueError, match="h: direction has zero norm"):
        ops.directional([0.0, 0.0])
    with pytest.raises(ValueError, match="h: direction of length 3 for points of dimension 2"):
        pinnk.Term("d", ops.directional([1.0, 0.0, 0.0]), X)
    with pytest.raises(ValueError, match=r"h: expected a vector of shape \(d,\)"):
        ops.directional(torch.ones(2, 2))
    with pytest.raises(ValueError, match="order: expected an integer >= 1, got 0"):
        ops.directional([1.0, 0.0], order=0)
    with pytest.raises(ValueError, match="h: direction contains NaN"):
        ops.directional([float("nan"), 1.0])
    with pytest.raises(ValueError, match=r"h: direction field must return a tensor of shape \(5, 2\)"):
        ops.directional(lambda x: x[:, :1])(pinnk.MLP(2, 1, 4, 1), X.float())


def test_multi_index_and_component(model):
    with pytest.raises(ValueError, match="alpha: multi-index of length 3 for points of dimension 2"):
        pinnk.Term("p", ops.partial([1, 0, 1]), X)
    with pytest.raises(ValueError, match="alpha: expected an integer >= 0, got -1"):
        ops.partial([1, -1])
    with pytest.raises(TypeError, match="alpha: expected a sequence of non-negative integers"):
        ops.partial(3)
    with pytest.raises(ValueError, match="component: 2 is out of range for a model with 2 output"):
        ops.value(component=2)(model, X)
    t = pinnk.Term("p", ops.partial([1, 1], component=5), X)
    for impl in ("structured", "jacobian"):
        with pytest.raises(ValueError, match="component: 5 is out of range"):
            pinnk.ntk(model, [t], impl).block(0, 0)
    with pytest.raises(ValueError, match="dims: coordinate index 4 out of range"):
        ops.laplacian(dims=[0, 4])(model, X)


def test_implementation_names_and_applicability(model):
    t = pinnk.Term("u", ops.value(), X)
    with pytest.raises(ValueError, match="implementation: unknown name 'fast'; expected one of"):
        pinnk.ntk(model, [t], "fast")
    seq = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.Tanh(), torch.nn.Linear(3, 1)).double()
    with pytest.raises(ValueError, match="implementation: 'structured' does not apply to term 'u': "
                                         "the model is a Sequential"):
        pinnk.ntk(seq, [t], "structured")
    # a custom activation with its first three derivatives only: an order-3 operator needs the 4th
    act = pinnk.Activation("mytanh", torch.tanh, lambda z: 1 - torch.tanh(z) ** 2,
                           lambda z: -2 * torch.tanh(z) * (1 - torch.tanh(z) ** 2),
                           lambda z: (1 - torch.tanh(z) ** 2) * (6 * torch.tanh(z) ** 2 - 2))
    custom = pinnk.MLP(2, 1, 4, 1, act, dtype=torch.float64)
    d3 = pinnk.Term("d3", ops.directional([1.0, 0.0], 3), X)
    with pytest.raises(ValueError, match="the activation 'mytanh' has no derivative of order 4"):
        pinnk.ntk(custom, [d3], "structured")
    assert pinnk.ntk(custom, [d3]).implementations == ["jacobian"]
    assert pinnk.ntk(custom, [pinnk.Term("d2", ops.laplacian(), X)]).implementations == \
        ["structured"]
    emb = pinnk.FourierFeatures(2, 3, dtype=torch.float64)
    emb.B = torch.nn.Parameter(emb.B)
    trainable = pinnk.MLP(2, 1, 4, 1, embedding=emb, dtype=torch.float64)
    with pytest.raises(ValueError, match="the model's embedding has trainable parameters"):
        pinnk.ntk(trainable, [t], "structured")
    with pytest.raises(ValueError, match="terms: expected a non-empty list"):
        pinnk.ntk(model, [])
    with pytest.raises(TypeError, match=r"terms\[0\]: expected a pinnk.Term"):
        pinnk.ntk(model, [ops.value()])


def test_relu_with_derivative_terms():
    relu = pinnk.MLP(2, 1, 8, 2, "relu", dtype=torch.float64)
    pinnk.ntk(relu, [pinnk.Term("u", ops.value(), X)]).block(0, 0)  # value terms are fine
    with pytest.raises(ValueError, match="model: activation 'relu' is not differentiable 1 time"):
        pinnk.ntk(relu, [pinnk.Term("d", ops.partial([1, 0]), X)])
    with pytest.raises(ValueError, match="activation 'relu' is not differentiable 2 time"):
        ops.laplacian()(relu, X)
    with pytest.raises(ValueError, match="activation: unknown name 'swishy'; expected one of"):
        pinnk.MLP(2, 1, 8, 2, "swishy")


def test_angles_need_shared_points(model):
    a = pinnk.Term("u", ops.value(), X)
    b = pinnk.Term("d", ops.laplacian(), X + 0.1)
    with pytest.raises(ValueError, match="term_b: angles need two terms at the same points"):
        pinnk.angles(model, a, b)
    c = pinnk.Term("d", ops.laplacian(), X[:3])
    with pytest.raises(ValueError, match="term_b: angles need two terms at the same points"):
        pinnk.angles(model, a, c)
    with pytest.raises(TypeError, match="term_a: expected a pinnk.Term"):
        pinnk.angles(model, ops.value(), a)


def test_weights(model):
    K = pinnk.ntk(model, [pinnk.Term("u", ops.value(), X), pinnk.Term("d", ops.laplacian(), X)])
    with pytest.raises(ValueError, match="weights: must be non-negative, got -1 for term 'd'"):
        K.matrix([1.0, -1.0])
    with pytest.raises(ValueError, match=r"weights: expected 2 weights \(one per term\)"):
        K.eigvalsh([1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match=r"weights: unknown term name\(s\) \['x'\]"):
        K.matrix({"u": 1.0, "x": 2.0})
    with pytest.raises(ValueError, match=r"weights: missing a weight for term\(s\) \['d'\]"):
        K.matrix({"u": 1.0})
    with pytest.raises(ValueError, match="weights: contains NaN"):
        K.matrix([1.0, float("nan")])
    with pytest.raises(ValueError, match="kind: expected 'mean' or 'sum'"):
        K.trace_weights("median")
    with pytest.raises(ValueError, match="term: unknown name 'zz'"):
        K.block("zz", 0)
    with pytest.raises(ValueError, match="term: index 2 out of range for 2 terms"):
        K.block(2, 0)


def test_memory_bound_states_the_size(model):
    x = torch.rand(300, 2, dtype=torch.float64)
    K = pinnk.ntk(model, [pinnk.Term("u", ops.value(), x)], max_memory=100_000)
    with pytest.raises(ValueError, match=r"max_memory: the kernel matrix \(300×300, torch.float64\) "
                                         r"needs 703.1 KiB, more than max_memory=97.7 KiB"):
        K.matrix()
    # what fits still works: the diagonal and traces
    assert K.diagonal(0).shape == (300,)


def test_operator_arithmetic_errors():
    with pytest.raises(TypeError, match="coefficient: expected a float or a callable"):
        "a" * ops.value()
    with pytest.raises(ValueError, match="coefficients: all coefficients are zero"):
        ops.transport([0.0, 0.0])
    with pytest.raises(TypeError, match=r"inputs\['u'\]: expected a pinnk operator"):
        ops.residual(lambda x, u: u, u=3.0)
    with pytest.raises(ValueError, match="fn: residual 'bad' must return a tensor of shape"):
        ops.residual(lambda x, u: u[:2], u=ops.value(), label="bad")(
            pinnk.MLP(2, 1, 4, 1), X.float())


def test_network_arguments():
    with pytest.raises(ValueError, match="parametrization: expected 'standard' or 'ntk'"):
        pinnk.MLP(2, 1, 8, 2, parametrization="mup")
    with pytest.raises(ValueError, match="width: expected an integer >= 1, got 0"):
        pinnk.MLP(2, 1, 0, 2)
    with pytest.raises(TypeError, match="in_dim: expected an integer, got float"):
        pinnk.MLP(2.0, 1)
    with pytest.raises(ValueError, match="sigma_w: expected a positive number"):
        pinnk.MLP(2, 1, sigma_w=0.0)
    with pytest.raises(ValueError, match="kind: expected 'softplus' or 'exp'"):
        pinnk.Positive([0], kind="abs")
