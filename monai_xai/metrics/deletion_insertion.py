"""Deletion and Insertion (Petsiuk et al., "RISE", BMVC 2018): does the map rank pixels by their effect?

Deletion removes the most salient pixels (voxels) first, in ``steps`` equal steps, and follows the target
class's probability down: a faithful map makes it fall fast (low area under the curve is good). Insertion
starts from a baseline image and puts the most salient pixels back first: a faithful map makes the
probability rise fast (high area is good). Every step of every image in a batch goes through the network in
one forward pass (or in chunks of ``batch_size``), so a curve costs no Python loop over steps.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch
import torch.nn.functional as F

__all__ = ["BASELINES", "DeletionInsertionResult", "deletion_insertion", "perturbation_baseline"]

#: Names of the images that deleted pixels are replaced with (and that insertion starts from).
BASELINES = ("zero", "mean", "blur")


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
    """What removed pixels are replaced with: zeros, each channel's mean, or a Gaussian blur."""
    if baseline == "zero":
        return torch.zeros_like(images)
    if baseline == "mean":
        dims = tuple(range(2, images.ndim))
        return images.mean(dim=dims, keepdim=True).expand_as(images).contiguous()
    if baseline == "blur":
        from monai.networks.layers import GaussianFilter

        spatial_dims = images.ndim - 2
        return GaussianFilter(spatial_dims, sigma=blur_sigma).to(images.device)(images)
    raise ValueError(f"unknown baseline {baseline!r}; valid baselines: {', '.join(BASELINES)}")


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
        model: maps (N, C, *spatial) images to (N, num_classes) logits (wrap networks with other outputs).
        images: (B, C, *spatial), 2D or 3D.
        saliency: (B, 1, *any spatial) or (B, *any spatial); resized to the images when needed.
        mode: "deletion" or "insertion".
        steps: the curve has ``steps + 1`` points, 0 to 100 % of the pixels.
        baseline: one of :data:`BASELINES`.
        target: (B,) classes to score; each image's predicted class when None.
        batch_size: images per forward pass; all ``B * (steps + 1)`` at once when None.
        blur_sigma: Gaussian sigma (pixels) of the "blur" baseline.
    """
    if mode not in ("deletion", "insertion"):
        raise ValueError(f"unknown mode {mode!r}; valid modes: deletion, insertion")
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    if saliency.shape[0] != images.shape[0]:
        raise ValueError(f"{saliency.shape[0]} saliency maps for {images.shape[0]} images")
    n_images, spatial = images.shape[0], images.shape[2:]
    ranks = _saliency_ranks(saliency.to(images.device), spatial)
    n_pixels = ranks.shape[1]
    if target is None:
        target = model(images).argmax(dim=1)
    target = torch.as_tensor(target, device=images.device).reshape(-1).long()
    reference = perturbation_baseline(images, baseline, blur_sigma)
    # changed[k] marks the pixels removed (deletion) or put back (insertion) after step k.
    counts = torch.round(torch.linspace(0, n_pixels, steps + 1, device=images.device)).long()
    changed = (ranks.unsqueeze(0) < counts.view(-1, 1, 1)).view(steps + 1, n_images, 1, *spatial)
    source, fill = (reference, images) if mode == "deletion" else (images, reference)
    perturbed = torch.where(changed, source.unsqueeze(0), fill.unsqueeze(0))  # (steps+1, B, C, *spatial)
    flat = perturbed.transpose(0, 1).reshape(n_images * (steps + 1), *images.shape[1:])
    chunk = flat.shape[0] if batch_size is None else batch_size
    probs = torch.cat(
        [torch.softmax(model(flat[i : i + chunk]).float(), dim=1) for i in range(0, len(flat), chunk)]
    )
    curves = probs.view(n_images, steps + 1, -1).gather(2, target.view(-1, 1, 1).expand(-1, steps + 1, 1))[
        ..., 0
    ]
    auc = torch.trapezoid(curves, dx=1.0 / steps, dim=1)
    return DeletionInsertionResult(auc=auc, curves=curves, target=target)
