"""Output folders of runs, sweeps and suites: checked before any work, one writer at a time.

* :func:`check_folder` refuses a path that is a file or lies under a file, without creating
  anything; :func:`prepare_folder` creates the folder and proves that it is writable.
* :class:`FolderLock` holds an exclusive ``fcntl.flock`` on ``DIR/.pinnk.lock`` for as long as a
  command writes into ``DIR``: a second ``pinnk train``, ``--resume``, ``pinnk bench`` or
  ``pinnk report`` into the same folder is refused with a one-line error naming the holder. The
  kernel drops the lock when its holder exits, also after a crash or a SIGKILL, so a stale lock
  file never blocks anyone (only the lock on it counts). The holder removes the file when it
  releases the lock, so a finished folder holds no lock file; a writer that locked a file which
  was removed meanwhile notices (the path no longer names its file) and tries again.
* :func:`read_checkpoint` loads a checkpoint and turns any damage (truncated file, random bytes,
  a mapping without the expected keys) into a ValueError that names the file;
  :func:`checkpoint_errors` does the same for the restore that follows.

Every error here is a ValueError whose message starts with the argument's name: the command line
reports it as one line with exit status 2 (bad input).
"""

from __future__ import annotations

import functools
import os
import socket
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

LOCK_NAME = ".pinnk.lock"

# The keys every checkpoint written by Trainer.state_dict has.
CHECKPOINT_KEYS = ("step", "model", "config", "history", "rng", "sample_gen", "points",
                   "targets", "weighting", "elapsed")


def _reason(exc: BaseException) -> str:
    text = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    return " ".join(text.split()) or type(exc).__name__


def check_folder(path: str | os.PathLike, name: str = "out") -> Path:
    """``path`` as a Path, or a ValueError naming ``name`` when it is a file or lies under a
    file (nothing is created)."""
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"{name}: {str(folder)!r} exists and is not a folder")
    for parent in folder.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ValueError(f"{name}: {str(folder)!r} lies under {str(parent)!r}, which is "
                                 f"a file, not a folder")
            break
    return folder


def prepare_folder(path: str | os.PathLike, name: str = "out") -> Path:
    """Create the folder ``path`` (with its parents) and check that a file can be written in
    it; a ValueError naming ``name`` otherwise (read-only, a file in the way, no permission).

    Called before any work, so that a command fails at once rather than after training.
    """
    folder = check_folder(path, name)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ValueError(f"{name}: cannot create the folder {str(folder)!r} "
                         f"({_reason(exc)})") from None
    probe = folder / f".write-test-{os.getpid()}.pinnk-tmp"  # see pinnk._io.is_temporary
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise ValueError(f"{name}: cannot write in the folder {str(folder)!r} "
                         f"({_reason(exc)})") from None
    return folder


def _holder_text() -> str:
    cmd = " ".join(Path(sys.argv[0]).name if k == 0 else a for k, a in enumerate(sys.argv))
    return (f"pid {os.getpid()} on {socket.gethostname()} since "
            f"{time.strftime('%Y-%m-%d %H:%M:%S')}: {cmd}")


class FolderLock:
    """An exclusive lock on a folder (``fcntl.flock`` on ``folder/.pinnk.lock``).

    Created by :func:`lock_folder`; a context manager; :meth:`release` is idempotent. The lock
    file records its holder (pid, host, start, command) for the message a refused writer gets.
    """

    def __init__(self, folder: Path, fd: int | None):
        self.folder = folder
        self._fd = fd

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        """Remove the lock file and drop the lock (closing the descriptor releases the flock).
        The file is removed while the lock is still held, so nobody can lock it in between."""
        fd, self._fd = self._fd, None
        if fd is not None:
            try:
                (self.folder / LOCK_NAME).unlink(missing_ok=True)
            except OSError:  # pragma: no cover - read-only by now: the lock still goes
                pass
            os.close(fd)

    def __enter__(self) -> "FolderLock":
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def __del__(self):  # a lock dropped without release() must not outlive its owner
        self.release()


def lock_folder(path: str | os.PathLike, name: str = "out") -> FolderLock:
    """Create and check the folder ``path`` (:func:`prepare_folder`) and lock it for this
    process. Raises a ValueError naming ``name`` and the holder when another process (or another
    lock in this one) holds it."""
    folder = prepare_folder(path, name)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX: no locking
        return FolderLock(folder, None)
    lock_path = folder / LOCK_NAME
    for _ in range(100):
        try:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o666)
        except OSError as exc:
            raise ValueError(f"{name}: cannot write in the folder {str(folder)!r} "
                             f"({_reason(exc)})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            try:
                holder = os.pread(fd, 4096, 0).decode("utf-8", "replace").strip()
            except OSError:  # pragma: no cover
                holder = ""
            os.close(fd)
            raise ValueError(f"{name}: {str(folder)!r} is in use by another run"
                             f"{f' ({holder})' if holder else ''}; wait for it to finish or "
                             f"choose another folder") from None
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(lock_path))
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)  # its holder removed the file between our open and our lock: again
    else:  # pragma: no cover - a hundred holders in a row
        raise ValueError(f"{name}: cannot lock the folder {str(folder)!r}; try again")
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, (_holder_text() + "\n").encode("utf-8"), 0)
    except OSError:  # the record is informational; the flock is what counts
        pass
    return FolderLock(folder, fd)


# -------------------------------------------------------------------------------- checkpoints
def read_checkpoint(path: str | os.PathLike, name: str = "resume") -> dict:
    """Load the checkpoint at ``path`` (on the CPU) and check that it is one written by the
    trainer; a ValueError naming ``name`` and the file for any damage (unreadable, truncated,
    not a checkpoint, missing keys)."""
    import torch

    path = Path(path)
    try:
        st = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is a damaged checkpoint
        size = path.stat().st_size if path.is_file() else None
        first = " ".join(str(exc).split()).split(". ")[0].rstrip(".")[:200]  # torch's are long
        what = "is empty" if size == 0 else f"cannot be read ({type(exc).__name__}: {first})"
        raise ValueError(f"{name}: the checkpoint {str(path)!r} {what}; it is damaged (a copy "
                         f"cut short?) and the run cannot be resumed from it") from None
    if not isinstance(st, Mapping):
        raise ValueError(f"{name}: {str(path)!r} is not a pinnk checkpoint (it holds a "
                         f"{type(st).__name__}, not the trainer's state)")
    missing = [k for k in CHECKPOINT_KEYS if k not in st]
    if missing:
        raise ValueError(f"{name}: {str(path)!r} is not a pinnk checkpoint (missing "
                         f"{', '.join(repr(k) for k in missing)})")
    if not isinstance(st["config"], Mapping):
        raise ValueError(f"{name}: {str(path)!r} is damaged: its 'config' is a "
                         f"{type(st['config']).__name__}, not a mapping")
    return dict(st)


def checkpoint_errors(method: Callable) -> Callable:
    """Decorate a ``load_checkpoint(self, path=None)`` method so that whatever a damaged
    checkpoint makes the restore raise (a size mismatch, a missing key, a wrong type) becomes a
    ValueError naming the file. ValueErrors pass unchanged."""

    @functools.wraps(method)
    def wrapper(self, path: Any = None, *args, **kwargs):
        where = path if path is not None else (
            Path(self.out) / "checkpoint.pt" if getattr(self, "out", None) else "?")
        try:
            out = method(self, path, *args, **kwargs)
            _check_optimizer_states(self)
            return out
        except ValueError:
            raise
        except (RuntimeError, KeyError, TypeError, IndexError, AttributeError) as exc:
            detail = " ".join(str(exc).split())[:300]
            raise ValueError(f"resume: the checkpoint {str(where)!r} does not fit this run "
                             f"({type(exc).__name__}: {detail})") from None

    return wrapper


# The per-parameter buffers of torch's optimizers (shape of the parameter) and L-BFGS's flat
# vectors (all parameters of the group): a restored state whose buffers have other sizes would
# fail only at the next step, deep in the optimizer.
_PER_PARAMETER = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq", "momentum_buffer", "square_avg",
                  "acc_delta", "sum")
_FLAT = ("d", "prev_flat_grad")


def _check_optimizer_states(trainer: Any) -> None:
    """Raise a RuntimeError when a torch optimizer of ``trainer`` (its Adam or L-BFGS phase)
    holds a known buffer whose size does not fit its parameters."""
    import torch

    for attr in ("adam", "lbfgs"):
        opt = getattr(trainer, attr, None)
        if not isinstance(opt, torch.optim.Optimizer):
            continue
        for group in opt.param_groups:
            total = sum(p.numel() for p in group["params"])
            for p in group["params"]:
                for key, value in opt.state.get(p, {}).items():
                    if not isinstance(value, torch.Tensor):
                        continue
                    if key in _PER_PARAMETER and value.shape != p.shape or \
                            key in _FLAT and value.numel() != total:
                        raise RuntimeError(f"the {attr} state {key!r} has shape "
                                           f"{tuple(value.shape)}, the parameters have "
                                           f"{tuple(p.shape)} ({total} values in all)")
