"""Operating points of binary classifiers: a decision threshold chosen on validation and applied elsewhere.

A clinician reads a decision, not an AUC. On an imbalanced data set the argmax (a threshold of 0.5 on the
probability of class 1) can put every test image in one class while the AUC still shows signal; a threshold
chosen on the validation split (Youden's J, or the highest threshold reaching a target sensitivity for
screening) and then applied unchanged to the test split gives a decision that can be reported honestly.

Decisions are ``class 1 iff p1 >= threshold``. Candidate thresholds are the observed scores of the split
the threshold is chosen on (as in the ROC curve), so the chosen threshold is the lowest score that the
validation split classes as positive. The rates come from MONAI's ``compute_confusion_matrix_metric``.

Multi-class problems have no single operating point: :func:`decide` uses the argmax for them, and any
per-class threshold is one-vs-rest reporting only (see ``per_class`` in
:func:`monai_xai.metrics.classification_metrics`).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from monai.metrics import compute_confusion_matrix_metric
from monai.utils import look_up_option

__all__ = ["OPERATING_POINT_METHODS", "OperatingPoint", "choose_threshold", "decide", "metrics_at_threshold"]

OPERATING_POINT_METHODS = ("youden", "target_sensitivity")


@dataclass(frozen=True)
class OperatingPoint:
    """A decision threshold on the probability of class 1 and how it was chosen.

    ``sensitivity`` and ``specificity`` are those reached on the ``n`` samples of ``split`` the threshold was
    chosen on. :meth:`to_dict` gives plain JSON types; :meth:`from_dict` reads them back.
    """

    threshold: float
    method: str
    target_sensitivity: float | None
    sensitivity: float
    specificity: float
    n: int
    split: str = "val"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> OperatingPoint:
        names = [f.name for f in dataclasses.fields(cls)]
        missing = [name for name in names if name not in data and name != "split"]
        if missing:
            raise ValueError(f"operating point record lacks {missing}; got keys {sorted(data)}")
        values = {name: data[name] for name in names if name in data}
        target = values["target_sensitivity"]
        return cls(
            threshold=float(values["threshold"]),
            method=str(values["method"]),
            target_sensitivity=None if target is None else float(target),
            sensitivity=float(values["sensitivity"]),
            specificity=float(values["specificity"]),
            n=int(values["n"]),
            split=str(values.get("split", "val")),
        )


def _as_numpy(values: Any) -> np.ndarray:
    detach = getattr(values, "detach", None)
    if detach is not None:
        values = detach().cpu().numpy()
    return np.asarray(values)


def _binary_inputs(labels: Any, scores: Any) -> tuple[np.ndarray, np.ndarray]:
    """Labels in {0, 1} and the probability of class 1: (N,) scores, or the second column of (N, 2) ones."""
    y = _as_numpy(labels).reshape(-1)
    s = _as_numpy(scores).astype(np.float64)
    if s.ndim == 2 and s.shape[1] == 2:
        s = s[:, 1]
    if s.ndim != 1:
        raise ValueError(
            f"scores must be the probability of class 1, shape (N,) or (N, 2); got shape {s.shape} "
            "(multi-class problems have no single operating point: use the argmax)"
        )
    if s.size != y.size:
        raise ValueError(f"got {y.size} labels and {s.size} scores")
    if not y.size:
        raise ValueError("no samples to choose a threshold on")
    if not np.isin(y, (0, 1)).all():
        raise ValueError(f"an operating point needs binary labels 0/1, got {sorted(set(y.tolist()))}")
    if not np.isfinite(s).all():
        raise ValueError("scores contain NaN or infinite values")
    return y.astype(np.int64), s


def _counts(y: np.ndarray, s: np.ndarray, thresholds: np.ndarray) -> torch.Tensor:
    """(K, 4) TP, FP, TN, FN per threshold for decisions ``s >= t`` (MONAI's column order)."""
    pos, neg = np.sort(s[y == 1]), np.sort(s[y == 0])
    tp = pos.size - np.searchsorted(pos, thresholds, side="left")
    fp = neg.size - np.searchsorted(neg, thresholds, side="left")
    counts = np.stack([tp, fp, neg.size - fp, pos.size - tp], axis=-1)
    return torch.from_numpy(counts.astype(np.float64))


def choose_threshold(
    labels: Any,
    scores: Any,
    method: str = "youden",
    target_sensitivity: float | None = None,
    split: str = "val",
) -> OperatingPoint:
    """Choose a threshold on the probability of class 1 (``scores``) of a binary problem.

    ``method="youden"`` (default): the threshold maximising Youden's J = sensitivity + specificity - 1;
    among thresholds with the same J the one closest to 0.5 (the argmax decision) wins, and between two
    equally close the higher one. With ``target_sensitivity`` (or ``method="target_sensitivity"``), the
    screening point: the highest threshold whose sensitivity is >= the target, i.e. the fewest positive
    calls that still find that share of the diseased. Candidates are the observed scores, so the threshold
    is the lowest score classed positive on this split. Record ``split`` (where it was chosen) in the result.

    Raises ValueError when the labels hold one class only: sensitivity or specificity is then undefined and
    no threshold can be chosen on that split.
    """
    if target_sensitivity is not None and method == "youden":
        method = "target_sensitivity"
    checked = look_up_option(method, OPERATING_POINT_METHODS, default=None)
    if checked is None:
        raise ValueError(f"method must be one of {OPERATING_POINT_METHODS}, got {method!r}")
    method = checked
    if method == "target_sensitivity":
        if target_sensitivity is None:
            raise ValueError("method 'target_sensitivity' needs target_sensitivity")
        if not 0.0 < target_sensitivity <= 1.0:
            raise ValueError(f"target_sensitivity must lie in (0, 1], got {target_sensitivity}")
    y, s = _binary_inputs(labels, scores)
    present = np.unique(y)
    if present.size < 2:
        raise ValueError(
            f"cannot choose a threshold on split {split!r}: its {y.size} labels are all class "
            f"{int(present[0])}, so {'specificity' if present[0] == 1 else 'sensitivity'} is undefined; "
            "an operating point needs both classes"
        )
    thresholds = np.unique(s)[::-1]  # descending: sensitivity rises along the array
    counts = _counts(y, s, thresholds)
    sensitivity = compute_confusion_matrix_metric("sensitivity", counts).numpy()
    specificity = compute_confusion_matrix_metric("specificity", counts).numpy()
    if method == "youden":
        j = compute_confusion_matrix_metric("youden", counts).numpy()
        best = np.flatnonzero(np.isclose(j, j.max(), rtol=0.0, atol=1e-12))
        # closest to 0.5; among equally close the higher threshold (lower index in the descending array)
        index = int(best[np.argmin(np.abs(thresholds[best] - 0.5))])
    else:
        # sensitivity never falls as the threshold drops; the first index reaching the target is the highest
        reached = np.flatnonzero(sensitivity >= target_sensitivity - 1e-12)
        index = int(reached[0])  # the lowest observed score reaches sensitivity 1, so this exists
    return OperatingPoint(
        threshold=float(thresholds[index]),
        method=method,
        target_sensitivity=None if method == "youden" else float(target_sensitivity),
        sensitivity=float(sensitivity[index]),
        specificity=float(specificity[index]),
        n=int(y.size),
        split=split,
    )


def _threshold_value(threshold: float | OperatingPoint) -> float:
    value = threshold.threshold if isinstance(threshold, OperatingPoint) else float(threshold)
    if math.isnan(value):
        raise ValueError("threshold is NaN")
    return value


def metrics_at_threshold(labels: Any, scores: Any, threshold: float | OperatingPoint) -> dict[str, Any]:
    """Decision metrics of ``class 1 iff p1 >= threshold`` on a binary split.

    Returns ``sensitivity``, ``specificity``, ``accuracy``, ``balanced_accuracy``, ``ppv``, ``npv`` (floats,
    NaN where the denominator is 0, e.g. ``ppv`` when nothing is called positive), ``threshold``, ``n`` and
    ``confusion_matrix`` ((2, 2) counts, rows true class, columns decision: [[TN, FP], [FN, TP]]).
    """
    t = _threshold_value(threshold)
    y, s = _binary_inputs(labels, scores)
    counts = _counts(y, s, np.array([t]))
    rates = {
        name: float(compute_confusion_matrix_metric(key, counts)[0])
        for name, key in (
            ("sensitivity", "sensitivity"),
            ("specificity", "specificity"),
            ("accuracy", "accuracy"),
            ("balanced_accuracy", "balanced_accuracy"),
            ("ppv", "ppv"),
            ("npv", "npv"),
        )
    }
    tp, fp, tn, fn = (int(v) for v in counts[0])
    return {**rates, "threshold": t, "n": int(y.size), "confusion_matrix": np.array([[tn, fp], [fn, tp]])}


def decide(probs: Any, threshold: float | OperatingPoint | None = None) -> np.ndarray:
    """Predicted classes (N,) int64 from class probabilities (N, C).

    Binary (C == 2): class 1 iff ``probs[:, 1] >= threshold``; the argmax when ``threshold`` is None.
    Multi-class: the argmax only. A multi-class problem has no single operating point (one-vs-rest
    thresholds can contradict each other or leave a sample in no class), so per-class operating points are
    for one-vs-rest reporting only; passing a threshold here for C > 2 raises ValueError.
    """
    p = _as_numpy(probs).astype(np.float64)
    if p.ndim != 2 or p.shape[1] < 2:
        raise ValueError(f"probs must have shape (N, C) with C >= 2, got {p.shape}")
    if threshold is None:
        return p.argmax(axis=1).astype(np.int64)
    if p.shape[1] != 2:
        raise ValueError(
            f"a threshold applies to binary problems only, got {p.shape[1]} classes: multi-class decisions "
            "are the argmax (per-class operating points are one-vs-rest reporting only)"
        )
    return (p[:, 1] >= _threshold_value(threshold)).astype(np.int64)
