"""Teacher masks for attention supervision: every item gets one, and a flag saying if it is real."""

from __future__ import annotations

import logging
import os
from collections.abc import Hashable, Mapping
from pathlib import Path

import numpy as np
import torch
from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.transforms import Compose, MapTransform

from monai_xai.data.image_reader import PIL_SUFFIXES
from monai_xai.errors import InputError
from monai_xai.transforms.io import SOURCE_KEY, LoadImageOrArrayd

__all__ = ["EnsureMaskd", "LoadCorrectedMapd", "with_corrected_maps"]

logger = logging.getLogger(__name__)
#: How many distinct values an error message lists.
_MAX_VALUES = 8


class EnsureMaskd(MapTransform):
    """Binarise the mask, or add an all-zero one with ``has_mask = 0`` when the item has none.

    Batches need the same keys in every item, while L_map must only count real masks: the
    ``has_mask`` flag carries that distinction through collation. With ``require_mask=True`` a
    missing mask is an error naming the image instead.

    A mask must hold the values {0, 1} or {0, 255}: a label map (0..k), a soft or 16-bit mask would
    otherwise turn into one large lesion without a word. Other masks are an error naming the file and the
    values found, unless ``mask_threshold`` is given: foreground is then every value above it. A NaN or
    infinite value is always an error. A mask that is mostly foreground is likely inverted and logged as a
    warning (once per file).
    """

    def __init__(
        self,
        image_key: str = "image",
        mask_key: str = "mask",
        flag_key: str = "has_mask",
        require_mask: bool = False,
        mask_threshold: float | None = None,
    ):
        super().__init__([mask_key], allow_missing_keys=True)
        self.image_key, self.mask_key, self.flag_key = image_key, mask_key, flag_key
        self.require_mask = require_mask
        self.mask_threshold = None if mask_threshold is None else float(mask_threshold)
        self._warned: set[str] = set()

    def __call__(self, data: Mapping[Hashable, object]) -> dict:
        d = dict(data)
        image = d[self.image_key]
        mask = d.get(self.mask_key)
        if mask is None:
            if self.require_mask:
                name = getattr(image, "meta", {}).get("filename_or_obj") or d.get("source")
                raise InputError(
                    name, f"no '{self.mask_key}' entry, but this workflow requires a mask per image"
                )
            zeros = torch.zeros((1, *image.shape[1:]), dtype=torch.float32)
            d[self.mask_key] = (
                MetaTensor(zeros, meta=dict(image.meta)) if isinstance(image, MetaTensor) else zeros
            )
            d[self.flag_key] = np.int64(0)
            return d
        binary = self._binarise(mask, getattr(mask, "meta", {}).get("filename_or_obj") or d.get(SOURCE_KEY))
        d[self.mask_key] = (
            MetaTensor(binary, meta=dict(mask.meta)) if isinstance(mask, MetaTensor) else binary
        )
        d[self.flag_key] = np.int64(1)
        return d

    def _binarise(self, mask: torch.Tensor, name: object) -> torch.Tensor:
        """Float 0/1 ``(1, ...)``: any channel of an RGB mask counts."""
        values = mask.as_tensor() if isinstance(mask, MetaTensor) else torch.as_tensor(mask)
        if values.dtype in (torch.uint16, torch.uint32, torch.uint64):  # no CPU reductions on these
            values = values.to(torch.int64)
        if values.is_floating_point() and not bool(torch.isfinite(values).all()):
            nan, inf = int(torch.isnan(values).sum()), int(torch.isinf(values).sum())
            raise InputError(name, f"mask has {nan} NaN and {inf} infinite values")
        if self.mask_threshold is None:
            found = torch.unique(values)
            present = set(found.tolist())
            if not (present <= {0, 1} or present <= {0, 255}):
                shown = ", ".join(f"{v:g}" for v in found[:_MAX_VALUES].tolist())
                more = f", ... ({found.numel()} values)" if found.numel() > _MAX_VALUES else ""
                raise InputError(
                    name,
                    f"mask values {{{shown}{more}}} are not binary ({{0, 1}} or {{0, 255}}): a label map, a "
                    "soft or a 16-bit mask? Set mask_threshold to the value above which a pixel is lesion",
                )
            binary = values > 0
        else:
            binary = values > self.mask_threshold
        if binary.shape[0] > 1:  # an RGB mask: any channel set counts
            binary = binary.any(dim=0, keepdim=True)
        binary = binary.float()
        share = float(binary.mean()) if binary.numel() else 0.0
        if share > 0.5 and str(name) not in self._warned:
            self._warned.add(str(name))
            logger.warning(
                "%s: %.0f%% of the mask is foreground: is it inverted (lesion 0, background 1 or 255)?",
                name,
                100 * share,
            )
        return binary


class LoadCorrectedMapd(MapTransform):
    """Read expert-corrected attention maps, check their values and binarise them at half intensity.

    A corrected map takes the place of a lesion mask, whose rule (values {0, 1} or {0, 255}, above 0 is
    lesion) fits neither a map saved in another scale nor a soft map. Here:

    - image files (PNG, JPEG, BMP, TIFF) hold 8-bit intensities 0-255 (colour maps count by their brightest
      channel) and are divided by 255; a file with values above 255 (a 16-bit PNG) is refused;
    - NIfTI and DICOM files and in-memory arrays hold values in [0, 1]; anything outside is refused;
    - the scaled map is lesion where it reaches ``threshold`` (0.5: 128 of 255).

    Bad values raise :class:`~monai_xai.errors.InputError` naming the map file and the range found; a missing
    file is named by the loader. Items without a map (no key, or ``None``) pass unchanged, and a map of
    another size than its image is caught by :class:`~monai_xai.transforms.ValidateItemd`.
    """

    def __init__(self, keys: KeysCollection = "mask", threshold: float = 0.5) -> None:
        super().__init__(keys, allow_missing_keys=True)
        if not 0.0 < threshold <= 1.0:
            raise ValueError(f"threshold must lie in (0, 1], got {threshold}")
        self.threshold = threshold
        self.loader = LoadImageOrArrayd(keys, allow_missing_keys=True)

    def __call__(self, data: Mapping[Hashable, object]) -> dict:
        d = dict(data)
        eight_bit = {
            key: isinstance(d[key], (str, os.PathLike)) and Path(d[key]).suffix.lower() in PIL_SUFFIXES
            for key in self.key_iterator(d)
            if d[key] is not None
        }
        d = self.loader(d)
        for key, is_image_file in eight_bit.items():
            d[key] = self._binarise(d[key], 255.0 if is_image_file else 1.0, d.get(SOURCE_KEY))
        return d

    def _binarise(self, corrected: torch.Tensor, top: float, source: object) -> torch.Tensor:
        meta = dict(corrected.meta) if isinstance(corrected, MetaTensor) else {}
        name = meta.get("filename_or_obj") or source
        values = torch.as_tensor(corrected).float()
        if not bool(torch.isfinite(values).all()):
            nan, inf = int(torch.isnan(values).sum()), int(torch.isinf(values).sum())
            raise InputError(name, f"corrected map has {nan} NaN and {inf} infinite values")
        low, high = float(values.min()), float(values.max())
        if low < 0.0 or high > top:
            hint = (
                "maps in image files hold 8-bit values 0-255: save it as an 8-bit grey PNG"
                if top > 1.0
                else "maps in NIfTI or DICOM files and arrays hold values in [0, 1]: divide 0-255 maps by 255"
            )
            raise InputError(
                name, f"corrected map values lie in [{low:g}, {high:g}], outside [0, {top:g}] ({hint})"
            )
        binary = (values.amax(dim=0, keepdim=True) / top >= self.threshold).float()
        return MetaTensor(binary, meta=meta) if isinstance(corrected, MetaTensor) else binary


def with_corrected_maps(preprocessing: Compose, map_source: str, key: str = "mask") -> Compose:
    """The training ``preprocessing`` for fine-tuning on ``map_source`` maps stored under ``key``.

    Expert maps (``"corrected_map"``) are read and binarised by :class:`LoadCorrectedMapd` first; lesion
    masks standing in for them (``"mask"``) go through ``preprocessing`` unchanged, as in training.
    """
    if map_source != "corrected_map":
        return preprocessing
    return Compose([LoadCorrectedMapd(key), preprocessing]).flatten()
