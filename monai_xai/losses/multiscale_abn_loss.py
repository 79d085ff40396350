"""Loss of the multi-scale ABN: every stage's branch losses plus the fused prediction's cross-entropy.

L_all = sum_l (L_att,l + L_per,l + lambda_l * L_map,l) + w_fuse * L_fuse, with L_map,l the mean squared
error between the stage's map M_l and the (expert-corrected) reference map reduced to that stage's
resolution, counted only for samples that have one. L_fuse trains the layer that fuses the stages.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch
from torch import nn

from monai_xai.losses.abn_loss import AttentionMapLoss
from monai_xai.losses.class_weighted import WeightedCrossEntropy

if TYPE_CHECKING:
    from monai_xai.networks.nets.multiscale_abn import MultiScaleABNOutput

__all__ = ["MultiScaleABNLoss"]


class MultiScaleABNLoss(nn.Module):
    """Sum of the stages' attention, perception and map losses and the fused prediction's cross-entropy.

    Args:
        map_weights: lambda_l per stage (finest first); one number applies to every stage.
        fuse_weight: weight of the fused prediction's cross-entropy.

    ``forward(output, target, mask, has_mask)`` has the signature of :class:`~monai_xai.losses.ABNLoss`, so
    the same trainer runs it; without masks the map terms are zero. The parts returned for logging are
    ``loss``, ``loss_att`` and ``loss_per`` (summed over stages), ``loss_fuse``, and with masks
    ``loss_map`` (the unweighted sum over stages) and ``loss_map_<l>`` per stage.
    """

    def __init__(
        self,
        map_weights: float | Sequence[float] = 1.0,
        fuse_weight: float = 1.0,
        class_weights: Sequence[float] | None = None,
    ) -> None:
        super().__init__()
        self.map_weights = map_weights
        self.fuse_weight = float(fuse_weight)
        self.cross_entropy = WeightedCrossEntropy(class_weights)
        self.map_loss = AttentionMapLoss()

    def _stage_weights(self, n_stages: int) -> list[float]:
        if isinstance(self.map_weights, (int, float)):
            return [float(self.map_weights)] * n_stages
        weights = [float(w) for w in self.map_weights]
        if len(weights) != n_stages:
            raise ValueError(f"map_weights has {len(weights)} entries for a network with {n_stages} stages")
        return weights

    def forward(
        self,
        output: MultiScaleABNOutput,
        target: torch.Tensor,
        mask: torch.Tensor | None = None,
        has_mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, dict[str, float]]:
        if not hasattr(output, "stage_attention_maps"):
            raise TypeError(
                f"MultiScaleABNLoss needs a MultiScaleABNOutput (stage_* fields), got {type(output).__name__}"
            )
        labels = torch.as_tensor(target, device=output.perception_logits.device).reshape(-1).long()
        weights = self._stage_weights(len(output.stage_attention_maps))
        attention = sum(self.cross_entropy(logits, labels) for logits in output.stage_attention_logits)
        perception = sum(self.cross_entropy(logits, labels) for logits in output.stage_perception_logits)
        fuse = self.cross_entropy(output.perception_logits, labels)
        total = attention + perception + self.fuse_weight * fuse
        parts = {"loss_att": attention.item(), "loss_per": perception.item(), "loss_fuse": fuse.item()}
        if mask is not None:
            map_terms = [self.map_loss(m, mask, has_mask) for m in output.stage_attention_maps]
            total = total + sum(w * term for w, term in zip(weights, map_terms))
            parts["loss_map"] = sum(term.item() for term in map_terms)
            parts.update({f"loss_map_{i}": term.item() for i, term in enumerate(map_terms)})
        parts["loss"] = total.item()
        return total, parts
