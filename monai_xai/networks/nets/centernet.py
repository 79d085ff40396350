"""CenterNet with a ResNet backbone: an upsampling neck to stride 4 and heatmap, size and offset heads."""

from __future__ import annotations

import math
import os

import torch
import torch.nn.functional as F
from monai.utils import look_up_option
from torch import nn

from monai_xai.errors import InputError
from monai_xai.networks.nets.resnet_encoder import ResNetEncoder
from monai_xai.networks.pretrained import load_pretrained_weights
from monai_xai.networks.weights import load_weights

__all__ = ["BACKBONE_INITS", "CenterNet", "backbone_source", "init_backbone"]

#: Backbone initialisations by name.
BACKBONE_INITS = ("random", "simsiam")


def _conv_bn_relu(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class _Head(nn.Sequential):
    def __init__(self, in_channels: int, head_channels: int, out_channels: int, bias: float = 0.0) -> None:
        super().__init__(
            nn.Conv2d(in_channels, head_channels, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(head_channels, out_channels, 1),
        )
        nn.init.constant_(self[-1].bias, bias)


class CenterNet(nn.Module):
    """Keypoint detector: ``forward`` returns ``{"heatmap": logits (B, C, H/4, W/4), "size", "offset"}``.

    The neck upsamples ``layer4`` three times by 2 and adds a 1x1 projection of ``layer3``, ``layer2`` and
    ``layer1`` at each step, which keeps small lesions visible at stride 4. The heatmap bias starts at
    ``-log((1 - 0.1) / 0.1)`` so the first steps are not swamped by background (as in CenterNet). Sizes
    and offsets are in stride-4 cells; :func:`~monai_xai.detection.decode_centernet` turns them into boxes.
    """

    stride = 4

    def __init__(
        self,
        num_classes: int = 2,
        backbone: str = "resnet18",
        in_channels: int = 1,
        stem: str = "standard",
        neck_channels: tuple[int, int, int] = (256, 128, 64),
        head_channels: int = 64,
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.backbone = ResNetEncoder(backbone, spatial_dims=2, in_channels=in_channels, stem=stem)
        skips = self.backbone.out_channels[:3][::-1]
        ins = [self.backbone.out_channels[3], *neck_channels[:-1]]
        self.up = nn.ModuleList(_conv_bn_relu(i, o) for i, o in zip(ins, neck_channels))
        self.lateral = nn.ModuleList(nn.Conv2d(s, o, 1) for s, o in zip(skips, neck_channels))
        prior = 0.1
        self.heatmap_head = _Head(
            neck_channels[-1], head_channels, num_classes, -math.log((1 - prior) / prior)
        )
        self.size_head = _Head(neck_channels[-1], head_channels, 2)
        self.offset_head = _Head(neck_channels[-1], head_channels, 2)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        *skips, x = self.backbone(x)
        for up, lateral, skip in zip(self.up, self.lateral, skips[::-1]):
            x = F.interpolate(up(x), size=skip.shape[-2:], mode="bilinear", align_corners=False) + lateral(
                skip
            )
        return {"heatmap": self.heatmap_head(x), "size": self.size_head(x), "offset": self.offset_head(x)}


def _check_init(init: str) -> None:
    if look_up_option(init, BACKBONE_INITS, default=None) is None:
        raise InputError("init", f"unknown backbone init {init!r}; valid inits: {', '.join(BACKBONE_INITS)}")


def init_backbone(
    network: nn.Module,
    init: str = "random",
    checkpoint: str | os.PathLike | None = None,
    pretrained_weights: str | os.PathLike | None = None,
) -> nn.Module:
    """Initialise ``network.backbone`` by name: ``"random"`` keeps it, ``"simsiam"`` loads ``checkpoint``.

    The checkpoint is a SimSiam export (``encoder.pt``: the encoder weights under ``"encoder"``);
    one of another depth or channel count raises :class:`~monai_xai.errors.InputError` naming the file.

    Args:
        network: a :class:`CenterNet` (or a ``DataParallel`` of one); changed in place.
        init: one of :data:`BACKBONE_INITS`.
        checkpoint: the SimSiam encoder export, for ``init="simsiam"``.
        pretrained_weights: with ``init="random"``, a torchvision ResNet state dict file the backbone starts
            from instead (see :func:`~monai_xai.networks.load_pretrained_weights`); the neck and heads
            start from scratch.
    """
    _check_init(init)
    if pretrained_weights is not None:
        if init != "random":
            raise InputError(
                "pretrained_weights", f"init={init!r} loads its own backbone; needs init='random'"
            )
        load_pretrained_weights(network, pretrained_weights)
    if init == "simsiam":
        if checkpoint is None:
            raise ValueError("init='simsiam' needs the SimSiam encoder checkpoint (simsiam_checkpoint)")
        load_weights(getattr(network, "module", network).backbone, checkpoint, key="encoder")
    return network


def backbone_source(init: str, checkpoint: str | os.PathLike | None) -> str | None:
    """The file the backbone starts from: ``checkpoint`` for ``init="simsiam"``, None for ``"random"``.

    Why: a run's identity names the encoder it was initialised from, and only that one.

    Args:
        init: one of :data:`BACKBONE_INITS`.
        checkpoint: the SimSiam encoder export.
    """
    _check_init(init)
    return None if init == "random" or checkpoint is None else os.fspath(checkpoint)
