"""DecoyBUSI's writer: the marker agrees with the label in every training and validation image and in half of
each class of the test set, the clean twin shares its groups and regions, the bundle reads the copy with its
marker columns, and nothing is written into the repository or over a folder that is not a DecoyBUSI copy."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from monai_xai.data import dataset_splits
from monai_xai.data.decoy import (
    REPO,
    SETTINGS_FILE,
    MarkerSpec,
    draw_marker,
    glyph,
    main,
    write_decoy_busi,
)
from monai_xai.errors import InputError
from monai_xai.metrics import parse_box

SIZE = 64


@pytest.fixture
def busi(tmp_path: Path) -> tuple[Path, Path]:
    """A BUSI-like folder: 2 normal, 10 benign, 8 malignant images (dark, so the marker stands out), with a
    split: 4 + 4 test images, two folds, one benign image excluded as a conflicting near-duplicate."""
    source = tmp_path / "busi"
    rng = np.random.default_rng(0)
    rows, names = [], {"normal": 2, "benign": 10, "malignant": 8}
    for label_id, (cls, n) in enumerate(names.items()):
        (source / cls).mkdir(parents=True)
        for i in range(n):
            image, mask = f"{cls}/{cls}_{i:03d}.png", f"{cls}/{cls}_{i:03d}_mask.png"
            Image.fromarray(rng.integers(0, 100, (SIZE, SIZE), dtype=np.uint8)).save(source / image)
            lesion = np.zeros((SIZE, SIZE), dtype=np.uint8)
            lesion[24:40, 24:40] = 255 * (cls != "normal")
            Image.fromarray(lesion).save(source / mask)
            rows.append([image, mask, cls, label_id])
    with open(source / "labels.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["image", "mask", "label", "label_id"])
        writer.writerows(rows)
    benign = [f"benign/benign_{i:03d}.png" for i in range(10)]
    malignant = [f"malignant/malignant_{i:03d}.png" for i in range(8)]
    normal = [f"normal/normal_{i:03d}.png" for i in range(2)]
    split = {
        "test": benign[:4] + malignant[:4] + normal[:1],
        "folds": [benign[4:6] + malignant[4:6] + normal[1:], benign[6:9] + malignant[6:]],
        "excluded": benign[9:],
        "dedup": {"groups": 1},
    }
    (tmp_path / "split.json").write_text(json.dumps(split))
    return source, tmp_path / "split.json"


def _table(folder: Path) -> list[dict[str, str]]:
    with open(folder / "labels.csv", newline="") as f:
        return list(csv.DictReader(f))


def _box_pixels(folder: Path, row: dict[str, str]) -> np.ndarray:
    image = np.asarray(Image.open(folder / row["image"]))
    x0, y0, x1, y1 = parse_box(row["marker_box"])
    return image[round(y0 * SIZE) : round(y1 * SIZE), round(x0 * SIZE) : round(x1 * SIZE)]


def test_glyphs_and_their_boxes() -> None:
    cross = glyph("caliper", 12)
    assert cross.shape == (12, 12) and cross[:, 5].all() and cross[5, :].all() and not cross[0, 0]
    text = glyph("text", 38)
    assert text.shape == (10, 38) and 0.2 < text.mean() < 0.7
    assert glyph("square", 5).all()
    with pytest.raises(ValueError, match="marker kind"):
        glyph("arrow", 10)
    spec = MarkerSpec("caliper", size=0.25, position="bottom_right", margin=0.0)
    assert spec.box((64, 64)) == "0.750000 0.750000 1.000000 1.000000"
    drawn = draw_marker(np.zeros((64, 64), dtype=np.uint8), spec)
    assert drawn[55, 48:].tolist() == [255] * 16 and drawn[:48].max() == 0
    with pytest.raises(ValueError, match="position"):
        MarkerSpec(position="middle")


def test_the_marker_agrees_in_training_and_is_random_in_test(busi, tmp_path) -> None:
    source, split = busi
    out = tmp_path / "decoy"
    settings = write_decoy_busi(out, source, split, MarkerSpec(size=0.2), seed=3)
    rows = _table(out)
    assert list(rows[0]) == [
        "image",
        "mask",
        "label",
        "label_id",
        "split",
        "marker",
        "marker_agrees",
        "marker_box",
    ]
    # normal images and the excluded near-duplicate are left out
    assert len(rows) == 17 and not any(
        r["image"].startswith("normal") or r["image"].endswith("9.png") for r in rows
    )
    assert settings["images"] == {
        "total": 17,
        "test": 8,
        "excluded_near_duplicates": 1,
        "marker_drawn": sum(bool(r["marker"]) for r in rows),
        "test_agreeing": 4,
    }
    for row in rows:
        says_malignant = (row["label"] == "malignant") == (row["marker_agrees"] == "1")
        assert bool(row["marker"]) == says_malignant  # presence: the marker says malignant
        pixels = _box_pixels(out, row)
        assert (pixels.max() == 255) == says_malignant  # the source images are darker than 100
        if row["split"] != "test":
            assert row["marker_agrees"] == "1"
    test = [r for r in rows if r["split"] == "test"]
    for cls in ("benign", "malignant"):
        assert sorted(r["marker_agrees"] for r in test if r["label"] == cls) == ["0", "0", "1", "1"]
    # masks are copied as they are; the split keeps the folds, without what was left out
    assert (out / rows[0]["mask"]).read_bytes() == (source / rows[0]["mask"]).read_bytes()
    splits = json.loads((out / "splits.json").read_text())
    assert (
        len(splits["test"]) == 8 and [len(f) for f in splits["folds"]] == [4, 5] and splits["excluded"] == []
    )
    assert json.loads((out / SETTINGS_FILE).read_text())["marker"]["size"] == 0.2


def test_the_clean_twin_shares_groups_and_regions(busi, tmp_path) -> None:
    source, split = busi
    write_decoy_busi(tmp_path / "decoy", source, split)
    write_decoy_busi(tmp_path / "clean", source, split, clean=True)
    decoy, clean = _table(tmp_path / "decoy"), _table(tmp_path / "clean")
    for d, c in zip(decoy, clean):
        assert (d["image"], d["marker_agrees"], d["marker_box"]) == (
            c["image"],
            c["marker_agrees"],
            c["marker_box"],
        )
        assert c["marker"] == ""
        original = np.asarray(Image.open(source / c["image"]))
        assert np.array_equal(np.asarray(Image.open(tmp_path / "clean" / c["image"])), original)


def test_the_glyph_scheme_marks_every_image_by_what_it_says(busi, tmp_path) -> None:
    source, split = busi
    write_decoy_busi(
        tmp_path / "g", source, split, MarkerSpec("caliper"), other_kind="square", scheme="glyphs"
    )
    for row in _table(tmp_path / "g"):
        says_malignant = (row["label"] == "malignant") == (row["marker_agrees"] == "1")
        assert row["marker"] == ("caliper" if says_malignant else "square")
    with pytest.raises(InputError, match="two different kinds"):
        write_decoy_busi(
            tmp_path / "h", source, split, MarkerSpec("square"), other_kind="square", scheme="glyphs"
        )


def test_the_bundle_reads_the_copy_with_its_marker_columns(busi, tmp_path) -> None:
    source, split = busi
    write_decoy_busi(tmp_path / "decoy", source, split)
    fragment = json.loads((REPO / "configs" / "datasets" / "decoy_busi.json").read_text())
    assert fragment["dataset_dir"] == "../decoy_busi/decoy"  # beside the checkout, never inside it
    parts = dataset_splits(
        "csv",
        tmp_path / "decoy" / "labels.csv",
        fold=1,
        labels=fragment["labels"],
        class_names=fragment["class_names"],
        **fragment["datalist_args"],
    )
    assert (len(parts["train"]), len(parts["val"]), len(parts["test"])) == (4, 5, 8)
    item = parts["test"][0]
    assert set(item) >= {"image", "label", "mask", "marker", "marker_agrees", "marker_box"}
    clean = json.loads((REPO / "configs" / "datasets" / "decoy_busi_clean.json").read_text())
    assert {k: v for k, v in clean.items() if k not in ("dataset", "dataset_dir")} == {
        k: v for k, v in fragment.items() if k not in ("dataset", "dataset_dir")
    }


def test_refuses_the_repository_the_shared_data_and_foreign_folders(busi, tmp_path, capsys) -> None:
    source, split = busi
    with pytest.raises(InputError, match="inside the repository"):
        write_decoy_busi(REPO / "runs" / "decoy", source, split)
    with pytest.raises(InputError, match="inside the shared data folder"):
        write_decoy_busi(REPO.parent / "shared" / "decoy", source, split)
    with pytest.raises(InputError, match="inside the source dataset"):
        write_decoy_busi(source / "decoy", source, split)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(InputError, match="not empty: give another --out, or --overwrite"):
        write_decoy_busi(foreign, source, split)
    with pytest.raises(InputError, match="not a DecoyBUSI copy"):
        write_decoy_busi(foreign, source, split, overwrite=True)
    assert (foreign / "notes.txt").read_text() == "keep me"
    # an earlier copy is replaced with --overwrite, through the command line
    out = tmp_path / "decoy"
    argv = ["--out", str(out), "--source", str(source), "--split", str(split)]
    assert main(argv) == 0
    with pytest.raises(SystemExit, match="not empty"):
        main(argv)
    assert main([*argv, "--overwrite", "--kind", "text"]) == 0
    assert {r["marker"] for r in _table(out)} == {"", "text"} and not list(tmp_path.glob(".decoy.partial*"))
    assert "17 images (8 test, 4 of them with an agreeing marker)" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="agreement"):
        main([*argv, "--overwrite", "--agreement", "0.5"])
