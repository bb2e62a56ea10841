"""The registry of the problem zoo: names -> :class:`pinnk.Problem` classes."""

from __future__ import annotations

import difflib
import inspect
from typing import Any

from ._base import ParameterError, ZooProblem
from ._classic import Burgers1D, Poisson1D, Wave1D
from ._euler import EulerSmooth, IsentropicVortex, Lax, RiemannProblem, Sod
from ._periodic import AllenCahn, KdV, KuramotoSivashinsky
from ._regression import CircleProduct, JacobianRegularization, SinCos
from ._transport import Convection, RotatingCone, VariableTransport

__all__ = ["names", "get", "describe", "descriptions", "parameters", "problem_class"]

_CLASSES = (CircleProduct, SinCos, JacobianRegularization, Convection, RotatingCone,
            VariableTransport, EulerSmooth, Sod, Lax, RiemannProblem, IsentropicVortex,
            Poisson1D, Wave1D, Burgers1D, AllenCahn, KdV, KuramotoSivashinsky)

_REGISTRY: dict[str, type[ZooProblem]] = {cls.name: cls for cls in _CLASSES}


def names() -> list[str]:
    """The registered problem names, sorted."""
    return sorted(_REGISTRY)


def problem_class(name: str) -> type[ZooProblem]:
    """The class registered under ``name``.

    Raises:
        TypeError: ``name`` is not a string.
        ValueError: unknown name; the message lists the registered names.
    """
    if not isinstance(name, str):
        raise TypeError(f"name: expected a problem name (str), got {type(name).__name__}")
    try:
        return _REGISTRY[name]
    except KeyError:
        close = difflib.get_close_matches(name, list(_REGISTRY), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(f"unknown problem {name!r}{hint}; available problems: "
                         f"{', '.join(names())}") from None


def parameters(name: str) -> dict[str, Any]:
    """The parameters problem ``name`` accepts, name -> default value."""
    sig = inspect.signature(problem_class(name).__init__)
    return {p.name: p.default for p in sig.parameters.values()
            if p.kind is inspect.Parameter.KEYWORD_ONLY}


def get(name: str, **params: Any) -> ZooProblem:
    """An instance of problem ``name`` with the given parameters (the others at their defaults).

    Example: ``problems.get("convection", beta=30)``.

    Raises:
        ValueError: unknown problem name (the message lists the available ones).
        ParameterError (a TypeError and a ValueError): an unknown parameter name (the message lists
            the accepted ones).
        TypeError / ValueError: an invalid parameter value (the message names the parameter).
    """
    accepted = parameters(name)
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        listing = ", ".join(f"{k}={v!r}" for k, v in accepted.items()) or "(none)"
        raise ParameterError(f"{name}: unknown parameter(s) {', '.join(unknown)}; accepted "
                             f"parameters (with defaults): {listing}")
    try:
        return _REGISTRY[name](**params)
    except OverflowError as exc:  # a parameter the class's own checks let through
        raise ValueError(f"{name}: a parameter is too large ({exc}); parameters: "
                         f"{', '.join(f'{k}={v!r}' for k, v in params.items())}") from None


def describe(name: str) -> str:
    """A one-line description of problem ``name`` (for ``pinnk problems``)."""
    return problem_class(name).description


def descriptions() -> dict[str, str]:
    """Every problem's one-line description, name -> line, in sorted name order."""
    return {k: _REGISTRY[k].description for k in names()}
