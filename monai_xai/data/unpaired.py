"""Unpaired two-class datasets for image-to-image translation between the classes (CycleGAN)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from monai.transforms import Randomizable
from torch.utils.data import Dataset

from monai_xai.errors import InputError

__all__ = ["UnpairedDataset"]


class UnpairedDataset(Dataset, Randomizable):
    """Items ``{"x": image of class 0, "y": image of class 1}``, paired at random.

    An epoch walks the larger class once and draws the smaller one with replacement, so both domains are
    seen equally often. ``transform`` maps one datalist item to a dict holding ``image_key``.
    MONAI's ``DataLoader`` reseeds the pairing per worker (it is ``Randomizable``).
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
    ) -> None:
        self.domains = [[item for item in data if int(item[label_key]) == c] for c in classes]
        empty = [c for c, items in zip(classes, self.domains) if not items]
        if empty:
            found = sorted({int(item[label_key]) for item in data})
            raise InputError(
                source, f"no items of class {empty} to translate between (classes present: {found})"
            )
        self.transform, self.image_key = transform, image_key
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
        x, y = (self.transform(dict(domain[i])) for domain, i in zip(self.domains, picks))
        return {"x": x[self.image_key], "y": y[self.image_key]}
