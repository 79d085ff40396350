"""Classification and attention-agreement metrics against hand-computed values."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from monai.metrics import compute_roc_auc

from monai_xai.metrics import (
    aggregate_by_patient,
    agreement_scores,
    attention_agreement,
    classification_metrics,
    confusion_matrix,
    energy_inside_mask,
    map_iou,
    map_mse,
    patient_level_metrics,
    pointing_game,
    summarize_agreement,
)

# labels 1,1,1,0,0; p(class 1) 0.9,0.6,0.3,0.4,0.6 -> predictions 1,1,0,0,1
Y_TRUE = [1, 1, 1, 0, 0]
P1 = np.array([0.9, 0.6, 0.3, 0.4, 0.6])
PROBS = np.stack([1 - P1, P1], axis=1)


def test_binary_metrics_by_hand() -> None:
    result = classification_metrics(Y_TRUE, PROBS, num_classes=2)
    np.testing.assert_array_equal(result["confusion_matrix"], [[1, 1], [1, 2]])  # TN FP / FN TP
    assert result["accuracy"] == pytest.approx(3 / 5)
    assert result["sensitivity"] == pytest.approx(2 / 3)
    assert result["specificity"] == pytest.approx(1 / 2)
    # positive/negative pairs: (.9,.4) 1, (.9,.6) 1, (.6,.4) 1, (.6,.6) 0.5, (.3,.4) 0, (.3,.6) 0 -> 3.5 / 6
    assert result["auc"] == pytest.approx(3.5 / 6)


def test_metrics_accept_tensors() -> None:
    result = classification_metrics(torch.tensor(Y_TRUE), torch.from_numpy(PROBS), num_classes=2)
    assert result["auc"] == pytest.approx(3.5 / 6)


def _pairwise_auc(is_positive: np.ndarray, scores: np.ndarray) -> float:
    """Brute-force reference: share of (positive, negative) pairs ranked right, ties counting half."""
    pairs = itertools.product(scores[is_positive], scores[~is_positive])
    return float(np.mean([1.0 if p > n else 0.5 if p == n else 0.0 for p, n in pairs]))


def _counted_rates(labels: np.ndarray, preds: np.ndarray, c: int) -> tuple[float, float]:
    """Brute-force reference: sensitivity and specificity of class ``c`` against the rest, by counting."""
    hits = [p == c for y, p in zip(labels, preds) if y == c]
    rejections = [p != c for y, p in zip(labels, preds) if y != c]
    return sum(hits) / len(hits), sum(rejections) / len(rejections)


@pytest.mark.parametrize("num_classes", [2, 3, 5])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_metrics_match_brute_force_with_ties(num_classes: int, seed: int) -> None:
    """MONAI's AUC and one-vs-rest rates equal pair counting and plain counting on tied random scores."""
    rng = np.random.default_rng(seed)
    labels = np.concatenate([np.arange(num_classes), rng.integers(0, num_classes, 57)])
    probs = rng.dirichlet(np.ones(num_classes), 6)[rng.integers(0, 6, labels.size)]  # 6 rows: many ties
    result = classification_metrics(labels, probs, num_classes)
    preds = probs.argmax(axis=1)
    classes = [1] if num_classes == 2 else range(num_classes)
    rates = np.array([_counted_rates(labels, preds, c) for c in classes])
    assert result["auc"] == pytest.approx(np.mean([_pairwise_auc(labels == c, probs[:, c]) for c in classes]))
    assert result["sensitivity"] == pytest.approx(rates[:, 0].mean())
    assert result["specificity"] == pytest.approx(rates[:, 1].mean())
    assert result["accuracy"] == pytest.approx(np.mean(preds == labels))
    counted = [[np.sum((labels == t) & (preds == p)) for p in range(num_classes)] for t in range(num_classes)]
    np.testing.assert_array_equal(result["confusion_matrix"], counted)


def test_single_class_auc_is_nan_with_warning() -> None:
    with pytest.warns(UserWarning, match="skip AUC computation"):
        result = classification_metrics([1, 1], [[0.2, 0.8], [0.6, 0.4]], num_classes=2)
    assert np.isnan(result["auc"]) and np.isnan(result["specificity"])
    assert result["sensitivity"] == pytest.approx(0.5)


def test_macro_auc_skips_a_class_missing_from_the_labels() -> None:
    """MONAI's own macro average is NaN here; the classes that are present still give an AUC."""
    labels = np.array([0, 0, 1, 1])
    probs = np.array([[0.7, 0.2, 0.1], [0.3, 0.6, 0.1], [0.5, 0.4, 0.1], [0.1, 0.5, 0.4]])
    with pytest.warns(UserWarning, match="skip AUC computation"):
        monai_macro = compute_roc_auc(torch.from_numpy(probs), torch.eye(3)[labels], average="macro")
        result = classification_metrics(labels, probs, num_classes=3)
    assert np.isnan(monai_macro)
    present = [_pairwise_auc(labels == c, probs[:, c]) for c in (0, 1)]
    assert result["auc"] == pytest.approx(np.mean(present)) and np.isfinite(result["auc"])


def test_multiclass_macro_metrics_by_hand() -> None:
    probs = [[0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.1, 0.5, 0.4], [0.1, 0.2, 0.7]]
    result = classification_metrics([0, 1, 2, 2], probs, num_classes=3)
    np.testing.assert_array_equal(result["confusion_matrix"], [[1, 0, 0], [0, 1, 0], [0, 1, 1]])
    assert result["accuracy"] == pytest.approx(0.75)
    assert result["sensitivity"] == pytest.approx((1 + 1 + 0.5) / 3)
    assert result["specificity"] == pytest.approx((1 + 2 / 3 + 1) / 3)
    # class 2 one-vs-rest: positives .4, .7 vs negatives .1, .1 -> 1; classes 0 and 1 also separate perfectly
    assert result["auc"] == pytest.approx(1.0)


def test_confusion_matrix_and_input_checks() -> None:
    expected = [[0, 0, 1], [0, 1, 0], [0, 0, 1]]
    np.testing.assert_array_equal(confusion_matrix([0, 1, 2], [2, 1, 2], 3), expected)
    with pytest.raises(ValueError, match="probs must have shape"):
        classification_metrics([0, 1], [[0.5, 0.5]], num_classes=2)
    with pytest.raises(ValueError, match="labels must lie"):
        classification_metrics([0, 2], [[0.5, 0.5]] * 2, num_classes=2)
    with pytest.raises(ValueError, match="no samples"):
        classification_metrics([], np.zeros((0, 2)), num_classes=2)


def test_patient_aggregation_by_mean_softmax() -> None:
    ids = ["a", "a", "b", "b", "c"]
    labels = [1, 1, 0, 0, 1]
    probs = [[0.6, 0.4], [0.2, 0.8], [0.3, 0.7], [0.5, 0.5], [0.9, 0.1]]
    patients, patient_labels, mean_probs = aggregate_by_patient(labels, probs, ids)
    assert patients == ["a", "b", "c"]
    np.testing.assert_array_equal(patient_labels, [1, 0, 1])
    np.testing.assert_allclose(mean_probs, [[0.4, 0.6], [0.4, 0.6], [0.9, 0.1]])
    result = patient_level_metrics(labels, probs, ids, num_classes=2)
    # predictions a:1 (right), b:1 (wrong), c:0 (wrong)
    assert result["num_patients"] == 3
    assert result["accuracy"] == pytest.approx(1 / 3)
    assert result["sensitivity"] == pytest.approx(1 / 2) and result["specificity"] == pytest.approx(0.0)
    assert result["auc"] == pytest.approx(0.5)  # a ties b, c below b


def test_patient_with_mixed_labels_is_an_error() -> None:
    with pytest.raises(ValueError, match="patient 'a'"):
        patient_level_metrics([0, 1], [[0.5, 0.5]] * 2, ["a", "a"], num_classes=2)


def _tiny() -> tuple[torch.Tensor, torch.Tensor]:
    maps = torch.tensor([[[[0.1, 0.9], [0.2, 0.4]]], [[[0.1, 0.9], [0.2, 0.4]]]])
    masks = torch.tensor([[[[0.0, 1.0], [0.0, 1.0]]], [[[1.0, 0.0], [1.0, 0.0]]]])
    return maps, masks


def test_attention_metrics_by_hand() -> None:
    maps, masks = _tiny()
    torch.testing.assert_close(pointing_game(maps, masks), torch.tensor([1.0, 0.0]))
    torch.testing.assert_close(energy_inside_mask(maps, masks), torch.tensor([1.3 / 1.6, 0.3 / 1.6]))
    # normalised maps [0, 1, .125, .375] -> only the top-right pixel reaches 0.5
    torch.testing.assert_close(map_iou(maps, masks), torch.tensor([0.5, 0.0]))
    assert map_iou(maps, masks, threshold=0.3)[0].item() == pytest.approx(1.0)
    torch.testing.assert_close(map_mse(maps, masks), torch.tensor([0.42 / 4, 2.42 / 4]))
    normalized = torch.tensor((0.125**2 + 0.625**2) / 4)
    torch.testing.assert_close(map_mse(maps, masks, normalize=True)[0], normalized)


def test_maps_are_resized_to_mask_size() -> None:
    masks = torch.zeros(1, 1, 4, 4)
    masks[0, 0, :, 2:] = 1.0
    maps = torch.tensor([[[[0.0, 1.0], [0.0, 1.0]]]])
    assert pointing_game(maps, masks).item() == 1.0
    assert energy_inside_mask(maps, masks).item() > 0.5
    assert map_iou(maps, masks).item() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="maps and masks"):
        map_mse(torch.rand(2, 1, 4, 4), torch.rand(1, 1, 4, 4))


def test_agreement_skips_empty_masks() -> None:
    maps, masks = _tiny()
    maps = torch.cat([maps, torch.rand(1, 1, 2, 2)])
    masks = torch.cat([masks, torch.zeros(1, 1, 2, 2)])
    result = attention_agreement(maps, masks)
    assert result["num_evaluated"] == 2 and result["num_empty_masks"] == 1
    assert result["pointing_game"] == pytest.approx(0.5)
    assert result["energy_inside_mask"] == pytest.approx(0.5)
    assert result["map_iou"] == pytest.approx(0.25)
    assert result["map_mse"] == pytest.approx((0.42 + 2.42) / 8)
    # scored batch by batch (a report that keeps no maps), then summarised: the same figures
    batches = [agreement_scores(maps[i : i + 2], masks[i : i + 2]) for i in (0, 2)]
    assert batches[1]["has_mask"].tolist() == [False] and torch.isnan(batches[1]["map_mse"]).all()
    joined = summarize_agreement({k: torch.cat([b[k] for b in batches]) for k in batches[0]})
    assert joined == pytest.approx(result, nan_ok=True)
