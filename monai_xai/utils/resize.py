"""Resizing (B, C, *spatial) maps between feature and image resolution, in 1D, 2D or 3D."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

__all__ = ["resize_attention", "upsample_attention"]

_LINEAR_MODES = {1: "linear", 2: "bilinear", 3: "trilinear"}


def upsample_attention(
    attention_map: torch.Tensor, size: int | Sequence[int], spatial_dims: int | None = None
) -> torch.Tensor:
    """Resize a (B, C, *spatial) map by (bi/tri)linear interpolation, e.g. M(x) to the image for display.

    Networks pass their ``spatial_dims``: under ``torch.fx`` tracing the map's ``ndim`` is not a number.
    """
    mode = _LINEAR_MODES[attention_map.ndim - 2 if spatial_dims is None else spatial_dims]
    return F.interpolate(attention_map, size=size, mode=mode, align_corners=False)


def resize_attention(attention_map: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """Resize a (B, C, *spatial) map to ``size``: area averaging when shrinking, else linear interpolation.

    Area averaging turns a full-resolution binary mask into the fraction of each feature cell it covers, which
    is what :class:`~monai_xai.losses.AttentionMapLoss` trains M(x) to predict, so an expert map drawn on the
    image acts on the features the way a predicted map would.
    """
    size = tuple(int(s) for s in size)
    current = tuple(attention_map.shape[2:])
    if current == size:
        return attention_map
    if all(new <= old for new, old in zip(size, current)):
        return F.interpolate(attention_map, size=size, mode="area")
    return upsample_attention(attention_map, size)
