"""Classification metrics and saliency-map agreement metrics."""

from __future__ import annotations

from .attention import (
    agreement_scores,
    attention_agreement,
    energy_inside_mask,
    map_iou,
    map_mse,
    pointing_game,
    region_energy,
    summarize_agreement,
)
from .classification import (
    aggregate_by_patient,
    classification_metrics,
    confusion_matrix,
    patient_level_metrics,
)
from .counterfactual import (
    before_after_confusion,
    extreme_examples,
    flip_rate,
    map_correlation,
    map_mean,
    masked_translation,
    mean_abs_difference,
    shuffled_maps,
    target_probability_change,
    topk_iou,
    uniform_maps,
)
from .deletion_insertion import BASELINES, DeletionInsertionResult, deletion_insertion, perturbation_baseline
from .detection import (
    AREA_RANGES,
    F1_THRESHOLDS,
    coco_detection_metrics,
    detection_confusion_matrix,
    detection_report,
    f1_threshold_search,
    per_class_detection_stats,
    reported_f1_threshold,
)
from .kappa import predictions_kappa, quadratic_weighted_kappa

__all__ = [
    "BASELINES",
    "DeletionInsertionResult",
    "deletion_insertion",
    "perturbation_baseline",
    "predictions_kappa",
    "quadratic_weighted_kappa",
    "AREA_RANGES",
    "F1_THRESHOLDS",
    "coco_detection_metrics",
    "detection_confusion_matrix",
    "detection_report",
    "f1_threshold_search",
    "per_class_detection_stats",
    "reported_f1_threshold",
    "before_after_confusion",
    "extreme_examples",
    "flip_rate",
    "map_correlation",
    "map_mean",
    "masked_translation",
    "mean_abs_difference",
    "shuffled_maps",
    "target_probability_change",
    "topk_iou",
    "uniform_maps",
    "aggregate_by_patient",
    "agreement_scores",
    "attention_agreement",
    "region_energy",
    "classification_metrics",
    "confusion_matrix",
    "energy_inside_mask",
    "map_iou",
    "map_mse",
    "patient_level_metrics",
    "pointing_game",
    "summarize_agreement",
]
