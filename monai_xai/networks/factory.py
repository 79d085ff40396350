"""Pick the classifier of an experiment arm by name."""

from __future__ import annotations

from torch import nn

from monai_xai.utils import CLASSIFIER_MODES, RESNET_MODES

__all__ = ["ABN_ARCHITECTURES", "get_classifier"]

#: Attention Branch Network variants by name: the class name in ``monai_xai.networks.nets``.
ABN_ARCHITECTURES = {
    "abn": "AttentionBranchNetwork",
    "abn_narrow": "NarrowAttentionBranchNetwork",
    "abn_compact": "CompactAttentionBranchNetwork",
    "abn_gated": "GatedAttentionBranchNetwork",
}


def get_classifier(
    mode: str,
    backbone: str = "resnet18",
    spatial_dims: int = 2,
    in_channels: int = 1,
    num_classes: int = 2,
    stem: str = "standard",
    architecture: str = "abn",
) -> nn.Module:
    """``baseline``/``rrr`` -> plain ResNet; ``plain``/``conventional``/``dynamic`` -> the ABN
    ``architecture``.

    The three ABN modes share one architecture and differ only in their loss; ``architecture`` picks the
    variant (see :data:`ABN_ARCHITECTURES`) and is ignored by the plain-ResNet modes.
    """
    from monai_xai.networks import nets

    if mode not in CLASSIFIER_MODES:
        raise ValueError(f"unknown mode {mode!r}; valid modes: {', '.join(CLASSIFIER_MODES)}")
    if architecture not in ABN_ARCHITECTURES:
        raise ValueError(
            f"unknown architecture {architecture!r}; valid architectures: {', '.join(ABN_ARCHITECTURES)}"
        )
    abn_type = getattr(nets, ABN_ARCHITECTURES[architecture])
    network_type = nets.ResNetClassifier if mode in RESNET_MODES else abn_type
    return network_type(
        backbone=backbone,
        spatial_dims=spatial_dims,
        in_channels=in_channels,
        num_classes=num_classes,
        stem=stem,
    )
