"""Near-duplicate hashing and the splits that keep near-duplicates (and patients) together, on tiny PNGs."""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from monai_xai.data import (
    csv_datalist,
    dataset_splits,
    dhash,
    drop_near_duplicates,
    find_near_duplicates,
    group_near_duplicates,
    hamming_distance,
    phash,
    read_split_file,
)
from monai_xai.data.make_split import main, write_split_file
from monai_xai.errors import InputError

# --- hashing ----------------------------------------------------------------------------------------------


def _smooth_image(seed: int, size: int = 96, coarse: int = 6) -> np.ndarray:
    """Random structure at a coarse scale, upsampled: a stand-in for anatomy, distinct for each seed."""
    grid = np.random.default_rng(seed).uniform(0, 255, (coarse, coarse)).astype(np.float32)
    return np.asarray(Image.fromarray(grid).resize((size, size), Image.Resampling.BICUBIC)).clip(0, 255)


@pytest.mark.parametrize("method", ["phash", "dhash"])
def test_near_duplicates_grouped_and_distinct_images_not(method):
    rng = np.random.default_rng(100)
    originals = [_smooth_image(s) for s in range(6)]
    noisy = originals[1] + rng.normal(0, 4, originals[1].shape) + 12  # noise and a brightness shift
    brighter = originals[4] * 1.1
    images = [*originals, noisy, torch.from_numpy(brighter)[None]]  # a channel-first tensor too
    groups = find_near_duplicates(images, method=method, progress=False)
    assert groups == [[1, 6], [4, 7]]


def test_hashes_and_drop_near_duplicates(tmp_path):
    img = _smooth_image(7)
    path = tmp_path / "a.png"
    Image.fromarray(img.clip(0, 255).astype(np.uint8)).save(path)
    assert phash(img).shape == dhash(img).shape == (64,)
    assert hamming_distance(phash(path), phash(img)) <= 2
    datalist = [{"image": str(path)}, {"image": _smooth_image(8)}, {"image": img + 5}]
    kept, report = drop_near_duplicates(datalist, progress=False)
    assert kept == datalist[:2]
    assert report == [{"kept": 0, "dropped": [2], "sources": [str(path), "ndarray"]}]
    with pytest.raises(ValueError, match="dhash, phash"):
        find_near_duplicates(datalist, method="ahash")


# --- a dataset with near-duplicates -----------------------------------------------------------------------

SIZE = 64
N_GROUPS = 15  # near-duplicate groups of 2 to 4 images with one label
N_SINGLE = 30  # images without a duplicate


def _save(image: Image.Image, path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
    return path.name


def _variants(seed: int) -> list[Image.Image]:
    """An image, an exact copy, a copy cropped by one pixel all round, and one with a small annotation."""
    original = Image.fromarray(_smooth_image(seed, SIZE, coarse=5).astype(np.uint8))
    annotated = original.copy()
    ImageDraw.Draw(annotated).line((38, 10, 44, 16), fill=255, width=1)
    return [original, original.copy(), original.crop((1, 1, SIZE - 1, SIZE - 1)), annotated]


def _write_dataset(root: Path, conflict: bool = True) -> tuple[Path, list[list[str]]]:
    """``labels.csv`` (image, label_id) and the known near-duplicate groups, as image names."""
    rows, groups = [], []
    for g in range(N_GROUPS):
        members = _variants(g)[: 2 + g % 3]
        names = [_save(img, root / f"g{g:02d}_{k}.png") for k, img in enumerate(members)]
        rows += [(name, g % 3) for name in names]
        groups.append(names)
    for s in range(N_SINGLE):
        rows.append((_save(_variants(100 + s)[0], root / f"s{s:02d}.png"), s % 3))
    if conflict:  # the same image saved twice, labelled 0 once and 2 once
        names = [_save(img, root / f"c_{k}.png") for k, img in enumerate(_variants(200)[:2])]
        rows += [(names[0], 0), (names[1], 2)]
        groups.append(names)
    csv_path = root / "labels.csv"
    with open(csv_path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["image", "label_id"])
        writer.writerows(rows)
    return csv_path, groups


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> tuple[Path, list[list[str]]]:
    csv_path, groups = _write_dataset(tmp_path_factory.mktemp("dups"))
    # the construction itself: members of a group within 5 bits, other images much further apart
    hashes = {p.name: dhash(p) for p in csv_path.parent.glob("*.png")}
    group_of = {name: g for g, names in enumerate(groups) for name in names}
    for a in hashes:
        for b in hashes:
            if a < b:
                together = a in group_of and group_of[a] == group_of.get(b)
                assert (hamming_distance(hashes[a], hashes[b]) <= 5) == together, (a, b)
    return csv_path, groups


def _part_of(spec: dict) -> dict[str, str]:
    part = {p: "test" for p in spec["test"]}
    for k, fold in enumerate(spec["folds"]):
        part.update({p: f"fold{k}" for p in fold})
    return part


def _sides(parts: dict) -> dict[str, str]:
    """Image name -> the part of a ``dataset_splits`` result it is in."""
    return {Path(item["image"]).name: split for split in ("train", "val", "test") for item in parts[split]}


def test_no_near_duplicate_group_crosses_test_or_folds(dataset, tmp_path):
    csv_path, groups = dataset
    spec = write_split_file(csv_path, tmp_path / "split.json", seed=3, label_col="label_id", progress=False)
    part = _part_of(spec)
    for names in groups[:-1]:
        assert len({part[n] for n in names}) == 1, names
    n_kept = len(part)
    assert abs(len(spec["test"]) / n_kept - 0.2) < 0.05 and len(spec["folds"]) == 3
    # the same groups under dataset_splits, for every fold
    for fold in range(3):
        sides = _sides(dataset_splits("csv", csv_path, fold=fold, seed=3, dedup=True, label_col="label_id"))
        for names in groups[:-1]:
            assert len({sides[n] for n in names}) == 1, (fold, names)
    # the data set is hard enough: a split blind to duplicates separates some group
    sides = _sides(dataset_splits("csv", csv_path, seed=3, label_col="label_id"))
    assert any(len({sides[n] for n in names}) > 1 for names in groups[:-1])


def test_conflicting_labels_are_excluded_by_default_and_kept_on_request(dataset, tmp_path, caplog):
    csv_path, groups = dataset
    conflict = groups[-1]
    with caplog.at_level(logging.WARNING, logger="monai_xai.data.dedup"):
        spec = write_split_file(csv_path, tmp_path / "split.json", label_col="label_id", progress=False)
    assert spec["excluded"] == conflict and spec["dedup"]["conflicting_groups"] == [conflict]
    assert not set(conflict) & set(_part_of(spec))
    assert all(str(csv_path.parent / name) in caplog.text for name in conflict)
    parts = dataset_splits("csv", csv_path, dedup=True, label_col="label_id")
    assert [Path(item["image"]).name for item in parts["excluded"]] == conflict
    assert not set(conflict) & set(_sides(parts))

    kept = write_split_file(
        csv_path, tmp_path / "kept.json", label_col="label_id", keep_conflicting=True, progress=False
    )
    assert kept["excluded"] == [] and kept["dedup"]["conflicting_groups"] == [conflict]
    assert len({_part_of(kept)[name] for name in conflict}) == 1
    parts = dataset_splits("csv", csv_path, dedup={"keep_conflicting": True}, label_col="label_id")
    assert parts["excluded"] == [] and len({_sides(parts)[name] for name in conflict}) == 1


def test_patients_and_near_duplicates_combine(tmp_path):
    """Image a shares a patient with b, b is a near-duplicate of c: a, b and c go to one side."""
    rows = []
    for t in range(8):
        a, b = _variants(300 + t)[0], _variants(400 + t)
        names = [_save(img, tmp_path / f"t{t}_{k}.png") for k, img in enumerate([a, b[0], b[2]])]
        rows += [(names[0], t % 2, f"p{t}"), (names[1], t % 2, f"p{t}"), (names[2], t % 2, "")]
    for s in range(24):
        rows.append((_save(_variants(500 + s)[0], tmp_path / f"s{s}.png"), s % 2, f"q{s}"))
    csv_path = tmp_path / "labels.csv"
    with open(csv_path, "w", newline="") as f:
        csv.writer(f).writerows([("image", "label", "patient"), *rows])
    items = csv_datalist(csv_path, patient_col="patient")
    found = group_near_duplicates(items, progress=False)
    assert found.duplicates == [[3 * t + 1, 3 * t + 2] for t in range(8)]
    for t in range(8):
        assert found.ids[3 * t] == found.ids[3 * t + 1] == found.ids[3 * t + 2]
    assert len(set(found.ids)) == 8 + 24
    spec = write_split_file(csv_path, tmp_path / "split.json", patient_col="patient", progress=False)
    part = _part_of(spec)
    for t in range(8):
        assert len({part[f"t{t}_{k}.png"] for k in range(3)}) == 1, t
    for fold in range(3):
        sides = _sides(dataset_splits("csv", csv_path, fold=fold, dedup=True, patient_col="patient"))
        for t in range(8):
            assert len({sides[f"t{t}_{k}.png"] for k in range(3)}) == 1, (fold, t)


def test_command_writes_a_split_file_that_read_split_file_and_dataset_splits_read(dataset, tmp_path, capsys):
    csv_path, groups = dataset
    out = tmp_path / "elsewhere" / "split.json"  # not beside the CSV: paths stay relative to the CSV
    args = ["--csv", str(csv_path), "--out", str(out), "--seed", "5", "--label-col", "label_id"]
    spec = main([*args, "--folds", "4", "--max-distance", "5"])
    line = capsys.readouterr().out.strip()
    n_items = N_GROUPS * 3 + N_SINGLE + 2
    assert line.startswith(f"{out}: {n_items} items, {len(groups)} near-duplicate groups, 2 excluded")
    assert json.loads(out.read_text()) == spec and not list(out.parent.glob(".*tmp"))
    assert spec["seed"] == 5 and spec["dedup"]["hash"] == "dhash" and spec["dedup"]["max_distance"] == 5
    assert all(not Path(p).is_absolute() for p in spec["test"])

    items = csv_datalist(csv_path, label_col="label_id")
    read = read_split_file(out, items, base_dir=csv_path.parent)
    assert [Path(i["image"]).name for i in read["test"]] == spec["test"]
    assert [Path(i["image"]).name for i in read["excluded"]] == groups[-1]
    assert len(read["folds"]) == 4 and len(read["train"]) == n_items - 2 - len(spec["test"])
    assert [[Path(read["train"][j]["image"]).name for j in fold] for fold in read["folds"]] == spec["folds"]

    parts = dataset_splits("csv", csv_path, fold=1, split_file=out, label_col="label_id")
    assert [Path(i["image"]).name for i in parts["val"]] == spec["folds"][1]
    assert parts["n_folds"] == 4 and len(parts["excluded"]) == 2
    # drawn at run time with the same seed and options, the split is the same
    drawn = dataset_splits("csv", csv_path, fold=1, seed=5, n_folds=4, dedup=True, label_col="label_id")
    assert [i["image"] for i in drawn["val"]] == [i["image"] for i in parts["val"]]
    assert [i["image"] for i in drawn["test"]] == [i["image"] for i in parts["test"]]


def test_bad_input_names_the_file_and_the_problem(dataset, tmp_path, capsys):
    csv_path, _ = dataset
    missing = tmp_path / "nowhere" / "labels.csv"
    with pytest.raises(InputError, match="CSV file not found") as info:
        write_split_file(missing, tmp_path / "split.json")
    assert info.value.path == str(missing)
    with pytest.raises(SystemExit, match=f"{missing}: CSV file not found"):
        main(["--csv", str(missing), "--out", str(tmp_path / "split.json")])
    with pytest.raises(InputError, match="missing column 'label'"):
        write_split_file(csv_path, tmp_path / "split.json")  # the BUSI-like CSV has label_id
    with pytest.raises(InputError, match="missing column 'patient_id'"):
        write_split_file(csv_path, tmp_path / "split.json", label_col="label_id", patient_col="patient_id")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "bad.png").write_bytes(b"not a png")
    _save(_variants(1)[0], broken / "good.png")
    (broken / "labels.csv").write_text("image,label\ngood.png,0\nbad.png,1\n")
    with pytest.raises(InputError, match="cannot be read as an image") as info:
        write_split_file(broken / "labels.csv", tmp_path / "split.json", progress=False)
    assert info.value.path == str(broken / "bad.png")
    assert not (tmp_path / "split.json").exists()


def test_dedup_draws_its_own_split_and_refuses_a_split_file(dataset, tmp_path):
    csv_path, _ = dataset
    with pytest.raises(ValueError, match="dedup draws its own split"):
        dataset_splits("csv", csv_path, split_file=tmp_path / "split.json", dedup=True, label_col="label_id")
    with pytest.raises(ValueError, match="does not apply to MedMNIST"):
        dataset_splits("medmnist", tmp_path / "x.npz", dedup=True)
    # a splits.json beside the CSV is what split_file="auto" reads, unless dedup asks for a drawn split
    spec = write_split_file(
        csv_path, csv_path.parent / "splits.json", label_col="label_id", seed=1, progress=False
    )
    try:
        auto = dataset_splits("csv", csv_path, seed=2, label_col="label_id")
        drawn = dataset_splits("csv", csv_path, seed=2, dedup=True, label_col="label_id")
    finally:
        (csv_path.parent / "splits.json").unlink()
    assert [Path(i["image"]).name for i in auto["test"]] == spec["test"]
    assert [Path(i["image"]).name for i in drawn["test"]] != spec["test"]
