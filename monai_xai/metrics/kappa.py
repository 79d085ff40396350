"""Quadratic weighted kappa: agreement between ordinal grades (e.g. retinopathy 0-4) beyond chance."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np

from monai_xai.errors import InputError

__all__ = ["predictions_kappa", "quadratic_weighted_kappa"]


def quadratic_weighted_kappa(y_true, y_pred, num_classes: int | None = None) -> float:
    """Cohen's kappa weighted by (i - j)^2 / (K - 1)^2: a grade off by two costs four times one off by one.

    Returns 1 for perfect agreement, 0 for chance level; 1.0 also when both raters give one single grade to
    every sample (no disagreement is possible).
    """
    true = np.asarray(y_true, dtype=np.int64).reshape(-1)
    pred = np.asarray(y_pred, dtype=np.int64).reshape(-1)
    if true.shape != pred.shape:
        raise ValueError(f"{true.size} true grades but {pred.size} predicted grades")
    if true.size == 0:
        raise ValueError("quadratic_weighted_kappa needs at least one sample")
    k = int(max(true.max(), pred.max()) + 1) if num_classes is None else int(num_classes)
    if min(true.min(), pred.min()) < 0 or max(true.max(), pred.max()) >= k:
        raise ValueError(f"grades must lie in [0, {k - 1}]")
    observed = np.zeros((k, k), dtype=np.float64)
    np.add.at(observed, (true, pred), 1.0)
    expected = np.outer(observed.sum(1), observed.sum(0)) / true.size
    grades = np.arange(k)
    weights = (grades[:, None] - grades[None, :]) ** 2 / max(k - 1, 1) ** 2
    disagreement = (weights * expected).sum()
    if disagreement == 0:
        return 1.0
    return float(1.0 - (weights * observed).sum() / disagreement)


def predictions_kappa(path: str | os.PathLike) -> float:
    """Quadratic weighted kappa of a ``predictions.csv`` written by an evaluation run.

    Scores the written predictions rather than re-running a model, so that a table can be rebuilt from
    finished runs. Reads the ``label`` and ``pred`` columns; rows with a negative label (unlabelled inputs)
    are left out, and the number of ``prob_<class>`` columns sets the number of grades.
    """
    path = Path(path)
    try:
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            columns = reader.fieldnames or []
            rows = list(reader)
    except OSError as err:
        raise InputError(path, f"cannot read predictions: {err.strerror or err}") from None
    if "label" not in columns or "pred" not in columns:
        raise InputError(path, f"expected 'label' and 'pred' columns, found {columns}")
    try:
        pairs = [(int(r["label"]), int(r["pred"])) for r in rows]
    except ValueError as err:
        raise InputError(path, f"labels and predictions must be class indices ({err})") from None
    pairs = [p for p in pairs if p[0] >= 0]
    if not pairs:
        raise InputError(path, "no labelled predictions to score")
    n_classes = sum(c.startswith("prob_") for c in columns) or None
    true, pred = zip(*pairs)
    try:
        return quadratic_weighted_kappa(true, pred, num_classes=n_classes)
    except ValueError as err:
        raise InputError(path, str(err)) from None
