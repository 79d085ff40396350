"""How well a counterfactual explanation works: does the translation flip the classifier, and does its
attention map agree with the classifier's own saliency (Grad-CAM++)?

Map functions take (B, 1, *spatial) maps, bring the first to the second's size when they differ, and
return one value per sample.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from monai_xai.metrics.classification import confusion_matrix
from monai_xai.utils import upsample_attention

__all__ = ["before_after_confusion", "flip_rate", "map_correlation", "topk_iou"]


def flip_rate(pred_after: Any, target_class: Any) -> float:
    """Share of images whose predicted class after translation is the target class."""
    after = torch.as_tensor(pred_after).reshape(-1)
    target = torch.as_tensor(target_class).reshape(-1).to(after.device)
    if after.numel() == 0:
        return float("nan")
    return float((after == target).float().mean())


def before_after_confusion(
    labels: Any, pred_before: Any, pred_after: Any, num_classes: int = 2
) -> dict[str, np.ndarray]:
    """Confusion matrices (rows true, columns predicted) of the real images and of their translations.

    The translations' "true" class is the target class (the other class, for two classes).
    """
    labels = torch.as_tensor(labels).reshape(-1)
    targets = (labels + 1) % num_classes if num_classes == 2 else labels
    return {
        "before": confusion_matrix(labels, pred_before, num_classes),
        "after": confusion_matrix(targets, pred_after, num_classes),
    }


def _flat_pair(maps: Any, reference: Any) -> tuple[torch.Tensor, torch.Tensor]:
    reference = torch.as_tensor(reference).float()
    maps = torch.as_tensor(maps).to(device=reference.device, dtype=torch.float32)
    if maps.ndim < 3 or maps.ndim != reference.ndim or maps.shape[:2] != reference.shape[:2]:
        raise ValueError(
            f"maps must both be (B, 1, *spatial), got {tuple(maps.shape)} and {tuple(reference.shape)}"
        )
    if maps.shape[2:] != reference.shape[2:]:
        maps = upsample_attention(maps, reference.shape[2:])
    return maps.flatten(1), reference.flatten(1)


def map_correlation(maps: Any, reference: Any) -> torch.Tensor:
    """Pearson correlation of each pair of maps, shape (B,); NaN where a map is constant."""
    a, b = _flat_pair(maps, reference)
    a = a - a.mean(dim=1, keepdim=True)
    b = b - b.mean(dim=1, keepdim=True)
    denom = a.norm(dim=1) * b.norm(dim=1)
    corr = (a * b).sum(dim=1) / denom
    return torch.where(denom > 0, corr, torch.full_like(corr, float("nan")))


def _topk_mask(values: torch.Tensor, k: int) -> torch.Tensor:
    index = values.topk(k, dim=1).indices
    return torch.zeros_like(values, dtype=torch.bool).scatter_(1, index, True)


def topk_iou(maps: Any, reference: Any, fraction: float = 0.1) -> torch.Tensor:
    """IoU of the top ``fraction`` of pixels (voxels) of each map with those of its reference, shape (B,).

    Rank-based, so it compares where two maps point regardless of their scales (attention in [0, 1],
    Grad-CAM++ min-max scaled).
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must lie in (0, 1], got {fraction}")
    a, b = _flat_pair(maps, reference)
    k = max(1, round(fraction * a.shape[1]))
    top_a, top_b = _topk_mask(a, k), _topk_mask(b, k)
    return (top_a & top_b).sum(dim=1).float() / (top_a | top_b).sum(dim=1).float()
