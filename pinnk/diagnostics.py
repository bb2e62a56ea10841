"""NTK diagnostics: the spectrum of Θ*, per-point gradient angles and kernel drift."""

from ._diagnostics import angle_statistics, kernel_drift, kernel_matrix, spectrum, summarize

__all__ = ["spectrum", "angle_statistics", "kernel_matrix", "kernel_drift", "summarize"]
