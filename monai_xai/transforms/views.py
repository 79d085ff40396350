"""Two random views of one image for self-supervised pretraining (SimSiam)."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any

from monai.transforms import (
    Compose,
    MapTransform,
    RandAdjustContrastd,
    RandFlipd,
    RandGaussianNoised,
    RandGaussianSmoothd,
    RandomizableTrait,
    RandScaleIntensityd,
    RandShiftIntensityd,
    RandSpatialCropd,
    Resized,
)

__all__ = ["TwoViewsd", "simsiam_augmentations"]


class TwoViewsd(MapTransform, RandomizableTrait):
    """Apply ``transform`` twice, independently, to ``data[key]``; views go to ``key`` and ``second_key``.

    Random (``RandomizableTrait``), so that a ``CacheDataset`` caches what comes before it, never its views.
    """

    def __init__(self, transform: Callable, key: str = "image", second_key: str = "image_2") -> None:
        super().__init__([key])
        self.transform, self.key, self.second_key = transform, key, second_key

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        image = d[self.key]
        d[self.second_key] = self.transform({self.key: image})[self.key]
        d[self.key] = self.transform({self.key: image})[self.key]
        return d


def simsiam_augmentations(spatial_size: Sequence[int], key: str = "image", min_scale: float = 0.4) -> Compose:
    """SimSiam's augmentations adapted to grey ultrasound: random resized crop, flip, contrast, blur, noise.

    Colour jitter and grey conversion have no meaning on one channel; gamma, gain and offset take their
    place. Crops cover ``min_scale`` to all of each side, then are resized back to ``spatial_size``.
    """
    size = tuple(int(s) for s in spatial_size)
    return Compose([
        RandSpatialCropd(keys=key, roi_size=tuple(max(1, int(min_scale * s)) for s in size),
                         random_size=True),
        Resized(keys=key, spatial_size=size, mode="bilinear", anti_aliasing=True),
        RandFlipd(keys=key, prob=0.5, spatial_axis=1),
        RandAdjustContrastd(keys=key, prob=0.8, gamma=(0.6, 1.6)),
        RandScaleIntensityd(keys=key, factors=0.3, prob=0.8),
        RandShiftIntensityd(keys=key, offsets=0.1, prob=0.8),
        RandGaussianSmoothd(keys=key, prob=0.5, sigma_x=(0.1, 1.5), sigma_y=(0.1, 1.5)),
        RandGaussianNoised(keys=key, prob=0.3, std=0.03),
    ])  # fmt: skip
