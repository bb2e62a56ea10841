"""Every kernel path against the brute-force oracle (float64, relative error <= 1e-10)."""

import math

import pytest
import torch

import pinnk
from pinnk import ops
from oracle import directional_ref, grad_x, jacobian_oracle, partial_ref, rel_err

TOL = 1e-10


def _points(n=6, d=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, d, generator=g, dtype=torch.float64) * 2 - 1


def _normal_field(x):
    return torch.stack([torch.cos(x[:, 0] + x[:, 1]), torch.sin(x[:, 0] - x[:, 1])], dim=-1)


def _coef(x):
    return 1.0 + x[:, 0] ** 2


H_CONST = torch.tensor([0.6, -1.3], dtype=torch.float64)
NU = 0.05


def _burgers(x, u, u_t, u_x, u_xx):
    return u_t + u * u_x - NU * u_xx


# name -> (pinnk operator, reference r(model, x) via reverse-mode autograd in x)
CASES = {
    "value": (ops.value(), lambda m, x: m(x)[:, 0]),
    "dir1": (ops.directional(H_CONST, 1), lambda m, x: directional_ref(m, x, H_CONST.expand_as(x), 1)),
    "dir2": (ops.directional(H_CONST, 2), lambda m, x: directional_ref(m, x, H_CONST.expand_as(x), 2)),
    "dir3": (ops.directional(H_CONST, 3), lambda m, x: directional_ref(m, x, H_CONST.expand_as(x), 3)),
    "dir1_field": (ops.directional(_normal_field, 1),
                   lambda m, x: directional_ref(m, x, _normal_field(x), 1)),
    "dir2_field": (ops.directional(_normal_field, 2),
                   lambda m, x: directional_ref(m, x, _normal_field(x), 2)),
    "mixed11": (ops.partial([1, 1]), lambda m, x: partial_ref(m, x, [1, 1])),
    "mixed20": (ops.partial([2, 0]), lambda m, x: partial_ref(m, x, [2, 0])),
    "mixed21": (ops.partial([2, 1]), lambda m, x: partial_ref(m, x, [2, 1])),
    "laplacian": (ops.laplacian(), lambda m, x: partial_ref(m, x, [2, 0]) + partial_ref(m, x, [0, 2])),
    "transport_field": (ops.transport([_coef, -2.5]),
                        lambda m, x: _coef(x) * partial_ref(m, x, [1, 0]) - 2.5 * partial_ref(m, x, [0, 1])),
    "combo": (ops.value() - 0.3 * ops.partial([1, 1]) + _coef * ops.laplacian(),
              lambda m, x: m(x)[:, 0] - 0.3 * partial_ref(m, x, [1, 1])
              + _coef(x) * (partial_ref(m, x, [2, 0]) + partial_ref(m, x, [0, 2]))),
    "burgers": (ops.residual(_burgers, u=ops.value(), u_t=ops.partial([0, 1]),
                             u_x=ops.partial([1, 0]), u_xx=ops.partial([2, 0])),
                lambda m, x: _burgers(x, m(x)[:, 0], partial_ref(m, x, [0, 1]),
                                      partial_ref(m, x, [1, 0]), partial_ref(m, x, [2, 0]))),
}
STRUCTURED = set(CASES)  # every operator, any order, nonlinear residuals included


def _models():
    g = torch.Generator().manual_seed(1)
    yield "mlp-tanh-std", pinnk.MLP(2, 1, 12, 2, "tanh", generator=g, dtype=torch.float64)
    yield "mlp-tanh-ntk", pinnk.MLP(2, 1, 12, 2, "tanh", "ntk", generator=g, dtype=torch.float64)
    for act in ("sin", "gelu", "softplus", "erf"):
        yield f"mlp-{act}-ntk", pinnk.MLP(2, 1, [10, 9], activation=act, parametrization="ntk",
                                          generator=g, dtype=torch.float64)
    emb = pinnk.FourierFeatures(2, 4, scale=0.5, generator=g, dtype=torch.float64)
    yield "mlp-fourier", pinnk.MLP(2, 1, 10, 2, embedding=emb, generator=g, dtype=torch.float64)
    torch.manual_seed(2)
    seq = torch.nn.Sequential(torch.nn.Linear(2, 11), torch.nn.Tanh(), torch.nn.Linear(11, 7),
                              torch.nn.Softplus(), torch.nn.Linear(7, 1)).double()
    yield "sequential", seq


MODELS = dict(_models())


def _oracle_kernel(model, cases, xs):
    Js = [jacobian_oracle(lambda ref=ref, x=x: ref(model, x), model) for (_, ref), x in zip(cases, xs)]
    return Js


@pytest.mark.parametrize("model_name", list(MODELS))
def test_all_operators_against_oracle(model_name):
    model = MODELS[model_name]
    names = list(CASES)
    xs = [_points(5, seed=k) for k in range(len(names))]
    terms = [pinnk.Term(nm, CASES[nm][0], x) for nm, x in zip(names, xs)]
    Js = _oracle_kernel(model, [CASES[nm] for nm in names], xs)
    is_mlp = isinstance(model, pinnk.MLP)
    impls = ["jacobian"] + (["structured"] if is_mlp else [])
    if is_mlp:  # "auto" picks structured exactly where it applies
        K = pinnk.ntk(model, terms, "auto")
        assert K.implementations == ["structured" if nm in STRUCTURED else "jacobian" for nm in names]
    for impl in impls:
        if impl == "structured":
            sel = [k for k, nm in enumerate(names) if nm in STRUCTURED]
        else:
            sel = list(range(len(names)))
        K = pinnk.ntk(model, [terms[k] for k in sel], impl)
        for a, i in enumerate(sel):
            for b, j in enumerate(sel):
                if b < a:
                    continue
                ref = Js[i] @ Js[j].T
                err = rel_err(K.block(a, b), ref)
                assert err <= TOL, (impl, names[i], names[j], err)


def test_multi_output_components_and_sum_over_components():
    g = torch.Generator().manual_seed(3)
    model = pinnk.MLP(2, 3, 9, 2, "tanh", "ntk", generator=g, dtype=torch.float64)
    x = _points(6)
    op = ops.partial([1, 0], component=2) + 0.5 * ops.value(component=1) + ops.divergence([0, 1])
    def ref():
        return (partial_ref(model, x, [1, 0], 2) + 0.5 * model(x)[:, 1]
                + partial_ref(model, x, [1, 0], 0) + partial_ref(model, x, [0, 1], 1))
    J = jacobian_oracle(ref, model)
    for impl in ("structured", "jacobian"):
        K = pinnk.ntk(model, [pinnk.Term("t", op, x)], impl)
        assert rel_err(K.block(0, 0), J @ J.T) <= TOL


def _transformed():
    g = torch.Generator().manual_seed(7)
    emb = pinnk.FourierFeatures(2, 3, scale=0.7, keep_input=True, generator=g, dtype=torch.float64)
    shift = lambda x, y: y + x[:, :1] * x[:, 1:2]  # noqa: E731 - an x-dependent transform
    return pinnk.MLP(2, 1, 10, 2, "softplus", embedding=emb,
                     output_transform=lambda x, y: pinnk.Positive([0])(x, shift(x, y)),
                     generator=g, dtype=torch.float64)


def _positive(kind):
    g = torch.Generator().manual_seed(8)
    return pinnk.MLP(2, 2, 10, 2, "tanh", output_transform=pinnk.Positive([0], kind=kind,
                                                                          floor=0.1),
                     generator=g, dtype=torch.float64)


@pytest.mark.parametrize("model_name", ["mlp-tanh-std", "mlp-fourier", "sequential", "transformed",
                                        "positive-softplus", "positive-exp"])
def test_operator_values_match_reverse_mode(model_name):
    """Both evaluation paths (one Taylor-stream pass on pinnk.MLP, nested jvp elsewhere and above
    order 2), with embeddings and x-dependent output transforms."""
    if model_name == "transformed":
        model = _transformed()
    elif model_name.startswith("positive"):
        model = _positive(model_name.split("-")[1])
    else:
        model = MODELS[model_name]
    x = _points(8)
    for nm, (op, ref) in CASES.items():
        got = op(model, x)
        want = ref(model, x)
        assert got.shape == (8,)
        assert rel_err(got, want) <= 1e-12, (model_name, nm)
        assert rel_err(op.apply(model, x), want) <= 1e-12, (model_name, nm)


def test_mixed_partials_agree_in_both_orders():
    model = MODELS["mlp-gelu-ntk"]
    x = _points(7)
    for alpha in ([1, 1], [2, 1], [1, 2]):
        fwd = ops.partial(alpha)(model, x)
        a = partial_ref(model, x, alpha)
        b = partial_ref(model, x, alpha, reverse=True)
        assert rel_err(a, b) <= 1e-12
        assert rel_err(fwd, a) <= 1e-12
    # forward-mode in both orders through the public operator arithmetic
    e0, e1 = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
    d01 = 0.5 * (ops.directional(e0 + e1, 2) - ops.directional(e0, 2) - ops.directional(e1, 2))
    assert rel_err(d01(model, x), ops.partial([1, 1])(model, x)) <= 1e-10


def test_directional_higher_order_is_the_taylor_coefficient():
    """∂_h^k f(x) = d^k/dε^k f(x + εh): check against a polynomial fit in ε (order 4)."""
    model = MODELS["mlp-sin-ntk"]
    x = _points(3)
    h = torch.tensor([0.3, 0.4], dtype=torch.float64)
    d4 = ops.directional(h, 4)(model, x)
    # finite differences of the 3rd derivative, central: error O(eps^2)
    d3 = lambda y: ops.directional(h, 3)(model, y)
    errs = []
    for eps in (1e-2, 5e-3):
        fd = (d3(x + eps * h) - d3(x - eps * h)) / (2 * eps)
        errs.append(float((fd - d4).abs().max().detach()))
    assert errs[1] < errs[0] / 3.0  # second-order convergence (ratio 4)


def test_nonzero_grad_requires_grad_flags_are_respected():
    g = torch.Generator().manual_seed(4)
    model = pinnk.MLP(2, 1, 8, 2, generator=g, dtype=torch.float64)
    model.weights[0].requires_grad_(False)
    model.biases[2].requires_grad_(False)
    x = _points(5)
    op = ops.laplacian()
    J = jacobian_oracle(lambda: partial_ref(model, x, [2, 0]) + partial_ref(model, x, [0, 2]), model)
    for impl in ("structured", "jacobian"):
        K = pinnk.ntk(model, [pinnk.Term("lap", op, x)], impl)
        assert rel_err(K.block(0, 0), J @ J.T) <= TOL


@pytest.mark.parametrize("impl", ["structured", "jacobian"])
def test_chunking_gives_the_same_blocks(impl):
    model = MODELS["mlp-tanh-ntk"]
    x1, x2 = _points(11, seed=1), _points(7, seed=2)
    terms = [pinnk.Term("u", ops.value(), x1), pinnk.Term("d", ops.directional(H_CONST), x2)]
    full = pinnk.ntk(model, terms, impl)
    chunked = pinnk.ntk(model, terms, impl, chunk_size=3)
    uncached = pinnk.ntk(model, terms, impl, chunk_size=4, max_memory=10_000)
    for i in range(2):
        for j in range(2):
            assert rel_err(chunked.block(i, j), full.block(i, j)) <= 1e-13
            assert rel_err(uncached.block(i, j), full.block(i, j)) <= 1e-13
        assert rel_err(chunked.diagonal(i), torch.diagonal(full.block(i, i))) <= 1e-13


class _Opaque(pinnk.ops.Operator):
    """A custom operator that evaluates the network itself (``apply`` only): it has no
    derivative requests to linearise, so its kernel takes the Jacobian path."""

    def __init__(self, inner):
        self.inner = inner

    @property
    def order(self):
        return self.inner.order

    def apply(self, f, x):
        return self.inner.apply(f, x)


def test_mixed_structured_and_jacobian_blocks():
    """'auto' with one opaque term: structured features are materialised for cross blocks, and
    the reason the opaque term stays on the Jacobian path is stated."""
    model = MODELS["mlp-softplus-ntk"]
    names = ["value", "dir2_field", "burgers"]
    xs = [_points(4, seed=k) for k in range(3)]
    terms = [pinnk.Term(nm, CASES[nm][0], x) for nm, x in zip(names, xs)]
    terms[2] = pinnk.Term("burgers", _Opaque(CASES["burgers"][0]), xs[2])
    K = pinnk.ntk(model, terms, "auto")
    assert K.implementations == ["structured", "structured", "jacobian"]
    with pytest.raises(ValueError, match="evaluates the network itself"):
        pinnk.ntk(model, terms, "structured")
    Js = _oracle_kernel(model, [CASES[nm] for nm in names], xs)
    for i in range(3):
        for j in range(3):
            assert rel_err(K.block(i, j), Js[i] @ Js[j].T) <= TOL


@pytest.mark.parametrize("chunk_size", [None, 2])
def test_mixed_blocks_with_frozen_parameters(chunk_size):
    """The cross blocks of structured and Jacobian terms (the structured rows contracted layer by
    layer with the Jacobian rows) when some weights and biases are frozen, in chunks too."""
    g = torch.Generator().manual_seed(7)
    model = pinnk.MLP(2, 1, [9, 7], activation="tanh", generator=g, dtype=torch.float64)
    model.weights[1].requires_grad_(False)
    model.biases[0].requires_grad_(False)
    names = ["dir2_field", "burgers", "value"]
    xs = [_points(5, seed=10 + k) for k in range(3)]
    terms = [pinnk.Term(nm, CASES[nm][0], x) for nm, x in zip(names, xs)]
    terms[1] = pinnk.Term("burgers", _Opaque(CASES["burgers"][0]), xs[1])
    K = pinnk.ntk(model, terms, "auto", chunk_size=chunk_size)
    assert K.implementations == ["structured", "jacobian", "structured"]
    Js = _oracle_kernel(model, [CASES[nm] for nm in names], xs)
    for i in range(3):
        for j in range(3):
            assert rel_err(K.block(i, j), Js[i] @ Js[j].T) <= TOL, (names[i], names[j])
    assert rel_err(K.matrix(), torch.cat(Js) @ torch.cat(Js).T) <= TOL


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    model = MODELS["mlp-tanh-ntk"]
    x = _points(9)
    terms = [pinnk.Term("u", ops.value(), x), pinnk.Term("lap", ops.laplacian(), x)]
    cpu = pinnk.ntk(model, terms).matrix()
    gpu_model = pinnk.MLP(2, 1, 12, 2, "tanh", "ntk", dtype=torch.float64).cuda()
    gpu_model.load_state_dict(model.state_dict())
    for impl in ("structured", "jacobian"):
        gpu = pinnk.ntk(gpu_model, terms, impl).matrix()
        assert gpu.device.type == "cuda"
        assert rel_err(gpu.cpu(), cpu) <= TOL
