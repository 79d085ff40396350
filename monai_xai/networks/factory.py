"""Pick the classifier of an experiment arm by name."""

from __future__ import annotations

from torch import nn

from monai_xai.losses.classifier_loss import CLASSIFIER_MODES

__all__ = ["get_classifier"]


def get_classifier(
    mode: str,
    backbone: str = "resnet18",
    spatial_dims: int = 2,
    in_channels: int = 1,
    num_classes: int = 2,
    stem: str = "standard",
) -> nn.Module:
    """``baseline`` -> plain ResNet; ``plain``/``conventional``/``dynamic`` -> Attention Branch Network.

    The three ABN modes share one architecture and differ only in their loss.
    """
    from monai_xai.networks.nets import AttentionBranchNetwork, ResNetClassifier

    if mode not in CLASSIFIER_MODES:
        raise ValueError(f"unknown mode {mode!r}; valid modes: {', '.join(CLASSIFIER_MODES)}")
    network_type = ResNetClassifier if mode == "baseline" else AttentionBranchNetwork
    return network_type(
        backbone=backbone,
        spatial_dims=spatial_dims,
        in_channels=in_channels,
        num_classes=num_classes,
        stem=stem,
    )
