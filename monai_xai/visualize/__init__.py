"""Figures for explanations and evaluation, and saliency baselines."""

from monai_xai.visualize.calibration import reliability_diagram_figure
from monai_xai.visualize.counterfactual import (
    EXAMPLE_COLUMNS,
    PANEL_COLUMNS,
    counterfactual_examples_figure,
    counterfactual_figure,
    counterfactual_parts,
    save_counterfactual_nifti,
)
from monai_xai.visualize.detection import CLASS_COLOURS, GT_COLOUR, detection_overlay, overlay_grid, save_png
from monai_xai.visualize.figures import (
    attention_overlay_figure,
    confusion_matrix_figure,
    curves_figure,
    deletion_insertion_figure,
    display_plane,
    explanation_grid_figure,
    middle_slice,
    roc_curve_figure,
    save_figure,
)
from monai_xai.visualize.input_gradient import InputGradientSaliency
from monai_xai.visualize.saliency import (
    CAM_METHODS,
    SALIENCY_METHODS,
    CAMSaliency,
    batch_score_hooks,
    get_saliency,
    resnet_cam_layer,
    saliency_functions,
    scale_to_unit,
)

__all__ = [
    "reliability_diagram_figure",
    "CLASS_COLOURS",
    "GT_COLOUR",
    "detection_overlay",
    "overlay_grid",
    "save_png",
    "EXAMPLE_COLUMNS",
    "PANEL_COLUMNS",
    "counterfactual_examples_figure",
    "counterfactual_figure",
    "counterfactual_parts",
    "save_counterfactual_nifti",
    "CAM_METHODS",
    "CAMSaliency",
    "InputGradientSaliency",
    "SALIENCY_METHODS",
    "get_saliency",
    "resnet_cam_layer",
    "saliency_functions",
    "scale_to_unit",
    "batch_score_hooks",
    "attention_overlay_figure",
    "confusion_matrix_figure",
    "curves_figure",
    "deletion_insertion_figure",
    "display_plane",
    "explanation_grid_figure",
    "middle_slice",
    "roc_curve_figure",
    "save_figure",
]
