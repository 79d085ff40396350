"""Folder, file and run names assembled from config values, so bundle configs build them as ``_target_``
components instead of ``$`` expressions (MONAI passes a component's arguments by keyword only)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

__all__ = ["join_name", "join_path"]


def join_path(parts: Sequence[str | os.PathLike]) -> str:
    """``os.path.join`` of ``parts`` as a string, e.g. ``"parts": ["@output_dir", "checkpoints"]``.

    Args:
        parts: a folder followed by the names below it.
    """
    if not parts:
        raise ValueError("join_path needs at least one part")
    return os.path.join(*(os.fspath(part) for part in parts))


def join_name(parts: Sequence[Any], sep: str = "_", suffix: str = "") -> str:
    """``parts`` joined by ``sep``, unset parts (None or empty) left out, then ``suffix``.

    An optional part names a variant only when it is set: ``["gan", "@gan_variant"]`` gives ``gan`` or
    ``gan_guided``. A list inside ``parts`` is joined without a separator, so a value keeps its label:
    ``["ndis", "@n_dis"]`` gives ``ndis5``.

    Args:
        parts: strings, numbers, None or "" (left out), or lists of them (joined without separator).
        sep: separator between the parts.
        suffix: appended as is, e.g. a file extension ``.pt``.
    """

    def text(part: Any) -> str:
        if isinstance(part, (list, tuple)):
            return "".join(str(p) for p in part if p is not None)
        return str(part)

    return sep.join(text(part) for part in parts if part is not None and part != "") + suffix
