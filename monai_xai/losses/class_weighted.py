"""Cross-entropy with optional per-class weights, shared by every classifier loss of the bundles."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["WeightedCrossEntropy"]


class WeightedCrossEntropy(nn.Module):
    """``F.cross_entropy`` with ``class_weights`` (None: unweighted), computed in float32.

    The weights stay a plain tensor moved to the logits' device on each call rather than a buffer, so a loss
    that is never ``.to(device)``-ed still works on a GPU; float32 because a weight tensor must match the
    logits' dtype and bfloat16 logits would round the weights.

    Args:
        class_weights: one weight per class (e.g. ``n / (k * count)``, see
            :class:`~monai_xai.data.ClassBalance`), or None.
    """

    def __init__(self, class_weights: Sequence[float] | None = None) -> None:
        super().__init__()
        self.class_weights = (
            None if class_weights is None else torch.as_tensor(class_weights, dtype=torch.float32)
        )

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        weight = None if self.class_weights is None else self.class_weights.to(logits.device)
        return F.cross_entropy(logits.float(), labels, weight=weight)
