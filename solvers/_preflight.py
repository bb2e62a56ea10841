"""Checks at the start of a run, before anything large is allocated or any step is taken.

* :func:`check_run_size`: a lower bound of the memory the network, one training step and the NTK
  diagnostics need, compared with the device's memory: a request that can only fail (or thrash
  for minutes before failing) is refused at once with the size it would need.
* :func:`check_model_fits`: a model given for another problem (other input or output count) is
  refused before step 0, not after training, in the export.
* :func:`warn_unused_options`: options that would silently do nothing in this run are reported
  with ``warnings.warn``. An optimizer spec takes part by defining ``warnings_for(steps) ->
  list[str]`` (see :class:`solvers.AdamLBFGS`); the trainer calls this one function.
"""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Mapping
from typing import Any

import torch

import pinnk
from pinnk._validation import available_memory, check_memory, check_model_io, format_bytes

# Python objects of one layer (two Parameters, their tensors, the ParameterList slots): a lower
# bound, so that a depth of 10^8 is refused before a loop builds 10^8 layers.
_LAYER_OVERHEAD = 1024


def _is_int(v: Any) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool) and v >= 1


def _mlp_size(in_dim: int, out_dim: int, width: Any, depth: Any) -> tuple[int, int, int] | None:
    """(parameters, hidden units, layers) of an MLP, computed without building its width list;
    None when the spec is not valid (the model builder then names the bad option)."""
    if _is_int(width) and _is_int(depth):
        w, L = int(width), int(depth)
        params = (in_dim + 1) * w + (L - 1) * (w + 1) * w + (w + 1) * out_dim
        return params, L * w, L + 1
    if isinstance(width, (list, tuple)) and width and all(_is_int(w) for w in width):
        sizes = [in_dim] + [int(w) for w in width] + [out_dim]
        params = sum((a + 1) * b for a, b in zip(sizes[:-1], sizes[1:]))
        return params, sum(sizes[1:-1]), len(sizes) - 1
    return None


def check_run_size(problem: pinnk.Problem, model_cfg: Mapping | None,
                   model: torch.nn.Module | None, counts: Mapping[str, int], dtype: torch.dtype,
                   device: torch.device, probe_points: int = 0) -> None:
    """Refuse a run whose network, points or NTK diagnostics cannot fit in memory.

    Args:
        problem: the problem (input and output counts, number of terms).
        model_cfg: the spec of the network to build (width, depth), or None for ``model``.
        model: a given network (its parameters are counted), or None.
        counts: the points per term.
        dtype, device: of the run.
        probe_points: points per term of the NTK diagnostics (0: none).

    Raises:
        ValueError naming ``model`` (width, depth), ``points`` or ``probe_points``, with the
        memory it would need.
    """
    itemsize = torch.empty((), dtype=dtype).element_size()
    n_points = sum(int(v) for v in counts.values())
    if model_cfg is not None:
        size = _mlp_size(problem.in_dim, problem.out_dim, model_cfg.get("width"),
                         model_cfg.get("depth"))
        if size is None:
            return
        params, hidden, layers = size
        what = (f"a network of width {model_cfg.get('width')} and depth "
                f"{model_cfg.get('depth')} ({params:.3g} parameters)")
    else:
        params = sum(p.numel() for p in model.parameters())
        hidden, layers = problem.in_dim + problem.out_dim, 1
        what = f"the model ({params:.3g} parameters)"
    param_bytes = 2 * params * itemsize + _LAYER_OVERHEAD * layers  # values and gradients
    check_memory(param_bytes, device, "model", what, "choose a smaller width or depth")
    step_bytes = param_bytes + n_points * hidden * itemsize  # one activation per unit and point
    check_memory(step_bytes, device, "points", f"one training step on {n_points} points through "
                 f"{hidden} hidden units", "use fewer points or a smaller network")
    if probe_points:
        n = len(counts) * int(probe_points)
        need = 8 * n * n  # the float64 kernel matrix of the diagnostics
        limit = available_memory(device)
        if need > limit:
            raise ValueError(f"probe_points: the NTK diagnostics on {probe_points} points per "
                             f"term build a {n}×{n} float64 kernel matrix of "
                             f"{format_bytes(need)}, more than the {format_bytes(limit)} "
                             f"available; use fewer probe points, or ntk_every=0 for no "
                             f"diagnostics")


def check_model_fits(model: torch.nn.Module, problem: pinnk.Problem) -> None:
    """Refuse a model whose input or output count differs from the problem's (one evaluation
    at one point)."""
    check_model_io(model, problem.in_dim, problem.out_dim, "model", f"problem {problem.name!r}")


def warn_unused_options(trainer) -> None:
    """``warnings.warn`` for each option of ``trainer`` that would have no effect in its run."""
    messages = []
    spec_warnings = getattr(trainer.optimizer, "warnings_for", None)
    if callable(spec_warnings):
        messages += list(spec_warnings(trainer.steps))
    if trainer.resample_every >= trainer.steps:
        messages.append(f"resample_every: {trainer.resample_every} >= steps={trainer.steps}, so "
                        f"the collocation points are never redrawn")
    for msg in messages:
        warnings.warn(msg, UserWarning, stacklevel=3)


# kind -> (required keys, optional keys) of a model's "embedding" spec
_EMBEDDINGS = {"periodic": (("dims", "periods"), ("harmonics", "keep_input")),
               "fourier": ((), ("features", "scale"))}


def check_embedding_spec(spec: Any) -> None:
    """Raise a ValueError/TypeError naming ``embedding`` when the spec of a model's input
    embedding is not a mapping with a known ``kind`` and exactly that kind's keys."""
    if not isinstance(spec, Mapping):
        raise TypeError(f"embedding: expected an object such as {{\"kind\": \"periodic\", "
                        f"\"dims\": [0], \"periods\": [1.0]}}, got {type(spec).__name__}")
    kind = spec.get("kind")
    if kind not in _EMBEDDINGS:
        raise ValueError(f"embedding: unknown kind {kind!r}; expected 'periodic' or 'fourier'")
    required, optional = _EMBEDDINGS[kind]
    missing = [k for k in required if k not in spec]
    if missing:
        raise ValueError(f"embedding: a {kind!r} embedding needs {', '.join(map(repr, required))}"
                         f"; missing {', '.join(map(repr, missing))}")
    unknown = sorted(set(spec) - {"kind", *required, *optional})
    if unknown:
        raise ValueError(f"embedding: unknown key(s) {', '.join(map(repr, unknown))} for a "
                         f"{kind!r} embedding; expected {', '.join(required + optional)}")
