"""Ignite handlers and epoch metrics for attention-supervised training and its evaluation."""

from monai_xai.handlers.alpha_scheduler import (
    ALPHA_SCHEDULES,
    AlphaSchedule,
    AlphaScheduleHandler,
    get_alpha_schedule,
)
from monai_xai.handlers.attention_overlay import AttentionOverlayHandler
from monai_xai.handlers.checkpoint import BestModelSaver, ResumableCheckpointer, atomic_save
from monai_xai.handlers.epoch_metrics import (
    AttentionAgreementEpochMetric,
    ClassificationEpochMetric,
    LossAveragesMetric,
)
from monai_xai.handlers.evaluation_report import EvaluationReport
from monai_xai.handlers.mlflow_handler import ResumableMLFlowHandler
from monai_xai.handlers.prediction_writer import PredictionWriter

__all__ = [
    "ALPHA_SCHEDULES",
    "AlphaSchedule",
    "AlphaScheduleHandler",
    "AttentionAgreementEpochMetric",
    "AttentionOverlayHandler",
    "BestModelSaver",
    "ClassificationEpochMetric",
    "EvaluationReport",
    "LossAveragesMetric",
    "PredictionWriter",
    "ResumableCheckpointer",
    "ResumableMLFlowHandler",
    "atomic_save",
    "get_alpha_schedule",
]
