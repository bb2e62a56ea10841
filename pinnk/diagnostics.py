"""NTK diagnostics: the spectrum of Θ*, per-point gradient angles, kernel drift, the linearised
training dynamics with the λ_min loss bound, sample-to-sample angles and the batch-selection
strategies of the paper's Fig. A2b."""

from ._batches import (BATCH_STRATEGIES, Adaptive, BatchStrategy, LargestResidual, Normal,
                       Orthogonal, Worst, batch_strategy, sample_angles)
from ._diagnostics import angle_statistics, kernel_drift, kernel_matrix, spectrum, summarize
from ._dynamics import (LinearizationComparison, LinearizedPrediction, LossBound,
                        compare_linearized, linearized_prediction, loss_bound, weighted_loss)

__all__ = [
    "spectrum", "angle_statistics", "kernel_matrix", "kernel_drift", "summarize",
    # linearised dynamics
    "linearized_prediction", "compare_linearized", "loss_bound", "weighted_loss",
    "LinearizedPrediction", "LinearizationComparison", "LossBound",
    # sample angles and batches
    "sample_angles", "BatchStrategy", "Normal", "Adaptive", "Worst", "Orthogonal",
    "LargestResidual", "BATCH_STRATEGIES", "batch_strategy",
]
