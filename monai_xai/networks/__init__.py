"""Networks of monai-xai."""

from __future__ import annotations

from .factory import get_classifier
from .nets import (
    RESNET_SPECS,
    RESNET_STEMS,
    STAGE_WIDTHS,
    ABNOutput,
    AttentionBranch,
    AttentionBranchNetwork,
    CompactAttentionBranchNetwork,
    ResNetClassifier,
    ResNetSpec,
    get_resnet_spec,
    make_resnet_stage,
    resize_attention,
    resnet_backbone,
    resnet_feature_stages,
    upsample_attention,
)
from .weights import load_weights

__all__ = [
    "ABNOutput",
    "AttentionBranch",
    "AttentionBranchNetwork",
    "CompactAttentionBranchNetwork",
    "RESNET_SPECS",
    "RESNET_STEMS",
    "STAGE_WIDTHS",
    "ResNetClassifier",
    "ResNetSpec",
    "get_classifier",
    "get_resnet_spec",
    "load_weights",
    "make_resnet_stage",
    "resize_attention",
    "resnet_backbone",
    "resnet_feature_stages",
    "upsample_attention",
]
