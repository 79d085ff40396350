"""Perceptual hashing to find near-duplicate images, and the groups a split must keep together.

Public medical collections often hold the same image twice (re-exports, crops, brightness changes);
a copy on each side of a train/test split inflates test scores and lets a model be rewarded for
memorising. Only numpy and Pillow are used, so this runs wherever the data loaders run.
"""

from __future__ import annotations

import logging
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from os import PathLike
from typing import Any

import numpy as np
from monai.utils import look_up_option, optional_import
from numpy.typing import ArrayLike
from PIL import Image

from monai_xai.errors import InputError

__all__ = [
    "SplitGroups",
    "dhash",
    "drop_near_duplicates",
    "find_near_duplicates",
    "group_near_duplicates",
    "hamming_distance",
    "phash",
]

logger = logging.getLogger(__name__)

tqdm, has_tqdm = optional_import("tqdm", name="tqdm")

# A path Pillow can open, or a 2D array-like (numpy, torch); a leading axis of size 1 to 4, else the last
# axis, of a 3D array is taken as channels and averaged.
ImageSource = str | PathLike | ArrayLike

# Lists at least this long get a progress bar when ``progress`` is left to decide.
_PROGRESS_MIN_ITEMS = 100
# Rows of the pairwise distance matrix computed at once, to bound memory on large data sets.
_BLOCK_ROWS = 1024


def _to_gray(image: ImageSource) -> np.ndarray:
    """Load or convert to a float32 2D array."""
    if isinstance(image, str | PathLike):
        try:
            with Image.open(image) as pil:
                return np.asarray(pil.convert("F"), dtype=np.float32)
        except OSError as err:  # missing, unreadable or not an image Pillow knows
            raise InputError(image, f"cannot be read as an image ({err})") from err
    arr = np.asarray(image.detach().cpu() if hasattr(image, "detach") else image, dtype=np.float32)
    if arr.ndim == 3:
        channel_axis = 0 if arr.shape[0] <= 4 else -1
        arr = arr.mean(axis=channel_axis)
    if arr.ndim != 2:
        raise ValueError(f"expected a 2D image or one with a channel axis, got shape {arr.shape}.")
    return arr


def _resize(gray: np.ndarray, width: int, height: int) -> np.ndarray:
    """Box-filtered resize: averages whole areas, so noise and small shifts barely move the result."""
    return np.asarray(Image.fromarray(gray).resize((width, height), Image.Resampling.BOX))


def dhash(image: ImageSource, hash_size: int = 8) -> np.ndarray:
    """Difference hash: is each pixel of a (hash_size, hash_size + 1) thumbnail darker than its right one.

    Invariant to brightness offsets and contrast gains; returns ``hash_size**2`` booleans.
    """
    small = _resize(_to_gray(image), hash_size + 1, hash_size)
    return (small[:, 1:] > small[:, :-1]).ravel()


def _dct_matrix(n: int) -> np.ndarray:
    """Orthonormal DCT-II basis: ``m @ x`` transforms the columns of ``x``. Small sizes make numpy enough."""
    k = np.arange(n)[:, None]
    m = np.cos(np.pi * (2 * np.arange(n)[None, :] + 1) * k / (2 * n)) * np.sqrt(2.0 / n)
    m[0] /= np.sqrt(2.0)
    return m


def phash(image: ImageSource, hash_size: int = 8, highfreq_factor: int = 4) -> np.ndarray:
    """DCT hash: whether each of the lowest ``hash_size**2`` frequencies of a thumbnail exceeds their median.

    Low frequencies describe the layout of the image and survive noise, compression and resizing; the
    DC term is excluded from the median so that a brightness offset changes no bit.
    """
    n = hash_size * highfreq_factor
    m = _dct_matrix(n)
    coeffs = (m @ _resize(_to_gray(image), n, n).astype(np.float64) @ m.T)[:hash_size, :hash_size].ravel()
    return coeffs > np.median(coeffs[1:])


def hamming_distance(a: np.ndarray, b: np.ndarray) -> int:
    """Number of differing bits between two hashes."""
    return int(np.count_nonzero(np.asarray(a) != np.asarray(b)))


_HASHES = {"dhash": dhash, "phash": phash}


def _progress(items: Sequence[Any], progress: bool | None, desc: str) -> Any:
    show = len(items) >= _PROGRESS_MIN_ITEMS if progress is None else progress
    return tqdm(items, desc=desc, disable=None) if show and has_tqdm else items


def _describe(value: Any) -> str:
    """A path as text; an array as its type name."""
    return str(value) if isinstance(value, str | PathLike) else type(value).__name__


def _find(parent: list[int], i: int) -> int:
    while parent[i] != i:
        parent[i] = parent[parent[i]]
        i = parent[i]
    return i


def find_near_duplicates(
    images: Sequence[ImageSource],
    max_distance: int = 6,
    method: str = "phash",
    hash_size: int = 8,
    progress: bool | None = None,
) -> list[list[int]]:
    """Group images whose hashes differ by at most ``max_distance`` bits, transitively (union-find).

    Args:
        images: paths or 2D arrays.
        max_distance: largest Hamming distance between two members of a pair (out of ``hash_size**2`` bits).
        method: ``"phash"`` (robust to noise and brightness) or ``"dhash"`` (cheaper, gradient-based).
        hash_size: side of the hash; 8 gives 64-bit hashes.
        progress: show a tqdm bar while hashing (on a terminal only); ``None`` shows it for lists of
            100 items or more.

    Returns:
        Groups of two or more indices, each sorted, ordered by their first index; singletons are left out.
    """
    hash_fn = look_up_option(method, _HASHES, default=None)
    if hash_fn is None:
        raise ValueError(f"unknown hash method {method!r}; valid methods: {', '.join(sorted(_HASHES))}.")
    if len(images) < 2:
        return []
    bits = np.stack([hash_fn(img, hash_size=hash_size) for img in _progress(images, progress, method)])
    bits = bits.astype(np.float32)
    counts = bits.sum(1)
    parent = list(range(len(images)))
    for start in range(0, len(images), _BLOCK_ROWS):
        block = bits[start : start + _BLOCK_ROWS]
        # |a xor b| = |a| + |b| - 2 a.b for 0/1 vectors.
        dist = counts[start : start + _BLOCK_ROWS, None] + counts[None, :] - 2.0 * block @ bits.T
        upper = np.arange(len(images))[None, :] > np.arange(start, start + len(block))[:, None]
        for i, j in zip(*np.nonzero((np.round(dist) <= max_distance) & upper)):
            parent[_find(parent, int(j))] = _find(parent, int(i) + start)
    groups: dict[int, list[int]] = {}
    for i in range(len(images)):
        groups.setdefault(_find(parent, i), []).append(i)
    return sorted((g for g in groups.values() if len(g) > 1), key=lambda g: g[0])


def drop_near_duplicates(
    datalist: Sequence[Mapping[Hashable, Any]],
    key: str = "image",
    max_distance: int = 6,
    method: str = "phash",
    hash_size: int = 8,
    progress: bool | None = None,
) -> tuple[list[Mapping[Hashable, Any]], list[dict[str, Any]]]:
    """Keep the first item of every near-duplicate group of a MONAI datalist, judged on ``item[key]``.

    Returns:
        The kept items in their original order, and one report per group:
        ``{"kept": index, "dropped": [indices], "sources": [item[key] as str for each member]}``
        (``sources`` names paths; arrays appear as their type name).
    """
    groups = find_near_duplicates(
        [item[key] for item in datalist], max_distance, method, hash_size, progress=progress
    )
    dropped = {i for g in groups for i in g[1:]}
    kept = [item for i, item in enumerate(datalist) if i not in dropped]
    report = [
        {"kept": g[0], "dropped": g[1:], "sources": [_describe(datalist[i][key]) for i in g]} for g in groups
    ]
    return kept, report


@dataclass(frozen=True)
class SplitGroups:
    """How a datalist must be grouped so that no near-duplicate or patient straddles a split.

    Attributes:
        ids: one group id per item; items sharing an id must land on the same side of every split.
        duplicates: the near-duplicate groups (indices into the datalist, as :func:`find_near_duplicates`).
        conflicting: the near-duplicate groups whose members carry different labels.
        excluded: indices to leave out of every split: the members of conflicting groups, unless kept.
    """

    ids: list[int]
    duplicates: list[list[int]]
    conflicting: list[list[int]]
    excluded: list[int]

    @property
    def kept(self) -> list[int]:
        """Indices of the items a split draws from, in datalist order."""
        excluded = set(self.excluded)
        return [i for i in range(len(self.ids)) if i not in excluded]


def group_near_duplicates(
    datalist: Sequence[Mapping[Hashable, Any]],
    key: str = "image",
    label_key: str = "label",
    patient_key: str = "patient",
    method: str = "dhash",
    max_distance: int = 5,
    hash_size: int = 8,
    keep_conflicting: bool = False,
    progress: bool | None = None,
) -> SplitGroups:
    """Group ids that treat near-duplicate images like images of one patient, for grouped splits.

    Two items share a group when their ``item[key]`` hashes are within ``max_distance`` bits (transitively),
    or when they share ``item[patient_key]``, or through any chain of both. Near-duplicates carrying
    different ``item[label_key]`` are the same image labelled twice, so one of the labels is wrong: such
    groups are logged with their sources and excluded unless ``keep_conflicting``. A patient with several
    labels is not a conflict (different images of one person may differ).
    """
    duplicates = find_near_duplicates(
        [item[key] for item in datalist], max_distance, method, hash_size, progress=progress
    )
    parent = list(range(len(datalist)))
    for group in duplicates:
        for i in group[1:]:
            parent[_find(parent, i)] = _find(parent, group[0])
    first_of_patient: dict[Any, int] = {}
    for i, item in enumerate(datalist):
        if patient_key in item:
            parent[_find(parent, i)] = _find(parent, first_of_patient.setdefault(item[patient_key], i))
    number: dict[int, int] = {}
    ids = [number.setdefault(_find(parent, i), len(number)) for i in range(len(datalist))]
    conflicting = [g for g in duplicates if len({datalist[i][label_key] for i in g}) > 1]
    for group in conflicting:
        logger.warning(
            "near-duplicate images with different labels (%s): %s",
            "kept" if keep_conflicting else "excluded",
            ", ".join(f"{_describe(datalist[i][key])} ({label_key} {datalist[i][label_key]})" for i in group),
        )
    excluded = [] if keep_conflicting else sorted(i for g in conflicting for i in g)
    logger.info(
        "%d near-duplicate groups (%s, <= %d bits) among %d items, %d with conflicting labels; %d excluded",
        len(duplicates),
        method,
        max_distance,
        len(datalist),
        len(conflicting),
        len(excluded),
    )
    return SplitGroups(ids, duplicates, conflicting, excluded)
