"""An experiment, not part of pinnk (it replaces pinnk internals at run time; written against
commit 4ef6b28): the NTK benchmark's Euler 6x64 case with pinnk's own float64 products routed
through SciPy's OpenBLAS (run with OPENBLAS_CORETYPE=SkylakeX for its AVX-512 kernels), in both paths
(mode 'both') or the structured path only ('structured'), or not at all ('none').

    [OPENBLAS_CORETYPE=SkylakeX] python docs/results/experiments/scipy_products.py MODE [REPEATS]

'structured' sends the structured path's ``torch.mm`` calls (its general stream products) to
SciPy's ?gemm (its symmetric ones go to SciPy's ?syrk already); 'both' also the Jacobian path's J Jᵀ. Neither path's other
operations change (``vmap(jacrev)``, ``addmm_``, the elementwise work). Findings:
docs/results/benchmarks.md, "2026-12-06, third session"."""
import sys, statistics, time, numpy as np, torch
torch.set_num_threads(1)
import threadpoolctl; threadpoolctl.threadpool_limits(1)
from scipy.linalg import blas
import pinnk, pinnk._structured as S, pinnk._kernel as K
from pinnk.benchmarks.ntk import _setup
mode = sys.argv[1]
_mm = torch.mm
def mm(a, b, out=None):
    if a.dtype != torch.float64 or a.dim() != 2 or b.dim() != 2:
        return _mm(a, b, out=out)
    m, k = a.shape[0], b.shape[1]
    if out is None:
        out = torch.empty(m, k, dtype=a.dtype)
    c = out.numpy().T  # F-order (k, m): we want c = (a b)^T = b^T a^T
    an, bn = a.numpy(), b.numpy()
    # a C-contig -> an.T is F-order = a^T ; b may be a transposed view
    A = an.T if an.flags.c_contiguous else an  # F-order array representing a^T (or a itself if F)
    ta = 0 if an.flags.c_contiguous else 1     # op(A) should be a^T
    B = bn.T if bn.flags.c_contiguous else bn
    tb = 0 if bn.flags.c_contiguous else 1
    # c = op_b(B) op_a(A) where op gives b^T and a^T
    r = blas.dgemm(1.0, B, A, trans_a=tb, trans_b=ta, c=c, overwrite_c=1)
    if r.ctypes.data != c.ctypes.data:
        raise RuntimeError("dgemm copied its output")
    return out
a = torch.randn(256, 64, dtype=torch.float64); b = torch.randn(256, 64, dtype=torch.float64)
assert torch.allclose(mm(a, b.T), a @ b.T) and torch.allclose(mm(a.T.contiguous().T, b.T), a @ b.T)
W = torch.randn(64, 64, dtype=torch.float64); assert torch.allclose(mm(a, W), a @ W)
if mode in ("both", "structured"):
    class T:  # torch proxy for pinnk._structured
        def __getattr__(self, k): return mm if k == "mm" else getattr(torch, k)
    S.torch = T()
if mode == "both":
    K.JacobianFeatures.gram = lambda self, other: mm(self.J, other.J.T)
def once(impl):
    model, terms = _setup("euler-64", 256, 64, "cpu")
    t = time.perf_counter(); M = pinnk.ntk(model, terms, impl).matrix(); return time.perf_counter() - t, M
once("jacobian"); once("structured")
tj, ts = [], []
for _ in range(int(sys.argv[2]) if len(sys.argv) > 2 else 5):
    a, Mj = once("jacobian"); b, Ms = once("structured"); tj.append(a); ts.append(b)
print(f"{mode}: jacobian {statistics.median(tj):.3f} s structured {statistics.median(ts)*1e3:.1f} ms "
      f"ratio {statistics.median(tj)/statistics.median(ts):.1f}x diff {float((Mj-Ms).norm()/Mj.norm()):.1e}")
