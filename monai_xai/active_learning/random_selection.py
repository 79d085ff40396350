"""Random order: the baseline every other strategy has to beat."""

from __future__ import annotations

import numpy as np

from monai_xai.active_learning.base import SampleRecords, SelectionStrategy

__all__ = ["RandomSelection"]


class RandomSelection(SelectionStrategy):
    """A seeded random permutation, so a sweep's fractions are nested (10 % is inside 20 %)."""

    name = "random"

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    def scores(self, records: SampleRecords) -> np.ndarray:
        return np.random.default_rng(self.seed).permutation(len(records)).astype(np.float64)
