"""Image- and patient-level classification metrics: accuracy, sensitivity, specificity, AUC, confusion matrix.

Binary problems report sensitivity and specificity of class 1 (the disease); multi-class problems report the
macro average of the one-vs-rest values. AUC is the Mann-Whitney rank statistic, so no sklearn is needed, and
is NaN (with a warning) when a class has no positive or no negative sample. Patient-level metrics follow the
paper: the softmax of all images of a patient is averaged and the patient is classified from that mean.
"""

from __future__ import annotations

import warnings
from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np

__all__ = [
    "aggregate_by_patient",
    "binary_auc",
    "classification_metrics",
    "confusion_matrix",
    "patient_level_metrics",
]


def _as_numpy(values: Any) -> np.ndarray:
    detach = getattr(values, "detach", None)
    if detach is not None:
        values = detach().cpu().numpy()
    return np.asarray(values)


def _check_inputs(y_true: Any, probs: Any, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    labels = _as_numpy(y_true).reshape(-1).astype(np.int64)
    scores = _as_numpy(probs).astype(np.float64)
    if scores.ndim != 2 or scores.shape != (labels.size, num_classes):
        raise ValueError(f"probs must have shape ({labels.size}, {num_classes}), got {scores.shape}")
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f"labels must lie in [0, {num_classes - 1}], got {sorted(set(labels.tolist()))}")
    return labels, scores


def confusion_matrix(y_true: Any, y_pred: Any, num_classes: int) -> np.ndarray:
    """(num_classes, num_classes) counts; rows are true classes, columns predicted classes."""
    labels = _as_numpy(y_true).reshape(-1).astype(np.int64)
    preds = _as_numpy(y_pred).reshape(-1).astype(np.int64)
    return np.bincount(labels * num_classes + preds, minlength=num_classes * num_classes).reshape(
        num_classes, num_classes
    )


def _average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks with ties given the mean of the ranks they span."""
    order = np.argsort(values, kind="mergesort")
    _, first, counts = np.unique(values[order], return_index=True, return_counts=True)
    ranks = np.empty(values.size, dtype=np.float64)
    ranks[order] = np.repeat(first + (counts + 1) / 2.0, counts)
    return ranks


def binary_auc(is_positive: Any, scores: Any) -> float:
    """Area under the ROC curve as the probability that a positive outscores a negative (ties count half)."""
    positive = _as_numpy(is_positive).reshape(-1).astype(bool)
    values = _as_numpy(scores).reshape(-1).astype(np.float64)
    n_pos = int(positive.sum())
    n_neg = positive.size - n_pos
    if n_pos == 0 or n_neg == 0:
        warnings.warn(f"AUC is undefined with {n_pos} positive and {n_neg} negative samples", stacklevel=2)
        return float("nan")
    rank_sum = _average_ranks(values)[positive].sum()
    return float((rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def _ratio(numerator: float, denominator: float) -> float:
    return float(numerator / denominator) if denominator else float("nan")


def classification_metrics(y_true: Any, probs: Any, num_classes: int) -> dict[str, Any]:
    """Metrics of class probabilities ``probs`` (N, num_classes) against labels ``y_true`` (N,).

    Returns ``accuracy``, ``sensitivity``, ``specificity``, ``auc`` (floats; binary: of class 1, multi-class:
    macro one-vs-rest over the classes where they are defined) and ``confusion_matrix``. A sensitivity or
    specificity with an empty denominator is NaN.
    """
    if num_classes < 2:
        raise ValueError(f"num_classes must be at least 2, got {num_classes}")
    labels, scores = _check_inputs(y_true, probs, num_classes)
    preds = scores.argmax(axis=1)
    matrix = confusion_matrix(labels, preds, num_classes)
    true_pos = np.diag(matrix)
    false_neg = matrix.sum(axis=1) - true_pos
    false_pos = matrix.sum(axis=0) - true_pos
    true_neg = matrix.sum() - true_pos - false_neg - false_pos
    sensitivity = [_ratio(tp, tp + fn) for tp, fn in zip(true_pos, false_neg)]
    specificity = [_ratio(tn, tn + fp) for tn, fp in zip(true_neg, false_pos)]
    if num_classes == 2:
        sens, spec = sensitivity[1], specificity[1]
        auc = binary_auc(labels == 1, scores[:, 1])
    else:
        sens, spec = _nanmean(sensitivity), _nanmean(specificity)
        auc = _nanmean([binary_auc(labels == c, scores[:, c]) for c in range(num_classes)])
    return {
        "accuracy": _ratio(true_pos.sum(), matrix.sum()),
        "sensitivity": sens,
        "specificity": spec,
        "auc": auc,
        "confusion_matrix": matrix,
    }


def _nanmean(values: Sequence[float]) -> float:
    defined = [v for v in values if not np.isnan(v)]
    return float(np.mean(defined)) if defined else float("nan")


def aggregate_by_patient(
    y_true: Any, probs: Any, patient_ids: Sequence[Hashable]
) -> tuple[list[Hashable], np.ndarray, np.ndarray]:
    """Average image probabilities per patient, in order of first appearance.

    Returns (patient ids, patient labels (P,), mean probabilities (P, C)). Raises ValueError when the images
    of one patient carry different labels, which would make the patient label ambiguous.
    """
    labels = _as_numpy(y_true).reshape(-1).astype(np.int64)
    scores = _as_numpy(probs).astype(np.float64)
    ids = list(patient_ids)
    if not len(ids) == labels.size == scores.shape[0]:
        raise ValueError(
            f"got {labels.size} labels, {scores.shape[0]} probability rows and {len(ids)} patient ids"
        )
    rows: dict[Hashable, list[int]] = {}
    for index, pid in enumerate(ids):
        rows.setdefault(pid, []).append(index)
    patient_labels = []
    for pid, index in rows.items():
        found = np.unique(labels[index])
        if found.size > 1:
            raise ValueError(f"patient {pid!r} has images with different labels {found.tolist()}")
        patient_labels.append(found[0])
    mean_probs = np.stack([scores[index].mean(axis=0) for index in rows.values()])
    return list(rows), np.asarray(patient_labels, dtype=np.int64), mean_probs


def patient_level_metrics(
    y_true: Any, probs: Any, patient_ids: Sequence[Hashable], num_classes: int
) -> dict[str, Any]:
    """:func:`classification_metrics` of the per-patient mean softmax, plus ``num_patients``."""
    _, labels, mean_probs = aggregate_by_patient(y_true, probs, patient_ids)
    metrics = classification_metrics(labels, mean_probs, num_classes)
    metrics["num_patients"] = int(labels.size)
    return metrics
