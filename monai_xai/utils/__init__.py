"""Helpers shared across the layers of monai-xai: atomic writes, map resizing, plotting, batch entries."""

from monai_xai.utils.atomic import (
    atomic_path,
    atomic_save,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    copy_docs_figure,
)
from monai_xai.utils.batch import batch_strings
from monai_xai.utils.device import autocast, cpu_supports_bf16, reduced_precision, to_float32
from monai_xai.utils.modes import CLASSIFIER_MODES, RESNET_MODES
from monai_xai.utils.plotting import pyplot
from monai_xai.utils.resize import resize_attention, upsample_attention

__all__ = [
    "CLASSIFIER_MODES",
    "RESNET_MODES",
    "atomic_path",
    "atomic_save",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "autocast",
    "batch_strings",
    "copy_docs_figure",
    "cpu_supports_bf16",
    "pyplot",
    "reduced_precision",
    "resize_attention",
    "to_float32",
    "upsample_attention",
]
