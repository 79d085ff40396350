"""ResNet backbones built on MONAI's ``ResNet`` with the ImageNet-style stem.

MONAI's ``ResNet`` defaults to a stride-1 first convolution, which keeps four times as many positions
through ``layer1`` as the usual stride-2 7x7 convolution + max-pool stem and makes 2D slice classifiers about
4x slower with no gain at the resolutions used here. ``stem="standard"`` restores the usual stem;
``stem="monai"`` keeps MONAI's default for comparison with MONAI-trained models. ``stem="small"`` is the
3x3 stride-1 convolution without max-pool of ResNets for 28x28 inputs (MedMNIST, CIFAR): the standard stem
leaves 7x7 positions of a 28x28 image for layer1 and 1x1 for layer4.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from monai.networks.layers.factories import Conv, Norm
from monai.networks.nets import ResNet, ResNetBlock, ResNetBottleneck
from monai.utils import look_up_option
from torch import nn

from monai_xai.errors import InputError
from monai_xai.networks.pretrained import load_pretrained_weights

__all__ = [
    "RESNET_SPECS",
    "RESNET_STEMS",
    "STAGE_WIDTHS",
    "ResNetClassifier",
    "ResNetSpec",
    "get_resnet_spec",
    "make_resnet_stage",
    "resnet_backbone",
    "resnet_kwargs",
    "resnet_feature_stages",
]

#: Base widths of layer1..layer4 (before the bottleneck expansion).
STAGE_WIDTHS = (64, 128, 256, 512)


@dataclass(frozen=True)
class ResNetSpec:
    """Block type and number of blocks per stage of one ResNet depth."""

    block: type[ResNetBlock] | type[ResNetBottleneck]
    layers: tuple[int, int, int, int]

    @property
    def feature_channels(self) -> int:
        """Channels out of ``layer3``: the input of ``layer4`` and of the ABN attention branch."""
        return STAGE_WIDTHS[2] * self.block.expansion

    @property
    def out_channels(self) -> int:
        """Channels out of ``layer4``: the input of the classification head."""
        return STAGE_WIDTHS[3] * self.block.expansion


RESNET_SPECS: dict[str, ResNetSpec] = {
    "resnet18": ResNetSpec(ResNetBlock, (2, 2, 2, 2)),
    "resnet34": ResNetSpec(ResNetBlock, (3, 4, 6, 3)),
    "resnet50": ResNetSpec(ResNetBottleneck, (3, 4, 6, 3)),
}

#: ``ResNet`` stem arguments by stem name.
RESNET_STEMS: dict[str, dict[str, Any]] = {
    "standard": {"conv1_t_size": 7, "conv1_t_stride": 2, "no_max_pool": False},
    "monai": {"conv1_t_size": 7, "conv1_t_stride": 1, "no_max_pool": False},
    "small": {"conv1_t_size": 3, "conv1_t_stride": 1, "no_max_pool": True},
}


def get_resnet_spec(name: str) -> ResNetSpec:
    """Look up a ResNet depth by name, naming the valid ones when ``name`` is unknown.

    Args:
        name: a key of :data:`RESNET_SPECS` (the bundles' ``backbone`` key).

    Raises:
        InputError: naming the ``backbone`` key and the valid names.
    """
    spec = look_up_option(name, RESNET_SPECS, default=None)
    if spec is None:
        raise InputError(
            "backbone", f"unknown ResNet backbone {name!r}; valid names: {', '.join(RESNET_SPECS)}"
        )
    return spec


def resnet_kwargs(
    name: str, spatial_dims: int, in_channels: int, num_classes: int, stem: str
) -> dict[str, Any]:
    """Keyword arguments of MONAI's ``ResNet`` for backbone ``name`` with a stem of :data:`RESNET_STEMS`."""
    spec = get_resnet_spec(name)
    stem_kwargs = look_up_option(stem, RESNET_STEMS, default=None)
    if stem_kwargs is None:
        raise InputError("stem", f"unknown ResNet stem {stem!r}; valid stems: {', '.join(RESNET_STEMS)}")
    return {
        "block": spec.block,
        "layers": list(spec.layers),
        "block_inplanes": list(STAGE_WIDTHS),
        "spatial_dims": spatial_dims,
        "n_input_channels": in_channels,
        "num_classes": num_classes,
        **stem_kwargs,
    }


def resnet_backbone(
    name: str = "resnet18",
    spatial_dims: int = 2,
    in_channels: int = 1,
    num_classes: int = 2,
    stem: str = "standard",
) -> ResNet:
    """Build a MONAI ``ResNet`` of depth ``name`` ("resnet18", "resnet34" or "resnet50")."""
    return ResNet(**resnet_kwargs(name, spatial_dims, in_channels, num_classes, stem))


class ResNetClassifier(ResNet):
    """Plain ResNet classifier (the baseline next to ABN); ``forward`` returns logits.

    It is a MONAI ``ResNet``, so layer names (``layer4`` for Grad-CAM, ``fc``) and checkpoints match MONAI's.

    Args:
        backbone: "resnet18", "resnet34" or "resnet50".
        spatial_dims: 2 for slices, 3 for volumes.
        in_channels: image channels.
        num_classes: classes of the head.
        stem: a key of :data:`RESNET_STEMS`.
        pretrained_weights: a torchvision or MedicalNet ResNet state dict file to start from (all but the
            head, see :func:`~monai_xai.networks.load_pretrained_weights`); None trains from scratch.
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
        super().__init__(**resnet_kwargs(backbone, spatial_dims, in_channels, num_classes, stem))
        self.backbone = backbone
        if pretrained_weights is not None:
            load_pretrained_weights(self, pretrained_weights)


def resnet_feature_stages(net: ResNet, stage: int = 3) -> tuple[nn.Sequential, nn.Sequential]:
    """Split ``net`` after ``layer{stage}``: the feature extractor (stem + layer1..layer{stage}) and the later
    stages (``layer{stage+1}``..``layer4``, under their own names).

    The returned modules are ``net``'s own (shared, not copied), so weights loaded into ``net`` carry over.
    """
    if stage not in (1, 2, 3):
        raise ValueError(f"stage must be 1, 2 or 3 (the features end before layer4), got {stage}")
    stem: list[tuple[str, nn.Module]] = [("conv1", net.conv1), ("bn1", net.bn1), ("act", net.act)]
    if not net.no_max_pool:
        stem.append(("maxpool", net.maxpool))
    stages = [(f"layer{i}", getattr(net, f"layer{i}")) for i in range(1, 5)]
    return nn.Sequential(OrderedDict(stem + stages[:stage])), nn.Sequential(OrderedDict(stages[stage:]))


def make_resnet_stage(
    block: type[ResNetBlock] | type[ResNetBottleneck],
    in_channels: int,
    planes: int,
    num_blocks: int,
    spatial_dims: int,
    stride: int = 1,
) -> nn.Sequential:
    """A ResNet stage (like ``layer4``) of ``num_blocks`` blocks with a 1x1 projection shortcut when needed.

    Used for the ABN attention branch, which repeats ``layer4`` at stride 1 to keep the feature resolution.
    """
    out_channels = planes * block.expansion
    conv_type = Conv[Conv.CONV, spatial_dims]
    downsample = None
    if stride != 1 or in_channels != out_channels:
        downsample = nn.Sequential(
            conv_type(in_channels, out_channels, kernel_size=1, stride=stride, bias=False),
            Norm[Norm.BATCH, spatial_dims](out_channels),
        )
    blocks = [block(in_channels, planes, spatial_dims=spatial_dims, stride=stride, downsample=downsample)]
    blocks += [block(out_channels, planes, spatial_dims=spatial_dims) for _ in range(num_blocks - 1)]
    stage = nn.Sequential(*blocks)
    for module in stage.modules():
        if isinstance(module, conv_type):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
    return stage
