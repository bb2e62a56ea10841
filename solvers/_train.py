"""The trainer: NTK-weighted PINN training with diagnostics, exact resume and atomic outputs."""

from __future__ import annotations

import copy
import dataclasses
import json
import random
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import math

import numpy as np
import torch

import pinnk
from pinnk import diagnostics as diag
from pinnk import io as pio
from pinnk._validation import check_float, check_int, on_host
from pinnk.weighting import Fixed, Weighting, from_spec

from ._optim import Adam, optimizer_from_spec
from ._preflight import (check_embedding_spec, check_model_fits, check_run_size,
                         warn_unused_options)
from ._runfolder import check_folder, checkpoint_errors, lock_folder, read_checkpoint
from ._sampling import Sampler, Uniform, _uniform_terms, sampler_from_spec

CHECKPOINT = "checkpoint.pt"
ATTEMPT = "attempt.json"  # the record of a retried attempt that diverged (train_continuation)


class TrainingError(RuntimeError):
    """Training stopped: a loss term became NaN/Inf (the message names the term and the step)."""


@dataclass
class TrainResult:
    """What :func:`train` returns."""

    model: torch.nn.Module
    history: dict
    metrics: dict
    config: dict
    out: Path | None = None
    files: list = field(default_factory=list)


def resolve_device(device: str | torch.device) -> torch.device:
    """``"auto"`` → CUDA when available, else CPU; otherwise the named device (validated)."""
    if isinstance(device, torch.device):
        dev = device
    elif device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        try:
            dev = torch.device(device)
        except (RuntimeError, TypeError):
            raise ValueError(f"device: unknown device {device!r}; expected 'auto', 'cpu' or "
                             f"'cuda[:N]'") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device: CUDA was requested but is not available on this machine")
    return dev


_DTYPES = {"float32": torch.float32, "float64": torch.float64}


def resolve_dtype(dtype: str | torch.dtype) -> torch.dtype:
    if isinstance(dtype, torch.dtype) and dtype in _DTYPES.values():
        return dtype
    if dtype in _DTYPES:
        return _DTYPES[dtype]
    raise ValueError(f"dtype: expected 'float32' or 'float64', got {dtype!r}")


def model_config(problem: pinnk.Problem, **overrides) -> dict:
    """The network spec for ``problem``: its defaults with ``overrides`` (None values ignored)."""
    d = problem.defaults
    cfg = {"width": d.width, "depth": d.depth, "activation": d.activation,
           "embedding": dict(d.embedding) if d.embedding else None,
           "positive_outputs": list(d.positive_outputs)}
    unknown = set(overrides) - set(cfg)
    if unknown:
        raise ValueError(f"model: unknown option(s) {sorted(unknown)}; expected {sorted(cfg)}")
    cfg.update({k: v for k, v in overrides.items() if v is not None})
    return cfg


def build_model(problem: pinnk.Problem, cfg: Mapping, generator: torch.Generator,
                dtype: torch.dtype) -> pinnk.MLP:
    """A :class:`pinnk.MLP` from a spec made by :func:`model_config`."""
    emb = None
    spec = cfg.get("embedding")
    if spec:
        check_embedding_spec(spec)
        kind = spec.get("kind")
        if kind == "periodic":
            emb = pinnk.PeriodicEmbedding(problem.in_dim, spec["dims"], spec["periods"],
                                          spec.get("harmonics", 1), spec.get("keep_input", ()))
        elif kind == "fourier":
            emb = pinnk.FourierFeatures(problem.in_dim, spec.get("features", 64),
                                        spec.get("scale", 1.0), generator=generator, dtype=dtype)
        else:
            raise ValueError(f"embedding: unknown kind {kind!r}; expected 'periodic' or 'fourier'")
    pos = list(cfg.get("positive_outputs") or [])
    transform = pinnk.Positive(pos) if pos else None
    return pinnk.MLP(problem.in_dim, problem.out_dim, cfg["width"], cfg["depth"],
                     cfg["activation"], embedding=emb, output_transform=transform,
                     generator=generator, dtype=dtype)


def load_network(problem: pinnk.Problem, model_options: Mapping, dtype: torch.dtype,
                 run_dir: str | Path, name: str = "run") -> pinnk.MLP:
    """The final network of a run folder: built by :func:`build_model` from
    :func:`model_config` ``(problem, **model_options)``, its weights from the folder's checkpoint
    (read and checked by :func:`read_checkpoint`, errors naming ``name``), on the CPU."""
    model = build_model(problem, model_config(problem, **model_options),
                        torch.Generator().manual_seed(0), dtype)
    model.load_state_dict(read_checkpoint(Path(run_dir) / CHECKPOINT, name)["model"])
    return model


def mlp_shape(state: Mapping) -> dict:
    """``{"width", "depth"}`` of a :class:`pinnk.MLP` of equal hidden widths from its state dict
    (``weights.0`` … ``weights.depth``), for a run folder whose config names a custom model."""
    weights = sorted(k for k in state if k.startswith("weights."))
    if "weights.0" not in state:
        raise ValueError("model: the checkpoint holds no pinnk.MLP weights (weights.0, ...)")
    return {"width": int(state["weights.0"].shape[0]), "depth": len(weights) - 1}


def terms_at(terms: Sequence, points: Sequence, targets: Sequence) -> list:
    """``terms`` moved to a checkpoint's ``points`` with its ``targets`` (a tensor label per
    term, or None for a term whose label is not stored: zero or callable, kept as it is);
    ``with_points`` keeps each term's residual flag (a forced residual has a label)."""
    return [t.with_points(p, target=t._target if y is None else y)
            for t, p, y in zip(terms, points, targets)]


def _rng_state() -> dict:
    st = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(),
          "python": random.getstate()}
    if torch.cuda.is_available():
        st["cuda"] = torch.cuda.get_rng_state_all()
    return st


def _set_rng_state(st: Mapping) -> None:
    torch.set_rng_state(st["torch"])
    np.random.set_state(st["numpy"])
    random.setstate(st["python"])
    if "cuda" in st and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(st["cuda"])


class _CompiledStreams:
    """The model as the operators see it, with its Taylor-mode pass (``jets``) compiled by
    ``torch.compile`` (elementwise work of the forward and backward passes fused). Parameters,
    checkpoints and diagnostics use the model itself; only loss evaluation goes through here."""

    def __init__(self, model: torch.nn.Module):
        self.model = model
        self.max_derivative_order = getattr(model, "max_derivative_order", None)
        self.activation_name = getattr(model, "activation_name", None)
        self._jets = torch.compile(model.jets, dynamic=False)

    def __call__(self, x):
        return self.model(x)

    def parameters(self):
        return self.model.parameters()

    def jets(self, x, directions, fam):
        return self._jets(x, list(directions), fam)


def _legacy(st: Mapping) -> dict:
    """The optimizer state of a checkpoint written before the optimizer steppers (keys adam,
    lbfgs, scheduler at the top level), in the steppers' layout."""
    adam = {"adam": st.get("adam"), "scheduler": st.get("scheduler")}
    lbfgs = {"lbfgs": st.get("lbfgs")}
    if st.get("adam") is not None and st.get("lbfgs") is not None:
        return {"adam": adam, "lbfgs": lbfgs}
    return adam if st.get("adam") is not None else lbfgs


def _fill_new_parameters(problem, mine: dict, theirs: dict) -> None:
    """Give a checkpoint's problem parameters the ones its problem class gained since it was
    written (``theirs`` updated in place), where this run has them at the class's default —
    which is what the old run computed without them. Any other value stays a mismatch."""
    import inspect

    old, new = theirs.get("problem"), mine.get("problem")
    if not (isinstance(old, dict) and isinstance(new, dict) and old.get("name") == new.get("name")
            and isinstance(old.get("params"), dict) and isinstance(new.get("params"), dict)):
        return
    try:
        signature = inspect.signature(type(problem).__init__).parameters
    except (TypeError, ValueError):
        return
    for key, value in new["params"].items():
        default = signature[key].default if key in signature else inspect.Parameter.empty
        if key not in old["params"] and default is not inspect.Parameter.empty \
                and _plain(default) == value:
            old["params"][key] = value


def _plain(obj):
    """``obj`` with tuples turned into lists and mapping keys into strings (as JSON has them)."""
    if isinstance(obj, Mapping):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj


class Trainer:
    """One training run of a :class:`pinnk.Problem` (see :func:`train` for the arguments)."""

    @on_host
    def __init__(self, problem: pinnk.Problem, model: torch.nn.Module | None = None, *,
                 weighting: Weighting | str | None = None, optimizer: Any = None,
                 steps: int | None = None, points: int | Mapping | None = None,
                 resample_every: int = 0, sampler: Sampler | str | Mapping | None = None,
                 adaptive_start: bool = False, hold_last: int = 0,
                 device: str = "auto", dtype: Any = None, seed: int = 0,
                 out: str | Path | None = None, ntk_every: int | None = None,
                 probe_points: int = 64, checkpoint_every: int | None = None,
                 log_every: int | None = None, model_options: Mapping | None = None,
                 export: bool = True, progress: bool = False, compile: bool = False,
                 callback: Callable | None = None):
        if not isinstance(problem, pinnk.Problem):
            raise TypeError(f"problem: expected a pinnk.Problem, got {type(problem).__name__}")
        self.problem = problem
        self.device = resolve_device(device)
        if optimizer is None:
            optimizer = Adam(lr=problem.defaults.lr)
        self.optimizer = optimizer_from_spec(optimizer)
        # Gauss–Newton solves a linear system that round-off in float32 spoils near the optimum
        gn = self.optimizer.uses_gauss_newton
        self.dtype = resolve_dtype(dtype if dtype is not None else
                                   ("float64" if gn else "float32"))
        if gn and self.dtype == torch.float32:
            warnings.warn("optimizer: Gauss–Newton in float32 stalls where float32 round-off "
                          "dominates the kernel system (errors near 1e-4 at best); use "
                          "dtype='float64'", UserWarning, stacklevel=2)
        self.seed = check_int(seed, "seed", minimum=0)
        self.steps = check_int(problem.defaults.steps if steps is None else steps, "steps",
                               minimum=1)
        self.resample_every = check_int(resample_every, "resample_every", minimum=0)
        self.sampler = Uniform() if sampler is None else sampler_from_spec(sampler)
        if self.sampler.adaptive and self.resample_every == 0:
            raise ValueError(f"sampler: {self.sampler.name!r} redraws the points from the "
                             f"residuals and needs resample_every > 0, got resample_every=0")
        if not isinstance(adaptive_start, bool):
            raise TypeError(f"adaptive_start: expected a bool, got {type(adaptive_start).__name__}")
        if adaptive_start and not self.sampler.adaptive:
            raise ValueError(f"adaptive_start: the first points are drawn by an adaptive sampler "
                             f"(rad), got sampler {self.sampler.name!r}")
        if adaptive_start and model is None:
            raise ValueError("adaptive_start: draws the first points from a trained network; "
                             "pass model= (a continuation stage, a fine-tuning run)")
        self.adaptive_start = adaptive_start
        self.hold_last = check_int(hold_last, "hold_last", minimum=0)
        if self.hold_last and not self.resample_every:
            raise ValueError(f"hold_last: keeps the points of the last {self.hold_last} steps "
                             f"and needs resample_every > 0, got resample_every=0")
        self.ntk_every = check_int(max(1, self.steps // 10) if ntk_every is None else ntk_every,
                                   "ntk_every", minimum=0)
        self.probe_points = check_int(probe_points, "probe_points", minimum=1)
        self.checkpoint_every = check_int(max(1, self.steps // 10) if checkpoint_every is None
                                          else checkpoint_every, "checkpoint_every", minimum=1)
        self.log_every = check_int(max(1, self.steps // 2000) if log_every is None else log_every,
                                   "log_every", minimum=1)
        # A copy: the strategy is stateful (weights, momentum history), and a Weighting object
        # passed to two runs would otherwise carry the first run's state into the second.
        self.weighting = copy.deepcopy(from_spec(weighting)) if weighting is not None \
            else Fixed()
        self.out = None if out is None else check_folder(out, "out")
        self._lock = None  # the run folder's lock, taken by lock_out()
        self.export = bool(export)
        self.progress = bool(progress)
        if callback is not None and not callable(callback):
            raise TypeError(f"callback: expected a callable callback(trainer), got "
                            f"{type(callback).__name__}")
        self.callback = callback
        self.points = points
        counts = problem.counts(points, problem.term_names(), name="points")

        torch.manual_seed(self.seed)
        init_gen = torch.Generator().manual_seed(self.seed)
        if model is None:
            self.model_cfg = model_config(problem, **dict(model_options or {}))
            check_run_size(problem, self.model_cfg, None, counts, self.dtype, self.device,
                           self.probe_points if self.ntk_every else 0)
            model = build_model(problem, self.model_cfg, init_gen, self.dtype)
        else:
            if model_options:
                raise ValueError("model_options: only used when no model is given")
            if not isinstance(model, torch.nn.Module):
                raise TypeError(f"model: expected a torch.nn.Module, got {type(model).__name__}")
            self.model_cfg = {"custom": type(model).__name__}
            check_run_size(problem, None, model, counts, self.dtype, self.device,
                           self.probe_points if self.ntk_every else 0)
        self.model = model.to(device=self.device, dtype=self.dtype)
        check_model_fits(self.model, problem)
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.compile = bool(compile)
        if self.compile and not isinstance(self.model, pinnk.MLP):
            raise ValueError("compile: only a pinnk.MLP has a Taylor-stream pass to compile")
        self._loss_model = _CompiledStreams(self.model) if self.compile else self.model
        self._weights_seen = self._weights_dev = None
        if not self.params:
            raise ValueError("model: has no trainable parameters")

        self.step = 0
        self.checkpoint_step: int | None = None  # the step of the checkpoint on disk, if known
        self.sample_gen = torch.Generator().manual_seed(self.seed + 1)
        self.terms = self._sample()
        self.names = [t.name for t in self.terms]
        if self.adaptive_start:
            self.terms = self._resample()
        # Diagnostics run in float64 on a copy of the model: eigenvalues of Θ* span many decades.
        probe_gen = torch.Generator().manual_seed(self.seed + 2)
        self.probe = _uniform_terms(problem, self.probe_points, probe_gen, torch.float64,
                                    self.device)
        self.weighting.setup(self.names, problem.time_index)
        self.stepper = self.optimizer.build(self)
        warn_unused_options(self)
        self.history: dict = {"train": [], "diagnostics": []}
        self.theta0: torch.Tensor | None = None
        self.elapsed = 0.0

    # ------------------------------------------------------------------------------- set-up
    def _sample(self):
        """The first draw of the collocation points (uniform: there is no trained model yet;
        with ``adaptive_start`` the sampler then draws again from the given network)."""
        return _uniform_terms(self.problem, self.points, self.sample_gen, self.dtype, self.device)

    def _resample(self):
        """A new draw of the collocation points by the sampler strategy."""
        try:
            return self.sampler.sample(self.problem, self.points, self.sample_gen,
                                       dtype=self.dtype, device=self.device, model=self.model,
                                       terms=self.terms)
        except FloatingPointError as exc:
            raise TrainingError(f"sampler {self.sampler.name!r}: {exc} at step {self.step}; "
                                f"{self._stopped()}") from None

    def _redraw_due(self) -> bool:
        """Whether the points are redrawn before this step: every ``resample_every`` steps, but
        not within the last ``hold_last`` steps (step > steps - hold_last)."""
        k = self.resample_every
        return bool(k) and self.step > 0 and self.step % k == 0 and \
            self.step <= self.steps - self.hold_last

    @property
    def adam(self):
        """The torch Adam optimizer of the run (None without an Adam phase)."""
        return self.stepper.torch_optimizer("adam")

    @property
    def lbfgs(self):
        """The torch L-BFGS optimizer of the run (None without an L-BFGS phase)."""
        return self.stepper.torch_optimizer("lbfgs")

    def config(self) -> dict:
        """The resolved run configuration (written to config.json)."""
        return {
            "problem": {"name": self.problem.name, "params": self.problem.params},
            "model": self.model_cfg, "weighting": self.weighting.config(),
            "optimizer": self.optimizer.config(), "steps": self.steps,
            "points": self.problem.counts(self.points, self.names),
            "resample_every": self.resample_every, "sampler": self.sampler.config(),
            "adaptive_start": self.adaptive_start, "hold_last": self.hold_last,
            "ntk_every": self.ntk_every,
            "probe_points": self.probe_points, "checkpoint_every": self.checkpoint_every,
            "log_every": self.log_every, "seed": self.seed, "device": str(self.device),
            "compile": self.compile, "export": self.export, "quiet": not self.progress,
            "dtype": str(self.dtype).replace("torch.", ""),
            "versions": {"pinnk": pinnk.__version__, "torch": torch.__version__},
        }

    # ---------------------------------------------------------------------------- checkpoints
    def state_dict(self) -> dict:
        return {
            "step": self.step, "model": self.model.state_dict(),
            "optimizer": self.stepper.state_dict(),
            "weighting": self.weighting.state_dict(), "rng": _rng_state(),
            "sample_gen": self.sample_gen.get_state(),
            "points": [t.points.cpu() for t in self.terms],
            "targets": [t._target.cpu() if isinstance(t._target, torch.Tensor) else None
                        for t in self.terms],
            "theta0": self.theta0,
            "history": self.history, "elapsed": self.elapsed, "config": self.config(),
        }

    def save_checkpoint(self) -> None:
        if self.out is not None:
            pio.save_torch(self.out / CHECKPOINT, self.state_dict())
            self.checkpoint_step = self.step

    def lock_out(self) -> None:
        """Take the exclusive lock of the run folder ``out`` (created and checked for writing)
        unless this trainer holds it: another run into the same folder is refused with a
        ValueError naming it. :meth:`run` releases it at its end; :meth:`load_checkpoint` and
        :meth:`run` take it."""
        if self.out is not None and self._lock is None:
            self._lock = lock_folder(self.out, "out")

    def unlock(self) -> None:
        """Release the run folder's lock (if held)."""
        lock, self._lock = self._lock, None
        if lock is not None:
            lock.release()

    def _stopped(self) -> str:
        """How a stopped run leaves its folder, for the messages of :class:`TrainingError`."""
        if self.out is None:
            return "training stopped"
        if self.checkpoint_step is None:
            return "training stopped before the first checkpoint, so there is nothing to resume"
        return f"training stopped; the last good checkpoint (step {self.checkpoint_step}) is kept"

    @checkpoint_errors
    @on_host
    def load_checkpoint(self, path: str | Path | None = None) -> None:
        """Restore a run from its checkpoint (default: ``out/checkpoint.pt``).

        Takes the run folder's lock and removes the temporaries a killed run left there. A
        damaged checkpoint, or one of another run, raises a ValueError naming the file.
        """
        path = Path(path) if path is not None else (self.out / CHECKPOINT if self.out else None)
        if path is None or not path.exists():
            raise ValueError(f"resume: no checkpoint at {str(path)!r}")
        self.lock_out()
        if self.out is not None:
            pio.remove_temporaries(self.out)
        # Loaded on the CPU: the RNG states must stay CPU tensors, and the model, optimizer and
        # terms are moved to the run's device by their own load/to below.
        st = read_checkpoint(path)
        # Compared as JSON values: a config read back from config.json has lists where the
        # original had tuples (problem parameters, embedding periods, Adam betas).
        mine, theirs = _plain(self.config()), _plain(st["config"])
        theirs.setdefault("sampler", Uniform().config())  # checkpoints from before samplers
        theirs.setdefault("adaptive_start", False)  # ... and before these two options
        theirs.setdefault("hold_last", 0)
        _fill_new_parameters(self.problem, mine, theirs)
        for key in ("problem", "model", "weighting", "optimizer", "steps", "points", "seed",
                    "dtype", "resample_every", "sampler", "adaptive_start", "hold_last"):
            if mine[key] != theirs[key]:
                raise ValueError(f"resume: the checkpoint was written with {key}={theirs[key]!r}, "
                                 f"this run has {key}={mine[key]!r}")
        self.model.load_state_dict(st["model"])
        self.stepper.load_state_dict(st["optimizer"] if "optimizer" in st else _legacy(st))
        self.weighting.load_state_dict(st["weighting"])
        _set_rng_state(st["rng"])
        self.sample_gen.set_state(st["sample_gen"])
        self.terms = [t.to(device=self.device, dtype=self.dtype)
                      for t in terms_at(self.terms, st["points"], st["targets"])]
        self.theta0 = st["theta0"]
        self.history = st["history"]
        self.elapsed = st["elapsed"]
        self.step = st["step"]
        self.checkpoint_step = self.step

    # ------------------------------------------------------------------------------- one step
    def evaluate(self, terms=None) -> tuple:
        """The residuals r_i (n_i,) and the term losses L_i (scalars, with their graphs) of
        ``terms`` (default the run's), the losses by the weighting strategy; a NaN/Inf loss
        raises :class:`TrainingError` naming the term and the step."""
        terms = self.terms if terms is None else terms
        residuals = [t.residual(self._loss_model, check=False) for t in terms]
        losses = self.weighting.term_losses(residuals, terms)
        # one device synchronisation per step for all terms
        finite = torch.isfinite(torch.stack([L.detach() for L in losses]))
        if not bool(finite.all()):
            k = int((~finite).nonzero()[0])
            raise TrainingError(f"loss term {terms[k].name!r} is {float(losses[k].detach())} at "
                                f"step {self.step}; {self._stopped()}")
        return residuals, losses

    def loss_value(self) -> float:
        """The weighted total loss at the current parameters, without a graph (inf when a term
        is NaN/Inf): what a line search compares."""
        with torch.no_grad():
            residuals = [t.residual(self._loss_model, check=False) for t in self.terms]
            value = float(self.total(self.weighting.term_losses(residuals, self.terms)))
        return value if math.isfinite(value) else math.inf

    def _check_parameters(self, losses: bool = True) -> None:
        """Raise :class:`TrainingError` if a parameter is NaN/Inf (a finite loss can still have
        a non-finite gradient) or, with ``losses``, if a loss term at the current parameters is
        (finite but huge parameters); called before each checkpoint so that the one on disk is
        good, and before the diagnostics (whose kernel refuses NaN parameters)."""
        with torch.no_grad():
            finite = torch.stack([torch.isfinite(p).all() for p in self.params]).all()
        if not bool(finite):
            raise TrainingError(f"the network parameters became NaN/Inf at step {self.step - 1}; "
                                f"{self._stopped()}")
        if self.out is None or not losses:  # the next step checks its losses
            return
        with torch.no_grad():
            values = [0.5 * (r * r).mean() for r in
                      (t.residual(self.model, check=False) for t in self.terms)]
            finite = torch.isfinite(torch.stack(values))
        if not bool(finite.all()):
            k = int((~finite).nonzero()[0])
            raise TrainingError(f"loss term {self.terms[k].name!r} is {float(values[k])} at "
                                f"step {self.step}; {self._stopped()}")

    def total(self, losses):
        """Σ_i λ_i L_i with the weighting strategy's current λ."""
        w = self.weighting.weights
        if self._weights_seen is not w:  # copy to the device only when the weights change
            self._weights_seen = w
            self._weights_dev = w.to(device=self.device, dtype=self.dtype)
        return (self._weights_dev * torch.stack(losses)).sum()

    def _train_step(self) -> tuple:
        """One optimizer step: ``(total, losses, info)``, the loss before the step."""
        return self.stepper.step(self)

    def _diagnostics(self) -> dict:
        self._check_parameters(losses=False)
        model = copy.deepcopy(self.model).to(torch.float64)
        probe = self.probe
        out = {"step": self.step}
        out.update(diag.spectrum(model, probe, self.weighting.weights.tolist()))
        theta = diag.kernel_matrix(model, probe)
        if self.theta0 is None:
            self.theta0 = theta.detach().cpu()
        out["drift"] = diag.kernel_drift(theta.cpu(), self.theta0)
        out["angles"] = diag.angle_statistics(model, probe)
        return out

    def _lr(self) -> float | None:
        """The learning rate of the current phase (Gauss–Newton: its damping μ)."""
        st = self.stepper
        return st.lr_at(self.step) if hasattr(st, "lr_at") else st.lr()

    @on_host
    def run(self) -> TrainResult:
        """Train from the current step to ``steps``; write outputs; return a :class:`TrainResult`.

        Holds the run folder's lock (:meth:`lock_out`) until it returns or raises.
        """
        self.lock_out()
        try:
            return self._run()
        finally:
            self.unlock()

    def _run(self) -> TrainResult:
        if self.out is not None:
            # metrics.json is written last: while it is absent the folder is not complete
            (self.out / "metrics.json").unlink(missing_ok=True)
            pio.write_json(self.out / "config.json", self.config())
        bar = None
        if self.progress:
            from tqdm.auto import tqdm
            bar = tqdm(total=self.steps, initial=self.step, desc=self.problem.name,
                       dynamic_ncols=True)
        t_start = time.perf_counter() - self.elapsed
        try:
            while self.step < self.steps:
                phase = self.stepper.phase(self.step)
                if self._redraw_due():
                    self.terms = self._resample()
                    self.stepper.reset()
                if self.ntk_every and self.step % self.ntk_every == 0:
                    self.history["diagnostics"].append(self._diagnostics())
                lr = self._lr()
                total, losses, info = self._train_step()
                if self.step % self.log_every == 0 or self.step == self.steps - 1:
                    rec = {"step": self.step, "loss": float(total.detach()), "phase": phase, "lr": lr,
                           "losses": {n: float(L.detach()) for n, L in zip(self.names, losses)},
                           "weights": self.weighting.weights_dict(),
                           "time": time.perf_counter() - t_start}
                    rec.update(self.weighting.info())
                    rec.update(info)
                    self.history["train"].append(rec)
                    if bar is not None:
                        bar.set_postfix_str(f"loss={rec['loss']:.3e} w=" + ",".join(
                            f"{v:.3g}" for v in rec["weights"].values()), refresh=False)
                if self.callback is not None:
                    self.callback(self)
                self.step += 1
                self.elapsed = time.perf_counter() - t_start
                if bar is not None:
                    bar.update(1)
                if self.step % self.checkpoint_every == 0 or self.step == self.steps:
                    self._check_parameters()
                    self.save_checkpoint()
        except TrainingError:
            if self.out is not None:
                pio.write_json(self.out / "history.json", self.history)
            raise
        finally:
            if bar is not None:
                bar.close()
        if self.ntk_every:
            self.history["diagnostics"].append(self._diagnostics())
        return self._finish()

    def _finish(self) -> TrainResult:
        from ._export import evaluate_fields, relative_l2

        data = evaluate_fields(self.problem, self.model)
        rel = relative_l2(data.prediction, data.reference)
        metrics = {"relative_l2": {n: float(v) for n, v in zip(self.problem.output_names, rel)},
                   "final_loss": self.history["train"][-1]["loss"] if self.history["train"]
                   else None, "steps": self.step, "wall_time_s": self.elapsed,
                   "device": str(self.device), "final_weights": self.weighting.weights_dict()}
        files = []
        if self.out is not None:
            pio.write_json(self.out / "history.json", self.history)
            files += [self.out / n for n in ("config.json", "history.json", "metrics.json",
                                             CHECKPOINT)]
            if self.export:
                from ._export import export_solution
                from ._plots import plot_fields, plot_history, render_pyvista
                files += export_solution(self.problem, self.model, self.out)
                files += plot_history(self.history, self.out)
                files += plot_fields(self.problem, self.model, self.out, data=data)
                files += render_pyvista(self.problem, self.model, self.out, data=data)
            pio.write_json(self.out / "metrics.json", metrics)  # last: the folder is complete
        return TrainResult(self.model, self.history, metrics, self.config(), self.out, files)


def train(problem: pinnk.Problem, model: torch.nn.Module | None = None, *,
          weighting: Weighting | str | None = None, optimizer: Any = None,
          steps: int | None = None, points: int | Mapping | None = None, resample_every: int = 0,
          sampler: Sampler | str | Mapping | None = None, adaptive_start: bool = False,
          hold_last: int = 0, device: str = "auto",
          dtype: Any = None, seed: int = 0,
          out: str | Path | None = None, resume: bool = False, ntk_every: int | None = None,
          probe_points: int = 64, checkpoint_every: int | None = None,
          log_every: int | None = None, model_options: Mapping | None = None,
          export: bool = True, progress: bool = False, compile: bool = False,
          callback: Callable | None = None) -> TrainResult:
    """Train a PINN on ``problem``.

    The loss is L = Σ_i λ_i L_i with L_i = ‖r_i‖²/(2 n_i) (or the causal form), λ from the
    ``weighting`` strategy. Each step: resample the collocation points when due, record the NTK
    diagnostics when due (λ_min/λ_max of Θ* on fixed probe points, angle statistics between each
    regular and each residual term, kernel drift against the first record), then one optimizer
    step. A NaN/Inf in any loss term raises :class:`TrainingError` naming the term and the step;
    the last good checkpoint (one whose losses were finite) is kept. Before anything is built the
    run's memory is checked (ValueError naming ``model_options``' width/depth, ``points`` or
    ``probe_points`` with the size it would need), a given ``model`` must fit the problem's
    input and output counts, and options that would do nothing warn (``warnings.warn``).

    Args:
        problem: a :class:`pinnk.Problem`.
        model: any ``nn.Module`` (n, d) -> (n, out); default a :class:`pinnk.MLP` built from the
            problem's defaults and ``model_options`` (width, depth, activation, embedding,
            positive_outputs).
        weighting: a :mod:`pinnk.weighting` strategy or spec string (default fixed unit weights).
        optimizer: :class:`Adam`, :class:`LBFGS`, :class:`GaussNewton`, a :class:`Sequence`
            of them (:class:`AdamLBFGS`) or a spec string (``"adam:lr=1e-3"``, ``"gn"``,
            ``"adam+gn:switch=2000"``, ``"adam+lbfgs+gn:switch=0.5/0.8"``; default Adam at the
            problem's learning rate).
        steps: optimizer steps (default: the problem's).
        device: ``"auto"`` (CUDA when present), ``"cpu"``, ``"cuda"``.
        dtype: ``"float32"`` or ``"float64"`` (default: float64 when the optimizer has a
            Gauss–Newton phase, else float32).
        seed: seeds initialisation (seed), sampling (seed + 1) and probe points (seed + 2).
        out: the run folder (config.json, history.json, metrics.json, checkpoint.pt, exports,
            plots), or None to write nothing. It is locked while the run writes (a second run
            into it raises a ValueError); metrics.json is written last.
        resume: continue from ``out/checkpoint.pt``; an interrupted run resumed ends with the
            same history as an uninterrupted one. The temporaries of a killed run are removed.
        points: points per term (int, mapping name -> count, or None for the defaults).
        resample_every: draw new collocation points every K steps (0: never).
        sampler: how the points are redrawn: :class:`Uniform` (the default; a fresh sample from
            the problem's distribution), :class:`ResidualAdaptive` or a spec string (``"uniform"``,
            ``"rad:k=1,c=1,candidates=4"``). RAD (Wu et al. 2023) draws ``candidates``·n points
            for each PDE residual term and keeps n of them without replacement with probability
            p(x) ∝ |r(x)|^k / mean |r|^k + c, r evaluated with the current network; the other
            terms are drawn uniformly, and the first sample is uniform. Needs
            ``resample_every > 0``.
        adaptive_start: draw the first points with the (adaptive) sampler from the given
            ``model`` rather than uniformly — for a network already trained (a continuation
            stage at a smaller viscosity, a fine-tuning run), whose first steps would otherwise
            be spent on uniform points that miss its fronts.
        hold_last: no redraw in the last K steps (a redraw at step s needs s <= steps - K), so
            that the final network is one that fitted the points it ends on (with Gauss–Newton,
            each window's fresh adaptive points start far from fitted).
        ntk_every: steps between diagnostics (0: none; default steps/10).
        probe_points: points per term for the diagnostics.
        checkpoint_every: steps between checkpoints (default steps/10).
        log_every: steps between history records (default steps/2000).
        export: write the solution exports and plots.
        progress: show a progress bar with the loss and the weights.
        compile: compile the network's Taylor-stream pass with ``torch.compile`` (pinnk.MLP
            only): the first steps take tens of seconds longer, later steps are faster.
        callback: ``callback(trainer)`` after every step.

    Returns:
        A :class:`TrainResult` (model, history, metrics with the relative L2 error per output).
    """
    trainer = Trainer(problem, model, weighting=weighting, optimizer=optimizer, steps=steps,
                      points=points, resample_every=resample_every, sampler=sampler,
                      adaptive_start=adaptive_start, hold_last=hold_last,
                      device=device, dtype=dtype,
                      seed=seed, out=out, ntk_every=ntk_every, probe_points=probe_points,
                      checkpoint_every=checkpoint_every, log_every=log_every,
                      model_options=model_options, export=export, progress=progress,
                      compile=compile, callback=callback)
    if resume:
        if out is None:
            raise ValueError("resume: needs out= (the run folder with the checkpoint)")
        trainer.load_checkpoint()
    return trainer.run()


class ContinuationResult(list):
    """What :func:`train_continuation` returns: the :class:`TrainResult` of every stage, in
    order (a list, as before), and the stage whose network is the continuation's result.

    Attributes:
        values: the continued parameter's value at each stage.
        final_stage: the index of the result's stage: the last stage, or with ``accept_loss``
            the last stage whose final loss is at or below it (the last stage where none is).
        final: that stage's :class:`TrainResult` (``final.model`` is the result's network).
        attempts: for each stage, every time it was trained, in order: ``{"seed",
            "final_loss", "wall_time_s", "kept"}`` — one entry a stage unless ``retries``
            trained it again; ``kept`` marks the attempt the list holds (and the next stage
            started from).
    """

    def __init__(self, results: Sequence, values: Sequence, final_stage: int,
                 attempts: Sequence | None = None):
        super().__init__(results)
        self.values = list(values)
        self.final_stage = int(final_stage)
        self.attempts = ([[_attempt(r, None, True)] for r in results] if attempts is None
                         else [list(a) for a in attempts])

    @property
    def final(self) -> TrainResult:
        return self[self.final_stage]

    @property
    def wall_time_s(self) -> float:
        """The training time of every attempt of every stage (retried ones included), s."""
        return float(sum(a["wall_time_s"] for stage in self.attempts for a in stage))


def _attempt(res: TrainResult, seed: int | None, kept: bool) -> dict:
    return {"seed": seed, "final_loss": float(res.metrics["final_loss"]),
            "wall_time_s": float(res.metrics["wall_time_s"]), "kept": kept}


def _failed_attempt(exc: TrainingError, seed: int, wall_time_s: float) -> dict:
    """The record of an attempt that diverged: :func:`_attempt`'s fields (its final loss NaN,
    never kept) and the error's message."""
    return {"seed": seed, "final_loss": math.nan, "wall_time_s": float(wall_time_s),
            "kept": False, "error": str(exc)}


def _attempt_folders(folder: Path) -> dict:
    """Where a stage's attempts live on disk, ``{attempt: run folder}``: every
    ``stage-k-attempt-j`` and ``stage-k`` itself (the attempt that is not among the others:
    the kept one, or the one that was training). Empty when the stage never started."""
    where = {int(d.name.rsplit("-", 1)[1]): d
             for d in folder.parent.glob(f"{folder.name}-attempt-*")
             if d.is_dir() and d.name.rsplit("-", 1)[1].isdigit()}
    if folder.exists():
        where[min(set(range(len(where) + 1)) - set(where))] = folder
    return where


def _clear_stage_folder(folder: Path, where: dict, j: int) -> None:
    """Before attempt ``j`` trains in ``folder`` (``stage-k``): the attempt there before it
    moves to its own ``stage-k-attempt-i`` (``where`` follows)."""
    if j == 0 or j in where or not folder.exists():
        return
    i = next((a for a, d in where.items() if d == folder), j - 1)
    dest = folder.with_name(f"{folder.name}-attempt-{i}")
    folder.rename(dest)
    where[i] = dest


def _keep_in_stage_folder(folder: Path, j: int) -> None:
    """Make ``folder`` (``stage-k``) the run folder of the kept attempt ``j``, moving the
    attempt there to its ``stage-k-attempt-i`` (safe to repeat after an interruption)."""
    mine = folder.with_name(f"{folder.name}-attempt-{j}")
    if not mine.exists():
        return  # (already there)
    where = _attempt_folders(folder)
    if folder.exists():
        i = next(a for a, d in where.items() if d == folder)
        folder.rename(folder.with_name(f"{folder.name}-attempt-{i}"))
    mine.rename(folder)


def retry_seed(seed: int, stage: int, attempt: int) -> int:
    """The seed of a retried stage's attempt ``attempt`` >= 1 (attempt 0 trains with ``seed``
    itself): a 31-bit integer drawn from numpy's ``SeedSequence((seed, stage, attempt))``, so
    that every stage and attempt of a run samples (and a retried first stage initialises) with
    a stream of its own, reproducibly."""
    if attempt == 0:
        return int(seed)
    return int(np.random.SeedSequence((int(seed), int(stage), int(attempt)))
               .generate_state(1)[0] >> 1)


def accepted_stage(final_losses: Sequence[float], accept_loss: float | None) -> int:
    """The index of a continuation's result stage: with ``accept_loss`` None the last; else the
    last stage whose final loss ``L_k`` satisfies ``L_k <= accept_loss`` (a NaN never does),
    and the last stage when no stage does.

    Args:
        final_losses: each stage's final (total) loss, in order (at least one).
        accept_loss: the loss at or below which a stage counts as converged, or None.
    """
    n = len(final_losses)
    if n == 0:
        raise ValueError("final_losses: expected at least one stage")
    ok = [k for k, v in enumerate(final_losses) if _converged(v, accept_loss)]
    return ok[-1] if ok else n - 1


def _per_stage(value: int | Sequence[int], n: int, name: str) -> list:
    """An integer >= 0 for every one of ``n`` stages, or one per stage, as a list of n."""
    if isinstance(value, Sequence) and not isinstance(value, str):
        if len(value) != n:
            raise ValueError(f"{name}: expected one count per stage ({n}), got {len(value)}")
        return [check_int(v, name, minimum=0) for v in value]
    return [check_int(value, name, minimum=0)] * n


def _loss_order(loss: float) -> float:
    """A final loss as a sort key: NaN after every number."""
    loss = float(loss)
    return math.inf if math.isnan(loss) else loss


def _converged(loss: float, accept_loss: float | None) -> bool:
    """Whether a stage's final loss is at or below ``accept_loss`` (never for a NaN; never
    without a bound)."""
    return accept_loss is not None and float(loss) <= accept_loss


def check_continuation(values: Sequence, steps: int | Sequence[int],
                       accept_loss: float | None, retries: int | Sequence[int]) -> tuple:
    """Check the stage options of :func:`train_continuation` before any work: the steps of
    every stage (a list), ``accept_loss`` (a float > 0 or None) and the retries of every stage
    (a list); ValueError/TypeError naming the argument otherwise."""
    if not values:
        raise ValueError("values: expected at least one stage")
    counts = [steps] * len(values) if isinstance(steps, int) else list(steps)
    if len(counts) != len(values):
        raise ValueError(f"steps: expected one count per stage ({len(values)}), got "
                         f"{len(counts)}")
    if accept_loss is not None:
        accept_loss = check_float(accept_loss, "accept_loss", positive=True)
    tries_at = _per_stage(retries, len(values), "retries")
    if any(tries_at) and accept_loss is None:
        raise ValueError("retries: a stage is trained again when its final loss ends above "
                         "accept_loss; give accept_loss too")
    return counts, accept_loss, tries_at


def train_continuation(problem: str, parameter: str, values: Sequence, *,
                       steps: int | Sequence[int], params: Mapping | None = None,
                       out: str | Path | None = None, model_options: Mapping | None = None,
                       accept_loss: float | None = None,
                       retries: int | Sequence[int] = 0, resume: bool = False,
                       **train_kwargs) -> ContinuationResult:
    """Continuation: train through problems that differ in one parameter, each stage starting
    from the network the previous stage ended with.

    For a shock, the viscous residuals ∂_t U + ∂_x F(U) = ν ∂_xx U have a smooth solution that a
    network (and a Gauss–Newton step) can fit; decreasing ν in stages (e.g. 0.02, 0.005, 0.002)
    brings the fit towards the inviscid solution without ever asking it to fit a jump from a
    poor start.

    Args:
        problem: the zoo name (``"sod"``).
        parameter: the parameter that changes (``"viscosity"``).
        values: its value at each stage, in order.
        steps: the steps of every stage, or one count per stage.
        params: the problem's other parameters.
        out: a folder; stage k writes its run folder ``out/stage-k``.
        model_options: the network of the first stage (later stages reuse the model).
        accept_loss: the final loss at or below which a stage counts as converged; the result
            is then the network of the last converged stage (:func:`accepted_stage`), and a
            warning names every stage after it. A stage of a continuation that fails to fit its
            points (the Gauss–Newton loss stalls orders of magnitude above the others') leaves a
            network worse than the stage before; this keeps the one before. Every stage is
            trained either way (a later stage may converge again). None: the last stage.
        retries: how many times a stage that ends above ``accept_loss`` is trained again: one
            count for every stage or one per stage (default 0; needs ``accept_loss``). Each
            attempt starts from the network the stage started from (a retried first stage from
            a fresh one) with a seed of its own (:func:`retry_seed`: other points, and for the
            first stage another initialisation); the first attempt that converges is kept, or
            when none does the one with the lowest final loss. A Gauss–Newton stage that
            stalls does so on the points it drew (a window dominated by points it cannot fit),
            and another draw may get through. The early stages of a shock continuation often
            end above a bound the late ones meet, and the next stage recovers: a count per
            stage retries the late ones only. The kept attempt's run folder is
            ``out/stage-k``, the others ``out/stage-k-attempt-j``; a warning names each retry.
            An attempt that diverges (:class:`TrainingError`: a NaN loss or parameter) counts
            as an attempt that did not converge: it is recorded (its final loss NaN, its error
            message, its folder with an ``attempt.json`` of that record) and the stage is
            trained again while attempts remain; when every attempt of a stage diverges, the
            last one's error propagates. Without retries a divergence propagates at once.
        resume: continue a continuation that stopped (needs ``out``): every stage and attempt
            whose run folder holds a checkpoint continues from it (:func:`train` with
            ``resume``; a finished one only loads its final network and measures it again, its
            configuration checked against the checkpoint's), an attempt that diverged keeps its
            record, and the rest train as they would have: the result is that of a
            continuation that never stopped (the same networks, losses and attempts).
        **train_kwargs: passed to :func:`train` at every stage (weighting, optimizer, points,
            resample_every, sampler, hold_last, seed, dtype, ...); ``adaptive_start`` applies
            to the stages after the first (the first starts from an untrained network).

    Returns:
        A :class:`ContinuationResult`: the :class:`TrainResult` of every stage, in order, and
        ``final`` (the last stage's, or with ``accept_loss`` the last converged stage's);
        ``attempts`` lists every training of every stage (with their wall times).
    """
    import problems as zoo

    values = list(values)
    counts, accept_loss, tries_at = check_continuation(values, steps, accept_loss, retries)
    if not isinstance(resume, bool):
        raise TypeError(f"resume: expected a bool, got {type(resume).__name__}")
    if resume and out is None:
        raise ValueError("resume: needs out= (the folder with the stages' run folders)")
    seed = check_int(train_kwargs.pop("seed", 0), "seed", minimum=0)
    results: list = []
    attempts: list = []
    model = None
    kept = None  # the network of the last converged stage (accept_loss)
    adaptive_start = train_kwargs.pop("adaptive_start", False)
    if not isinstance(adaptive_start, bool):
        raise TypeError(f"adaptive_start: expected a bool, got {type(adaptive_start).__name__}")
    for k, (v, n) in enumerate(zip(values, counts)):
        prob = zoo.get(problem, **{**dict(params or {}), parameter: v})
        folder = None if out is None else Path(out) / f"stage-{k}"
        where = _attempt_folders(folder) if resume else {}  # attempt -> its run folder
        # a retried attempt starts where the stage started (the first trains the shared network)
        retries = tries_at[k]
        start = copy.deepcopy(model) if retries and model is not None else None
        tries: list = []  # (attempt, seed, TrainResult or None when it diverged, record)
        for j in range(retries + 1):
            s_j = retry_seed(seed, k, j)
            if j > 0:
                prev = tries[-1][3]
                how = (f"diverged ({prev['error']})" if "error" in prev
                       else f"ended at {prev['final_loss']:.3g}, above accept_loss "
                            f"{accept_loss:.3g}")
                if j not in where:  # (a resumed run said so the first time)
                    warnings.warn(f"stage {k} ({parameter} = {v:g}) {how}: training it again "
                                  f"from the network it started from with seed {s_j} "
                                  f"(attempt {j + 1} of {retries + 1})", stacklevel=2)
            if folder is not None:
                _clear_stage_folder(folder, where, j)
            net = model if j == 0 else (None if start is None else copy.deepcopy(start))
            at = where.get(j, folder)
            if j in where and (at / ATTEMPT).exists():  # (resumed: it diverged before)
                rec = json.loads((at / ATTEMPT).read_text())
                tries.append((j, s_j, None, {**rec, "final_loss": math.nan}))
                continue
            again = j in where and (at / CHECKPOINT).exists()
            if at is not None and not again:
                (at / ATTEMPT).unlink(missing_ok=True)  # (another run's, in a reused folder)
            t0 = time.perf_counter()
            try:
                res = train(prob, net, steps=n, out=at, resume=again,
                            model_options=model_options if net is None else None,
                            adaptive_start=adaptive_start and k > 0, seed=s_j, **train_kwargs)
            except TrainingError as exc:
                if not retries:
                    raise
                rec = _failed_attempt(exc, s_j, time.perf_counter() - t0)
                if at is not None and at.exists():
                    pio.write_json(at / ATTEMPT, rec)
                tries.append((j, s_j, None, rec))
                if j == retries and all(t[2] is None for t in tries):
                    raise  # every attempt diverged
                continue
            tries.append((j, s_j, res, _attempt(res, s_j, False)))
            if _converged(res.metrics["final_loss"], accept_loss):
                break
        if all(t[2] is None for t in tries):  # (resumed: every attempt had diverged)
            raise TrainingError(f"stage {k} ({parameter} = {v:g}): every attempt diverged; the "
                                f"last: {tries[-1][3]['error']}")
        best = tries[-1]
        if best[2] is None or not _converged(best[2].metrics["final_loss"], accept_loss):
            # none converged: the attempt with the lowest final loss (a NaN, a divergence never)
            best = min((t for t in tries if t[2] is not None),
                       key=lambda t: _loss_order(t[2].metrics["final_loss"]))
        if folder is not None:
            _keep_in_stage_folder(folder, best[0])
        res = best[2]
        model = res.model
        results.append(res)
        attempts.append([{**t[3], "kept": t is best} for t in tries])
        if _converged(res.metrics["final_loss"], accept_loss):
            # the stages share one network, trained on: keep this converged stage's own copy
            kept = copy.deepcopy(model)
    losses = [r.metrics["final_loss"] for r in results]
    final = accepted_stage(losses, accept_loss)
    if final < len(results) - 1:  # (then stage `final` is the one kept: the same test)
        results[final] = dataclasses.replace(results[final], model=kept)
    if accept_loss is not None:
        if not _converged(losses[final], accept_loss):  # (no stage converged)
            warnings.warn(f"accept_loss: no stage ended at or below {accept_loss:.3g} (final "
                          f"losses {', '.join(f'{v:.3g}' for v in losses)}); the result is the "
                          f"last stage's network", stacklevel=2)
        elif final < len(results) - 1:
            later = ", ".join(f"stage {k} ({parameter} = {values[k]:g}: {losses[k]:.3g})"
                              for k in range(final + 1, len(results)))
            warnings.warn(f"accept_loss: the result is stage {final}'s network ({parameter} = "
                          f"{values[final]:g}, final loss {losses[final]:.3g}); the stages "
                          f"after it ended above {accept_loss:.3g}: {later}", stacklevel=2)
    return ContinuationResult(results, values, final, attempts)
