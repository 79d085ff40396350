"""Class balance: ``auto`` decides from the training counts, ``loss`` weights every cross-entropy, ``sampler``
oversamples."""

from __future__ import annotations

import logging

import pytest
import torch

from monai_xai.data import ClassBalancedDataset, resolve_class_balance


def _items(counts: list[int]) -> list[dict]:
    return [{"label": c} for c, n in enumerate(counts) for _ in range(n)]


def test_auto_weights_the_loss_above_a_ratio_of_three_and_says_so(caplog):
    with caplog.at_level(logging.INFO, logger="monai_xai.data.balanced"):
        balance = resolve_class_balance("auto", _items([80, 10]), 2)
    assert balance.policy == "loss" and balance.counts == (80, 10) and balance.ratio == 8.0
    assert balance.loss_weights == pytest.approx([90 / 160, 90 / 20])
    assert "80:10" in caplog.text and "auto -> loss" in caplog.text
    assert resolve_class_balance("auto", _items([30, 10]), 2).policy == "none"
    assert resolve_class_balance("auto", _items([30, 10]), 2).loss_weights is None


def test_a_missing_class_counts_as_an_infinite_ratio():
    balance = resolve_class_balance("auto", _items([10, 0, 5]), 3)
    assert balance.ratio == float("inf") and balance.loss_weights == pytest.approx([0.5, 0.0, 1.0])


def test_sampler_wraps_the_dataset_and_other_policies_leave_it():
    items = _items([6, 2])
    sampler = resolve_class_balance("sampler", items, 2)
    wrapped = sampler.wrap(list(range(8)), items)
    assert isinstance(wrapped, ClassBalancedDataset) and len(wrapped) == 12
    data = list(range(8))
    assert resolve_class_balance("loss", items, 2).wrap(data, items) is data
    assert resolve_class_balance("none", items, 2).wrap(data, items) is data


def test_an_unknown_policy_names_the_valid_ones():
    with pytest.raises(ValueError, match="sampler"):
        resolve_class_balance("oversample", _items([2, 2]), 2)


def test_weighted_losses_weight_both_branches():
    from monai_xai.losses import WeightedCrossEntropy, get_classifier_loss
    from monai_xai.networks.nets.abn import ABNOutput

    logits, labels = torch.randn(6, 2), torch.tensor([0, 0, 0, 0, 1, 1])
    weights = [0.5, 2.0]
    expected = torch.nn.functional.cross_entropy(logits, labels, weight=torch.tensor(weights))
    assert WeightedCrossEntropy(weights)(logits, labels) == pytest.approx(float(expected), abs=1e-6)
    plain = WeightedCrossEntropy()(logits, labels)
    assert plain == pytest.approx(float(torch.nn.functional.cross_entropy(logits, labels)), abs=1e-6)

    att, per = torch.randn(6, 2), torch.randn(6, 2)
    output = ABNOutput(att, per, torch.rand(6, 1, 4, 4))
    _, parts = get_classifier_loss("plain", class_weights=weights)(output, labels)
    ce = torch.nn.functional.cross_entropy
    assert parts["loss_att"] == pytest.approx(float(ce(att, labels, weight=torch.tensor(weights))), abs=1e-6)
    assert parts["loss_per"] == pytest.approx(float(ce(per, labels, weight=torch.tensor(weights))), abs=1e-6)
    _, baseline = get_classifier_loss("baseline", class_weights=weights)(per, labels)
    assert baseline["loss"] == pytest.approx(parts["loss_per"], abs=1e-6)


def test_demo_phantoms_can_be_imbalanced_and_without_the_marker():
    from monai_xai.data.synthetic import make_phantoms, marker_region

    phantoms = make_phantoms(90, size=24, positive_fraction=1 / 9, marker=False, seed=3)
    assert int(phantoms.labels.sum()) == 10 and not phantoms.has_marker.any()
    corner = marker_region(24).astype(bool)[:, 0]
    with_marker = make_phantoms(90, size=24, positive_fraction=1 / 9, seed=3)
    # the same draws: only the marker's corner differs, and only where the marker is drawn
    assert (with_marker.images[:, 0][:, ~corner[0]] == phantoms.images[:, 0][:, ~corner[0]]).all()
    assert with_marker.has_marker.sum() == 10
    assert make_phantoms(6, size=24).labels.tolist().count(1) == 3  # balanced by default
