"""Atomic file writes: a reader, or a process killed mid-write, never sees a truncated file.

Every writer goes through :func:`atomic_path`: the content is written to a hidden temporary file in the
target's folder (same file system, so the final rename is atomic), which then replaces the target with
``os.replace``. The temporary name keeps the target's suffixes, so writers that pick a format from the
file name (matplotlib, PIL, nibabel) write the right one. :func:`copy_docs_figure` publishes a run's figure
into a bundle's ``docs/figures`` the same way.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = [
    "atomic_path",
    "atomic_save",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "copy_docs_figure",
]


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` to write to; on success it is renamed over ``path``.

    Parent folders are created. If the block raises, the temporary file is removed and ``path`` is left
    as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".tmp{os.getpid()}.{path.name}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically, flushed to disk before the rename; returns the path."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    return Path(path)


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` atomically (no newline translation), flushed to disk before the rename;
    returns the path."""
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    return Path(path)


def atomic_write_json(path: str | os.PathLike, obj: Any, **json_kwargs: Any) -> Path:
    """Write ``obj`` as JSON (``json.dumps(obj, **json_kwargs)``) to ``path`` atomically; returns the path."""
    return atomic_write_text(path, json.dumps(obj, **json_kwargs))


def atomic_save(obj: object, path: str | os.PathLike) -> Path:
    """``torch.save`` ``obj`` to ``path`` atomically, flushed to disk before the rename; returns the path.

    A crash mid-write leaves the previous checkpoint intact instead of a truncated file.
    """
    import torch

    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        torch.save(obj, f)
        f.flush()
        os.fsync(f.fileno())
    return Path(path)


def copy_docs_figure(source: str | os.PathLike, figures_dir: str | os.PathLike, name: str) -> str:
    """Copy a run's figure ``source`` to ``figures_dir/name`` atomically (a README never links half a PNG)
    and return its path relative to the docs folder, ``figures_dir``'s parent: the form a README's image
    link and a results file's record take, valid without the run folder. A missing ``source`` is an error
    naming it."""
    source, figures_dir = Path(source), Path(figures_dir)
    if not source.is_file():
        raise FileNotFoundError(f"{source}: no such figure to copy into {figures_dir}")
    atomic_write_bytes(figures_dir / name, source.read_bytes())
    return f"{figures_dir.name}/{name}"
