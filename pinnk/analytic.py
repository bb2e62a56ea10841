"""Infinite-width kernels of :class:`pinnk.MLP` in NTK parametrisation (design.md §4).

:class:`AnalyticKernel` gives the NNGP Σ^{depth+1}, the NTK Θ^{depth+1} and their derivative
blocks for :mod:`pinnk.ops` linear operators (paper appendix A.1), with closed forms for erf and
relu and Gauss–Hermite quadrature for any smooth activation; :func:`nngp`, :func:`ntk` and
:func:`derivative_ntk` are one-call shorthands, :func:`gaussian_expectation` the building block
E[φ^{(p)}(u) φ^{(q)}(v)].
"""

from ._analytic import (CLOSED_FORMS, DEFAULT_QUADRATURE, AnalyticKernel, derivative_ntk,
                        gaussian_expectation, nngp, ntk)

__all__ = ["AnalyticKernel", "nngp", "ntk", "derivative_ntk", "gaussian_expectation",
           "CLOSED_FORMS", "DEFAULT_QUADRATURE"]
