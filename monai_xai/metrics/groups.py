"""Shortcut robustness: accuracy per group of class x (a planted marker agrees / disagrees with the label),
worst-group accuracy, and the share of a map's energy on the marker.

A classifier that reads a marker instead of the lesion is right wherever the marker tells the truth and
wrong wherever it lies, so its average accuracy hides the failure on a test set where the marker is random,
while its accuracy on the worst of the four groups shows it: the standard score of shortcut robustness
(DecoyMNIST, ISIC with patches). The marker's place is given per image as a box in fractions of the image
(``"x0 y0 x1 y1"``, x along the columns), so that it applies to a map at any resolution.

Plain numpy, so that results files can be collected without torch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = [
    "box_coverage",
    "group_accuracy",
    "group_ids",
    "group_name",
    "marker_energy",
    "parse_box",
    "worst_group_accuracy",
]


def group_ids(labels: Any, agrees: Any) -> np.ndarray:
    """One id per image, ``2 * label + agrees``: what stratified resampling keeps the counts of."""
    labels = np.asarray(labels, dtype=np.int64).reshape(-1)
    agrees = np.asarray(agrees).reshape(-1).astype(bool)
    if labels.shape != agrees.shape:
        raise ValueError(f"labels {labels.shape} and agrees {agrees.shape} must have one entry per image")
    return 2 * labels + agrees.astype(np.int64)


def group_name(label: int, agrees: bool, class_names: Sequence[str] | None = None) -> str:
    """``"<class>_agrees"`` or ``"<class>_disagrees"``: the key of a group in reports."""
    name = class_names[label] if class_names is not None else str(label)
    return f"{name}_{'agrees' if agrees else 'disagrees'}"


def group_accuracy(
    labels: Any, preds: Any, agrees: Any, class_names: Sequence[str] | None = None
) -> dict[str, float]:
    """Accuracy of each non-empty group (class x marker agrees), keyed by :func:`group_name`, in class
    order, agreeing group first."""
    labels = np.asarray(labels, dtype=np.int64).reshape(-1)
    preds = np.asarray(preds, dtype=np.int64).reshape(-1)
    ids = group_ids(labels, agrees)
    if preds.shape != labels.shape:
        raise ValueError(f"preds {preds.shape} and labels {labels.shape} must have one entry per image")
    found = {}
    for label in sorted(set(labels.tolist())):
        for agree in (True, False):
            inside = ids == 2 * label + int(agree)
            if inside.any():
                found[group_name(label, agree, class_names)] = float((preds[inside] == label).mean())
    return found


def worst_group_accuracy(labels: Any, preds: Any, agrees: Any) -> float:
    """The lowest accuracy over the non-empty groups of :func:`group_accuracy`; NaN without images."""
    accuracies = group_accuracy(labels, preds, agrees)
    return min(accuracies.values()) if accuracies else math.nan


def parse_box(text: str | Sequence[float]) -> tuple[float, float, float, float]:
    """``"x0 y0 x1 y1"`` (fractions of the image, x along the columns) as four floats, checked."""
    values = text.split() if isinstance(text, str) else list(text)
    try:
        box = tuple(float(v) for v in values)
    except ValueError as error:
        raise ValueError(f"marker box {text!r}: four numbers 'x0 y0 x1 y1' expected") from error
    if len(box) != 4 or not (0 <= box[0] < box[2] <= 1 and 0 <= box[1] < box[3] <= 1):
        raise ValueError(f"marker box {text!r}: expected 0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1")
    return box  # type: ignore[return-value]


def _axis_coverage(n: int, low: float, high: float) -> np.ndarray:
    """Share of each of ``n`` equal cells of [0, 1] that lies inside [low, high]."""
    edges = np.linspace(0.0, 1.0, n + 1)
    return np.clip(np.minimum(edges[1:], high) - np.maximum(edges[:-1], low), 0.0, None) * n


def box_coverage(shape: Sequence[int], box: str | Sequence[float]) -> np.ndarray:
    """(H, W) share of each map cell covered by ``box``: exact at any map resolution, so that a 16x16
    attention map and a 128x128 input gradient are judged on the same region."""
    height, width = (int(s) for s in shape)
    x0, y0, x1, y1 = parse_box(box)
    return np.outer(_axis_coverage(height, y0, y1), _axis_coverage(width, x0, x1))


def marker_energy(maps: Any, boxes: Sequence[str | Sequence[float]]) -> np.ndarray:
    """Per map, the share of its energy (negative values count as 0) inside its own box, shape (B,).

    ``maps`` (B, [1,] H, W); a box per map. The share a map spread evenly would put there is the box's
    area. NaN for a map that is zero everywhere.
    """
    maps = np.asarray(maps, dtype=np.float64)
    if maps.ndim == 4:
        if maps.shape[1] != 1:
            raise ValueError(f"maps must have one channel, got shape {maps.shape}")
        maps = maps[:, 0]
    if maps.ndim != 3 or len(maps) != len(boxes):
        raise ValueError(f"expected (B, [1,] H, W) maps and one box per map, got {maps.shape}, {len(boxes)}")
    energy = np.clip(maps, 0.0, None)
    found = np.full(len(maps), math.nan)
    for i, (one, box) in enumerate(zip(energy, boxes)):
        total = one.sum()
        if total > 0:
            found[i] = float((one * box_coverage(one.shape, box)).sum() / total)
    return found
