"""Batch detection items: images stack, box lists of different lengths stay lists."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from monai.data import list_data_collate
from monai.utils import TraceKeys

__all__ = ["BOXES", "LABELS", "detection_collate"]

#: Item keys of the boxes ``(N, 4)`` in ``xyxy`` pixel coordinates and their class indices ``(N,)``.
BOXES = "boxes"
LABELS = "labels"
_LIST_KEYS = (BOXES, LABELS)
# MONAI's box transforms record their operations per box key; the records differ in length between items.
_DROPPED = tuple(f"{key}{TraceKeys.KEY_SUFFIX}" for key in _LIST_KEYS)


def detection_collate(batch: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """MONAI's collation for everything but boxes and labels, which become per-image lists of tensors.

    Images without boxes are valid negatives: their entries are ``(0, 4)`` and ``(0,)`` tensors. The
    transform records of the box keys are dropped (boxes are not inverted through the batch).
    """
    skip = _LIST_KEYS + _DROPPED
    rest = list_data_collate([{k: v for k, v in item.items() if k not in skip} for item in batch])
    if BOXES in batch[0]:
        rest[BOXES] = [torch.as_tensor(item[BOXES]).float().reshape(-1, 4) for item in batch]
    if LABELS in batch[0]:
        rest[LABELS] = [torch.as_tensor(item[LABELS]).long().reshape(-1) for item in batch]
    return rest
