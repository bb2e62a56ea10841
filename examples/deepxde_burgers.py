"""Tutorial: DeepXDE's Burgers example trained by Adam + L-BFGS, with the TraceWeights callback,
and by Gauss–Newton.

The problem of DeepXDE's ``examples/pinn_forward/Burgers.py``, restated:

    u_t + u u_x = (0.01/π) u_xx  on  [−1, 1] × [0, 0.99],    u(±1, t) = 0,   u(x, 0) = −sin πx,

on a ``GeometryXTime`` with a ``DirichletBC`` and an ``IC``, 2540 domain, 80 boundary and 160
initial points, a 3 × 20 tanh network with Glorot-normal initialisation, and DeepXDE's recipe of
15000 Adam iterations at learning rate 1e-3 followed by L-BFGS. ``_deepxde_compare.py`` trains it
three ways from the same initial network — the recipe, the recipe with
:class:`pinnk.interop.deepxde.TraceWeights`, and :class:`pinnk.interop.deepxde.GaussNewton` — and
prints the relative L2 errors side by side. DeepXDE's example reads its reference from a data
file; here it is the Cole–Hopf solution (``problems.get("burgers-1d").solution``, about 12
correct digits) on the same 256 × 100 grid. Everything in float64.

``python examples/deepxde_burgers.py --quick`` takes about ten seconds on one CPU core (400
domain points, 300 Adam and at most 100 L-BFGS iterations, 8 Gauss–Newton iterations); without
``--quick`` the recipe's sizes, 15000 Adam and up to 15000 L-BFGS iterations, and 200
Gauss–Newton iterations (minutes each on one CPU thread).
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("DDE_BACKEND", "pytorch")  # before DeepXDE is first imported

import deepxde as dde  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

import problems  # noqa: E402
from _deepxde_compare import compare  # noqa: E402

NAME = "deepxde-burgers"
NU = 0.01 / np.pi


def setup(quick: bool) -> dict:
    if quick:
        return {"num_domain": 400, "num_boundary": 20, "num_initial": 40,
                "layers": [2, 20, 20, 20, 1], "lr": 1e-3, "adam": 300, "lbfgs": 100, "gn": 8,
                "gn_damping": 1e-3}
    return {"num_domain": 2540, "num_boundary": 80, "num_initial": 160,
            "layers": [2, 20, 20, 20, 1], "lr": 1e-3, "adam": 15000, "lbfgs": 15000, "gn": 200,
            "gn_damping": 1e-3}


def pde(xt, y):
    """u_t + u u_x − ν u_xx, inputs (x, t)."""
    u_x = dde.grad.jacobian(y, xt, i=0, j=0)
    u_t = dde.grad.jacobian(y, xt, i=0, j=1)
    u_xx = dde.grad.hessian(y, xt, i=0, j=0)
    return u_t + y * u_x - NU * u_xx


def build_model(cfg: dict, seed: int = 0) -> dde.Model:
    """The DeepXDE model; equal seeds give equal points and equal initial networks."""
    dde.config.set_random_seed(seed)
    space_time = dde.geometry.GeometryXTime(dde.geometry.Interval(-1.0, 1.0),
                                            dde.geometry.TimeDomain(0.0, 0.99))
    walls = dde.icbc.DirichletBC(space_time, lambda xt: 0.0, lambda _, on_boundary: on_boundary)
    start = dde.icbc.IC(space_time, lambda xt: -np.sin(np.pi * xt[:, 0:1]),
                        lambda _, on_initial: on_initial)
    data = dde.data.TimePDE(space_time, pde, [walls, start], num_domain=cfg["num_domain"],
                            num_boundary=cfg["num_boundary"], num_initial=cfg["num_initial"])
    return dde.Model(data, dde.nn.FNN(cfg["layers"], "tanh", "Glorot normal"))


_GRID: dict = {}


def _reference() -> tuple[np.ndarray, np.ndarray]:
    """The 256 × 100 grid of DeepXDE's Burgers data and the Cole–Hopf solution on it."""
    if not _GRID:
        x, t = np.meshgrid(np.linspace(-1.0, 1.0, 256), np.linspace(0.0, 0.99, 100))
        xt = np.stack([x.ravel(), t.ravel()], axis=1)
        u = problems.get("burgers-1d").solution(torch.as_tensor(xt, dtype=torch.float64))
        _GRID.update(xt=xt, u=u.numpy())
    return _GRID["xt"], _GRID["u"]


def relative_l2(model: dde.Model) -> float:
    xt, ref = _reference()
    return float(np.linalg.norm(model.predict(xt) - ref) / np.linalg.norm(ref))


def main(argv=None) -> int:
    return compare(sys.modules[__name__], __doc__, argv)


if __name__ == "__main__":
    raise SystemExit(main())
