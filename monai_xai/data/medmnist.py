"""MedMNIST ``.npz`` files served as MONAI datalists straight from memory.

The arrays stay in one in-memory block per split; each datalist item holds a view of its image,
so a split of thousands of images is never unpacked into files.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np
from monai.utils import look_up_option

from monai_xai.errors import InputError

__all__ = ["MEDMNIST_SPLITS", "medmnist_datalist"]

MEDMNIST_SPLITS = ("train", "val", "test")


def _channel_first(images: np.ndarray, path: Path) -> np.ndarray:
    """(N, H, W[, D]) gray or (N, H, W, 3) RGB -> (N, C, ...) views, without copying."""
    if images.ndim == 3:  # 2D gray
        return images[:, None]
    if images.ndim == 4 and images.shape[-1] == 3:  # 2D RGB
        return np.moveaxis(images, -1, 1)
    if images.ndim == 4:  # 3D gray
        return images[:, None]
    if images.ndim == 5 and images.shape[-1] in (1, 3):  # 3D with trailing channels
        return np.moveaxis(images, -1, 1)
    raise InputError(path, f"unexpected image array shape {images.shape} for a MedMNIST file")


def medmnist_datalist(
    path: str | os.PathLike, split: str = "train", num_classes: int | None = None
) -> list[dict]:
    """Items ``{"image": (C, H, W[, D]) uint8 array, "label": int, "source": "<file>:<split>[<i>]"}``.

    Works for the 2D and 3D MedMNIST files (gray or RGB); multi-label files are refused because
    every bundle here is single-label. Given ``num_classes`` (the configuration's class names), a label
    outside ``[0, num_classes)`` is an error naming the file: the names would not fit the labels.
    """
    path = Path(path)
    checked = look_up_option(split, MEDMNIST_SPLITS, default=None)
    if checked is None:
        raise InputError(path, f"unknown split {split!r}; expected one of {', '.join(MEDMNIST_SPLITS)}")
    split = checked
    if not path.is_file():
        raise InputError(path, "MedMNIST file not found")
    try:
        with np.load(path) as npz:
            keys = set(npz.files)
            if f"{split}_images" not in keys or f"{split}_labels" not in keys:
                raise InputError(path, f"no '{split}_images'/'{split}_labels' arrays (found {sorted(keys)})")
            images = npz[f"{split}_images"]
            labels = npz[f"{split}_labels"]
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as err:
        if isinstance(err, InputError):
            raise
        raise InputError(path, f"cannot read as a .npz archive ({err})") from err
    if labels.ndim == 2 and labels.shape[1] > 1:
        raise InputError(path, f"multi-label targets (shape {labels.shape}) are not supported")
    labels = labels.reshape(-1)
    if len(labels) != len(images):
        raise InputError(path, f"{len(images)} images but {len(labels)} labels in split {split!r}")
    if num_classes is not None:
        bad = np.flatnonzero((labels < 0) | (labels >= num_classes))
        if bad.size:
            raise InputError(
                path,
                f"{split}_labels[{bad[0]}] is {labels[bad[0]]}, not a class index in [0, {num_classes}) "
                f"({bad.size} such labels): the class names do not fit this file",
            )
    images = _channel_first(images, path)
    name = path.name
    return [
        {"image": images[i], "label": int(labels[i]), "source": f"{name}:{split}[{i}]"}
        for i in range(len(images))
    ]
