"""The problem zoo: PDE and regression tasks stated as derivative-label terms.

Every problem is a :class:`pinnk.Problem`: named inputs and outputs, a domain, ``terms(n,
generator, dtype)`` (operators with labels at freshly sampled points), ``solution(x)`` (exact, or
from a reference solver when ``exact`` is False), suggested ``defaults`` and its ``params``.

Registry::

    problems.names()                        # sorted list of the 17 names
    problems.get("convection", beta=30)     # an instance
    problems.parameters("convection")       # {"beta": 30.0, "periodic_embedding": False}
    problems.describe("convection")         # one line for a listing

Inputs are always ordered spatial coordinates first, time last (``time_index``).
"""

from ._base import ParameterError, Periodic, ZooProblem
from ._classic import Burgers1D, Poisson1D, Wave1D
from ._euler import (EulerSmooth, IsentropicVortex, Lax, RiemannProblem, Sod, euler_residuals_1d,
                     euler_residuals_2d)
from ._hlle import hlle_riemann_1d
from ._periodic import AllenCahn, KdV, KuramotoSivashinsky
from ._regression import CircleProduct, JacobianRegularization, SinCos
from ._registry import describe, descriptions, get, names, parameters, problem_class
from ._spectral import SemilinearPDE, SpectralSolution, etdrk4
from ._transport import Convection, RotatingCone, VariableTransport
from ._viscous_euler import viscous_riemann_1d

__all__ = [
    "names", "get", "describe", "descriptions", "parameters", "problem_class",
    "ParameterError", "ZooProblem", "Periodic", "euler_residuals_1d", "euler_residuals_2d",
    "CircleProduct", "SinCos", "JacobianRegularization", "Convection", "RotatingCone",
    "VariableTransport", "EulerSmooth", "Sod", "Lax", "RiemannProblem", "IsentropicVortex",
    "Poisson1D", "Wave1D", "Burgers1D", "viscous_riemann_1d", "hlle_riemann_1d",
    "AllenCahn", "KdV",
    "KuramotoSivashinsky", "SemilinearPDE", "SpectralSolution", "etdrk4",
]
