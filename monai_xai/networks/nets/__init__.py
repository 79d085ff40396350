"""Classification networks: ResNet backbones and the Attention Branch Network."""

from __future__ import annotations

from monai_xai.utils import resize_attention, upsample_attention

from .abn import (
    ABNOutput,
    AttentionBranch,
    AttentionBranchNetwork,
    CompactAttentionBranchNetwork,
    GatedAttentionBranchNetwork,
    MidrangeGatedAttentionBranchNetwork,
    NarrowAttentionBranchNetwork,
)
from .agcyclegan import (
    AGCycleGAN,
    AttentionDecoder,
    CycleOutput,
    FrozenResNetEncoder,
    GeneratorDecoder,
    Translation,
    UNetDecoder,
)
from .centernet import BACKBONE_INITS, CenterNet, backbone_source, init_backbone
from .discriminator import PatchDiscriminator
from .leaky_resnet import (
    LEAKY_ACT,
    RESNET_CLASSIFIERS,
    LeakyResNetBlock,
    LeakyResNetBottleneck,
    LeakyResNetClassifier,
)
from .multiscale_abn import MultiScaleABNOutput, MultiScaleAttentionBranchNetwork
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
from .resnet_encoder import ENCODER_STAGES, ResNetEncoder
from .retinanet import ResNetFPN, retinanet_detector, swap_box_axes
from .simsiam import SimSiam, save_encoder

__all__ = [
    "BACKBONE_INITS",
    "CenterNet",
    "ENCODER_STAGES",
    "ResNetEncoder",
    "ResNetFPN",
    "retinanet_detector",
    "swap_box_axes",
    "SimSiam",
    "backbone_source",
    "init_backbone",
    "save_encoder",
    "AGCycleGAN",
    "AttentionDecoder",
    "CycleOutput",
    "FrozenResNetEncoder",
    "GeneratorDecoder",
    "LEAKY_ACT",
    "LeakyResNetBlock",
    "LeakyResNetBottleneck",
    "LeakyResNetClassifier",
    "PatchDiscriminator",
    "RESNET_CLASSIFIERS",
    "Translation",
    "UNetDecoder",
    "ABNOutput",
    "AttentionBranch",
    "AttentionBranchNetwork",
    "CompactAttentionBranchNetwork",
    "GatedAttentionBranchNetwork",
    "MidrangeGatedAttentionBranchNetwork",
    "NarrowAttentionBranchNetwork",
    "MultiScaleABNOutput",
    "MultiScaleAttentionBranchNetwork",
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
