"""Input checks of the numpy reference solvers (messages name the argument)."""

from __future__ import annotations

import math
import numbers

import numpy as np


def real_scalar(name: str, value) -> float:
    """Return ``value`` as a finite Python float or raise TypeError/ValueError naming ``name``."""
    if isinstance(value, np.ndarray) and value.ndim == 0:
        if value.dtype.kind not in "iuf":
            raise TypeError(f"{name} must be a real number, got an array of dtype {value.dtype}")
        value = value.item()
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    v = float(value)
    if not math.isfinite(v):
        raise ValueError(f"{name} must be finite, got {v!r}")
    return v


def positive_int(name: str, value) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be a positive integer, got {type(value).__name__}")
    if int(value) < 1:
        raise ValueError(f"{name} must be a positive integer, got {int(value)}")
    return int(value)


def as_real_array(name: str, value) -> np.ndarray:
    """Convert ``value`` to a finite float64 array or raise TypeError/ValueError naming ``name``."""
    arr = np.asarray(value)
    if arr.dtype.kind not in "iuf":
        raise TypeError(f"{name} must be a real numeric array_like, got dtype {arr.dtype}")
    arr = arr.astype(np.float64, copy=False)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must contain only finite values (no NaN/inf)")
    return arr


def space_time(x, t) -> tuple:
    """Finite float64 arrays ``x`` and ``t`` broadcast to one shape, with ``t >= 0`` everywhere
    (the reference solutions start at t = 0); errors name the argument."""
    x = as_real_array("x", x)
    t = as_real_array("t", t)
    if np.any(t < 0.0):
        raise ValueError("t must be >= 0 everywhere (the solution starts at t = 0)")
    try:
        return tuple(np.broadcast_arrays(x, t))
    except ValueError:
        raise ValueError(f"x and t must broadcast to a common shape, got x {x.shape} and "
                         f"t {t.shape}") from None
