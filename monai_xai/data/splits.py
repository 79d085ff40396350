"""Deterministic splits: stratified k-fold and train/val/test, grouped by patient, or read from a file.

When items carry a ``patient`` key, all images of one patient land on the same side of every
split, so that patient-level leakage cannot inflate validation figures. Any other grouping (e.g.
near-duplicate images, :func:`monai_xai.data.group_near_duplicates`) can be given as group ids.

Two kinds of split file: a fixed test set with validation folds over the other items (``"test"``,
``"folds"``), and out-of-fold cross-validation (``"test_folds"``, ``"val_folds"``), where every item is tested
once, by the model of the fold that holds it out, and each fold keeps its own validation part for early
stopping (:func:`out_of_fold_indices`): on a small set, pooling the folds' test predictions puts every image
behind the figures instead of a fifth of them.
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
    "out_of_fold_indices",
    "out_of_fold_parts",
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


def out_of_fold_indices(
    labels: Sequence[int],
    group_ids: Sequence[Hashable],
    n_folds: int = 5,
    val_fraction: float = 0.2,
    seed: int = 0,
) -> tuple[list[list[int]], list[list[int]]]:
    """Indices of each fold's test part and of its validation part, for out-of-fold cross-validation.

    The test parts are ``n_folds`` stratified folds that cover every item once; fold ``k``'s validation part
    is a stratified ``val_fraction`` of the items outside its test part (drawn with seed ``seed + 1 + k``),
    and it trains on the rest. Items sharing a group id stay together in every part.
    """
    if n_folds < 2:
        raise ValueError(f"n_folds must be at least 2, got {n_folds}")
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must lie strictly between 0 and 1, got {val_fraction}")
    labels = [int(label) for label in labels]
    tests = _assign_groups(*_grouped(labels, group_ids), [1.0] * n_folds, seed)
    vals = []
    for k, test in enumerate(tests):
        held_out = set(test)
        pool = [i for i in range(len(labels)) if i not in held_out]
        grouped = _grouped([labels[i] for i in pool], [group_ids[i] for i in pool])
        _, val = _assign_groups(*grouped, [1.0 - val_fraction, val_fraction], seed + 1 + k)
        vals.append(sorted(pool[j] for j in val))
    return tests, vals


def out_of_fold_parts(
    path: str | os.PathLike,
    datalist: Sequence[dict],
    fold: int,
    key: str = "image",
    base_dir: str | os.PathLike | None = None,
) -> dict:
    """``{"train", "val", "test", "n_folds", "excluded"}`` of ``fold`` from an out-of-fold split file.

    The file lists ``"test_folds"`` and ``"val_folds"`` (one list of relative paths per fold) and optionally
    ``"excluded"``; paths are relative to ``base_dir`` (default: the file's folder). A listed file missing
    from ``datalist``, test folds that overlap or leave an item out, or a validation part that shares files
    with its test part is an :class:`InputError` naming the split file.
    """
    path = Path(path)
    spec = read_split_spec(path)
    tests, vals = spec.get("test_folds") or [], spec.get("val_folds") or []
    if len(tests) < 2 or len(vals) != len(tests):
        raise InputError(
            path, f"{len(tests)} test folds and {len(vals)} validation parts: give one of each per fold"
        )
    if not 0 <= fold < len(tests):
        raise ValueError(f"fold {fold} out of range: there are {len(tests)} folds")
    base = Path(base_dir) if base_dir is not None else path.parent
    index = {os.path.realpath(item[key]): i for i, item in enumerate(datalist)}
    listed = sum(tests, []) + sum(vals, []) + spec.get("excluded", [])
    missing = [p for p in listed if os.path.realpath(base / p) not in index]
    if missing:
        raise InputError(path, f"{len(missing)} listed files are not in the datalist, e.g. {missing[:3]}")

    def ids(paths: Sequence[str]) -> set[int]:
        return {index[os.path.realpath(base / p)] for p in paths}

    excluded = ids(spec.get("excluded", []))
    test_sets = [ids(t) for t in tests]
    if sum(len(t) for t in test_sets) != len(set().union(*test_sets)):
        raise InputError(path, "the test folds overlap: every item must be tested once")
    untested = set(range(len(datalist))) - set().union(*test_sets) - excluded
    if untested:
        example = datalist[min(untested)][key]
        raise InputError(path, f"{len(untested)} items are in no test fold and not excluded, e.g. {example}")
    test, val = test_sets[fold], ids(vals[fold])
    if val & test:
        raise InputError(path, f"fold {fold}'s validation part shares files with its test part")
    return {
        "train": [item for i, item in enumerate(datalist) if i not in test | val | excluded],
        "val": [datalist[i] for i in sorted(val)],
        "test": [datalist[i] for i in sorted(test)],
        "n_folds": len(tests),
        "excluded": [datalist[i] for i in sorted(excluded)],
    }


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
    """A split file's content ``{"test": [...], "folds": [[...], ...], "excluded": [...]}`` (or, out of fold,
    ``{"test_folds": ..., "val_folds": ...}``) as written, paths unresolved; a missing or unreadable file, or
    one without a test list (or folds, with ``needs_folds``), is an :class:`InputError` naming it."""
    path = Path(path)
    try:
        spec = json.loads(path.read_text())
    except FileNotFoundError as err:
        raise InputError(path, "split file not found") from err
    except json.JSONDecodeError as err:
        raise InputError(path, f"not valid JSON ({err})") from err
    if "test" not in spec and "test_folds" not in spec:
        raise InputError(path, "split file has no 'test' list (nor 'test_folds')")
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
    lists the items a split file leaves out (none for a seeded split). An out-of-fold split file gives fold
    ``fold``'s own test and validation parts (:func:`out_of_fold_parts`).
    """
    excluded: list[dict] = []
    if split_file is not None and "test_folds" in read_split_spec(split_file):
        return out_of_fold_parts(split_file, items, fold, base_dir=base_dir)
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
