"""The committed HEI-MED split (configs/datasets/heimed_splits_oof.json) and fragment on the real images: five
stratified out-of-fold test folds covering all 169 images once, each fold with its own validation part, read
from the repository root, and the fragment's preset keeping every exudate region of a real mask."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import pytest

from monai_xai.data import dataset_splits

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
SPLIT = REPO / "configs" / "datasets" / "heimed_splits_oof.json"
FRAGMENT = REPO / "configs" / "datasets" / "heimed_exudates.json"


@pytest.fixture(scope="module")
def heimed(shared_data) -> tuple[Path, dict[str, int]]:
    root = shared_data / "heimed_768"
    if not (root / "labels.csv").is_file():
        pytest.skip(f"HEI-MED not found at {root}")
    with open(root / "labels.csv", newline="") as handle:
        labels = {row["image"]: int(row["label_id"]) for row in csv.DictReader(handle)}
    return root, labels


def test_split_tests_every_image_once_in_five_stratified_folds(heimed) -> None:
    _, labels = heimed
    spec = json.loads(SPLIT.read_text())
    assert spec["scheme"] == "out_of_fold" and len(spec["test_folds"]) == len(spec["val_folds"]) == 5
    assert sorted(sum(spec["test_folds"], [])) == sorted(labels) and len(labels) == 169
    assert spec["excluded"] == [] and spec["dedup"]["groups"] == 0
    for test, val in zip(spec["test_folds"], spec["val_folds"]):
        assert not set(test) & set(val) and len(val) == 27
        assert sum(labels[p] for p in test) in (10, 11)  # 54 positives over 5 folds
        assert sum(labels[p] for p in val) == 9


def test_fragment_reads_each_fold_from_the_repository_root(heimed, monkeypatch) -> None:
    root, labels = heimed
    config = json.loads(FRAGMENT.read_text())
    assert config["datalist_args"]["split_file"] == os.path.relpath(SPLIT, REPO)
    assert config["preset"] == "fundus" and config["preset_args"]["mask_resize"] == "max"
    monkeypatch.chdir(REPO)
    tested = set()
    for fold in range(5):
        parts = dataset_splits(
            config["dataset_source"],
            Path(config["dataset_dir"]) / "labels.csv",
            fold=fold,
            labels=config["labels"],
            class_names=config["class_names"],
            **config["datalist_args"],
        )
        assert parts["n_folds"] == 5 and len(parts["train"]) + len(parts["val"]) + len(parts["test"]) == 169
        assert all(item.get("mask") for item in parts["test"])  # every image has its mask, empty or not
        tested |= {os.path.relpath(item["image"], root) for item in parts["test"]}
    assert tested == set(labels)


def test_the_fragment_preset_keeps_every_exudate_region_of_a_real_mask(heimed) -> None:
    from monai.transforms import Compose

    from monai_xai.experiments.heimed_resolution import region_survival
    from monai_xai.transforms import EnsureMaskd, FieldOfViewCropd, LoadImageOrArrayd, fundus_preset

    root, _ = heimed
    item = {"image": str(root / "images/00000003.jpg"), "mask": str(root / "masks/00000003_mask.png")}
    loaded = Compose([LoadImageOrArrayd(keys=["image", "mask"]), EnsureMaskd()])(item)
    source = FieldOfViewCropd(keys=["image"], mask_keys=["mask"])(dict(loaded))["mask"][0].numpy() > 0.5
    args = json.loads(FRAGMENT.read_text())["preset_args"]
    out = fundus_preset(keys=["image"], mask_keys=["mask"], spatial_size=(256, 256), **args)(dict(loaded))
    counts = region_survival(source, out["mask"][0].numpy() > 0.5)
    assert counts["regions"] > 200 and counts["regions_kept"] == counts["regions"]
    assert counts["pixels_kept"] == counts["pixels"]
