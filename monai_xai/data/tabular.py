"""Datalists from a CSV table, from a folder of class subfolders, or of unlabelled images to classify.

Items are MONAI-style dicts: ``image`` (absolute path), ``label`` (int), and when known ``mask``
and ``patient``. Paths in a CSV are read relative to the CSV's own folder, so a dataset folder can
be moved as a whole.

Class names become label ids through the ``class_names`` the configuration reports with, so that label
``i`` is ``class_names[i]`` everywhere. Without them names are numbered alphabetically, with a warning that
lists the numbering: reports would otherwise name the classes in an order nobody chose.
"""

from __future__ import annotations

import csv
import logging
import os
import re
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

logger = logging.getLogger(__name__)

_INTEGER = re.compile(r"[+-]?\d+")
#: How many offending rows an error message lists.
_MAX_ROWS = 5


def _resolve(base: Path, value: str | None, csv_path: Path, row: int, column: str) -> str:
    value = (value or "").strip()  # a short row gives None
    if not value:  # an empty path would resolve to the CSV's own folder and be read as a DICOM series
        raise InputError(csv_path, f"row {row}: the {column!r} cell is empty")
    path = Path(value) if os.path.isabs(value) else base / value
    if not path.exists():
        raise InputError(csv_path, f"row {row}: {column} file {str(path)!r} does not exist")
    return str(path)


def _rows(rows: Sequence[int]) -> str:
    """``"row 3"`` or ``"rows 3, 7, ... (12 rows)"``: where an error lies, without flooding the message."""
    shown = ", ".join(str(r) for r in rows[:_MAX_ROWS])
    if len(rows) == 1:
        return f"row {shown}"
    return f"rows {shown}{', ...' if len(rows) > _MAX_ROWS else ''} ({len(rows)} rows)"


def _label_ids(
    values: Sequence[str],
    lines: Sequence[int],
    csv_path: Path,
    column: str,
    class_names: Sequence[str] | None,
    allow_names: bool,
) -> list[int]:
    """Label ids of the cells of ``column``; ``lines`` are the rows' line numbers in the CSV.

    A column of integers stays integers (within ``[0, len(class_names))`` when names are given); any other
    column holds class names. A blank cell is an error: it must not turn an integer column into names.
    """
    empty = [line for line, v in zip(lines, values) if not v]
    if empty:
        raise InputError(csv_path, f"{_rows(empty)}: empty {column!r} cell (every row needs a label)")
    if all(_INTEGER.fullmatch(v) for v in values):
        ids = [int(v) for v in values]
        if class_names is not None:
            bad = [(line, v) for line, v in zip(lines, ids) if not 0 <= v < len(class_names)]
            if bad:
                raise InputError(
                    csv_path,
                    f"{_rows([line for line, _ in bad])}: label {bad[0][1]} in column {column!r} is not a "
                    f"class index in "
                    f"[0, {len(class_names)}) (class names: {list(class_names)})",
                )
        return ids
    if not allow_names:
        raise InputError(
            csv_path,
            f"column {column!r} holds class names, but `labels` picks classes by integer id: leave labels "
            "null and list the classes in class_names, in the order of their label ids",
        )
    if class_names is None:
        names = sorted(set(values))
        logger.warning(
            "%s: column %r holds class names and no class_names were given, so they are numbered "
            "alphabetically: %s. Pass class_names (label order) if that is not the order reports should use.",
            csv_path,
            column,
            ", ".join(f"{i}={name}" for i, name in enumerate(names)),
        )
    else:
        names = list(class_names)
    index = {name: i for i, name in enumerate(names)}
    unknown = [(line, v) for line, v in zip(lines, values) if v not in index]
    if unknown:
        raise InputError(
            csv_path,
            f"{_rows([line for line, _ in unknown])}: label {unknown[0][1]!r} in column {column!r} is not "
            f"among the class names {names}",
        )
    return [index[v] for v in values]


def csv_datalist(
    csv_path: str | os.PathLike,
    image_col: str = "image",
    label_col: str = "label",
    mask_col: str | None = "mask",
    patient_col: str | None = None,
    class_names: Sequence[str] | None = None,
    extra_cols: Sequence[str] = (),
    corrected_map_col: str | None = "corrected_map",
    allow_names: bool = True,
) -> list[dict]:
    """Read one item per CSV row.

    ``label_col`` holds either integer ids or class names. Names are mapped through ``class_names``
    (label ``i`` is ``class_names[i]``), and a name not among them is an error naming its row; without
    ``class_names`` the sorted unique names are used and the numbering is logged as a warning. Integer ids
    stay as they are, and must lie in ``[0, len(class_names))`` when names are given. ``allow_names=False``
    refuses names, for callers that pick classes by id. An empty label or image cell is an error naming
    its row. ``mask_col``/``patient_col`` are optional: a column that is absent, or an empty cell, gives
    an item without that key; so is ``corrected_map_col``, an expert's corrected attention map stored as
    ``corrected_map``.
    """
    csv_path = Path(csv_path)
    if not csv_path.is_file():
        raise InputError(csv_path, "CSV file not found")
    rows, lines = [], []
    with open(csv_path, newline="") as f:
        reader = csv.DictReader(f)
        for row in reader:  # blank lines are skipped and quoted cells may span lines: count them
            rows.append(row)
            lines.append(reader.line_num)
    if not rows:
        raise InputError(csv_path, "CSV has no data rows")
    columns = rows[0].keys()
    for needed in (image_col, label_col, *extra_cols):
        if needed not in columns:
            raise InputError(csv_path, f"missing column {needed!r} (columns: {', '.join(columns)})")
    raw_labels = [(r[label_col] or "").strip() for r in rows]
    labels = _label_ids(raw_labels, lines, csv_path, label_col, class_names, allow_names)
    # absolute, not resolved: a dataset reached through a symbolic link keeps the paths the user gave
    base = Path(os.path.abspath(csv_path)).parent
    items = []
    for i, row, label in zip(lines, rows, labels):
        item = {"image": _resolve(base, row[image_col], csv_path, i, image_col), "label": label}
        if mask_col and (row.get(mask_col) or "").strip():
            item["mask"] = _resolve(base, row[mask_col], csv_path, i, mask_col)
        if patient_col and row.get(patient_col):
            item["patient"] = row[patient_col]
        if corrected_map_col and (row.get(corrected_map_col) or "").strip():
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
    """One class per subfolder of ``root``; ``<name><mask_suffix>.<ext>`` beside an image is its mask.

    Label ``i`` is the subfolder ``class_names[i]``; subfolders not listed are left out, with a warning.
    Without ``class_names`` every subfolder is a class, numbered alphabetically, and the numbering is
    logged as a warning.
    """
    root = Path(root)
    if not root.is_dir():
        raise InputError(root, "dataset folder not found")
    found = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if class_names is None:
        names = found
        if names:
            logger.warning(
                "%s: no class_names given, so the class subfolders are numbered alphabetically: %s. Pass "
                "class_names (label order) if that is not the order reports should use.",
                root,
                ", ".join(f"{i}={name}" for i, name in enumerate(names)),
            )
    else:
        names = list(class_names)
        left_out = [name for name in found if name not in names]
        if left_out:
            logger.warning(
                "%s: subfolders %s are not among the class names %s: left out", root, left_out, names
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
