"""Gauss–Newton (Levenberg–Marquardt) training of a compiled DeepXDE model, solved in function
space with Θ: :class:`GaussNewton` (re-exported by :mod:`pinnk.interop.deepxde`)."""

from __future__ import annotations

import math
import numbers
import time
import warnings
from collections.abc import Sequence
from typing import Any

from .._gauss_newton import GaussNewtonSystem
from .._levenberg import LevenbergMarquardt
from .._terms import Term
from .._validation import check_float, check_int
from ._deepxde_core import dde, np, torch
from ._deepxde_terms import Loss, LossCache, check_model, dtype_device, loss_terms

__all__ = ["GaussNewton"]

_METHODS = ("auto", "dense", "cg")
#: DeepXDE's loss entry i must equal w_i·mean(r_i²) of pinnk's residual to within
#: rtol·max + w_i·atol (rounding: DeepXDE takes derivatives in reverse mode, pinnk in forward
#: mode); a loss other than the mean square misses by far more
_LOSS_TOL = {torch.float64: (1e-6, 1e-16), torch.float32: (1e-2, 1e-6)}


class GaussNewton:
    """Gauss–Newton training of a compiled DeepXDE model (PyTorch backend) on its own loss.

    DeepXDE minimises L(θ) = Σ_i w_i · mean(r_i²) over its loss vector — the PDE residual(s),
    then one entry per boundary or initial condition — with ``w = model.loss_weights`` (ones
    when None). That is pinnk's loss Σ_i λ_i ‖r_i‖²/(2 n_i) with λ_i = 2 w_i on the terms of
    :func:`~pinnk.interop.deepxde.terms`, whose residuals are DeepXDE's errors row for row. Each
    iteration builds the damped Gauss–Newton system of that loss at the current network,
    ``pinnk.GaussNewtonSystem(model.net, terms, 2 w)`` (design.md §3b),

        δ = −Jᵀ S α,   α = (S Θ S + μ I)⁻¹ ρ,   ρ = S r,   S = diag(√(2 w_i / n_i)),

    and takes the Levenberg–Marquardt step of the trainer's ``solvers.GaussNewton`` (the same
    code): the full step θ + δ, plus half the geodesic acceleration when ``geodesic`` > 0; a step
    is accepted only when DeepXDE's own training loss decreases, so ``model.losshistory``'s
    training loss never increases while the loss weights are fixed; after a step with gain ratio
    ϱ (actual over predicted decrease) μ ← μ·max(1/3, 1 − (2ϱ − 1)³); a rejected step is undone,
    μ ← μ·ν, ν ← 2ν (Nielsen 1999), and the same system is solved again (a refactorisation,
    no new kernel), up to ``retries`` times.

    Main arguments:
        damping: the initial μ > 0. The object keeps μ across calls to :meth:`train` (a second
            call continues where the first stopped); a new object starts afresh.
        geodesic: when > 0, add the geodesic acceleration a/2 (Transtrum & Sethna 2012; one more
            residual evaluation and one more solve with the same factorisation) whenever
            ‖a‖ ≤ geodesic·‖δ‖; 0 turns it off. 0.75, the usual bound, is the default: it cut
            the iterations severalfold on pinnk's Poisson and convection problems.

    Other arguments:
        retries: the rejected solves tried per iteration before giving up on it.
        min_damping, max_damping: bounds on μ. Training stops early (converged to round-off)
            when an iteration accepts no step and μ has reached ``max_damping``.
        method: ``"auto"`` (a dense Cholesky solve when the N × N system fits in memory, else
            conjugate gradients), ``"dense"`` or ``"cg"``.
        cg_tol, cg_iters: the CG tolerance and iteration limit (None: the default of
            :class:`pinnk.GaussNewtonSystem`).
        kernel_points: when given, the system is built on a random subset of at most this many
            rows per term, drawn afresh each iteration from ``generator`` (a ``torch.Generator``
            or an int seed; default seed 0); acceptance always uses DeepXDE's whole loss.
        generator: see ``kernel_points``.

    Attributes:
        history: one dict per iteration: ``step`` (``model.train_state.step`` after it),
            ``loss`` and ``loss_after`` (DeepXDE's total training loss before and after it),
            ``damping``, ``step_size`` (1 for an accepted step, 0 when every solve was
            rejected), ``gain_ratio``, ``solves``, ``cg_iterations``, ``accelerated`` (with
            ``geodesic`` > 0), ``next_damping`` and the seconds ``time_kernel`` (building the
            system), ``time_solve`` and ``time_line_search`` (the trial losses).

    Float64 is recommended (``dde.config.set_default_float("float64")`` before building the
    network): in float32 round-off dominates the kernel system near errors of 1e-4, and
    :meth:`train` warns. Not supported, each with a clear error: backends other than PyTorch,
    auxiliary variables, ``external_trainable_variables`` (inverse problems: only ``model.net``
    moves), regularizers, dropout, and losses other than DeepXDE's mean square ``"MSE"``.

    Example::

        dde.config.set_default_float("float64")
        model = dde.Model(data, net)
        model.compile("adam", lr=1e-3, loss_weights=[1, 10])
        model.train(iterations=1000)                         # optional warm start
        gn = pdx.GaussNewton(damping=1e-3)
        losshistory, train_state = gn.train(model, iterations=200, display_every=20)
        dde.saveplot(losshistory, train_state, issave=False, isplot=False)
    """

    def __init__(self, damping: float = 1e-3, *, geodesic: float = 0.75, retries: int = 8,
                 min_damping: float = 1e-12, max_damping: float = 1e8, method: str = "auto",
                 cg_tol: float = 1e-8, cg_iters: int | None = None,
                 kernel_points: int | None = None, generator: torch.Generator | int | None = None):
        damping = check_float(damping, "damping", positive=True)
        self.geodesic = check_float(geodesic, "geodesic", nonnegative=True)
        self.retries = check_int(retries, "retries", minimum=0)
        self.min_damping = check_float(min_damping, "min_damping", positive=True)
        self.max_damping = check_float(max_damping, "max_damping", positive=True)
        if not self.min_damping <= damping <= self.max_damping:
            raise ValueError(f"damping: expected a value in [min_damping, max_damping] = "
                             f"[{self.min_damping:g}, {self.max_damping:g}], got {damping:g}")
        if method not in _METHODS:
            raise ValueError(f"method: expected one of {', '.join(_METHODS)}, got {method!r}")
        self.method = method
        self.cg_tol = check_float(cg_tol, "cg_tol", positive=True)
        self.cg_iters = None if cg_iters is None else check_int(cg_iters, "cg_iters", minimum=1)
        self.kernel_points = None if kernel_points is None else \
            check_int(kernel_points, "kernel_points", minimum=1)
        if isinstance(generator, numbers.Integral) and not isinstance(generator, bool):
            generator = torch.Generator().manual_seed(int(generator))
        if generator is not None and not isinstance(generator, torch.Generator):
            raise TypeError(f"generator: expected a torch.Generator, an int seed or None, got "
                            f"{type(generator).__name__}")
        if generator is not None and self.kernel_points is None:
            raise ValueError("generator: draws the subsets of kernel_points, which is not set")
        self.generator = generator if generator is not None else torch.Generator().manual_seed(0)
        self._lm = LevenbergMarquardt(damping, retries=self.retries, geodesic=self.geodesic,
                                      min_damping=self.min_damping, max_damping=self.max_damping)
        self.history: list[dict] = []
        self._cache = LossCache()
        self._checked: tuple | None = None

    # ------------------------------------------------------------------------------ state
    @property
    def damping(self) -> float:
        """The damping μ of the next iteration."""
        return self._lm.mu

    def state_dict(self) -> dict:
        """μ, ν and the subset generator's state (for a checkpoint next to ``model.save``)."""
        return {"mu": self._lm.mu, "nu": self._lm.nu, "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self._lm.mu, self._lm.nu = float(state["mu"]), float(state["nu"])
        self.generator.set_state(state["generator"])

    # ----------------------------------------------------------------------------- system
    def weights(self, model: Any) -> list[float]:
        """pinnk's term weights λ_i = 2 w_i of the model's ``loss_weights`` w (ones when None),
        in DeepXDE's loss order: Σ_i λ_i ‖r_i‖²/(2 n_i) is DeepXDE's Σ_i w_i mean(r_i²)."""
        n = len(self._cache.get(model))
        return [2.0 * w for w in _loss_weights(model, n)]

    def system(self, model: Any) -> GaussNewtonSystem:
        """The Gauss–Newton system of the model's loss at its current network and training
        points (all of them): ``pinnk.GaussNewtonSystem(model.net, pdx.terms(model),``
        :meth:`weights` ``(model))`` with this object's ``method`` and CG options."""
        _check_trainable(model)
        return self._system(model, [loss.term() for loss in self._cache.get(model)])

    def _system(self, model: Any, terms: Sequence[Term]) -> GaussNewtonSystem:
        return GaussNewtonSystem(model.net, terms, self.weights(model), method=self.method,
                                 cg_tol=self.cg_tol, cg_max_iter=self.cg_iters)

    def _subset(self, losses: list[Loss]) -> list[Term]:
        return loss_terms(losses, self.kernel_points, self.generator)

    # ------------------------------------------------------------------------------- step
    def step(self, model: Any) -> dict:
        """One Levenberg–Marquardt iteration of the model's loss at DeepXDE's current training
        points; the network's parameters move in place when the step is accepted. Returns the
        iteration's record (see :attr:`history`, without ``step``). Does not touch
        ``model.train_state``, the loss history or callbacks (:meth:`train` does)."""
        _check_trainable(model)
        losses = self._cache.get(model)
        X, y, aux = model.data.train_next_batch()
        w = _loss_weights(model, len(losses))
        L0_vec = _deepxde_losses(model, X, y, aux)
        L0 = float(L0_vec.sum())
        if not math.isfinite(L0):
            raise ValueError(f"model: DeepXDE's training loss is not finite: "
                             f"{_fmt_vec(L0_vec)} (loss order {[l.name for l in losses]})")
        terms = self._subset(losses)
        exact = all(t.n == loss.points.shape[0] for t, loss in zip(terms, losses))
        t0 = time.perf_counter()
        system = self._system(model, terms)
        t_kernel = time.perf_counter() - t0
        self._check_losses(model, losses, system if exact else None, L0_vec, w)
        last = [L0]

        def loss_value() -> float:
            v = float(_deepxde_losses(model, X, y, aux).sum())
            last[0] = v if math.isfinite(v) else math.inf
            return last[0]

        info = self._lm.iterate(system, loss_value, L0, exact=exact, time_kernel=t_kernel)
        return {"loss": L0, "loss_after": last[0] if info["step_size"] > 0 else L0, **info}

    def _check_losses(self, model: Any, losses: list[Loss], system: GaussNewtonSystem | None,
                      dde_vec: np.ndarray, w: list[float]) -> None:
        """DeepXDE's loss vector against w_i·mean(r_i²) of the terms, once per compile and set
        of training points (it catches a loss other than the mean square)."""
        key = (losses, model.outputs_losses_train)
        if self._checked is not None and all(a is b for a, b in zip(self._checked, key)):
            return
        if system is not None:
            rho = system.rho.split(system.sizes)
            ours = [0.5 * float(r @ r) for r in rho]
        else:
            with torch.no_grad():
                ours = [wi * float((loss.term().residual(model.net) ** 2).mean())
                        for wi, loss in zip(w, losses)]
        rtol, atol = _LOSS_TOL.get(dtype_device(model)[0], _LOSS_TOL[torch.float32])
        for loss, wi, a, b in zip(losses, w, dde_vec, ours):
            a = float(a)
            if not abs(a - b) <= rtol * max(abs(a), abs(b)) + wi * atol:
                raise ValueError(f"model: DeepXDE's loss entry {loss.name!r} ({loss.kind}) is "
                                 f"{a:.6g}, but loss_weight · mean(residual²) is {b:.6g}; "
                                 f"Gauss–Newton needs DeepXDE's mean-square loss "
                                 f"(model.compile(..., loss='MSE'), the default)")
        self._checked = key

    # ------------------------------------------------------------------------------ train
    def train(self, model: Any, iterations: int, *, display_every: int = 10,
              callbacks: Sequence | None = None, disregard_previous_best: bool = False,
              model_save_path: str | None = None, verbose: int = 1) -> tuple:
        """Train a compiled DeepXDE model by ``iterations`` Gauss–Newton iterations, the way
        ``model.train`` trains it with a DeepXDE optimizer.

        Every iteration counts as one DeepXDE iteration (``model.train_state.step`` and
        ``iteration`` grow by one, rejected or not). DeepXDE's own loss evaluation records the
        training and test losses and the metrics in ``model.losshistory`` at the start, every
        ``display_every`` iterations and at the end, and updates the best state (so
        ``dde.saveplot``, ``model.losshistory`` and ``train_state.best_*`` work as after
        ``model.train``); ``verbose`` > 0 prints DeepXDE's table. Callbacks (``dde.callbacks``:
        checkpoints, early stopping, point resampling, ``TraceWeights``, ...) are called as
        ``model.train`` calls them under Adam: ``on_train_begin``, then per iteration
        ``on_epoch_begin``, ``on_batch_begin``, ``on_batch_end``, ``on_epoch_end``, and
        ``on_train_end``; ``model.stop_training`` ends the run. Training points changed by a
        callback (``PDEPointResampler``) and loss weights changed by one (``TraceWeights``) are
        used from the next iteration.

        Args:
            model: a compiled ``deepxde.Model`` (``model.compile(...)``, any optimizer: its
                ``loss_weights`` and loss functions are used, its optimizer is not).
            iterations: Gauss–Newton iterations (>= 1).
            display_every, callbacks, disregard_previous_best, model_save_path, verbose: as in
                ``model.train``.

        Returns:
            ``(model.losshistory, model.train_state)``, as ``model.train`` does.

        Raises:
            TypeError, ValueError: an unsupported model (see the class docstring), bad
                arguments, a non-finite loss, or a DeepXDE loss that is not the mean square of
                the residuals.
        """
        iterations = check_int(iterations, "iterations", minimum=1)
        display_every = check_int(display_every, "display_every", minimum=1)
        _check_trainable(model)
        _loss_weights(model, len(self._cache.get(model)))
        cbs = [] if callbacks is None else list(callbacks)
        for k, cb in enumerate(cbs):
            if not isinstance(cb, dde.callbacks.Callback):
                raise TypeError(f"callbacks[{k}]: expected a deepxde.callbacks.Callback, got "
                                f"{type(cb).__name__}")
        if dtype_device(model)[0] != torch.float64:
            warnings.warn(f"GaussNewton: model.net is {dtype_device(model)[0]}; Gauss–Newton "
                          f"in float32 stalls where round-off dominates the kernel system "
                          f"(errors near 1e-4 at best); call "
                          f"dde.config.set_default_float('float64') before building the network",
                          UserWarning, stacklevel=2)
        from deepxde import display

        model.batch_size = None
        model.callbacks = dde.callbacks.CallbackList(callbacks=cbs)
        model.callbacks.set_model(model)
        ts = model.train_state
        if disregard_previous_best:
            ts.disregard_best()
        if verbose > 0 and dde.config.rank == 0:
            print("Training model (Gauss–Newton)...\n")
        model.stop_training = False
        ts.set_data_train(*model.data.train_next_batch(model.batch_size))
        ts.set_data_test(*model.data.test())
        model._test(verbose=verbose)
        model.callbacks.on_train_begin()
        for i in range(iterations):
            model.callbacks.on_epoch_begin()
            model.callbacks.on_batch_begin()
            ts.set_data_train(*model.data.train_next_batch(model.batch_size))
            record = self.step(model)
            ts.iteration += 1
            ts.step += 1
            self.history.append({"step": int(ts.step), **record})
            converged = record["step_size"] == 0 and self._lm.mu >= self.max_damping
            if ts.step % display_every == 0 or i + 1 == iterations or converged:
                model._test(verbose=verbose)
            model.callbacks.on_batch_end()
            model.callbacks.on_epoch_end()
            if converged:
                if verbose > 0 and dde.config.rank == 0:
                    print(f"Gauss–Newton: no step decreased the loss up to damping "
                          f"{self._lm.mu:g}: converged to round-off at step {ts.step}")
                model.stop_training = True
            if model.stop_training:
                break
        model.callbacks.on_train_end()
        if verbose > 0 and dde.config.rank == 0:
            print("")
            display.training_display.summary(ts)
        if model_save_path is not None:
            model.save(model_save_path, verbose=1)
        return model.losshistory, ts

    def __repr__(self) -> str:
        return (f"GaussNewton(damping={self.damping:g}, geodesic={self.geodesic:g}, "
                f"method={self.method!r})")


# ------------------------------------------------------------------------------- helpers
def _check_trainable(model: Any) -> None:
    """check_model, plus what Gauss–Newton on model.net's parameters needs."""
    check_model(model)
    if getattr(model, "outputs_losses_train", None) is None:
        raise ValueError("model: not compiled; call model.compile(...) first (Gauss–Newton "
                         "trains on the compiled loss: its loss_weights and loss functions)")
    if model.external_trainable_variables:
        raise ValueError("model: external_trainable_variables (an inverse problem) are not "
                         "supported: Gauss–Newton moves only model.net's parameters")
    reg = getattr(model.net, "regularizer", None)
    if reg is not None:
        raise ValueError(f"model: model.net has the regularizer {reg!r}; Gauss–Newton "
                         f"minimises the mean squares of the residuals only (build the network "
                         f"without regularization)")
    for m in model.net.modules():
        if isinstance(m, torch.nn.modules.dropout._DropoutNd) and m.p > 0:
            raise ValueError(f"model: model.net has dropout (p={m.p:g}); Gauss–Newton needs a "
                             f"deterministic network (dropout_rate=0)")


def _loss_weights(model: Any, n: int) -> list[float]:
    lw = model.loss_weights
    if lw is None:
        return [1.0] * n
    w = [float(v) for v in np.ravel(np.asarray(lw, dtype=float))]
    if len(w) != n:
        raise ValueError(f"model.loss_weights: expected {n} weights (one per loss term), got "
                         f"{len(w)}")
    if not all(math.isfinite(v) and v >= 0 for v in w):
        raise ValueError(f"model.loss_weights: expected finite weights >= 0, got {w}")
    return w


def _deepxde_losses(model: Any, X: Any, y: Any, aux: Any) -> np.ndarray:
    """DeepXDE's weighted training loss vector at the current network, as numpy float64,
    evaluated without parameter gradients (as DeepXDE's own ``_test`` does); the parameters'
    ``requires_grad`` flags are restored afterwards."""
    params = list(model.net.parameters())
    flags = [p.requires_grad for p in params]
    model.net.requires_grad_(False)
    try:
        out = model.outputs_losses_train(X, y, aux)[1]
    finally:
        for p, f in zip(params, flags):
            p.requires_grad_(f)
    return out.detach().to(device="cpu", dtype=torch.float64).numpy()


def _fmt_vec(v: np.ndarray) -> str:
    return "[" + ", ".join(f"{float(a):.4g}" for a in v) + "]"
