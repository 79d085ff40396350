"""Unpaired two-class datasets for image-to-image translation between the classes (CycleGAN)."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

from monai.transforms import Randomizable
from torch.utils.data import Dataset

from monai_xai.data.cache import DEFAULT_CACHE_BUDGET_GB, cached_dataset
from monai_xai.errors import InputError

__all__ = ["UnpairedDataset"]


class UnpairedDataset(Dataset, Randomizable):
    """Items ``{"x": image of class 0, "y": image of class 1}``, paired at random.

    An epoch walks the larger class once and draws the smaller one with replacement, so both domains are
    seen equally often. ``transform`` maps one datalist item to a dict holding ``image_key``.
    MONAI's ``DataLoader`` reseeds the pairing per worker (it is ``Randomizable``). Each domain caches the
    transforms up to the first random one as :func:`~monai_xai.data.cached_dataset` chooses (``cache``:
    ``auto`` in memory within ``cache_budget_gb``, else on disk under ``cache_dir/domain_<class>``).

    Args:
        data: the datalist of both classes.
        transform: maps one datalist item to a dict holding ``image_key``.
        classes: the class of each domain (x, y).
        image_key: the image's key in a transformed item.
        label_key: the class's key in a datalist item.
        seed: the pairing's seed.
        source: the datalist's file, named in errors.
        cache: a mode of :data:`~monai_xai.data.CACHE_MODES`.
        cache_budget_gb: the in-memory budget of both domains together, in GB (each its share by items).
        cache_dir: the folder of the domains' disk caches.
        cache_workers: threads that fill a cache.
    """

    def __init__(
        self,
        data: Sequence[dict],
        transform: Callable[[dict], dict],
        classes: Sequence[int] = (0, 1),
        image_key: str = "image",
        label_key: str = "label",
        seed: int = 0,
        source: str | None = None,
        cache: str = "none",
        cache_budget_gb: float = DEFAULT_CACHE_BUDGET_GB,
        cache_dir: str | os.PathLike | None = None,
        cache_workers: int | None = 1,
    ) -> None:
        self.domains = [[item for item in data if int(item[label_key]) == c] for c in classes]
        empty = [c for c, items in zip(classes, self.domains) if not items]
        if empty:
            found = sorted({int(item[label_key]) for item in data})
            raise InputError(
                source, f"no items of class {empty} to translate between (classes present: {found})"
            )
        self.image_key = image_key
        self.domains = [
            cached_dataset(
                items,
                transform,
                cache,
                float(cache_budget_gb) * len(items) / len(data),
                None if cache_dir is None else Path(cache_dir) / f"domain_{c}",
                num_workers=cache_workers,
                progress=False,
                name=f"domain {c}",
            )
            for c, items in zip(classes, self.domains)
        ]
        self.longer = int(len(self.domains[1]) > len(self.domains[0]))
        self.set_random_state(seed)

    def __len__(self) -> int:
        return len(self.domains[self.longer])

    def randomize(self, data: None = None) -> int:
        shorter = self.domains[1 - self.longer]
        return int(self.R.randint(len(shorter)))

    def __getitem__(self, index: int) -> dict:
        picks = [0, 0]
        picks[self.longer], picks[1 - self.longer] = index, self.randomize()
        x, y = (domain[i] for domain, i in zip(self.domains, picks))
        return {"x": x[self.image_key], "y": y[self.image_key]}
