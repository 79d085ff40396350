"""Largest map error first: the samples whose attention is furthest from the reference map."""

from __future__ import annotations

import numpy as np

from monai_xai.active_learning.base import SampleRecords, SelectionStrategy

__all__ = ["LargestMapError"]


class LargestMapError(SelectionStrategy):
    """Score = MSE between the model's map and the reference; samples without a reference come last."""

    name = "largest_map_error"

    def scores(self, records: SampleRecords) -> np.ndarray:
        if records.map_error is None or np.isnan(records.map_error).all():
            raise ValueError("largest_map_error needs map errors: no sample has a reference map")
        return np.nan_to_num(records.map_error, nan=-np.inf)
