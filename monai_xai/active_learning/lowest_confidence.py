"""Lowest confidence first: the samples the model is least sure about."""

from __future__ import annotations

import numpy as np

from monai_xai.active_learning.base import SampleRecords, SelectionStrategy

__all__ = ["LowestConfidence"]


class LowestConfidence(SelectionStrategy):
    """Score 1 - max_k p(k | x): uncertain predictions come first."""

    name = "lowest_confidence"

    def scores(self, records: SampleRecords) -> np.ndarray:
        return 1.0 - records.probs.max(axis=1)
