"""Ignite handlers and epoch metrics for attention-supervised training and its evaluation."""

from monai_xai.handlers.alpha_scheduler import (
    ALPHA_SCHEDULES,
    AlphaSchedule,
    AlphaScheduleHandler,
    get_alpha_schedule,
)
from monai_xai.handlers.attention_overlay import AttentionOverlayHandler
from monai_xai.handlers.base import ReportHandler
from monai_xai.handlers.checkpoint import BestModelSaver, ResumableCheckpointer
from monai_xai.handlers.correction_candidates import CorrectionCandidatesHandler, save_map
from monai_xai.handlers.counterfactual_report import CounterfactualReportHandler
from monai_xai.handlers.counterfactual_samples import CounterfactualSamplesHandler
from monai_xai.handlers.detection_epoch_metric import DetectionEpochMetric
from monai_xai.handlers.detection_overlay import DetectionOverlayHandler
from monai_xai.handlers.detection_report import DetectionReportHandler, flatten_detection_report
from monai_xai.handlers.detection_saver import DetectionSaver
from monai_xai.handlers.early_stopping import ValidationEarlyStopping
from monai_xai.handlers.embedding_std import EmbeddingStdMetric
from monai_xai.handlers.epoch_metrics import (
    AttentionAgreementEpochMetric,
    ClassificationEpochMetric,
    LossAveragesMetric,
    LossEpochMetric,
)
from monai_xai.handlers.evaluation_report import EvaluationReportHandler
from monai_xai.handlers.faithfulness_report import FaithfulnessReportHandler
from monai_xai.handlers.flip_rate_epoch_metric import FlipRateEpochMetric
from monai_xai.handlers.mlflow_handler import ResumableMLFlowHandler
from monai_xai.handlers.operating_point import OperatingPointFitter
from monai_xai.handlers.prediction_saver import PredictionSaver
from monai_xai.handlers.progressive_unfreeze import (
    FREEZE_POLICIES,
    EpochUnfreeze,
    FreezePolicy,
    FrozenBackbone,
    PlateauUnfreeze,
    TrainAll,
    get_freeze_policy,
)
from monai_xai.handlers.score_threshold import ScoreThresholdFitter

__all__ = [
    "FREEZE_POLICIES",
    "DetectionEpochMetric",
    "DetectionOverlayHandler",
    "DetectionReportHandler",
    "DetectionSaver",
    "EmbeddingStdMetric",
    "EpochUnfreeze",
    "FreezePolicy",
    "FrozenBackbone",
    "PlateauUnfreeze",
    "TrainAll",
    "ValidationEarlyStopping",
    "flatten_detection_report",
    "get_freeze_policy",
    "CounterfactualReportHandler",
    "CounterfactualSamplesHandler",
    "ALPHA_SCHEDULES",
    "AlphaSchedule",
    "AlphaScheduleHandler",
    "AttentionAgreementEpochMetric",
    "AttentionOverlayHandler",
    "BestModelSaver",
    "ClassificationEpochMetric",
    "CorrectionCandidatesHandler",
    "EvaluationReportHandler",
    "FaithfulnessReportHandler",
    "FlipRateEpochMetric",
    "LossAveragesMetric",
    "LossEpochMetric",
    "PredictionSaver",
    "ReportHandler",
    "ResumableCheckpointer",
    "OperatingPointFitter",
    "ScoreThresholdFitter",
    "ResumableMLFlowHandler",
    "get_alpha_schedule",
    "save_map",
]
