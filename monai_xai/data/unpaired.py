"""Unpaired two-class datasets for image-to-image translation between the classes (CycleGAN)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from monai.data import CacheDataset
from monai.data import Dataset as MonaiDataset
from monai.transforms import Compose, Randomizable
from torch.utils.data import Dataset

from monai_xai.errors import InputError

__all__ = ["UnpairedDataset"]


class UnpairedDataset(Dataset, Randomizable):
    """Items ``{"x": image of class 0, "y": image of class 1}``, paired at random.

    An epoch walks the larger class once and draws the smaller one with replacement, so both domains are
    seen equally often. ``transform`` maps one datalist item to a dict holding ``image_key``.
    MONAI's ``DataLoader`` reseeds the pairing per worker (it is ``Randomizable``). With ``cache`` each
    domain is a MONAI ``CacheDataset``: the transforms up to the first random one run once per item.
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
        cache: bool = False,
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
        if cache:
            transform = transform if isinstance(transform, Compose) else Compose([transform])
            self.domains = [
                CacheDataset(items, transform, num_workers=cache_workers, progress=False)
                for items in self.domains
            ]
        else:
            self.domains = [MonaiDataset(items, transform) for items in self.domains]
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
