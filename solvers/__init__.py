"""pinnk solvers: training (with NTK-driven loss weights), exports and the benchmark runner."""

# The names are imported on first use (PEP 562): ``import solvers`` (and so the ``pinnk`` command,
# whose entry point lives in this package) does not import torch, so that a Ctrl-C while torch
# loads reaches the command's own handler (one line, exit status 130) instead of a traceback.
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the same names, for type checkers and the API reference
    from ._optim import (Adam, AdamLBFGS, GaussNewton, LBFGS, Optimizer, Sequence,
                         optimizer_from_spec)
    from ._report import (Recommendation, TraceOutcome, WeightReport, WeightSetting,
                          report_weights)
    from ._marching import MarchResult, TimeWindow, WindowedModel, train_marching, window_edges
    from ._sampling import ResidualAdaptive, Uniform, sampler_from_spec
    from ._train import (ContinuationResult, Trainer, TrainingError, TrainResult,
                         accepted_stage, build_model, model_config, retry_seed, train,
                         train_continuation)

_MODULES = {
    "._optim": ("Adam", "AdamLBFGS", "GaussNewton", "LBFGS", "Optimizer", "Sequence",
                "optimizer_from_spec"),
    "._report": ("Recommendation", "TraceOutcome", "WeightReport", "WeightSetting",
                 "report_weights"),
    "._marching": ("MarchResult", "TimeWindow", "WindowedModel", "train_marching",
                    "window_edges"),
    "._sampling": ("ResidualAdaptive", "Uniform", "sampler_from_spec"),
    "._train": ("Trainer", "TrainingError", "TrainResult", "build_model", "model_config",
                "train", "train_continuation", "ContinuationResult", "accepted_stage",
                "retry_seed"),
}
_WHERE = {name: module for module, names in _MODULES.items() for name in names}

__all__ = ["train", "train_continuation", "ContinuationResult", "accepted_stage", "retry_seed",
           "train_marching", "TimeWindow", "WindowedModel",
           "MarchResult", "window_edges", "Trainer", "TrainResult", "TrainingError", "Adam",
           "LBFGS", "AdamLBFGS", "GaussNewton", "Sequence", "Optimizer",
           "optimizer_from_spec", "Uniform", "ResidualAdaptive", "sampler_from_spec",
           "build_model", "model_config", "report_weights", "WeightReport", "WeightSetting",
           "TraceOutcome", "Recommendation"]


def __getattr__(name: str):
    if name in _WHERE:
        import importlib

        value = getattr(importlib.import_module(_WHERE[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list:
    return sorted(set(globals()) | set(__all__))
