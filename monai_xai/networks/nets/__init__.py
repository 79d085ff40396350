"""Classification networks: ResNet backbones and the Attention Branch Network."""

from __future__ import annotations

from .abn import (
    ABNOutput,
    AttentionBranch,
    AttentionBranchNetwork,
    CompactAttentionBranchNetwork,
    resize_attention,
    upsample_attention,
)
from .resnet import (
    RESNET_SPECS,
    RESNET_STEMS,
    STAGE_WIDTHS,
    ResNetClassifier,
    ResNetSpec,
    get_resnet_spec,
    make_resnet_stage,
    resnet_backbone,
    resnet_feature_stages,
)

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
    "get_resnet_spec",
    "make_resnet_stage",
    "resize_attention",
    "resnet_backbone",
    "resnet_feature_stages",
    "upsample_attention",
]
