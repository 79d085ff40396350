"""Image- and patient-level classification metrics: accuracy, sensitivity, specificity, AUC, confusion matrix.

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


def classification_metrics(y_true: Any, probs: Any, num_classes: int) -> dict[str, Any]:
    """Metrics of class probabilities ``probs`` (N, num_classes) against labels ``y_true`` (N,).

    Returns ``accuracy``, ``sensitivity``, ``specificity``, ``auc`` (floats; binary: of class 1, multi-class:
    macro one-vs-rest over the classes where they are defined) and ``confusion_matrix``. A sensitivity or
    specificity with an empty denominator is NaN. AUC is ``monai.metrics.compute_roc_auc`` per class (ties
    count half); its own ``average="macro"`` is NaN as soon as one class is absent from ``y_true``, so the
    macro mean here skips undefined classes instead, and a validation fold lacking a class still gets an AUC.
    ``accuracy`` is the share on the diagonal: MONAI's "accuracy" is per class, (TP + TN) / N vs the rest.
    """
    if num_classes < 2:
        raise ValueError(f"num_classes must be at least 2, got {num_classes}")
    labels, scores = _check_inputs(y_true, probs, num_classes)
    preds = scores.argmax(axis=1)
    matrix = confusion_matrix(labels, preds, num_classes)
    y = torch.from_numpy(labels)
    y_onehot = torch.nn.functional.one_hot(y, num_classes)
    sensitivity, specificity = _one_vs_rest(y_onehot, preds)
    if num_classes == 2:
        sens, spec = float(sensitivity[1]), float(specificity[1])
        auc = float(compute_roc_auc(torch.from_numpy(scores[:, 1]), y))
    else:
        sens, spec = _nanmean(sensitivity), _nanmean(specificity)
        auc = _nanmean(compute_roc_auc(torch.from_numpy(scores), y_onehot, average="none"))
    return {
        "accuracy": float(np.trace(matrix) / labels.size),
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
