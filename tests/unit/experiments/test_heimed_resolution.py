"""monai_xai.experiments.heimed_resolution: exudate survival per size on hand-made and synthetic masks, the
experiment's estimated wall time from epoch times, the size chosen from it, and its renderer."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from monai_xai.errors import InputError
from monai_xai.experiments import heimed_resolution as hr


def test_region_survival_counts_kept_merged_and_resolvable_regions() -> None:
    source = np.zeros((16, 16), bool)
    source[1, 1] = True  # alone
    source[8, 8] = source[8, 10] = True  # two regions one pixel apart: merged at half size
    source[12:16, 0:8] = True  # large
    half = source.reshape(8, 2, 8, 2).any(axis=(1, 3))  # max-pooled
    counts = hr.region_survival(source, half)
    assert (counts["regions"], counts["regions_kept"], counts["regions_apart"]) == (4, 4, 2)
    assert counts["pixels"] == counts["pixels_kept"] == 35
    assert counts["regions_at_least_image"] == 1  # only the large one fills a half-size pixel
    sampled = source[1::2, 1::2]  # nearest at half size: samples odd rows and columns
    lost = hr.region_survival(source, sampled)
    assert lost["regions_kept"] == 2 and lost["pixels_kept"] < lost["pixels"]


def _dataset(tmp_path: Path) -> Path:
    """Two photographs with a field of view and a few exudates, one without; their CSV and fragment."""
    root = tmp_path / "heimed"
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    yy, xx = np.mgrid[:90, :100]
    disc = (yy - 45) ** 2 + (xx - 50) ** 2 < 42**2
    rows = []
    for i, spots in enumerate([[(30, 40), (31, 42), (60, 70)], [(45, 20)], []]):
        image = np.where(disc[..., None], 90, 0).astype(np.uint8).repeat(3, axis=2)
        mask = np.zeros((90, 100), np.uint8)
        for y, x in spots:
            image[y, x] = (250, 240, 120)
            mask[y, x] = 255
        Image.fromarray(image).save(root / "images" / f"{i}.png")
        Image.fromarray(mask).save(root / "masks" / f"{i}_mask.png")
        rows.append({"image": f"images/{i}.png", "mask": f"masks/{i}_mask.png", "label_id": int(bool(spots))})
    with open(root / "labels.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, ["image", "mask", "label_id"])
        writer.writeheader()
        writer.writerows(rows)
    fragment = json.loads(hr.DATASET.read_text())
    fragment["dataset_dir"] = str(root)
    path = tmp_path / "fragment.json"
    path.write_text(json.dumps(fragment))
    return path


def test_survival_through_the_fragment_preset_keeps_every_region(tmp_path) -> None:
    found = hr.survival(_dataset(tmp_path), sizes=(20, 40))
    assert found["images"] == 2 and found["regions"] == 4 and found["pixels"] == 4
    chosen, nearest = found["sizes"]["20"]["chosen"], found["sizes"]["20"]["nearest"]
    assert chosen["region_share"] == chosen["pixel_share"] == 1.0 and chosen["area_growth"] >= 1.0
    assert nearest["pixel_share"] < 1.0  # sampling at a fifth of the size misses single pixels
    assert found["preset_args"]["mask_resize"] == "max"
    with pytest.raises(InputError, match="dataset fragment not found"):
        hr.survival(tmp_path / "missing.json")


def _timing(seconds: float) -> dict:
    return {"seconds": seconds, "train_images": 108, "val_images": 27, "test_images": 34, "device": "cpu"}


def test_estimate_adds_training_correction_and_deletion_insertion() -> None:
    per_arm = {arm: _timing(10.0) for arm in ("baseline", "abn", "abn_gated")} | {"multiscale": _timing(20.0)}
    found = hr.estimate(per_arm)
    plan = hr.PLAN
    training = plan["folds"] * plan["max_epochs"] * (3 * 10.0 + 20.0) / 3600
    assert found["training_hours"] == pytest.approx(training)
    fine_tunes = plan["folds"] * plan["seeds"] * plan["modes"] * plan["strategies"] * plan["fractions"]
    assert found["correction_hours"] == pytest.approx(fine_tunes * plan["ft_epochs"] * 20.0 / 3600)
    assert found["total_hours"] > found["training_hours"] + found["correction_hours"]
    assert hr.estimate({}) == {}
    estimates = {"256": {"total_hours": 10.0}, "384": {"total_hours": 30.0}, "512": {"total_hours": 90.0}}
    assert hr.choose_size(estimates, 48) == 384 and hr.choose_size(estimates, 5) is None


def test_main_keeps_earlier_timings_estimates_and_renders(tmp_path, monkeypatch) -> None:
    fragment = _dataset(tmp_path)
    timed = []

    def fake_epoch(arm, size, dataset, epochs, batch_size, workdir, extra):
        timed.append((arm, size, extra))
        return _timing(size / 10)

    monkeypatch.setattr(hr, "epoch_seconds", fake_epoch)
    out = tmp_path / "r.json"
    base = ["run", "--dataset", str(fragment), "--out", str(out), "--budget_hours", "6"]
    assert (
        hr.main([*base, "--sizes", "20", "40", "--timing", "--arms", "multiscale", "--limit", "8"]) == 0
    )  # a bundle override
    assert timed == [("multiscale", 20, {"limit": 8}), ("multiscale", 40, {"limit": 8})]
    assert hr.main([*base, "--sizes", "20"]) == 0  # survival again: the timings stay
    report = json.loads(out.read_text())
    assert set(report["epoch_seconds"]) == {"20", "40"} and report["size_within_budget"] == 20
    table = hr.render(report)
    assert table.startswith("| size | pixels kept") and "| 20 px | 100.0 %" in table
    assert "multiscale epoch" in table and "Chosen: 20 px" in table
    docs = tmp_path / "bundles" / "x" / "docs" / "r.json"
    with pytest.raises(InputError, match="only with --publish"):
        hr.main(["run", "--dataset", str(fragment), "--out", str(docs)])
