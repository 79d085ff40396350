"""One entry point that bundle configs call to get train/val/test datalists for a dataset."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from monai_xai.data.medmnist import medmnist_datalist
from monai_xai.data.splits import kfold_splits, limit_splits
from monai_xai.data.tabular import csv_datalist, folder_datalist

__all__ = ["dataset_splits", "select_labels"]


def select_labels(datalist: Sequence[dict], labels: Sequence[int]) -> list[dict]:
    """Keep items whose label is in ``labels`` and renumber them 0..len(labels)-1 in that order."""
    remap = {int(old): new for new, old in enumerate(labels)}
    return [{**item, "label": remap[int(item["label"])]} for item in datalist if int(item["label"]) in remap]


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
        parts = kfold_splits(items, split_path, fold, seed, n_folds)
    else:
        raise ValueError(f"unknown dataset source {source!r}; expected 'csv', 'folder' or 'medmnist'")
    if labels is not None:
        for split in ("train", "val", "test"):
            parts[split] = select_labels(parts[split], labels)
    return limit_splits(parts, limit, seed)
