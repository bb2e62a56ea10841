"""Tutorial: DeepXDE's diffusion_1d example trained by Adam (+ L-BFGS), with the TraceWeights
callback, and by Gauss–Newton.

The problem of DeepXDE's ``examples/pinn_forward/diffusion_1d.py``, restated:

    u_t = u_xx − e^{−t} (sin πx − π² sin πx)  on  [−1, 1] × [0, 1],
    exact solution u = e^{−t} sin πx,

on a ``GeometryXTime``, with a ``DirichletBC`` (the exact values on x = ±1) and an ``IC`` (the
exact values at t = 0), 40 domain, 20 boundary and 10 initial points, a 3 × 32 tanh network
with Glorot-uniform initialisation, and DeepXDE's recipe of 10000 Adam iterations at learning
rate 1e-3 (here followed by L-BFGS too). ``_deepxde_compare.py`` trains it three ways from the
same initial network — the recipe, the recipe with :class:`pinnk.interop.deepxde.TraceWeights`,
and :class:`pinnk.interop.deepxde.GaussNewton` — and prints the relative L2 errors on a
101 × 101 grid side by side. Everything in float64.

``python examples/deepxde_diffusion_1d.py --quick`` takes a few seconds on one CPU core (500 Adam
and at most 200 L-BFGS iterations, 15 Gauss–Newton iterations); without ``--quick`` the recipe's
10000 Adam iterations and up to 15000 L-BFGS iterations, and 100 Gauss–Newton iterations.
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("DDE_BACKEND", "pytorch")  # before DeepXDE is first imported

import deepxde as dde  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from _deepxde_compare import compare  # noqa: E402

NAME = "deepxde-diffusion-1d"


def setup(quick: bool) -> dict:
    sizes = {"num_domain": 40, "num_boundary": 20, "num_initial": 10,
             "layers": [2, 32, 32, 32, 1], "lr": 1e-3, "gn_damping": 1e-3}
    if quick:
        return {**sizes, "adam": 500, "lbfgs": 200, "gn": 15}
    return {**sizes, "adam": 10000, "lbfgs": 15000, "gn": 100}


def exact(xt: np.ndarray) -> np.ndarray:
    return np.sin(np.pi * xt[:, 0:1]) * np.exp(-xt[:, 1:2])


def pde(xt, y):
    """u_t − u_xx + e^{−t}(sin πx − π² sin πx); inputs (x, t), so ∂/∂t is column j = 1."""
    u_t = dde.grad.jacobian(y, xt, j=1)
    u_xx = dde.grad.hessian(y, xt, j=0)
    s = torch.sin(np.pi * xt[:, 0:1])
    return u_t - u_xx + torch.exp(-xt[:, 1:2]) * (s - np.pi ** 2 * s)


def build_model(cfg: dict, seed: int = 0) -> dde.Model:
    """The DeepXDE model; equal seeds give equal points and equal initial networks."""
    dde.config.set_random_seed(seed)
    space_time = dde.geometry.GeometryXTime(dde.geometry.Interval(-1.0, 1.0),
                                            dde.geometry.TimeDomain(0.0, 1.0))
    ends = dde.icbc.DirichletBC(space_time, exact, lambda _, on_boundary: on_boundary)
    start = dde.icbc.IC(space_time, exact, lambda _, on_initial: on_initial)
    data = dde.data.TimePDE(space_time, pde, [ends, start], num_domain=cfg["num_domain"],
                            num_boundary=cfg["num_boundary"], num_initial=cfg["num_initial"],
                            solution=exact, num_test=1000)
    return dde.Model(data, dde.nn.FNN(cfg["layers"], "tanh", "Glorot uniform"))


def relative_l2(model: dde.Model) -> float:
    x, t = np.meshgrid(np.linspace(-1.0, 1.0, 101), np.linspace(0.0, 1.0, 101))
    xt = np.stack([x.ravel(), t.ravel()], axis=1)
    ref = exact(xt)
    return float(np.linalg.norm(model.predict(xt) - ref) / np.linalg.norm(ref))


def main(argv=None) -> int:
    return compare(sys.modules[__name__], __doc__, argv)


if __name__ == "__main__":
    raise SystemExit(main())
