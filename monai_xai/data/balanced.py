"""Class-balanced resampling: every epoch draws the minority classes up to the majority class size."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

import numpy as np
from torch.utils.data import Sampler

from monai_xai.errors import InputError

__all__ = ["ClassBalancedSampler"]


class ClassBalancedSampler(Sampler[int]):
    """Indices with every class as frequent as the largest one, redrawn each epoch.

    All items of every class are kept; a smaller class is topped up with items drawn with replacement,
    a fresh draw each epoch, so an unbalanced training set is seen balanced without dropping data.
    With balanced classes this is a plain shuffle.
    """

    def __init__(self, labels: Sequence[int], seed: int = 0, source: str | None = None) -> None:
        labels = np.asarray(labels, dtype=np.int64).reshape(-1)
        classes = np.unique(labels)
        if len(classes) < 2:
            raise InputError(
                source, f"training data has only class(es) {classes.tolist()}: need at least two"
            )
        self.members = [np.flatnonzero(labels == c) for c in classes]
        self.size = max(len(m) for m in self.members)
        self.rng = np.random.default_rng(seed)

    @classmethod
    def from_items(
        cls, items: Sequence[Mapping], seed: int = 0, source: str | None = None, key: str = "label"
    ) -> ClassBalancedSampler:
        """The sampler of a datalist: each item's class is its ``key`` entry."""
        return cls([item[key] for item in items], seed=seed, source=source)

    def __len__(self) -> int:
        return self.size * len(self.members)

    def __iter__(self) -> Iterator[int]:
        parts = [
            np.concatenate([m, self.rng.choice(m, size=self.size - len(m), replace=True)])
            for m in self.members
        ]
        return iter(self.rng.permutation(np.concatenate(parts)).tolist())
