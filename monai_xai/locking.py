"""Exclusive, non-blocking file locks that name their holder, for folders one process at a time may write.

No torch here: the experiment drivers import it, and rendering the READMEs must stay light.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import IO

__all__ = ["LockHeldError", "take_lock"]


class LockHeldError(Exception):
    """The lock file is held by another open file description (another process, or this one elsewhere)."""

    def __init__(self, path: Path, holder: str) -> None:
        super().__init__(f"{path}: held by {holder}")
        self.path = path
        self.holder = holder


def take_lock(path: str | os.PathLike) -> IO[str]:
    """Lock ``path`` (created if missing) without waiting and write ``pid <this process>`` into it.

    Returns the open handle: the lock lasts until it is closed or the process ends, so a crashed holder
    never leaves a stale lock. A held lock raises :class:`LockHeldError` with the holder's own line.
    """
    path = Path(path)
    handle = path.open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise LockHeldError(path, holder) from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"pid {os.getpid()}\n")
    handle.flush()
    return handle
