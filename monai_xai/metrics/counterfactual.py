"""How well a counterfactual explanation works: does the translation flip the classifier, does it flip it
because the attention map picks the region that matters (controls with other maps), and does the map agree
with the classifier's own saliency (Grad-CAM++)?

Map functions take (B, 1, *spatial) maps, bring the first to the second's size when they differ, and
return one value per sample.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from monai_xai.metrics.classification import confusion_matrix
from monai_xai.metrics.realism import kernel_inception_distance
from monai_xai.metrics.uncertainty import bootstrap_ci, mean_of, paired_bootstrap_diff
from monai_xai.utils import upsample_attention

__all__ = [
    "before_after_confusion",
    "control_gaps",
    "controls_met",
    "direction_rows",
    "extreme_examples",
    "flip_indicators",
    "flip_interval",
    "flip_rate",
    "flip_rate_correct_only",
    "flip_rate_summary",
    "flip_rates",
    "translation_kid",
    "map_correlation",
    "map_mean",
    "masked_translation",
    "mean_abs_difference",
    "shuffled_maps",
    "target_probability_change",
    "topk_iou",
    "uniform_maps",
]


def flip_rate(pred_after: Any, target_class: Any) -> float:
    """Share of images whose predicted class after translation is the target class."""
    after = torch.as_tensor(pred_after).reshape(-1)
    target = torch.as_tensor(target_class).reshape(-1).to(after.device)
    if after.numel() == 0:
        return float("nan")
    return float((after == target).float().mean())


def flip_indicators(probs: Any, target_class: Any) -> np.ndarray:
    """Per image 1.0 where the class probabilities ``probs`` (N, C) pick the target class, 0.0 where not, NaN
    where a row holds NaN (undefined: a control still waiting for another image's map)."""
    probs = torch.as_tensor(probs).detach().cpu()
    target = torch.as_tensor(target_class).reshape(-1).cpu()
    flipped = (probs.argmax(1) == target).double().numpy()
    flipped[probs.isnan().any(1).numpy()] = np.nan
    return flipped


def direction_rows(source_class: Any) -> dict[str, torch.Tensor]:
    """Boolean rows of each translation direction by key suffix: ``""`` (all), ``"_from_0"``,
    ``"_from_1"``."""
    source = torch.as_tensor(source_class).reshape(-1)
    return {"": torch.ones_like(source, dtype=torch.bool), "_from_0": source == 0, "_from_1": source == 1}


def flip_rates(probs: Any, target_class: Any, source_class: Any) -> dict[str, float]:
    """:func:`flip_rate` of the class probabilities ``probs`` (N, C) overall and per direction:
    ``flip_rate``, ``flip_rate_from_0``, ``flip_rate_from_1``; rows holding NaN (undefined) left out."""
    probs = torch.as_tensor(probs).detach().cpu()
    target = torch.as_tensor(target_class).reshape(-1).cpu()
    defined = ~probs.isnan().any(1)
    return {
        f"flip_rate{suffix}": flip_rate(probs[rows & defined].argmax(1), target[rows & defined])
        for suffix, rows in direction_rows(torch.as_tensor(source_class).cpu()).items()
    }


def flip_rate_correct_only(probs_before: Any, probs_after: Any, labels: Any, target_class: Any) -> float:
    """:func:`flip_rate` of the translations of the images that the classifier (or judge) whose probabilities
    these are classifies correctly before translation: a flip of a misclassified image says little."""
    before, after = torch.as_tensor(probs_before).cpu(), torch.as_tensor(probs_after).cpu()
    correct = before.argmax(1) == torch.as_tensor(labels).reshape(-1).cpu()
    return flip_rate(after[correct].argmax(1), torch.as_tensor(target_class).reshape(-1).cpu()[correct])


def flip_rate_summary(
    probs_after: Any,
    controls: Mapping[str, Any],
    target_class: Any,
    source_class: Any,
    correct: Any | None = None,
    prefix: str = "",
    n_boot: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> dict[str, Any]:
    """The flip rates of translations and of their controls with bootstrap intervals, and whether every
    control flips less than the translations.

    Returns ``<prefix>flip_rate_intervals`` (:func:`flip_interval` of ``<prefix>flip_rate<direction>`` and of
    each control's ``<prefix><control>_flip_rate<direction>``, directions as :func:`direction_rows`; with
    ``correct`` also ``<prefix>flip_rate_correct_only``), and with controls ``<prefix>control_gaps``
    (:func:`control_gaps`) and ``<prefix>controls_met`` (:func:`controls_met`).

    Args:
        probs_after: class probabilities (N, C) of the translations.
        controls: per control name, class probabilities (N, C) of its translations; NaN rows are undefined.
        target_class: target class of each translation, (N,).
        source_class: class each image is translated from, (N,).
        correct: boolean (N,), the images classified correctly before translation; None leaves the
            correct-only interval out.
        prefix: put before every key (``"judge_"`` for the independent judge's figures).
        n_boot: bootstrap resamples of every interval.
        level: coverage of the intervals.
        seed: seed of every interval's resampling.
    """
    flips = {"flip_rate": flip_indicators(probs_after, target_class)}
    flips.update(
        {f"{name}_flip_rate": flip_indicators(probs, target_class) for name, probs in controls.items()}
    )
    options = {"n_boot": n_boot, "level": level, "seed": seed}
    intervals = {
        f"{prefix}{name}{suffix}": flip_interval(flipped[rows.numpy()], **options)
        for name, flipped in flips.items()
        for suffix, rows in direction_rows(torch.as_tensor(source_class).cpu()).items()
    }
    if correct is not None:
        correct = torch.as_tensor(correct).reshape(-1).bool().cpu().numpy()
        intervals[f"{prefix}flip_rate_correct_only"] = flip_interval(flips["flip_rate"][correct], **options)
    summary: dict[str, Any] = {f"{prefix}flip_rate_intervals": intervals}
    if controls:
        source = torch.as_tensor(source_class).reshape(-1).cpu().numpy()
        gaps = control_gaps(
            flips["flip_rate"], {name: flips[f"{name}_flip_rate"] for name in controls}, source, **options
        )
        summary[f"{prefix}control_gaps"] = gaps
        summary[f"{prefix}controls_met"] = controls_met(gaps, level)
    return summary


def translation_kid(
    features: Any, features_after: Any, truth: Any, source_class: Any, seed: int = 0
) -> dict[str, dict[str, Any]]:
    """Realism of the translations in a judge's feature space, per direction ``c``: ``judge_kid_from_<c>``,
    the kernel inception distance (:func:`~monai_xai.metrics.realism.kernel_inception_distance`) between the
    translations of class ``c`` and the real images of the other class, beside
    ``judge_kid_untranslated_from_<c>``, the same for the images before translation (a translation that looks
    like the target class lies closer to it than the image it came from).

    Args:
        features: the judge's features (N, D) of the real images.
        features_after: the judge's features (N, D) of their translations.
        truth: class of each real image (its label, else its source class), (N,).
        source_class: class each image is translated from, (N,).
        seed: seed of the distance's subsets.
    """
    real, translated = np.asarray(features), np.asarray(features_after)
    truth, source = np.asarray(truth).reshape(-1), np.asarray(source_class).reshape(-1)
    figures = {}
    for cls in (0, 1):
        target_real, rows = real[truth == 1 - cls], source == cls
        figures[f"judge_kid_from_{cls}"] = kernel_inception_distance(target_real, translated[rows], seed=seed)
        figures[f"judge_kid_untranslated_from_{cls}"] = kernel_inception_distance(
            target_real, real[rows], seed=seed
        )
    return figures


def before_after_confusion(
    labels: Any, pred_before: Any, pred_after: Any, num_classes: int = 2
) -> dict[str, np.ndarray]:
    """Confusion matrices (rows true, columns predicted) of the real images and of their translations.

    The translations' "true" class is the target class (the other class, for two classes).
    """
    labels = torch.as_tensor(labels).reshape(-1)
    targets = (labels + 1) % num_classes if num_classes == 2 else labels
    return {
        "before": confusion_matrix(labels, pred_before, num_classes),
        "after": confusion_matrix(targets, pred_after, num_classes),
    }


def _flat_pair(maps: Any, reference: Any) -> tuple[torch.Tensor, torch.Tensor]:
    reference = torch.as_tensor(reference).float()
    maps = torch.as_tensor(maps).to(device=reference.device, dtype=torch.float32)
    if maps.ndim < 3 or maps.ndim != reference.ndim or maps.shape[:2] != reference.shape[:2]:
        raise ValueError(
            f"maps must both be (B, 1, *spatial), got {tuple(maps.shape)} and {tuple(reference.shape)}"
        )
    if maps.shape[2:] != reference.shape[2:]:
        maps = upsample_attention(maps, reference.shape[2:])
    return maps.flatten(1), reference.flatten(1)


def map_correlation(maps: Any, reference: Any) -> torch.Tensor:
    """Pearson correlation of each pair of maps, shape (B,); NaN where a map is constant."""
    a, b = _flat_pair(maps, reference)
    a = a - a.mean(dim=1, keepdim=True)
    b = b - b.mean(dim=1, keepdim=True)
    denom = a.norm(dim=1) * b.norm(dim=1)
    corr = (a * b).sum(dim=1) / denom
    return torch.where(denom > 0, corr, torch.full_like(corr, float("nan")))


def _topk_mask(values: torch.Tensor, k: int) -> torch.Tensor:
    index = values.topk(k, dim=1).indices
    return torch.zeros_like(values, dtype=torch.bool).scatter_(1, index, True)


def topk_iou(maps: Any, reference: Any, fraction: float = 0.1) -> torch.Tensor:
    """IoU of the top ``fraction`` of pixels (voxels) of each map with those of its reference, shape (B,).

    Rank-based, so it compares where two maps point regardless of their scales (attention in [0, 1],
    Grad-CAM++ min-max scaled).
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must lie in (0, 1], got {fraction}")
    a, b = _flat_pair(maps, reference)
    k = max(1, round(fraction * a.shape[1]))
    top_a, top_b = _topk_mask(a, k), _topk_mask(b, k)
    return (top_a & top_b).sum(dim=1).float() / (top_a | top_b).sum(dim=1).float()


def masked_translation(
    images: torch.Tensor, generated: torch.Tensor, attention: torch.Tensor
) -> torch.Tensor:
    """``M(x) = A * G(x) + (1 - A) * x``: the translation ``G(x)`` let through only where ``A`` looks.

    Affine in the images, so it gives the same result in the classifier's [0, 1] range as in the GAN's
    [-1, 1]; (B, 1, *spatial) maps act on every channel.
    """
    return attention * generated + (1.0 - attention) * images


def map_mean(maps: torch.Tensor) -> torch.Tensor:
    """Mean of each map over its pixels (voxels), shape (B,): the share of an image a translation alters."""
    return maps.flatten(1).float().mean(dim=1)


def mean_abs_difference(translated: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
    """Mean ``|M(x) - x|`` of each image, shape (B,): how much a translation changed it (images' range)."""
    return (translated.float() - images.float()).abs().flatten(1).mean(dim=1)


def uniform_maps(attention: torch.Tensor) -> torch.Tensor:
    """Each map replaced by its mean everywhere: a control that changes as much of the image, nowhere in
    particular."""
    shape = (-1,) + (1,) * (attention.ndim - 1)
    return map_mean(attention).view(shape).to(attention.dtype).expand_as(attention)


def shuffled_maps(
    maps: torch.Tensor, carry: torch.Tensor | None = None, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Each of ``maps`` replaced by the map of another image: a control with maps of the same size and
    shape that look at the wrong place.

    The pool is ``carry`` (an earlier batch's maps, resized to ``maps`` when their sizes differ) followed by
    ``maps``. A random cyclic order of the pool (``torch.randperm`` with ``generator``, so seeded) gives each
    image the map of its successor: no image keeps its own map and no map is used twice. Carrying one batch
    keeps memory to two batches of maps while a batch of one image still gets another image's map.

    Raises:
        ValueError: when the pool holds fewer than two maps.
    """
    pool = maps
    if carry is not None:
        carry = carry.to(device=maps.device, dtype=maps.dtype)
        if carry.shape[2:] != maps.shape[2:]:
            carry = upsample_attention(carry, maps.shape[2:])
        pool = torch.cat([carry, maps])
    if len(pool) < 2:
        raise ValueError(f"shuffling needs at least two maps, got {len(pool)} (carry included)")
    order = torch.randperm(len(pool), generator=generator)
    successor = torch.empty_like(order)
    successor[order] = order.roll(-1)
    return pool[successor[len(pool) - len(maps) :].to(maps.device)]


def target_probability_change(prob_before: Any, prob_after: Any, target_class: Any) -> torch.Tensor:
    """Change of each image's probability of its target class through the translation, shape (B,)."""
    before, after = torch.as_tensor(prob_before).float(), torch.as_tensor(prob_after).float()
    target = torch.as_tensor(target_class).reshape(-1, 1).long().to(before.device)
    return (after.gather(1, target) - before.gather(1, target)).squeeze(1)


def extreme_examples(change: Any, flipped: Any, n: int) -> dict[str, torch.Tensor]:
    """Indices of the ``n`` best and ``n`` worst translations: ``best`` flip the classifier with the largest
    ``change`` of the target probability (largest first), ``worst`` fail to flip it with the smallest
    (smallest first); fewer when there are not that many. Ties keep their order."""
    change = torch.as_tensor(change).reshape(-1).float()
    flipped = torch.as_tensor(flipped).reshape(-1).bool().to(change.device)
    descending = torch.sort(change, descending=True, stable=True).indices
    ascending = torch.sort(change, stable=True).indices
    return {"best": descending[flipped[descending]][:n], "worst": ascending[~flipped[ascending]][:n]}


def _undefined(level: float) -> dict[str, Any]:
    return {"mean": float("nan"), f"ci{level * 100:g}": [float("nan"), float("nan")], "n": 0}


def flip_interval(flipped: Any, n_boot: int = 2000, level: float = 0.95, seed: int = 0) -> dict[str, Any]:
    """A flip rate with its percentile bootstrap interval (:func:`~monai_xai.metrics.bootstrap_ci`) from
    per-image flip indicators (1 flipped, 0 not, NaN undefined and left out): ``{"mean", "ci95": [low, high],
    "n"}``; NaN with ``n`` 0 when no image has an indicator."""
    values = np.asarray(flipped, dtype=np.float64).reshape(-1)
    values = values[~np.isnan(values)]
    if not values.size:
        return _undefined(level)
    return bootstrap_ci(mean_of, values, n_boot=n_boot, level=level, seed=seed).to_dict()


def control_gaps(
    flipped: Any,
    controls: Mapping[str, Any],
    source_class: Any,
    n_boot: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> dict[str, dict[str, Any]]:
    """Per control and direction (``<control>_from_<class>``): the flip rate of the translations minus that
    of the control, with the paired bootstrap interval (:func:`~monai_xai.metrics.paired_bootstrap_diff`:
    the same resampled images for both), ``{"mean", "ci95", "n"}``.

    ``flipped`` and every array of ``controls`` hold per-image flip indicators (NaN where undefined, e.g. a
    shuffled control still waiting for another image's map); an image counts where both are defined. A
    positive interval says that the control flips less than the translations on images like these, not only
    on these images.
    """
    flipped = np.asarray(flipped, dtype=np.float64).reshape(-1)
    source = np.asarray(source_class).reshape(-1)
    gaps = {}
    for name, control in controls.items():
        control = np.asarray(control, dtype=np.float64).reshape(-1)
        for cls in (0, 1):
            rows = (source == cls) & ~np.isnan(flipped) & ~np.isnan(control)
            gaps[f"{name}_from_{cls}"] = (
                paired_bootstrap_diff(
                    mean_of, (flipped[rows],), (control[rows],), n_boot=n_boot, level=level, seed=seed
                ).to_dict()
                if rows.any()
                else _undefined(level)
            )
    return gaps


def controls_met(gaps: Mapping[str, Mapping[str, Any]], level: float = 0.95) -> bool | None:
    """True when every interval of :func:`control_gaps` lies above zero (each control flips less than the
    translations, each direction); an undefined interval is not met; None without gaps."""
    if not gaps:
        return None
    key = f"ci{level * 100:g}"
    return all(bool(gap[key][0] > 0) for gap in gaps.values())
