"""One entry point that bundle configs call to get train/val/test datalists for a dataset."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from monai_xai.data.medmnist import medmnist_datalist
from monai_xai.data.splits import fold_datalists, read_split_file, stratified_kfold, train_val_test_split
from monai_xai.data.tabular import csv_datalist, folder_datalist
from monai_xai.errors import InputError

__all__ = ["dataset_splits", "select_labels"]


def select_labels(datalist: Sequence[dict], labels: Sequence[int]) -> list[dict]:
    """Keep items whose label is in ``labels`` and renumber them 0..len(labels)-1 in that order."""
    remap = {int(old): new for new, old in enumerate(labels)}
    return [{**item, "label": remap[int(item["label"])]} for item in datalist if int(item["label"]) in remap]


def _tabular_splits(items: list[dict], split_file: Path | None, fold: int, seed: int, n_folds: int) -> dict:
    if split_file is not None:
        spec = read_split_file(split_file, items)
        train_pool, test, folds = spec["train"], spec["test"], spec["folds"]
    else:
        train_pool, _, test = train_val_test_split(items, val_fraction=0.0, test_fraction=0.2, seed=seed)
        folds = stratified_kfold(train_pool, n_folds=n_folds, seed=seed)
    if not folds:
        raise InputError(split_file, "split file has no validation folds")
    train, val = fold_datalists(train_pool, folds, fold)
    return {"train": train, "val": val, "test": test, "n_folds": len(folds)}


def dataset_splits(
    source: str,
    path: str | os.PathLike,
    fold: int = 0,
    labels: Sequence[int] | None = None,
    split_file: str | os.PathLike | None = "auto",
    seed: int = 0,
    n_folds: int = 3,
    limit: int | None = None,
    **datalist_kwargs,
) -> dict:
    """``{"train", "val", "test", "n_folds"}`` datalists of one dataset.

    ``source``: ``"csv"`` (a labels CSV; ``split_file="auto"`` uses a ``splits.json`` beside it
    when present, else a seeded stratified split), ``"folder"`` (class subfolders) or
    ``"medmnist"`` (an ``.npz``; its own train/val/test, ``fold`` ignored). ``labels`` keeps and
    renumbers a subset of classes, e.g. ``[1, 2]`` for BUSI benign vs malignant. ``limit`` keeps
    a seeded random sample of at most that many items per split, for smoke runs.
    """
    path = Path(path)
    if source == "medmnist":
        parts = {split: medmnist_datalist(path, split) for split in ("train", "val", "test")}
        parts["n_folds"] = 1
    elif source in ("csv", "folder"):
        items = (
            csv_datalist(path, **datalist_kwargs)
            if source == "csv"
            else folder_datalist(path, **datalist_kwargs)
        )
        if split_file == "auto":
            candidate = (path.parent if source == "csv" else path) / "splits.json"
            split_file = candidate if candidate.is_file() else None
        split_path = Path(split_file) if split_file else None
        parts = _tabular_splits(items, split_path, fold, seed, n_folds)
    else:
        raise ValueError(f"unknown dataset source {source!r}; expected 'csv', 'folder' or 'medmnist'")
    if labels is not None:
        for split in ("train", "val", "test"):
            parts[split] = select_labels(parts[split], labels)
    if limit is not None:
        rng = np.random.default_rng(seed)
        for split in ("train", "val", "test"):
            if len(parts[split]) > limit:
                keep = sorted(rng.choice(len(parts[split]), size=limit, replace=False))
                parts[split] = [parts[split][i] for i in keep]
    return parts
