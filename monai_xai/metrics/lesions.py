"""Per-lesion agreement of a saliency map with a mask of many small lesions: the share of lesions it touches.

Why: the pointing game asks for one peak and the energy inside the mask is dominated by the largest lesions,
so both reward a map that lights up one big exudate as much as one that finds thirty small ones. Counting
lesions (connected components of the mask, diagonal neighbours joined) instead of pixels gives every lesion
one vote:
:func:`lesion_hit_rate` is the share of an image's lesions that the map's top region (its highest 5 % of
pixels by default, a fixed budget whatever the map's scale) touches by at least one pixel.

Maps are brought to the mask's size by (bi/tri)linear interpolation, as in :mod:`.attention`; masks count as
lesion where they exceed 0.5. Pixels tied at the edge of the top region are taken in a fixed pseudo-random
order (seeded), so a flat map scores what a random region of the same size would, not what its first rows
happen to cover.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from monai_xai.utils import upsample_attention

__all__ = ["TOP_FRACTION", "label_lesions", "lesion_hit_rate", "lesion_hits", "top_region"]

#: Share of a map's pixels that counts as where it points, for :func:`lesion_hit_rate`.
TOP_FRACTION = 0.05


def label_lesions(mask: Any) -> tuple[np.ndarray, int]:
    """Connected components of a binary mask of any dimensionality (pixels touching at a corner join):
    an integer image (0 background, 1..n lesions) and n."""
    from scipy import ndimage

    inside = np.asarray(mask).astype(bool)
    structure = ndimage.generate_binary_structure(inside.ndim, inside.ndim)
    labels, n = ndimage.label(inside, structure=structure)
    return labels, int(n)


def top_region(maps: torch.Tensor, fraction: float = TOP_FRACTION, seed: int = 0) -> torch.Tensor:
    """Boolean ``(B, N)``: the ``ceil(fraction * N)`` highest values of each flattened map ``(B, N)``, ties
    taken in a pseudo-random order fixed by ``seed``."""
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction must lie in (0, 1], got {fraction}")
    flat = torch.as_tensor(maps).detach().float().cpu()
    n = flat.shape[1]
    k = max(1, math.ceil(fraction * n))
    generator = torch.Generator().manual_seed(seed)
    region = torch.zeros(flat.shape, dtype=torch.bool)
    for b in range(flat.shape[0]):
        order = torch.randperm(n, generator=generator)
        ranked = torch.argsort(flat[b, order], descending=True, stable=True)
        region[b, order[ranked[:k]]] = True
    return region


def lesion_hits(
    maps: Any, masks: Any, top_fraction: float = TOP_FRACTION, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per sample, how many lesions of the mask the map's top region touches, and how many there are.

    ``maps`` and ``masks`` are ``(B, 1, *spatial)``; returns two int64 tensors of shape ``(B,)`` on the
    masks' device.
    """
    masks_t = torch.as_tensor(masks).float()
    maps_t = torch.as_tensor(maps).to(device=masks_t.device, dtype=torch.float32)
    shapes_fit = maps_t.ndim == masks_t.ndim and maps_t.shape[:2] == masks_t.shape[:2]
    if maps_t.ndim < 3 or not shapes_fit or maps_t.shape[1] != 1:
        raise ValueError(
            "maps and masks must both be (B, 1, *spatial), got "
            f"{tuple(maps_t.shape)} and {tuple(masks_t.shape)}"
        )
    if maps_t.shape[2:] != masks_t.shape[2:]:
        maps_t = upsample_attention(maps_t, masks_t.shape[2:])
    top = top_region(maps_t.flatten(1), top_fraction, seed).numpy()
    inside = (masks_t > 0.5).cpu().numpy()
    hits, counts = [], []
    for b in range(inside.shape[0]):
        labels, n = label_lesions(inside[b, 0])
        flat = labels.reshape(-1)
        hits.append(len(np.unique(flat[top[b] & (flat > 0)])))
        counts.append(n)
    device = masks_t.device
    return torch.tensor(hits, dtype=torch.int64, device=device), torch.tensor(
        counts, dtype=torch.int64, device=device
    )


def lesion_hit_rate(maps: Any, masks: Any, top_fraction: float = TOP_FRACTION, seed: int = 0) -> torch.Tensor:
    """Share of each mask's lesions that the map's top ``top_fraction`` of pixels touches, shape ``(B,)``;
    NaN for a mask without lesions."""
    hits, counts = lesion_hits(maps, masks, top_fraction, seed)
    rate = hits.float() / counts.clamp_min(1).float()
    return torch.where(counts > 0, rate, torch.full_like(rate, float("nan")))
