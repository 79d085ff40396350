"""BUSI lesion boxes on the leak-free split (scripts/make_coco_from_masks.py --split_file), on real images.

The detection study of `python -m monai_xai.experiments centernet_busi run` must train, validate and test on
the same images as the near-duplicate-aware split of configs/datasets/busi_splits_dedup.json (which the
classification studies use too), with the boxes of the shared COCO file, and its k-NN probe must read the same
parts.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np
import pytest

from monai_xai.data import coco_splits, dataset_splits

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
SPLIT = REPO / "configs" / "datasets" / "busi_splits_dedup.json"


def test_busi_boxes_follow_the_leak_free_split(shared_data, tmp_path, load_script) -> None:
    root = shared_data / "busi_256"
    if not (root / "labels.csv").is_file():
        pytest.skip(f"BUSI not found at {root}")
    out = tmp_path / "data" / "boxes_coco.json"
    load_script("make_coco_from_masks.py").main([
        "--csv", str(root / "labels.csv"), "--classes", "benign", "malignant", "--dedup_distance", "-1",
        "--split_file", str(SPLIT), "--out", str(out),
    ])  # fmt: skip
    spec, written = json.loads(SPLIT.read_text()), json.loads(out.with_suffix(".splits.json").read_text())
    assert written["test"] == spec["test"] and written["folds"] == spec["folds"]
    assert written["excluded"] == [] and written["dropped_by_cleaning"] == []

    coco = json.loads(out.read_text())
    listed = spec["test"] + sum(spec["folds"], [])
    assert sorted(i["file_name"] for i in coco["images"]) == sorted(listed)  # the excluded groups are not in
    with open(root / "labels.csv", newline="") as f:
        label = {row["image"]: row["label"] for row in csv.DictReader(f)}
    category = {c["id"]: c["name"] for c in coco["categories"]}
    boxes: dict[str, list] = {}
    for ann in coco["annotations"]:
        image = coco["images"][ann["image_id"] - 1]["file_name"]
        boxes.setdefault(image, []).append(ann["bbox"])
        assert category[ann["category_id"]] == label[image]  # a lesion takes its image's class
    assert all((name in boxes) == (label[name] != "normal") for name in listed)
    # the boxes of the shared COCO file (all 780 images) for the images of the split, up to a pixel (4 of the
    # 631 images with lesions differ by one)
    shared = json.loads((root / "boxes_coco.json").read_text())
    shared_boxes: dict[str, list] = {}
    for ann in shared["annotations"]:
        shared_boxes.setdefault(shared["images"][ann["image_id"] - 1]["file_name"], []).append(ann["bbox"])
    assert set(boxes) == {name for name in listed if name in shared_boxes}
    for name, own in boxes.items():
        assert len(own) == len(shared_boxes[name]), name
        assert np.abs(np.sort(own, axis=0) - np.sort(shared_boxes[name], axis=0)).max() <= 1, name

    detection = coco_splits(out, fold=0, split_file=out.with_suffix(".splits.json"), image_dir=root)
    probe = dataset_splits(
        "csv", root / "labels.csv", fold=0, split_file=SPLIT, label_col="label_id", mask_col=None
    )
    for part, size in (("train", 406), ("val", 204), ("test", 152)):
        names = sorted(os.path.realpath(i["image"]) for i in detection[part])
        assert len(names) == size and names == sorted(os.path.realpath(i["image"]) for i in probe[part]), part
