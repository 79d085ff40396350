"""Image- and patient-level classification metrics: accuracy, sensitivity, specificity, AUC, confusion matrix.

Also balanced accuracy and average precision, and on request (``details=True``) the per-class one-vs-rest
values and the counts of the argmax predictions, with :func:`single_class_warning` for a classifier that
puts (almost) everything in one class.

Binary problems report sensitivity and specificity of class 1 (the disease); multi-class problems report the
macro average of the one-vs-rest values. The one-vs-rest counts and rates and the AUC are MONAI's
(``get_confusion_matrix``, ``compute_confusion_matrix_metric``, ``compute_roc_auc``); AUC is NaN (with MONAI's
warning) when a class has no positive or no negative sample. Patient-level metrics follow the paper: the
softmax of all images of a patient is averaged and the patient is classified from that mean.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np
import torch
from monai.metrics import compute_confusion_matrix_metric, compute_roc_auc, get_confusion_matrix

__all__ = [
    "aggregate_by_patient",
    "average_precision",
    "classification_metrics",
    "confusion_matrix",
    "patient_level_metrics",
    "single_class_warning",
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
    if not labels.size:
        raise ValueError("no samples to score")
    if labels.min() < 0 or labels.max() >= num_classes:
        raise ValueError(f"labels must lie in [0, {num_classes - 1}], got {sorted(set(labels.tolist()))}")
    return labels, scores


def confusion_matrix(y_true: Any, y_pred: Any, num_classes: int) -> np.ndarray:
    """(num_classes, num_classes) counts; rows are true classes, columns predicted classes.

    Kept because MONAI has no class-by-class table: ``monai.metrics.get_confusion_matrix`` counts TP/FP/TN/FN
    of each class against the rest, which loses which class a miss went to (needed for the report figure and
    the counterfactual before/after tables).
    """
    labels = _as_numpy(y_true).reshape(-1).astype(np.int64)
    preds = _as_numpy(y_pred).reshape(-1).astype(np.int64)
    return np.bincount(labels * num_classes + preds, minlength=num_classes * num_classes).reshape(
        num_classes, num_classes
    )


def _one_vs_rest(y_onehot: torch.Tensor, preds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-class sensitivity and specificity from MONAI's confusion counts; NaN where a denominator is 0."""
    pred_onehot = torch.nn.functional.one_hot(torch.from_numpy(preds), y_onehot.shape[1])
    counts = get_confusion_matrix(pred_onehot, y_onehot).sum(dim=0).double()  # rates in float64, not float32
    sensitivity = compute_confusion_matrix_metric("sensitivity", counts).numpy()
    specificity = compute_confusion_matrix_metric("specificity", counts).numpy()
    return sensitivity, specificity


def average_precision(is_positive: Any, scores: Any) -> float:
    """Step-wise area under the precision-recall curve (scikit-learn's ``average_precision_score``).

    AP = sum over the distinct score thresholds t (descending) of (R(t) - R(previous t)) * P(t), with the
    decisions ``score >= t``; tied scores enter together. NaN when there is no positive sample.
    """
    y = _as_numpy(is_positive).reshape(-1).astype(bool)
    s = _as_numpy(scores).reshape(-1).astype(np.float64)
    if not y.any():
        return float("nan")
    order = np.argsort(-s, kind="stable")
    y, s = y[order], s[order]
    last_of_tie = np.r_[np.flatnonzero(np.diff(s)), s.size - 1]
    tp = np.cumsum(y)[last_of_tie]
    precision = tp / (last_of_tie + 1)
    recall = tp / tp[-1]
    return float(np.sum(np.diff(recall, prepend=0.0) * precision))


def classification_metrics(
    y_true: Any,
    probs: Any,
    num_classes: int,
    details: bool = False,
    class_names: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Metrics of class probabilities ``probs`` (N, num_classes) against labels ``y_true`` (N,).

    Returns ``accuracy``, ``sensitivity``, ``specificity``, ``auc`` (floats; binary: of class 1, multi-class:
    macro one-vs-rest over the classes where they are defined) and ``confusion_matrix``. A sensitivity or
    specificity with an empty denominator is NaN. AUC is ``monai.metrics.compute_roc_auc`` per class (ties
    count half); its own ``average="macro"`` is NaN as soon as one class is absent from ``y_true``, so the
    macro mean here skips undefined classes instead, and a validation fold lacking a class still gets an AUC.
    ``accuracy`` is the share on the diagonal: MONAI's "accuracy" is per class, (TP + TN) / N vs the rest.

    Also ``balanced_accuracy`` (macro mean of the per-class recall at the argmax, over the classes present
    in ``y_true``) and ``average_precision`` (:func:`average_precision`; binary: of class 1, multi-class:
    macro one-vs-rest over the classes present), both floats.

    With ``details=True`` (off by default because these values are not floats) also
    ``predicted_class_counts`` (list of num_classes ints: how often the argmax picks each class, for
    :func:`single_class_warning`) and, for multi-class problems, ``per_class``: ``{name: {"sensitivity",
    "specificity", "auc", "ap"}}`` of each class one-vs-rest, keyed by ``class_names`` or else by the class
    index as a string.
    """
    if num_classes < 2:
        raise ValueError(f"num_classes must be at least 2, got {num_classes}")
    labels, scores = _check_inputs(y_true, probs, num_classes)
    if class_names is not None and len(class_names) != num_classes:
        raise ValueError(f"got {len(class_names)} class names for {num_classes} classes")
    preds = scores.argmax(axis=1)
    matrix = confusion_matrix(labels, preds, num_classes)
    y = torch.from_numpy(labels)
    y_onehot = torch.nn.functional.one_hot(y, num_classes)
    sensitivity, specificity = _one_vs_rest(y_onehot, preds)
    if num_classes == 2:
        sens, spec = float(sensitivity[1]), float(specificity[1])
        auc = float(compute_roc_auc(torch.from_numpy(scores[:, 1]), y))
        ap = average_precision(labels == 1, scores[:, 1])
    else:
        sens, spec = _nanmean(sensitivity), _nanmean(specificity)
        class_auc = np.asarray(compute_roc_auc(torch.from_numpy(scores), y_onehot, average="none"), float)
        auc = _nanmean(class_auc)
        class_ap = [average_precision(labels == c, scores[:, c]) for c in range(num_classes)]
        ap = _nanmean(class_ap)
    metrics: dict[str, Any] = {
        "accuracy": float(np.trace(matrix) / labels.size),
        "sensitivity": sens,
        "specificity": spec,
        "auc": auc,
        "confusion_matrix": matrix,
        "balanced_accuracy": _nanmean(sensitivity),
        "average_precision": ap,
    }
    if details:
        metrics["predicted_class_counts"] = np.bincount(preds, minlength=num_classes).tolist()
        if num_classes > 2:
            names = [str(c) for c in (class_names if class_names is not None else range(num_classes))]
            metrics["per_class"] = {
                name: {
                    "sensitivity": float(sensitivity[c]),
                    "specificity": float(specificity[c]),
                    "auc": float(class_auc[c]),
                    "ap": float(class_ap[c]),
                }
                for c, name in enumerate(names)
            }
    return metrics


def single_class_warning(
    pred_counts: Sequence[int], split: str, class_names: Sequence[str] | None = None, share: float = 0.95
) -> str | None:
    """A warning when one class takes at least ``share`` of the predictions of ``split``, else None.

    ``pred_counts`` is ``predicted_class_counts`` of :func:`classification_metrics` (``details=True``). The
    message names the split, the class and all counts, for logging at WARNING level at the end of an
    evaluation: a classifier that puts (almost) every image in one class at the argmax makes no usable
    decision even when its AUC shows signal.
    """
    counts = [int(c) for c in pred_counts]
    total = sum(counts)
    if total <= 0:
        return None
    names = [str(n) for n in class_names] if class_names is not None else [str(c) for c in range(len(counts))]
    if len(names) != len(counts):
        raise ValueError(f"got {len(names)} class names for {len(counts)} counts")
    top = int(np.argmax(counts))
    if counts[top] / total < share:
        return None
    listed = ", ".join(f"{name} {count}" for name, count in zip(names, counts))
    return (
        f"split {split!r}: class {names[top]!r} takes {counts[top]} of {total} predictions "
        f"({100.0 * counts[top] / total:.1f}% >= {100.0 * share:g}%; predicted counts: {listed}); the "
        "decisions are (almost) a single class whatever the AUC says: check the class balance and consider "
        "an operating point chosen on validation"
    )


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
    y_true: Any,
    probs: Any,
    patient_ids: Sequence[Hashable],
    num_classes: int,
    details: bool = False,
    class_names: Sequence[str] | None = None,
) -> dict[str, Any]:
    """:func:`classification_metrics` of the per-patient mean softmax, plus ``num_patients``."""
    _, labels, mean_probs = aggregate_by_patient(y_true, probs, patient_ids)
    metrics = classification_metrics(labels, mean_probs, num_classes, details, class_names)
    metrics["num_patients"] = int(labels.size)
    return metrics
