"""Attention Branch Network (ABN) on a ResNet backbone, with a replaceable attention map.

Fukui et al., "Attention Branch Network: Learning of Attention Mechanism for Visual Explanation", CVPR 2019;
Mitsuhara et al. (IEICE 2021) for attention-map supervision and editing. The attention map M(x) both explains
the decision and weights the features the perception branch classifies, so an expert can replace M(x) with a
corrected map at inference and see the decision change.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from typing import NamedTuple

import torch
from monai.networks.layers.factories import Conv, Norm, Pool
from torch import nn

from monai_xai.networks.nets.resnet import (
    STAGE_WIDTHS,
    ResNetSpec,
    get_resnet_spec,
    make_resnet_stage,
    resnet_backbone,
    resnet_feature_stages,
)
from monai_xai.networks.pretrained import load_pretrained_weights
from monai_xai.utils import resize_attention

__all__ = [
    "ABNOutput",
    "AttentionBranch",
    "AttentionBranchNetwork",
    "CompactAttentionBranchNetwork",
    "GatedAttentionBranchNetwork",
    "MidrangeGatedAttentionBranchNetwork",
    "NarrowAttentionBranchNetwork",
    "external_attention_map",
]


class ABNOutput(NamedTuple):
    """Outputs of :class:`AttentionBranchNetwork` (a tuple, so it survives ``DataParallel`` gathering)."""

    #: (B, num_classes) logits of the attention branch (global-average-pooled class maps).
    attention_logits: torch.Tensor
    #: (B, num_classes) logits of the perception branch: the network's prediction.
    perception_logits: torch.Tensor
    #: (B, 1, *feature_size) the network's own map M(x) in [0, 1], also when an external map was used.
    attention_map: torch.Tensor

    @property
    def shape(self) -> torch.Size:
        """The prediction's shape: tools that check a network's output as one tensor (MONAI's
        ``verify_net_in_out``) then check the prediction."""
        return self.perception_logits.shape

    @property
    def dtype(self) -> torch.dtype:
        """The prediction's dtype (see :attr:`shape`)."""
        return self.perception_logits.dtype


def external_attention_map(attention_map: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
    """An expert's map as a (B, 1, *feature size) tensor in [0, 1] on ``features``' device and dtype.

    Accepts (B or 1, 1, *any spatial size) or (B or 1, *any spatial size); the map is clipped to [0, 1] and
    resized to the features with :func:`resize_attention`.
    """
    batch, spatial_dims = features.shape[0], features.ndim - 2
    amap = torch.as_tensor(attention_map).to(device=features.device, dtype=features.dtype)
    if amap.ndim == spatial_dims + 1:
        amap = amap.unsqueeze(1)
    if amap.ndim != spatial_dims + 2 or amap.shape[1] != 1 or amap.shape[0] not in (1, batch):
        raise ValueError(
            f"attention_map must have shape ({batch} or 1, 1, *spatial) or ({batch} or 1, *spatial) with "
            f"{spatial_dims} spatial dims, got {tuple(amap.shape)}"
        )
    return resize_attention(amap.clamp(0.0, 1.0), features.shape[2:])


class AttentionBranch(nn.Module):
    """Attention branch: residual blocks at stride 1, then class maps, class logits and M(x).

    As in Fukui et al.: the blocks default to a stride-1 copy of ``layer4``; the class maps are pooled to the
    attention logits (which makes them class-discriminative) and squeezed by a 1x1 convolution, batch norm and
    sigmoid into the single-channel map M(x) in [0, 1].

    Args:
        spec: the backbone whose features the branch reads.
        spatial_dims: 2 or 3.
        num_classes: classes of the attention logits.
        width: base width of the residual blocks (before the bottleneck expansion); ``layer4``'s by default.
        num_blocks: residual blocks; ``layer4``'s count by default.
        in_channels: channels of the features read; ``layer3``'s output by default.
    """

    def __init__(
        self,
        spec: ResNetSpec,
        spatial_dims: int,
        num_classes: int,
        width: int = STAGE_WIDTHS[3],
        num_blocks: int | None = None,
        in_channels: int | None = None,
    ) -> None:
        super().__init__()
        conv_type = Conv[Conv.CONV, spatial_dims]
        norm_type = Norm[Norm.BATCH, spatial_dims]
        num_blocks = spec.layers[3] if num_blocks is None else num_blocks
        in_channels = spec.feature_channels if in_channels is None else in_channels
        channels = width * spec.block.expansion
        self.layer = make_resnet_stage(spec.block, in_channels, width, num_blocks, spatial_dims, stride=1)
        self.norm = norm_type(channels)
        self.class_conv = conv_type(channels, num_classes, kernel_size=1, bias=False)
        self.class_norm = norm_type(num_classes)
        self.act = nn.ReLU(inplace=True)
        self.logit_conv = conv_type(num_classes, num_classes, kernel_size=1, bias=False)
        self.pool = Pool[Pool.ADAPTIVEAVG, spatial_dims](1)
        self.map_conv = conv_type(num_classes, 1, kernel_size=1, bias=False)
        self.map_norm = norm_type(1)
        for module in (self.class_conv, self.logit_conv, self.map_conv):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return (attention logits (B, num_classes), attention map (B, 1, *feature_size))."""
        class_maps = self.act(self.class_norm(self.class_conv(self.norm(self.layer(features)))))
        logits = self.pool(self.logit_conv(class_maps)).flatten(1)
        attention_map = torch.sigmoid(self.map_norm(self.map_conv(class_maps)))
        return logits, attention_map


class AttentionBranchNetwork(nn.Module):
    """ABN: features g(x) (ResNet stem + layer1..layer3), attention branch, perception on g(x) * (1 + M(x)).

    Args:
        backbone: "resnet18", "resnet34" or "resnet50".
        spatial_dims: 2 for slices, 3 for volumes.
        in_channels: image channels.
        num_classes: classes of both branches.
        stem: "standard" (stride-2 7x7 conv + max-pool) or "monai" (MONAI's stride-1 default).
        pretrained_weights: a ResNet state dict file whose trunk the features and the perception branch
            start from (see :func:`~monai_xai.networks.load_pretrained_weights`); the attention branch and
            the head start from scratch. None trains all from scratch.

    ``forward(x, attention_map)`` with an ``attention_map`` (B or 1, 1, *any spatial size) uses that map,
    clipped to [0, 1] and resized to the feature size with :func:`resize_attention`, instead of M(x) in the
    perception branch. In training mode batch norm cancels any spatially constant scaling of the features, so
    compare external maps in ``eval()`` mode.

    Variants subclass it and override :attr:`attention_stage`, :meth:`make_attention_branch` or
    :meth:`weight_features`.
    """

    #: The ResNet stage whose output g(x) the attention branch reads and M(x) weights; the perception branch
    #: runs the later stages.
    attention_stage = 3

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
        self.features, later_stages = resnet_feature_stages(net, self.attention_stage)
        self.attention_branch = self.make_attention_branch(spec, spatial_dims, num_classes)
        self.perception_branch = nn.Sequential(
            OrderedDict(
                **dict(later_stages.named_children()), pool=net.avgpool, flatten=nn.Flatten(1), fc=net.fc
            )
        )
        if pretrained_weights is not None:
            load_pretrained_weights(self, pretrained_weights)

    def make_attention_branch(self, spec: ResNetSpec, spatial_dims: int, num_classes: int) -> AttentionBranch:
        """The attention branch of Fukui et al.: a full stride-1 copy of ``layer4``."""
        return AttentionBranch(spec, spatial_dims, num_classes)

    def weight_features(self, features: torch.Tensor, attention_map: torch.Tensor) -> torch.Tensor:
        """The perception branch's input, g(x) * (1 + M(x)) as in Fukui et al.: attention amplifies features
        but never removes them."""
        return features * (1.0 + attention_map)

    def forward(self, x: torch.Tensor, attention_map: torch.Tensor | None = None) -> ABNOutput:
        """Classify ``x``; an ``attention_map`` given here replaces M(x) in the perception branch."""
        features = self.features(x)
        attention_logits, own_map = self.attention_branch(features)
        used_map = own_map if attention_map is None else external_attention_map(attention_map, features)
        perception_logits = self.perception_branch(self.weight_features(features, used_map))
        return ABNOutput(attention_logits, perception_logits, own_map)


class CompactAttentionBranchNetwork(AttentionBranchNetwork):
    """ABN whose attention branch is one residual block at ``layer3``'s width instead of a copy of ``layer4``.

    The full branch runs ``layer4``'s blocks at stride 1, i.e. on four times as many positions (eight in 3D)
    as ``layer4`` itself, which makes it the most expensive part of the network. One block at ``layer3``'s
    width keeps M(x) at the same resolution for roughly an eighth of that cost.
    """

    def make_attention_branch(self, spec: ResNetSpec, spatial_dims: int, num_classes: int) -> AttentionBranch:
        """One block at ``layer3``'s width."""
        return AttentionBranch(spec, spatial_dims, num_classes, width=STAGE_WIDTHS[2], num_blocks=1)


class NarrowAttentionBranchNetwork(AttentionBranchNetwork):
    """ABN whose attention branch keeps ``layer4``'s depth at ``layer3``'s width.

    Halving the width cuts the stride-1 branch's cost to about a quarter while keeping its depth (and
    receptive field), which the one-block compact branch gives up.
    """

    def make_attention_branch(self, spec: ResNetSpec, spatial_dims: int, num_classes: int) -> AttentionBranch:
        """``layer4``'s block count at ``layer3``'s width."""
        return AttentionBranch(spec, spatial_dims, num_classes, width=STAGE_WIDTHS[2])


class GatedAttentionBranchNetwork(AttentionBranchNetwork):
    """ABN whose map gates ``layer1``'s features: perception on g(x) * M(x), M(x) at input size / 4.

    With g(x) * (1 + M(x)) after ``layer3`` the perception branch still sees every feature, and each
    ``layer3`` cell already sees most of the image: a classifier can keep using a shortcut outside the lesion
    while its map points at the lesion. Three things keep the map in charge of what the classifier may use:

    - the gate multiplies by M(x), so features where the map is zero do not reach the classifier;
    - it acts on the stride-4 ``layer1`` features, whose receptive fields are still small, so little of what
      lies outside the map has mixed into what lies inside; the map is also four times finer than the
      ``layer3`` one, fine enough to point inside small lesions;
    - the gate uses M(x) without its gradient: the perception loss cannot reopen the map where a shortcut
      lies, only the attention branch's own losses (map supervision, attention cross-entropy) move it.

    The branch is two residual blocks at ``layer2``'s width at stride 1: a quarter of the ``layer4`` copy's
    width on sixteen times its positions, about its cost.
    """

    attention_stage = 1

    def make_attention_branch(self, spec: ResNetSpec, spatial_dims: int, num_classes: int) -> AttentionBranch:
        """Two blocks at ``layer2``'s width on ``layer1``'s output."""
        return AttentionBranch(
            spec,
            spatial_dims,
            num_classes,
            width=STAGE_WIDTHS[1],
            num_blocks=2,
            in_channels=STAGE_WIDTHS[0] * spec.block.expansion,
        )

    def weight_features(self, features: torch.Tensor, attention_map: torch.Tensor) -> torch.Tensor:
        """g(x) * M(x), with M(x) detached from the perception loss."""
        return features * attention_map.detach()


class MidrangeGatedAttentionBranchNetwork(GatedAttentionBranchNetwork):
    """Gated ABN whose gate closes where M(x) lies below the midpoint of its own range in the image.

    Trained toward lesion masks, M(x) still keeps about 0.4 on the background and rises where the attention
    branch's own cross-entropy finds a shortcut, so the soft gate g(x) * M(x) passes a shortcut at about half
    the lesion's weight, enough for the perception branch to learn it. Keeping only the cells at or above
    (min M + max M) / 2 of each image passes the lesion and drops the background; a spatially constant map
    (e.g. an expert's all-ones map) passes everything. The cut uses M(x) without its gradient, as the gate.
    """

    def weight_features(self, features: torch.Tensor, attention_map: torch.Tensor) -> torch.Tensor:
        """g(x) * M(x) where M(x) >= its midrange, 0 elsewhere."""
        gate = attention_map.detach()
        cells = gate.flatten(2)  # (B, 1, cells): shapes torch.fx can trace, so batch norms still fold
        cut = (cells.amin(dim=2, keepdim=True) + cells.amax(dim=2, keepdim=True)) / 2
        kept = torch.where(cells >= cut, cells, torch.zeros_like(cells))
        return features * kept.view_as(gate)
