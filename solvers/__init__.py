"""pinnk solvers: training (with NTK-driven loss weights), exports and the benchmark runner."""

from ._optim import Adam, AdamLBFGS, GaussNewton, LBFGS, Optimizer, Sequence, optimizer_from_spec
from ._report import Recommendation, TraceOutcome, WeightReport, WeightSetting, report_weights
from ._sampling import ResidualAdaptive, Uniform, sampler_from_spec
from ._train import (Trainer, TrainingError, TrainResult, build_model, model_config, train,
                     train_continuation)

__all__ = ["train", "train_continuation", "Trainer", "TrainResult", "TrainingError", "Adam", "LBFGS", "AdamLBFGS",
           "GaussNewton", "Sequence", "Optimizer",
           "optimizer_from_spec", "Uniform", "ResidualAdaptive", "sampler_from_spec",
           "build_model", "model_config", "report_weights", "WeightReport", "WeightSetting",
           "TraceOutcome", "Recommendation"]
