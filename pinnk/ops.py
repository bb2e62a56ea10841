"""Derivative-label operators: ``op(model, x) -> (n,)``, exact through autograd.

``value``, ``directional`` (Gâteaux derivative of any order along a constant vector or a field),
``partial`` (mixed partials for a multi-index), ``laplacian``, ``transport`` (Σ g_i(x) ∂_i f),
``divergence``, and ``residual`` for nonlinear residuals. Operators combine linearly:
``op1 + op2``, ``op1 - op2``, ``c * op``, ``g * op`` with a coefficient field ``g: x -> (n,)``.
"""

from ._operators import (Linear, Operator, Residual, directional, divergence, laplacian, partial,
                         residual, transport, value)

__all__ = ["Operator", "Linear", "Residual", "value", "directional", "partial", "laplacian",
           "transport", "divergence", "residual"]
