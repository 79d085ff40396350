"""Deterministic splits: stratified k-fold and train/val/test, grouped by patient, or read from a file.

When items carry a ``patient`` key, all images of one patient land on the same side of every
split, so that patient-level leakage cannot inflate validation figures. Any other grouping (e.g.
near-duplicate images, :func:`monai_xai.data.group_near_duplicates`) can be given as group ids.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from collections.abc import Hashable, Sequence
from pathlib import Path

import numpy as np

from monai_xai.errors import InputError

__all__ = [
    "stratified_kfold",
    "train_val_test_split",
    "read_split_file",
    "read_split_spec",
    "fold_datalists",
    "kfold_splits",
    "limit_splits",
    "split_indices",
]


def _groups(datalist: Sequence[dict], label_key: str, group_key: str) -> tuple[list[list[int]], list[int]]:
    """Item indices per group (a patient, or the item alone) and each group's label."""
    ids = [item.get(group_key, ("item", i)) for i, item in enumerate(datalist)]
    return _grouped([int(item[label_key]) for item in datalist], ids)


def _grouped(labels: Sequence[int], ids: Sequence[Hashable]) -> tuple[list[list[int]], list[int]]:
    """Item indices per group id, in order of first appearance, and each group's label."""
    members: dict[Hashable, list[int]] = defaultdict(list)
    for i, group in enumerate(ids):
        members[group].append(i)
    groups = list(members.values())
    # a patient with mixed labels is stratified by its most severe (largest) label
    return groups, [max(labels[i] for i in idx) for idx in groups]


def _assign_groups(
    groups: list[list[int]], labels: list[int], shares: Sequence[float], seed: int
) -> list[list[int]]:
    """Deal groups into bins class by class so every bin gets its share of each class."""
    rng = np.random.default_rng(seed)
    bins: list[list[int]] = [[] for _ in shares]
    shares = np.asarray(shares, dtype=float) / np.sum(shares)
    for cls in sorted(set(labels)):
        members = [g for g, lab in zip(groups, labels) if lab == cls]
        order = rng.permutation(len(members))
        filled = np.zeros(len(shares))
        total = sum(len(g) for g in members)
        for j in order:
            # the bin furthest below its target share receives the next group
            deficit = shares * max(total, 1) - filled
            b = int(np.argmax(deficit))
            bins[b].extend(members[j])
            filled[b] += len(members[j])
    return [sorted(b) for b in bins]


def stratified_kfold(
    datalist: Sequence[dict],
    n_folds: int = 3,
    seed: int = 0,
    label_key: str = "label",
    group_key: str = "patient",
) -> list[list[int]]:
    """Indices of each fold's validation part; folds are disjoint and cover the datalist."""
    if n_folds < 2:
        raise ValueError(f"n_folds must be at least 2, got {n_folds}")
    groups, labels = _groups(datalist, label_key, group_key)
    return _assign_groups(groups, labels, [1.0] * n_folds, seed)


def train_val_test_split(
    datalist: Sequence[dict],
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    seed: int = 0,
    label_key: str = "label",
    group_key: str = "patient",
) -> tuple[list[dict], list[dict], list[dict]]:
    """Stratified, patient-grouped train/val/test parts of ``datalist``."""
    train_fraction = 1.0 - val_fraction - test_fraction
    if min(val_fraction, test_fraction, train_fraction) < 0:
        raise ValueError(
            f"fractions must be non-negative and sum to at most 1 (val={val_fraction}, test={test_fraction})"
        )
    groups, labels = _groups(datalist, label_key, group_key)
    parts = _assign_groups(groups, labels, [train_fraction, val_fraction, test_fraction], seed)
    return tuple([datalist[i] for i in idx] for idx in parts)  # type: ignore[return-value]


def split_indices(
    labels: Sequence[int],
    group_ids: Sequence[Hashable],
    test_fraction: float = 0.2,
    n_folds: int = 3,
    seed: int = 0,
) -> tuple[list[int], list[list[int]]]:
    """Indices of a stratified test part and of ``n_folds`` validation folds over the other items.

    Items sharing a group id never straddle the test set or two folds. This is the seeded split of
    :func:`kfold_splits`, for callers that work with indices (e.g. to write a split file).
    """
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must lie strictly between 0 and 1, got {test_fraction}")
    if n_folds < 2:
        raise ValueError(f"n_folds must be at least 2, got {n_folds}")
    labels = [int(label) for label in labels]
    pool, _, test = _assign_groups(
        *_grouped(labels, group_ids), [1.0 - test_fraction, 0.0, test_fraction], seed
    )
    folds = _assign_groups(
        *_grouped([labels[i] for i in pool], [group_ids[i] for i in pool]), [1.0] * n_folds, seed
    )
    return test, [[pool[j] for j in fold] for fold in folds]


def fold_datalists(
    datalist: Sequence[dict], folds: Sequence[Sequence[int]], fold: int
) -> tuple[list[dict], list[dict]]:
    """(train, val) for ``fold``: validation is that fold, training all the others."""
    if not 0 <= fold < len(folds):
        raise ValueError(f"fold {fold} out of range: there are {len(folds)} folds")
    val_idx = set(folds[fold])
    train = [item for i, item in enumerate(datalist) if i not in val_idx]
    val = [datalist[i] for i in sorted(val_idx)]
    return train, val


def read_split_spec(path: str | os.PathLike, needs_folds: bool = False) -> dict:
    """A split file's content ``{"test": [...], "folds": [[...], ...], "excluded": [...]}`` as written, paths
    unresolved; a missing or unreadable file, or one without a test list (or folds, with ``needs_folds``),
    is an :class:`InputError` naming it."""
    path = Path(path)
    try:
        spec = json.loads(path.read_text())
    except FileNotFoundError as err:
        raise InputError(path, "split file not found") from err
    except json.JSONDecodeError as err:
        raise InputError(path, f"not valid JSON ({err})") from err
    if "test" not in spec:
        raise InputError(path, "split file has no 'test' list")
    if needs_folds and not spec.get("folds"):
        raise InputError(path, "split file has no 'folds'")
    return spec


def read_split_file(
    path: str | os.PathLike,
    datalist: Sequence[dict],
    key: str = "image",
    base_dir: str | os.PathLike | None = None,
) -> dict:
    """Map a split file ``{"test": [...], "folds": [[...], ...]}`` of relative paths onto ``datalist``.

    Returns ``{"test": [items], "train": [items not in test], "folds": [[indices into train]],
    "excluded": [items]}``: an optional ``"excluded"`` list in the file (e.g. near-duplicates with
    conflicting labels) names items left out of every part. Other keys of the file (a report) are ignored.
    Paths in the file are relative to ``base_dir`` (default: the split file's folder).
    """
    path = Path(path)
    spec = read_split_spec(path)
    base = Path(base_dir) if base_dir is not None else path.parent

    def real(p: str | os.PathLike) -> str:
        # both sides resolved, so that symbolic links on either side (the data folder, the split file) match
        return os.path.realpath(base / p)

    # items name files as the loaders open them: absolute, or relative to the working directory
    index = {os.path.realpath(item[key]): i for i, item in enumerate(datalist)}
    listed = spec["test"] + sum(spec.get("folds", []), []) + spec.get("excluded", [])
    missing = [p for p in listed if real(p) not in index]
    if missing:
        raise InputError(path, f"{len(missing)} listed files are not in the datalist, e.g. {missing[:3]}")
    test_ids = {index[real(p)] for p in spec["test"]}
    excluded_ids = {index[real(p)] for p in spec.get("excluded", [])}
    if excluded_ids & test_ids:
        raise InputError(path, "the test set lists excluded files")
    train_ids = [i for i in range(len(datalist)) if i not in test_ids and i not in excluded_ids]
    for j, fold in enumerate(spec.get("folds", [])):
        if any(index[real(p)] in test_ids for p in fold):
            raise InputError(path, f"fold {j} shares files with the test set")
        if any(index[real(p)] in excluded_ids for p in fold):
            raise InputError(path, f"fold {j} lists excluded files")
    position = {i: j for j, i in enumerate(train_ids)}
    folds = [[position[index[real(p)]] for p in fold] for fold in spec.get("folds", [])]
    return {
        "test": [datalist[i] for i in sorted(test_ids)],
        "train": [datalist[i] for i in train_ids],
        "folds": folds,
        "excluded": [datalist[i] for i in sorted(excluded_ids)],
    }


def kfold_splits(
    items: list[dict],
    split_file: str | os.PathLike | None,
    fold: int,
    seed: int = 0,
    n_folds: int = 3,
    base_dir: str | os.PathLike | None = None,
    groups: Sequence[Hashable] | None = None,
) -> dict:
    """``{"train", "val", "test", "n_folds", "excluded"}`` of ``items``: from a split file, else seeded.

    Without a file, 20 % of the items (stratified) become the test set and the rest ``n_folds`` folds,
    grouped by ``groups`` (one id per item) when given, else by each item's ``patient``. ``excluded``
    lists the items a split file leaves out (none for a seeded split).
    """
    excluded: list[dict] = []
    if split_file is not None:
        spec = read_split_file(split_file, items, base_dir=base_dir)
        pool, test, folds, excluded = spec["train"], spec["test"], spec["folds"], spec["excluded"]
    else:
        if groups is None:
            groups = [item.get("patient", ("item", i)) for i, item in enumerate(items)]
        test_ids, fold_ids = split_indices([item["label"] for item in items], groups, 0.2, n_folds, seed)
        in_test = set(test_ids)
        pool_ids = [i for i in range(len(items)) if i not in in_test]
        position = {i: j for j, i in enumerate(pool_ids)}
        pool, test = [items[i] for i in pool_ids], [items[i] for i in sorted(test_ids)]
        folds = [[position[i] for i in f] for f in fold_ids]
    if not folds:
        raise InputError(split_file, "split file has no validation folds")
    train, val = fold_datalists(pool, folds, fold)
    return {"train": train, "val": val, "test": test, "n_folds": len(folds), "excluded": excluded}


def limit_splits(parts: dict, limit: int | None, seed: int = 0) -> dict:
    """Keep a seeded sample of at most ``limit`` items in each of train/val/test, for smoke runs."""
    if limit is None:
        return parts
    rng = np.random.default_rng(seed)
    for split in ("train", "val", "test"):
        if len(parts[split]) > limit:
            keep = sorted(rng.choice(len(parts[split]), size=limit, replace=False))
            parts[split] = [parts[split][i] for i in keep]
    return parts
