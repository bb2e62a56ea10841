"""pinnk: physics-informed neural networks that explain their training through the NTK.

Public names: :mod:`pinnk.ops` (derivative-label operators), :class:`Term`, :class:`MLP` and its
embeddings and output transforms, :func:`ntk` / :class:`Kernel` (the empirical multi-block NTK),
:func:`angles`, :func:`gauss_newton_step` / :class:`GaussNewtonSystem` (damped Gauss–Newton
steps solved in function space with Θ), :mod:`pinnk.weighting` (loss-weighting strategies), :mod:`pinnk.diagnostics`,
:mod:`pinnk.analytic` (infinite-width kernels), :mod:`pinnk.io` (atomic writes),
:mod:`pinnk.mesh` (meshio mesh domains), :mod:`pinnk.interop` (DeepXDE models and geometries;
imports deepxde only when used) and the :class:`Problem` contract.
"""

from . import analytic, diagnostics, interop, io, mesh, ops, weighting
from ._analytic import AnalyticKernel
from ._gauss_newton import GaussNewtonStep, GaussNewtonSystem, gauss_newton_step
from ._kernel import Implementation, Kernel, angles, ntk
from ._networks import MLP, Activation, FourierFeatures, PeriodicEmbedding, Positive, activation_names
from ._problem import Box, Defaults, Problem
from ._terms import Term

__version__ = "0.1.0"

__all__ = [
    # modules
    "ops", "weighting", "diagnostics", "io", "analytic", "mesh", "interop",
    # terms, networks, problems
    "Term", "MLP", "Activation", "FourierFeatures", "PeriodicEmbedding", "Positive",
    "activation_names", "Problem", "Box", "Defaults",
    # kernels
    "ntk", "Kernel", "Implementation", "angles", "AnalyticKernel",
    # the solver
    "gauss_newton_step", "GaussNewtonSystem", "GaussNewtonStep",
    "__version__",
]
