"""Class-balanced training data: every epoch sees each class as often as the largest one, nothing dropped."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from monai.transforms import Randomizable
from torch.utils.data import Dataset

from monai_xai.errors import InputError

__all__ = ["ClassBalancedDataset"]


class _TopUp(Randomizable):
    """Draws the item for a slot past the end of a smaller class.

    An object of its own because MONAI's per-worker reseeding (``set_rnd``) stops at the first randomizable
    object it meets: were the dataset randomizable, the random transforms of the dataset it wraps would not be
    reseeded.
    """

    def __init__(self, seed: int) -> None:
        self.set_random_state(seed)

    def randomize(self, members: np.ndarray) -> int:
        return int(members[self.R.randint(len(members))])


class ClassBalancedDataset(Dataset):
    """``dataset`` with every class as frequent as the largest one.

    Slot ``i`` of class ``c`` (``len`` is classes x the largest class's size) is the class's ``i``-th item
    while it has one, else one of its items drawn with replacement, a fresh draw on every access: an epoch
    shows every item and tops each smaller class up. Balancing in the dataset rather than in a sampler leaves
    the sampler free: a shuffle in one process, MONAI's ``DistributedSampler`` under torchrun (the shared
    ``configs/multi_gpu_train.json`` replaces ``train#sampler``). With balanced classes it holds each item
    once.
    """

    def __init__(
        self, dataset: Dataset, labels: Sequence[int], seed: int = 0, source: str | None = None
    ) -> None:
        labels = np.asarray(labels, dtype=np.int64).reshape(-1)
        if len(labels) != len(dataset):  # type: ignore[arg-type]
            raise ValueError(f"{len(labels)} labels for a dataset of {len(dataset)} items")  # type: ignore[arg-type]
        classes = np.unique(labels)
        if len(classes) < 2:
            raise InputError(
                source, f"training data has only class(es) {classes.tolist()}: need at least two"
            )
        self.dataset = dataset
        self.members = [np.flatnonzero(labels == c) for c in classes]
        self.size = max(len(m) for m in self.members)
        self.top_up = _TopUp(seed)

    @classmethod
    def from_items(
        cls,
        dataset: Dataset,
        items: Sequence[Mapping],
        seed: int = 0,
        source: str | None = None,
        key: str = "label",
    ) -> ClassBalancedDataset:
        """``dataset`` of the datalist ``items`` (in its order); each item's class is its ``key`` entry."""
        return cls(dataset, [item[key] for item in items], seed=seed, source=source)

    def __len__(self) -> int:
        return self.size * len(self.members)

    def __getitem__(self, index: int):
        members = self.members[index // self.size]
        slot = index % self.size
        item = members[slot] if slot < len(members) else self.top_up.randomize(members)
        return self.dataset[int(item)]
