"""Agreement between saliency maps (ABN attention, Grad-CAM, ...) and expert masks.

Every function takes maps and masks of shape (B, 1, *spatial), brings the maps to the mask size by
(bi/tri)linear interpolation (masks are never interpolated, so they stay binary), and returns one value per
sample. Masks count as "inside" where they exceed 0.5; :func:`attention_agreement` averages over the samples
with a non-empty mask.
"""

from __future__ import annotations

from typing import Any

import torch

from monai_xai.metrics.lesions import lesion_hit_rate
from monai_xai.utils import upsample_attention

__all__ = [
    "agreement_scores",
    "attention_agreement",
    "energy_inside_mask",
    "map_iou",
    "map_mse",
    "pointing_game",
    "region_energy",
    "summarize_agreement",
]


def _prepare(maps: Any, masks: Any) -> tuple[torch.Tensor, torch.Tensor]:
    masks = torch.as_tensor(masks).float()
    maps = torch.as_tensor(maps).to(device=masks.device, dtype=torch.float32)
    if maps.ndim < 3 or maps.ndim != masks.ndim or maps.shape[:2] != masks.shape[:2] or maps.shape[1] != 1:
        raise ValueError(
            f"maps and masks must both be (B, 1, *spatial), got {tuple(maps.shape)} and {tuple(masks.shape)}"
        )
    if maps.shape[2:] != masks.shape[2:]:
        maps = upsample_attention(maps, masks.shape[2:])
    return maps.flatten(1), masks.flatten(1)


def _normalize(maps: torch.Tensor) -> torch.Tensor:
    """Min-max scale each flattened map to [0, 1]; a constant map becomes all zeros."""
    low = maps.min(dim=1, keepdim=True).values
    span = maps.max(dim=1, keepdim=True).values - low
    scaled = (maps - low) / span.clamp_min(torch.finfo(maps.dtype).tiny)
    return torch.where(span > 0, scaled, torch.zeros_like(maps))


def map_mse(maps: Any, masks: Any, normalize: bool = False) -> torch.Tensor:
    """Mean squared difference between each map and its mask (soft masks used as they are), shape (B,).

    ``normalize`` min-max scales each map first, for maps with no fixed range such as Grad-CAM.
    """
    flat_maps, flat_masks = _prepare(maps, masks)
    if normalize:
        flat_maps = _normalize(flat_maps)
    return ((flat_maps - flat_masks) ** 2).mean(dim=1)


def pointing_game(maps: Any, masks: Any) -> torch.Tensor:
    """1.0 where the map's maximum falls inside the mask, else 0.0, shape (B,)."""
    flat_maps, flat_masks = _prepare(maps, masks)
    peak = flat_maps.argmax(dim=1, keepdim=True)
    return (flat_masks.gather(1, peak) > 0.5).float().squeeze(1)


def energy_inside_mask(maps: Any, masks: Any) -> torch.Tensor:
    """Share of each map's sum that lies inside its mask, shape (B,); negative map values count as 0.

    NaN for a map that is zero everywhere.
    """
    flat_maps, flat_masks = _prepare(maps, masks)
    energy = flat_maps.clamp_min(0.0)
    inside = (energy * (flat_masks > 0.5)).sum(dim=1)
    return inside / energy.sum(dim=1)


def region_energy(maps: Any, region: Any) -> torch.Tensor:
    """Share of each map's sum inside one fixed ``region`` (1, 1, *spatial) shared by all maps, shape (B,).

    For a known shortcut's location (the demo's corner marker, a scanner's text label): a classifier that uses
    the shortcut puts its explanation there. NaN for a map that is zero everywhere.
    """
    region = torch.as_tensor(region)
    maps = torch.as_tensor(maps)
    if region.ndim != maps.ndim or region.shape[:2] != (1, 1):
        raise ValueError(
            f"region must be (1, 1, *spatial) for maps {tuple(maps.shape)}, got {tuple(region.shape)}"
        )
    return energy_inside_mask(maps, region.expand(maps.shape[0], *region.shape[1:]))


def map_iou(maps: Any, masks: Any, threshold: float = 0.5) -> torch.Tensor:
    """IoU of each min-max normalised map thresholded at ``threshold`` with its mask, shape (B,).

    NaN when both the thresholded map and the mask are empty.
    """
    flat_maps, flat_masks = _prepare(maps, masks)
    predicted = _normalize(flat_maps) >= threshold
    inside = flat_masks > 0.5
    intersection = (predicted & inside).sum(dim=1).float()
    union = (predicted | inside).sum(dim=1).float()
    return intersection / union


def agreement_scores(maps: Any, masks: Any, threshold: float = 0.5) -> dict[str, torch.Tensor]:
    """Every agreement measure per sample, shape (B,) each, NaN where the mask is empty, and ``has_mask``.

    The measures: ``map_mse``, ``pointing_game``, ``energy_inside_mask``, ``map_iou`` and ``lesion_hit_rate``
    (the share of the mask's lesions the map's top 5 % touches, :func:`~monai_xai.metrics.lesion_hit_rate`).

    What :func:`attention_agreement` averages, for callers that score batch by batch instead of keeping
    every map; :func:`summarize_agreement` of the concatenated batches gives the same figures.
    """
    maps = torch.as_tensor(maps)
    masks = torch.as_tensor(masks).to(maps.device)
    has_mask = (masks.flatten(1) > 0.5).any(dim=1)
    scores = {
        "map_mse": map_mse(maps, masks),
        "pointing_game": pointing_game(maps, masks),
        "energy_inside_mask": energy_inside_mask(maps, masks),
        "map_iou": map_iou(maps, masks, threshold),
        "lesion_hit_rate": lesion_hit_rate(maps, masks),
    }
    nan = torch.tensor(float("nan"), device=has_mask.device)
    scores = {name: torch.where(has_mask, values, nan) for name, values in scores.items()}
    return {**scores, "has_mask": has_mask}


def summarize_agreement(scores: dict[str, torch.Tensor]) -> dict[str, float]:
    """Means of the per-sample :func:`agreement_scores` over the samples whose mask is not empty.

    Undefined per-sample values are left out of the means (NaN when no sample has a mask); adds
    ``num_evaluated`` and ``num_empty_masks``.
    """
    has_mask = scores["has_mask"].bool()
    result: dict[str, float] = {
        name: float(values[has_mask].nanmean()) for name, values in scores.items() if name != "has_mask"
    }
    result["num_evaluated"] = int(has_mask.sum())
    result["num_empty_masks"] = int((~has_mask).sum())
    return result


def attention_agreement(maps: Any, masks: Any, threshold: float = 0.5) -> dict[str, float]:
    """Means of all agreement measures over the samples whose mask is not empty.

    Returns ``map_mse``, ``pointing_game``, ``energy_inside_mask``, ``map_iou`` (NaN when no sample has a
    mask; undefined per-sample values are left out of the mean), ``num_evaluated`` and ``num_empty_masks``.
    """
    return summarize_agreement(agreement_scores(maps, masks, threshold))
