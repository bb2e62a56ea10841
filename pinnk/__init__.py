"""pinnk: physics-informed neural networks that explain their training through the NTK.

Public names: :mod:`pinnk.ops` (derivative-label operators), :class:`Term`, :class:`MLP` and its
embeddings and output transforms, :func:`ntk` / :class:`Kernel`, :func:`angles`,
:class:`Problem`.
"""

from . import analytic, diagnostics, io, ops, weighting
from ._analytic import AnalyticKernel
from ._kernel import Implementation, Kernel, angles, ntk
from ._networks import MLP, Activation, FourierFeatures, PeriodicEmbedding, Positive, activation_names
from ._problem import Box, Defaults, Problem
from ._terms import Term

__version__ = "0.1.0"

__all__ = [
    "ops", "weighting", "diagnostics", "io", "analytic", "AnalyticKernel", "Term", "MLP", "Activation", "FourierFeatures", "PeriodicEmbedding", "Positive",
    "activation_names", "ntk", "Kernel", "Implementation", "angles", "Problem", "Box", "Defaults", "__version__",
]
