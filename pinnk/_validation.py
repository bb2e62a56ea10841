"""Input checks shared by the public API: every message names the argument and what was expected."""

from __future__ import annotations

import math
import numbers
from typing import Any

import torch


def as_points(points: Any, name: str = "points", *, dtype: torch.dtype | None = None,
              device: torch.device | str | None = None) -> torch.Tensor:
    """Convert ``points`` to a finite floating tensor of shape (n, d) or raise.

    Integer or array-like input is converted to ``dtype`` (default: torch's default dtype).
    """
    if isinstance(points, torch.Tensor):
        x = points
        if not x.is_floating_point():
            x = x.to(dtype or torch.get_default_dtype())
    else:
        try:
            x = torch.as_tensor(points)
        except Exception as exc:  # noqa: BLE001 - re-raised with a clear message
            raise TypeError(f"{name}: expected a tensor or array of shape (n, d), got "
                            f"{type(points).__name__}") from exc
        if not x.is_floating_point():
            x = x.to(dtype or torch.get_default_dtype())
    if dtype is not None or device is not None:
        x = x.to(dtype=dtype or x.dtype, device=device)
    if x.ndim != 2:
        raise ValueError(f"{name}: expected shape (n, d), got {tuple(x.shape)}")
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"{name}: expected at least one point and one coordinate, got shape "
                         f"{tuple(x.shape)}")
    if not bool(torch.isfinite(x).all()):
        bad = int((~torch.isfinite(x)).any(dim=1).nonzero()[0])
        raise ValueError(f"{name}: contains NaN or Inf (first at row {bad})")
    return x


def check_int(value: Any, name: str, *, minimum: int | None = None) -> int:
    """Return ``value`` as an int, raising TypeError/ValueError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name}: expected an integer, got {type(value).__name__}")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"{name}: expected an integer >= {minimum}, got {value}")
    return value


def check_float(value: Any, name: str, *, positive: bool = False,
                nonnegative: bool = False) -> float:
    """Return ``value`` as a finite float, raising TypeError/ValueError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: expected a real number, got {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name}: expected a finite number, got {value}")
    if positive and value <= 0:
        raise ValueError(f"{name}: expected a positive number, got {value}")
    if nonnegative and value < 0:
        raise ValueError(f"{name}: expected a non-negative number, got {value}")
    return value


def model_dtype_device(model: torch.nn.Module) -> tuple[torch.dtype, torch.device]:
    """The dtype and device of a model's first floating parameter (or buffer)."""
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model: expected a torch.nn.Module, got {type(model).__name__}")
    for t in list(model.parameters()) + list(model.buffers()):
        if t.is_floating_point():
            return t.dtype, t.device
    raise ValueError("model: has no floating-point parameters, so its dtype and device are unknown")
