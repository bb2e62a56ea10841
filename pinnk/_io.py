"""Atomic file writes: write to a temporary file in the same folder, fsync, then rename.

A reader (or a run killed mid-write) only ever sees the old file or the complete new one. The
temporary is named ``.<name>.<random>.pinnk-tmp<suffix>`` and created with the mode a plain
``open()`` gives (0o666 less the umask; an existing file's mode is kept), so the renamed file is as
readable as any other file its writer makes. A writer killed mid-write leaves its temporary behind:
:func:`remove_temporaries` removes them (``pinnk train --resume`` does).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import secrets
import shutil
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success it is renamed over ``path``.

    For writers that insist on a file name (meshio, matplotlib, pyvista). ``suffix`` defaults to
    the suffix of ``path`` so that writers choosing a format by extension keep working. On an
    exception the temporary file is removed and ``path`` is left untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temporary(path, path.suffix if suffix is None else suffix)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


TEMPORARY_MARK = ".pinnk-tmp"
# Temporaries of earlier versions (tempfile.mkstemp: 8 characters from [a-z0-9_]).
_LEGACY = re.compile(r"^\.(?P<name>.+)\.[a-z0-9_]{8}(?P<suffix>\.[^.]*)?$")


def _temporary(path: Path, suffix: str) -> Path:
    """Create an empty temporary file next to ``path`` with the mode a plain ``open()`` would
    give ``path`` (the umask applies through ``os.open``; an existing file's mode is kept)."""
    for _ in range(100):
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}{TEMPORARY_MARK}{suffix}")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0),
                         0o666)
        except FileExistsError:  # pragma: no cover - 2**32 names
            continue
        os.close(fd)
        try:
            os.chmod(tmp, stat.S_IMODE(os.stat(path).st_mode))
        except FileNotFoundError:
            pass
        return tmp
    raise FileExistsError(f"no free temporary name next to {str(path)!r}")  # pragma: no cover


def is_temporary(name: str) -> bool:
    """Whether the file name ``name`` is a temporary left by :func:`atomic_path` (or by an
    export writer's temporary folder): a hidden name with the ``.pinnk-tmp`` mark, or of an
    earlier version's form ``.<name>.<8 characters><suffix of name>``."""
    if not name.startswith("."):
        return False
    if TEMPORARY_MARK in name or name.startswith(".solution-export-"):
        return True
    m = _LEGACY.match(name)
    return bool(m) and (m.group("suffix") or "") == Path(m.group("name")).suffix


def remove_temporaries(folder: str | os.PathLike) -> list[Path]:
    """Remove the temporaries that writers killed mid-write left in ``folder`` (not recursive).

    Only for a folder nobody is writing into (the trainer calls it on resume, under the run
    folder's lock). Returns the removed paths.
    """
    folder = Path(folder)
    removed = []
    if not folder.is_dir():
        return removed
    for entry in sorted(folder.iterdir()):
        if not is_temporary(entry.name):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        removed.append(entry)
    return removed


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Atomically replace ``path`` with ``data``."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: str | os.PathLike, text: str) -> None:
    """Atomically replace ``path`` with ``text`` (UTF-8)."""
    write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Atomically write ``obj`` as indented JSON (NaN/Inf are written as null)."""
    write_text(path, json.dumps(_jsonable(obj), indent=2, allow_nan=False) + "\n")


def save_torch(path: str | os.PathLike, obj: Any) -> None:
    """Atomically ``torch.save`` ``obj`` to ``path``."""
    buf = io.BytesIO()
    torch.save(obj, buf)
    write_bytes(path, buf.getvalue())


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, torch.Tensor):
        return _jsonable(obj.detach().cpu().tolist())
    if hasattr(obj, "item") and callable(obj.item) and getattr(obj, "ndim", 1) == 0:
        obj = obj.item()
    if isinstance(obj, float) and (obj != obj or obj in (float("inf"), float("-inf"))):
        return None
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    if hasattr(obj, "tolist"):
        return _jsonable(obj.tolist())
    if isinstance(obj, Path):
        return str(obj)
    return repr(obj)


def write_with(path: str | os.PathLike, writer: Callable[[Path], None]) -> None:
    """Atomically produce ``path`` with ``writer(tmp_path)`` (e.g. ``fig.savefig``)."""
    with atomic_path(path) as tmp:
        writer(tmp)
