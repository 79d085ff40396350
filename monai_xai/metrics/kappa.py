"""Quadratic weighted kappa: agreement between ordinal grades (e.g. retinopathy 0-4) beyond chance."""

from __future__ import annotations

import numpy as np

__all__ = ["quadratic_weighted_kappa"]


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
