"""Modality-specific dictionary transforms that MONAI does not provide.

They run after loading, on channel-first images (``MetaTensor`` or ``torch.Tensor``), and are the building
blocks of :mod:`monai_xai.transforms.presets`. Percentile clipping and scaling is MONAI's own
``ScaleIntensityRangePercentilesd`` and is therefore not repeated here.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any

import torch
import torch.nn.functional as F
from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.data.meta_obj import get_track_meta
from monai.transforms import MapTransform, SpatialCrop, SqueezeDim
from monai.utils import convert_to_dst_type, convert_to_tensor, ensure_tuple

from monai_xai.errors import InputError
from monai_xai.transforms.io import SOURCE_KEY, STORED_DTYPE_KEY

__all__ = [
    "CheckIntensityScaled",
    "ExtractSliced",
    "FieldOfViewCropd",
    "InvertMonochrome1d",
    "RemoveColorOverlayd",
    "ToGrayscaled",
    "ToRGBd",
]

# Where a loader may have put the DICOM Photometric Interpretation (0028,0004): our own key, the keyword,
# ITKReader's "group|element" key and PydicomReader's JSON key (the latter only with prune_metadata=False).
_PHOTOMETRIC_META_KEYS = (
    "photometric",
    "photometric_interpretation",
    "PhotometricInterpretation",
    "0028|0004",
    "00280004",
)

# ITU-R BT.601 luma weights: the usual RGB to grayscale conversion.
_LUMA = (0.299, 0.587, 0.114)


def _photometric_value(value: Any) -> str:
    """Normalise the forms the tag takes (str, list, pydicom JSON dict) to an upper-case keyword."""
    if isinstance(value, Mapping):
        value = value.get("Value", "")
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, list | tuple):
        value = value[0] if value else ""
    return str(value).strip().upper()


def _luma(img: torch.Tensor) -> torch.Tensor:
    """Grayscale (H, W, ...) from a channel-first image with 1, 3 or 4 (alpha ignored) channels."""
    if img.shape[0] == 1:
        return img[0]
    if img.shape[0] not in (3, 4):
        raise ValueError(
            f"expected 1, 3 or 4 channels (grayscale, RGB or RGBA), got shape {tuple(img.shape)}."
        )
    weights = torch.tensor(_LUMA, dtype=img.dtype, device=img.device).reshape(3, *([1] * (img.ndim - 1)))
    return (img[:3] * weights).sum(0)


def _binary_dilate(mask: torch.Tensor, radius: int) -> torch.Tensor:
    """Dilate a 2D boolean mask with a square structuring element of half-width ``radius``."""
    if radius <= 0:
        return mask
    k = 2 * radius + 1
    return F.max_pool2d(mask[None, None].float(), k, stride=1, padding=radius)[0, 0] > 0


def _binary_open(mask: torch.Tensor, kernel_size: int) -> torch.Tensor:
    """Erode then dilate a 2D boolean mask: removes specks narrower than ``kernel_size``."""
    radius = kernel_size // 2
    return _binary_dilate(~_binary_dilate(~mask, radius), radius)


def _convex_fill(mask: torch.Tensor) -> torch.Tensor:
    """Fill each row and each column between its first and last foreground pixel, and intersect.

    Exact for convex shapes (a fundus field of view, also when clipped by the frame), and keeps dark
    vessels and lesions inside it, which plain thresholding would cut out.
    """
    m = mask.to(torch.int32)
    rows = (m.cumsum(1) > 0) & (m.flip(1).cumsum(1).flip(1) > 0)
    cols = (m.cumsum(0) > 0) & (m.flip(0).cumsum(0).flip(0) > 0)
    return rows & cols


class CheckIntensityScaled(MapTransform):
    """Refuse images that a preset's fixed intensity scale would clip, naming the file and its stored type.

    Scaling by percentiles or by each image's range keeps any range, 16-bit included; a fixed scale does
    not. ``photo_rgb`` divides by ``max_value`` (255 for 8-bit photographs), so a 16-bit image would come
    out white; ``ct`` windows Hounsfield units, which go negative (air is -1000), so an image stored
    unsigned (a uint16 PNG, a DICOM without rescale) holds raw pixel values the window would clip.

    The stored type is the loader's ``meta["stored_dtype"]``, else the tensor's own type.

    Args:
        keys: image keys.
        preset: the preset's name, for the message.
        max_value: the largest value the scale takes; ``None`` for no limit.
        refuse_unsigned: refuse images stored as unsigned integers (values not in a signed unit).
        allow_missing_keys: do not raise for absent keys.
    """

    def __init__(
        self,
        keys: KeysCollection,
        preset: str,
        max_value: float | None = None,
        refuse_unsigned: bool = False,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.preset = preset
        self.max_value = None if max_value is None else float(max_value)
        self.refuse_unsigned = refuse_unsigned

    def __call__(self, data: Mapping[Hashable, Any]) -> Mapping[Hashable, Any]:
        for key in self.key_iterator(dict(data)):
            image = data[key]
            meta = image.meta if isinstance(image, MetaTensor) else {}
            stored = str(meta.get(STORED_DTYPE_KEY) or str(image.dtype).removeprefix("torch."))
            name = meta.get("filename_or_obj") or data.get(SOURCE_KEY)
            if self.refuse_unsigned and stored.startswith("uint"):
                raise InputError(
                    name,
                    f"stored as {stored}: raw pixel values, not the Hounsfield units the {self.preset!r} "
                    "preset windows (they go negative). Store HU (NIfTI, or DICOM with Rescale "
                    "Slope/Intercept), or use a preset that scales each image (xray, ultrasound)",
                )
            if self.max_value is not None and image.numel():
                top = float(torch.as_tensor(image).to(torch.float32).max())
                if top > self.max_value:
                    raise InputError(
                        name,
                        f"values reach {top:g} (stored as {stored}), above the max_value "
                        f"{self.max_value:g} that the {self.preset!r} preset divides by and would clip: "
                        "set its max_value to the images' full scale (65535 for 16-bit, 4095 for 12-bit)",
                    )
        return data


class InvertMonochrome1d(MapTransform):
    """Invert MONOCHROME1 images (minimum shown white) so that all radiographs share MONOCHROME2 contrast.

    A classifier fed both conventions learns two opposite appearances of the same anatomy. The
    photometric interpretation is read from the image's meta data (keys ``photometric``,
    ``PhotometricInterpretation``, ``0028|0004`` or ``00280004``), else from the item's
    ``photometric_key``. Inverted images are ``max + min - x`` (range kept, float32) and their meta
    ``photometric`` becomes ``MONOCHROME2``, so applying the transform twice is harmless.

    Args:
        keys: image keys.
        photometric_key: item key holding the interpretation when the meta data do not; ``None`` to ignore.
        force: invert regardless of the interpretation (for sources known to be MONOCHROME1).
        allow_missing_keys: do not raise for absent keys.
    """

    def __init__(
        self,
        keys: KeysCollection,
        photometric_key: str | None = "photometric",
        force: bool = False,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.photometric_key = photometric_key
        self.force = force

    def _is_monochrome1(self, data: Mapping[Hashable, Any], key: Hashable) -> bool:
        meta = data[key].meta if isinstance(data[key], MetaTensor) else {}
        for meta_key in _PHOTOMETRIC_META_KEYS:
            if meta_key in meta:
                return _photometric_value(meta[meta_key]) == "MONOCHROME1"
        if self.photometric_key is not None and self.photometric_key in data:
            return _photometric_value(data[self.photometric_key]) == "MONOCHROME1"
        return False

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            if not (self.force or self._is_monochrome1(d, key)):
                continue
            img = convert_to_tensor(d[key], dtype=torch.float32, track_meta=get_track_meta())
            img = img.max() + img.min() - img
            if isinstance(img, MetaTensor):
                img.meta["photometric"] = "MONOCHROME2"
            d[key] = img
        return d


class ToGrayscaled(MapTransform):
    """Convert RGB(A) images to one float32 luma channel (BT.601); one-channel images pass through as float32.

    Ultrasound and some X-ray exports are saved as RGB although the signal is grayscale; models expect
    one channel.
    """

    def __init__(self, keys: KeysCollection, allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            img = convert_to_tensor(d[key], dtype=torch.float32, track_meta=False)
            d[key] = convert_to_dst_type(_luma(img)[None], d[key], dtype=torch.float32)[0]
        return d


class ToRGBd(MapTransform):
    """Make images three float32 RGB channels: one channel is repeated, an alpha channel dropped.

    A colour network needs three channels from every input, and a folder of photographs may hold a few
    saved in grey or with transparency.
    """

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            img = convert_to_tensor(d[key], dtype=torch.float32, track_meta=False)
            if img.shape[0] not in (1, 3, 4):
                raise ValueError(
                    f"expected 1, 3 or 4 channels (grayscale, RGB or RGBA), got shape {tuple(img.shape)}."
                )
            rgb = img.expand(3, *img.shape[1:]) if img.shape[0] == 1 else img[:3]
            d[key] = convert_to_dst_type(rgb.contiguous(), d[key], dtype=torch.float32)[0]
        return d


class RemoveColorOverlayd(MapTransform):
    """Remove coloured annotations (calipers, text, boxes) from grayscale ultrasound; output one channel.

    Burnt-in overlays are information a classifier must not use (they often reveal the diagnosis), and
    they draw saliency maps away from the tissue. A pixel is overlay when its channels differ by more than
    ``tolerance`` times the image's intensity range; overlay pixels (dilated by ``dilate`` pixels to
    catch compression fringes) are replaced by the median of the valid grayscale pixels in a
    ``kernel_size`` window, repeatedly, so that lines wider than the window fill from their borders.
    One-channel images have no colour to detect and pass through as float32.

    Args:
        keys: image keys, channel-first RGB(A) or one channel, 2D.
        tolerance: channel spread, as a fraction of the intensity range, above which a pixel is overlay.
        kernel_size: odd width of the neighbourhood whose median replaces an overlay pixel.
        dilate: pixels by which the overlay mask is grown before filling.
        allow_missing_keys: do not raise for absent keys.
    """

    def __init__(
        self,
        keys: KeysCollection,
        tolerance: float = 0.04,
        kernel_size: int = 5,
        dilate: int = 1,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        if kernel_size < 3 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd and >= 3, got {kernel_size}.")
        self.tolerance = tolerance
        self.kernel_size = kernel_size
        self.dilate = dilate

    def overlay_mask(self, img: torch.Tensor) -> torch.Tensor:
        """Boolean (H, W) mask of coloured pixels, before dilation."""
        rgb = img[:3]
        intensity_range = rgb.max() - rgb.min()
        return (rgb.amax(0) - rgb.amin(0)) > self.tolerance * intensity_range

    def _fill(self, gray: torch.Tensor, overlay: torch.Tensor) -> torch.Tensor:
        radius = self.kernel_size // 2
        values = gray.masked_fill(overlay, float("nan"))
        offsets = torch.arange(-radius, radius + 1, device=gray.device)
        dy, dx = torch.meshgrid(offsets, offsets, indexing="ij")
        dy, dx = dy.reshape(1, -1) + radius, dx.reshape(1, -1) + radius
        missing = overlay.nonzero()
        while len(missing):
            padded = F.pad(values[None, None], (radius,) * 4, value=float("nan"))[0, 0]
            neighbours = padded[missing[:, :1] + dy, missing[:, 1:] + dx]
            median = neighbours.nanmedian(dim=1).values
            filled = ~median.isnan()
            if not filled.any():
                break
            values[missing[filled, 0], missing[filled, 1]] = median[filled]
            missing = missing[~filled]
        # Pixels with no valid pixel reachable (an all-colour image) keep their plain luma.
        return torch.where(values.isnan(), gray, values)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            img = convert_to_tensor(d[key], dtype=torch.float32, track_meta=False)
            gray = _luma(img)
            if img.shape[0] > 1:
                if img.ndim != 3:
                    raise ValueError(
                        f"RemoveColorOverlayd expects 2D images (C, H, W), got {tuple(img.shape)}."
                    )
                gray = self._fill(gray, _binary_dilate(self.overlay_mask(img), self.dilate))
            d[key] = convert_to_dst_type(gray[None], d[key], dtype=torch.float32)[0]
        return d


class FieldOfViewCropd(MapTransform):
    """Find the circular field of view (FOV) of a fundus photograph, blank what lies outside, crop to it.

    The black surround carries no anatomy but differs between cameras, so a model can learn the device
    instead of the retina; cropping also spends the input resolution on the retina. The FOV is where the
    brightest channel exceeds ``threshold`` of the intensity range, opened to remove specks (text,
    noise) and filled as a convex region. Image ``keys`` are zeroed outside it; ``mask_keys`` are only
    cropped, by the same box, so that lesion masks stay aligned.

    Args:
        keys: image keys, channel-first 2D.
        mask_keys: keys cropped along with the images but not blanked.
        source_key: image whose FOV is used for all keys; defaults to the first of ``keys``.
        threshold: fraction of the source's intensity range above which a pixel is inside the FOV.
        kernel_size: width of the opening that removes bright specks outside the FOV.
        crop: crop all keys to the FOV's bounding box; if False, only blank the outside.
        margin: pixels kept around the bounding box.
        fov_key: if set, the (cropped) FOV is stored there as a float32 one-channel mask, e.g. to
            restrict attention maps.
        allow_missing_keys: do not raise for absent keys.
    """

    def __init__(
        self,
        keys: KeysCollection,
        mask_keys: KeysCollection = (),
        source_key: str | None = None,
        threshold: float = 0.1,
        kernel_size: int = 5,
        crop: bool = True,
        margin: int = 0,
        fov_key: str | None = None,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.mask_keys = ensure_tuple(mask_keys)
        self.source_key = self.keys[0] if source_key is None else source_key
        self.threshold = threshold
        self.kernel_size = kernel_size
        self.crop = crop
        self.margin = margin
        self.fov_key = fov_key

    def field_of_view(self, img: torch.Tensor) -> torch.Tensor:
        """Boolean (H, W) FOV of a channel-first 2D image; all True when nothing stands out."""
        if img.ndim != 3:
            raise ValueError(f"FieldOfViewCropd expects 2D images (C, H, W), got {tuple(img.shape)}.")
        brightest = img.to(torch.float32).amax(0)
        low, high = brightest.min(), brightest.max()
        bright = brightest > low + self.threshold * (high - low)
        # Opening drops specks; dilating it back and intersecting restores the rim's thin tips.
        core = _binary_dilate(_binary_open(bright, self.kernel_size), self.kernel_size // 2)
        fov = _convex_fill(bright & core)
        return fov if fov.any() else torch.ones_like(fov)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        source = d[self.source_key]
        fov = self.field_of_view(convert_to_tensor(source, track_meta=False))
        for key in self.key_iterator(d):
            img = convert_to_tensor(d[key], track_meta=get_track_meta())
            d[key] = torch.where(fov.to(img.device), img, torch.zeros((), dtype=img.dtype, device=img.device))
        if self.fov_key is not None:
            d[self.fov_key] = convert_to_dst_type(fov[None], source, dtype=torch.float32)[0]
        if not self.crop:
            return d
        rows, cols = fov.any(1).nonzero()[:, 0], fov.any(0).nonzero()[:, 0]
        start = [max(int(rows[0]) - self.margin, 0), max(int(cols[0]) - self.margin, 0)]
        end = [int(rows[-1]) + 1 + self.margin, int(cols[-1]) + 1 + self.margin]
        cropper = SpatialCrop(roi_start=start, roi_end=end)
        crop_keys = [*self.keys, *self.mask_keys, *([self.fov_key] if self.fov_key is not None else [])]
        for key in crop_keys:
            if key in d:
                d[key] = cropper(d[key])
            elif not self.allow_missing_keys:
                raise KeyError(f"key {key!r} is not in the data and allow_missing_keys is False.")
        return d


class ExtractSliced(MapTransform):
    """Take one slice of a 3D volume as a 2D image, so that 2D classifiers can consume CT or MRI volumes.

    The affine is updated (origin moved to the slice, then the sliced axis dropped), so the slice keeps
    its in-plane spacing and position for later spatial transforms and saliency overlays.

    Args:
        keys: keys of channel-first 3D volumes (C, H, W, D); masks listed here get the same slice.
        axis: spatial axis to slice (0, 1 or 2; the channel axis is not counted).
        index: slice index along ``axis`` (negative counts from the end); ``None`` for the middle slice.
        allow_missing_keys: do not raise for absent keys.
    """

    def __init__(
        self,
        keys: KeysCollection,
        axis: int = 2,
        index: int | None = None,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.axis = axis
        self.index = index

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            img = d[key]
            if img.ndim != 4 or not 0 <= self.axis < 3:
                raise ValueError(
                    f"expected a (C, H, W, D) volume and axis in 0..2, got {tuple(img.shape)}, "
                    f"axis={self.axis}."
                )
            size = img.shape[self.axis + 1]
            index = size // 2 if self.index is None else self.index
            if not -size <= index < size:
                raise IndexError(f"slice index {index} out of range for axis {self.axis} of size {size}.")
            index %= size
            roi = [slice(None)] * 3
            roi[self.axis] = slice(index, index + 1)
            d[key] = SqueezeDim(dim=self.axis + 1)(SpatialCrop(roi_slices=roi)(img))
        return d
