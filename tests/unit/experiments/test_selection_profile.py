"""monai_xai.experiments.selection_profile: class mix and lesion size of each strategy's picks."""

from __future__ import annotations

import pytest

from monai_xai.errors import InputError
from monai_xai.experiments import selection_profile


def test_largest_map_error_picks_the_large_lesions(tmp_path, capsys) -> None:
    # Four candidates; map error grows with lesion area, confidence is lowest for the smallest lesion.
    areas = [0.01, 0.02, 0.30, 0.40]
    errors = [0.10, 0.20, 0.30, 0.40]
    benign_prob = [0.55, 0.90, 0.95, 0.80]
    (tmp_path / "labels.csv").write_text(
        "image,mask_fraction\n" + "".join(f"img{i}.png,{a}\n" for i, a in enumerate(areas))
    )
    records = "source,label,prob_benign,prob_malignant,map_mse\n" + "".join(
        f"{tmp_path / f'img{i}.png'},{int(i >= 3)},{p},{1 - p},{e}\n"
        for i, (p, e) in enumerate(zip(benign_prob, errors))
    )
    (tmp_path / "records.csv").write_text(records)
    rows = selection_profile.profile(tmp_path / "records.csv", tmp_path / "labels.csv", [0.5])
    by_strategy = {row["strategy"]: row for row in rows}
    assert by_strategy["all candidates"]["lesion_area"] == pytest.approx(sum(areas) / 4)
    assert by_strategy["largest_map_error"]["lesion_area"] == pytest.approx(0.35)
    assert by_strategy["largest_map_error"]["class_1"] == pytest.approx(0.5)
    assert by_strategy["lowest_confidence"]["lesion_area"] == pytest.approx((0.01 + 0.40) / 2)
    assert by_strategy["random"]["n"] == 2
    assert selection_profile.main([str(tmp_path / "records.csv"), str(tmp_path / "labels.csv")]) == 0
    assert capsys.readouterr().out.splitlines()[0].startswith("| strategy | fraction | picked")


def test_candidates_missing_from_the_table_are_named(tmp_path) -> None:
    (tmp_path / "labels.csv").write_text("image,mask_fraction\nother.png,0.1\n")
    (tmp_path / "records.csv").write_text(
        f"source,label,prob_a,prob_b,map_mse\n{tmp_path / 'x.png'},0,0.5,0.5,0.1\n"
    )
    with pytest.raises(InputError, match="labels.csv: no mask_fraction for 1 candidates, e.g. .*x.png"):
        selection_profile.profile(tmp_path / "records.csv", tmp_path / "labels.csv", [0.5])
    (tmp_path / "labels.csv").write_text("image,area\nother.png,0.1\n")
    with pytest.raises(InputError, match="expected 'image' and 'mask_fraction' columns"):
        selection_profile.profile(tmp_path / "records.csv", tmp_path / "labels.csv", [0.5])
