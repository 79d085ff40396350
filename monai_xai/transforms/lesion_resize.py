"""Resize lesion masks so that no lesion disappears: an output pixel is lesion where its footprint holds any.

Why: nearest-neighbour sampling keeps one source pixel per output pixel, so a lesion smaller than the
sampling step (a 3-pixel exudate when a 768-pixel fundus photograph shrinks to 256) is dropped from the mask
whenever no sample lands on it, and an attention map can then neither be trained toward it nor be credited
for finding it. Pooling over each output pixel's footprint (the source pixels it covers, as adaptive pooling
defines them: rows ``floor(i * H / h)`` to ``ceil((i + 1) * H / h)``) keeps every lesion, at the price of a
slight dilation:

* ``"max"``: an output pixel is lesion where any source pixel of its footprint is (binary in, binary out);
* ``"area"``: the share of its footprint that is lesion (soft), the target that
  :class:`~monai_xai.losses.AttentionMapLoss` derives from a full-resolution mask; binarised above 0 it has
  the support of ``"max"``.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from monai.config import KeysCollection
from monai.transforms import MapTransform, Resize
from monai.utils import look_up_option

__all__ = ["MASK_RESIZE_MODES", "ResizeMaskKeepLesionsd", "resize_mask_keep_lesions"]

#: How :func:`resize_mask_keep_lesions` reduces a footprint: its maximum, or its mean (the covered share).
MASK_RESIZE_MODES = ("max", "area")

_MAX_POOL = {1: F.adaptive_max_pool1d, 2: F.adaptive_max_pool2d, 3: F.adaptive_max_pool3d}
_AVG_POOL = {1: F.adaptive_avg_pool1d, 2: F.adaptive_avg_pool2d, 3: F.adaptive_avg_pool3d}


def resize_mask_keep_lesions(mask: Any, spatial_size: Sequence[int], mode: str = "max") -> torch.Tensor:
    """A channel-first mask ``(C, *spatial)`` (1 to 3 spatial dimensions) resized to ``spatial_size``.

    ``mode`` is one of :data:`MASK_RESIZE_MODES`. The result is float32; a 0/255 mask keeps its scale under
    ``"max"``. Enlarging works too (each output pixel's footprint then holds one source pixel), so that one
    transform serves every size.

    Args:
        mask: channel-first mask, array or tensor.
        spatial_size: the output's spatial size.
        mode: one of :data:`MASK_RESIZE_MODES`.
    """
    checked = look_up_option(mode, MASK_RESIZE_MODES, default=None)
    if checked is None:
        raise ValueError(f"unknown mask resize mode {mode!r}; valid: {', '.join(MASK_RESIZE_MODES)}")
    values = torch.as_tensor(mask)
    values = values.as_tensor() if hasattr(values, "as_tensor") else values
    size = tuple(int(s) for s in spatial_size)
    spatial_dims = values.ndim - 1
    if spatial_dims not in _MAX_POOL or len(size) != spatial_dims:
        raise ValueError(
            f"expected a channel-first mask with 1 to 3 spatial dimensions and a size for each, got shape "
            f"{tuple(values.shape)} and spatial_size {size}"
        )
    if any(s < 1 for s in size):
        raise ValueError(f"spatial_size must be positive, got {size}")
    pool = (_MAX_POOL if checked == "max" else _AVG_POOL)[spatial_dims]
    return pool(values.to(torch.float32)[None], size)[0]


class ResizeMaskKeepLesionsd(MapTransform):
    """Dictionary form of :func:`resize_mask_keep_lesions`, sized as MONAI's ``Resized`` sizes the images.

    The output shape and the metadata (affine, applied operations) are those ``Resized`` with the same
    ``spatial_size`` and ``size_mode`` gives, so masks stay aligned with images resized by it; only the values
    differ: pooled over each footprint instead of sampled.

    Args:
        keys: mask keys (channel-first).
        spatial_size: the output size; with ``size_mode="longest"`` an int, the longer side's size.
        size_mode: ``"all"`` or ``"longest"``, as in ``Resized``.
        mode: ``"max"`` (binary, every lesion kept) or ``"area"`` (the covered share of each output pixel).
        allow_missing_keys: do not raise for absent keys.
    """

    def __init__(
        self,
        keys: KeysCollection,
        spatial_size: Sequence[int] | int,
        size_mode: str = "all",
        mode: str = "max",
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.mode = look_up_option(mode, MASK_RESIZE_MODES, default=None)
        if self.mode is None:
            raise ValueError(f"unknown mask resize mode {mode!r}; valid: {', '.join(MASK_RESIZE_MODES)}")
        self.sizer = Resize(spatial_size=spatial_size, size_mode=size_mode, mode="nearest-exact")

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            mask = d[key]
            sized = self.sizer(mask)  # the shape and metadata the images get from Resized
            if tuple(sized.shape[1:]) == tuple(mask.shape[1:]):
                d[key] = sized
                continue
            pooled = resize_mask_keep_lesions(mask, sized.shape[1:], self.mode)
            sized = sized.to(torch.float32)
            sized.copy_(pooled.to(sized.device))
            d[key] = sized
        return d
