"""Multi-scale Attention Branch Network: an attention and a perception branch at three depths.

A single ABN map lives at ``layer3``'s resolution (1/16 of the image), too coarse for small lesions. Here the
feature extractor (the same stem + layer1..layer3 as :class:`AttentionBranchNetwork`, so its weights load
from an ABN checkpoint) is tapped after each of layer1, layer2 and layer3; each tap gets its own attention
branch (map M_l at the tap's resolution) and perception branch on f_l * (1 + M_l), and the perception
branches' pooled features are concatenated for the final prediction.

The forward pass has no value-dependent control flow and resizes maps with a mode fixed by ``spatial_dims``,
so ``torch.fx`` traces it (with ``attention_map=None``, as :class:`~monai_xai.networks.PerceptionLogits`
calls it) and :func:`~monai_xai.networks.optimise_for_inference` gives it a batch-norm-folded copy.
"""

from __future__ import annotations

import os
from typing import NamedTuple

import torch
from monai.networks.layers.factories import Pool
from torch import nn

from monai_xai.networks.nets.abn import ABNOutput, AttentionBranch, external_attention_map
from monai_xai.networks.nets.resnet import (
    STAGE_WIDTHS,
    get_resnet_spec,
    make_resnet_stage,
    resnet_backbone,
    resnet_feature_stages,
)
from monai_xai.networks.pretrained import load_pretrained_weights
from monai_xai.utils import upsample_attention

__all__ = ["MultiScaleABNOutput", "MultiScaleAttentionBranchNetwork"]

#: The feature extractor's stages after which a branch pair reads the features.
TAPPED_STAGES = ("layer1", "layer2", "layer3")


class MultiScaleABNOutput(NamedTuple):
    """Outputs of :class:`MultiScaleAttentionBranchNetwork`.

    The first three fields mirror :class:`~monai_xai.networks.nets.abn.ABNOutput`, so the ABN engines,
    metrics and overlays work unchanged; the ``stage_*`` fields feed
    :class:`~monai_xai.losses.MultiScaleABNLoss`.
    """

    #: (B, num_classes) mean of the stages' attention logits.
    attention_logits: torch.Tensor
    #: (B, num_classes) the fused prediction.
    perception_logits: torch.Tensor
    #: (B, 1, *finest stage size) the stages' own maps upsampled to the finest stage and averaged.
    attention_map: torch.Tensor
    stage_attention_logits: tuple[torch.Tensor, ...]
    stage_perception_logits: tuple[torch.Tensor, ...]
    #: the stages' own maps M_l in [0, 1], each at its stage's resolution (finest first).
    stage_attention_maps: tuple[torch.Tensor, ...]

    #: the fused prediction's shape and dtype, as for :class:`~monai_xai.networks.nets.abn.ABNOutput`.
    shape = ABNOutput.shape
    dtype = ABNOutput.dtype


class MultiScaleAttentionBranchNetwork(nn.Module):
    """ABN with attention and perception branches after layer1, layer2 and layer3.

    Args:
        backbone: "resnet18", "resnet34" or "resnet50".
        spatial_dims: 2 or 3.
        in_channels: image channels.
        num_classes: classes of every branch and of the fused prediction.
        stem: "standard" (stride-2 stem) or "monai" (MONAI's stride-1 default).
        pretrained_weights: a ResNet state dict file whose stem and layer1..layer3 the feature extractor
            starts from (see :func:`~monai_xai.networks.load_pretrained_weights`); the branches start from
            scratch. None trains all from scratch.

    ``forward(x, attention_map)`` with an expert's map uses it (resized to each stage) in place of every M_l
    in the perception branches. :meth:`freeze_features` fixes the feature extractor for fine-tuning on
    corrected maps: no gradients and batch-norm statistics that stay as trained.
    """

    def __init__(
        self,
        backbone: str = "resnet18",
        spatial_dims: int = 2,
        in_channels: int = 1,
        num_classes: int = 2,
        stem: str = "standard",
        pretrained_weights: str | os.PathLike | None = None,
    ) -> None:
        super().__init__()
        spec = get_resnet_spec(backbone)
        net = resnet_backbone(backbone, spatial_dims, in_channels, num_classes, stem)
        self.backbone = backbone
        self.spatial_dims = spatial_dims
        self.features, _ = resnet_feature_stages(net)
        self.features_frozen = False
        widths = [STAGE_WIDTHS[i] * spec.block.expansion for i in range(len(TAPPED_STAGES))]
        pooled = [STAGE_WIDTHS[i + 1] * spec.block.expansion for i in range(len(TAPPED_STAGES))]
        self.attention_branches = nn.ModuleList(
            AttentionBranch(spec, spatial_dims, num_classes, STAGE_WIDTHS[i], num_blocks=1, in_channels=c)
            for i, c in enumerate(widths)
        )
        pool = Pool[Pool.ADAPTIVEAVG, spatial_dims]
        self.perception_branches = nn.ModuleList(
            nn.Sequential(
                make_resnet_stage(spec.block, c, STAGE_WIDTHS[i + 1], 1, spatial_dims, stride=2),
                pool(1),
                nn.Flatten(1),
            )
            for i, c in enumerate(widths)
        )
        self.stage_classifiers = nn.ModuleList(nn.Linear(c, num_classes) for c in pooled)
        self.fusion = nn.Linear(sum(pooled), num_classes)
        if pretrained_weights is not None:
            load_pretrained_weights(self, pretrained_weights)

    def stage_features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Features after each of :data:`TAPPED_STAGES`, finest first."""
        taps = []
        for name, module in self.features.named_children():
            x = module(x)
            if name in TAPPED_STAGES:
                taps.append(x)
        return taps

    def forward(self, x: torch.Tensor, attention_map: torch.Tensor | None = None) -> MultiScaleABNOutput:
        """Classify ``x``; an ``attention_map`` given here replaces every M_l in the perception branches."""
        att_logits, per_logits, own_maps, pooled = [], [], [], []
        for features, att_branch, per_branch, classifier in zip(
            self.stage_features(x), self.attention_branches, self.perception_branches, self.stage_classifiers
        ):
            logits, own_map = att_branch(features)
            used_map = own_map if attention_map is None else external_attention_map(attention_map, features)
            stage_pooled = per_branch(features * (1.0 + used_map))
            att_logits.append(logits)
            own_maps.append(own_map)
            pooled.append(stage_pooled)
            per_logits.append(classifier(stage_pooled))
        finest = own_maps[0].shape[2:]
        combined = torch.stack([upsample_attention(m, finest, self.spatial_dims) for m in own_maps]).mean(0)
        return MultiScaleABNOutput(
            attention_logits=torch.stack(att_logits).mean(0),
            perception_logits=self.fusion(torch.cat(pooled, dim=1)),
            attention_map=combined,
            stage_attention_logits=tuple(att_logits),
            stage_perception_logits=tuple(per_logits),
            stage_attention_maps=tuple(own_maps),
        )

    def freeze_features(self, frozen: bool = True) -> MultiScaleAttentionBranchNetwork:
        """Stop (or restart) training the feature extractor: no gradients, batch norm kept in eval mode."""
        self.features_frozen = frozen
        self.features.requires_grad_(not frozen)
        return self.train(self.training)

    def train(self, mode: bool = True) -> MultiScaleAttentionBranchNetwork:
        super().train(mode)
        if self.features_frozen:
            self.features.eval()
        return self
