"""``python -m monai_xai.data.make_split``: write a near-duplicate-aware split file for a CSV dataset.

The file has the format of a ``splits.json`` (``"seed"``, ``"test"``, ``"folds"``, image paths relative
to the CSV's folder) that :func:`~monai_xai.data.dataset_splits` reads with ``split_file=``, plus
``"excluded"`` (near-duplicates with conflicting labels, left out of every part) and a ``"dedup"`` report.
Near-duplicate images are grouped like images of one patient (:func:`~monai_xai.data.group_near_duplicates`),
so that no copy of a test image is trained on and no fold validates on a copy of its training images.

``--out-of-fold`` writes out-of-fold cross-validation instead (``"test_folds"``, ``"val_folds"``; see
:func:`~monai_xai.data.out_of_fold_indices`): every image tested once, each fold with its own validation part,
for sets too small to spare a fixed test set.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path

from monai_xai.data.dedup import group_near_duplicates
from monai_xai.data.splits import out_of_fold_indices, split_indices
from monai_xai.data.tabular import csv_datalist
from monai_xai.utils import atomic_write_text

__all__ = ["main", "write_split_file"]


def write_split_file(
    csv_path: str | os.PathLike,
    out: str | os.PathLike,
    test_fraction: float = 0.2,
    n_folds: int = 3,
    seed: int = 0,
    image_col: str = "image",
    label_col: str = "label",
    patient_col: str | None = None,
    class_names: Sequence[str] | None = None,
    method: str = "dhash",
    max_distance: int = 5,
    hash_size: int = 8,
    keep_conflicting: bool = False,
    progress: bool | None = None,
    out_of_fold: bool = False,
    val_fraction: float = 0.2,
) -> dict:
    """Draw a stratified split of ``csv_path`` that keeps near-duplicates (and patients) together.

    Writes it to ``out`` atomically and returns what was written. Raises
    :class:`~monai_xai.errors.InputError` naming the file when the CSV, one of its columns or one of its
    images cannot be used. ``class_names`` are the label column's names in label order, checked as a
    training run checks them; without them a column of names is numbered alphabetically, with a warning.
    With ``out_of_fold`` the ``n_folds`` folds are test parts, each with a validation part of
    ``val_fraction`` of the other items (``test_fraction`` unused).
    """
    csv_path = Path(csv_path)
    items = csv_datalist(
        csv_path,
        image_col=image_col,
        label_col=label_col,
        mask_col=None,
        patient_col=patient_col,
        class_names=class_names,
        extra_cols=[patient_col] if patient_col else (),  # a missing patient column is an error here
        corrected_map_col=None,
    )
    found = group_near_duplicates(
        items,
        method=method,
        max_distance=max_distance,
        hash_size=hash_size,
        keep_conflicting=keep_conflicting,
        progress=progress,
    )
    kept = found.kept
    labels, groups = [items[i]["label"] for i in kept], [found.ids[i] for i in kept]
    base = Path(os.path.abspath(csv_path)).parent

    def relative(i: int) -> str:
        return Path(os.path.relpath(items[i]["image"], base)).as_posix()

    def paths(parts: list[list[int]]) -> list[list[str]]:
        return [[relative(kept[j]) for j in part] for part in parts]

    spec: dict = {"seed": seed}
    if out_of_fold:
        tests, vals = out_of_fold_indices(labels, groups, n_folds, val_fraction, seed)
        spec |= {"scheme": "out_of_fold", "val_fraction": val_fraction}
        parts = {"test_folds": paths(tests), "val_folds": paths(vals)}
    else:
        test, folds = split_indices(labels, groups, test_fraction, n_folds, seed)
        spec["test_fraction"] = test_fraction
        parts = {"test": paths([test])[0], "folds": paths(folds)}
    spec |= {
        "columns": {"image": image_col, "label": label_col, "patient": patient_col},
        **parts,
        "excluded": [relative(i) for i in found.excluded],
        "dedup": {
            "hash": method,
            "hash_size": hash_size,
            "max_distance": max_distance,
            "groups": len(found.duplicates),
            "images_in_groups": sum(len(g) for g in found.duplicates),
            "conflicting_groups": [[relative(i) for i in g] for g in found.conflicting],
            "keep_conflicting": keep_conflicting,
        },
    }
    atomic_write_text(out, json.dumps(spec, indent=1) + "\n")
    return spec


def main(argv: Sequence[str] | None = None) -> dict:
    """Parse the command line, write the split file and print a one-line summary."""
    parser = argparse.ArgumentParser(
        prog="python -m monai_xai.data.make_split", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--csv", required=True, help="the dataset's CSV (image paths relative to it)")
    parser.add_argument("--out", required=True, help="the split file to write (JSON)")
    parser.add_argument("--test-fraction", type=float, default=0.2, help="share of items in the test set")
    parser.add_argument("--folds", type=int, default=3, help="validation folds over the other items")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--image-col", default="image")
    parser.add_argument(
        "--label-col", default="label", help="class ids or names; the split is stratified by it"
    )
    parser.add_argument("--patient-col", default=None, help="images of one patient are kept together too")
    parser.add_argument(
        "--class-names", nargs="+", default=None, help="the label column's class names, in label order"
    )
    parser.add_argument("--hash", default="dhash", choices=("dhash", "phash"), help="perceptual hash")
    parser.add_argument("--hash-size", type=int, default=8, help="side of the hash (8: 64 bits)")
    parser.add_argument("--max-distance", type=int, default=5, help="largest Hamming distance of duplicates")
    parser.add_argument(
        "--out-of-fold",
        action="store_true",
        help="out-of-fold cross-validation: --folds test folds covering every image, no fixed test set",
    )
    parser.add_argument(
        "--val-fraction", type=float, default=0.2, help="with --out-of-fold: each fold's validation share"
    )
    parser.add_argument(
        "--keep-conflicting",
        action="store_true",
        help="keep near-duplicates whose labels differ (default: excluded from every part)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        spec = write_split_file(
            args.csv,
            args.out,
            test_fraction=args.test_fraction,
            n_folds=args.folds,
            seed=args.seed,
            image_col=args.image_col,
            label_col=args.label_col,
            patient_col=args.patient_col,
            class_names=args.class_names,
            method=args.hash,
            max_distance=args.max_distance,
            hash_size=args.hash_size,
            keep_conflicting=args.keep_conflicting,
            out_of_fold=args.out_of_fold,
            val_fraction=args.val_fraction,
        )
    except ValueError as err:  # an InputError naming the file, or a bad fraction or fold count
        raise SystemExit(f"{parser.prog}: error: {err}") from err
    tested = spec["test_folds"] if args.out_of_fold else [spec["test"]]
    n_items = sum(len(f) for f in tested) + len(spec["excluded"])
    if args.out_of_fold:
        parts = (
            f"test folds {'/'.join(str(len(f)) for f in spec['test_folds'])}, "
            f"validation parts {'/'.join(str(len(f)) for f in spec['val_folds'])}"
        )
    else:
        n_items += sum(len(f) for f in spec["folds"])
        parts = f"test {len(spec['test'])}, folds {'/'.join(str(len(f)) for f in spec['folds'])}"
    print(
        f"{args.out}: {n_items} items, {spec['dedup']['groups']} near-duplicate groups, "
        f"{len(spec['excluded'])} excluded ({len(spec['dedup']['conflicting_groups'])} groups with "
        f"conflicting labels), {parts}"
    )
    return spec


if __name__ == "__main__":
    main()
