"""pinnk.analytic: the infinite-width NNGP / NTK and its derivative blocks.

Checked against closed forms, Monte Carlo, finite differences, Price's theorem, and the empirical
NTK of wide NTK-parametrised networks (which must approach it as the width grows).
"""

import math

import pytest
import torch

import pinnk
from pinnk import analytic, ops
from pinnk._networks import Activation
from pinnk.analytic import AnalyticKernel, gaussian_expectation
from oracle import rel_err

DT = torch.float64


def _points(n, d=2, seed=0, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    return scale * (2 * torch.rand(n, d, generator=g, dtype=DT) - 1)


def _maxrel(a, b):
    return float((a - b).abs().max() / b.abs().max())


def _assert_psd(M, tol=1e-10):
    assert rel_err(M, M.T) <= 1e-12
    ev = torch.linalg.eigvalsh(0.5 * (M + M.T))
    assert float(ev.min()) >= -tol * float(ev.max()), (float(ev.min()), float(ev.max()))


# ------------------------------------------------------------------------- closed forms
@pytest.mark.parametrize("depth", [1, 3])
def test_erf_closed_form_matches_quadrature(depth):
    x, y = _points(6, 3, seed=1, scale=1.5), _points(5, 3, seed=2, scale=1.5)
    closed = AnalyticKernel(depth, "erf", 1.3, 0.2)
    quad = AnalyticKernel(depth, "erf", 1.3, 0.2, method="quadrature")
    assert closed.method == "closed_form" and quad.method == "quadrature"
    assert _maxrel(quad.nngp(x, y), closed.nngp(x, y)) <= 1e-6
    assert _maxrel(quad.ntk(x, y), closed.ntk(x, y)) <= 1e-6
    # the Gaussian expectations themselves, including the boundary c² = ab (x = x')
    a = torch.tensor([0.3, 1.0, 2.5, 0.7], dtype=DT)
    b = torch.tensor([0.9, 1.0, 0.4, 0.7], dtype=DT)
    c = torch.tensor([0.2, -1.0, 0.5, 0.7], dtype=DT)
    for p in (0, 1):
        g_closed = gaussian_expectation(a, b, c, "erf", p)
        g_quad = gaussian_expectation(a, b, c, "erf", p, method="quadrature")
        assert float((g_closed - g_quad).abs().max()) <= 1e-6


def test_erf_derivative_blocks_closed_form_match_quadrature():
    """Autograd of the erf closed form vs Price's-theorem derivatives of the quadrature."""
    x, y = _points(4, seed=3), _points(3, seed=4)
    closed = AnalyticKernel(2, "erf", 1.3, 0.2)
    quad = AnalyticKernel(2, "erf", 1.3, 0.2, method="quadrature")
    h = torch.tensor([1.0, 0.5], dtype=DT)
    pairs = [(ops.value(), ops.directional(h)),
             (ops.directional(h), ops.directional([0.2, 1.0])),
             (ops.laplacian(), ops.laplacian()),
             (ops.partial([2, 1]), ops.directional(h, order=2))]
    for oa, ob in pairs:
        assert _maxrel(quad.block(oa, x, ob, y), closed.block(oa, x, ob, y)) <= 1e-8


def test_relu_closed_form_known_values_and_monte_carlo():
    # x = x': E[relu(u)²] = a/2, E[step(u)²] = 1/2; c = 0: sqrt(ab)/(2π) and 1/4
    a = torch.tensor([0.5, 2.0], dtype=DT)
    assert torch.allclose(gaussian_expectation(a, a, a, "relu", 0), a / 2, rtol=1e-12)
    assert torch.allclose(gaussian_expectation(a, a, a, "relu", 1), torch.full_like(a, 0.5))
    b = torch.tensor([1.5, 0.3], dtype=DT)
    zero = torch.zeros_like(a)
    assert torch.allclose(gaussian_expectation(a, b, zero, "relu", 0),
                          (a * b).sqrt() / (2 * math.pi), rtol=1e-12)
    assert torch.allclose(gaussian_expectation(a, b, zero, "relu", 1), torch.full_like(a, 0.25))
    # anti-correlated limit: relu(u) relu(−u) = 0
    assert float(gaussian_expectation(a, a, -a, "relu", 0).abs().max()) <= 1e-12
    # Monte Carlo (5 standard errors) and a high-order quadrature (slow at the kink: loose)
    a = torch.tensor([0.5, 1.0, 2.0], dtype=DT)
    b = torch.tensor([1.5, 1.0, 0.3], dtype=DT)
    c = torch.tensor([0.3, -0.9, 0.7], dtype=DT)
    z = torch.randn(2, 400_000, generator=torch.Generator().manual_seed(0), dtype=DT)
    for i in range(3):
        L = torch.linalg.cholesky(torch.tensor([[a[i], c[i]], [c[i], b[i]]], dtype=DT))
        u, v = L @ z
        for p, sample in ((0, u.relu() * v.relu()), (1, ((u > 0) & (v > 0)).to(DT))):
            g = float(gaussian_expectation(a[i], b[i], c[i], "relu", p))
            se = float(sample.std()) / math.sqrt(sample.numel())
            assert abs(float(sample.mean()) - g) <= 5 * se
    for p, tol in ((0, 1e-3), (1, 2e-2)):
        quad = gaussian_expectation(a, b, c, "relu", p, method="quadrature", quadrature=150)
        assert float((quad - gaussian_expectation(a, b, c, "relu", p)).abs().max()) <= tol


def test_price_theorem_gradients():
    """∂G_{0,0}/∂(a, b, c) = (½G_{2,0}, ½G_{0,2}, G_{1,1}), and they match finite differences."""
    a, b, c = (torch.tensor(v, dtype=DT, requires_grad=True) for v in (0.8, 1.3, 0.4))
    G = gaussian_expectation(a, b, c, "tanh", 0, quadrature=80)
    ga, gb, gc = torch.autograd.grad(G, (a, b, c))

    def g(p, q):
        return gaussian_expectation(a, b, c, "tanh", p, q, quadrature=80)

    with torch.no_grad():
        assert float(g(1, 0)) == 0.0 and float(g(3, 2)) == 0.0  # odd φ, odd integrand
        assert abs(float(ga - 0.5 * g(2, 0))) <= 1e-14
        assert abs(float(gb - 0.5 * g(0, 2))) <= 1e-14
        assert abs(float(gc - g(1, 1))) <= 1e-14
        e = 1e-5
        for grad, da in ((ga, (e, 0, 0)), (gb, (0, e, 0)), (gc, (0, 0, e))):
            plus = gaussian_expectation(a + da[0], b + da[1], c + da[2], "tanh", 0, quadrature=80)
            minus = gaussian_expectation(a - da[0], b - da[1], c - da[2], "tanh", 0, quadrature=80)
            assert abs(float((plus - minus) / (2 * e) - grad)) <= 1e-8


@pytest.mark.parametrize("activation", ["tanh", "sin", "erf", "gelu", "softplus"])
def test_activation_derivatives_match_autograd(activation):
    """The closed-form φ^{(k)} used by the quadrature (any k) against repeated autograd."""
    from pinnk._analytic import _named_derivative
    z = torch.linspace(-4, 4, 41, dtype=DT, requires_grad=True)
    f = _named_derivative(activation, 0)(z)
    for k in range(1, 8):
        f = torch.autograd.grad(f.sum(), z, create_graph=True)[0]
        assert torch.allclose(_named_derivative(activation, k)(z), f, rtol=1e-10, atol=1e-10)
    # and G_{2,0} of erf by quadrature (method "auto" falls back from the closed form)
    if activation == "erf":
        g20 = gaussian_expectation(0.7, 1.1, 0.2, "erf", 2, 0)
        a = torch.tensor(0.7, dtype=DT, requires_grad=True)
        g00 = gaussian_expectation(a, 1.1, 0.2, "erf", 0)
        assert abs(float(2 * torch.autograd.grad(g00, a)[0] - g20)) <= 1e-12


# ------------------------------------------------------------------------ PSD, symmetry
@pytest.mark.parametrize("activation", ["erf", "tanh", "sin", "gelu", "softplus", "relu"])
def test_nngp_and_ntk_symmetric_psd(activation):
    k = AnalyticKernel(3, activation, 1.4, 0.1)
    x = _points(12, 3, seed=5)
    for M in (k.nngp(x), k.ntk(x)):
        assert M.shape == (12, 12) and M.dtype == DT
        _assert_psd(M)
    # the NTK dominates the NNGP (Θ = Σ + positive terms)
    assert float(torch.linalg.eigvalsh(k.ntk(x) - k.nngp(x)).min()) >= -1e-10


@pytest.mark.parametrize("activation", ["erf", "tanh"])
def test_multiblock_derivative_matrix_symmetric_psd(activation):
    """[[Θ, Θ'ᵀ, ·], [Θ', Θ'', ·], [·, ·, Θ_ΔΔ]] from value, directional and Laplacian terms."""
    k = AnalyticKernel(2, activation, 1.5, 0.1)
    x = _points(6, seed=6)
    terms = [pinnk.Term("u", ops.value(), x),
             pinnk.Term("du", ops.directional([1.0, 0.5]), x),
             pinnk.Term("lap", ops.laplacian(), _points(5, seed=7))]
    M = k.matrix(terms)
    assert M.shape == (17, 17)
    _assert_psd(M)
    # the blocks are consistent: block(b, a) = block(a, b)ᵀ, block(value, value) = ntk
    B = k.block(ops.directional([1.0, 0.5]), x, ops.laplacian(), terms[2].points)
    assert _maxrel(B, M[6:12, 12:]) <= 1e-12
    Bt = k.block(ops.laplacian(), terms[2].points, ops.directional([1.0, 0.5]), x)
    assert _maxrel(Bt.T, B) <= 1e-10
    assert _maxrel(M[:6, :6], k.ntk(x)) <= 1e-12
    _assert_psd(k.matrix(terms, kernel="nngp"))


# ------------------------------------------------------------------- wide networks
def _wide_errors(activation, depth, width, terms, ref, seeds=3):
    errs = {key: 0.0 for key in ref}
    for seed in range(seeds):
        model = pinnk.MLP(2, 1, width, depth, activation, "ntk", sigma_w=1.5, sigma_b=0.1,
                          generator=torch.Generator().manual_seed(seed), dtype=DT)
        K = pinnk.ntk(model, terms, "structured")
        for (i, j), R in ref.items():
            errs[(i, j)] += float((K.block(i, j) - R).norm() / R.norm()) / seeds
    return errs


@pytest.mark.parametrize("activation, depth", [("erf", 2), ("tanh", 2), ("relu", 1)])
def test_wide_network_ntk_approaches_analytic(activation, depth):
    """Relative Frobenius errors of the value–value, value–directional and directional–
    directional blocks, averaged over 3 seeds: at width 4096 at most half those at width 256
    (~1/√width predicts a quarter). relu (value only) at depth 1: at depth 2 its finite-width
    fluctuations are larger and 3 seeds do not resolve the trend reliably."""
    x = _points(7, seed=8)
    terms = [pinnk.Term("u", ops.value(), x)]
    if activation != "relu":
        terms.append(pinnk.Term("du", ops.directional([1.0, 0.5]), x))
    k = AnalyticKernel(depth, activation, 1.5, 0.1)
    ref = {(i, j): k.block(terms[i].operator, x, terms[j].operator, x)
           for i in range(len(terms)) for j in range(i, len(terms))}
    narrow = _wide_errors(activation, depth, 256, terms, ref)
    wide = _wide_errors(activation, depth, 4096, terms, ref)
    for key in ref:
        assert wide[key] <= 0.5 * narrow[key], (key, narrow[key], wide[key])
        assert wide[key] <= 0.1, (key, wide[key])


def test_wide_network_last_layer_features_approach_nngp():
    """The last-layer features of a wide network: (σ_w²/n) h_L h_Lᵀ + σ_b² → Σ^{depth+1}, also
    for derivatives (∂_h h_L)."""
    x = _points(6, seed=9)
    h = torch.tensor([1.0, -0.5], dtype=DT)
    k = AnalyticKernel(2, "tanh", 1.5, 0.1)
    ref = {"vv": k.nngp(x),
           "vd": k.block(ops.value(), x, ops.directional(h), x, kernel="nngp"),
           "dd": k.block(ops.directional(h), x, kernel="nngp")}
    errs = {w: {key: 0.0 for key in ref} for w in (256, 4096)}
    for w in errs:
        for seed in range(3):
            model = pinnk.MLP(2, 1, w, 2, "tanh", "ntk", sigma_w=1.5, sigma_b=0.1,
                              generator=torch.Generator().manual_seed(seed), dtype=DT)

            def features(y):
                for l in range(model.depth):
                    z = model.weight_scales[l] * (y @ model.weights[l].T) \
                        + model.bias_scales[l] * model.biases[l]
                    y = torch.tanh(z)
                return model.weight_scales[-1] * y

            with torch.no_grad():
                F, dF = torch.func.jvp(features, (x,), (h.expand_as(x),))
            sb2 = model.sigma_b ** 2
            emp = {"vv": F @ F.T + sb2, "vd": F @ dF.T, "dd": dF @ dF.T}
            for key in ref:
                errs[w][key] += float((emp[key] - ref[key]).norm() / ref[key].norm()) / 3
    for key in ref:
        assert errs[4096][key] <= 0.5 * errs[256][key], (key, errs)


# -------------------------------------------------------------------- derivative blocks
def test_blocks_match_finite_differences_and_autograd():
    k = AnalyticKernel(2, "tanh", 1.2, 0.1)
    x, y = _points(4, seed=10), _points(3, seed=11)
    h = torch.tensor([0.6, -1.0], dtype=DT)
    e = 1e-5
    # value–directional: central difference in x' of the NTK
    fd = (k.ntk(x, y + e * h) - k.ntk(x, y - e * h)) / (2 * e)
    assert _maxrel(k.block(ops.value(), x, ops.directional(h), y), fd) <= 1e-7
    # order 3 in x: a central difference of the order-2 block
    d2 = lambda xx: k.block(ops.directional(h, order=2), xx, ops.partial([0, 1]), y)  # noqa: E731
    fd3 = (d2(x + e * h) - d2(x - e * h)) / (2 * e)
    assert _maxrel(k.block(ops.directional(h, order=3), x, ops.partial([0, 1]), y), fd3) <= 1e-6
    # the kernel is differentiable in the points by autograd (here: the gradient in x)
    xg = x.clone().requires_grad_(True)
    K = k.ntk(xg, y)
    g = torch.autograd.grad(K.sum(), xg)[0]
    directional = k.block(ops.directional([1.0, 0.0]), x, ops.value(), y).sum(1)
    assert _maxrel(g[:, 0], directional) <= 1e-12
    # derivative blocks also stay on the points' graph when asked
    assert k.block(ops.directional(h), xg, ops.value(), y).grad_fn is not None
    assert k.block(ops.directional(h), x, ops.value(), y).grad_fn is None


def test_operator_algebra_in_blocks():
    k = AnalyticKernel(2, "erf", 1.2, 0.1)
    x, y = _points(5, seed=12), _points(4, seed=13)

    def g(z):
        return 1.0 + z[:, 0] ** 2

    def field(z):
        return torch.stack([z[:, 1], torch.ones_like(z[:, 0])], dim=1)

    px, py = ops.partial([1, 0]), ops.partial([0, 1])
    val = ops.value()
    # transport with a field coefficient = Σ g_k(x) (block of ∂_k)
    want = g(x)[:, None] * k.block(px, x, val, y) + 2.0 * k.block(py, x, val, y)
    assert _maxrel(k.block(ops.transport([g, 2.0]), x, val, y), want) <= 1e-12
    # a field direction h(x), held fixed at the base point
    H = field(x)
    want = H[:, 0:1] * k.block(px, x, val, y) + H[:, 1:2] * k.block(py, x, val, y)
    assert _maxrel(k.block(ops.directional(field), x, val, y), want) <= 1e-12
    # the Laplacian is the sum of pure second partials
    want = k.block(ops.partial([2, 0]), x, py, y) + k.block(ops.partial([0, 2]), x, py, y)
    assert _maxrel(k.block(ops.laplacian(), x, py, y), want) <= 1e-12
    # output components: equal kernels on each component, zero across components
    assert _maxrel(k.block(ops.value(1), x, ops.value(1), y), k.ntk(x, y)) <= 1e-14
    assert float(k.block(ops.value(0), x, ops.value(1), y).abs().max()) == 0.0
    # value–value goes through the matrix path and equals ntk / nngp
    assert _maxrel(k.block(val, x, val, y), k.ntk(x, y)) <= 1e-14
    assert _maxrel(k.block(val, x, val, y, kernel="nngp"), k.nngp(x, y)) <= 1e-14


def test_functional_api_and_from_model():
    x, y = _points(5, seed=14), _points(3, seed=15)
    k = AnalyticKernel(3, "tanh", 1.1, 0.2, quadrature=32)
    assert torch.equal(analytic.nngp(x, y, 3, "tanh", 1.1, 0.2, quadrature=32), k.nngp(x, y))
    assert torch.equal(analytic.ntk(x, y, 3, "tanh", 1.1, 0.2, quadrature=32), k.ntk(x, y))
    h = [1.0, 1.0]
    assert torch.equal(analytic.derivative_ntk(ops.directional(h), x, ops.value(), y, 3, "tanh",
                                               1.1, 0.2, quadrature=32),
                       k.block(ops.directional(h), x, ops.value(), y))
    model = pinnk.MLP(2, 1, 8, 3, "tanh", "ntk", sigma_w=1.1, sigma_b=0.2, dtype=DT)
    km = AnalyticKernel.from_model(model, quadrature=32)
    assert (km.depth, km.activation.name, km.sigma_w, km.sigma_b) == (3, "tanh", 1.1, 0.2)
    assert torch.equal(km.ntk(x, y), k.ntk(x, y))
    assert "quadrature=32" in repr(km)
    # x2 defaults to x1; float32 points give float32 kernels
    assert torch.equal(k.ntk(x), k.ntk(x, x))
    assert k.nngp(x.float()).dtype == torch.float32


def test_custom_activation_uses_autograd_derivatives():
    """A custom Activation (only σ, σ' given) matches the built-in one of the same function."""
    mine = Activation("mytanh", torch.tanh, lambda z: 1 - torch.tanh(z) ** 2)
    x = _points(4, seed=16)
    k1, k2 = AnalyticKernel(2, mine, quadrature=24), AnalyticKernel(2, "tanh", quadrature=24)
    assert _maxrel(k1.ntk(x), k2.ntk(x)) <= 1e-13
    op = ops.directional([1.0, 0.0])
    assert _maxrel(k1.block(op, x, ops.partial([0, 1]), x),
                   k2.block(op, x, ops.partial([0, 1]), x)) <= 1e-10


# --------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("build, exc, match", [
    (lambda: AnalyticKernel(0), ValueError, "depth: expected an integer >= 1"),
    (lambda: AnalyticKernel(1.5), TypeError, "depth: expected an integer"),
    (lambda: AnalyticKernel(2, "swish"), ValueError, "activation: unknown name 'swish'"),
    (lambda: AnalyticKernel(2, 3), TypeError, "activation: expected a name"),
    (lambda: AnalyticKernel(2, sigma_w=0.0), ValueError, "sigma_w: expected a positive"),
    (lambda: AnalyticKernel(2, sigma_w=-1.0), ValueError, "sigma_w: expected a positive"),
    (lambda: AnalyticKernel(2, sigma_b=-0.1), ValueError, "sigma_b: expected a non-negative"),
    (lambda: AnalyticKernel(2, sigma_w=float("nan")), ValueError, "sigma_w: expected a finite"),
    (lambda: AnalyticKernel(2, "tanh", method="closed_form"), ValueError,
     "method: activation 'tanh' has no closed form"),
    (lambda: AnalyticKernel(2, method="exact"), ValueError, "method: expected one of"),
    (lambda: AnalyticKernel(2, quadrature=1), ValueError, "quadrature: expected an integer >= 2"),
    (lambda: AnalyticKernel(2, quadrature=10_000), ValueError, "quadrature: expected an order"),
    (lambda: AnalyticKernel.from_model(torch.nn.Linear(2, 1)), TypeError,
     "model: expected a pinnk.MLP"),
    (lambda: AnalyticKernel.from_model(pinnk.MLP(2, 1, 8, 2)), ValueError,
     "model: the analytic kernel is the limit of the NTK parametrisation"),
])
def test_bad_construction_raises(build, exc, match):
    with pytest.raises(exc, match=match):
        build()


def test_bad_points_and_operators_raise():
    k = AnalyticKernel(2, "tanh", quadrature=8)
    x = _points(3)
    bad = x.clone()
    bad[1, 0] = float("nan")
    with pytest.raises(ValueError, match="x1: contains NaN"):
        k.ntk(bad)
    with pytest.raises(ValueError, match="x2: contains NaN"):
        k.nngp(x, bad)
    with pytest.raises(ValueError, match=r"x1: expected shape \(n, d\)"):
        k.ntk(torch.zeros(3, dtype=DT))
    with pytest.raises(ValueError, match="x2: expected points of dimension 2"):
        k.ntk(x, _points(3, 3))
    with pytest.raises(TypeError, match="x1: expected a tensor or array"):
        k.ntk(object())
    with pytest.raises(TypeError, match="op_a: expected a pinnk.ops operator"):
        k.block("value", x)
    nonlinear = ops.residual(lambda z, u: u * u, u=ops.value())
    with pytest.raises(ValueError, match="op_b: the analytic kernel needs a linear operator"):
        k.block(ops.value(), x, nonlinear, x)
    with pytest.raises(ValueError, match="kernel: expected 'ntk' or 'nngp'"):
        k.block(ops.value(), x, kernel="ntk2")
    with pytest.raises(ValueError, match="h: direction of length 3"):
        k.block(ops.directional([1.0, 0.0, 0.0]), x)
    with pytest.raises(ValueError, match="alpha: multi-index of length 3"):
        k.block(ops.partial([1, 0, 0]), x)
    relu = AnalyticKernel(2, "relu")
    with pytest.raises(ValueError, match="op_a: activation 'relu' is not differentiable 1 time"):
        relu.block(ops.directional([1.0, 0.0]), x, ops.value(), x)
    with pytest.raises(ValueError, match="op_b: activation 'relu' is not differentiable 2 time"):
        relu.block(ops.value(), x, ops.laplacian(), x)
    with pytest.raises(ValueError, match="method: the closed form covers"):
        gaussian_expectation(1.0, 1.0, 0.5, "erf", 2, method="closed_form")
    with pytest.raises(ValueError, match="activation: 'relu' has no derivative of order 2"):
        gaussian_expectation(1.0, 1.0, 0.5, "relu", 2)
    with pytest.raises(TypeError, match="terms\\[1\\]: expected a pinnk.Term"):
        k.matrix([pinnk.Term("u", ops.value(), x), ops.value()])
