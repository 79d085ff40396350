"""The statistics of a shortcut study: per-image test records of a run, and its figures pooled over seeds.

A shortcut study trains each arm on images whose marker agrees with the label in training and validation and
is random in the test set (DecoyBUSI, :mod:`.decoy_busi`; the phantom demo, :mod:`.demo_shortcut`). Each
evaluated run gives a :class:`TestRun`; :func:`arm_figures` pools an arm's seeds into AUC, accuracy,
worst-group and per-group accuracy, marker energy and pointing game with
:func:`~monai_xai.metrics.pooled_bootstrap_ci` (stratified by group: class x marker agrees), and
:func:`paired_figures` compares two arms image by image within each seed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from monai_xai.errors import InputError

from .results import finite, verdict

__all__ = [
    "N_BOOT",
    "TestRun",
    "arm_figures",
    "matched_runs",
    "mean_marked",
    "paired_figures",
    "pooled_figure",
    "worst_group",
]

N_BOOT = 2000


@dataclass(frozen=True)
class TestRun:
    """One evaluated run of one arm: per test image (sorted by key) what the figures need.

    ``groups`` numbers class x (marker agrees with the label): ``2 * label + agrees``.
    """

    seed: int
    keys: tuple[str, ...]
    labels: np.ndarray
    scores: np.ndarray  # p(positive class), as written (temperature-scaled where calibrated: same ranking)
    preds: np.ndarray  # argmax
    agrees: np.ndarray  # bool: the marker agrees with the label
    marked: np.ndarray  # bool: the marker is drawn (on a clean twin: drawn on its decoy copy)
    energy: np.ndarray  # the own map's share on the marker region, NaN where not measured
    pointing: np.ndarray  # the own map's pointing game, NaN where the image has no mask
    fold: int = 0
    settings: dict = field(default_factory=dict)
    validation: dict = field(default_factory=dict)  # AUC and cross-entropy on the validation fold

    @property
    def groups(self) -> np.ndarray:
        return 2 * self.labels + self.agrees.astype(np.int64)


def pooled_figure(
    metric: Callable[..., float],
    runs: Sequence[tuple],
    stratify: Sequence[np.ndarray] | None,
    n_boot: int = N_BOOT,
) -> dict:
    """``metric`` over the runs' arrays as :func:`~monai_xai.metrics.pooled_bootstrap_ci` pools it, with
    each run's own estimate; JSON values (NaN as None)."""
    from monai_xai.metrics.uncertainty import pooled_bootstrap_ci

    interval = pooled_bootstrap_ci(metric, runs, n_boot=n_boot, stratify=stratify)
    found = interval.to_dict()
    found["run_estimates"] = [round(e, 6) for e in interval.run_estimates]
    return finite(found)


def _group_metric(group: int) -> Callable[..., float]:
    def accuracy_in_group(labels: np.ndarray, preds: np.ndarray, groups: np.ndarray) -> float:
        inside = groups == group
        return float((preds[inside] == labels[inside]).mean()) if inside.any() else math.nan

    return accuracy_in_group


def mean_marked(energy: np.ndarray, marked: np.ndarray) -> float:
    """The mean marker energy over the images that carry the marker."""
    from monai_xai.metrics.uncertainty import mean_of

    return mean_of(energy[marked])


def worst_group(labels: np.ndarray, preds: np.ndarray, agrees: np.ndarray) -> float:
    """The lowest accuracy over the groups class x (marker agrees)."""
    from monai_xai.metrics.groups import worst_group_accuracy

    return worst_group_accuracy(labels, preds, agrees)


def arm_figures(runs: Sequence[TestRun], class_names: Sequence[str], n_boot: int = N_BOOT) -> dict:
    """Every figure of one arm on one dataset, pooled over its seeds (intervals stratified by group)."""
    from monai_xai.metrics.groups import group_name
    from monai_xai.metrics.uncertainty import accuracy, auc, mean_of

    groups = [r.groups for r in runs]
    found = {
        "auc": pooled_figure(auc, [(r.labels, r.scores) for r in runs], groups, n_boot),
        "accuracy": pooled_figure(accuracy, [(r.labels, r.preds) for r in runs], groups, n_boot),
        "worst_group_accuracy": pooled_figure(
            worst_group, [(r.labels, r.preds, r.agrees) for r in runs], groups, n_boot
        ),
        "group_accuracy": {},
        "marker_energy": pooled_figure(mean_marked, [(r.energy, r.marked) for r in runs], None, n_boot),
        "map_pointing_game": pooled_figure(mean_of, [(r.pointing,) for r in runs], groups, n_boot),
    }
    for group in sorted(set(np.concatenate(groups).tolist()), key=lambda g: (g // 2, -(g % 2))):
        name = group_name(group // 2, bool(group % 2), class_names)
        runs_arrays = [(r.labels, r.preds, r.groups) for r in runs]
        found["group_accuracy"][name] = pooled_figure(_group_metric(group), runs_arrays, groups, n_boot)
    found["group_counts"] = {
        group_name(g // 2, bool(g % 2), class_names): int((runs[0].groups == g).sum())
        for g in sorted(set(runs[0].groups.tolist()), key=lambda g: (g // 2, -(g % 2)))
    }
    return found


def matched_runs(a: Sequence[TestRun], b: Sequence[TestRun], what: str) -> list[tuple[TestRun, TestRun]]:
    """The runs of ``a`` and ``b`` with the same seed, paired; an error where a pair saw other test images."""
    by_seed = {r.seed: r for r in b}
    pairs = [(r, by_seed[r.seed]) for r in a if r.seed in by_seed]
    for x, y in pairs:
        if x.keys != y.keys:
            raise InputError(
                None, f"{what}, seed {x.seed}: tested on different images; not a paired comparison"
            )
    return pairs


def paired_figures(
    arm: Sequence[TestRun], reference: Sequence[TestRun], what: str, n_boot: int = N_BOOT
) -> dict:
    """arm − reference, worst-group accuracy and AUC, paired within each seed on the same images."""
    from monai_xai.metrics.uncertainty import auc

    pairs = matched_runs(arm, reference, what)
    if not pairs:
        return {}

    def wga_difference(labels, agrees, pa, pb) -> float:
        return worst_group(labels, pa, agrees) - worst_group(labels, pb, agrees)

    def auc_difference(labels, sa, sb) -> float:
        return auc(labels, sa) - auc(labels, sb)

    groups = [a.groups for a, _ in pairs]
    found = {
        "worst_group_accuracy": pooled_figure(
            wga_difference, [(a.labels, a.agrees, a.preds, b.preds) for a, b in pairs], groups, n_boot
        ),
        "auc": pooled_figure(
            auc_difference, [(a.labels, a.scores, b.scores) for a, b in pairs], groups, n_boot
        ),
    }
    for figures in found.values():
        figures["verdict"] = verdict(figures, 0.0)
    return found
