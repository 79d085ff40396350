"""Figures for explanations and evaluation, and saliency baselines."""

from monai_xai.visualize.figures import (
    attention_overlay_figure,
    confusion_matrix_figure,
    curves_figure,
    middle_slice,
    roc_curve_figure,
    save_figure,
)
from monai_xai.visualize.saliency import CAM_METHODS, CAMSaliency, batch_score_hooks

__all__ = [
    "CAM_METHODS",
    "CAMSaliency",
    "batch_score_hooks",
    "attention_overlay_figure",
    "confusion_matrix_figure",
    "curves_figure",
    "middle_slice",
    "roc_curve_figure",
    "save_figure",
]
