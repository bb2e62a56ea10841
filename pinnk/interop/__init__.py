"""Bridges between pinnk and other PINN libraries.

Submodules (imported lazily, on first attribute access, so that ``import pinnk`` and
``import pinnk.interop`` stay fast and never import a third-party library):

- :mod:`pinnk.interop.deepxde`: DeepXDE (PyTorch backend) geometries as pinnk domains, DeepXDE
  models as pinnk terms, their NTK blocks, trace weights and angles, a DeepXDE callback that
  applies the NTK trace rule to ``model.loss_weights`` during ``model.train``, and Gauss–Newton
  training of a compiled DeepXDE model on its own loss. Importing it imports
  DeepXDE and sets ``DDE_BACKEND=pytorch`` in the environment unless it is already set.
"""

from __future__ import annotations

import importlib

__all__ = ["deepxde"]

_SUBMODULES = {"deepxde"}


def __getattr__(name: str):
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | _SUBMODULES)
