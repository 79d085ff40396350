"""Networks of monai-xai."""

from __future__ import annotations

from monai_xai.utils import resize_attention, upsample_attention

from .export import ExportableABN
from .factory import get_classifier
from .inference import (
    InferenceNetwork,
    InferenceSetting,
    InferenceTolerance,
    OptimisedNetwork,
    PerceptionLogits,
    fold_batch_norm,
    optimise_for_inference,
)
from .nets import (
    RESNET_SPECS,
    RESNET_STEMS,
    STAGE_WIDTHS,
    ABNOutput,
    AttentionBranch,
    AttentionBranchNetwork,
    CompactAttentionBranchNetwork,
    GatedAttentionBranchNetwork,
    MidrangeGatedAttentionBranchNetwork,
    MultiScaleABNOutput,
    MultiScaleAttentionBranchNetwork,
    NarrowAttentionBranchNetwork,
    ResNetClassifier,
    ResNetSpec,
    get_resnet_spec,
    make_resnet_stage,
    resnet_backbone,
    resnet_feature_stages,
)
from .nets.centernet import BACKBONE_INITS, CenterNet, backbone_source, init_backbone
from .nets.resnet_encoder import ENCODER_STAGES, ResNetEncoder
from .nets.retinanet import ResNetFPN, retinanet_detector, swap_box_axes
from .nets.simsiam import SimSiam, save_encoder
from .outputs import split_network_output
from .pretrained import PretrainedWeightsReport, load_pretrained_weights, read_state_dict, resnet_trunk_paths
from .weights import (
    load_optional_weights,
    load_weights,
    operating_point_path,
    read_operating_point,
    read_score_threshold,
    read_weights_file,
    score_threshold_of,
    score_threshold_path,
    trainable_parameters,
)

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
    "ABNOutput",
    "AttentionBranch",
    "AttentionBranchNetwork",
    "CompactAttentionBranchNetwork",
    "GatedAttentionBranchNetwork",
    "MidrangeGatedAttentionBranchNetwork",
    "NarrowAttentionBranchNetwork",
    "ExportableABN",
    "InferenceNetwork",
    "InferenceSetting",
    "InferenceTolerance",
    "OptimisedNetwork",
    "PerceptionLogits",
    "fold_batch_norm",
    "optimise_for_inference",
    "MultiScaleABNOutput",
    "MultiScaleAttentionBranchNetwork",
    "RESNET_SPECS",
    "RESNET_STEMS",
    "STAGE_WIDTHS",
    "ResNetClassifier",
    "ResNetSpec",
    "get_classifier",
    "get_resnet_spec",
    "load_optional_weights",
    "load_pretrained_weights",
    "PretrainedWeightsReport",
    "read_state_dict",
    "read_weights_file",
    "resnet_trunk_paths",
    "load_weights",
    "operating_point_path",
    "read_operating_point",
    "read_score_threshold",
    "score_threshold_of",
    "score_threshold_path",
    "trainable_parameters",
    "make_resnet_stage",
    "resize_attention",
    "resnet_backbone",
    "resnet_feature_stages",
    "split_network_output",
    "upsample_attention",
]
