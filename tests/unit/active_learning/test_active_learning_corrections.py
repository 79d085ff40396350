"""Active-learning strategies, fine-tuning datalists with corrected maps, and the candidates handler."""

from __future__ import annotations

import csv

import nibabel as nib
import numpy as np
import pytest
import torch
from ignite.engine import Engine
from PIL import Image

from monai_xai.active_learning import STRATEGIES, SampleRecords, get_strategy
from monai_xai.data import correction_datalist, item_id
from monai_xai.errors import InputError
from monai_xai.handlers import CorrectionCandidatesHandler, save_map


@pytest.fixture
def records() -> SampleRecords:
    return SampleRecords(
        ids=["a", "b", "c", "d"],
        probs=np.array([[0.9, 0.1], [0.55, 0.45], [0.2, 0.8], [0.5, 0.5]]),
        labels=np.array([0, 1, 1, 0]),
        map_error=np.array([0.1, np.nan, 0.4, 0.2]),
    )


def test_lowest_confidence_ranks_uncertain_first(records: SampleRecords) -> None:
    strategy = get_strategy("lowest_confidence")
    assert [records.ids[i] for i in strategy.rank(records)] == ["d", "b", "c", "a"]
    assert strategy.select(records, 0.5) == ["d", "b"]
    assert strategy.select(records, 0.1) == ["d"]  # at least one sample
    assert strategy.select(records, 1.0) == ["d", "b", "c", "a"]


def test_largest_map_error_puts_samples_without_reference_last(records: SampleRecords) -> None:
    assert get_strategy("largest_map_error").select(records, 1.0) == ["c", "d", "a", "b"]
    no_reference = SampleRecords(ids=["x"], probs=np.array([[0.5, 0.5]]), map_error=np.array([np.nan]))
    with pytest.raises(ValueError, match="needs map errors"):
        get_strategy("largest_map_error").rank(no_reference)


def test_random_selection_is_seeded_and_nested(records: SampleRecords) -> None:
    first = get_strategy("random", seed=3)
    assert first.select(records, 1.0) == get_strategy("random", seed=3).select(records, 1.0)
    assert sorted(first.select(records, 1.0)) == ["a", "b", "c", "d"]
    assert first.select(records, 0.5) == first.select(records, 1.0)[:2]


def test_bad_strategy_fraction_and_records() -> None:
    assert set(STRATEGIES) == {"lowest_confidence", "largest_map_error", "random"}
    with pytest.raises(ValueError, match="unknown strategy 'entropy'"):
        get_strategy("entropy")
    records = SampleRecords(ids=["a"], probs=[[1.0, 0.0]])
    with pytest.raises(ValueError, match="fraction must lie in"):
        get_strategy("random").select(records, 0.0)
    with pytest.raises(ValueError, match="probs must have shape"):
        SampleRecords(ids=["a", "b"], probs=[[1.0, 0.0]])


def test_records_round_trip_through_csv(tmp_path, records: SampleRecords) -> None:
    path = tmp_path / "records.csv"
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["source", "label", "pred", "prob_benign", "prob_malignant", "map_mse"])
        for i, p, lab, e in zip(records.ids, records.probs, records.labels, records.map_error):
            writer.writerow([i, lab, int(p.argmax()), p[0], p[1], "" if np.isnan(e) else e])
    read = SampleRecords.from_csv(path)
    assert read.ids == records.ids and np.allclose(read.probs, records.probs)
    np.testing.assert_allclose(read.map_error, records.map_error)
    with pytest.raises(InputError, match="missing.csv: cannot read records"):
        SampleRecords.from_csv(tmp_path / "missing.csv")
    (tmp_path / "bad.csv").write_text("image,label\nx.png,1\n")
    with pytest.raises(InputError, match="bad.csv: expected a CSV with a 'source' column"):
        SampleRecords.from_csv(tmp_path / "bad.csv")


def test_correction_datalist_uses_corrected_maps_of_the_selection_only() -> None:
    datalist = [
        {"image": "a.png", "label": 0, "mask": "a_mask.png", "corrected_map": "a_fix.png"},
        {"image": "b.png", "label": 1, "mask": "b_mask.png"},
        {"image": "c.png", "label": 1, "mask": "c_mask.png", "corrected_map": "c_fix.png"},
    ]
    result = correction_datalist(datalist, selected=["a.png", "b.png"])
    assert [item.get("mask") for item in result.items] == ["a_fix.png", None, None]
    assert result.n_with_map == 1 and result.n_selected_without_map == 1
    assert all("corrected_map" not in item for item in result.items)
    stand_in = correction_datalist(datalist, source="mask")
    assert [item["mask"] for item in stand_in.items] == ["a_mask.png", "b_mask.png", "c_mask.png"]
    assert datalist[0]["mask"] == "a_mask.png"  # the input is not modified
    assert item_id({"image": "x.png", "source": "medmnist:train[3]"}) == "medmnist:train[3]"
    with pytest.raises(ValueError, match="1 selected ids are not in the datalist, e.g. 'z.png'"):
        correction_datalist(datalist, selected=["z.png"])


def test_save_map_writes_png_and_nifti(tmp_path) -> None:
    png = save_map(torch.tensor([[[0.0, 0.5], [1.0, 2.0]]]), tmp_path / "m2d")
    assert png.name == "m2d.png"
    assert np.asarray(Image.open(png)).tolist() == [[0, 128], [255, 255]]
    nii = save_map(torch.full((1, 2, 2, 2), 0.25), tmp_path / "sub" / "m3d")
    assert nii.name == "m3d.nii.gz" and np.allclose(nib.load(nii).get_fdata(), 0.25)
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["m2d.png", "m3d.nii.gz", "sub"]


def test_candidates_handler_lists_misclassified_and_missed_maps(tmp_path) -> None:
    image = torch.zeros(4, 1, 8, 8)
    masks = torch.zeros(4, 1, 8, 8)
    masks[:, :, :4, :4] = 1.0
    maps = torch.zeros(4, 1, 2, 2)
    maps[0, 0, 0, 0] = 1.0  # on the lesion
    maps[1, 0, 1, 1] = 1.0  # off the lesion
    maps[2, 0, 0, 0] = 1.0  # on the lesion, but misclassified
    maps[3, 0, 1, 1] = 1.0  # off the lesion, but no mask
    output = {
        "image": image,
        "pred": torch.tensor([[3.0, 0.0], [3.0, 0.0], [3.0, 0.0], [0.0, 3.0]]),
        "label": torch.tensor([0, 0, 1, 1]),
        "attention_map": maps,
        "mask": masks,
        "has_mask": torch.tensor([True, True, True, False]),
    }
    batch = {"source": ["s0.png", "s1.png", "s2.png", "s3.png"]}
    engine = Engine(lambda e, b: output)
    CorrectionCandidatesHandler(tmp_path, ["benign", "malignant"], energy_threshold=0.5).attach(engine)
    engine.run([batch], max_epochs=1)
    rows = list(csv.DictReader(open(tmp_path / "records.csv")))
    assert [r["reason"] for r in rows] == ["", "map_misses_lesion", "misclassified", ""]
    assert float(rows[0]["energy_inside_mask"]) > 0.5 > float(rows[1]["energy_inside_mask"])
    assert rows[3]["map_mse"] == "" and rows[3]["energy_inside_mask"] == ""
    assert float(rows[1]["map_mse"]) > float(rows[0]["map_mse"])
    candidates = list(csv.DictReader(open(tmp_path / "candidates.csv")))
    assert [r["source"] for r in candidates] == ["s1.png", "s2.png"]
    written = Image.open(candidates[0]["map"])
    assert written.size == (8, 8)  # upsampled to the image
    records = SampleRecords.from_csv(tmp_path / "records.csv")
    assert get_strategy("largest_map_error").select(records, 0.25) == ["s1.png"]
