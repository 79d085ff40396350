"""Preprocessing presets per imaging modality, as MONAI ``Compose`` pipelines of dictionary transforms.

Each factory takes only JSON-friendly keyword arguments, so bundle configs can build it through
``_target_``. The pipelines start after loading (items hold channel-first ``MetaTensor``), move every
``mask_keys`` entry through the same spatial transforms as the images, with nearest-neighbour
interpolation (``fundus`` can pool instead, so that lesions of a few pixels stay), and end with float32
images and binary float32 masks: attention-supervision targets must stay aligned with the pixels the
classifier sees.

16-bit images keep their range: ``xray`` scales by percentiles, ``fundus`` and ``ultrasound`` by each
image's range; ``photo_rgb`` (a fixed ``max_value``) and ``ct`` (Hounsfield windows) refuse, naming the file
and its stored type, what their fixed scale would clip (see :class:`CheckIntensityScaled`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from monai.config import KeysCollection
from monai.transforms import (
    AsDiscreted,
    Compose,
    EnsureTyped,
    MapTransform,
    NormalizeIntensityd,
    Orientationd,
    RandAffined,
    RandFlipd,
    RandScaleIntensityd,
    RandShiftIntensityd,
    Resized,
    ResizeWithPadOrCropd,
    ScaleIntensityd,
    ScaleIntensityRanged,
    ScaleIntensityRangePercentilesd,
    Spacingd,
)
from monai.utils import ensure_tuple

from monai_xai.transforms.intensity import (
    CheckIntensityScaled,
    ExtractSliced,
    FieldOfViewCropd,
    InvertMonochrome1d,
    RemoveColorOverlayd,
    ToGrayscaled,
    ToRGBd,
)
from monai_xai.transforms.io import LoadImageOrArrayd
from monai_xai.transforms.lesion_resize import ResizeMaskKeepLesionsd
from monai_xai.transforms.validate import ValidateItemd

__all__ = [
    "CT_WINDOWS",
    "PRESETS",
    "ct_preset",
    "fundus_preset",
    "get_preset",
    "modality_preset",
    "inference_transforms",
    "mri_preset",
    "photo_rgb_preset",
    "ultrasound_preset",
    "xray_preset",
]

CT_WINDOWS: dict[str, tuple[float, float]] = {
    "lung": (-600.0, 1500.0),
    "mediastinum": (50.0, 350.0),
    "bone": (400.0, 1800.0),
    "brain": (40.0, 80.0),
    "abdomen": (40.0, 400.0),
}
"""Named CT windows as (center, width) in Hounsfield units."""


def _keys(keys: KeysCollection) -> tuple[str, ...]:
    return tuple(ensure_tuple(keys))


def _resize_2d(
    keys: tuple[str, ...], mask_keys: tuple[str, ...], spatial_size: Sequence[int] | int
) -> Resized:
    """Anti-aliased bilinear for images (radiographs may shrink tenfold), pixel-centred nearest for masks.

    An int resizes the longer side to it and keeps the aspect ratio.
    """
    longest = isinstance(spatial_size, int)
    return Resized(
        keys=keys + mask_keys,
        spatial_size=spatial_size if longest else tuple(spatial_size),
        size_mode="longest" if longest else "all",
        mode=("bilinear",) * len(keys) + ("nearest-exact",) * len(mask_keys),
        anti_aliasing=(True,) * len(keys) + (False,) * len(mask_keys),
    )


#: image and mask resizing the fundus preset offers (the first of each: what every other preset does)
_IMAGE_RESIZE = ("bilinear", "area")
_MASK_RESIZE = ("nearest", "max")
#: where a mask moved by bilinear augmentation stays lesion: a one-pixel lesion keeps at least about 0.2
_LESION_KEEP_THRESHOLD = 0.1


def _resize_keep_lesions(
    keys: tuple[str, ...],
    mask_keys: tuple[str, ...],
    spatial_size: Sequence[int] | int,
    image_resize: str,
    mask_resize: str,
) -> list[MapTransform]:
    """Images by ``image_resize`` and masks by ``mask_resize``, for small lesions that must not vanish.

    ``"area"`` makes each image pixel the mean of its footprint and adds no smoothing of its own, so a small
    bright lesion dims but stays; ``"bilinear"`` is the other presets' anti-aliased resize. ``"max"`` masks
    keep every lesion (:class:`ResizeMaskKeepLesionsd`); ``"nearest"`` masks are sampled as elsewhere.
    """
    if image_resize not in _IMAGE_RESIZE or mask_resize not in _MASK_RESIZE:
        raise ValueError(
            f"image_resize must be one of {_IMAGE_RESIZE} and mask_resize one of {_MASK_RESIZE}, got "
            f"{image_resize!r} and {mask_resize!r}"
        )
    longest = isinstance(spatial_size, int)
    size = spatial_size if longest else tuple(spatial_size)
    size_mode = "longest" if longest else "all"
    resize: list[MapTransform] = [
        Resized(
            keys=keys,
            spatial_size=size,
            size_mode=size_mode,
            mode=image_resize,
            anti_aliasing=image_resize == "bilinear",
        )
    ]
    if not mask_keys:
        return resize
    if mask_resize == "max":
        return resize + [ResizeMaskKeepLesionsd(mask_keys, size, size_mode=size_mode, mode="max")]
    return resize + [Resized(keys=mask_keys, spatial_size=size, size_mode=size_mode, mode="nearest-exact")]


def _augmentations(
    keys: tuple[str, ...],
    mask_keys: tuple[str, ...],
    spatial_dims: int,
    spatial_size: Sequence[int] | None,
    flip_axis: int | None,
    mask_mode: str = "nearest",
) -> list[MapTransform]:
    """Light training augmentation: small rotation, zoom and shift, optional flip, mild intensity jitter.

    Flips are left to the caller: they are harmless for fundus and ultrasound, but mirror anatomy whose
    laterality matters in radiographs and cross-sectional images. ``mask_mode="bilinear"`` moves masks by
    interpolation, so that a lesion narrower than the sampling step is not dropped (binarise it low then).
    """
    rotate = math.radians(10.0)
    all_keys = keys + mask_keys
    augment: list[MapTransform] = [
        RandAffined(
            keys=all_keys,
            prob=0.5,
            rotate_range=(rotate,) if spatial_dims == 2 else (rotate,) * 3,
            scale_range=(0.1,) * spatial_dims,
            translate_range=None if spatial_size is None else tuple(0.05 * s for s in spatial_size),
            mode=("bilinear",) * len(keys) + (mask_mode,) * len(mask_keys),
            padding_mode="zeros",
        )
    ]
    if flip_axis is not None:
        augment.append(RandFlipd(keys=all_keys, prob=0.5, spatial_axis=flip_axis))
    augment += [
        RandScaleIntensityd(keys=keys, factors=0.1, prob=0.5),
        RandShiftIntensityd(keys=keys, offsets=0.05, prob=0.5),
    ]
    return augment


def _finalize(
    keys: tuple[str, ...], mask_keys: tuple[str, ...], mask_threshold: float = 0.5
) -> list[MapTransform]:
    """Binarise masks (0/1 from :class:`~monai_xai.transforms.EnsureMaskd`) at ``mask_threshold`` and make
    every output float32."""
    final: list[MapTransform] = []
    if mask_keys:
        final.append(AsDiscreted(keys=mask_keys, threshold=mask_threshold))
    final.append(EnsureTyped(keys=keys + mask_keys, dtype=torch.float32))
    return final


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
    keys, mask_keys = _keys(keys), _keys(mask_keys)
    if isinstance(window, str):
        if window not in CT_WINDOWS:
            raise ValueError(f"unknown CT window {window!r}; valid names: {', '.join(CT_WINDOWS)}.")
        window = CT_WINDOWS[window]
    center, width = (float(v) for v in window)
    transforms: list[MapTransform] = [CheckIntensityScaled(keys=keys, preset="ct", refuse_unsigned=True)]
    if slice_axis is not None:
        transforms.append(ExtractSliced(keys=keys + mask_keys, axis=slice_axis, index=slice_index))
    transforms.append(
        ScaleIntensityRanged(
            keys=keys, a_min=center - width / 2, a_max=center + width / 2, b_min=0.0, b_max=1.0, clip=True
        )
    )
    if spatial_size is not None:
        transforms.append(_resize_2d(keys, mask_keys, spatial_size))
    if augment:
        spatial_dims = 2 if spatial_size is None else len(spatial_size)
        transforms += _augmentations(keys, mask_keys, spatial_dims, spatial_size, flip_axis=None)
    return Compose(transforms + _finalize(keys, mask_keys))


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
    keys, mask_keys = _keys(keys), _keys(mask_keys)
    all_keys = keys + mask_keys
    transforms: list[MapTransform] = [Orientationd(keys=all_keys, axcodes=axcodes, labels=None)]
    if pixdim is not None:
        transforms.append(
            Spacingd(
                keys=all_keys,
                pixdim=tuple(pixdim),
                mode=("bilinear",) * len(keys) + ("nearest",) * len(mask_keys),
                dtype=np.float32,
            )
        )
    if intensity == "minmax":
        transforms.append(ScaleIntensityd(keys=keys, minv=-1.0, maxv=1.0))
    elif intensity == "zscore":
        transforms.append(NormalizeIntensityd(keys=keys, nonzero=True))
    else:
        raise ValueError(f"unknown MRI intensity scaling {intensity!r}; valid: 'minmax', 'zscore'.")
    if spatial_size is not None:
        transforms.append(ResizeWithPadOrCropd(keys=all_keys, spatial_size=tuple(spatial_size)))
    if augment:
        spatial_dims = len(axcodes)
        transforms += _augmentations(keys, mask_keys, spatial_dims, spatial_size, flip_axis=None)
    return Compose(transforms + _finalize(keys, mask_keys))


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
    keys, mask_keys = _keys(keys), _keys(mask_keys)
    lower, upper = (float(p) for p in percentiles)
    transforms: list[MapTransform] = []
    if invert_monochrome1:
        transforms.append(InvertMonochrome1d(keys=keys))
    transforms.append(
        ScaleIntensityRangePercentilesd(keys=keys, lower=lower, upper=upper, b_min=0.0, b_max=1.0, clip=True)
    )
    if spatial_size is not None:
        transforms.append(_resize_2d(keys, mask_keys, spatial_size))
    if augment:
        transforms += _augmentations(keys, mask_keys, 2, spatial_size, flip_axis=None)
    return Compose(transforms + _finalize(keys, mask_keys))


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
    keys, mask_keys = _keys(keys), _keys(mask_keys)
    keep_lesions = mask_resize != "nearest"
    transforms: list[MapTransform] = []
    if fov_crop:
        transforms.append(FieldOfViewCropd(keys=keys, mask_keys=mask_keys))
    transforms.append(ScaleIntensityd(keys=keys, minv=0.0, maxv=1.0))
    if spatial_size is not None:
        if image_resize == "bilinear" and not keep_lesions:
            transforms.append(_resize_2d(keys, mask_keys, spatial_size))
        else:
            transforms += _resize_keep_lesions(keys, mask_keys, spatial_size, image_resize, mask_resize)
    elif image_resize not in _IMAGE_RESIZE or mask_resize not in _MASK_RESIZE:
        raise ValueError(f"unknown image_resize {image_resize!r} or mask_resize {mask_resize!r}")
    if augment:
        mask_mode = "bilinear" if keep_lesions else "nearest"
        transforms += _augmentations(keys, mask_keys, 2, spatial_size, flip_axis=1, mask_mode=mask_mode)
    threshold = _LESION_KEEP_THRESHOLD if keep_lesions else 0.5
    return Compose(transforms + _finalize(keys, mask_keys, threshold))


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
    keys, mask_keys = _keys(keys), _keys(mask_keys)
    transforms: list[MapTransform] = [
        CheckIntensityScaled(keys=keys, preset="photo_rgb", max_value=max_value),
        ToRGBd(keys=keys),
        ScaleIntensityRanged(keys=keys, a_min=0.0, a_max=float(max_value), b_min=0.0, b_max=1.0, clip=True),
    ]
    if spatial_size is not None and keep_aspect:
        transforms += [
            _resize_2d(keys, mask_keys, int(min(spatial_size))),
            ResizeWithPadOrCropd(keys=keys + mask_keys, spatial_size=tuple(spatial_size)),
        ]
    elif spatial_size is not None:
        transforms.append(_resize_2d(keys, mask_keys, spatial_size))
    if augment:
        transforms += _augmentations(keys, mask_keys, 2, spatial_size, flip_axis=1)
    return Compose(transforms + _finalize(keys, mask_keys))


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
    keys, mask_keys = _keys(keys), _keys(mask_keys)
    transforms: list[MapTransform] = [
        RemoveColorOverlayd(keys=keys) if remove_overlays else ToGrayscaled(keys=keys),
        ScaleIntensityd(keys=keys, minv=0.0, maxv=1.0),
    ]
    if spatial_size is not None:
        transforms.append(_resize_2d(keys, mask_keys, spatial_size))
    if augment:
        transforms += _augmentations(keys, mask_keys, 2, spatial_size, flip_axis=1)
    return Compose(transforms + _finalize(keys, mask_keys))


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
    """Build the preset of a modality by name, passing ``kwargs`` to its factory."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; valid names: {', '.join(sorted(PRESETS))}.")
    return PRESETS[name](**kwargs)


def modality_preset(
    name: str, spatial_dims: int, volume_transforms: Sequence[Callable] = (), **kwargs
) -> Compose:
    """2D images: the preset ``name`` (``kwargs`` go to its factory); 3D volumes: ``volume_transforms``.

    Why: the presets are 2D pipelines, so a 3D dataset brings its own intensity transforms (its config
    fragment's ``intensity_transforms``) and one config serves both. With ``spatial_dims=3`` the preset
    and ``kwargs`` are not used at all, so a 3D config without ``volume_transforms`` is not rescaled.
    """
    if spatial_dims == 2:
        return get_preset(name, **kwargs)
    return Compose(list(volume_transforms))


def inference_transforms(
    preset: str,
    spatial_size: Sequence[int] | None,
    in_channels: int,
    preset_args: Mapping[str, Any] | None = None,
    spatial_dims: int = 2,
    intensity_transforms: Sequence[Callable] = (),
) -> Compose:
    """What an unlabelled image goes through before the classifier: loading, a check of its channel count and
    spatial dimensions, and the modality's transforms without augmentation (the validation pipeline of
    training, without masks).

    The modality's transforms are those of :func:`modality_preset`, as in the training configs: for 2D
    images (``spatial_dims=2``, the default) the ``preset`` with ``spatial_size`` and ``preset_args``; for
    3D volumes the dataset's own ``intensity_transforms`` (its config fragment's), ``preset`` and
    ``preset_args`` unused. The inference configs and the deploy app read it from here, so a deployed model
    sees the pixels the bundle's inference gives it.

    Args:
        preset: a name of :data:`PRESETS` (2D only).
        spatial_size: output size given to the preset (2D only).
        in_channels: channels the network takes; another count is an error naming the input.
        preset_args: further keyword arguments of the preset's factory (2D only).
        spatial_dims: the network's spatial dimensions: 2 for images, 3 for volumes; an input with another
            number is an error naming it.
        intensity_transforms: the transforms of a 3D volume after loading (3D only).
    """
    modality = modality_preset(
        preset,
        spatial_dims,
        intensity_transforms,
        keys=["image"],
        mask_keys=[],
        spatial_size=spatial_size,
        augment=False,
        **(preset_args or {}),
    )
    return Compose(
        [
            LoadImageOrArrayd(keys=["image"]),
            ValidateItemd(expected_channels=in_channels, spatial_dims=spatial_dims),
            modality,
        ]
    )
