"""Datalists from a CSV table, from a folder of class subfolders, or of unlabelled images to classify.

Items are MONAI-style dicts: ``image`` (absolute path), ``label`` (int), and when known ``mask``
and ``patient``. Paths in a CSV are read relative to the CSV's own folder, so a dataset folder can
be moved as a whole.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from monai_xai.errors import InputError

__all__ = [
    "IMAGE_SUFFIXES",
    "csv_datalist",
    "folder_datalist",
    "image_files",
    "image_items",
    "inference_datalist",
]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".nii", ".nii.gz", ".dcm")


def _resolve(base: Path, value: str, csv_path: Path, row: int, column: str) -> str:
    path = Path(value) if os.path.isabs(value) else base / value
    if not path.exists():
        raise InputError(csv_path, f"row {row}: {column} file {str(path)!r} does not exist")
    return str(path)


def csv_datalist(
    csv_path: str | os.PathLike,
    image_col: str = "image",
    label_col: str = "label",
    mask_col: str | None = "mask",
    patient_col: str | None = None,
    class_names: Sequence[str] | None = None,
    extra_cols: Sequence[str] = (),
    corrected_map_col: str | None = "corrected_map",
) -> list[dict]:
    """Read one item per CSV row.

    ``label_col`` holds either integer ids or class names; names are mapped through
    ``class_names`` (default: sorted unique names). ``mask_col``/``patient_col`` are optional:
    a column that is absent, or an empty cell, gives an item without that key; so is
    ``corrected_map_col``, an expert's corrected attention map stored as ``corrected_map``.
    """
    csv_path = Path(csv_path)
    if not csv_path.is_file():
        raise InputError(csv_path, "CSV file not found")
    with open(csv_path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise InputError(csv_path, "CSV has no data rows")
    columns = rows[0].keys()
    for needed in (image_col, label_col, *extra_cols):
        if needed not in columns:
            raise InputError(csv_path, f"missing column {needed!r} (columns: {', '.join(columns)})")
    raw_labels = [r[label_col].strip() for r in rows]
    if all(v.lstrip("-").isdigit() for v in raw_labels):
        labels = [int(v) for v in raw_labels]
    else:
        names = list(class_names) if class_names is not None else sorted(set(raw_labels))
        unknown = sorted(set(raw_labels) - set(names))
        if unknown:
            raise InputError(csv_path, f"labels {unknown} are not among the class names {names}")
        labels = [names.index(v) for v in raw_labels]
    # absolute, not resolved: a dataset reached through a symbolic link keeps the paths the user gave
    base = Path(os.path.abspath(csv_path)).parent
    items = []
    for i, (row, label) in enumerate(zip(rows, labels), start=2):  # row 1 is the header
        item = {"image": _resolve(base, row[image_col], csv_path, i, image_col), "label": label}
        if mask_col and row.get(mask_col):
            item["mask"] = _resolve(base, row[mask_col], csv_path, i, mask_col)
        if patient_col and row.get(patient_col):
            item["patient"] = row[patient_col]
        if corrected_map_col and row.get(corrected_map_col):
            item["corrected_map"] = _resolve(base, row[corrected_map_col], csv_path, i, corrected_map_col)
        for col in extra_cols:
            item[col] = row[col]
        items.append(item)
    return items


def _has_image_suffix(path: Path) -> bool:
    return path.name.lower().endswith(IMAGE_SUFFIXES)


def folder_datalist(
    root: str | os.PathLike, mask_suffix: str = "_mask", class_names: Sequence[str] | None = None
) -> list[dict]:
    """One class per subfolder of ``root``; ``<name><mask_suffix>.<ext>`` beside an image is its mask."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(root, "dataset folder not found")
    names = (
        list(class_names) if class_names is not None else sorted(p.name for p in root.iterdir() if p.is_dir())
    )
    if not names:
        raise InputError(root, "no class subfolders found")
    items = []
    for label, name in enumerate(names):
        folder = root / name
        if not folder.is_dir():
            raise InputError(folder, f"class folder for {name!r} not found")
        files = sorted(p for p in folder.iterdir() if p.is_file() and _has_image_suffix(p))
        for path in files:
            stem, suffix = path.name.split(".", 1)
            if stem.endswith(mask_suffix):
                continue
            item = {"image": str(path), "label": label}
            mask = folder / f"{stem}{mask_suffix}.{suffix}"
            if mask.is_file():
                item["mask"] = str(mask)
            items.append(item)
    if not items:
        raise InputError(root, f"no images with suffixes {', '.join(IMAGE_SUFFIXES)} found")
    return items


def image_files(folder: str | os.PathLike, mask_suffix: str = "_mask") -> list[str]:
    """Every image below ``folder`` (sorted, subfolders included) but masks: what inference runs on when
    given a ``--dataset_dir`` instead of ``--input_files``."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(folder, "input folder not found (pass --dataset_dir or --input_files)")
    files = sorted(
        str(p)
        for p in folder.rglob("*")
        if p.is_file() and _has_image_suffix(p) and not p.name.split(".", 1)[0].endswith(mask_suffix)
    )
    if not files:
        raise InputError(folder, f"no images with suffixes {', '.join(IMAGE_SUFFIXES)} found")
    return files


def inference_datalist(images: Sequence[str | os.PathLike | object]) -> list[dict]:
    """Unlabelled items for inference: ``image`` (a path or an array), and ``source`` (the path) for files,
    which writers use to name their outputs."""
    return [
        {"image": image, "source": str(image)} if isinstance(image, str | os.PathLike) else {"image": image}
        for image in images
    ]


def image_items(items: Sequence[Mapping]) -> list[dict]:
    """The items' images alone: self-supervised pretraining must not see labels, boxes or masks."""
    return [{"image": item["image"]} for item in items]
