"""Where a dataset keeps its deterministic preprocessing: in memory when it fits a budget, else on disk.

MONAI's ``CacheDataset`` holds every item's transforms up to the first random one in memory, which is what
makes training fast, but grows with the dataset: 80,000 images of 224x224 with their masks take ~32 GB as
float32, more than a workstation has. :func:`cached_dataset` (what the bundle configs call in its place)
estimates that size from a few transformed items and chooses MONAI's ``CacheDataset`` when it fits
``cache_budget_gb``, else MONAI's ``PersistentDataset`` under ``cache_dir`` (one file per item, read back
by the loader's workers), and says which and why in one log line.

The disk cache's file names are SHA-256 digests of the datalist item (its paths, and those files' sizes
and modification times, so that a file edited in place is not served stale) followed by one of the
deterministic transforms' names: a datalist's file names never become paths. Images stay float32 on disk:
the presets scale each image by its own range and resize it with anti-aliasing, so the values are not
those of the 8-bit source, and uint8 storage would round them by up to 1/510.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from multiprocessing.pool import ThreadPool
from pathlib import Path
from typing import Any

import numpy as np
import torch
from monai.data import CacheDataset, Dataset, PersistentDataset
from monai.data.utils import json_hashing, pickle_hashing
from monai.transforms import Compose, RandomizableTrait, Transform
from monai.utils import look_up_option

from monai_xai.errors import InputError

__all__ = [
    "CACHE_MODES",
    "DEFAULT_CACHE_BUDGET_GB",
    "CacheChoice",
    "cached_dataset",
    "choose_cache",
    "estimate_item_bytes",
    "item_hash",
]

logger = logging.getLogger(__name__)

#: ``auto`` chooses by size; ``memory`` is MONAI's ``CacheDataset``, ``disk`` its ``PersistentDataset``,
#: ``none`` transforms every item on every read (MONAI's ``Dataset``)
CACHE_MODES = ("auto", "memory", "disk", "none")
#: The in-memory budget of one dataset: a sixth of a 24 GB workstation, so that the training and validation
#: caches, the training step's activations (several GB at 224 px, batch 32) and the loader's workers still
#: fit beside it. Fixed rather than read from the free memory: the same config chooses the same way on
#: every machine.
DEFAULT_CACHE_BUDGET_GB = 4.0
#: items transformed to estimate an item's cached size (the largest counts)
PROBE_ITEMS = 3
_GB = 1e9


@dataclass(frozen=True)
class CacheChoice:
    """What :func:`choose_cache` decided for one dataset.

    Args:
        mode: ``"memory"``, ``"disk"`` or ``"none"``.
        n_items: the dataset's items.
        item_bytes: the estimated cached size of one item (None where nothing was estimated).
        budget_bytes: the in-memory budget it was held against.
        reason: why, for the log line.
    """

    mode: str
    n_items: int
    item_bytes: int | None
    budget_bytes: int
    reason: str

    @property
    def total_bytes(self) -> int | None:
        """The estimated size of the whole cache."""
        return None if self.item_bytes is None else self.item_bytes * self.n_items

    def describe(self, name: str) -> str:
        size = "" if self.total_bytes is None else f", ~{self.total_bytes / _GB:.2f} GB cached"
        return f"cache {name}: {self.mode} ({self.n_items} items{size}; {self.reason})"


def _nbytes(value: Any) -> int:
    """Bytes of the tensors and arrays in ``value``, through mappings and sequences."""
    if isinstance(value, torch.Tensor):
        return value.element_size() * value.numel()
    if isinstance(value, np.ndarray):
        return int(value.nbytes)
    if isinstance(value, Mapping):
        return sum(_nbytes(v) for v in value.values())
    if isinstance(value, list | tuple):
        return sum(_nbytes(v) for v in value)
    return 0


def _as_compose(transform: Callable | Sequence[Callable]) -> Compose:
    if isinstance(transform, Compose):
        return transform
    return Compose(list(transform) if isinstance(transform, Sequence) else [transform])


class _ScalarTensors(Transform):
    """NumPy scalars (a mask flag) as 0-d tensors of their dtype: ``PersistentDataset`` reads its files with
    ``torch.load(weights_only=True)``, which refuses NumPy scalars, and would transform such an item again
    on every read. Collated, both give the same tensor."""

    def __call__(self, data: Any) -> Any:
        if isinstance(data, np.generic):
            return torch.as_tensor(data)
        if isinstance(data, Mapping):
            return {k: self(v) for k, v in data.items()}
        if isinstance(data, list):
            return [self(v) for v in data]
        return tuple(self(v) for v in data) if isinstance(data, tuple) else data


def _first_random(transform: Compose) -> int | None:
    """Where MONAI's caching datasets stop: the first random transform, or one that is not a MONAI one."""
    return transform.get_index_of_first(
        lambda t: isinstance(t, RandomizableTrait) or not isinstance(t, Transform)
    )


def estimate_item_bytes(
    data: Sequence, transform: Callable | Sequence[Callable], n_probe: int = PROBE_ITEMS
) -> int:
    """The cached size of one item: the largest of ``n_probe`` items spread over ``data``, transformed up to
    the first random transform (what MONAI's caching datasets keep).

    Args:
        data: the datalist (at least one item).
        transform: the dataset's transforms.
        n_probe: how many items to transform.
    """
    compose = _as_compose(transform)
    end = _first_random(compose)
    picks = sorted({round(i) for i in np.linspace(0, len(data) - 1, min(n_probe, len(data)))})
    return max(
        _nbytes(compose(dict(data[i]) if isinstance(data[i], Mapping) else data[i], end=end)) for i in picks
    )


def choose_cache(
    data: Sequence,
    transform: Callable | Sequence[Callable],
    cache: str = "auto",
    cache_budget_gb: float = DEFAULT_CACHE_BUDGET_GB,
    cache_dir: str | os.PathLike | None = None,
) -> CacheChoice:
    """Memory when the estimated cache fits ``cache_budget_gb``; else disk where ``cache_dir`` is given, else
    no cache. An explicit ``cache`` mode is kept (``disk`` needs ``cache_dir``).

    Args:
        data: the datalist.
        transform: the dataset's transforms.
        cache: one of :data:`CACHE_MODES`.
        cache_budget_gb: the in-memory budget of this dataset, in GB (1e9 bytes).
        cache_dir: the folder of a disk cache.
    """
    mode = look_up_option(cache, CACHE_MODES)
    budget_gb = float(cache_budget_gb)
    if not budget_gb >= 0:
        raise InputError("cache_budget_gb", f"must be a number of GB >= 0, got {cache_budget_gb!r}")
    if mode == "disk" and cache_dir is None:
        raise InputError("cache_dir", "cache 'disk' needs a cache_dir (the folder of the cached items)")
    budget = int(budget_gb * _GB)
    if mode != "auto":
        return CacheChoice(mode, len(data), None, budget, f"cache {mode!r} as set")
    if not data:
        return CacheChoice("memory", 0, 0, budget, "empty")
    item_bytes = estimate_item_bytes(data, transform)
    total, limit = item_bytes * len(data) / _GB, f"budget {budget_gb:g} GB"
    if item_bytes * len(data) <= budget:
        return CacheChoice("memory", len(data), item_bytes, budget, f"fits the {limit}")
    if cache_dir is not None:
        return CacheChoice("disk", len(data), item_bytes, budget, f"{total:.2f} GB exceeds the {limit}")
    reason = f"{total:.2f} GB exceeds the {limit} and no cache_dir is set: every read transforms again"
    return CacheChoice("none", len(data), item_bytes, budget, reason)


def item_hash(item: Any) -> bytes:
    """The disk cache's key of a datalist item: SHA-256 of the item and of the size and modification time
    of each file it names, so that a file changed in place is transformed again.

    Args:
        item: a datalist item (a mapping of paths and values, or a path).
    """
    values = item.values() if isinstance(item, Mapping) else [item]
    stats = [
        (os.stat(v).st_size, os.stat(v).st_mtime_ns)
        for v in values
        if isinstance(v, str | os.PathLike) and os.path.isfile(v)
    ]
    return pickle_hashing({"item": item, "files": stats})


def _fill(dataset: PersistentDataset, num_workers: int | None) -> float:
    """Write every item's cache file now (threads, like MONAI's ``CacheDataset``), so that training starts
    from a full cache and a bad item fails before the first step; returns the seconds it took."""

    def write(item: Any) -> None:
        dataset._cachecheck(item)  # MONAI's read-or-write of one item's file

    start = time.perf_counter()
    with ThreadPool(max(1, num_workers or 1)) as pool:
        for _ in pool.imap_unordered(write, dataset.data):
            pass
    return time.perf_counter() - start


def cached_dataset(
    data: Sequence,
    transform: Callable | Sequence[Callable],
    cache: str = "auto",
    cache_budget_gb: float = DEFAULT_CACHE_BUDGET_GB,
    cache_dir: str | os.PathLike | None = None,
    num_workers: int | None = 1,
    progress: bool = True,
    name: str = "dataset",
) -> Dataset:
    """A MONAI dataset that caches ``transform`` up to its first random transform where :func:`choose_cache`
    says: ``CacheDataset``, ``PersistentDataset`` (filled before it is returned) or plain ``Dataset``.

    The choice is logged and kept as the dataset's ``cache_choice``.

    Args:
        data: the datalist.
        transform: the dataset's transforms.
        cache: one of :data:`CACHE_MODES`.
        cache_budget_gb: the in-memory budget of this dataset, in GB (1e9 bytes).
        cache_dir: the folder of a disk cache (created); a path the config builds, never the datalist.
        num_workers: threads that fill the cache.
        progress: show ``CacheDataset``'s progress bar.
        name: the dataset's name in the log line (``train``, ``val``).
    """
    choice = choose_cache(data, transform, cache, cache_budget_gb, cache_dir)
    compose = _as_compose(transform)
    if choice.mode == "memory":
        dataset = CacheDataset(data, compose, num_workers=num_workers, progress=progress)
    elif choice.mode == "disk":
        folder = Path(cache_dir)
        folder.mkdir(parents=True, exist_ok=True)
        free = shutil.disk_usage(folder).free
        if choice.total_bytes is not None and choice.total_bytes > free:
            raise InputError(
                folder,
                f"the disk cache of {name} needs ~{choice.total_bytes / _GB:.1f} GB, {free / _GB:.1f} GB are "
                "free: set cache_dir to a larger disk, or cache 'none'",
            )
        end = _first_random(compose)
        end = len(compose.transforms) if end is None else end
        stored = Compose(
            [*compose.transforms[:end], _ScalarTensors(), *compose.transforms[end:]],
            map_items=compose.map_items,
            unpack_items=compose.unpack_items,
            lazy=compose.lazy,
        )
        dataset = PersistentDataset(
            data, stored, cache_dir=folder, hash_func=item_hash, hash_transform=json_hashing
        )
        seconds = _fill(dataset, num_workers)
        choice = replace(choice, reason=f"{choice.reason}; filled {folder} in {seconds:.1f} s")
    else:
        dataset = Dataset(data, compose)
    dataset.cache_choice = choice
    logger.info(choice.describe(name))
    return dataset
