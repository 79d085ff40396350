"""Per-item values of a collated batch."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["batch_strings"]


def batch_strings(batch: Mapping[str, Any], key: str, n: int) -> list[str]:
    """The ``n`` items' ``key`` entries of a collated ``batch`` as strings, ``""`` where the batch has none.

    For ``"source"``, a batch without that entry falls back to the image's ``filename_or_obj`` metadata.
    A single value (not a list) is repeated for every item; a collated tensor or array of ids (integer
    patient ids) gives one string per item.
    """
    value = batch.get(key)
    if value is None and key == "source":
        image = batch.get("image")
        value = getattr(image, "meta", {}).get("filename_or_obj") if image is not None else None
    if value is None:
        return [""] * n
    if hasattr(value, "tolist") and getattr(value, "ndim", 0) > 0:
        value = value.tolist()
    return [str(v) for v in value] if isinstance(value, list | tuple) else [str(value)] * n
