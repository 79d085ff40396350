"""Deletion and Insertion (Petsiuk et al., "RISE", BMVC 2018): does the map rank pixels by their effect?

Deletion removes the most salient pixels (voxels) first, in ``steps`` equal steps, and follows the target
class's probability down: a faithful map makes it fall fast (low area under the curve is good). Insertion
starts from a baseline image and puts the most salient pixels back first: a faithful map makes the
probability rise fast (high area is good). The steps of all images in a batch go through the network
together, in forward passes of ``batch_size`` perturbed images, so a curve costs no Python loop over steps.
Each distinct perturbed image is scored once: the unchanged image serves as one end of the curve and to pick
the target class, and with the zero baseline the all-zero image is shared by the whole batch. On the CPU,
pass the network through :func:`monai_xai.networks.optimise_for_inference` with
:meth:`~monai_xai.networks.InferenceTolerance.exact` first (batch norm folded, weights pre-packed, the same
curves); the faithfulness handler does.

Forward passes are capped by default at :data:`MAX_PIXELS_PER_FORWARD` pixels (voxels): on one CPU thread a
single forward of every step at once (336 images of 64x64 through ResNet18) took about 1.3x as long as
forwards of 64 to 128 images, whose activations stay in cache. The perturbed images are built one forward
pass at a time, so memory does not grow with ``steps``. ``scripts/benchmarks/deletion_insertion.py`` times
this function against a loop of batch-1 forwards.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch
import torch.nn.functional as F
from monai.utils import look_up_option

__all__ = [
    "BASELINES",
    "MAX_PIXELS_PER_FORWARD",
    "DeletionInsertionResult",
    "deletion_insertion",
    "perturbation_baseline",
]

#: Names of the images that deleted pixels are replaced with (and that insertion starts from).
BASELINES = ("zero", "mean", "blur")
_MODES = ("deletion", "insertion")
#: Default cap on the pixels (voxels) per forward pass: images * pixels per image, e.g. 128 images of 64x64.
MAX_PIXELS_PER_FORWARD = 2**19


class DeletionInsertionResult(NamedTuple):
    #: (B,) area under each curve, x from 0 to 1.
    auc: torch.Tensor
    #: (B, steps + 1) target-class probability after removing (inserting) k / steps of the pixels.
    curves: torch.Tensor
    #: (B,) the class that was scored.
    target: torch.Tensor


def perturbation_baseline(
    images: torch.Tensor, baseline: str = "zero", blur_sigma: float = 5.0
) -> torch.Tensor:
    """What removed pixels are replaced with: zeros, each channel's mean, or a Gaussian blur.

    Args:
        images: (B, C, *spatial).
        baseline: one of :data:`BASELINES`.
        blur_sigma: Gaussian sigma (pixels) of the "blur" baseline.
    """
    checked = look_up_option(baseline, BASELINES, default=None)
    if checked is None:
        raise ValueError(f"unknown baseline {baseline!r}; valid baselines: {', '.join(BASELINES)}")
    if checked == "zero":
        return torch.zeros_like(images)
    if checked == "mean":
        dims = tuple(range(2, images.ndim))
        return images.mean(dim=dims, keepdim=True).expand_as(images).contiguous()
    from monai.networks.layers import GaussianFilter

    spatial_dims = images.ndim - 2
    return GaussianFilter(spatial_dims, sigma=blur_sigma).to(images.device)(images)


def _saliency_ranks(saliency: torch.Tensor, spatial: torch.Size) -> torch.Tensor:
    """(B, N) rank of each pixel, 0 for the most salient; ties broken by position (stable sort)."""
    sal = saliency.detach().float()
    if sal.ndim == len(spatial) + 1:
        sal = sal.unsqueeze(1)
    if sal.shape[1] != 1:
        raise ValueError(f"saliency must have one channel, got shape {tuple(saliency.shape)}")
    if sal.shape[2:] != spatial:
        mode = {1: "linear", 2: "bilinear", 3: "trilinear"}[len(spatial)]
        sal = F.interpolate(sal, size=tuple(spatial), mode=mode, align_corners=False)
    flat = sal.flatten(1)
    order = torch.argsort(-flat, dim=1, stable=True)
    ranks = torch.empty_like(order)
    positions = torch.arange(flat.shape[1], device=flat.device).expand_as(order)
    ranks.scatter_(1, order, positions)
    return ranks


def _distinct_perturbations(
    n_images: int, counts: torch.Tensor, mode: str, shared_reference: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """The perturbed images to score once each, and where each curve point finds its score.

    Returns ``rows`` (R, 2): (image index, number of changed pixels) per distinct perturbed image, and
    ``curve_rows`` (B, steps + 1): the row of each curve point. The first B rows are the unchanged images.
    One end of every curve is the unchanged image and the other its baseline; with the zero baseline every
    image's baseline is the same all-zero image, scored once for the whole batch.
    """
    steps = len(counts) - 1
    device = counts.device
    image_ids = torch.arange(n_images, device=device)
    clean_step, reference_step = (0, steps) if mode == "deletion" else (steps, 0)
    reference_images = image_ids[:1] if shared_reference else image_ids
    interior = torch.arange(1, steps, device=device)
    rows = torch.cat(
        [
            torch.stack([image_ids, counts[clean_step].expand(n_images)], 1),
            torch.stack([reference_images, counts[reference_step].expand(len(reference_images))], 1),
            torch.stack(torch.broadcast_tensors(image_ids[:, None], counts[interior][None]), 2).view(-1, 2),
        ]
    )
    curve_rows = torch.empty(n_images, steps + 1, dtype=torch.long, device=device)
    curve_rows[:, clean_step] = image_ids
    curve_rows[:, reference_step] = n_images + (0 if shared_reference else image_ids)
    first_interior = n_images + len(reference_images)
    curve_rows[:, 1:steps] = first_interior + image_ids[:, None] * (steps - 1) + (interior - 1)[None]
    return rows, curve_rows


@torch.no_grad()
def deletion_insertion(
    model: Callable[[torch.Tensor], torch.Tensor],
    images: torch.Tensor,
    saliency: torch.Tensor,
    mode: str = "deletion",
    steps: int = 20,
    baseline: str = "zero",
    target: torch.Tensor | None = None,
    batch_size: int | None = None,
    blur_sigma: float = 5.0,
) -> DeletionInsertionResult:
    """Deletion or Insertion curves and their areas for a batch of images and maps.

    Args:
        model: maps (N, C, *spatial) images to (N, num_classes) logits; wrap an ABN in
            :class:`~monai_xai.networks.PerceptionLogits`, and on the CPU pass the network through
            :func:`~monai_xai.networks.optimise_for_inference` with an exact tolerance first.
        images: (B, C, *spatial), 2D or 3D.
        saliency: (B, 1, *any spatial) or (B, *any spatial); resized to the images when needed.
        mode: "deletion" or "insertion".
        steps: the curve has ``steps + 1`` points, 0 to 100 % of the pixels.
        baseline: one of :data:`BASELINES`.
        target: (B,) classes to score; each image's predicted class when None.
        batch_size: perturbed images per forward pass; when None, as many as hold
            :data:`MAX_PIXELS_PER_FORWARD` pixels (every perturbed image at once for small images).
        blur_sigma: Gaussian sigma (pixels) of the "blur" baseline.
    """
    if look_up_option(mode, _MODES, default=None) is None:
        raise ValueError(f"unknown mode {mode!r}; valid modes: {', '.join(_MODES)}")
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    if saliency.shape[0] != images.shape[0]:
        raise ValueError(f"{saliency.shape[0]} saliency maps for {images.shape[0]} images")
    if batch_size is not None and batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    n_images, spatial = images.shape[0], images.shape[2:]
    ranks = _saliency_ranks(saliency.to(images.device), spatial)
    n_pixels = ranks.shape[1]
    reference = perturbation_baseline(images, baseline, blur_sigma)
    # Step k changes (removes for deletion, puts back for insertion) the counts[k] most salient pixels.
    counts = torch.round(torch.linspace(0, n_pixels, steps + 1, device=images.device)).long()
    source, fill = (reference, images) if mode == "deletion" else (images, reference)
    rows, curve_rows = _distinct_perturbations(n_images, counts, mode, shared_reference=baseline == "zero")
    chunk = max(1, MAX_PIXELS_PER_FORWARD // n_pixels) if batch_size is None else batch_size
    probs = []
    for start in range(0, len(rows), chunk):
        image_idx, count = rows[start : start + chunk].unbind(1)
        changed = (ranks[image_idx] < count.unsqueeze(1)).view(len(image_idx), 1, *spatial)
        perturbed = torch.where(changed, source[image_idx], fill[image_idx])
        probs.append(torch.softmax(model(perturbed).float(), dim=1))
    probs = torch.cat(probs)
    if target is None:
        target = probs[:n_images].argmax(dim=1)  # the unchanged images' predicted classes
    target = torch.as_tensor(target, device=images.device).reshape(-1).long()
    curves = probs[curve_rows].gather(2, target.view(-1, 1, 1).expand(-1, steps + 1, 1))[..., 0]
    auc = torch.trapezoid(curves, dx=1.0 / steps, dim=1)
    return DeletionInsertionResult(auc=auc, curves=curves, target=target)
