"""The same computations on CUDA as on the CPU (skipped where no GPU is present).

Every path that the CPU tests check against the brute-force oracle is run here with the model and
the points on the GPU and compared with the CPU result (float64, relative error <= 1e-10): the
structured kernel for every kind of operator (field coefficients, any order, nonlinear residuals,
output transforms, several outputs), the Jacobian path, per-point diagonals and angles, trace
weights, the Gauss–Newton step (dense and CG), and training with diagnostics, trace weights, the
Gauss–Newton optimizer and an exact resume, through the Python API and the CLI.
"""

import copy
import json

import pytest
import torch

import pinnk
import problems
from cli_util import run_cli
from oracle import jacobian_oracle, op_ref, rel_err
from pinnk import ops
from solvers import train
from test_kernel_oracle import CASES
from train_util import Interrupt

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")

TOL = 1e-10
CUDA = torch.device("cuda")


def _points(n, d=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, d, generator=g, dtype=torch.float64) * 2 - 1


def _euler_terms(x):
    k = 2.5
    rho, u, p = ops.value(0), ops.value(1), ops.value(2)
    dx = [ops.partial([1, 0], c) for c in range(3)]
    dt = [ops.partial([0, 1], c) for c in range(3)]
    mass = ops.residual(lambda x, rho, u, rho_x, u_x, rho_t: rho_t + rho_x * u + rho * u_x,
                        rho=rho, u=u, rho_x=dx[0], u_x=dx[1], rho_t=dt[0])

    def energy(x, rho, u, p, u_x, p_x, p_t):
        return k * p_t + u * k * p_x + (k + 1.0) * p * u_x + 0.0 * rho

    en = ops.residual(energy, rho=rho, u=u, p=p, u_x=dx[1], p_x=dx[2], p_t=dt[2])
    return [pinnk.Term("mass", mass, x), pinnk.Term("energy", en, x),
            pinnk.Term("rho_xxt", ops.partial([2, 1], 0), x),
            pinnk.Term("d4", ops.directional(torch.tensor([0.6, -0.8], dtype=torch.float64), 4,
                                             component=1), x)]


def _models():
    g = torch.Generator().manual_seed(3)
    yield "scalar", pinnk.MLP(2, 1, [11, 9], activation="tanh", parametrization="ntk",
                              generator=g, dtype=torch.float64), None
    yield "euler", pinnk.MLP(2, 3, 10, 3, "tanh", output_transform=pinnk.Positive([0, 2]),
                             generator=g, dtype=torch.float64), _euler_terms


def _on(model, terms, device):
    """A copy of the model and the terms on ``device``."""
    m = copy.deepcopy(model).to(device)
    return m, [t.to(device) for t in terms]


@pytest.mark.parametrize("name", ["scalar", "euler"])
def test_structured_and_jacobian_kernels_match_the_cpu(name):
    model, make = dict((n, (m, f)) for n, m, f in _models())[name]
    if make is None:
        xs = [_points(5, seed=k) for k in range(len(CASES))]
        terms = [pinnk.Term(nm, op, x) for (nm, (op, _)), x in zip(CASES.items(), xs)]
    else:
        terms = make(_points(7))
    ref = pinnk.ntk(model, terms, "structured")
    M_cpu = ref.matrix()
    gm, gterms = _on(model, terms, CUDA)
    for impl in ("structured", "jacobian"):
        K = pinnk.ntk(gm, gterms, impl)
        assert K.implementations == [impl] * len(terms)
        M = K.matrix()
        assert M.device.type == "cuda" and M.dtype == torch.float64
        assert rel_err(M.cpu(), M_cpu) <= TOL, impl
        for i in range(len(terms)):
            assert rel_err(K.diagonal(i).cpu(), ref.diagonal(i)) <= TOL
        assert torch.allclose(K.trace_weights().cpu(), ref.trace_weights(), rtol=1e-10)
    if make is not None:  # cross-diagonals and angles between two residuals at the same points
        cos = pinnk.angles(gm, gterms[0], gterms[1])
        assert cos.device.type == "cuda"
        assert rel_err(cos.cpu(), pinnk.angles(model, terms[0], terms[1])) <= TOL


def test_euler_kernel_on_cuda_against_the_oracle():
    g = torch.Generator().manual_seed(4)
    model = pinnk.MLP(2, 3, 8, 2, "tanh", output_transform=pinnk.Positive([0, 2]), generator=g,
                      dtype=torch.float64).to(CUDA)
    x = _points(5).to(CUDA)
    terms = _euler_terms(x)[:2]
    K = pinnk.ntk(model, terms, "structured")
    Js = [jacobian_oracle(lambda t=t: op_ref(model, x, t.operator), model) for t in terms]
    for i in range(2):
        for j in range(2):
            assert rel_err(K.block(i, j), Js[i] @ Js[j].T) <= TOL


@pytest.mark.parametrize("method", ["dense", "cg"])
def test_gauss_newton_step_matches_the_cpu(method):
    g = torch.Generator().manual_seed(0)
    model = pinnk.MLP(2, 1, [10, 9], generator=g, dtype=torch.float64)
    x, xb = _points(9, seed=1), _points(5, seed=2)
    burgers = CASES["burgers"][0]
    terms = [pinnk.Term("pde", burgers, x),
             pinnk.Term("bc", ops.value(), xb, target=torch.sin(3 * xb[:, 0]))]
    kw = dict(method=method, cg_tol=1e-14, cg_max_iter=500)
    cpu = pinnk.gauss_newton_step(model, terms, [1.0, 7.5], 1e-3, **kw)
    gm, gterms = _on(model, terms, CUDA)
    gpu = pinnk.gauss_newton_step(gm, gterms, [1.0, 7.5], 1e-3, **kw)
    for a, b in zip(gpu.direction, cpu.direction):
        assert a.device.type == "cuda"
        assert rel_err(a.cpu(), b) <= 1e-9
    assert gpu.loss == pytest.approx(cpu.loss, rel=1e-12)


TRAIN = dict(points=32, model_options={"width": 16, "depth": 2}, export=False, log_every=1,
             steps=24, device="cuda")


@pytest.mark.parametrize("opts", [
    dict(weighting="trace:every=5", ntk_every=8, probe_points=8, optimizer="adam:lr=1e-2",
         resample_every=7),
    dict(optimizer="adam+gn:lr=1e-2,switch=12", dtype="float64", ntk_every=0),
    dict(optimizer="adam+gn:lr=1e-2,switch=12,gn_kernel_points=20", dtype="float64",
         weighting="causal:epsilon=1,chunks=4+trace:every=5", ntk_every=0, resample_every=7),
    dict(optimizer="adam+lbfgs:lr=1e-2,switch=12", sampler="rad", resample_every=5,
         weighting="gradnorm:every=3", ntk_every=7, probe_points=8),
], ids=["adam-trace-diagnostics", "adam+gn", "causal-gn-subset", "rad-gradnorm-lbfgs"])
def test_training_on_cuda_resumes_exactly(tmp_path, opts):
    problem = problems.get("convection", beta=1.0)
    a = train(problem, out=tmp_path / "a", checkpoint_every=4, **TRAIN, **opts)
    assert next(a.model.parameters()).device.type == "cuda"
    assert a.config["device"].startswith("cuda")
    with pytest.raises(KeyboardInterrupt):
        train(problem, out=tmp_path / "b", checkpoint_every=4, callback=Interrupt(17), **TRAIN,
              **opts)
    b = train(problem, out=tmp_path / "b", checkpoint_every=4, resume=True, **TRAIN, **opts)
    pa, pb = a.model.state_dict(), b.model.state_dict()
    for k in pa:
        assert torch.equal(pa[k], pb[k]), k
    assert b.metrics["relative_l2"] == a.metrics["relative_l2"]
    first = sum(a.history["train"][0]["losses"].values())
    last = sum(a.history["train"][-1]["losses"].values())
    assert last < first


def test_cli_trains_on_cuda(capsys, tmp_path):
    code, _, err = run_cli(capsys, "train", "poisson-1d", "--device", "cuda", "--steps", "30",
                           "--out", tmp_path / "run", "--no-export")
    assert code == 0, err
    cfg = json.loads((tmp_path / "run" / "config.json").read_text())
    assert cfg["device"].startswith("cuda")
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["steps"] == 30


def test_report_sweeps_on_cuda(capsys, tmp_path):
    code, _, err = run_cli(capsys, "report", "weights", "poisson-1d", "--grid", "0.1:10:2",
                           "--steps", "20", "--points", "residual=32", "--trace",
                           "trace:every=10", "--device", "cuda", "--quiet", "--out",
                           tmp_path / "rep")
    assert code == 0, err
    assert (tmp_path / "rep" / "report.html").exists()


@pytest.fixture
def cuda_default():
    """CUDA as torch's global default device, as importing DeepXDE makes it on a GPU machine."""
    torch.set_default_device("cuda")
    yield
    torch.set_default_device(None)


def test_a_cuda_default_device_changes_no_draw_and_no_result(cuda_default, tmp_path):
    net = pinnk.MLP(2, 2, [8, 7], generator=torch.Generator().manual_seed(5),
                    dtype=torch.float64)
    assert next(net.parameters()).device.type == "cuda"  # placed like any new tensor
    box = pinnk.Box([0.0, -1.0], [1.0, 2.0])
    x = box.sample(16, torch.Generator().manual_seed(1), torch.float64)
    xb, nb = box.sample_boundary(16, torch.Generator().manual_seed(1), torch.float64)
    gpu = train(problems.get("convection", beta=1.0), **{**TRAIN, "steps": 12},
                optimizer="adam+gn:lr=1e-2,switch=6,gn_kernel_points=20", dtype="float64",
                ntk_every=4, probe_points=8)
    torch.set_default_device(None)
    ref = pinnk.MLP(2, 2, [8, 7], generator=torch.Generator().manual_seed(5),
                    dtype=torch.float64)
    for a, b in zip(net.parameters(), ref.parameters()):  # the same numbers from the same seed
        assert torch.equal(a.cpu(), b)
    assert torch.equal(x.cpu(), box.sample(16, torch.Generator().manual_seed(1), torch.float64))
    xb2, nb2 = box.sample_boundary(16, torch.Generator().manual_seed(1), torch.float64)
    assert torch.equal(xb.cpu(), xb2) and torch.equal(nb.cpu(), nb2)
    cpu_default = train(problems.get("convection", beta=1.0), **{**TRAIN, "steps": 12},
                        optimizer="adam+gn:lr=1e-2,switch=6,gn_kernel_points=20",
                        dtype="float64", ntk_every=4, probe_points=8)
    assert gpu.metrics["relative_l2"] == pytest.approx(cpu_default.metrics["relative_l2"],
                                                       rel=1e-6)
