"""One entry point that bundle configs call to get train/val/test datalists for a dataset."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from monai_xai.data.dedup import group_near_duplicates
from monai_xai.data.medmnist import medmnist_datalist
from monai_xai.data.splits import kfold_splits, limit_splits
from monai_xai.data.tabular import csv_datalist, folder_datalist

__all__ = ["dataset_splits", "select_labels"]

logger = logging.getLogger(__name__)


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
    dedup: bool | Mapping[str, Any] = False,
    **datalist_kwargs,
) -> dict:
    """``{"train", "val", "test", "n_folds", "excluded"}`` datalists of one dataset.

    ``source``: ``"csv"`` (a labels CSV; ``split_file="auto"`` uses a ``splits.json`` beside it
    when present, else a seeded stratified split), ``"folder"`` (class subfolders) or
    ``"medmnist"`` (an ``.npz``; its own train/val/test, ``fold`` ignored). Paths in a split file are
    relative to the dataset's folder (the CSV's folder, or the class folders' root). ``labels`` keeps
    and renumbers a subset of classes, e.g. ``[1, 2]`` for BUSI benign vs malignant. ``limit`` keeps
    a seeded random sample of at most that many items per split, for smoke runs.

    ``dedup`` draws the seeded split with near-duplicate images kept together like images of one
    patient: ``True``, or the arguments of :func:`~monai_xai.data.group_near_duplicates` (``method``,
    ``max_distance``, ``keep_conflicting``, ...). Near-duplicates with conflicting labels go to
    ``"excluded"`` (empty otherwise, or what a split file excludes). A split file fixes its parts
    already, so ``dedup`` ignores a ``splits.json`` found by ``"auto"`` and refuses an explicit one.
    """
    path = Path(path)
    if source == "medmnist":
        if dedup:
            raise ValueError("dedup does not apply to MedMNIST, whose train/val/test are fixed")
        parts = {split: medmnist_datalist(path, split) for split in ("train", "val", "test")}
        parts["n_folds"], parts["excluded"] = 1, []
    elif source in ("csv", "folder"):
        items = (
            csv_datalist(path, **datalist_kwargs)
            if source == "csv"
            else folder_datalist(path, **datalist_kwargs)
        )
        dataset_dir = path.parent if source == "csv" else path
        auto_file = dataset_dir / "splits.json"
        if dedup:
            if split_file not in ("auto", None):
                raise ValueError(f"dedup draws its own split: pass split_file=None instead of {split_file!r}")
            if split_file == "auto" and auto_file.is_file():
                logger.info("dedup: drawing a near-duplicate-aware split instead of reading %s", auto_file)
            found = group_near_duplicates(items, **({} if dedup is True else dict(dedup)))
            kept = found.kept
            parts = kfold_splits(
                [items[i] for i in kept], None, fold, seed, n_folds, groups=[found.ids[i] for i in kept]
            )
            parts["excluded"] = [items[i] for i in found.excluded]
        else:
            if split_file == "auto":
                split_file = auto_file if auto_file.is_file() else None
            split_path = Path(split_file) if split_file else None
            parts = kfold_splits(items, split_path, fold, seed, n_folds, base_dir=dataset_dir)
    else:
        raise ValueError(f"unknown dataset source {source!r}; expected 'csv', 'folder' or 'medmnist'")
    if labels is not None:
        for split in ("train", "val", "test", "excluded"):
            parts[split] = select_labels(parts[split], labels)
    return limit_splits(parts, limit, seed)
