"""Class balance of training data: oversampling that drops nothing, or loss weights, chosen from counts."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from monai.transforms import Randomizable
from torch.utils.data import Dataset

from monai_xai.errors import InputError

__all__ = [
    "AUTO_BALANCE_RATIO",
    "CLASS_BALANCE_POLICIES",
    "ClassBalance",
    "ClassBalancedDataset",
    "resolve_class_balance",
]

logger = logging.getLogger(__name__)


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
    the sampler free: a shuffle in one process, MONAI's ``DistributedSampler`` under torchrun (each bundle's
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


#: The ways to balance classes: oversample in the dataset, weight the loss, or neither; ``auto`` picks.
CLASS_BALANCE_POLICIES = ("auto", "sampler", "loss", "none")
#: ``auto`` balances when the largest training class outnumbers the smallest by more than this.
AUTO_BALANCE_RATIO = 3.0


@dataclass(frozen=True)
class ClassBalance:
    """How a training run balances its classes, decided from the training split's class counts.

    ``policy`` is the one in force (``auto`` resolved), ``requested`` what the config asked for. ``sampler``
    wraps the training dataset in :class:`ClassBalancedDataset`; ``loss`` weights the cross-entropies by
    ``n / (k * count)`` per class (sklearn's "balanced" weights: a perfectly balanced split gets all ones).
    """

    requested: str
    policy: str
    counts: tuple[int, ...]

    @property
    def ratio(self) -> float:
        """Largest over smallest class count (inf when a class is missing)."""
        smallest = min(self.counts)
        return float("inf") if smallest == 0 else max(self.counts) / smallest

    @property
    def loss_weights(self) -> list[float] | None:
        """Per-class cross-entropy weights under the ``loss`` policy, else None (unweighted)."""
        if self.policy != "loss":
            return None
        n, k = sum(self.counts), len(self.counts)
        return [n / (k * c) if c else 0.0 for c in self.counts]

    def wrap(self, dataset: Dataset, items: Sequence[Mapping], seed: int = 0, source: str | None = None):
        """``dataset`` as :class:`ClassBalancedDataset` under the ``sampler`` policy, else unchanged."""
        if self.policy != "sampler":
            return dataset
        return ClassBalancedDataset.from_items(dataset, items, seed=seed, source=source)

    def describe(self) -> str:
        counts = ":".join(str(c) for c in self.counts)
        chosen = f"class_balance {self.requested} -> {self.policy}"
        return f"training classes {counts} (largest/smallest {self.ratio:.1f}): {chosen}"


def resolve_class_balance(
    requested: str, items: Sequence[Mapping], num_classes: int, key: str = "label"
) -> ClassBalance:
    """Decide the class balance of a run from its training ``items`` and say so in the log.

    ``auto`` weights the loss when the largest-to-smallest ratio exceeds :data:`AUTO_BALANCE_RATIO`
    (cheaper than oversampling: an epoch keeps its length) and leaves balanced data alone.
    """
    from monai.utils import look_up_option

    requested = look_up_option(requested, CLASS_BALANCE_POLICIES)
    counts = np.bincount([int(item[key]) for item in items], minlength=num_classes).tolist()
    balance = ClassBalance(requested, requested, tuple(int(c) for c in counts))
    if requested == "auto":
        policy = "loss" if balance.ratio > AUTO_BALANCE_RATIO else "none"
        balance = ClassBalance(requested, policy, balance.counts)
    log = logger.warning if balance.policy == "none" and balance.ratio > AUTO_BALANCE_RATIO else logger.info
    log(balance.describe())
    return balance
