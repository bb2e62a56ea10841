"""Tutorial: DeepXDE's Poisson_Dirichlet_1d example trained by Adam (+ L-BFGS), with the
TraceWeights callback, and by Gauss–Newton.

The problem of DeepXDE's ``examples/pinn_forward/Poisson_Dirichlet_1d.py``, restated:

    −u''(x) = π² sin(πx)  on  [−1, 1],    u(−1) = u(1) = 0,    exact solution u = sin(πx),

a ``DirichletBC`` on both ends, 16 domain and 2 boundary points, a 3 × 50 tanh network with
Glorot-uniform initialisation, and DeepXDE's recipe of 10000 Adam iterations at learning rate
1e-3 (here followed by L-BFGS too). ``_deepxde_compare.py`` trains it three ways from the same
initial network — the recipe, the recipe with :class:`pinnk.interop.deepxde.TraceWeights`, and
:class:`pinnk.interop.deepxde.GaussNewton` — and prints the relative L2 errors on 1001 uniform
points side by side. Everything in float64.

``python examples/deepxde_poisson_dirichlet_1d.py --quick`` takes a few seconds on one CPU core
(500 Adam and at most 200 L-BFGS iterations, 20 Gauss–Newton iterations); without ``--quick``
the recipe's 10000 Adam iterations and up to 15000 L-BFGS iterations, and 100 Gauss–Newton
iterations (it stops earlier once no step decreases the loss any more).
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("DDE_BACKEND", "pytorch")  # before DeepXDE is first imported

import deepxde as dde  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from _deepxde_compare import compare  # noqa: E402

NAME = "deepxde-poisson-dirichlet-1d"


def setup(quick: bool) -> dict:
    sizes = {"num_domain": 16, "num_boundary": 2, "layers": [1, 50, 50, 50, 1], "lr": 1e-3,
             "gn_damping": 1e-3}
    if quick:
        return {**sizes, "adam": 500, "lbfgs": 200, "gn": 20}
    return {**sizes, "adam": 10000, "lbfgs": 15000, "gn": 100}


def exact(x: np.ndarray) -> np.ndarray:
    return np.sin(np.pi * x)


def pde(x, y):
    """The residual −u'' − π² sin(πx); DeepXDE takes u'' with dde.grad.hessian."""
    return -dde.grad.hessian(y, x) - np.pi ** 2 * torch.sin(np.pi * x)


def build_model(cfg: dict, seed: int = 0) -> dde.Model:
    """The DeepXDE model; equal seeds give equal points and equal initial networks."""
    dde.config.set_random_seed(seed)
    geom = dde.geometry.Interval(-1.0, 1.0)
    both_ends = dde.icbc.DirichletBC(geom, exact, lambda _, on_boundary: on_boundary)
    data = dde.data.PDE(geom, pde, both_ends, num_domain=cfg["num_domain"],
                        num_boundary=cfg["num_boundary"], solution=exact, num_test=100)
    return dde.Model(data, dde.nn.FNN(cfg["layers"], "tanh", "Glorot uniform"))


def relative_l2(model: dde.Model) -> float:
    x = np.linspace(-1.0, 1.0, 1001)[:, None]
    ref = exact(x)
    return float(np.linalg.norm(model.predict(x) - ref) / np.linalg.norm(ref))


def main(argv=None) -> int:
    return compare(sys.modules[__name__], __doc__, argv)


if __name__ == "__main__":
    raise SystemExit(main())
