"""Levenberg–Marquardt iterations on a :class:`~pinnk.GaussNewtonSystem` (design.md §3b).

The damping μ of a run, the acceptance test, the rejection and re-solve, and the geodesic
acceleration, in one place: the trainer's optimizer strategy (``solvers.GaussNewton``) and the
DeepXDE bridge (``pinnk.interop.deepxde.GaussNewton``) both take their steps through
:class:`LevenbergMarquardt`, so the two take the same steps on the same system. The callers
validate the options (each with its own argument names); nothing is checked here.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import torch

from ._gauss_newton import GaussNewtonStep, GaussNewtonSystem

#: the finite-difference step h of the geodesic acceleration's second directional derivative
_GEODESIC_H = 0.1


class LevenbergMarquardt:
    """The damping state of a run, and one iteration of it on a built system.

    Args:
        damping: the initial μ > 0.
        mode: ``"lm"`` — the full step η = 1; after a step with gain ratio ϱ (actual over
            predicted decrease) μ ← μ·max(1/3, 1 − (2ϱ − 1)³) (``update="nielsen"``) or the
            threshold rule (``"threshold"``: μ/``down`` at ϱ ≥ 1/2, 2μ at ϱ < 1/4); a step that
            does not decrease the loss is undone, μ ← μ·ν, ν ← 2ν (Nielsen 1999), and the same
            system is solved again, up to ``retries`` times. ``"line"`` — a backtracking line
            search over η ∈ ``etas``, μ divided by ``down`` after a success and multiplied by
            ``up`` after a failure.
        update, etas, down, up, retries: see ``mode``.
        min_damping, max_damping: bounds on μ.
        geodesic: when > 0, add the geodesic acceleration a/2 to the step whenever
            ‖a‖ ≤ geodesic·‖δ‖ (see :meth:`accelerated`).

    Attributes:
        mu: the damping of the next iteration.
        nu: Nielsen's factor for the next rejection.
    """

    def __init__(self, damping: float, *, mode: str = "lm", update: str = "nielsen",
                 etas: tuple = (1.0,), down: float = 3.0, up: float = 10.0, retries: int = 8,
                 min_damping: float = 1e-12, max_damping: float = 1e8, geodesic: float = 0.0):
        self.mu = float(damping)
        self.nu = 2.0
        self.mode, self.update, self.etas = mode, update, tuple(etas)
        self.down, self.up, self.retries = float(down), float(up), int(retries)
        self.min_damping, self.max_damping = float(min_damping), float(max_damping)
        self.geodesic = float(geodesic)

    # -------------------------------------------------------------------------- iteration
    def iterate(self, system: GaussNewtonSystem, loss_value: Callable[[], float], loss0: float,
                *, exact: bool = True, time_kernel: float = 0.0) -> dict:
        """Solve, try the step, accept it or undo it and re-solve with more damping.

        The step moves ``system.params`` in place (through ``.data``: the system's retained
        graph saved them, and an undone step restores them before the graph is used again). A
        step is accepted only when ``loss_value() < loss0``, so the loss never increases
        across accepted steps; after ``retries + 1`` failed solves (``"lm"``) or a failed line
        search (``"line"``) the parameters are where they were.

        Args:
            system: the system at the current parameters.
            loss_value: the loss that accepts a step, at the current parameters, as a float
                (inf when not finite).
            loss0: ``loss_value()`` at the current parameters.
            exact: True when ``loss_value`` is the system's own loss ½‖ρ‖² (the gain ratio then
                uses it); False when the system is built on a subset of the points (the gain
                ratio then evaluates the system's loss after the step).
            time_kernel: the seconds it took to build the system, recorded in the result.

        Returns:
            A dict of scalars: ``damping`` (the μ of the accepted solve, else the first),
            ``step_size`` (η; 0 when no step was accepted), ``gain_ratio``, ``cg_iterations``,
            ``solves``, ``time_kernel``, ``time_solve``, ``time_line_search``, ``accelerated``
            (with ``geodesic`` > 0) and ``next_damping``.
        """
        info = {"damping": self.mu, "step_size": 0.0, "gain_ratio": float("nan"),
                "cg_iterations": 0, "solves": 0, "time_kernel": time_kernel, "time_solve": 0.0,
                "time_line_search": 0.0}
        params = system.params
        saved = [p.detach().clone() for p in params]
        tries = self.retries + 1 if self.mode == "lm" else 1
        for _ in range(tries):
            st = system.solve(self.mu)
            info["solves"] += 1
            info["time_solve"] += st.seconds["solve"] + st.seconds["step"]
            info["cg_iterations"] += st.cg_iterations or 0
            direction = st.direction
            if self.geodesic > 0:
                direction, used = self.accelerated(system, st, saved)
                info["accelerated"] = used
            t1 = time.perf_counter()
            accepted = None
            for eta in (self.etas if self.mode == "line" else (1.0,)):
                _move(params, direction, eta)
                L1 = loss_value()
                if L1 < loss0:
                    accepted = (eta, L1)
                    break
                _restore(params, saved)
            info["time_line_search"] += time.perf_counter() - t1
            if accepted is None:
                self.reject()
                continue
            eta, L1 = accepted
            sys_new = L1 if exact else system_loss(system)
            predicted = st.loss - st.predicted(eta)
            ratio = (st.loss - sys_new) / predicted if predicted > 0 else float("nan")
            info.update(step_size=eta, gain_ratio=ratio, damping=st.damping)
            self.accept(st.damping, ratio)
            break
        info["next_damping"] = self.mu
        return info

    def accelerated(self, system: GaussNewtonSystem, st: GaussNewtonStep,
                    saved: list) -> tuple[list, bool]:
        """δ + a/2 with the geodesic acceleration a = −(JᵀS²J + μI)⁻¹ JᵀS r_vv (Transtrum &
        Sethna 2012), r_vv the second directional derivative of S r along δ by a finite
        difference: (2/h²)(S r(θ + hδ) − ρ − h S J δ), where S J δ = −(ρ − μα) exactly. Used
        when ‖a‖ ≤ geodesic·‖δ‖ (the second-order term is a correction, not the step).

        ``saved`` holds the current parameters (restored after the probe at θ + hδ). Returns
        the direction and whether the acceleration was added; costs one residual evaluation
        and one solve with the factorisation of ``st``."""
        h = _GEODESIC_H
        params = system.params
        _move(params, st.direction, h)
        r_h = scaled_residual(system)
        _restore(params, saved)
        if not bool(torch.isfinite(r_h).all()):
            return st.direction, False
        rho = system.rho
        r_vv = (2.0 / h ** 2) * (r_h - rho + h * (rho - st.damping * st.alpha))
        acc = system.solve(st.damping, rhs=r_vv).direction
        norm_a = math.sqrt(sum(float((a * a).sum()) for a in acc))
        norm_d = math.sqrt(sum(float((d * d).sum()) for d in st.direction))
        if not norm_a <= self.geodesic * norm_d:
            return st.direction, False
        return [d + 0.5 * a for d, a in zip(st.direction, acc)], True

    # ---------------------------------------------------------------------------- damping
    def accept(self, mu_used: float, ratio: float) -> None:
        """The damping after an accepted step solved at ``mu_used`` with gain ratio ``ratio``."""
        if self.mode == "lm" and self.update == "nielsen":
            factor = 1.0 / 3.0 if not math.isfinite(ratio) else \
                max(1.0 / 3.0, 1.0 - (2.0 * ratio - 1.0) ** 3)
            self.mu = mu_used * factor
            self.nu = 2.0
        elif self.mode == "lm":
            if not math.isfinite(ratio) or ratio >= 0.5:
                self.mu = mu_used / self.down
            elif ratio < 0.25:
                self.mu = mu_used * 2.0
            else:
                self.mu = mu_used
            self.nu = 2.0
        else:
            self.mu = mu_used / self.down
        self._clamp()

    def reject(self) -> None:
        """The damping after a step that did not decrease the loss."""
        if self.mode == "lm":
            self.mu *= self.nu
            self.nu *= 2.0
        else:
            self.mu *= self.up
        self._clamp()

    def _clamp(self) -> None:
        self.mu = min(max(self.mu, self.min_damping), self.max_damping)


def _move(params: list, direction: list, eta: float) -> None:
    for p, d in zip(params, direction):
        p.data.add_(d, alpha=eta)


def _restore(params: list, saved: list) -> None:
    for p, s in zip(params, saved):
        p.data.copy_(s)


def scaled_residual(system: GaussNewtonSystem) -> torch.Tensor:
    """S r of a system's terms at its model's current parameters (no graph), shape (N,)."""
    with torch.no_grad():
        return system.scale * torch.cat([t.residual(system.model) for t in system.terms])


def system_loss(system: GaussNewtonSystem) -> float:
    """½ ‖S r‖² of a system's terms at its model's current parameters."""
    v = scaled_residual(system)
    return 0.5 * float(v @ v)
