"""A MONAI ResNet without its classifier, returning every stage's features, with stage-wise freezing.

Shared by the SimSiam pretraining network and the CenterNet detector, so that a pretrained encoder's
weights load into the detector's backbone key for key (the names are MONAI ``ResNet``'s).
"""

from __future__ import annotations

import torch
from torch import nn

from monai_xai.networks.nets.resnet import STAGE_WIDTHS, get_resnet_spec, resnet_backbone

__all__ = ["ENCODER_STAGES", "ResNetEncoder"]

#: Stages from the input side; freezing takes a prefix of them, unfreezing gives them back from the end.
ENCODER_STAGES = ("stem", "layer1", "layer2", "layer3", "layer4")


class ResNetEncoder(nn.Module):
    """2D ResNet trunk: ``forward`` returns ``[layer1, layer2, layer3, layer4]`` features (strides 4 to 32).

    ``freeze(n)`` freezes the first ``n`` stages of :data:`ENCODER_STAGES`: no gradients, and their batch
    norms stay in eval mode even under ``train()``, so frozen statistics do not drift.
    """

    def __init__(
        self, backbone: str = "resnet18", spatial_dims: int = 2, in_channels: int = 1, stem: str = "standard"
    ) -> None:
        super().__init__()
        net = resnet_backbone(backbone, spatial_dims, in_channels, num_classes=1, stem=stem)
        self.backbone = backbone
        self.conv1, self.bn1, self.act, self.maxpool = net.conv1, net.bn1, net.act, net.maxpool
        self.no_max_pool = net.no_max_pool
        self.layer1, self.layer2, self.layer3, self.layer4 = net.layer1, net.layer2, net.layer3, net.layer4
        expansion = get_resnet_spec(backbone).block.expansion
        self.out_channels = [width * expansion for width in STAGE_WIDTHS]
        self.frozen_stages = 0

    def stage(self, name: str) -> nn.Module:
        """The modules of one stage of :data:`ENCODER_STAGES`."""
        if name == "stem":
            return nn.ModuleList([self.conv1, self.bn1])
        return getattr(self, name)

    def freeze(self, n_stages: int) -> None:
        """Freeze the first ``n_stages`` stages (0: train all, 5: the whole encoder) and unfreeze the rest."""
        if not 0 <= n_stages <= len(ENCODER_STAGES):
            raise ValueError(f"n_stages must be in [0, {len(ENCODER_STAGES)}], got {n_stages}")
        self.frozen_stages = n_stages
        for i, name in enumerate(ENCODER_STAGES):
            for param in self.stage(name).parameters():
                param.requires_grad_(i >= n_stages)
        self.train(self.training)

    def train(self, mode: bool = True) -> ResNetEncoder:
        super().train(mode)
        for name in ENCODER_STAGES[: self.frozen_stages]:
            self.stage(name).eval()
        return self

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.act(self.bn1(self.conv1(x)))
        if not self.no_max_pool:
            x = self.maxpool(x)
        features = []
        for layer in (self.layer1, self.layer2, self.layer3, self.layer4):
            x = layer(x)
            features.append(x)
        return features
