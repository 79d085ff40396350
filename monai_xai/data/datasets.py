"""One entry point that bundle configs call to get train/val/test datalists for a dataset."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from monai.utils import look_up_option

from monai_xai.data.dedup import group_near_duplicates
from monai_xai.data.medmnist import medmnist_datalist
from monai_xai.data.splits import kfold_splits, limit_splits
from monai_xai.data.tabular import csv_datalist, folder_datalist
from monai_xai.errors import InputError

__all__ = ["DATASET_SOURCES", "dataset_splits", "select_labels"]

logger = logging.getLogger(__name__)

#: The dataset sources :func:`dataset_splits` reads (the bundles' ``dataset_source`` key).
DATASET_SOURCES = ("csv", "folder", "medmnist")


def select_labels(datalist: Sequence[dict], labels: Sequence[int]) -> list[dict]:
    """Keep items whose label is in ``labels`` and renumber them 0..len(labels)-1 in that order."""
    remap = {int(old): new for new, old in enumerate(labels)}
    return [{**item, "label": remap[int(item["label"])]} for item in datalist if int(item["label"]) in remap]


def dataset_splits(
    source: str,
    path: str | os.PathLike,
    fold: int = 0,
    labels: Sequence[int] | None = None,
    class_names: Sequence[str] | None = None,
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
    and renumbers a subset of classes by integer id, e.g. ``[1, 2]`` for BUSI benign vs malignant. ``limit``
    keeps a seeded random sample of at most that many items per split, for smoke runs.

    ``class_names`` name the classes of the result, as the reports will: label ``i`` is
    ``class_names[i]``. Without ``labels`` the readers map class names (a CSV's label cells, class
    subfolders) through them and check integer ids against them (MedMNIST too); with ``labels`` they name
    the kept classes, so there must be as many, and the dataset must store integer ids.

    ``dedup`` draws the seeded split with near-duplicate images kept together like images of one
    patient: ``True``, or the arguments of :func:`~monai_xai.data.group_near_duplicates` (``method``,
    ``max_distance``, ``keep_conflicting``, ...). Near-duplicates with conflicting labels go to
    ``"excluded"`` (empty otherwise, or what a split file excludes). A split file fixes its parts
    already, so ``dedup`` ignores a ``splits.json`` found by ``"auto"`` and refuses an explicit one.
    """
    path = Path(path)
    checked = look_up_option(source, DATASET_SOURCES, default=None)
    if checked is None:
        raise InputError(
            "dataset_source", f"unknown dataset source {source!r}; valid: {', '.join(DATASET_SOURCES)}"
        )
    source = checked
    if labels is not None and class_names is not None and len(labels) != len(class_names):
        raise InputError(
            None,
            f"labels {list(labels)} keeps {len(labels)} classes but class_names {list(class_names)} names "
            f"{len(class_names)}: give one name per kept class, in the order of labels",
        )
    # with `labels`, class_names name the kept classes, not the stored ones the readers see
    stored_names = class_names if labels is None else None
    if source == "medmnist":
        if dedup:
            raise ValueError("dedup does not apply to MedMNIST, whose train/val/test are fixed")
        num_classes = None if stored_names is None else len(stored_names)
        parts = {split: medmnist_datalist(path, split, num_classes) for split in ("train", "val", "test")}
        parts["n_folds"], parts["excluded"] = 1, []
    else:
        if source == "csv":
            items = csv_datalist(
                path, class_names=stored_names, allow_names=labels is None, **datalist_kwargs
            )
        elif labels is not None:
            raise InputError(
                path,
                "`labels` picks classes by integer id, but a folder dataset names its classes by subfolder: "
                "leave labels null and list the subfolders to keep in class_names",
            )
        else:
            items = folder_datalist(path, class_names=stored_names, **datalist_kwargs)
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
    if labels is not None:
        for split in ("train", "val", "test", "excluded"):
            parts[split] = select_labels(parts[split], labels)
    return limit_splits(parts, limit, seed)
