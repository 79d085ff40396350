"""Run an exported ABN bundle where clinicians work: a MONAI Deploy App SDK application and its parts.

:class:`DeployedABN` (load the exported TorchScript file and classify images) and the output writers need
only the core dependencies. The application and its operators (``monai_xai.deploy.app``,
``monai_xai.deploy.operators``) need the ``[deploy]`` extra and are not imported here;
``python -m monai_xai.deploy`` runs the app.
"""

from __future__ import annotations

from .model import IMAGE_SUFFIXES, ABNPrediction, DeployedABN, is_image_file, load_selection_rules
from .outputs import (
    OUTPUT_FILES,
    SUMMARY_FILES,
    InputOutcome,
    overlay_rgb,
    series_folder_name,
    write_outputs,
    write_probabilities,
    write_report,
    write_run,
    write_secondary_capture,
)

__all__ = [
    "IMAGE_SUFFIXES",
    "OUTPUT_FILES",
    "SUMMARY_FILES",
    "ABNPrediction",
    "DeployedABN",
    "InputOutcome",
    "is_image_file",
    "load_selection_rules",
    "overlay_rgb",
    "series_folder_name",
    "write_outputs",
    "write_probabilities",
    "write_report",
    "write_run",
    "write_secondary_capture",
]
