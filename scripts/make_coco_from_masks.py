"""Turn an image + lesion-mask dataset (a CSV of relative paths) into COCO boxes, after cleaning it.

One box per connected component of each mask, with the image's class as its category; images with an
empty or absent mask become images without annotations (negatives). Cleaning first drops images smaller
than ``--min_size`` and keeps one image per near-duplicate group (perceptual hash); what was dropped is
written to ``<out>.report.json``. Coloured calipers are removed later, at load time, by the transforms.

    python scripts/make_coco_from_masks.py --csv ../shared/data/busi_256/labels.csv \
        --classes benign malignant \
        --size_cols orig_height orig_width --min_size 200 200 --out /tmp/busi_boxes.json

With ``--split_file`` (a ``splits.json``-format file of paths relative to the CSV's folder, such as
``configs/datasets/busi_splits_dedup.json``) only the images of its test set and folds are converted, so the
boxes follow a fixed split (its ``excluded`` images are left out), and that split, restricted to the images
kept after cleaning, is written to ``<out>.splits.json``. The COCO file names images relative to the CSV's
folder: give the bundles that folder as ``--image_dir`` and the written split as ``--split_file``.

    python scripts/make_coco_from_masks.py --csv ../shared/data/busi_256/labels.csv \
        --classes benign malignant --dedup_distance -1 \
        --split_file configs/datasets/busi_splits_dedup.json --out runs/busi_dedup/boxes_coco.json
"""

from __future__ import annotations

import argparse
import csv
import json
from collections.abc import Sequence
from pathlib import Path

from PIL import Image

from monai_xai.data import read_split_spec
from monai_xai.data.coco import clean_detection_datalist, masks_to_coco
from monai_xai.errors import InputError
from monai_xai.utils import atomic_write_json


def read_items(args: argparse.Namespace) -> list[dict]:
    root = args.csv.parent
    with open(args.csv, newline="") as f:
        rows = list(csv.DictReader(f))
    missing = [
        c
        for c in (args.image_col, args.mask_col, args.class_col, *(args.size_cols or []))
        if rows and c not in rows[0]
    ]
    if missing:
        raise InputError(args.csv, f"no column {', '.join(missing)} (columns: {', '.join(rows[0])})")
    items = []
    for row in rows:
        if args.size_cols:
            size = tuple(int(float(row[c])) for c in args.size_cols)
        else:
            with Image.open(root / row[args.image_col]) as img:
                size = (img.height, img.width)
        items.append({
            "image": str(root / row[args.image_col]), "relative": row[args.image_col],
            "mask": row[args.mask_col] or None, "class_name": row[args.class_col], "size": size,
        })  # fmt: skip
    return items


def restrict_to_split(items: list[dict], spec: dict, split_path: Path) -> tuple[list[dict], list[str]]:
    """The items the split lists in its test set or folds (CSV order), and the paths of the others.

    Every listed image must be in the CSV: a split of another dataset is an :class:`InputError`.
    """
    listed = set(spec["test"]).union(*spec["folds"])
    known = {Path(item["relative"]).as_posix() for item in items}
    missing = sorted(listed - known)
    if missing:
        raise InputError(split_path, f"{len(missing)} listed images are not in the CSV, e.g. {missing[:3]}")
    kept = [item for item in items if Path(item["relative"]).as_posix() in listed]
    left_out = [item["relative"] for item in items if Path(item["relative"]).as_posix() not in listed]
    return kept, left_out


def split_of_kept(spec: dict, kept: list[dict], split_path: Path) -> dict:
    """``spec`` restricted to the images kept after cleaning, in the same format (none excluded: the images
    the source split excludes are not in the COCO file), with the source file and what cleaning dropped."""
    names = {Path(item["relative"]).as_posix() for item in kept}
    listed = spec["test"] + [p for fold in spec["folds"] for p in fold]
    return {
        **spec,
        "source": split_path.as_posix(),
        "test": [p for p in spec["test"] if p in names],
        "folds": [[p for p in fold if p in names] for fold in spec["folds"]],
        "excluded": [],
        "dropped_by_cleaning": [p for p in listed if p not in names],
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--csv", type=Path, required=True, help="CSV with image, mask and class columns")
    parser.add_argument("--image_col", default="image")
    parser.add_argument("--mask_col", default="mask")
    parser.add_argument("--class_col", default="label")
    parser.add_argument("--classes", nargs="+", required=True, help="lesion classes, in category-id order")
    parser.add_argument("--size_cols", nargs=2, help="columns of the original height and width (else read)")
    parser.add_argument("--min_size", nargs=2, type=int, help="drop images below this height and width")
    parser.add_argument("--dedup_distance", type=int, default=6, help="pHash bits; -1 keeps duplicates")
    parser.add_argument(
        "--min_area", type=int, default=16, help="drop mask components below this many pixels"
    )
    parser.add_argument(
        "--split_file", type=Path, help="convert only the test set and folds of this split (see above)"
    )
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)

    items = read_items(args)
    split, left_out = None, []
    if args.split_file:
        split = read_split_spec(args.split_file, needs_folds=True)
        items, left_out = restrict_to_split(items, split, args.split_file)
    kept, report = clean_detection_datalist(
        items, args.min_size, None if args.dedup_distance < 0 else args.dedup_distance, progress=True
    )
    coco = masks_to_coco(
        [{"image": i["relative"], "mask": i["mask"], "class_name": i["class_name"]} for i in kept],
        args.classes, args.csv.parent, min_area=args.min_area,
    )  # fmt: skip
    for image, item in zip(coco["images"], kept):
        image["orig_height"], image["orig_width"] = item["size"]
    atomic_write_json(args.out, coco)
    report_path = args.out.with_suffix(".report.json")
    report_path.write_text(json.dumps({**report, "left_out_by_split": left_out}, indent=2))
    print(
        f"{len(coco['images'])} images ({len(items) - len(kept)} dropped: "
        f"{len(report['too_small'])} too small, "
        f"{sum(len(g['dropped']) for g in report['duplicate_groups'])} near-duplicates in "
        f"{len(report['duplicate_groups'])} groups), {len(coco['annotations'])} boxes -> {args.out}; "
        f"report {report_path}"
    )
    if split is not None:
        split_path = args.out.with_suffix(".splits.json")
        kept_split = split_of_kept(split, kept, args.split_file)
        atomic_write_json(split_path, kept_split, indent=1)
        folds = "/".join(str(len(f)) for f in kept_split["folds"])
        print(
            f"split of {args.split_file} ({len(left_out)} images it leaves out not converted): test "
            f"{len(kept_split['test'])}, folds {folds} -> {split_path}"
        )


if __name__ == "__main__":
    main()
