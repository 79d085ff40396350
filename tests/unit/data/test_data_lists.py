"""Datalist builders, splits and the demo phantoms on tiny files written here."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from monai_xai.data import (
    csv_datalist,
    dataset_splits,
    fold_datalists,
    folder_datalist,
    make_phantoms,
    marker_region,
    medmnist_datalist,
    read_split_file,
    select_labels,
    stratified_kfold,
    train_val_test_split,
    write_demo_dataset,
)
from monai_xai.errors import InputError


def _png(path, value=0, size=(8, 8)):
    Image.fromarray(np.full(size, value, dtype=np.uint8)).save(path)
    return path


def test_medmnist_2d_gray_rgb_and_3d(tmp_path):
    path = tmp_path / "toy.npz"
    np.savez(
        path,
        train_images=np.arange(3 * 4 * 4, dtype=np.uint8).reshape(3, 4, 4),
        train_labels=np.array([[0], [1], [2]]),
        val_images=np.zeros((2, 4, 4, 3), np.uint8),
        val_labels=np.array([[1], [0]]),
        test_images=np.zeros((1, 5, 5, 5), np.uint8),
        test_labels=np.array([[1]]),
    )
    train = medmnist_datalist(path, "train")
    assert [i["label"] for i in train] == [0, 1, 2]
    assert train[1]["image"].shape == (1, 4, 4) and train[1]["image"][0, 0, 0] == 16
    assert train[2]["source"] == "toy.npz:train[2]"
    assert medmnist_datalist(path, "val")[0]["image"].shape == (3, 4, 4)
    assert medmnist_datalist(path, "test")[0]["image"].shape == (1, 5, 5, 5)
    with pytest.raises(InputError, match="unknown split"):
        medmnist_datalist(path, "holdout")


def test_medmnist_bad_files(tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(InputError, match="bad.npz: cannot read"):
        medmnist_datalist(bad)
    partial = tmp_path / "partial.npz"
    np.savez(partial, train_images=np.zeros((2, 4, 4), np.uint8))
    with pytest.raises(InputError, match="no 'train_images'/'train_labels'"):
        medmnist_datalist(partial)
    mismatch = tmp_path / "mismatch.npz"
    np.savez(mismatch, train_images=np.zeros((2, 4, 4), np.uint8), train_labels=np.zeros((3, 1)))
    with pytest.raises(InputError, match="2 images but 3 labels"):
        medmnist_datalist(mismatch)


def test_csv_datalist_relative_paths_names_and_errors(tmp_path):
    (tmp_path / "img").mkdir()
    _png(tmp_path / "img" / "a.png")
    _png(tmp_path / "img" / "a_mask.png")
    _png(tmp_path / "img" / "b.png")
    csv_path = tmp_path / "labels.csv"
    csv_path.write_text("image,mask,label,pid\nimg/a.png,img/a_mask.png,malignant,p1\nimg/b.png,,benign,p2\n")
    items = csv_datalist(csv_path, patient_col="pid")
    assert items[0]["label"] == 1 and items[1]["label"] == 0  # sorted names: benign, malignant
    assert items[0]["mask"].endswith("a_mask.png") and "mask" not in items[1]
    assert items[0]["patient"] == "p1"
    items = csv_datalist(csv_path, class_names=["malignant", "benign"])
    assert [i["label"] for i in items] == [0, 1]
    csv_path.write_text("image,label\nimg/missing.png,0\n")
    with pytest.raises(InputError, match="row 2: image file .*missing.png.* does not exist"):
        csv_datalist(csv_path)
    with pytest.raises(InputError, match="missing column 'label_id'"):
        csv_datalist(csv_path, label_col="label_id")


def test_folder_datalist_pairs_masks(tmp_path):
    for cls in ("benign", "malignant"):
        (tmp_path / cls).mkdir()
        _png(tmp_path / cls / f"{cls}_1.png")
    _png(tmp_path / "benign" / "benign_1_mask.png")
    items = folder_datalist(tmp_path)
    assert [(i["label"], "mask" in i) for i in items] == [(0, True), (1, False)]


def _toy_items(n=60, patients=None):
    items = [{"image": f"im{i}.png", "label": i % 3} for i in range(n)]
    if patients:
        for i, item in enumerate(items):
            item["patient"] = f"p{i // patients}"
            item["label"] = (i // patients) % 3
    return items


def test_stratified_kfold_is_deterministic_disjoint_and_balanced():
    items = _toy_items()
    folds = stratified_kfold(items, n_folds=3, seed=1)
    assert folds == stratified_kfold(items, n_folds=3, seed=1)
    assert sorted(sum(folds, [])) == list(range(60))
    for fold in folds:
        counts = np.bincount([items[i]["label"] for i in fold], minlength=3)
        assert counts.tolist() == [7, 7, 6] or counts.max() - counts.min() <= 1
    train, val = fold_datalists(items, folds, 0)
    assert len(train) + len(val) == 60 and not {i["image"] for i in train} & {i["image"] for i in val}


def test_splits_keep_patients_together():
    items = _toy_items(90, patients=3)
    for fold in stratified_kfold(items, n_folds=3):
        others = {items[i]["patient"] for i in range(90)} - {items[i]["patient"] for i in fold}
        assert not {items[i]["patient"] for i in fold} & others
        assert len(fold) % 3 == 0
    train, val, test = train_val_test_split(items, 0.2, 0.2, seed=0)
    sides = [{i["patient"] for i in part} for part in (train, val, test)]
    assert not (sides[0] & sides[1] or sides[0] & sides[2] or sides[1] & sides[2])
    assert len(train) + len(val) + len(test) == 90


def test_read_split_file_maps_paths(tmp_path):
    items = [{"image": str(tmp_path / f"im{i}.png"), "label": i % 2} for i in range(6)]
    spec = {"test": ["im0.png", "im1.png"], "folds": [["im2.png", "im3.png"], ["im4.png", "im5.png"]]}
    (tmp_path / "splits.json").write_text(json.dumps(spec))
    parts = read_split_file(tmp_path / "splits.json", items)
    assert [i["image"][-7:] for i in parts["test"]] == ["im0.png", "im1.png"]
    assert parts["folds"] == [[0, 1], [2, 3]]
    spec["folds"][0].append("im0.png")
    (tmp_path / "splits.json").write_text(json.dumps(spec))
    with pytest.raises(InputError, match="fold 0 shares files with the test set"):
        read_split_file(tmp_path / "splits.json", items)
    (tmp_path / "splits.json").write_text(json.dumps({"test": ["nope.png"]}))
    with pytest.raises(InputError, match="1 listed files are not in the datalist"):
        read_split_file(tmp_path / "splits.json", items)


def test_read_split_file_leaves_excluded_files_out_of_every_part(tmp_path):
    items = [{"image": str(tmp_path / f"im{i}.png"), "label": i % 2} for i in range(6)]
    spec = {"test": ["im0.png"], "folds": [["im2.png"], ["im3.png"]], "excluded": ["im1.png", "im5.png"]}
    (tmp_path / "splits.json").write_text(json.dumps(spec))
    parts = read_split_file(tmp_path / "splits.json", items)
    assert [i["image"][-7:] for i in parts["excluded"]] == ["im1.png", "im5.png"]
    assert [i["image"][-7:] for i in parts["train"]] == ["im2.png", "im3.png", "im4.png"]
    assert parts["folds"] == [[0], [1]]
    for clash, problem in (
        (["im0.png"], "the test set lists excluded files"),
        (["im3.png"], "fold 1 lists excluded"),
    ):
        (tmp_path / "splits.json").write_text(json.dumps({**spec, "excluded": clash}))
        with pytest.raises(InputError, match=problem):
            read_split_file(tmp_path / "splits.json", items)


def test_read_split_file_matches_items_named_relative_to_the_working_directory(tmp_path, monkeypatch):
    data = tmp_path / "data"
    data.mkdir()
    (data / "splits.json").write_text(json.dumps({"test": ["a.png"], "folds": [["b.png"], ["c.png"]]}))
    monkeypatch.chdir(tmp_path)
    items = [{"image": f"data/{name}.png", "label": 0} for name in "abc"]  # as coco_datalist("data/...")
    parts = read_split_file("data/splits.json", items)
    assert parts["test"] == items[:1] and parts["folds"] == [[0], [1]]


def test_select_labels_renumbers():
    items = [{"label": 0}, {"label": 2}, {"label": 1}]
    assert [i["label"] for i in select_labels(items, [1, 2])] == [1, 0]


def test_phantoms_shortcut_and_masks():
    data = make_phantoms(200, size=32, shortcut_agreement=0.9, seed=3)
    assert data.images.shape == (200, 1, 32, 32) and data.images.dtype == np.float32
    assert 0.0 <= data.images.min() and data.images.max() <= 1.0
    assert np.bincount(data.labels).tolist() == [100, 100]
    assert 0.8 < data.marker_agrees.mean() < 0.97
    assert (data.masks.reshape(200, -1).sum(1) > 0).all()
    # the marker (a bright corner block) is present exactly when it agrees with label 1 or lies about label 0
    present = data.images[:, 0, 2:7, 2:7].mean(axis=(1, 2)) > 0.8
    assert np.array_equal(present, data.labels.astype(bool) == data.marker_agrees)
    assert np.array_equal(present, data.has_marker)
    region = marker_region(32)
    assert region.shape == (1, 1, 32, 32) and region[0, 0, 2:7, 2:7].all() and region.sum() == 25
    # by default (as in DecoyMNIST) the marker always tells the truth
    assert make_phantoms(20, size=32).marker_agrees.all()
    again = make_phantoms(200, size=32, shortcut_agreement=0.9, seed=3)
    assert np.array_equal(again.images, data.images)
    vol = make_phantoms(4, size=24, spatial_dims=3)
    assert vol.images.shape == (4, 1, 24, 24, 24)


def test_demo_dataset_round_trips_through_loaders(tmp_path):
    csv_path = write_demo_dataset(tmp_path / "demo", n_train=20, n_val=6, n_test=8, size=32)
    parts = dataset_splits("csv", csv_path)
    assert (len(parts["train"]), len(parts["val"]), len(parts["test"]), parts["n_folds"]) == (20, 6, 8, 1)
    assert all("mask" in item for item in parts["train"])
    mask = np.array(Image.open(parts["train"][0]["mask"]))
    assert set(np.unique(mask)) <= {0, 255} and mask.max() == 255


def test_unknown_dataset_source_names_the_key(tmp_path):
    from monai_xai.data import dataset_splits

    with pytest.raises(InputError, match="dataset_source: unknown dataset source 'csvv'; valid: csv, folder"):
        dataset_splits("csvv", tmp_path / "labels.csv")
