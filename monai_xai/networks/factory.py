"""Pick the classifier of an experiment arm by name."""

from __future__ import annotations

import os

from monai.utils import look_up_option
from torch import nn

from monai_xai.errors import InputError
from monai_xai.utils import CLASSIFIER_MODES, RESNET_MODES

__all__ = ["ABN_ARCHITECTURES", "get_classifier"]

#: Attention Branch Network variants by name: the class name in ``monai_xai.networks.nets``.
ABN_ARCHITECTURES = {
    "abn": "AttentionBranchNetwork",
    "abn_narrow": "NarrowAttentionBranchNetwork",
    "abn_compact": "CompactAttentionBranchNetwork",
    "abn_gated": "GatedAttentionBranchNetwork",
    "abn_gated_midrange": "MidrangeGatedAttentionBranchNetwork",
}


def get_classifier(
    mode: str,
    backbone: str = "resnet18",
    spatial_dims: int = 2,
    in_channels: int = 1,
    num_classes: int = 2,
    stem: str = "standard",
    architecture: str = "abn",
    pretrained_weights: str | os.PathLike | None = None,
) -> nn.Module:
    """``baseline``/``rrr`` -> plain ResNet; ``plain``/``conventional``/``dynamic`` -> the ABN
    ``architecture``.

    The three ABN modes share one architecture and differ only in their loss; ``architecture`` picks the
    variant (see :data:`ABN_ARCHITECTURES`) and is ignored by the plain-ResNet modes.

    Args:
        mode: one of ``CLASSIFIER_MODES``.
        backbone: "resnet18", "resnet34" or "resnet50".
        spatial_dims: 2 for slices, 3 for volumes.
        in_channels: image channels.
        num_classes: classes of the prediction.
        stem: a key of :data:`~monai_xai.networks.nets.resnet.RESNET_STEMS`.
        architecture: a key of :data:`ABN_ARCHITECTURES`.
        pretrained_weights: a torchvision or MedicalNet ResNet state dict file the ResNet trunk starts from
            (see :func:`~monai_xai.networks.load_pretrained_weights`); None trains from scratch.

    Raises:
        InputError: for an unknown ``mode`` or ``architecture``, naming the config key and the valid values.
    """
    from monai_xai.networks import nets

    if look_up_option(mode, CLASSIFIER_MODES, default=None) is None:
        raise InputError("mode", f"unknown mode {mode!r}; valid modes: {', '.join(CLASSIFIER_MODES)}")
    abn_name = look_up_option(architecture, ABN_ARCHITECTURES, default=None)
    if abn_name is None:
        raise InputError(
            "architecture",
            f"unknown architecture {architecture!r}; valid architectures: {', '.join(ABN_ARCHITECTURES)}",
        )
    abn_type = getattr(nets, abn_name)
    network_type = nets.ResNetClassifier if mode in RESNET_MODES else abn_type
    return network_type(
        backbone=backbone,
        spatial_dims=spatial_dims,
        in_channels=in_channels,
        num_classes=num_classes,
        stem=stem,
        pretrained_weights=pretrained_weights,
    )
