"""A modality preset as stages that a bundle config lists one by one, model-zoo style.

Why: a preset built by one expression cannot be changed by its ``#`` path. Spelled out as ``_target_``
items, each stage can: ``train#preprocessing#transforms#4#spatial_size``. A 2D preset is, in order:

1. :class:`PresetIntensityd`: the modality's own steps before resizing (checks, slicing, orientation,
   field-of-view crop, intensity scaling), chosen by the preset's name and ``preset_args``;
2. :class:`PresetResized`: the preset's resize rule (plain, letterboxed, lesion-keeping pooled masks, MRI
   pad/crop);
3. for training, MONAI's ``RandAffined`` (10 degrees, 10 % zoom, :func:`preset_translate_range`; masks moved
   by :func:`preset_mask_mode`), ``RandFlipd`` where :func:`preset_flip_axis` allows it,
   ``RandScaleIntensityd`` (0.1) and ``RandShiftIntensityd`` (0.05), each with ``prob=0.5``;
4. ``AsDiscreted`` for masks at :func:`preset_mask_threshold`, then ``EnsureTyped`` to float32.

:func:`preset_transforms` builds the same list in Python. 3D volumes (``spatial_dims=3``) take the dataset's
own ``intensity_transforms`` (its config fragment's) in stage 1, and nothing else: the presets are 2D, so
there is no preset resizing, augmentation or finalising of volumes. A 3D stage given ``preset_args``, or
without ``intensity_transforms``, is an :class:`~monai_xai.errors.InputError` naming the key; so is a 2D
one given ``intensity_transforms``, which only volumes use.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from monai.config import KeysCollection
from monai.transforms import (
    AsDiscreted,
    Compose,
    EnsureTyped,
    InvertibleTransform,
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
    Transform,
    allow_missing_keys_mode,
)
from monai.utils import ensure_tuple, look_up_option

from monai_xai.errors import InputError
from monai_xai.transforms.intensity import (
    CheckIntensityScaled,
    ExtractSliced,
    FieldOfViewCropd,
    InvertMonochrome1d,
    RemoveColorOverlayd,
    ToGrayscaled,
    ToRGBd,
)
from monai_xai.transforms.lesion_resize import ResizeMaskKeepLesionsd

__all__ = [
    "CT_WINDOWS",
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
]

CT_WINDOWS: dict[str, tuple[float, float]] = {
    "lung": (-600.0, 1500.0),
    "mediastinum": (50.0, 350.0),
    "bone": (400.0, 1800.0),
    "brain": (40.0, 80.0),
    "abdomen": (40.0, 400.0),
}
"""Named CT windows as (center, width) in Hounsfield units."""

#: image and mask resizing the fundus preset offers (the first of each: what every other preset does)
_IMAGE_RESIZE = ("bilinear", "area")
_MASK_RESIZE = ("nearest", "max")
#: the MRI preset's intensity scalings: to [-1, 1], or z-scores of the non-zero voxels
_MRI_INTENSITIES = ("minmax", "zscore")
#: where a mask moved by bilinear augmentation stays lesion: a one-pixel lesion keeps at least about 0.2
_LESION_KEEP_THRESHOLD = 0.1
#: the light augmentation's largest rotation
_ROTATE = math.radians(10.0)


def _keys(keys: KeysCollection) -> tuple[str, ...]:
    return tuple(ensure_tuple(keys))


def _ct_steps(
    keys: tuple[str, ...],
    mask_keys: tuple[str, ...],
    window: str | Sequence[float] = "lung",
    slice_axis: int | None = None,
    slice_index: int | None = None,
) -> list[MapTransform]:
    if isinstance(window, str):
        named = look_up_option(window, CT_WINDOWS, default=None)
        if named is None:
            raise InputError(
                None, f"'preset_args': unknown CT window {window!r}; valid names: {', '.join(CT_WINDOWS)}."
            )
        window = named
    center, width = (float(v) for v in window)
    steps: list[MapTransform] = [CheckIntensityScaled(keys=keys, preset="ct", refuse_unsigned=True)]
    if slice_axis is not None:
        steps.append(ExtractSliced(keys=keys + mask_keys, axis=slice_axis, index=slice_index))
    steps.append(
        ScaleIntensityRanged(
            keys=keys, a_min=center - width / 2, a_max=center + width / 2, b_min=0.0, b_max=1.0, clip=True
        )
    )
    return steps


def _mri_steps(
    keys: tuple[str, ...],
    mask_keys: tuple[str, ...],
    axcodes: str = "RAS",
    pixdim: Sequence[float] | None = (1.0, 1.0, 1.0),
    intensity: str = "minmax",
) -> list[MapTransform]:
    all_keys = keys + mask_keys
    steps: list[MapTransform] = [Orientationd(keys=all_keys, axcodes=axcodes, labels=None)]
    if pixdim is not None:
        steps.append(
            Spacingd(
                keys=all_keys,
                pixdim=tuple(pixdim),
                mode=("bilinear",) * len(keys) + ("nearest",) * len(mask_keys),
                dtype=np.float32,
            )
        )
    scaling = look_up_option(intensity, _MRI_INTENSITIES, default=None)
    if scaling is None:
        valid = ", ".join(_MRI_INTENSITIES)
        raise InputError(None, f"'preset_args': unknown MRI intensity scaling {intensity!r}; valid: {valid}.")
    if scaling == "minmax":
        steps.append(ScaleIntensityd(keys=keys, minv=-1.0, maxv=1.0))
    else:
        steps.append(NormalizeIntensityd(keys=keys, nonzero=True))
    return steps


def _xray_steps(
    keys: tuple[str, ...],
    mask_keys: tuple[str, ...],
    invert_monochrome1: bool = True,
    percentiles: Sequence[float] = (0.5, 99.5),
) -> list[MapTransform]:
    lower, upper = (float(p) for p in percentiles)
    steps: list[MapTransform] = [InvertMonochrome1d(keys=keys)] if invert_monochrome1 else []
    steps.append(
        ScaleIntensityRangePercentilesd(keys=keys, lower=lower, upper=upper, b_min=0.0, b_max=1.0, clip=True)
    )
    return steps


def _fundus_steps(
    keys: tuple[str, ...], mask_keys: tuple[str, ...], fov_crop: bool = True
) -> list[MapTransform]:
    steps: list[MapTransform] = [FieldOfViewCropd(keys=keys, mask_keys=mask_keys)] if fov_crop else []
    return steps + [ScaleIntensityd(keys=keys, minv=0.0, maxv=1.0)]


def _photo_rgb_steps(
    keys: tuple[str, ...], mask_keys: tuple[str, ...], max_value: float = 255.0
) -> list[MapTransform]:
    return [
        CheckIntensityScaled(keys=keys, preset="photo_rgb", max_value=max_value),
        ToRGBd(keys=keys),
        ScaleIntensityRanged(keys=keys, a_min=0.0, a_max=float(max_value), b_min=0.0, b_max=1.0, clip=True),
    ]


def _ultrasound_steps(
    keys: tuple[str, ...], mask_keys: tuple[str, ...], remove_overlays: bool = True
) -> list[MapTransform]:
    return [
        RemoveColorOverlayd(keys=keys) if remove_overlays else ToGrayscaled(keys=keys),
        ScaleIntensityd(keys=keys, minv=0.0, maxv=1.0),
    ]


def _resize(
    keys: tuple[str, ...], mask_keys: tuple[str, ...], spatial_size: Sequence[int] | int
) -> list[MapTransform]:
    """Anti-aliased bilinear for images (radiographs may shrink tenfold), pixel-centred nearest for masks.

    An int resizes the longer side to it and keeps the aspect ratio.
    """
    longest = isinstance(spatial_size, int)
    resize = Resized(
        keys=keys + mask_keys,
        spatial_size=spatial_size if longest else tuple(spatial_size),
        size_mode="longest" if longest else "all",
        mode=("bilinear",) * len(keys) + ("nearest-exact",) * len(mask_keys),
        anti_aliasing=(True,) * len(keys) + (False,) * len(mask_keys),
    )
    return [resize]


def _mri_resize(
    keys: tuple[str, ...], mask_keys: tuple[str, ...], spatial_size: Sequence[int]
) -> list[MapTransform]:
    """Pad or crop: the resampling to ``pixdim`` already set the voxel size, which resizing would change."""
    return [ResizeWithPadOrCropd(keys=keys + mask_keys, spatial_size=tuple(spatial_size))]


def _photo_rgb_resize(
    keys: tuple[str, ...], mask_keys: tuple[str, ...], spatial_size: Sequence[int], keep_aspect: bool = True
) -> list[MapTransform]:
    """Letterboxed (the longer side to the shorter of ``spatial_size``, zero-padded), or stretched."""
    if not keep_aspect:
        return _resize(keys, mask_keys, spatial_size)
    pad = ResizeWithPadOrCropd(keys=keys + mask_keys, spatial_size=tuple(spatial_size))
    return _resize(keys, mask_keys, int(min(spatial_size))) + [pad]


def _fundus_resize(
    keys: tuple[str, ...],
    mask_keys: tuple[str, ...],
    spatial_size: Sequence[int],
    image_resize: str = "bilinear",
    mask_resize: str = "nearest",
) -> list[MapTransform]:
    """Images by ``image_resize`` and masks by ``mask_resize``, for small lesions that must not vanish.

    ``"area"`` makes each image pixel the mean of its footprint and adds no smoothing of its own, so a small
    bright lesion dims but stays; ``"max"`` masks keep every lesion (:class:`ResizeMaskKeepLesionsd`).
    """
    if image_resize == "bilinear" and mask_resize == "nearest":
        return _resize(keys, mask_keys, spatial_size)
    longest = isinstance(spatial_size, int)
    sizing = {
        "spatial_size": spatial_size if longest else tuple(spatial_size),
        "size_mode": "longest" if longest else "all",
    }
    resize: list[MapTransform] = [
        Resized(keys=keys, mode=image_resize, anti_aliasing=image_resize == "bilinear", **sizing)
    ]
    if not mask_keys:
        return resize
    if mask_resize == "max":
        return resize + [ResizeMaskKeepLesionsd(mask_keys, mode="max", **sizing)]
    return resize + [Resized(keys=mask_keys, mode="nearest-exact", **sizing)]


def _check_fundus_resize(image_resize: str = "bilinear", mask_resize: str = "nearest") -> None:
    # checked as given, not through look_up_option: the resize steps use the names verbatim
    if image_resize not in _IMAGE_RESIZE or mask_resize not in _MASK_RESIZE:
        raise InputError(
            None,
            f"'preset_args': image_resize must be one of {_IMAGE_RESIZE} and mask_resize one of "
            f"{_MASK_RESIZE}, got {image_resize!r} and {mask_resize!r}",
        )


@dataclass(frozen=True)
class _Preset:
    """What a preset does in each stage, and which of its ``preset_args`` each stage takes."""

    steps: Callable[..., list[MapTransform]]
    intensity_args: tuple[str, ...]
    resize: Callable[..., list[MapTransform]] = _resize
    resize_args: tuple[str, ...] = ()
    flip_axis: int | None = None


_PRESETS: dict[str, _Preset] = {
    "ct": _Preset(_ct_steps, ("window", "slice_axis", "slice_index")),
    "mri": _Preset(_mri_steps, ("axcodes", "pixdim", "intensity"), resize=_mri_resize),
    "xray": _Preset(_xray_steps, ("invert_monochrome1", "percentiles")),
    "fundus": _Preset(
        _fundus_steps, ("fov_crop",), _fundus_resize, ("image_resize", "mask_resize"), flip_axis=1
    ),
    "photo_rgb": _Preset(_photo_rgb_steps, ("max_value",), _photo_rgb_resize, ("keep_aspect",), flip_axis=1),
    "ultrasound": _Preset(_ultrasound_steps, ("remove_overlays",), flip_axis=1),
}

PRESET_NAMES: tuple[str, ...] = tuple(_PRESETS)
"""The modality presets by name: ``ct``, ``mri``, ``xray``, ``fundus``, ``photo_rgb``, ``ultrasound``."""


def _preset(name: str) -> _Preset:
    return look_up_option(name, _PRESETS)


def _stage_args(name: str, preset_args: Mapping[str, Any] | None, stage: str) -> dict[str, Any]:
    """The part of ``preset_args`` that one stage takes; a name no stage of the preset takes is an error."""
    preset = _preset(name)
    args = dict(preset_args or {})
    unknown = sorted(set(args) - set(preset.intensity_args) - set(preset.resize_args))
    if unknown:
        raise InputError(
            None,
            f"'preset_args': {', '.join(map(repr, unknown))} is not an argument of the {name!r} preset; "
            f"it takes {', '.join(preset.intensity_args + preset.resize_args) or 'none'}",
        )
    own = preset.intensity_args if stage == "intensity" else preset.resize_args
    return {key: value for key, value in args.items() if key in own}


def _check_volume(preset_args: Mapping[str, Any] | None, intensity_transforms: Sequence[Callable]) -> None:
    if preset_args:
        raise InputError(
            None,
            f"'preset_args': {', '.join(map(repr, preset_args))} are arguments of the 2D presets, which a 3D "
            "run (spatial_dims=3) does not use: its volumes take 'intensity_transforms' only; set "
            "preset_args to {}",
        )
    if not intensity_transforms:
        raise InputError(
            None,
            "'intensity_transforms' is empty: a 3D run (spatial_dims=3) scales its volumes only by them (the "
            "presets are 2D); give them in the dataset's config fragment, as configs/datasets/"
            "adrenalmnist3d.json does",
        )


class _Stage(MapTransform, InvertibleTransform):
    """A deterministic run of dictionary transforms that inverts as they do (the attention editor inverts the
    validation pipeline), and is not random, so that ``CacheDataset`` caches past it."""

    def __init__(self, keys: KeysCollection, transforms: Sequence[Callable]) -> None:
        super().__init__(keys)
        self.transform = Compose(list(transforms))

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        # called one by one, not through the inner Compose, so that a transform's error (an InputError naming
        # the file) is the cause of the pipeline's RuntimeError, as without the stage
        d = dict(data)
        for transform in self.transform.transforms:
            d = transform(d)
        return d

    def inverse(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        # ``Invertd`` allows missing keys on the MapTransforms it finds: the stages, not those inside them
        d = dict(data)
        with allow_missing_keys_mode(self.transform) if self.allow_missing_keys else nullcontext():
            for transform in reversed(self.transform.transforms):
                if isinstance(transform, InvertibleTransform):
                    d = transform.inverse(d)
        return d


class PresetIntensityd(_Stage):
    """A preset's steps before resizing, chosen by name, or a 3D dataset's own ``intensity_transforms``.

    Args:
        keys: image keys.
        preset: a name of :data:`PRESET_NAMES`.
        preset_args: the preset's arguments (all stages'; this one takes its own, e.g. ``window`` or
            ``remove_overlays``); a name the preset does not take is an error.
        mask_keys: mask keys that follow the images spatially (slices, crops, orientation).
        spatial_dims: 2 for images (the preset's steps), 3 for volumes (``intensity_transforms``).
        intensity_transforms: a volume's transforms after loading (3D only).
    """

    def __init__(
        self,
        keys: KeysCollection,
        preset: str,
        preset_args: Mapping[str, Any] | None = None,
        mask_keys: KeysCollection = (),
        spatial_dims: int = 2,
        intensity_transforms: Sequence[Callable] = (),
    ) -> None:
        keys, mask_keys = _keys(keys), _keys(mask_keys)
        if spatial_dims == 3:
            _check_volume(preset_args, intensity_transforms)
            super().__init__(keys, intensity_transforms)
            return
        if intensity_transforms:
            raise InputError(
                None,
                "'intensity_transforms' are a 3D volume's transforms; a 2D run (spatial_dims=2) takes the "
                f"{preset!r} preset's steps (changed through 'preset_args'): set intensity_transforms to []",
            )
        args = _stage_args(preset, preset_args, "intensity")
        super().__init__(keys, _preset(preset).steps(keys, mask_keys, **args))


class PresetResized(_Stage):
    """A preset's resize rule: anti-aliased bilinear images and nearest masks, or the preset's own.

    ``photo_rgb`` letterboxes (``keep_aspect``), ``fundus`` can shrink by footprint means and keep every
    lesion in the mask (``image_resize="area"``, ``mask_resize="max"``), ``mri`` pads or crops (its spacing is
    set by resampling).

    Args:
        keys: image keys.
        preset: a name of :data:`PRESET_NAMES`.
        spatial_size: the output size; ``None`` keeps the input size.
        preset_args: the preset's arguments (all stages'; this one takes ``keep_aspect``, ``image_resize``,
            ``mask_resize``).
        mask_keys: mask keys resized with the images.
    """

    def __init__(
        self,
        keys: KeysCollection,
        preset: str,
        spatial_size: Sequence[int] | None,
        preset_args: Mapping[str, Any] | None = None,
        mask_keys: KeysCollection = (),
    ) -> None:
        keys, mask_keys = _keys(keys), _keys(mask_keys)
        args = _stage_args(preset, preset_args, "resize")
        if preset == "fundus":
            _check_fundus_resize(**args)
        steps = [] if spatial_size is None else _preset(preset).resize(keys, mask_keys, spatial_size, **args)
        super().__init__(keys, steps)


def _keeps_lesions(preset: str, preset_args: Mapping[str, Any] | None) -> bool:
    mask_resize = _stage_args(preset, preset_args, "resize").get("mask_resize", "nearest")
    return preset == "fundus" and mask_resize != "nearest"


def preset_flip_axis(preset: str) -> int | None:
    """The axis a preset's augmentation may flip (left/right eyes, ultrasound, photographs); ``None`` where a
    flip would mirror anatomy whose side matters (CT, MRI, radiographs).

    Args:
        preset: a name of :data:`PRESET_NAMES`.
    """
    return _preset(preset).flip_axis


def preset_mask_mode(preset: str, preset_args: Mapping[str, Any] | None = None) -> str:
    """How augmentation moves masks: ``"nearest"``, or ``"bilinear"`` where masks keep lesions narrower than
    the sampling step (``fundus`` with ``mask_resize="max"``; binarised low then).

    Args:
        preset: a name of :data:`PRESET_NAMES`.
        preset_args: the preset's arguments.
    """
    return "bilinear" if _keeps_lesions(preset, preset_args) else "nearest"


def preset_mask_threshold(preset: str, preset_args: Mapping[str, Any] | None = None) -> float:
    """Where a mask is lesion at the end: 0.5, or 0.1 where augmentation moved it by interpolation (a
    one-pixel lesion keeps about 0.2).

    Args:
        preset: a name of :data:`PRESET_NAMES`.
        preset_args: the preset's arguments.
    """
    return _LESION_KEEP_THRESHOLD if _keeps_lesions(preset, preset_args) else 0.5


def preset_translate_range(spatial_size: Sequence[int] | None) -> tuple[float, ...] | None:
    """The augmentation's largest shift: 5 % of each side of ``spatial_size`` (``None``: no shift).

    Args:
        spatial_size: the output size of the resize stage.
    """
    return None if spatial_size is None else tuple(0.05 * s for s in spatial_size)


def preset_augmentations(
    preset: str,
    keys: KeysCollection = ("image",),
    mask_keys: KeysCollection = (),
    spatial_size: Sequence[int] | None = None,
    preset_args: Mapping[str, Any] | None = None,
    spatial_dims: int = 2,
) -> list[MapTransform]:
    """Light training augmentation: small rotation, zoom and shift, the preset's flip, mild intensity jitter.

    Args:
        preset: a name of :data:`PRESET_NAMES`.
        keys: image keys.
        mask_keys: mask keys moved with the images.
        spatial_size: the resize stage's output size (sets the shift).
        preset_args: the preset's arguments.
        spatial_dims: 2 or 3, the dimensions the rotation and zoom act in.
    """
    keys, mask_keys = _keys(keys), _keys(mask_keys)
    all_keys = keys + mask_keys
    augment: list[MapTransform] = [
        RandAffined(
            keys=all_keys,
            prob=0.5,
            rotate_range=(_ROTATE,) if spatial_dims == 2 else (_ROTATE,) * 3,
            scale_range=(0.1,) * spatial_dims,
            translate_range=preset_translate_range(spatial_size),
            mode=("bilinear",) * len(keys) + (preset_mask_mode(preset, preset_args),) * len(mask_keys),
            padding_mode="zeros",
        )
    ]
    flip_axis = preset_flip_axis(preset)
    if flip_axis is not None:
        augment.append(RandFlipd(keys=all_keys, prob=0.5, spatial_axis=flip_axis))
    return augment + [
        RandScaleIntensityd(keys=keys, factors=0.1, prob=0.5),
        RandShiftIntensityd(keys=keys, offsets=0.05, prob=0.5),
    ]


def preset_finalize(
    preset: str,
    keys: KeysCollection = ("image",),
    mask_keys: KeysCollection = (),
    preset_args: Mapping[str, Any] | None = None,
) -> list[MapTransform]:
    """Binary masks (at :func:`preset_mask_threshold`) and float32 outputs.

    Args:
        preset: a name of :data:`PRESET_NAMES`.
        keys: image keys.
        mask_keys: mask keys to binarise.
        preset_args: the preset's arguments.
    """
    keys, mask_keys = _keys(keys), _keys(mask_keys)
    final: list[MapTransform] = []
    if mask_keys:
        final.append(AsDiscreted(keys=mask_keys, threshold=preset_mask_threshold(preset, preset_args)))
    return final + [EnsureTyped(keys=keys + mask_keys, dtype=torch.float32)]


def _augment_dims(preset: str, spatial_size: Sequence[int] | None, preset_args: Mapping[str, Any]) -> int:
    """The dimensions a preset's pixels have after its stages: MRI its orientation's, CT its output size's."""
    if preset == "mri":
        return len(preset_args.get("axcodes", "RAS"))
    if preset == "ct" and spatial_size is not None:
        return len(spatial_size)
    return 2


def preset_transforms(
    preset: str,
    keys: KeysCollection = ("image",),
    mask_keys: KeysCollection = (),
    spatial_size: Sequence[int] | None = None,
    augment: bool = False,
    preset_args: Mapping[str, Any] | None = None,
    spatial_dims: int = 2,
    intensity_transforms: Sequence[Callable] = (),
) -> list[Transform]:
    """The stages of the module docstring as a list, what the bundle configs spell out item by item.

    Args:
        preset: a name of :data:`PRESET_NAMES`.
        keys: image keys.
        mask_keys: mask keys that follow the images.
        spatial_size: the resize stage's output size; ``None`` keeps the input size.
        augment: add the light training augmentation.
        preset_args: the preset's arguments (see :class:`PresetIntensityd`, :class:`PresetResized`).
        spatial_dims: 2 for images; 3 for volumes, which take ``intensity_transforms`` only.
        intensity_transforms: a volume's transforms after loading (3D only).
    """
    intensity = PresetIntensityd(keys, preset, preset_args, mask_keys, spatial_dims, intensity_transforms)
    if spatial_dims == 3:
        return [intensity]
    stages: list[Transform] = [intensity, PresetResized(keys, preset, spatial_size, preset_args, mask_keys)]
    if augment:
        dims = _augment_dims(preset, spatial_size, dict(preset_args or {}))
        stages += preset_augmentations(preset, keys, mask_keys, spatial_size, preset_args, dims)
    return stages + preset_finalize(preset, keys, mask_keys, preset_args)
