"""``pinnk paper EXPERIMENT``: the source paper's propositions reproduced, one command each.

Every experiment is a module of this package listed in :data:`EXPERIMENT_MODULES`. It defines

- ``NAME`` (the command-line name), ``TITLE`` (one line) and ``CLAIM`` (what the paper states,
  with its numbers);
- ``run(ctx: Context) -> Result``: the measurement, in quick mode (under a minute on 2 CPU cores,
  run by the tests) or full mode (the paper's setup), see :class:`solvers.paper._common.Context`.

:func:`run_experiment` writes ``NAME.json`` (data and the verdict), one PNG per figure and
``NAME.md`` (the summary, with the command that regenerates it) into the output folder, each
atomically.
"""

from __future__ import annotations

import importlib

from ._common import Context, Result, run_experiment

# Module names (relative to this package) of the experiments, in the order they are listed.
EXPERIMENT_MODULES = ("prop1", "prop2", "prop3", "prop4", "seed002", "batches")


def experiments() -> dict:
    """``{NAME: module}`` of the experiments that are present, in listing order."""
    out = {}
    for mod in EXPERIMENT_MODULES:
        try:
            module = importlib.import_module(f"{__name__}.{mod}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{mod}":
                raise
            continue
        out[module.NAME] = module
    return out


def get(name: str):
    """The experiment module called ``name``; ValueError listing the names otherwise."""
    found = experiments()
    if not isinstance(name, str) or name not in found:
        raise ValueError(f"experiment: unknown name {name!r}; expected one of "
                         f"{', '.join(found)}")
    return found[name]


__all__ = ["Context", "Result", "run_experiment", "experiments", "get", "EXPERIMENT_MODULES"]
