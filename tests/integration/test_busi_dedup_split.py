"""The committed near-duplicate-aware BUSI split (configs/datasets/busi_splits_dedup.json) on the real images.

BUSI holds the same scan more than once; a copy on each side of a split inflates test figures. The split must
keep every pair of near-identical images (8x8 difference hash within 5 bits) in one part, whichever common
dhash implementation judges it, and the dataset fragments that use it must read it from the repository root.
"""

from __future__ import annotations

import csv
import json
import os
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from monai_xai.data import dataset_splits, dhash

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
SPLIT = REPO / "configs" / "datasets" / "busi_splits_dedup.json"


@pytest.fixture(scope="module")
def busi(shared_data) -> tuple[Path, list[dict[str, str]], dict]:
    root = shared_data / "busi_256"
    if not (root / "labels.csv").is_file():
        pytest.skip(f"BUSI not found at {root}")
    with open(root / "labels.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    return root, rows, json.loads(SPLIT.read_text())


def _thumbnail_dhash(path: Path) -> np.ndarray:
    """An independent dhash: 8-bit grayscale, bilinear 9x8 thumbnail (as common hashing libraries do)."""
    with Image.open(path) as img:
        small = np.asarray(img.convert("L").resize((9, 8), Image.Resampling.BILINEAR), dtype=np.int16)
    return (small[:, 1:] > small[:, :-1]).ravel()


def test_split_covers_busi_once_with_a_fifth_stratified_test_set(busi):
    _, rows, spec = busi
    listed = spec["test"] + sum(spec["folds"], []) + spec["excluded"]
    assert sorted(listed) == sorted(r["image"] for r in rows)  # every image exactly once
    assert len(spec["folds"]) == 3 and spec["dedup"]["hash"] == "dhash"
    kept = len(listed) - len(spec["excluded"])
    assert 0.18 <= len(spec["test"]) / kept <= 0.22
    label = {r["image"]: r["label"] for r in rows}
    overall = Counter(label[p] for p in listed if p not in spec["excluded"])
    for part in (spec["test"], *spec["folds"]):
        counts = Counter(label[p] for p in part)
        for name, n in overall.items():
            assert abs(counts[name] / len(part) - n / kept) < 0.03, (name, counts)
    # the excluded images are the near-duplicate groups labelled twice
    assert sorted(sum(spec["dedup"]["conflicting_groups"], [])) == sorted(spec["excluded"])
    for group in spec["dedup"]["conflicting_groups"]:
        assert len({label[p] for p in group}) > 1


@pytest.mark.parametrize("hash_fn", [dhash, _thumbnail_dhash], ids=["project_dhash", "bilinear_dhash"])
def test_no_near_duplicate_pair_across_parts(busi, hash_fn):
    root, rows, spec = busi
    part = {p: "test" for p in spec["test"]}
    for k, fold in enumerate(spec["folds"]):
        part.update({p: f"fold{k}" for p in fold})
    paths = sorted(part)
    bits = np.stack([hash_fn(root / p) for p in paths]).astype(np.int32)
    distance = (bits[:, None, :] != bits[None, :, :]).sum(-1)
    close = np.argwhere(np.triu(distance <= 5, k=1))
    assert len(close) > 100  # BUSI's duplicates are there to be found
    across = [(paths[i], paths[j]) for i, j in close if part[paths[i]] != part[paths[j]]]
    assert across == []


@pytest.mark.parametrize(("fragment", "n_classes"), [("busi_dedup.json", 3), ("busi_binary_dedup.json", 2)])
def test_dataset_fragments_read_the_split_from_the_repository_root(busi, monkeypatch, fragment, n_classes):
    root, _, spec = busi
    config = json.loads((REPO / "configs" / "datasets" / fragment).read_text())
    assert config["datalist_args"]["split_file"] == os.path.relpath(SPLIT, REPO)
    monkeypatch.chdir(REPO)
    parts = dataset_splits(
        config["dataset_source"],
        Path(config["dataset_dir"]) / "labels.csv",
        fold=2,
        labels=config["labels"],
        **config["datalist_args"],
    )
    names = {split: [os.path.relpath(i["image"], root) for i in parts[split]] for split in ("val", "test")}
    if n_classes == 3:
        assert names == {"val": spec["folds"][2], "test": spec["test"]}
    assert parts["n_folds"] == 3 and {i["label"] for i in parts["train"]} == set(range(n_classes))
    assert not {i["image"] for i in parts["excluded"]} & {i["image"] for i in parts["train"]}
