"""Preprocessing presets per imaging modality, as MONAI ``Compose`` pipelines of dictionary transforms.

Each factory composes the stages of :mod:`monai_xai.transforms.preset_stages` (which the bundle configs
list item by item instead) from keyword arguments. The pipelines start after loading (items hold
channel-first ``MetaTensor``), move every ``mask_keys`` entry through the same spatial transforms as the
images, with nearest-neighbour interpolation (``fundus`` can pool instead, so that lesions of a few pixels
stay), and end with float32 images and binary float32 masks: attention-supervision targets must stay
aligned with the pixels the classifier sees.

16-bit images keep their range: ``xray`` scales by percentiles, ``fundus`` and ``ultrasound`` by each
image's range; ``photo_rgb`` (a fixed ``max_value``) and ``ct`` (Hounsfield windows) refuse, naming the file
and its stored type, what their fixed scale would clip (see :class:`CheckIntensityScaled`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from monai.config import KeysCollection
from monai.transforms import Compose
from monai.utils import look_up_option

from monai_xai.transforms.io import LoadImageOrArrayd
from monai_xai.transforms.preset_stages import preset_transforms
from monai_xai.transforms.validate import ValidateItemd

__all__ = [
    "PRESETS",
    "ct_preset",
    "fundus_preset",
    "get_preset",
    "inference_transforms",
    "mri_preset",
    "photo_rgb_preset",
    "ultrasound_preset",
    "xray_preset",
]


def ct_preset(
    keys: KeysCollection = ("image",),
    mask_keys: KeysCollection = (),
    window: str | Sequence[float] = "lung",
    slice_axis: int | None = None,
    slice_index: int | None = None,
    spatial_size: Sequence[int] | None = (256, 256),
    augment: bool = False,
) -> Compose:
    """CT in Hounsfield units to [0, 1] through a window, optionally one slice of a volume, for 2D models.

    Images stored as unsigned integers (a uint16 PNG) hold no Hounsfield units and are refused.

    Args:
        keys: image keys.
        mask_keys: mask keys following the images spatially.
        window: a name of :data:`CT_WINDOWS` or ``(center, width)`` in HU; values outside are clipped.
        slice_axis: spatial axis of a 3D volume to take one slice from; ``None`` when inputs are 2D.
        slice_index: index of that slice; ``None`` for the middle one.
        spatial_size: output size; ``None`` keeps the input size.
        augment: add light random augmentation for training (no flips: laterality matters).
    """
    args = {"window": window, "slice_axis": slice_axis, "slice_index": slice_index}
    return Compose(preset_transforms("ct", keys, mask_keys, spatial_size, augment, args))


def mri_preset(
    keys: KeysCollection = ("image",),
    mask_keys: KeysCollection = (),
    axcodes: str = "RAS",
    pixdim: Sequence[float] | None = (1.0, 1.0, 1.0),
    intensity: str = "minmax",
    spatial_size: Sequence[int] | None = None,
    augment: bool = False,
) -> Compose:
    """MRI volumes to a common orientation and voxel size, intensities to [-1, 1] or z-scores.

    MRI intensities have no physical unit, so each volume is normalised on its own; ``"zscore"`` uses
    the nonzero voxels only, so that the air around the head does not dominate the statistics.

    Args:
        keys: image keys.
        mask_keys: mask keys following the images spatially.
        axcodes: target orientation, e.g. ``"RAS"``.
        pixdim: target voxel size in mm; ``None`` keeps the acquired spacing.
        intensity: ``"minmax"`` (to [-1, 1]) or ``"zscore"``.
        spatial_size: pad or crop to this size after resampling (keeps the spacing); ``None`` keeps it.
        augment: add light random augmentation for training (no flips: laterality matters).
    """
    args = {"axcodes": axcodes, "pixdim": pixdim, "intensity": intensity}
    return Compose(preset_transforms("mri", keys, mask_keys, spatial_size, augment, args))


def xray_preset(
    keys: KeysCollection = ("image",),
    mask_keys: KeysCollection = (),
    invert_monochrome1: bool = True,
    percentiles: Sequence[float] = (0.5, 99.5),
    spatial_size: Sequence[int] | None = (224, 224),
    augment: bool = False,
) -> Compose:
    """Radiographs to [0, 1] by percentile clipping, MONOCHROME1 inverted first.

    Raw radiograph values depend on the detector and its exposure, and burnt-in labels or collimator
    edges sit at the extremes; clipping at percentiles gives comparable contrast across sources.

    Args:
        keys: image keys.
        mask_keys: mask keys following the images spatially.
        invert_monochrome1: invert images whose photometric interpretation is MONOCHROME1.
        percentiles: lower and upper percentiles mapped to 0 and 1 (values beyond are clipped).
        spatial_size: output size; ``None`` keeps the input size.
        augment: add light random augmentation for training (no flips: the heart is on the left).
    """
    args = {"invert_monochrome1": invert_monochrome1, "percentiles": percentiles}
    return Compose(preset_transforms("xray", keys, mask_keys, spatial_size, augment, args))


def fundus_preset(
    keys: KeysCollection = ("image",),
    mask_keys: KeysCollection = (),
    fov_crop: bool = True,
    spatial_size: Sequence[int] | None = (224, 224),
    augment: bool = False,
    image_resize: str = "bilinear",
    mask_resize: str = "nearest",
) -> Compose:
    """RGB fundus photographs cropped to the retina's field of view, scaled to [0, 1] with colour kept.

    Colour carries the signs of retinopathy (red haemorrhages, yellow exudates), so the three channels
    are scaled together, not one by one. Exudates and microaneurysms can be a few pixels wide: with
    ``image_resize="area"`` and ``mask_resize="max"`` the photograph shrinks without smoothing of its own and
    no lesion leaves the mask (augmentation then moves masks by interpolation and keeps where they reach
    0.1), so that maps can be trained toward, and credited for, the smallest lesions.

    Args:
        keys: image keys (channel-first RGB).
        mask_keys: mask keys following the images spatially.
        fov_crop: blank the surround and crop to the field of view (see :class:`FieldOfViewCropd`).
        spatial_size: output size; ``None`` keeps the input size.
        augment: add light random augmentation for training, with horizontal flips (left/right eyes).
        image_resize: ``"bilinear"`` (anti-aliased, as the other presets) or ``"area"`` (footprint means).
        mask_resize: ``"nearest"`` (sampled, as the other presets) or ``"max"`` (every lesion kept, see
            :class:`~monai_xai.transforms.ResizeMaskKeepLesionsd`).
    """
    args = {"fov_crop": fov_crop, "image_resize": image_resize, "mask_resize": mask_resize}
    return Compose(preset_transforms("fundus", keys, mask_keys, spatial_size, augment, args))


def photo_rgb_preset(
    keys: KeysCollection = ("image",),
    mask_keys: KeysCollection = (),
    max_value: float = 255.0,
    spatial_size: Sequence[int] | None = (224, 224),
    keep_aspect: bool = True,
    augment: bool = False,
) -> Compose:
    """Colour photographs (dermoscopy, endoscopy, clinical photos) as three channels in [0, 1], colour kept.

    Values are divided by a fixed maximum, not stretched per image as in ``fundus``, because exposure and
    white balance can be part of the finding and should stay comparable between photographs. An image with
    values above it (a 16-bit file under the default 255) is refused rather than clipped. Grey or RGBA
    files become RGB (:class:`ToRGBd`), so that every input fits one colour network. Photographs come in
    many aspect ratios: by default they are letterboxed, not stretched.

    Args:
        keys: image keys (channel-first RGB, RGBA or grey).
        mask_keys: mask keys following the images spatially.
        max_value: the value mapped to 1 (255 for 8-bit photographs, 65535 for 16-bit); larger values are
            an error naming the file.
        spatial_size: output size; ``None`` keeps the input size.
        keep_aspect: resize the longer side to the shorter side of ``spatial_size`` and pad with zeros to
            ``spatial_size``; otherwise stretch to it.
        augment: add light random augmentation for training, with horizontal flips.
    """
    args = {"max_value": max_value, "keep_aspect": keep_aspect}
    return Compose(preset_transforms("photo_rgb", keys, mask_keys, spatial_size, augment, args))


def ultrasound_preset(
    keys: KeysCollection = ("image",),
    mask_keys: KeysCollection = (),
    remove_overlays: bool = True,
    spatial_size: Sequence[int] | None = (256, 256),
    augment: bool = False,
) -> Compose:
    """B-mode ultrasound to one grayscale channel in [0, 1], coloured annotations removed.

    Args:
        keys: image keys (channel-first, grayscale or RGB).
        mask_keys: mask keys following the images spatially.
        remove_overlays: inpaint coloured calipers and text (see :class:`RemoveColorOverlayd`); otherwise
            RGB inputs are only converted to grayscale.
        spatial_size: output size; ``None`` keeps the input size.
        augment: add light random augmentation for training, with horizontal flips.
    """
    args = {"remove_overlays": remove_overlays}
    return Compose(preset_transforms("ultrasound", keys, mask_keys, spatial_size, augment, args))


PRESETS: dict[str, Callable[..., Compose]] = {
    "ct": ct_preset,
    "mri": mri_preset,
    "xray": xray_preset,
    "fundus": fundus_preset,
    "photo_rgb": photo_rgb_preset,
    "ultrasound": ultrasound_preset,
}
"""Preset factories by modality name."""


def get_preset(name: str, **kwargs) -> Compose:
    """Build the preset of a modality by name, passing ``kwargs`` to its factory.

    Args:
        name: a name of :data:`PRESETS`.
        kwargs: keyword arguments of its factory.
    """
    return look_up_option(name, PRESETS)(**kwargs)


def inference_transforms(
    preset: str,
    spatial_size: Sequence[int] | None,
    in_channels: int,
    preset_args: Mapping[str, Any] | None = None,
    spatial_dims: int = 2,
    intensity_transforms: Sequence[Callable] = (),
) -> Compose:
    """What an unlabelled image goes through before the classifier: loading, a check of its channel count and
    spatial dimensions, and the modality's stages without augmentation (the validation pipeline of training,
    without masks).

    The stages are those of :func:`~monai_xai.transforms.preset_stages.preset_transforms`, which the inference
    configs spell out item by item: for 2D images the ``preset`` with ``spatial_size`` and ``preset_args``;
    for 3D volumes the dataset's own ``intensity_transforms`` (its config fragment's). The deploy app builds
    it from here, so that a deployed model sees the pixels the bundle's inference gives it.

    Args:
        preset: a name of :data:`PRESETS`.
        spatial_size: output size of the preset's resize (2D).
        in_channels: channels the network takes; another count is an error naming the input.
        preset_args: further arguments of the preset (2D; in 3D an error).
        spatial_dims: the network's spatial dimensions: 2 for images, 3 for volumes; an input with another
            number is an error naming it.
        intensity_transforms: the transforms of a 3D volume after loading (3D only; required there).
    """
    stages = preset_transforms(
        preset,
        ["image"],
        spatial_size=spatial_size,
        preset_args=preset_args,
        spatial_dims=spatial_dims,
        intensity_transforms=intensity_transforms,
    )
    load = [
        LoadImageOrArrayd(keys=["image"]),
        ValidateItemd(expected_channels=in_channels, spatial_dims=spatial_dims),
    ]
    return Compose(load + stages)
