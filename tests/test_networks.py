"""Networks, embeddings, output transforms, and training through the operators."""

import math

import pytest
import torch

import pinnk
from pinnk import ops
from oracle import partial_ref, rel_err


def test_mlp_shapes_dtypes_and_parametrisations():
    g = torch.Generator().manual_seed(0)
    m = pinnk.MLP(3, 2, 32, 3, generator=g)
    assert m(torch.rand(7, 3)).shape == (7, 2)
    assert m.widths == [3, 32, 32, 32, 2]
    assert m.weights[0].dtype == torch.get_default_dtype()
    ntk = pinnk.MLP(3, 1, 4096, 1, parametrization="ntk", sigma_w=1.5, sigma_b=0.2, generator=g,
                    dtype=torch.float64)
    # NTK parametrisation: N(0, 1) parameters, the 1/sqrt(fan_in) scale lives in the forward pass
    assert abs(float(ntk.weights[1].detach().std()) - 1.0) < 0.05
    assert ntk.weight_scales[1] == pytest.approx(1.5 / math.sqrt(4096))
    # pre-activations of the last layer have variance σ_w² E[σ(z)²] + σ_b², O(1) at any width
    x = torch.rand(200, 3, dtype=torch.float64)
    assert 0.05 < float(ntk(x).detach().var()) < 5.0
    std = pinnk.MLP(3, 1, [64, 16], generator=g)
    assert std.widths == [3, 64, 16, 1]
    assert abs(float(std.weights[0].detach().std()) - math.sqrt(2 / 67)) < 0.05


def test_activations_have_correct_derivatives():
    z = torch.linspace(-3, 3, 41, dtype=torch.float64, requires_grad=True)
    for name in ("tanh", "sin", "gelu", "softplus", "erf"):
        act = pinnk._networks.get_activation(name)
        d = act.fn(z)
        for k, fk in enumerate((act.d1, act.d2, act.d3), start=1):
            d = torch.autograd.grad(d.sum(), z, create_graph=True)[0]
            assert rel_err(fk(z), d) <= 1e-12, (name, k)


@pytest.mark.parametrize("name", ["tanh", "sin", "gelu", "softplus", "erf"])
def test_activation_series_of_any_order(name):
    """σ, σ', ..., σ^(7) from the closed forms equal repeated reverse-mode derivatives."""
    z = torch.linspace(-3, 3, 41, dtype=torch.float64, requires_grad=True)
    act = pinnk._networks.get_activation(name)
    series = act.series(z, 7)
    assert len(series) == 8 and act.max_order == math.inf
    d = act.fn(z)
    assert rel_err(series[0], d) <= 1e-14
    for k in range(1, 8):
        d = torch.autograd.grad(d.sum(), z, create_graph=True)[0]
        assert rel_err(series[k], d) <= 1e-11, (name, k)
    relu = pinnk._networks.get_activation("relu")
    assert relu.max_order == 1 and len(relu.series(z, 1)) == 2
    with pytest.raises(ValueError, match="activation: 'relu' has no derivative of order 2"):
        relu.series(z, 2)


def test_fourier_and_periodic_embeddings():
    g = torch.Generator().manual_seed(1)
    ff = pinnk.FourierFeatures(2, 8, scale=2.0, generator=g, dtype=torch.float64)
    x = torch.rand(5, 2, dtype=torch.float64)
    assert ff(x).shape == (5, 16)
    assert not list(ff.parameters())  # B is a buffer, never trained
    pe = pinnk.PeriodicEmbedding(2, dims=[0], periods=[2 * math.pi], harmonics=2)
    m = pinnk.MLP(2, 1, 16, 2, embedding=pe, generator=g, dtype=torch.float64)
    assert pe(x).shape == (5, 5)
    # exactly periodic in x, including derivatives
    shifted = x + torch.tensor([2 * math.pi, 0.0], dtype=torch.float64)
    for op in (ops.value(), ops.partial([1, 0]), ops.laplacian()):
        assert torch.allclose(op(m, x), op(m, shifted), atol=1e-12)


def test_positive_output_transform():
    g = torch.Generator().manual_seed(2)
    m = pinnk.MLP(2, 3, 16, 2, output_transform=pinnk.Positive([0, 2]), generator=g,
                  dtype=torch.float64)
    y = m(torch.randn(50, 2, dtype=torch.float64) * 5)
    assert bool((y[:, 0] > 0).all()) and bool((y[:, 2] > 0).all())
    assert bool((y[:, 1] < 0).any())
    # the transform is linearised on the structured path, equal to the Jacobian path
    x = torch.rand(4, 2, dtype=torch.float64)
    terms = [pinnk.Term("p", ops.partial([1, 0], component=2), x),
             pinnk.Term("r", ops.laplacian(component=0), x)]
    K = pinnk.ntk(m, terms)
    assert K.implementations == ["structured", "structured"]
    ref = pinnk.ntk(m, terms, "jacobian").matrix()
    assert rel_err(K.matrix(), ref) <= 1e-12


def test_operators_train_through_forward_mode():
    """Parameter gradients of a derivative loss equal the reverse-mode reference."""
    g = torch.Generator().manual_seed(3)
    m = pinnk.MLP(2, 1, 16, 2, generator=g, dtype=torch.float64)
    x = torch.rand(9, 2, dtype=torch.float64)
    op = ops.partial([0, 1]) + 0.7 * ops.laplacian()
    term = pinnk.Term("pde", op, x, target=torch.cos(x[:, 0]))
    loss = term.loss(m)
    grads = torch.autograd.grad(loss, list(m.parameters()), allow_unused=True)
    r = partial_ref(m, x, [0, 1]) + 0.7 * (partial_ref(m, x, [2, 0]) + partial_ref(m, x, [0, 2])) \
        - torch.cos(x[:, 0])
    ref = torch.autograd.grad(0.5 * (r * r).mean(), list(m.parameters()), allow_unused=True)
    for a, b, p in zip(grads, ref, m.parameters()):
        a = torch.zeros_like(p) if a is None else a
        b = torch.zeros_like(p) if b is None else b
        assert torch.allclose(a, b, rtol=1e-12, atol=1e-14)
    assert float(loss.detach()) == pytest.approx(float(0.5 * (r * r).mean().detach()), rel=1e-12)


def test_any_module_works_everywhere():
    torch.manual_seed(4)
    seq = torch.nn.Sequential(torch.nn.Linear(2, 8), torch.nn.SiLU(), torch.nn.Linear(8, 1)).double()
    x = torch.rand(6, 2, dtype=torch.float64)
    t1 = pinnk.Term("u", ops.value(), x, target=lambda p: p[:, 0])
    t2 = pinnk.Term("lap", ops.laplacian(), x)
    assert t1.residual(seq).shape == (6,)
    K = pinnk.ntk(seq, [t1, t2])
    assert K.implementations == ["jacobian", "jacobian"]
    assert K.matrix().shape == (12, 12)
    assert pinnk.angles(seq, t1, t2).shape == (6,)
    # the term's points follow the model's dtype
    assert t1.residual(seq.float()).dtype == torch.float32


def test_term_targets_and_metadata():
    x = torch.rand(4, 2, dtype=torch.float64)
    t = pinnk.Term("bc", ops.partial([1, 0]), x, target=lambda p: p.sum(1))
    assert torch.allclose(t.target_values(), x.sum(1))
    assert not t.is_residual and t.order == 1
    r = pinnk.Term("pde", ops.laplacian(), x)
    assert r.is_residual and r.target_values() is None
    moved = r.with_points(torch.rand(3, 2, dtype=torch.float64))
    assert moved.n == 3 and moved.name == "pde"
    assert "Δf0" in repr(r)


def test_fourier_basis_in_a_kept_coordinate():
    emb = pinnk.PeriodicEmbedding(2, dims=[0, 1], periods=[2 * math.pi, 1.0], harmonics=[1, 3],
                                  keep_input=[1])
    x = torch.tensor([[0.3, 0.25]], dtype=torch.float64)
    out = emb(x)
    assert emb.out_dim == out.shape[1] == 2 + 1 + 6
    t = 0.25
    expected = [math.cos(0.3), math.sin(0.3), t] + [f(2 * math.pi * j * t) for j in (1, 2, 3)
                                                    for f in (math.cos, math.sin)]
    assert torch.allclose(out[0], torch.tensor(expected, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"keep_input: coordinate 1 is not among the embedded dims"):
        pinnk.PeriodicEmbedding(2, dims=[0], periods=[1.0], keep_input=[1])
    with pytest.raises(ValueError, match="harmonics: expected one count per embedded dimension"):
        pinnk.PeriodicEmbedding(2, dims=[0, 1], periods=[1.0, 1.0], harmonics=[1])
