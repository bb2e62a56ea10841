"""Structural properties of Θ, Θ*, trace weights and angles."""

import numpy as np
import pytest
import torch

import pinnk
from pinnk import ops
from oracle import rel_err


def _setup(impl_model="mlp", n=(9, 7, 9)):
    g = torch.Generator().manual_seed(5)
    if impl_model == "mlp":
        model = pinnk.MLP(2, 1, 16, 2, "tanh", "ntk", generator=g, dtype=torch.float64)
    else:
        torch.manual_seed(5)
        model = torch.nn.Sequential(torch.nn.Linear(2, 16), torch.nn.Tanh(),
                                    torch.nn.Linear(16, 1)).double()
    xs = [torch.rand(k, 2, generator=g, dtype=torch.float64) for k in n]
    terms = [pinnk.Term("u", ops.value(), xs[0], torch.sin(xs[0][:, 0])),
             pinnk.Term("bc", ops.directional([1.0, 1.0]), xs[1]),
             pinnk.Term("pde", ops.laplacian() + 2.0 * ops.value(), xs[2])]
    return model, terms


@pytest.mark.parametrize("impl", ["structured", "jacobian"])
def test_theta_is_symmetric_psd(impl):
    model, terms = _setup()
    K = pinnk.ntk(model, terms, impl)
    M = K.matrix()
    assert M.shape == (25, 25)
    assert rel_err(M, M.T) <= 1e-14
    ev = torch.linalg.eigvalsh(M)
    assert float(ev.min()) >= -1e-10 * float(ev.max())
    # the block accessor by name agrees with the assembled matrix and with its transpose
    assert torch.equal(K.block("bc", "u"), K.block(0, 1).T)
    assert torch.allclose(M[9:16, 0:9], K.block("bc", "u"))


@pytest.mark.parametrize("impl", ["structured", "jacobian"])
def test_theta_star_spectrum_is_real_and_matches_general_eig(impl):
    model, terms = _setup()
    K = pinnk.ntk(model, terms, impl)
    w = [0.5, 7.0, 0.01]
    ev = K.eigvalsh(w)
    assert torch.all(ev[1:] >= ev[:-1])
    assert float(ev.min()) >= -1e-10 * float(ev.max())
    # Θ* (not symmetric) has the same spectrum: check with a general eigen-solver
    Mstar = K.matrix(w).numpy()
    assert not np.allclose(Mstar, Mstar.T)
    gen = np.linalg.eigvals(Mstar)
    assert np.abs(gen.imag).max() <= 1e-8 * np.abs(gen).max()
    np.testing.assert_allclose(np.sort(gen.real), ev.numpy(), rtol=1e-7, atol=1e-9 * float(ev.max()))
    # blocks of Θ*: block (a, i) = w_i Θ_ai
    assert torch.allclose(K.matrix(w)[0:9, 9:16], 7.0 * K.block(0, 1))
    # weights by name
    assert torch.allclose(K.eigvalsh({"u": 0.5, "bc": 7.0, "pde": 0.01}), ev)


@pytest.mark.parametrize("impl", ["structured", "jacobian"])
def test_trace_weights_match_their_formulas(impl):
    model, terms = _setup()
    K = pinnk.ntk(model, terms, impl)
    tr = torch.tensor([float(torch.trace(K.block(i, i))) for i in range(3)], dtype=torch.float64)
    n = torch.tensor([9.0, 7.0, 9.0], dtype=torch.float64)
    K2 = pinnk.ntk(model, terms, impl)  # fresh: the weights come from diagonals alone
    lam_sum = K2.trace_weights("sum")
    assert not K2._blocks  # no block was built
    assert torch.allclose(lam_sum, tr.sum() / tr, rtol=1e-12)
    m = tr / n
    assert torch.allclose(K2.trace_weights("mean"), m.sum() / m, rtol=1e-12)
    # every weighted trace is the same: λ_i tr Θ_ii = Σ_j tr Θ_jj
    assert torch.allclose(lam_sum * tr, tr.sum().expand(3), rtol=1e-12)


@pytest.mark.parametrize("impl", ["structured", "jacobian"])
def test_trace_weights_mean_form_is_independent_of_point_counts(impl):
    model, _ = _setup()
    g = torch.Generator().manual_seed(0)
    x = torch.rand(400, 2, generator=g, dtype=torch.float64)
    lam = []
    for n_u, n_d in ((40, 400), (400, 40)):
        terms = [pinnk.Term("u", ops.value(), x[:n_u]), pinnk.Term("d", ops.laplacian(), x[:n_d])]
        lam.append(pinnk.ntk(model, terms, impl).trace_weights("mean"))
    # same distribution of points: the mean form changes only by sampling noise
    assert torch.allclose(lam[0], lam[1], rtol=0.25)


@pytest.mark.parametrize("model_kind", ["mlp", "sequential"])
def test_angles_are_normalised_block_diagonals(model_kind):
    model, terms = _setup(model_kind, n=(9, 9, 9))
    x = terms[0].points
    a = pinnk.Term("u", ops.value(), x)
    b = pinnk.Term("pde", ops.laplacian() + 2.0 * ops.value(), x)
    cos = pinnk.angles(model, a, b)
    assert cos.shape == (9,)
    assert bool(((cos >= -1) & (cos <= 1)).all())
    K = pinnk.ntk(model, [a, b], "jacobian")
    ref = torch.diagonal(K.block(0, 1)) / torch.sqrt(torch.diagonal(K.block(0, 0))
                                                     * torch.diagonal(K.block(1, 1)))
    assert rel_err(cos, ref) <= 1e-12
    # a term with itself is perfectly aligned; with its negative, opposed
    assert torch.allclose(pinnk.angles(model, a, a), torch.ones(9, dtype=torch.float64))
    neg = pinnk.Term("neg", -1.0 * ops.value(), x)
    assert torch.allclose(pinnk.angles(model, a, neg), -torch.ones(9, dtype=torch.float64))


def test_angles_build_no_block():
    model, terms = _setup()
    x = terms[0].points
    K = pinnk.ntk(model, [pinnk.Term("u", ops.value(), x), pinnk.Term("d", ops.laplacian(), x)])
    K.cross_diagonal(0, 1)
    K.diagonal(0)
    assert not K._blocks


def test_kernel_follows_model_dtype():
    g = torch.Generator().manual_seed(0)
    model = pinnk.MLP(2, 1, 8, 2, generator=g)  # float32
    x = torch.rand(5, 2, dtype=torch.float64)
    K = pinnk.ntk(model, [pinnk.Term("u", ops.laplacian(), x)])
    assert K.block(0, 0).dtype == torch.float32


def test_matrix_in_place_blocks_survive_changes_to_the_matrix():
    """Θ is assembled in place (its blocks cached as views of the matrix handed out); changing
    the matrix in place (M += μ I, as a damped solve might) must not change later blocks."""
    model, terms = _setup()
    K = pinnk.ntk(model, terms, "structured")
    ref = pinnk.ntk(model, terms, "jacobian").matrix()
    M = K.matrix()
    assert rel_err(M, ref) < 1e-12
    offs = [0, terms[0].n, terms[0].n + terms[1].n]
    b01 = K.block(0, 1)
    assert b01.data_ptr() == M[0:offs[1], offs[1]:offs[2]].data_ptr()  # a view: no copy
    M.add_(torch.eye(M.shape[0], dtype=M.dtype) * 3.0)
    M[0, offs[1]] += 1.0
    for a in range(3):
        for i in range(3):
            want = ref[offs[a]:offs[a + 1] if a < 2 else None, offs[i]:offs[i + 1] if i < 2
                       else None]
            assert rel_err(K.block(a, i), want) < 1e-12
    assert rel_err(K.matrix(), ref) < 1e-12
    assert rel_err(K.matrix([1.0, 2.0, 0.5]), ref * torch.tensor(
        [1.0] * terms[0].n + [2.0] * terms[1].n + [0.5] * terms[2].n, dtype=ref.dtype)) < 1e-12


@pytest.mark.parametrize("wo,wi", [(24, 2), (3, 24), (2, 2), (20, 18)])
def test_outer_sum_is_the_rowwise_sum_of_outer_products(wo, wi):
    """The materialised rows of a layer: narrow sides looped over, wide ones batched, into a
    strided view (the weight columns of a buffer that also holds the bias columns)."""
    from pinnk._structured import _outer_sum
    g = torch.Generator().manual_seed(4)
    As = [torch.randn(9, wo, generator=g, dtype=torch.float64) for _ in range(3)]
    Hs = [torch.randn(9, wi, generator=g, dtype=torch.float64) for _ in range(3)]
    buf = torch.full((9, wo * wi + 5), 7.0, dtype=torch.float64)
    _outer_sum(As, Hs, buf[:, :wo * wi].view(9, wo, wi), 0.5)
    ref = 0.5 * torch.einsum("snw,snv->nwv", torch.stack(As), torch.stack(Hs)).reshape(9, -1)
    assert rel_err(buf[:, :wo * wi], ref) < 1e-14
    assert bool((buf[:, wo * wi:] == 7.0).all())


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_syrk_lower_writes_the_lower_triangle_of_a_gram(dtype, one_thread):
    from pinnk._structured import syrk_lower
    g = torch.Generator().manual_seed(3)
    a = torch.randn(37, 11, generator=g, dtype=dtype)
    out = torch.full((37, 37), 7.0, dtype=dtype)
    assert syrk_lower(a, out)
    ref = a @ a.T
    tol = 1e-12 if dtype == torch.float64 else 1e-5
    assert torch.allclose(out.tril(), ref.tril(), rtol=tol, atol=tol)
    assert bool((out.triu(1) == torch.full_like(out, 7.0).triu(1)).all())  # upper untouched
    assert syrk_lower(a, out, beta=1.0)  # accumulates
    assert torch.allclose(out.tril(), 2 * ref.tril(), rtol=tol, atol=tol)
    # no BLAS routine: nothing written
    assert not syrk_lower(a.T, torch.zeros(11, 11, dtype=dtype))  # not contiguous
    assert not syrk_lower(a.to(torch.float16), torch.zeros(37, 37, dtype=torch.float16))
    assert not syrk_lower(a, torch.zeros(37, 37, dtype=torch.complex128))


def _same_point_terms(case: str, seed: int, n: int, widths: list) -> tuple:
    """(model, terms) at the same n random points: the three 1D Euler residuals on a 2 → widths
    → 3 network with ``Positive`` on ρ and p (``case`` "euler"), else [f, ∂_h f] on 2 → widths
    → 1."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 2, generator=g, dtype=torch.float64)
    if case == "euler":
        from pinnk.benchmarks.ntk import euler_residuals_1d
        model = pinnk.MLP(2, 3, widths, activation="tanh", output_transform=pinnk.Positive([0, 2]),
                          generator=g, dtype=torch.float64)
        return model, [pinnk.Term(k, op, x) for k, op in euler_residuals_1d().items()]
    model = pinnk.MLP(2, 1, widths, activation="tanh", generator=g, dtype=torch.float64)
    h = torch.tensor([0.8, -0.6], dtype=torch.float64)
    return model, [pinnk.Term("f", ops.value(), x), pinnk.Term("d", ops.directional(h), x)]


def test_syrk_declines_with_more_than_one_torch_thread(set_threads):
    """SciPy's BLAS threads and torch's contend (a kernel 10-20 times slower on 2 threads), so
    syrk is used on one torch thread only; with more the general products are taken."""
    from pinnk._structured import syrk_lower
    a = torch.randn(9, 4, dtype=torch.float64)
    out = torch.full((9, 9), 7.0, dtype=torch.float64)
    set_threads(2)
    assert not syrk_lower(a, out)
    assert bool((out == 7.0).all())  # nothing written
    set_threads(1)
    assert syrk_lower(a, out)


@pytest.mark.parametrize("threads", [1, 2])
def test_structured_kernel_on_one_and_two_threads(threads, set_threads):
    """The kernel is the same whether syrk (one thread) or the general products (two) form
    the symmetric products."""
    model, terms = _same_point_terms("euler", 7, 40, [16] * 3)
    set_threads(threads)
    K = pinnk.ntk(model, terms, "structured").matrix()
    jac = pinnk.ntk(model, terms, "jacobian").matrix()
    assert rel_err(K, jac) < 1e-10
    assert torch.equal(K, K.T)


@pytest.mark.parametrize("case", ["directional", "directional-wide", "euler"])
def test_structured_kernel_is_the_same_without_symmetric_products(case, monkeypatch, one_thread):
    """The symmetric products (BLAS syrk: lower triangles in a chunk's own block, mirrored where
    a wide product is shared with another block) give the kernel of the general products (the
    path taken off the CPU)."""
    import pinnk._structured as S
    widths = {"euler": [16] * 3, "directional-wide": [130, 130]}.get(case, [24, 24])
    model, terms = _same_point_terms(case, 5, 40, widths)
    with_syrk = pinnk.ntk(model, terms, "structured").matrix()
    monkeypatch.setattr(S, "_syrk", lambda a: None)
    without = pinnk.ntk(model, terms, "structured").matrix()
    jac = pinnk.ntk(model, terms, "jacobian").matrix()
    assert rel_err(with_syrk, without) < 1e-12
    assert rel_err(with_syrk, jac) < 1e-10
    assert torch.equal(with_syrk, with_syrk.T)


def test_products_give_a_whole_product_after_keeping_a_triangle():
    """A kept product formed as a lower triangle (every planned use reads no more) is not handed
    to a caller that reads it whole (the bias product of another block, not in the plan)."""
    from pinnk._structured import _pair_key, _Products
    g = torch.Generator().manual_seed(1)
    a = torch.randn(30, 9, generator=g, dtype=torch.float64)
    pool = _Products(budget=1 << 20)
    pool.next_layer({_pair_key(a, a): 2}, set())
    tri = pool(a, a, 0, lower=True)
    assert torch.allclose(tri.tril(), (a @ a.T).tril(), rtol=1e-12, atol=1e-12)
    assert pool(a, a, 0, lower=True) is tri  # kept
    whole = pool(a, a, 1)
    assert torch.allclose(whole, a @ a.T, rtol=1e-12, atol=1e-12)
    # a product some block reads whole is formed whole for every caller
    pool.next_layer({_pair_key(a, a): 2}, {_pair_key(a, a)})
    assert torch.allclose(pool(a, a, 0, lower=True), a @ a.T, rtol=1e-12, atol=1e-12)


def test_products_keep_their_layout_and_shift_a_kept_one_aside():
    """A kept product is handed out in the layout it was formed in (with a flag saying whether
    that is the transpose of what was asked for); a new one is formed transposed on request;
    shifting leaves a kept product intact and a used-once product is shifted in place."""
    from pinnk._structured import _pair_key, _Products
    g = torch.Generator().manual_seed(2)
    a, b, c = (torch.randn(n, 6, generator=g, dtype=torch.float64) for n in (11, 7, 5))
    pool = _Products(budget=1 << 20)
    pool.next_layer({_pair_key(a, b): 2}, {_pair_key(a, b)})
    P, swapped = pool.oriented(a, b, 0)
    assert not swapped and torch.allclose(P, a @ b.T, rtol=1e-13, atol=0)
    Q, swapped = pool.oriented(b, a, 1)
    assert swapped and Q is P  # the kept product, not a transposed copy
    assert torch.equal(pool(b, a, 1), P.T)
    R, swapped = pool.oriented(a, c, 1, swap=True)  # not kept: formed as c aᵀ
    assert swapped and R.shape == (5, 11) and torch.allclose(R, c @ a.T, rtol=1e-13, atol=0)
    before = P.clone()
    S = pool.shifted(P, 0.5)
    assert S is not P and torch.equal(P, before) and torch.equal(S, before + 0.5)
    assert pool.shifted(P, 0.5) is S  # formed once per layer
    assert pool.shifted(R, 2.0) is R and torch.allclose(R, c @ a.T + 2.0, rtol=1e-13, atol=0)


@pytest.mark.parametrize("case", ["euler", "directional"])
def test_blocks_whose_products_come_transposed_match_the_oracle(case, monkeypatch):
    """Terms at the same points share their activation products; a block that needs such a
    product the other way round takes its adjoint product transposed too and sums the pair's
    transpose (into a block of its own, added once at the end; for a term with itself, into the
    pairs that are symmetrised anyway), and the bias term rides on the primal pair's kept
    product shifted by c_b²/c_w². The kernel is the brute-force one, row by row."""
    import pinnk._structured as S
    from oracle import jacobian_oracle, op_ref
    model, terms = _same_point_terms(case, 12, 30, [40] * (3 if case == "euler" else 2))
    x = terms[0].points
    seen = {"transposed": set(), "kept shifted": 0}
    transposed = S._Block.transposed.fget
    monkeypatch.setattr(S._Block, "transposed", property(
        lambda blk: seen["transposed"].add(blk.same) or transposed(blk)))
    shifted = S._Products.shifted
    monkeypatch.setattr(S._Products, "shifted", lambda pool, P, c: seen.update(
        {"kept shifted": seen["kept shifted"] + any(P is t for t in pool._kept.values())})
        or shifted(pool, P, c))
    M = pinnk.ntk(model, terms, "structured").matrix()
    J = torch.cat([jacobian_oracle(lambda op=t.operator: op_ref(model, x, op), model)
                   for t in terms])
    assert rel_err(M, J @ J.T) < 1e-10
    if case == "euler":  # the residuals' pairs (x, t) and (t, x) of one activation product
        assert seen["transposed"] == {False}
    assert seen["kept shifted"] > 0


def test_block_accumulators_add_transposed_contributions_once():
    """A block of two chunks adds what was summed transposed as its transpose; a chunk with
    itself sums it with its pairs s < t, which it symmetrises anyway, and takes the lower
    triangle of its symmetric part."""
    from pinnk._structured import _Block
    g = torch.Generator().manual_seed(4)
    X, Y, Z = (torch.randn(6, 6, generator=g, dtype=torch.float64) for _ in range(3))
    blk = _Block(torch.zeros(6, 4, dtype=torch.float64), same=False)
    blk.off.add_(X[:, :4])
    blk.transposed.add_(Y[:4, :])
    blk.finish()
    assert torch.allclose(blk.out, X[:, :4] + Y[:4, :].T, rtol=1e-15, atol=0)
    blk = _Block(torch.zeros(6, 6, dtype=torch.float64), same=True)
    assert blk.transposed is blk.off
    blk.off.add_(X)
    blk.transposed.add_(Y)
    blk.sym.add_(Z)  # valid in its lower triangle only
    blk.finish()
    low = Z.tril()
    want = X + X.T + Y + Y.T + low + low.T - torch.diag(Z.diagonal())
    assert torch.allclose(blk.out, want, rtol=1e-14, atol=1e-14)


def test_workspace_reuses_buffers_within_its_limit(monkeypatch):
    """Buffers given back are handed out again (same memory) for the same shape and dtype, up
    to the byte limit; what would pass the limit, and anything off the CPU, is not kept."""
    import pinnk._structured as S
    monkeypatch.setattr(S, "_WORKSPACE_BYTES", 3 * 100 * 8)
    ws = S._Workspace()
    like = torch.zeros(1, dtype=torch.float64)
    a, b, c, d = (ws.take((10, 10), like) for _ in range(4))
    ws.give([a, b, c, d])  # the fourth would pass 2400 bytes
    assert ws.bytes == 2400 and len(ws.free[((10, 10), torch.float64)]) == 3
    got = [ws.take((10, 10), like) for _ in range(3)]
    assert {t.data_ptr() for t in got} == {a.data_ptr(), b.data_ptr(), c.data_ptr()}
    assert ws.bytes == 0
    assert ws.take((10, 10), like.float()).dtype == torch.float32  # another dtype: new memory
    ws.give([torch.empty(10, 10, dtype=torch.float64, device="meta")])
    assert ws.bytes == 0


def test_kernels_are_the_same_with_a_used_workspace():
    """Kernels computed after others (the workspace holding their buffers, with other values)
    are bit for bit those computed with an empty workspace."""
    import pinnk._structured as S
    from pinnk.benchmarks.ntk import euler_residuals_1d
    g = torch.Generator().manual_seed(6)
    x = torch.rand(40, 2, generator=g, dtype=torch.float64)
    models = [pinnk.MLP(2, 3, 40, 3, "tanh", output_transform=pinnk.Positive([0, 2]),
                        generator=g, dtype=torch.float64) for _ in range(2)]
    terms = [pinnk.Term(k, op, x) for k, op in euler_residuals_1d().items()]
    fresh = []
    for m in models:
        S._WORKSPACE.clear()
        fresh.append(pinnk.ntk(m, terms, "structured").matrix())
    assert S._WORKSPACE.bytes > 0
    for m, want in zip(models * 2, fresh * 2):
        assert torch.equal(pinnk.ntk(m, terms, "structured").matrix(), want)


@pytest.mark.parametrize("case", ["euler-viscous", "kdv"])
def test_operator_streams_match_the_adjoint_basis(case, monkeypatch):
    """A residual's own adjoint streams (their reverse recursion) and the same streams combined
    from the per-component adjoint basis give the same kernel, the Jacobian path's."""
    import pinnk._structured as S
    g = torch.Generator().manual_seed(8)
    x = torch.rand(23, 2, generator=g, dtype=torch.float64)
    if case == "euler-viscous":  # three outputs, a second order in the mass residual
        from pinnk.benchmarks.ntk import euler_residuals_1d
        model = pinnk.MLP(2, 3, 12, 3, "tanh", output_transform=pinnk.Positive([0, 2]),
                          generator=g, dtype=torch.float64)
        base = euler_residuals_1d()
        terms = [pinnk.Term("mass", base["mass"] + 0.01 * ops.partial([2, 0], 0), x),
                 pinnk.Term("momentum", base["momentum"], x),
                 pinnk.Term("energy", base["energy"], x)]
    else:  # one output, order 3: u_t + u u_x + ν u_xxx
        model = pinnk.MLP(2, 1, 12, 3, "tanh", generator=g, dtype=torch.float64)
        kdv = ops.residual(lambda x, u, u_x, u_t, u_xxx: u_t + u * u_x + 0.02 * u_xxx,
                           u=ops.value(), u_x=ops.partial([1, 0]), u_t=ops.partial([0, 1]),
                           u_xxx=ops.partial([3, 0]))
        terms = [pinnk.Term("kdv", kdv, x)]
    calls = []
    streams = S._operator_streams
    monkeypatch.setattr(S, "_operator_streams", lambda *a: calls.append(1) or streams(*a))
    own = pinnk.ntk(model, terms, "structured").matrix()
    assert len(calls) == len(terms)  # no more residuals than outputs: each has its own streams
    monkeypatch.setattr(S, "_own_stream_operators", lambda ws, out_dim: [])
    basis = pinnk.ntk(model, terms, "structured").matrix()
    assert len(calls) == len(terms)
    jac = pinnk.ntk(model, terms, "jacobian").matrix()
    assert rel_err(own, basis) < 1e-12
    assert rel_err(own, jac) < 1e-10


def test_own_streams_only_while_no_more_than_the_outputs():
    """Operators with constant unit weights share the adjoint basis; the others get their own
    streams unless they outnumber the output components (the basis is then cheaper)."""
    from pinnk._structured import _own_stream_operators
    unit = torch.tensor([[0.0, 2.0]] * 4, dtype=torch.float64)
    field = torch.tensor([[0.0, 1.0], [0.0, 2.0], [1.0, 0.0], [0.0, 0.0]], dtype=torch.float64)
    assert _own_stream_operators([[unit, None], [field, unit], [None, None]], 2) == [1]
    assert _own_stream_operators([[field], [field], [unit]], 2) == [0, 1]
    assert _own_stream_operators([[field], [field], [field]], 2) == []
