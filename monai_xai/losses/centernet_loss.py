"""CenterNet's training loss: penalty-reduced focal loss on the heatmap, L1 on size and offset."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["CenterNetLoss", "penalty_reduced_focal_loss"]


def penalty_reduced_focal_loss(
    logits: torch.Tensor, target: torch.Tensor, alpha: float = 2.0, beta: float = 4.0
) -> torch.Tensor:
    """Focal loss of CornerNet/CenterNet, summed over cells and divided by the number of peaks (at least 1).

    Cells near a peak (target close to 1) are penalised less for a high score by ``(1 - target)**beta``,
    since a box centred there would still overlap the true box well.
    """
    logits = logits.float()
    log_p, log_not_p = F.logsigmoid(logits), F.logsigmoid(-logits)
    p = log_p.exp()
    positive = target.eq(1).float()
    pos_loss = -((1 - p) ** alpha) * log_p * positive
    neg_loss = -((1 - target) ** beta) * p**alpha * log_not_p * (1 - positive)
    num_pos = positive.sum().clamp(min=1.0)
    return (pos_loss.sum() + neg_loss.sum()) / num_pos


class CenterNetLoss(nn.Module):
    """``heatmap_weight * focal + size_weight * L1(size) + offset_weight * L1(offset)``.

    ``forward(output, targets)`` takes the network's dict (``heatmap`` logits, ``size``, ``offset``) and
    :func:`~monai_xai.detection.encode_centernet_targets`'s dict, and returns ``(loss, parts)`` with the
    components as floats for logging. L1 terms count only cells that carry a box, averaged per box.
    """

    def __init__(self, heatmap_weight: float = 1.0, size_weight: float = 0.1, offset_weight: float = 1.0):
        super().__init__()
        self.heatmap_weight, self.size_weight, self.offset_weight = heatmap_weight, size_weight, offset_weight

    def forward(
        self, output: dict[str, torch.Tensor], targets: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, dict[str, float]]:
        mask = targets["mask"]
        num_boxes = mask.sum().clamp(min=1.0)
        heat = penalty_reduced_focal_loss(output["heatmap"], targets["heatmap"])
        size = (F.l1_loss(output["size"].float(), targets["size"], reduction="none") * mask).sum() / num_boxes
        offset = (
            F.l1_loss(output["offset"].float(), targets["offset"], reduction="none") * mask
        ).sum() / num_boxes
        loss = self.heatmap_weight * heat + self.size_weight * size + self.offset_weight * offset
        parts = {"loss_heatmap": heat.item(), "loss_size": size.item(), "loss_offset": offset.item()}
        return loss, parts
