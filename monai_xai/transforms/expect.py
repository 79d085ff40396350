"""Refuse images whose dimensionality or intensity range does not fit the model, naming the file."""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import torch
from monai.config import KeysCollection
from monai.transforms import MapTransform

from monai_xai.errors import InputError

__all__ = ["ExpectImaged"]


class ExpectImaged(MapTransform):
    """Check that channel-first images have ``spatial_dims`` spatial axes and values in ``value_range``.

    Without it a 3D volume given to a 2D configuration fails deep inside a resize or a convolution, and an
    image outside the range the classifier was trained on is explained silently wrong. Place the
    dimensionality check right after loading and the range check after intensity scaling.
    """

    def __init__(
        self,
        keys: KeysCollection = "image",
        spatial_dims: int | None = None,
        value_range: Sequence[float] | None = None,
        tolerance: float = 1e-3,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.spatial_dims, self.value_range, self.tolerance = spatial_dims, value_range, tolerance

    def __call__(self, data: Mapping[Hashable, Any]) -> Mapping[Hashable, Any]:
        for key in self.key_iterator(dict(data)):
            image = data[key]
            source = _source(data, image)
            if self.spatial_dims is not None and image.ndim - 1 != self.spatial_dims:
                raise InputError(
                    source,
                    f"{key!r} has {image.ndim - 1} spatial dimensions (channel-first shape"
                    f" {tuple(image.shape)}) but the configuration expects {self.spatial_dims}D images:"
                    f" set spatial_dims or use a {image.ndim - 1}D dataset config",
                )
            if self.value_range is not None:
                low, high = (float(v) for v in self.value_range)
                values = torch.as_tensor(image)
                vmin, vmax = float(values.min()), float(values.max())
                if vmin < low - self.tolerance or vmax > high + self.tolerance:
                    raise InputError(
                        source,
                        f"{key!r} values span [{vmin:g}, {vmax:g}], outside the expected [{low:g}, {high:g}]:"
                        " scale the images with the dataset's preset (or rescale them) first",
                    )
        return data


def _source(data: Mapping[Hashable, Any], image: Any) -> str | None:
    meta = getattr(image, "meta", None) or {}
    name = meta.get("filename_or_obj") or data.get("source")
    return None if name is None else str(name)
