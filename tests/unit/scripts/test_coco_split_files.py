"""scripts/make_coco_from_masks.py --split_file: COCO boxes that follow a fixed split, and the CenterNet
configs that read them from another folder than the images' (image_dir) with early stopping on val_mAP."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from monai_xai.data import coco_splits
from monai_xai.errors import InputError

REPO = Path(__file__).resolve().parents[3]
CONFIGS = REPO / "bundles" / "centernet_detection" / "configs"

#: image -> (class, lesion squares as (row, col) corners of 6x6 squares, original height)
IMAGES = {
    "a.png": ("benign", [(4, 4)], 400),
    "b.png": ("malignant", [(2, 2), (20, 20)], 400),
    "c.png": ("normal", [], 400),
    "d.png": ("benign", [(10, 12)], 400),
    "e.png": ("malignant", [(8, 8)], 400),
    "f.png": ("benign", [(3, 20)], 400),
    "g.png": ("normal", [], 150),
}
SPLIT = {"seed": 3, "test": ["a.png", "c.png"], "folds": [["b.png", "d.png"], ["e.png", "g.png"]],
         "excluded": ["f.png"], "dedup": {"groups": 1}}  # fmt: skip


@pytest.fixture
def dataset(tmp_path: Path) -> tuple[Path, Path]:
    """Seven 32x32 images with masks, a labels CSV, and a split that excludes f.png."""
    root = tmp_path / "data"
    root.mkdir()
    rows, rng = [], np.random.default_rng(0)
    for name, (label, squares, height) in IMAGES.items():
        Image.fromarray(rng.integers(0, 256, (32, 32), dtype=np.uint8)).save(root / name)
        mask = np.zeros((32, 32), np.uint8)
        for r, c in squares:
            mask[r : r + 6, c : c + 6] = 255
        Image.fromarray(mask).save(root / name.replace(".png", "_mask.png"))
        rows.append({"image": name, "mask": name.replace(".png", "_mask.png"), "label": label,
                     "orig_height": height, "orig_width": 400})  # fmt: skip
    with open(root / "labels.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    split = tmp_path / "split.json"
    split.write_text(json.dumps(SPLIT))
    return root, split


def _convert(load_script, root: Path, split: Path, out: Path, *extra: str) -> tuple[dict, dict, dict]:
    load_script("make_coco_from_masks.py").main([
        "--csv", str(root / "labels.csv"), "--classes", "benign", "malignant", "--dedup_distance", "-1",
        "--min_area", "4", "--split_file", str(split), "--out", str(out), *extra,
    ])  # fmt: skip
    return tuple(json.loads(p.read_text()) for p in (out, out.with_suffix(".splits.json"),
                                                     out.with_suffix(".report.json")))  # fmt: skip


def test_boxes_follow_the_split(dataset, tmp_path, load_script) -> None:
    root, split = dataset
    out = tmp_path / "run" / "data" / "boxes_coco.json"
    coco, written, report = _convert(load_script, root, split, out)
    assert [i["file_name"] for i in coco["images"]] == ["a.png", "b.png", "c.png", "d.png", "e.png", "g.png"]
    boxes = {}
    for ann in coco["annotations"]:
        boxes.setdefault(coco["images"][ann["image_id"] - 1]["file_name"], []).append(ann["bbox"])
    assert boxes == {"a.png": [[4, 4, 6, 6]], "b.png": [[2, 2, 6, 6], [20, 20, 6, 6]],
                     "d.png": [[12, 10, 6, 6]], "e.png": [[8, 8, 6, 6]]}  # fmt: skip
    assert report["left_out_by_split"] == ["f.png"]
    assert written["test"] == SPLIT["test"] and written["folds"] == SPLIT["folds"]
    assert written["excluded"] == [] and written["dropped_by_cleaning"] == []
    assert written["source"] == split.as_posix() and written["seed"] == 3
    assert written["dedup"] == {"groups": 1}  # the source's report travels with it

    parts = coco_splits(out, fold=0, split_file=out.with_suffix(".splits.json"), image_dir=root)
    names = {part: [Path(i["image"]).name for i in parts[part]] for part in ("train", "val", "test")}
    assert names == {"train": ["e.png", "g.png"], "val": ["b.png", "d.png"], "test": ["a.png", "c.png"]}
    assert parts["val"][0]["boxes"].shape == (2, 4) and parts["test"][1]["boxes"].shape == (0, 4)
    assert parts["excluded"] == []


def test_cleaning_drops_from_the_written_split(dataset, tmp_path, load_script) -> None:
    root, split = dataset
    out = tmp_path / "boxes.json"
    coco, written, report = _convert(
        load_script, root, split, out, "--size_cols", "orig_height", "orig_width", "--min_size", "200", "200"
    )
    assert "g.png" not in [i["file_name"] for i in coco["images"]] and len(coco["images"]) == 5
    assert written["folds"] == [["b.png", "d.png"], ["e.png"]] and written["dropped_by_cleaning"] == ["g.png"]
    assert report["too_small"] == [str(root / "g.png")]
    parts = coco_splits(out, fold=1, split_file=out.with_suffix(".splits.json"), image_dir=root)
    assert [Path(i["image"]).name for i in parts["val"]] == ["e.png"] and len(parts["train"]) == 2


def test_a_split_of_other_images_is_refused(dataset, tmp_path, load_script) -> None:
    root, _ = dataset
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"test": ["a.png", "z.png"], "folds": [["b.png"]]}))
    with pytest.raises(InputError, match=r"other.json.*1 listed images are not in the CSV, e.g. \['z.png'\]"):
        _convert(load_script, root, other, tmp_path / "boxes.json")
    other.write_text(json.dumps({"test": ["a.png"]}))
    with pytest.raises(InputError, match="split file has no 'folds'"):
        _convert(load_script, root, other, tmp_path / "boxes.json")


def _parser(config: str = "train", **overrides):
    from monai.bundle import ConfigParser

    parser = ConfigParser()
    parser.read_config([str(CONFIGS / f"{config}.json")])
    parser.update(overrides)
    return parser


def test_configs_read_the_images_beside_the_csv_and_stop_early(dataset, tmp_path, load_script) -> None:
    from monai_xai.handlers import ValidationEarlyStopping

    root, split = dataset
    out = tmp_path / "run" / "boxes_coco.json"
    _convert(load_script, root, split, out)
    overrides = {
        "coco_file": str(out), "image_dir": str(root), "split_file": str(out.with_suffix(".splits.json")),
        "output_dir": str(tmp_path / "arm"), "spatial_size": [32, 32], "num_workers": 0,
    }  # fmt: skip
    for config in ("train", "pretrain_simsiam"):
        parts = _parser(config, **overrides).get_parsed_content("dataset_splits")
        assert [Path(i["image"]).name for i in parts["train"]] == ["e.png", "g.png"], config
        assert parts["train"][0]["image"] == str(root / "e.png")

    assert _parser(**overrides).get_parsed_content("early_stop_patience") is None
    handlers = _parser(**overrides, early_stop_patience=3).get_parsed_content("train#handlers")
    stopping = [h for h in handlers if isinstance(h, ValidationEarlyStopping)]
    assert len(stopping) == 1 and stopping[0].patience == 3 and stopping[0].metric == "val_mAP"
    without = _parser(**overrides).get_parsed_content("train#handlers")
    assert not any(isinstance(h, ValidationEarlyStopping) for h in without)
    assert len(without) == len(handlers) - 1
