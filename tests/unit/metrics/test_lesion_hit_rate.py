"""The per-lesion hit rate of a map's top 5 %, on hand-made masks: every lesion one vote, whatever its
size."""

from __future__ import annotations

import math

import pytest
import torch

from monai_xai.metrics import agreement_scores, label_lesions, lesion_hit_rate, lesion_hits, top_region


def _masks() -> torch.Tensor:
    """Two 20x20 masks: one big lesion and three single pixels (a diagonal pair counts as one); one empty."""
    masks = torch.zeros(2, 1, 20, 20)
    masks[0, 0, 10:16, 10:16] = 1.0  # big
    masks[0, 0, 2, 2] = masks[0, 0, 3, 3] = 1.0  # touching at a corner: one lesion
    masks[0, 0, 2, 17] = 1.0
    masks[0, 0, 17, 2] = 1.0
    return masks


def _ramp() -> torch.Tensor:
    """A map with no ties, lowest at the top left: its top 5 % (20 pixels) is the bottom row."""
    return torch.arange(400.0).reshape(1, 1, 20, 20).expand(2, 1, 20, 20).clone()


def test_lesions_are_connected_components_with_diagonal_neighbours() -> None:
    labels, n = label_lesions(_masks()[0, 0].numpy())
    assert n == 4 and labels[2, 2] == labels[3, 3] != 0
    assert label_lesions(torch.zeros(5, 5, 5).numpy())[1] == 0  # any dimensionality


def test_hit_rate_counts_lesions_not_pixels() -> None:
    masks = _masks()
    maps = _ramp() * 1e-3
    maps[0, 0, 2, 17] = 10.0  # one small lesion found
    maps[0, 0, 17, 2] = 9.0  # another
    hits, counts = lesion_hits(maps, masks)
    assert counts.tolist() == [4, 0]
    # the top 20 pixels: the two lesion pixels and 18 of the bottom row, which holds no lesion
    assert hits.tolist() == [2, 0]
    rate = lesion_hit_rate(maps, masks)
    assert rate[0].item() == pytest.approx(0.5) and math.isnan(rate[1].item())
    # a map on the big lesion alone touches one lesion in four, though it holds most of the mask's energy
    big = torch.zeros(2, 1, 20, 20)
    big[:, :, 10:16, 10:16] = 1.0
    big += _ramp() * 1e-6
    assert lesion_hit_rate(big, masks)[0].item() == pytest.approx(0.25)


def test_coarse_maps_are_upsampled_and_top_fraction_is_a_budget() -> None:
    masks = _masks()
    coarse = torch.zeros(2, 1, 4, 4)
    coarse[:, :, 0, 3] = 1.0  # the top-right cell: the lesion at (2, 17)
    assert lesion_hit_rate(coarse, masks)[0].item() == pytest.approx(0.25)
    everything = lesion_hit_rate(_ramp(), masks, top_fraction=1.0)
    assert everything[0].item() == 1.0
    with pytest.raises(ValueError, match="fraction must lie in"):
        lesion_hit_rate(_ramp(), masks, top_fraction=0.0)
    with pytest.raises(ValueError, match="maps and masks"):
        lesion_hit_rate(torch.rand(2, 1, 4, 4), torch.rand(1, 1, 4, 4))


def test_ties_are_broken_by_a_fixed_random_order() -> None:
    flat = torch.zeros(3, 1000)
    first = top_region(flat, 0.05, seed=0)
    assert first.sum(1).tolist() == [50, 50, 50]
    assert not bool(first[0, :50].all())  # not the first pixels in memory order
    assert torch.equal(first, top_region(flat, 0.05, seed=0))
    assert not torch.equal(first, top_region(flat, 0.05, seed=1))


def test_agreement_scores_report_it_beside_the_other_measures() -> None:
    masks = _masks()
    scores = agreement_scores(_ramp(), masks)
    assert "lesion_hit_rate" in scores and math.isnan(scores["lesion_hit_rate"][1].item())
    assert scores["lesion_hit_rate"][0].item() == pytest.approx(0.0)  # the bottom row holds no lesion
