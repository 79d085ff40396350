"""Out-of-fold cross-validation splits: every item tested once, each fold with its own stratified validation
part, written by ``make_split --out-of-fold`` and read back by ``dataset_splits`` fold by fold."""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from monai_xai.data import dataset_splits, out_of_fold_indices, out_of_fold_parts, read_split_spec
from monai_xai.data.make_split import main
from monai_xai.errors import InputError

LABELS = [1] * 18 + [0] * 42  # 30 % positives, as HEI-MED's 54 of 169


def test_every_item_is_tested_once_and_validated_apart_from_its_test_fold() -> None:
    tests, vals = out_of_fold_indices(LABELS, list(range(60)), n_folds=5, val_fraction=0.2, seed=3)
    assert sorted(sum(tests, [])) == list(range(60))  # covered once
    for test, val in zip(tests, vals):
        assert 11 <= len(test) <= 13 and not set(test) & set(val)
        assert abs(Counter(LABELS[i] for i in test)[1] - 18 / 5) <= 1  # stratified
        assert abs(len(val) - 0.2 * (60 - len(test))) <= 1
        assert abs(sum(LABELS[i] for i in val) / len(val) - 0.3) < 0.06
    assert (tests, vals) == out_of_fold_indices(LABELS, list(range(60)), 5, 0.2, 3)  # deterministic
    assert tests != out_of_fold_indices(LABELS, list(range(60)), 5, 0.2, 4)[0]
    with pytest.raises(ValueError, match="val_fraction"):
        out_of_fold_indices(LABELS, list(range(60)), 5, 1.0)
    with pytest.raises(ValueError, match="n_folds"):
        out_of_fold_indices(LABELS, list(range(60)), 1)


def test_groups_stay_together_in_test_and_validation_parts() -> None:
    groups = [i // 3 for i in range(60)]  # 20 patients of 3 images
    labels = [1 if g < 6 else 0 for g in groups]
    tests, vals = out_of_fold_indices(labels, groups, n_folds=4, val_fraction=0.25, seed=0)
    for part in (*tests, *vals):
        assert all(Counter(i // 3 for i in part)[i // 3] == 3 for i in part)  # whole patients only


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    """40 tiny distinct PNGs (12 positives) and their labels.csv."""
    root = tmp_path / "data"
    (root / "images").mkdir(parents=True)
    rows = []
    for i in range(40):
        pixels = np.random.default_rng(i).uniform(0, 255, (6, 6)).astype(np.float32)
        image = Image.fromarray(pixels).resize((32, 32), Image.Resampling.BICUBIC).convert("L")
        image.save(root / "images" / f"img{i:02d}.png")
        rows.append({"image": f"images/img{i:02d}.png", "label_id": int(i < 12)})
    with open(root / "labels.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, ["image", "label_id"])
        writer.writeheader()
        writer.writerows(rows)
    return root


def test_command_writes_a_file_that_dataset_splits_reads_fold_by_fold(dataset, tmp_path, capsys) -> None:
    out = tmp_path / "oof.json"
    argv = ["--csv", str(dataset / "labels.csv"), "--out", str(out), "--out-of-fold", "--folds", "4"]
    main([*argv, "--label-col", "label_id", "--class-names", "no", "yes", "--hash-size", "16"])
    assert "test folds 10/10/10/10, validation parts 6/6/6/6" in capsys.readouterr().out
    spec = json.loads(out.read_text())
    assert spec["scheme"] == "out_of_fold" and "test" not in spec and len(spec["val_folds"]) == 4
    assert read_split_spec(out)["seed"] == 0
    tested = []
    for fold in range(4):
        parts = dataset_splits("csv", dataset / "labels.csv", fold=fold, split_file=out, label_col="label_id")
        assert parts["n_folds"] == 4 and (len(parts["train"]), len(parts["val"]), len(parts["test"])) == (
            24,
            6,
            10,
        )
        names = {split: {Path(i["image"]).name for i in parts[split]} for split in ("train", "val", "test")}
        assert not names["train"] & names["val"] and not names["train"] & names["test"]
        assert sum(i["label"] for i in parts["test"]) == 3
        tested += sorted(names["test"])
    assert sorted(tested) == sorted(f"img{i:02d}.png" for i in range(40))
    limited = dataset_splits(
        "csv", dataset / "labels.csv", fold=1, split_file=out, label_col="label_id", limit=4
    )
    assert len(limited["test"]) == 4


def test_bad_out_of_fold_files_name_the_file_and_the_problem(dataset, tmp_path) -> None:
    out = tmp_path / "oof.json"
    main(["--csv", str(dataset / "labels.csv"), "--out", str(out), "--out-of-fold", "--folds", "4",
          "--label-col", "label_id", "--hash-size", "16"])  # fmt: skip
    spec = json.loads(out.read_text())
    items = [{"image": str(dataset / f"images/img{i:02d}.png"), "label": int(i < 12)} for i in range(40)]

    def write(change: dict) -> Path:
        bad = tmp_path / "bad.json"
        bad.write_text(json.dumps({**spec, **change}))
        return bad

    overlap = [spec["test_folds"][0] + spec["test_folds"][1][:1], *spec["test_folds"][1:]]
    with pytest.raises(InputError, match="test folds overlap"):
        out_of_fold_parts(write({"test_folds": overlap}), items, 0, base_dir=dataset)
    with pytest.raises(InputError, match="1 items are in no test fold"):
        short = [spec["test_folds"][0][1:], *spec["test_folds"][1:]]
        out_of_fold_parts(write({"test_folds": short}), items, 0, base_dir=dataset)
    leaky = [spec["test_folds"][0][:2] + spec["val_folds"][0][2:], *spec["val_folds"][1:]]
    with pytest.raises(InputError, match="fold 0's validation part shares files with its test part"):
        out_of_fold_parts(write({"val_folds": leaky}), items, 0, base_dir=dataset)
    with pytest.raises(InputError, match="one of each per fold"):
        out_of_fold_parts(write({"val_folds": spec["val_folds"][:2]}), items, 0, base_dir=dataset)
    with pytest.raises(InputError, match="not in the datalist"):
        out_of_fold_parts(out, items[1:], 0, base_dir=dataset)
    with pytest.raises(ValueError, match="fold 4 out of range"):
        out_of_fold_parts(out, items, 4, base_dir=dataset)
    no_test = tmp_path / "none.json"
    no_test.write_text(json.dumps({"folds": []}))
    with pytest.raises(InputError, match="no 'test' list"):
        read_split_spec(no_test)
