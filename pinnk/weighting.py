"""Loss-weighting strategies passed to the trainer: :class:`Fixed`, :class:`TraceNTK` (the NTK
trace rule), :class:`GradNorm` (learning-rate annealing) and :class:`Causal` (causal training,
combined with any of the others); :func:`from_spec` reads them from strings or configs."""

from ._weighting import Causal, Fixed, GradNorm, TraceNTK, Weighting, from_spec

__all__ = ["Weighting", "Fixed", "TraceNTK", "GradNorm", "Causal", "from_spec"]
