"""Weighting strategies and diagnostics of the core (the trainer's use is tested in solvers)."""

import math

import pytest
import torch

import pinnk
from pinnk import diagnostics, ops
from pinnk.weighting import Causal, Fixed, GradNorm, TraceNTK, from_spec


def _setup(n=32):
    g = torch.Generator().manual_seed(0)
    model = pinnk.MLP(2, 1, 16, 2, generator=g, dtype=torch.float64)
    x = torch.rand(n, 2, generator=g, dtype=torch.float64)
    xb = torch.rand(n // 2, 2, generator=g, dtype=torch.float64)
    terms = [pinnk.Term("pde", ops.partial([0, 1]) + 2.0 * ops.partial([1, 0]), x),
             pinnk.Term("bc", ops.value(), xb, torch.sin(xb[:, 0]))]
    return model, terms


def _losses(model, terms, w):
    return w.term_losses([t.residual(model) for t in terms], terms)


def test_fixed_weights():
    w = Fixed({"bc": 10.0})
    w.setup(["pde", "bc"])
    assert w.weights.tolist() == [1.0, 10.0]
    w = Fixed([2.0, 3.0])
    w.setup(["pde", "bc"])
    assert w.weights_dict() == {"pde": 2.0, "bc": 3.0}
    with pytest.raises(ValueError, match=r"weights: unknown term name\(s\) \['ic'\]"):
        Fixed({"ic": 1.0}).setup(["pde", "bc"])
    with pytest.raises(ValueError, match=r"weights: expected 2 weights \(one per term"):
        Fixed([1.0]).setup(["pde", "bc"])
    with pytest.raises(ValueError, match="weights: expected a non-negative number, got -1"):
        Fixed({"bc": -1.0})


def test_trace_ntk_matches_the_kernel_and_smooths():
    model, terms = _setup()
    w = TraceNTK(every=5, kind="mean", momentum=0.5)
    w.setup([t.name for t in terms])
    losses = _losses(model, terms, w)
    assert w.update(0, model, terms, losses)
    ref = pinnk.ntk(model, terms, "jacobian").trace_weights("mean")
    assert torch.allclose(w.weights, ref, rtol=1e-12)  # first update: no smoothing
    assert not w.update(3, model, terms, losses)  # not due
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(1.3)
    w.update(5, model, terms, losses)
    new = pinnk.ntk(model, terms).trace_weights("mean")
    assert torch.allclose(w.weights, 0.5 * ref + 0.5 * new, rtol=1e-12)
    # state round trip
    w2 = TraceNTK(every=5, kind="mean", momentum=0.5)
    w2.load_state_dict(w.state_dict())
    assert torch.equal(w2.weights, w.weights)


def test_trace_ntk_subsamples_points():
    model, terms = _setup(64)
    w = TraceNTK(max_points=8)
    w.setup([t.name for t in terms])
    lam = w.compute(model, terms)
    sub = [pinnk.Term(t.name, t.operator, t.points[:8]) for t in terms]
    assert torch.allclose(lam, pinnk.ntk(model, sub).trace_weights("mean"), rtol=1e-12)


def test_gradnorm_is_max_over_mean_gradient():
    model, terms = _setup()
    w = GradNorm(every=1, momentum=0.0)
    w.setup([t.name for t in terms])
    losses = _losses(model, terms, w)
    w.update(0, model, terms, losses)
    params = list(model.parameters())
    g_r = torch.cat([(torch.zeros_like(p) if g is None else g).reshape(-1)
                     for g, p in zip(torch.autograd.grad(losses[0], params, retain_graph=True,
                                                         allow_unused=True), params)]).abs()
    g_b = torch.cat([g.reshape(-1) for g in torch.autograd.grad(losses[1], params,
                                                                 retain_graph=True)]).abs()
    assert w.weights[0] == 1.0
    assert float(w.weights[1]) == pytest.approx(float(g_r.max() / g_b.mean()), rel=1e-10)
    w.momentum = 0.9
    before = w.weights.clone()
    w.update(1, model, terms, losses)
    assert float(w.weights[1]) == pytest.approx(float(before[1]), rel=1e-10)  # same λ̂ again


def test_causal_weights_follow_the_formula():
    g = torch.Generator().manual_seed(1)
    model = pinnk.MLP(2, 1, 8, 1, generator=g, dtype=torch.float64)
    x = torch.rand(40, 2, generator=g, dtype=torch.float64)
    term = pinnk.Term("pde", ops.transport([1.0, 1.0]), x)
    w = Causal(epsilon=2.0, chunks=4)
    w.setup(["pde"], time_index=1)
    r = term.residual(model)
    (L,) = w.term_losses([r], [term])
    order = torch.argsort(x[:, 1])
    Lk = torch.stack([c.mean() for c in torch.tensor_split((r * r)[order], 4)])
    weights = torch.exp(-2.0 * torch.cat([torch.zeros(1, dtype=torch.float64),
                                          torch.cumsum(Lk, 0)[:-1]]))
    assert float(L.detach()) == pytest.approx(float(0.5 * (weights * Lk).mean().detach()),
                                              rel=1e-12)
    assert w.info()["causal_min_weight"] == pytest.approx(float(weights.min().detach()), rel=1e-12)
    # without a time coordinate it is the plain mean loss, and setup says so
    with pytest.warns(UserWarning, match="causal weighting needs a time coordinate"):
        w.setup(["pde"], time_index=None)
    assert float(w.term_losses([r], [term])[0].detach()) == pytest.approx(
        float(0.5 * (r * r).mean().detach()))


def test_from_spec_round_trips_and_errors():
    for spec in ("fixed", "fixed:bc=10", "trace", "trace:every=50,kind=sum,momentum=0.9",
                 "gradnorm:every=5", "causal:epsilon=1,chunks=8+trace:every=20", "causal"):
        w = from_spec(spec)
        assert from_spec(w.config()).config() == w.config()
    assert isinstance(from_spec("causal+gradnorm").inner, GradNorm)
    with pytest.raises(ValueError, match="weighting: unknown kind 'ntk'"):
        from_spec("ntk")
    with pytest.raises(ValueError, match="weighting: cannot read 'every' in 'trace:every'"):
        from_spec("trace:every")
    with pytest.raises(ValueError, match="weighting: bad option for 'trace'"):
        from_spec("trace:speed=3")
    with pytest.raises(ValueError, match="kind: expected 'mean' or 'sum'"):
        from_spec("trace:kind=max")
    with pytest.raises(ValueError, match="more than one"):
        from_spec("trace+gradnorm")
    with pytest.raises(ValueError, match=r"momentum: expected a number in \[0, 1\)"):
        TraceNTK(momentum=1.0)


def test_diagnostics_spectrum_angles_drift():
    model, terms = _setup(16)
    spec = diagnostics.spectrum(model, terms, [1.0, 5.0])
    ev = pinnk.ntk(model, terms).eigvalsh([1.0, 5.0])
    assert spec["lambda_min"] == pytest.approx(float(ev[0]))
    assert spec["lambda_max"] == pytest.approx(float(ev[-1]))
    stats = diagnostics.angle_statistics(model, terms)
    assert list(stats) == ["bc|pde"]
    s = stats["bc|pde"]
    assert -1 <= s["p5"] <= s["p25"] <= s["p50"] <= s["p75"] <= s["p95"] <= 1
    at_bc = pinnk.Term("pde", terms[0].operator, terms[1].points)
    assert s["mean"] == pytest.approx(float(pinnk.angles(model, terms[1], at_bc).mean()))
    theta = diagnostics.kernel_matrix(model, terms)
    assert diagnostics.kernel_drift(theta, theta) == 0.0
    assert diagnostics.kernel_drift(1.1 * theta, theta) == pytest.approx(0.1)
    with pytest.raises(ValueError, match="theta: expected shape"):
        diagnostics.kernel_drift(theta[:3, :3], theta)


def test_trace_ntk_clips_weights_of_vanishing_kernels():
    model, terms = _setup()
    tiny = pinnk.Term("tiny", 1e-6 * ops.value(), terms[1].points)
    w = TraceNTK(max_weight=1e4)
    w.setup(["pde", "bc", "tiny"])
    with pytest.warns(UserWarning, match=r"TraceNTK: the weight of \['tiny'\] exceeds "
                                         r"max_weight=10000 \(its kernel nearly vanishes\)"):
        lam = w.compute(model, terms + [tiny])
    assert float(lam[2]) == 1e4 and float(lam[0]) < 1e4


def test_gradnorm_clips_the_weight_of_a_fitted_term():
    """Once a term is fitted its mean gradient magnitude → 0 and λ̂ = max|∇L_r|/mean|∇L_i|
    grows without bound; GradNorm clips new weights at max_weight with a warning."""
    model, terms = _setup()
    w = GradNorm(every=1, momentum=0.0, max_weight=50.0)
    w.setup([t.name for t in terms])
    # a tiny boundary loss: the loss of the fitted term is scaled so its gradient nearly vanishes
    losses = [terms[0].loss(model), 1e-9 * terms[1].loss(model)]
    with pytest.warns(UserWarning, match=r"GradNorm: the weight of \['bc'\] exceeds "
                                         r"max_weight=50 \(its gradients nearly vanish\)"):
        assert w.update(0, model, terms, losses)
    assert w.weights.tolist() == [1.0, 50.0]
    assert GradNorm(max_weight=7.0).config()["max_weight"] == 7.0
    with pytest.raises(ValueError, match="max_weight"):
        GradNorm(max_weight=0.0)


@pytest.mark.parametrize("spec", ["fixed", "trace", "causal:epsilon=2,chunks=3",
                                  "causal:epsilon=0.5,chunks=5+gradnorm"])
def test_point_weights_write_the_term_losses_point_by_point(spec):
    """L_i = ½ Σ_p c_p r_p²: the form the Gauss–Newton solver scales the residuals by."""
    w = from_spec(spec)
    w.setup(["res", "ic"], time_index=1)
    g = torch.Generator().manual_seed(0)
    x = torch.rand(23, 2, generator=g, dtype=torch.float64)
    terms = [pinnk.Term("res", ops.partial([0, 1]), x),
             pinnk.Term("ic", ops.value(), x[:7], target=torch.zeros(7, dtype=torch.float64))]
    rs = [torch.randn(23, generator=g, dtype=torch.float64),
          torch.randn(7, generator=g, dtype=torch.float64)]
    losses = w.term_losses(rs, terms)
    cs = w.point_weights(rs, terms)
    for L, c, r in zip(losses, cs, rs):
        assert float(L) == pytest.approx(0.5 * float((c * r * r).sum()), rel=1e-13)
        assert not c.requires_grad and bool((c > 0).all())
