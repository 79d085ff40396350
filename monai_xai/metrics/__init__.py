"""Classification metrics and saliency-map agreement metrics."""

from __future__ import annotations

from .attention import attention_agreement, energy_inside_mask, map_iou, map_mse, pointing_game
from .classification import (
    aggregate_by_patient,
    binary_auc,
    classification_metrics,
    confusion_matrix,
    patient_level_metrics,
)

__all__ = [
    "aggregate_by_patient",
    "attention_agreement",
    "binary_auc",
    "classification_metrics",
    "confusion_matrix",
    "energy_inside_mask",
    "map_iou",
    "map_mse",
    "patient_level_metrics",
    "pointing_game",
]
