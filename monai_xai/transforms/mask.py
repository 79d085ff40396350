"""Teacher masks for attention supervision: every item gets one, and a flag saying if it is real."""

from __future__ import annotations

from collections.abc import Hashable, Mapping

import numpy as np
import torch
from monai.data import MetaTensor
from monai.transforms import MapTransform

__all__ = ["EnsureMaskd"]


class EnsureMaskd(MapTransform):
    """Binarise the mask, or add an all-zero one with ``has_mask = 0`` when the item has none.

    Batches need the same keys in every item, while L_map must only count real masks: the
    ``has_mask`` flag carries that distinction through collation. With ``require_mask=True`` a
    missing mask is an error naming the image instead.
    """

    def __init__(
        self,
        image_key: str = "image",
        mask_key: str = "mask",
        flag_key: str = "has_mask",
        require_mask: bool = False,
    ):
        super().__init__([mask_key], allow_missing_keys=True)
        self.image_key, self.mask_key, self.flag_key = image_key, mask_key, flag_key
        self.require_mask = require_mask

    def __call__(self, data: Mapping[Hashable, object]) -> dict:
        d = dict(data)
        image = d[self.image_key]
        mask = d.get(self.mask_key)
        if mask is None:
            if self.require_mask:
                from monai_xai.errors import InputError

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
        binary = torch.as_tensor(mask) > 0
        if binary.shape[0] > 1:  # an RGB mask: any channel set counts
            binary = binary.any(dim=0, keepdim=True)
        binary = binary.float()
        d[self.mask_key] = (
            MetaTensor(binary, meta=dict(mask.meta)) if isinstance(mask, MetaTensor) else binary
        )
        d[self.flag_key] = np.int64(1)
        return d
