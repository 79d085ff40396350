"""The cache policy: memory within the budget, disk (hashed names, filled up front) above it, and why."""

from __future__ import annotations

import logging
import os
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from monai.data import CacheDataset, Dataset, PersistentDataset, list_data_collate
from monai.transforms import Compose, RandFlipd, Transform

from monai_xai.data import UnpairedDataset, cached_dataset, choose_cache, item_hash
from monai_xai.errors import InputError

SIDE = 8
ITEM_BYTES = SIDE * SIDE * 4  # one float32 image; the label is no tensor


class _Load(Transform):
    """Reads the item's ``.npy`` image: deterministic, so the caches keep what it returns."""

    def __call__(self, item: dict) -> dict:
        return {**item, "image": np.load(item["image"])}


def _transform() -> Compose:
    return Compose([_Load(), RandFlipd(keys="image", prob=1.0, spatial_axis=1)])


def _items(folder: Path, n: int = 5) -> list[dict]:
    folder.mkdir(parents=True, exist_ok=True)
    items = []
    for i in range(n):
        path = folder / f"patient_{i}.npy"
        np.save(path, np.arange(SIDE * SIDE, dtype=np.float32).reshape(1, SIDE, SIDE) + i)
        # a NumPy scalar, as EnsureMaskd's has_mask: torch.load(weights_only=True) refuses it
        items.append({"image": str(path), "label": i % 2, "flag": np.int64(i)})
    return items


def test_auto_keeps_a_dataset_within_the_budget_in_memory_and_says_why(tmp_path, caplog) -> None:
    items = _items(tmp_path / "data")
    with caplog.at_level(logging.INFO, logger="monai_xai.data.cache"):
        dataset = cached_dataset(items, _transform(), cache_dir=tmp_path / "cache", name="train")
    assert isinstance(dataset, CacheDataset)
    choice = dataset.cache_choice
    assert (choice.mode, choice.item_bytes, choice.total_bytes) == ("memory", ITEM_BYTES, 5 * ITEM_BYTES)
    assert "cache train: memory (5 items" in caplog.text and "fits the budget 4 GB" in caplog.text
    assert not (tmp_path / "cache").exists()  # nothing written for an in-memory cache
    flipped = np.flip(np.load(items[2]["image"]), axis=2)
    assert np.array_equal(np.asarray(dataset[2]["image"]), flipped)


def test_auto_above_the_budget_fills_a_disk_cache_named_by_digests(tmp_path, caplog) -> None:
    items = _items(tmp_path / "data")
    budget = 4.5 * ITEM_BYTES / 1e9  # four items fit, five do not
    assert choose_cache(items[:4], _transform(), cache_budget_gb=budget, cache_dir=tmp_path).mode == "memory"
    with caplog.at_level(logging.INFO, logger="monai_xai.data.cache"):
        dataset = cached_dataset(items, _transform(), cache_budget_gb=budget, cache_dir=tmp_path / "cache")
    assert isinstance(dataset, PersistentDataset) and dataset.cache_choice.mode == "disk"
    assert "exceeds the budget" in caplog.text and "filled" in caplog.text
    files = sorted((tmp_path / "cache").iterdir())
    assert len(files) == 5  # filled before the first read
    assert all(re.fullmatch(r"[0-9a-f]{128}\.pt", f.name) for f in files)  # never the datalist's names
    written = {f.name: f.stat().st_mtime_ns for f in files}
    memory = cached_dataset(items, _transform(), cache="memory")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # MONAI warns of a file it cannot read back ("Corrupt cache file")
        read = [dataset[i] for i in range(5)]
    assert {
        f.name: f.stat().st_mtime_ns for f in (tmp_path / "cache").iterdir()
    } == written  # read, not redone
    assert all(np.array_equal(np.asarray(read[i]["image"]), np.asarray(memory[i]["image"])) for i in range(5))
    flags = list_data_collate(read)["flag"], list_data_collate([memory[i] for i in range(5)])["flag"]
    assert flags[0].dtype == flags[1].dtype == torch.int64 and flags[0].tolist() == flags[1].tolist() == [
        0,
        1,
        2,
        3,
        4,
    ]


def test_above_the_budget_without_a_folder_transforms_every_read(tmp_path) -> None:
    items = _items(tmp_path / "data")
    dataset = cached_dataset(items, _transform(), cache_budget_gb=0)
    assert type(dataset) is Dataset and dataset.cache_choice.mode == "none"
    assert "no cache_dir" in dataset.cache_choice.reason


def test_modes_are_checked_and_kept_as_set(tmp_path) -> None:
    items = _items(tmp_path / "data", n=2)
    assert type(cached_dataset(items, _transform(), cache="none")) is Dataset
    assert isinstance(
        cached_dataset(items, _transform(), cache="disk", cache_dir=tmp_path / "c"), PersistentDataset
    )
    with pytest.raises(InputError, match="cache_dir: cache 'disk' needs a cache_dir"):
        choose_cache(items, _transform(), cache="disk")
    with pytest.raises(ValueError, match="auto"):  # look_up_option lists the modes
        choose_cache(items, _transform(), cache="ssd")
    with pytest.raises(InputError, match="cache_budget_gb"):
        choose_cache(items, _transform(), cache_budget_gb=-1)


def test_a_disk_cache_larger_than_the_free_space_is_refused(tmp_path, monkeypatch) -> None:
    items = _items(tmp_path / "data")

    class _Usage:
        free = ITEM_BYTES

    monkeypatch.setattr("monai_xai.data.cache.shutil.disk_usage", lambda _: _Usage)
    with pytest.raises(InputError, match="needs ~0.0 GB, 0.0 GB are free"):
        cached_dataset(items, _transform(), cache_budget_gb=0, cache_dir=tmp_path / "cache")


def test_a_file_changed_in_place_gets_another_cache_key(tmp_path) -> None:
    item = _items(tmp_path / "data", n=1)[0]
    before = item_hash(item)
    assert item_hash(dict(item)) == before
    np.save(item["image"], np.zeros((1, SIDE, SIDE), np.float32))
    os.utime(item["image"], ns=(1, 1))
    assert item_hash(item) != before


def test_unpaired_domains_cache_apart_on_disk(tmp_path) -> None:
    items = _items(tmp_path / "data", n=6)
    dataset = UnpairedDataset(items, _transform(), cache="disk", cache_dir=tmp_path / "cache")
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == ["domain_0", "domain_1"]
    assert len(list((tmp_path / "cache" / "domain_1").iterdir())) == 3
    pair = dataset[0]
    assert pair["x"].shape == pair["y"].shape == (1, SIDE, SIDE)
