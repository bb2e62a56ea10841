"""Input checks shared by the public API: every message names the argument and what was expected."""

from __future__ import annotations

import contextlib
import functools
import math
import numbers
import os
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


def as_tensor_arg(value: Any, name: str, expected: str, *,
                  dtype: torch.dtype | None = None) -> torch.Tensor:
    """``torch.as_tensor(value)`` as a floating tensor, or a TypeError naming ``name`` (torch's
    own message for a string or an object says only "invalid data type 'str'")."""
    if isinstance(value, (str, bytes)):
        raise TypeError(f"{name}: expected {expected}, got {type(value).__name__} {value!r}")
    try:
        t = torch.as_tensor(value)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise TypeError(f"{name}: expected {expected}, got {type(value).__name__}") from exc
    if t.dtype == torch.bool or t.is_complex():
        raise TypeError(f"{name}: expected {expected}, got a tensor of {t.dtype}")
    if not t.is_floating_point():
        t = t.to(dtype or torch.get_default_dtype())
    return t


def first_nonfinite(t: torch.Tensor) -> int | None:
    """The first row (index along dim 0) of ``t`` holding a NaN or Inf, or None when all are
    finite (one device synchronisation)."""
    bad = ~torch.isfinite(t.detach())
    if t.ndim > 1:
        bad = bad.reshape(t.shape[0], -1).any(dim=1)
    if not bool(bad.any()):
        return None
    return int(bad.reshape(-1).nonzero()[0]) if t.ndim else 0


def check_finite_parameters(model: torch.nn.Module, name: str = "model") -> None:
    """Raise a ValueError naming the first parameter of ``model`` that holds a NaN or Inf."""
    params = [(k, p) for k, p in model.named_parameters() if p.is_floating_point()]
    if not params:
        return
    with torch.no_grad():
        finite = torch.stack([torch.isfinite(p).all() for _, p in params])
    if not bool(finite.all()):
        k = int((~finite).nonzero()[0])
        raise ValueError(f"{name}: parameter {params[k][0]!r} contains NaN or Inf; the model "
                         f"diverged or was loaded from a damaged file")


def check_float_dtype(dtype: torch.dtype, name: str, what: str) -> None:
    """Raise a ValueError unless ``dtype`` is float32 or float64 (half precision is too coarse
    for derivatives and kernels)."""
    if dtype not in (torch.float32, torch.float64):
        raise ValueError(f"{name}: {what} needs float32 or float64 parameters, got {dtype}; "
                         f"convert the model with .float() or .double()")


def check_model_input(model: Any, x: torch.Tensor, name: str = "points", *,
                      probe: bool = False) -> None:
    """Raise a ValueError naming ``name`` when ``model`` cannot take the points ``x`` (n, d).

    A model that declares its input width (an integer ``in_dim``, as :class:`pinnk.MLP` does) is
    compared with d at no cost; with ``probe=True`` any other model is evaluated at one row of
    ``x`` (use it once per set of points, not per step).
    """
    d_in = getattr(model, "in_dim", None)
    if isinstance(d_in, int) and not isinstance(d_in, bool):
        if x.ndim == 2 and x.shape[1] != d_in:
            raise ValueError(f"{name}: the model takes {d_in} input coordinate(s), got points of "
                             f"dimension {x.shape[1]} (shape {tuple(x.shape)}); the points or "
                             f"the model belong to another problem")
        return
    if probe:
        err = input_error(model, x, None, name)
        if err is not None:
            raise err


def input_error(model: Any, x: torch.Tensor, exc: BaseException | None,
                name: str = "points") -> BaseException | None:
    """The error to raise for ``exc``, raised while evaluating ``model`` at ``x``: a ValueError
    naming ``name`` when ``model`` cannot even take one row of ``x`` (the widths do not match),
    else ``exc`` itself. Called only after a failure, so the evaluation itself costs nothing."""
    if not callable(model) or x.ndim != 2 or x.shape[0] == 0:
        return exc
    row = x[:1]
    p = next(iter(model.parameters()), None) if isinstance(model, torch.nn.Module) else None
    if p is not None and p.is_floating_point():
        row = row.to(dtype=p.dtype, device=p.device)
    try:
        with torch.no_grad():
            model(row)
    except (RuntimeError, ValueError) as probe:
        return ValueError(f"{name}: the model cannot be evaluated at points of dimension "
                          f"{x.shape[1]} (shape {tuple(x.shape)}): {' '.join(str(probe).split())}")
    return exc


def check_model_io(model: torch.nn.Module, in_dim: int, out_dim: int, name: str = "model",
                   what: str = "the problem") -> None:
    """Evaluate ``model`` at one point of dimension ``in_dim`` and raise a ValueError naming
    ``name`` unless it returns ``out_dim`` outputs: a model made for another problem is refused
    before any work."""
    dtype, device = model_dtype_device(model)
    d_in = getattr(model, "in_dim", None)
    if isinstance(d_in, int) and not isinstance(d_in, bool) and d_in != in_dim:
        raise ValueError(f"{name}: the model takes {d_in} input coordinate(s), {what} has "
                         f"{in_dim}")
    x = torch.zeros(1, in_dim, dtype=dtype, device=device)
    try:
        with torch.no_grad():
            y = model(x)
    except (RuntimeError, ValueError) as exc:
        raise ValueError(f"{name}: cannot evaluate the model at a point of {what} (dimension "
                         f"{in_dim}): {' '.join(str(exc).split())}") from None
    if not isinstance(y, torch.Tensor):
        raise TypeError(f"{name}: the model must return a tensor, got {type(y).__name__}")
    outs = 1 if y.ndim == 1 else (y.shape[-1] if y.ndim == 2 else None)
    if outs is None or y.shape[0] != 1 or outs != out_dim:
        raise ValueError(f"{name}: the model returns shape {tuple(y.shape)} for one point; "
                         f"{what} has {out_dim} output(s), so expected (1, {out_dim})")


# ------------------------------------------------------------------------------------- memory
def format_bytes(b: float) -> str:
    """A byte count in B, KiB, MiB, GiB or TiB (one decimal)."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(b) < 1024:
            return f"{b:.1f} {unit}"
        b /= 1024
    return f"{b:.1f} TiB" if abs(b) < 1e4 else f"{b:.3g} TiB"


def available_memory(device: torch.device) -> int:
    """Bytes a single result may take on ``device``: 80% of the free GPU memory, or half of the
    free RAM (4 GiB when unknown)."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(0.8 * free)
    try:
        return int(0.5 * os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return 4 << 30


def memory_size(device: torch.device) -> int | None:
    """The total memory of ``device`` (physical RAM for the CPU), or None when unknown."""
    if device.type == "cuda":
        return int(torch.cuda.get_device_properties(device).total_memory)
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return None


def check_memory(need: float, device: torch.device, name: str, what: str, hint: str) -> None:
    """Raise a ValueError naming ``name`` when ``need`` bytes (a lower bound of what ``what``
    takes) exceed the whole memory of ``device``: such a request can only fail, or thrash, and
    is refused before anything is allocated."""
    total = memory_size(device)
    if total is not None and need > total:
        raise ValueError(f"{name}: {what} needs at least {format_bytes(need)}, more than the "
                         f"{format_bytes(total)} of memory on {device.type}; {hint}")


# ------------------------------------------------------------------ the global default device
def default_device() -> torch.device:
    """The device torch's factory functions use now (``torch.set_default_device``; DeepXDE's
    PyTorch backend makes it CUDA on import where a GPU is present)."""
    return torch.empty(0).device


def draw_device(generator: torch.Generator | None) -> torch.device:
    """The device a random draw from ``generator`` runs on: the generator's own, and the CPU
    (torch's global CPU generator) for None — never the global default device, so that a seeded
    draw gives the same numbers whatever that is."""
    return torch.device("cpu") if generator is None else generator.device


def random_permutation(n: int, generator: torch.Generator | None) -> torch.Tensor:
    """A random permutation of range(n), int64 on the CPU, drawn on :func:`draw_device` (so a
    seed gives the same permutation whatever the default device is)."""
    return torch.randperm(n, generator=generator, device=draw_device(generator)).cpu()


def host_factories():
    """A context in which torch's factory functions create CPU tensors, as they do by default.

    pinnk draws its samples and builds its bookkeeping tensors on the CPU and moves what the
    model needs to the model's device; under a non-CPU global default device (DeepXDE sets one
    on import) the context keeps that so. Where the default is the CPU already it is a no-op
    (a device context intercepts every torch call)."""
    if default_device().type == "cpu":
        return contextlib.nullcontext()
    return torch.device("cpu")


def on_host(fn):
    """Decorator: run ``fn`` inside :func:`host_factories`."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with host_factories():
            return fn(*args, **kwargs)
    return wrapper
