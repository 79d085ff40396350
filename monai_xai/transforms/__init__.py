"""Loading, validation, teacher masks and modality presets."""

from monai_xai.transforms.batch_augmentation import (
    RandAffineBatchd,
    RandFlipBatchd,
    RandomizableBatchTransform,
    RandScaleIntensityBatchd,
    RandShiftIntensityBatchd,
)
from monai_xai.transforms.boxes import ResizeWithBoxesd, SwapBoxAxesd, detection_preset
from monai_xai.transforms.expect import ExpectImaged
from monai_xai.transforms.intensity import (
    ExtractSliced,
    FieldOfViewCropd,
    InvertMonochrome1d,
    RemoveColorOverlayd,
    ToGrayscaled,
    ToRGBd,
)
from monai_xai.transforms.io import LoadImageOrArrayd
from monai_xai.transforms.lesion_resize import (
    MASK_RESIZE_MODES,
    ResizeMaskKeepLesionsd,
    resize_mask_keep_lesions,
)
from monai_xai.transforms.mask import EnsureMaskd, LoadCorrectedMapd, with_corrected_maps
from monai_xai.transforms.postprocessing import classification_postprocessing
from monai_xai.transforms.preflight import check_splits
from monai_xai.transforms.preset_stages import (
    CT_WINDOWS,
    PRESET_NAMES,
    PresetIntensityd,
    PresetResized,
    preset_augmentations,
    preset_finalize,
    preset_flip_axis,
    preset_mask_mode,
    preset_mask_threshold,
    preset_transforms,
    preset_translate_range,
)
from monai_xai.transforms.presets import (
    PRESETS,
    ct_preset,
    fundus_preset,
    get_preset,
    inference_transforms,
    mri_preset,
    photo_rgb_preset,
    ultrasound_preset,
    xray_preset,
)
from monai_xai.transforms.validate import ValidateItemd, diagnose_item, validate_datalist
from monai_xai.transforms.views import TwoViewsd, simsiam_augmentations

__all__ = [
    "RandAffineBatchd",
    "RandFlipBatchd",
    "RandScaleIntensityBatchd",
    "RandShiftIntensityBatchd",
    "RandomizableBatchTransform",
    "ResizeWithBoxesd",
    "SwapBoxAxesd",
    "TwoViewsd",
    "detection_preset",
    "simsiam_augmentations",
    "ExpectImaged",
    "CT_WINDOWS",
    "PRESETS",
    "PRESET_NAMES",
    "PresetIntensityd",
    "PresetResized",
    "preset_augmentations",
    "preset_finalize",
    "preset_flip_axis",
    "preset_mask_mode",
    "preset_mask_threshold",
    "preset_transforms",
    "preset_translate_range",
    "EnsureMaskd",
    "ExtractSliced",
    "FieldOfViewCropd",
    "InvertMonochrome1d",
    "LoadCorrectedMapd",
    "LoadImageOrArrayd",
    "MASK_RESIZE_MODES",
    "ResizeMaskKeepLesionsd",
    "RemoveColorOverlayd",
    "ToGrayscaled",
    "ToRGBd",
    "ValidateItemd",
    "check_splits",
    "classification_postprocessing",
    "ct_preset",
    "diagnose_item",
    "fundus_preset",
    "get_preset",
    "inference_transforms",
    "with_corrected_maps",
    "mri_preset",
    "photo_rgb_preset",
    "resize_mask_keep_lesions",
    "ultrasound_preset",
    "validate_datalist",
    "xray_preset",
]
