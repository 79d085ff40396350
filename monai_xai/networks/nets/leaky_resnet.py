"""ResNet classifier with LeakyReLU in the stem and in every residual block.

MONAI's ``ResNet(act=...)`` changes only the stem activation; the blocks keep ReLU. Counterfactual
explainers that reuse the classifier's encoder get gradients through it, and LeakyReLU keeps them
non-zero where ReLU would cut them off.
"""

from __future__ import annotations

import os

from monai.networks.nets import ResNet, ResNetBlock, ResNetBottleneck

from monai_xai.networks.nets.resnet import ResNetClassifier, resnet_kwargs
from monai_xai.networks.pretrained import load_pretrained_weights

__all__ = [
    "LEAKY_ACT",
    "RESNET_CLASSIFIERS",
    "LeakyResNetBlock",
    "LeakyResNetBottleneck",
    "LeakyResNetClassifier",
]

#: The activation of :class:`LeakyResNetClassifier`, in MONAI's ``(name, args)`` form.
LEAKY_ACT = ("leakyrelu", {"negative_slope": 0.01, "inplace": True})


class LeakyResNetBlock(ResNetBlock):
    """MONAI's basic residual block with LeakyReLU."""

    def __init__(self, *args, act=LEAKY_ACT, **kwargs) -> None:
        super().__init__(*args, act=act, **kwargs)


class LeakyResNetBottleneck(ResNetBottleneck):
    """MONAI's bottleneck residual block with LeakyReLU."""

    def __init__(self, *args, act=LEAKY_ACT, **kwargs) -> None:
        super().__init__(*args, act=act, **kwargs)


_LEAKY_BLOCKS = {ResNetBlock: LeakyResNetBlock, ResNetBottleneck: LeakyResNetBottleneck}


class LeakyResNetClassifier(ResNetClassifier):
    """:class:`ResNetClassifier` with LeakyReLU everywhere; same layer names, so Grad-CAM and encoders fit.

    Args:
        backbone: "resnet18", "resnet34" or "resnet50".
        spatial_dims: 2 for slices, 3 for volumes.
        in_channels: image channels.
        num_classes: classes of the head.
        stem: a key of :data:`~monai_xai.networks.nets.resnet.RESNET_STEMS`.
        pretrained_weights: a ResNet state dict file to start from (all but the head, see
            :func:`~monai_xai.networks.load_pretrained_weights`); None trains from scratch.
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
        kwargs = resnet_kwargs(backbone, spatial_dims, in_channels, num_classes, stem)
        kwargs["block"] = _LEAKY_BLOCKS[kwargs["block"]]
        ResNet.__init__(self, act=LEAKY_ACT, **kwargs)
        self.backbone = backbone
        if pretrained_weights is not None:
            load_pretrained_weights(self, pretrained_weights)


#: Classifier class by activation name, for configs: ``RESNET_CLASSIFIERS[@classifier_act](...)``.
RESNET_CLASSIFIERS: dict[str, type[ResNetClassifier]] = {
    "relu": ResNetClassifier,
    "leakyrelu": LeakyResNetClassifier,
}
