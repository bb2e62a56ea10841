"""The damped Gauss–Newton step in function space (design.md §3b) against the parameter-space
form built from an explicit Jacobian (one autograd row at a time), float64."""

import pytest
import torch

import pinnk
from pinnk import ops
from oracle import jacobian_oracle, rel_err


def _problem(seed=0, out=1, n=(9, 5)):
    g = torch.Generator().manual_seed(seed)
    model = pinnk.MLP(2, out, [10, 9], generator=g, dtype=torch.float64)
    x = torch.rand(n[0], 2, generator=g, dtype=torch.float64)
    xb = torch.rand(n[1], 2, generator=g, dtype=torch.float64)
    burgers = ops.residual(lambda x, u, u_t, u_x, u_xx: u_t + u * u_x - 0.05 * u_xx,
                           u=ops.value(), u_t=ops.partial([0, 1]), u_x=ops.partial([1, 0]),
                           u_xx=ops.partial([2, 0]))
    terms = [pinnk.Term("pde", burgers, x),
             pinnk.Term("bc", ops.value(), xb, target=torch.sin(3 * xb[:, 0]))]
    return model, terms


def _explicit(model, terms, lam, c=None):
    J = torch.cat([jacobian_oracle(lambda t=t: t.residual(model), model) for t in terms])
    r = torch.cat([t.residual(model).detach() for t in terms])
    c = c or [torch.full((t.n,), 1.0 / t.n, dtype=torch.float64) for t in terms]
    s = torch.cat([torch.sqrt(l * ci) for l, ci in zip(lam, c)])
    return J, r, s


@pytest.mark.parametrize("method", ["dense", "cg"])
def test_step_equals_the_parameter_space_form(method):
    model, terms = _problem()
    lam = [1.0, 7.5]
    mu = 1e-3
    J, r, s = _explicit(model, terms, lam)
    P = J.shape[1]
    SJ = s[:, None] * J
    ref = -torch.linalg.solve(SJ.T @ SJ + mu * torch.eye(P, dtype=torch.float64),
                              SJ.T @ (s * r))
    step = pinnk.gauss_newton_step(model, terms, lam, mu, method=method, cg_tol=1e-14,
                                   cg_max_iter=500)
    got = torch.cat([d.reshape(-1) for d in step.direction])
    assert step.method == method
    assert rel_err(got, ref) <= 1e-10
    assert step.loss == pytest.approx(0.5 * float((s * r) @ (s * r)), rel=1e-13)
    # the predicted loss is the linearised model's: ½‖ρ + S J δ‖²
    lin = s * r + SJ @ ref
    assert step.predicted_loss == pytest.approx(0.5 * float(lin @ lin), rel=1e-9)
    for eta in (0.25, 0.5):
        lin = s * r + eta * (SJ @ ref)
        assert step.predicted(eta) == pytest.approx(0.5 * float(lin @ lin), rel=1e-9)


def test_cg_equals_dense_and_point_weights_enter_s():
    model, terms = _problem(seed=1, out=2)
    terms[1] = pinnk.Term("bc", ops.value(1) + ops.partial([1, 0], 0), terms[1].points)
    g = torch.Generator().manual_seed(5)
    c = [torch.rand(t.n, generator=g, dtype=torch.float64) for t in terms]
    dense = pinnk.gauss_newton_step(model, terms, {"pde": 2.0, "bc": 0.5}, 1e-4,
                                    point_weights=c, method="dense")
    cg = pinnk.gauss_newton_step(model, terms, {"pde": 2.0, "bc": 0.5}, 1e-4,
                                 point_weights=c, method="cg", cg_tol=1e-13, cg_max_iter=500)
    assert cg.cg_iterations >= 1 and cg.cg_residual <= 1e-13
    for a, b in zip(dense.direction, cg.direction):
        assert rel_err(a, b) <= 1e-8
    J, r, s = _explicit(model, terms, [2.0, 0.5], c)
    SJ = s[:, None] * J
    ref = -torch.linalg.solve(SJ.T @ SJ + 1e-4 * torch.eye(J.shape[1], dtype=torch.float64),
                              SJ.T @ (s * r))
    assert rel_err(torch.cat([d.reshape(-1) for d in dense.direction]), ref) <= 1e-9


def test_one_undamped_step_on_a_model_linear_in_its_parameters_is_least_squares():
    """All but the last layer frozen: the residual of a linear operator is affine in the
    trainable parameters, so one step with μ → 0 lands on the least-squares solution."""
    g = torch.Generator().manual_seed(2)
    model = pinnk.MLP(1, 1, [5, 4], generator=g, dtype=torch.float64)  # cond(J) ≈ 7e3
    for k in range(2):
        model.weights[k].requires_grad_(False)
        model.biases[k].requires_grad_(False)
    x = torch.linspace(0, 1, 30, dtype=torch.float64)[:, None]
    xb = torch.tensor([[0.0], [1.0]], dtype=torch.float64)
    f = -(2 * torch.pi) ** 2 * torch.sin(2 * torch.pi * x[:, 0])
    terms = [pinnk.Term("pde", ops.laplacian(), x, target=f),
             pinnk.Term("bc", ops.value(), xb, target=torch.zeros(2, dtype=torch.float64))]
    lam = [1.0, 100.0]
    J, r, s = _explicit(model, terms, lam)
    sol = torch.linalg.lstsq(s[:, None] * J, -(s * r)[:, None], driver="gelsd").solution[:, 0]
    errs = []
    for mu in (1e-10, 1e-11, 1e-12):
        step = pinnk.gauss_newton_step(model, terms, lam, mu)
        errs.append(rel_err(torch.cat([d.reshape(-1) for d in step.direction]), sol))
    # δ(μ) → the least-squares step like μ/σ_min²: ten times closer per decade of μ
    assert errs[2] <= 1e-3
    assert errs[0] / errs[1] == pytest.approx(10, rel=0.1)
    assert errs[1] / errs[2] == pytest.approx(10, rel=0.1)
    with torch.no_grad():
        for p, d in zip([p for p in model.parameters() if p.requires_grad], step.direction):
            p.add_(d)
    after = pinnk.GaussNewtonSystem(model, terms, lam).loss
    best = 0.5 * float(((s * r) + (s[:, None] * J) @ sol).norm() ** 2)
    assert after == pytest.approx(best, rel=1e-4)  # and the loss is the least-squares optimum


def test_structured_and_jacobian_kernels_give_the_same_step():
    model, terms = _problem(seed=3)
    a = pinnk.gauss_newton_step(model, terms, None, 1e-3, implementation="structured")
    b = pinnk.gauss_newton_step(model, terms, None, 1e-3, implementation="jacobian")
    for x, y in zip(a.direction, b.direction):
        assert rel_err(x, y) <= 1e-10


def test_bad_input_is_named():
    model, terms = _problem()
    with pytest.raises(ValueError, match="method: expected one of auto, dense, cg, got 'lu'"):
        pinnk.GaussNewtonSystem(model, terms, method="lu")
    with pytest.raises(ValueError, match="damping: expected a positive number"):
        pinnk.gauss_newton_step(model, terms, None, 0.0)
    with pytest.raises(ValueError, match=r"point_weights\[1\]: expected shape \(5,\)"):
        pinnk.GaussNewtonSystem(model, terms, point_weights=[None, torch.ones(3)])
    with pytest.raises(ValueError, match="method: the dense system .* needs"):
        pinnk.GaussNewtonSystem(model, terms, method="dense", max_memory=1000)
    with pytest.raises(ValueError, match="weights: expected 2 weights"):
        pinnk.GaussNewtonSystem(model, terms, [1.0])
    with pytest.raises(ValueError, match="target: the callable '<lambda>' returned NaN or Inf"):
        bad = [pinnk.Term("pde", ops.value(), terms[0].points,
                          target=lambda x: torch.full((x.shape[0],), float("nan")))]
        pinnk.GaussNewtonSystem(model, bad)
    # a finite network whose output overflows (exp of a large value)
    big = pinnk.MLP(2, 1, [4], output_transform=pinnk.Positive([0], kind="exp"),
                    dtype=torch.float64)
    with torch.no_grad():
        big.biases[1].fill_(1e4)
    with pytest.raises(ValueError, match="model: the output or its derivatives are NaN or Inf"):
        pinnk.GaussNewtonSystem(big, [pinnk.Term("pde", ops.value(), terms[0].points)])


def test_cholesky_solve_by_two_triangular_solves():
    from pinnk._gauss_newton import _cholesky_solve
    g = torch.Generator().manual_seed(2)
    X = torch.randn(60, 20, generator=g, dtype=torch.float64)
    A = X @ X.T + 1e-3 * torch.eye(60, dtype=torch.float64)
    b = torch.randn(60, generator=g, dtype=torch.float64)
    x = _cholesky_solve(torch.linalg.cholesky(A), b)
    assert x.shape == (60,)
    assert rel_err(A @ x, b) < 1e-10
    assert rel_err(x, torch.linalg.solve(A, b)) < 1e-9
