"""COCO-format detection datalists: validated boxes, fixed splits, cleaning, and boxes from lesion masks.

Items are MONAI datalist entries: ``image`` and ``source`` (the path; ``source`` survives loading, for
reports), ``boxes`` ``(N, 4)`` float32 xyxy pixels, ``labels`` ``(N,)`` int64 class indices 0..C-1,
``label`` (image class for stratification: 0 without boxes, else 1 + the largest box class), ``image_id``
and ``size`` (height, width of the original acquisition). Categories are numbered by ascending COCO id.
An image without annotations is kept with empty boxes: a valid negative.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from monai_xai.data.dedup import drop_near_duplicates
from monai_xai.data.splits import kfold_splits, limit_splits
from monai_xai.errors import InputError

__all__ = [
    "clean_detection_datalist",
    "coco_class_names",
    "coco_datalist",
    "coco_splits",
    "load_coco",
    "masks_to_coco",
]


def load_coco(path: str | os.PathLike) -> dict[str, Any]:
    """Read a COCO JSON file and check that it has ``images``, ``annotations`` and ``categories``."""
    path = Path(path)
    try:
        coco = json.loads(path.read_text())
    except FileNotFoundError as err:
        raise InputError(path, "COCO file not found") from err
    except json.JSONDecodeError as err:
        raise InputError(path, f"not valid JSON ({err})") from err
    missing = [k for k in ("images", "annotations", "categories") if k not in coco]
    if missing:
        raise InputError(path, f"not a COCO detection file: no {', '.join(repr(k) for k in missing)}")
    if not coco["categories"]:
        raise InputError(path, "COCO file has no categories")
    return coco


def coco_class_names(path: str | os.PathLike) -> list[str]:
    """Category names in class-index order (ascending COCO id)."""
    return [c["name"] for c in sorted(load_coco(path)["categories"], key=lambda c: c["id"])]


def _box(ann: dict, image: dict, path: Path, tolerance: float) -> list[float]:
    where = f"annotation {ann.get('id')} of {image['file_name']}"
    bbox = ann.get("bbox")
    if bbox is None or len(bbox) != 4:
        raise InputError(path, f"{where}: bbox must be [x, y, width, height], got {bbox!r}")
    x, y, w, h = (float(v) for v in bbox)
    if not (w > 0 and h > 0):
        raise InputError(path, f"{where}: box of zero or negative size {bbox}")
    width, height = float(image["width"]), float(image["height"])
    if x < -tolerance or y < -tolerance or x + w > width + tolerance or y + h > height + tolerance:
        raise InputError(path, f"{where}: box {bbox} lies outside the {int(width)}x{int(height)} image")
    x1, y1, x2, y2 = max(x, 0.0), max(y, 0.0), min(x + w, width), min(y + h, height)
    if x2 <= x1 or y2 <= y1:
        raise InputError(path, f"{where}: box {bbox} has no area inside the image")
    return [x1, y1, x2, y2]


def coco_datalist(
    path: str | os.PathLike, image_dir: str | os.PathLike | None = None, tolerance: float = 1.0
) -> list[dict[str, Any]]:
    """Datalist of a COCO file; image paths are relative to ``image_dir`` (default: the file's folder).

    Boxes reaching up to ``tolerance`` pixels past the border are clipped to it (rounding in exports);
    further out, of zero size, with an unknown ``category_id`` or ``image_id``: :class:`InputError`.
    """
    path = Path(path)
    coco = load_coco(path)
    base = Path(image_dir) if image_dir is not None else path.parent
    categories = sorted(coco["categories"], key=lambda c: c["id"])
    class_of = {c["id"]: i for i, c in enumerate(categories)}
    known = ", ".join(f"{c['id']} ({c['name']})" for c in categories)
    images: dict[Any, dict] = {}
    for image in coco["images"]:
        absent = [k for k in ("id", "file_name", "width", "height") if k not in image]
        if absent:
            raise InputError(path, f"image entry {image} has no {', '.join(absent)}")
        images[image["id"]] = {"image": image, "boxes": [], "labels": []}
    for ann in coco["annotations"]:
        if ann.get("image_id") not in images:
            raise InputError(path, f"annotation {ann.get('id')}: unknown image_id {ann.get('image_id')!r}")
        entry = images[ann["image_id"]]
        if ann.get("category_id") not in class_of:
            raise InputError(
                path,
                f"annotation {ann.get('id')} of {entry['image']['file_name']}: unknown category_id "
                f"{ann.get('category_id')!r} (known: {known})",
            )
        entry["boxes"].append(_box(ann, entry["image"], path, tolerance))
        entry["labels"].append(class_of[ann["category_id"]])
    items = []
    for image_id, entry in images.items():
        image, labels = entry["image"], entry["labels"]
        items.append({
            "image": str(base / image["file_name"]),
            "source": str(base / image["file_name"]),
            "boxes": np.asarray(entry["boxes"], dtype=np.float32).reshape(-1, 4),
            "labels": np.asarray(labels, dtype=np.int64),
            "label": 1 + max(labels) if labels else 0,
            "image_id": image_id,
            "size": (int(image.get("orig_height", image["height"])),
                     int(image.get("orig_width", image["width"]))),
        })  # fmt: skip
    return items


def coco_splits(
    path: str | os.PathLike,
    fold: int = 0,
    split_file: str | os.PathLike | None = "auto",
    seed: int = 0,
    n_folds: int = 3,
    limit: int | None = None,
    image_dir: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """``{"train", "val", "test", "n_folds", "excluded"}`` datalists of a COCO file.

    ``split_file="auto"`` uses a ``splits.json`` beside the COCO file when present (the BUSI convention:
    ``{"test": [...], "folds": [[...], ...]}`` of relative image paths), else a seeded stratified split.
    ``limit`` keeps a seeded sample of at most that many items per split, for smoke runs.
    """
    path = Path(path)
    items = coco_datalist(path, image_dir)
    if split_file == "auto":
        candidate = path.parent / "splits.json"
        split_file = candidate if candidate.is_file() else None
    parts = kfold_splits(items, split_file, fold, seed, n_folds, base_dir=image_dir or path.parent)
    return limit_splits(parts, limit, seed)


def clean_detection_datalist(
    items: Sequence[Mapping[str, Any]],
    min_size: Sequence[int] | None = None,
    max_distance: int | None = 6,
    progress: bool | None = None,
) -> tuple[list[Mapping[str, Any]], dict[str, Any]]:
    """Drop images smaller than ``min_size`` (height, width of ``item["size"]``) and near-duplicates.

    Near-duplicates are found by perceptual hash (:func:`~monai_xai.data.find_near_duplicates`,
    ``max_distance`` bits; ``None`` skips it); the first of each group is kept. Returns the kept items
    and ``{"too_small": [sources], "duplicate_groups": [{"kept", "dropped", "sources"}]}``.
    """
    kept, too_small = list(items), []
    if min_size is not None:
        fits = [i["size"][0] >= min_size[0] and i["size"][1] >= min_size[1] for i in kept]
        too_small = [str(i["image"]) for i, ok in zip(kept, fits) if not ok]
        kept = [i for i, ok in zip(kept, fits) if ok]
    groups: list[dict[str, Any]] = []
    if max_distance is not None:
        kept, groups = drop_near_duplicates(kept, key="image", max_distance=max_distance, progress=progress)
    return kept, {"too_small": too_small, "duplicate_groups": groups}


def masks_to_coco(
    items: Sequence[Mapping[str, Any]],
    class_names: Sequence[str],
    base_dir: str | os.PathLike,
    min_area: int = 1,
) -> dict[str, Any]:
    """COCO dict with one box per connected component (8-connected) of each item's binary mask.

    ``items`` hold ``image`` and ``mask`` paths (relative to ``base_dir``) and ``class_name``; items whose
    mask is absent or empty become images without annotations. Components smaller than ``min_area``
    pixels are dropped as speckle.
    """
    from PIL import Image
    from scipy import ndimage

    base = Path(base_dir)
    cat_id = {name: i + 1 for i, name in enumerate(class_names)}
    coco: dict[str, Any] = {
        "images": [],
        "annotations": [],
        "categories": [{"id": i, "name": n} for n, i in cat_id.items()],
    }
    for image_id, item in enumerate(items, start=1):
        with Image.open(base / item["image"]) as img:
            width, height = img.size
        coco["images"].append(
            {"id": image_id, "file_name": str(item["image"]), "width": width, "height": height}
        )
        if not item.get("mask"):
            continue
        with Image.open(base / item["mask"]) as m:
            mask = np.asarray(m.convert("L")) > 127
        if mask.shape != (height, width):
            raise InputError(base / item["mask"], f"mask is {mask.shape[::-1]}, image is {(width, height)}")
        if mask.any() and item["class_name"] not in cat_id:
            raise InputError(
                base / item["image"], f"class {item['class_name']!r} is not in {list(class_names)}"
            )
        components, _ = ndimage.label(mask, structure=np.ones((3, 3)))
        for index, (rows, cols) in enumerate(ndimage.find_objects(components), start=1):
            area = int((components[rows, cols] == index).sum())
            if area < min_area:
                continue
            coco["annotations"].append({
                "id": len(coco["annotations"]) + 1, "image_id": image_id,
                "category_id": cat_id[item["class_name"]],
                "bbox": [cols.start, rows.start, cols.stop - cols.start, rows.stop - rows.start],
                "area": area, "iscrowd": 0,
            })  # fmt: skip
    return coco
