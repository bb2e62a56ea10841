"""Periodic 1D evolution benchmarks with a spectral (ETDRK4) reference: Allen–Cahn, KdV, KS.

The three PDEs on which the strongest published PINN results stand (Wang et al. 2023, "An
expert's guide to training physics-informed neural networks", and its code, jaxpi; Wang et al.
2024, PirateNets; Wang, Sankaran, Perdikaris 2022, "Respecting causality is all you need for
training physics-informed neural networks"):

* ``allen-cahn``: u_t − ε u_xx + a u³ − a u = 0,   ε = 1e-4, a = 5, u0 = x² cos(πx)
* ``kdv``: u_t + η u u_x + μ² u_xxx = 0,           η = 1, μ = 0.022, u0 = cos(πx)
* ``kuramoto-sivashinsky``: u_t + α u u_x + β u_xx + γ u_xxxx = 0,
  regular case α = 5, β = 0.5, γ = 0.005, u0 = −sin(πx)

each on x ∈ [−1, 1] (period 2), t ∈ [0, 1] (the chaotic KS case of the expert's guide: x ∈ [0, 2π],
u0 = cos x (1 + sin x), α = 100/16, β = 100/16², γ = 100/16⁴).

Periodicity is handled as in ``convection``: by default (``periodic_embedding=True``, what the
published set-ups do) the problem suggests the exact periodic input embedding
x -> (cos(2πjx/P), sin(2πjx/P)), j = 1..m, so every network built from the defaults is periodic
with all its derivatives and no boundary term is needed; with ``periodic_embedding=False`` the
problem adds one :class:`~problems.Periodic` term per derivative order below the PDE's:
u, u_x, …, ∂_x^{k−1} u equal at x = a and x = b (named ``periodic``, ``periodic_x``,
``periodic_xx``, …).

The reference is :func:`problems.etdrk4` (Fourier pseudo-spectral in x, ETDRK4 in t), solved once
per problem instance when the solution is first asked for; :meth:`reference` returns it, with
derivatives of any order in x and the first in t from the spectral representation.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import torch

import pinnk
from pinnk import ops

from ._base import (Periodic, ZooProblem, check_bool, check_positive_int, check_real, to_tensor,
                    uniform, with_column)
from ._spectral import SemilinearPDE, SpectralSolution, etdrk4

__all__ = ["AllenCahn", "KdV", "KuramotoSivashinsky"]

_SUFFIX = ["", "_x", "_xx", "_xxx", "_xxxx"]


def _resolution(modes, dt) -> tuple:
    """The reference's (modes, dt), checked: an even number of modes >= 4 and a step > 0."""
    modes = check_positive_int(modes, "modes")
    if modes < 4 or modes % 2:
        raise ValueError(f"modes: expected an even number >= 4, got {modes}")
    return modes, check_real(dt, "dt", positive=True)


class _PeriodicEvolution(ZooProblem):
    """Common machinery: terms, periodicity, the lazily solved spectral reference.

    Subclasses set ``x_order`` (the highest x-derivative in the PDE), ``derivatives`` (residual
    input name -> (x order, t order)), and in ``__init__`` call :meth:`_setup` with the domain,
    the :class:`SemilinearPDE`, the initial condition and the defaults; they implement
    :meth:`_residual` (the residual from the named derivative values).
    """

    input_names = ("x", "t")
    output_names = ("u",)
    time_index = 1
    exact = False
    x_order: int = 2
    derivatives: Mapping[str, tuple] = {}

    def _setup(self, lower: float, upper: float, t_end: float, pde: SemilinearPDE, initial,
               *, modes: int, dt: float, save_every: int, width: int, depth: int, steps: int,
               lr: float, residual_points: int, initial_points: int, harmonics: int) -> None:
        self.modes, self.dt = modes, dt
        self.period = upper - lower
        self.domain = pinnk.Box((lower, 0.0), (upper, t_end))
        self.pde = pde
        self.initial = initial
        self._save_every = save_every
        self._reference: SpectralSolution | None = None
        points = {"residual": residual_points, "initial": initial_points}
        if not self.periodic_embedding:
            for j in range(self.x_order):
                points["periodic" + _SUFFIX[j]] = initial_points // 2
        embedding = ({"kind": "periodic", "dims": [0], "periods": [self.period],
                      "harmonics": harmonics} if self.periodic_embedding else None)
        self.defaults = pinnk.Defaults(width=width, depth=depth, activation="tanh", steps=steps,
                                       lr=lr, points=points, embedding=embedding)

    # ----------------------------------------------------------------------------- residual
    def residual_operator(self) -> ops.Operator:
        """The PDE residual as a :func:`pinnk.ops.residual` of the derivative labels in
        :attr:`derivatives` (``u_t`` = ∂_t u, ``u_xx`` = ∂_x² u, …; inputs (x, t))."""
        inputs = {name: ops.partial([p, q]) for name, (p, q) in self.derivatives.items()}
        return ops.residual(self._residual, inputs, label=self.name)

    def residual_from(self, values: Mapping[str, torch.Tensor | np.ndarray]):
        """The residual from given derivative values, e.g. the spectral reference's
        (``values[name]`` for every name of :attr:`derivatives`, arrays of one shape)."""
        missing = [k for k in self.derivatives if k not in values]
        if missing:
            raise ValueError(f"values: missing derivative(s) {missing}; expected "
                             f"{list(self.derivatives)}")
        return self._residual(None, **{k: values[k] for k in self.derivatives})

    def _residual(self, x, **v):
        raise NotImplementedError

    # -------------------------------------------------------------------------------- terms
    def terms(self, n=None, generator=None, dtype=None) -> list[pinnk.Term]:
        dtype = self._dtype(dtype)
        names = list(self.defaults.points)
        c = self.counts(n, names)
        lo, hi = self.domain.lower, self.domain.upper
        x_res = uniform(c["residual"], lo, hi, generator, dtype)
        x_ini = with_column(uniform(c["initial"], lo, hi, generator, dtype), 1, 0.0)
        out = [pinnk.Term("residual", self.residual_operator(), x_res),
               pinnk.Term("initial", ops.value(), x_ini, self.initial)]
        for name in names[2:]:
            j = _SUFFIX.index(name[len("periodic"):])
            x_per = with_column(uniform(c[name], lo, hi, generator, dtype), 0, lo[0])
            op = Periodic(ops.partial([j, 0]), dim=0, period=self.period)
            out.append(pinnk.Term(name, op, x_per))
        return out

    # ---------------------------------------------------------------------------- reference
    def reference(self) -> SpectralSolution:
        """The ETDRK4 reference solution (solved on first use, then kept by this instance)."""
        if self._reference is None:
            self._reference = etdrk4(self.pde, self._initial_numpy, domain=self.domain_x,
                                     t_end=self.domain.upper[1], modes=self.modes, dt=self.dt,
                                     save_every=self._save_every)
        return self._reference

    @property
    def domain_x(self) -> tuple:
        return (self.domain.lower[0], self.domain.upper[0])

    def _initial_numpy(self, x: np.ndarray) -> np.ndarray:
        return self.initial(torch.as_tensor(x, dtype=torch.float64).reshape(-1, 1)).numpy()

    def solution(self, x: torch.Tensor) -> torch.Tensor:
        """The spectral reference u(x, t), shape (n, 1), dtype and device of ``x`` (computed in
        float64 numpy; not differentiable)."""
        x = self.check_points(x)
        xn = x.detach().cpu().to(torch.float64).numpy()
        u = self.reference()(xn[:, 0], xn[:, 1])
        return to_tensor(np.asarray(u, dtype=np.float64), x).reshape(-1, 1)

    def __getstate__(self):
        # the reference (tens of MB) is recomputed on demand rather than pickled
        state = dict(self.__dict__)
        state["_reference"] = None
        return state


# ---------------------------------------------------------------------- initial conditions
class _X2CosPi:
    """x -> x² cos(πx) (a picklable target, points (n, ≥1) -> (n,))."""

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, 0] ** 2 * torch.cos(math.pi * x[:, 0])


class _CosPi:
    """x -> cos(πx)."""

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cos(math.pi * x[:, 0])


class _MinusSinPi:
    """x -> −sin(πx)."""

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return -torch.sin(math.pi * x[:, 0])


class _CosOnePlusSin:
    """x -> cos(x) (1 + sin(x))."""

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cos(x[:, 0]) * (1.0 + torch.sin(x[:, 0]))


# ----------------------------------------------------------------------------------- Allen–Cahn
class AllenCahn(_PeriodicEvolution):
    """Allen–Cahn u_t − ε u_xx + a u³ − a u = 0 on x ∈ [−1, 1] (periodic), t ∈ [0, 1].

    Inputs (x, t), output (u,); u(x, 0) = x² cos(πx). The set-up of Wang et al. 2023 ("An
    expert's guide to training PINNs") and of jaxpi, ``examples/allen_cahn/README.md`` (the
    equation, ε = 1e-4, a = 5, the domain, u0 and periodic u, u_x) and
    ``examples/allen_cahn/data/gen_allen_cahn.m`` (their reference: chebfun ``spin``, 511
    points). u0 is continuous but its x-derivative jumps at x = ±1 (from −2 to 2), so the
    reference's Fourier coefficients decay only like m⁻² until diffusion smooths the kink: the
    default 4096 modes put the reference within about 3e-7 (relative L2 over the 201 × 101 grid)
    of one with 8192 modes; 512 points, as in jaxpi's data, are about 2e-5 away.

    Terms:
        "residual":  ops.residual(u_t − ε u_xx + a u³ − a u) = 0 at uniform interior points
        "initial":   u(x, 0) = x² cos(πx)
        "periodic", "periodic_x": u and u_x equal at x = −1 and x = 1 (only with
                     ``periodic_embedding=False``)

    Parameters:
        diffusion: ε > 0 (default 1e-4).
        reaction: a (default 5).
        periodic_embedding: suggest the exact periodic input embedding (default True, as in
            jaxpi); False adds the periodic terms instead.
        modes: grid points of the spectral reference (even, default 4096).
        dt: ETDRK4 step of the reference (default 1e-3).

    Defaults (jaxpi ``examples/allen_cahn/configs/default.py``, ``sota.py``): 4 hidden layers ×
    256, tanh, periodic embedding (cos πx, sin πx), 300000 steps, 8192 residual points per
    step, 512 initial points, lr 1e-3. jaxpi's modified MLP, random weight factorisation and
    Fourier features have no counterpart in :class:`pinnk.MLP`.
    """

    name = "allen-cahn"
    description = ("Allen–Cahn u_t − 1e-4 u_xx + 5u³ − 5u = 0, periodic on [−1, 1], u0 = x² cos πx "
                   "(ETDRK4 reference)")
    x_order = 2
    derivatives = {"u": (0, 0), "u_t": (0, 1), "u_xx": (2, 0)}

    def __init__(self, *, diffusion: float = 1e-4, reaction: float = 5.0,
                 periodic_embedding: bool = True, modes: int = 4096, dt: float = 1e-3):
        self.diffusion = check_real(diffusion, "diffusion", positive=True)
        self.reaction = check_real(reaction, "reaction")
        self.periodic_embedding = check_bool(periodic_embedding, "periodic_embedding")
        modes, dt = _resolution(modes, dt)
        self._set_params(diffusion=self.diffusion, reaction=self.reaction,
                         periodic_embedding=self.periodic_embedding, modes=modes, dt=dt)
        pde = SemilinearPDE([self.reaction, 0.0, self.diffusion],
                            reaction=[0.0, 0.0, 0.0, -self.reaction])
        self._setup(-1.0, 1.0, 1.0, pde, _X2CosPi(), modes=modes, dt=dt, save_every=2,
                    width=256, depth=4, steps=300000, lr=1e-3, residual_points=8192,
                    initial_points=512, harmonics=1)

    def _residual(self, x, u, u_t, u_xx):
        a = self.reaction
        return u_t - self.diffusion * u_xx + a * u ** 3 - a * u


# ------------------------------------------------------------------------------------------ KdV
class KdV(_PeriodicEvolution):
    """Korteweg–de Vries u_t + η u u_x + μ² u_xxx = 0 on x ∈ [−1, 1] (periodic), t ∈ [0, 1].

    Inputs (x, t), output (u,); u(x, 0) = cos(πx): the Zabusky–Kruskal (1965) experiment (δ =
    0.022 on a period of 2) as set up in jaxpi ``examples/kdv/data/gen_kdv.m`` (``S.lin = −0.022²
    u_xxx``, ``S.nonlin = −½ (u²)_x``, domain [−1, 1], t ∈ [0, 1], u0 = cos πx), the benchmark of
    PirateNets (Wang et al. 2024; relative L2 4.27e-4, jaxpi 1.96e-3: jaxpi ``pirate`` branch
    README). The initial cosine steepens and breaks into a train of solitons.

    Note: ``mu=0.05`` gives u_t + u u_x + 0.0025 u_xxx = 0, the KdV example of Raissi et al.
    2019 (same domain and u0); the published numbers above are for μ = 0.022.

    Terms:
        "residual":  ops.residual(u_t + η u u_x + μ² u_xxx) = 0 (a third-order derivative label)
        "initial":   u(x, 0) = cos(πx)
        "periodic", "periodic_x", "periodic_xx": u, u_x, u_xx equal at x = ±1 (only with
                     ``periodic_embedding=False``)

    Parameters:
        eta: η (default 1).
        mu: μ > 0 (default 0.022).
        periodic_embedding: suggest the exact periodic input embedding (default True).
        modes: grid points of the spectral reference (even, default 512).
        dt: ETDRK4 step of the reference (default 2.5e-4: about 7e-9 relative L2 from one with
            a quarter of the step).

    Defaults (jaxpi ``examples/kdv/configs/default.py``, ``pirate.py``): 3 hidden layers × 256,
    tanh, periodic embedding (cos πx, sin πx), 200000 steps, 4096 residual points, 512 initial
    points, lr 1e-3.
    """

    name = "kdv"
    description = ("KdV u_t + u u_x + 0.022² u_xxx = 0, periodic on [−1, 1], u0 = cos πx "
                   "(ETDRK4 reference)")
    x_order = 3
    derivatives = {"u": (0, 0), "u_t": (0, 1), "u_x": (1, 0), "u_xxx": (3, 0)}

    def __init__(self, *, eta: float = 1.0, mu: float = 0.022, periodic_embedding: bool = True,
                 modes: int = 512, dt: float = 2.5e-4):
        self.eta = check_real(eta, "eta")
        self.mu = check_real(mu, "mu", positive=True)
        self.periodic_embedding = check_bool(periodic_embedding, "periodic_embedding")
        modes, dt = _resolution(modes, dt)
        self._set_params(eta=self.eta, mu=self.mu, periodic_embedding=self.periodic_embedding,
                         modes=modes, dt=dt)
        pde = SemilinearPDE([0.0, 0.0, 0.0, -self.mu ** 2], flux=[0.0, 0.0, -0.5 * self.eta])
        self._setup(-1.0, 1.0, 1.0, pde, _CosPi(), modes=modes, dt=dt, save_every=4,
                    width=256, depth=3, steps=200000, lr=1e-3, residual_points=4096,
                    initial_points=512, harmonics=1)

    def _residual(self, x, u, u_t, u_x, u_xxx):
        return u_t + self.eta * u * u_x + self.mu ** 2 * u_xxx


# ---------------------------------------------------------------------------- Kuramoto–Sivashinsky
class KuramotoSivashinsky(_PeriodicEvolution):
    """Kuramoto–Sivashinsky u_t + α u u_x + β u_xx + γ u_xxxx = 0, periodic in x, t ∈ [0, 1].

    Inputs (x, t), output (u,). Two published set-ups (``case``):

    * ``"regular"`` (default): x ∈ [−1, 1], u0 = −sin(πx), with α = 5, β = 0.5, γ = 0.005 — the
      regular case of Wang, Sankaran, Perdikaris 2022 ("Respecting causality is all you need"):
      the residual ``u_t + 5 u u_x + 0.5 u_xx + 0.005 u_xxxx`` on x ∈ [−1, 1] in their code
      (PredictiveIntelligenceLab/CausalPINNs ``KS/regular_KS.py``) and the same equation with
      u0 = −sin(πx) in jaxpi ``examples/ks/data/gen_ks.m`` (commit bcce0e7).
    * ``"chaotic"``: x ∈ [0, 2π], u0 = cos x (1 + sin x); the published coefficients are
      α = 100/16, β = 100/16², γ = 100/16⁴ (:attr:`CHAOTIC`), to be passed as well — the
      benchmark of the expert's guide (jaxpi ``examples/ks`` README; relative L2 1.61e-1 in the
      jaxpi README).

    Terms:
        "residual":  ops.residual(u_t + α u u_x + β u_xx + γ u_xxxx) = 0 (a fourth-order label)
        "initial":   u(x, 0) = u0(x)
        "periodic", …, "periodic_xxx": u, u_x, u_xx, u_xxx equal at both ends of the interval
                     (only with ``periodic_embedding=False``)

    Parameters:
        alpha: α, the coefficient of u u_x (default 5, the regular case).
        beta: β, the coefficient of u_xx (default 0.5).
        gamma: γ > 0, the coefficient of u_xxxx (default 0.005).
        case: ``"regular"`` or ``"chaotic"`` (domain and initial condition).
        periodic_embedding: suggest the exact periodic input embedding (default True).
        modes: grid points of the spectral reference (even, default 256).
        dt: ETDRK4 step of the reference (default 1.25e-4: about 2e-9 (regular) and 3e-7
            (chaotic) relative L2 from references with much smaller steps).

    Defaults: regular — CausalPINNs ``KS/regular_KS.py``: 3 hidden layers × 256, tanh, the
    input features (t, cos kπx, sin kπx, k = 1..5) — here the periodic embedding with 5
    harmonics —, 32 × 64 = 2048 residual points per step, 512 initial points, lr 1e-3, 200000
    steps (theirs: up to 200000 per causal tolerance, 5 tolerances, 10 time windows marched in
    turn; pinnk trains one window). Chaotic — jaxpi ``examples/ks/configs/sota.py``: 5 hidden
    layers × 256, 200000 steps, 4096 residual points.
    """

    name = "kuramoto-sivashinsky"
    description = ("Kuramoto–Sivashinsky u_t + 5uu_x + 0.5u_xx + 0.005u_xxxx = 0 on [−1, 1], "
                   "u0 = −sin πx (ETDRK4)")
    x_order = 4
    derivatives = {"u": (0, 0), "u_t": (0, 1), "u_x": (1, 0), "u_xx": (2, 0), "u_xxxx": (4, 0)}
    #: the published coefficients of the chaotic case (Wang et al. 2023)
    CHAOTIC = {"alpha": 100.0 / 16, "beta": 100.0 / 16 ** 2, "gamma": 100.0 / 16 ** 4}
    CASES = ("regular", "chaotic")

    def __init__(self, *, alpha: float = 5.0, beta: float = 0.5, gamma: float = 0.005,
                 case: str = "regular", periodic_embedding: bool = True, modes: int = 256,
                 dt: float = 1.25e-4):
        self.alpha = check_real(alpha, "alpha")
        self.beta = check_real(beta, "beta")
        self.gamma = check_real(gamma, "gamma", positive=True)
        if case not in self.CASES:
            raise ValueError(f"case: expected 'regular' or 'chaotic', got {case!r}")
        self.case = case
        self.periodic_embedding = check_bool(periodic_embedding, "periodic_embedding")
        modes, dt = _resolution(modes, dt)
        self._set_params(alpha=self.alpha, beta=self.beta, gamma=self.gamma, case=case,
                         periodic_embedding=self.periodic_embedding, modes=modes, dt=dt)
        pde = SemilinearPDE([0.0, 0.0, -self.beta, 0.0, -self.gamma],
                            flux=[0.0, 0.0, -0.5 * self.alpha])
        if case == "regular":
            self._setup(-1.0, 1.0, 1.0, pde, _MinusSinPi(), modes=modes, dt=dt, save_every=4,
                        width=256, depth=3, steps=200000, lr=1e-3, residual_points=2048,
                        initial_points=512, harmonics=5)
        else:
            self._setup(0.0, 2.0 * math.pi, 1.0, pde, _CosOnePlusSin(), modes=modes, dt=dt,
                        save_every=8, width=256, depth=5, steps=200000, lr=1e-3,
                        residual_points=4096, initial_points=512, harmonics=1)

    def _residual(self, x, u, u_t, u_x, u_xx, u_xxxx):
        return u_t + self.alpha * u * u_x + self.beta * u_xx + self.gamma * u_xxxx
