"""Operating points chosen on validation, decisions at a threshold, and the new classification metrics."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from monai_xai.metrics import (
    OperatingPoint,
    average_precision,
    choose_threshold,
    classification_metrics,
    decide,
    metrics_at_threshold,
    patient_level_metrics,
    single_class_warning,
)

# negatives 0.1 0.2 0.3 0.35 0.6, positives 0.4 0.5 0.7 0.8 0.9: at t = 0.4 all positives and one negative
# (0.6) are called positive -> sensitivity 1, specificity 0.8, J 0.8; every other cut has J <= 0.6
NEG = [0.1, 0.2, 0.3, 0.35, 0.6]
POS = [0.4, 0.5, 0.7, 0.8, 0.9]
LABELS = np.array([0] * 5 + [1] * 5)
SCORES = np.array(NEG + POS)


def test_youden_finds_the_known_optimum() -> None:
    point = choose_threshold(LABELS, SCORES)
    assert point.threshold == pytest.approx(0.4)
    assert point.method == "youden" and point.target_sensitivity is None
    assert point.sensitivity == pytest.approx(1.0) and point.specificity == pytest.approx(0.8)
    assert point.n == 10 and point.split == "val"
    # (N, 2) probabilities and tensors give the same point
    probs = torch.from_numpy(np.stack([1 - SCORES, SCORES], axis=1))
    assert choose_threshold(torch.from_numpy(LABELS), probs) == point


def test_youden_below_the_argmax_on_a_collapsed_classifier() -> None:
    """All scores under 0.5: the argmax calls everything negative although the ranking is perfect."""
    labels = [0, 0, 0, 0, 0, 0, 1, 1]
    scores = [0.05, 0.1, 0.12, 0.15, 0.2, 0.22, 0.3, 0.35]
    assert decide(np.stack([1 - np.array(scores), scores], axis=1)).tolist() == [0] * 8
    point = choose_threshold(labels, scores)
    assert point.threshold == pytest.approx(0.3)
    assert (point.sensitivity, point.specificity) == (1.0, 1.0)


@pytest.mark.parametrize(
    ("neg", "pos", "expected"),
    [
        ([0.1, 0.45], [0.3, 0.65], 0.65),  # J 0.5 at 0.65 and at 0.3: 0.65 is 0.15 from 0.5, 0.3 is 0.2
        ([0.1, 0.45], [0.4, 0.9], 0.4),  # J 0.5 at 0.9 and at 0.4: 0.4 is closer to 0.5
    ],
)
def test_youden_ties_go_to_the_threshold_closest_to_one_half(neg, pos, expected) -> None:
    point = choose_threshold([0] * len(neg) + [1] * len(pos), neg + pos)
    assert point.threshold == pytest.approx(expected)
    assert point.sensitivity + point.specificity - 1 == pytest.approx(0.5)


@pytest.mark.parametrize("seed", range(4))
def test_youden_matches_brute_force_over_thresholds(seed: int) -> None:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, 60)
    labels[:2] = [0, 1]
    scores = np.round(np.clip(0.3 * labels + rng.normal(0.35, 0.2, 60), 0, 1), 2)  # rounded: ties
    point = choose_threshold(labels, scores)
    j = {
        t: (m := metrics_at_threshold(labels, scores, t))["sensitivity"] + m["specificity"] - 1
        for t in scores
    }
    assert point.sensitivity + point.specificity - 1 == pytest.approx(max(j.values()))
    best = [t for t, v in j.items() if v == pytest.approx(max(j.values()))]
    assert abs(point.threshold - 0.5) == pytest.approx(min(abs(t - 0.5) for t in best))


def test_target_sensitivity_takes_the_highest_threshold_reaching_it() -> None:
    labels = [0] * 5 + [1] * 5
    scores = [0.05, 0.1, 0.3, 0.5, 0.7] + [0.2, 0.4, 0.6, 0.8, 0.9]
    point = choose_threshold(labels, scores, target_sensitivity=0.8)  # 4 of 5 positives: 4th highest, 0.4
    assert point.method == "target_sensitivity" and point.target_sensitivity == 0.8
    assert point.threshold == pytest.approx(0.4)
    assert point.sensitivity == pytest.approx(0.8) and point.specificity == pytest.approx(0.6)
    strict = choose_threshold(labels, scores, method="target_sensitivity", target_sensitivity=0.81)
    assert strict.threshold == pytest.approx(0.2) and strict.sensitivity == 1.0
    assert strict.specificity == pytest.approx(0.4)
    with pytest.raises(ValueError, match="needs target_sensitivity"):
        choose_threshold(labels, scores, method="target_sensitivity")
    with pytest.raises(ValueError, match=r"in \(0, 1\]"):
        choose_threshold(labels, scores, target_sensitivity=1.5)
    with pytest.raises(ValueError, match="method must be one of"):
        choose_threshold(labels, scores, method="f1")


def test_threshold_chosen_on_validation_applies_to_test() -> None:
    point = choose_threshold(LABELS, SCORES, split="val")
    assert point.threshold == pytest.approx(0.4)
    restored = OperatingPoint.from_dict(json.loads(json.dumps(point.to_dict())))
    assert restored == point
    # test split: labels 1 1 1 0 0 0, p1 0.45 0.38 0.9 0.41 0.2 0.1 -> decisions 1 0 1 1 0 0
    test_labels = np.array([1, 1, 1, 0, 0, 0])
    test_p1 = np.array([0.45, 0.38, 0.9, 0.41, 0.2, 0.1])
    test_probs = np.stack([1 - test_p1, test_p1], axis=1)
    assert decide(test_probs, restored).tolist() == [1, 0, 1, 1, 0, 0]
    assert decide(test_probs).tolist() == [0, 0, 1, 0, 0, 0]  # the argmax
    result = metrics_at_threshold(test_labels, test_probs, restored)
    np.testing.assert_array_equal(result["confusion_matrix"], [[2, 1], [1, 2]])  # [[TN, FP], [FN, TP]]
    assert result["sensitivity"] == pytest.approx(2 / 3) and result["specificity"] == pytest.approx(2 / 3)
    assert result["accuracy"] == pytest.approx(4 / 6) and result["balanced_accuracy"] == pytest.approx(2 / 3)
    assert result["ppv"] == pytest.approx(2 / 3) and result["npv"] == pytest.approx(2 / 3)
    assert result["threshold"] == pytest.approx(0.4) and result["n"] == 6


def test_metrics_at_threshold_nan_when_nothing_is_called_positive() -> None:
    result = metrics_at_threshold([0, 1, 1], [0.1, 0.2, 0.3], 0.9)
    assert np.isnan(result["ppv"]) and result["npv"] == pytest.approx(1 / 3)
    assert result["sensitivity"] == 0.0 and result["specificity"] == 1.0


def test_one_class_labels_raise_a_named_error() -> None:
    with pytest.raises(ValueError, match=r"split 'val'.*all class 1.*specificity is undefined.*both classes"):
        choose_threshold([1, 1, 1], [0.2, 0.5, 0.9])
    with pytest.raises(ValueError, match=r"all class 0.*sensitivity is undefined"):
        choose_threshold([0, 0], [0.2, 0.5], split="fold3")
    with pytest.raises(ValueError, match="binary labels"):
        choose_threshold([0, 2], [0.2, 0.5])
    with pytest.raises(ValueError, match="no single operating point"):
        choose_threshold([0, 1], np.full((2, 3), 1 / 3))


def test_decide_multiclass_is_argmax_only() -> None:
    probs = np.array([[0.5, 0.3, 0.2], [0.1, 0.3, 0.6]])
    assert decide(torch.from_numpy(probs)).tolist() == [0, 2]
    with pytest.raises(ValueError, match="one-vs-rest reporting only"):
        decide(probs, 0.3)


def test_from_dict_names_missing_fields() -> None:
    with pytest.raises(ValueError, match="lacks"):
        OperatingPoint.from_dict({"threshold": 0.5})


# --- additions to classification_metrics ----------------------------------------------------------------

# labels 1,1,1,0,0; p(class 1) 0.9,0.6,0.3,0.4,0.6 (as in test_metrics.py)
Y_TRUE = [1, 1, 1, 0, 0]
P1 = np.array([0.9, 0.6, 0.3, 0.4, 0.6])
PROBS = np.stack([1 - P1, P1], axis=1)


def test_binary_balanced_accuracy_and_average_precision_by_hand() -> None:
    result = classification_metrics(Y_TRUE, PROBS, num_classes=2)
    assert result["balanced_accuracy"] == pytest.approx((2 / 3 + 1 / 2) / 2)
    # descending cuts: 0.9 P 1 R 1/3; 0.6 (tie, one pos one neg) P 2/3 R 2/3; 0.4 P 1/2 R 2/3; 0.3 P 3/5 R 1
    assert result["average_precision"] == pytest.approx(1 / 3 * 1 + 1 / 3 * 2 / 3 + 0 + 1 / 3 * 3 / 5)
    # existing keys keep their values; no non-float values unless asked for
    assert result["accuracy"] == pytest.approx(3 / 5) and result["auc"] == pytest.approx(3.5 / 6)
    assert all(isinstance(v, float) for k, v in result.items() if k != "confusion_matrix")
    detailed = classification_metrics(Y_TRUE, PROBS, num_classes=2, details=True)
    assert detailed["predicted_class_counts"] == [2, 3] and "per_class" not in detailed


def test_multiclass_per_class_and_counts_by_hand() -> None:
    probs = [[0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.1, 0.5, 0.4], [0.1, 0.2, 0.7]]  # predictions 0 1 1 2
    result = classification_metrics([0, 1, 2, 2], probs, 3, details=True, class_names=["a", "b", "c"])
    assert result["predicted_class_counts"] == [1, 2, 1]
    assert result["balanced_accuracy"] == pytest.approx((1 + 1 + 0.5) / 3)
    assert result["average_precision"] == pytest.approx(1.0)
    assert set(result["per_class"]) == {"a", "b", "c"}
    assert result["per_class"]["b"] == pytest.approx(
        {"sensitivity": 1.0, "specificity": 2 / 3, "auc": 1.0, "ap": 1.0}
    )
    assert result["per_class"]["c"]["sensitivity"] == pytest.approx(0.5)
    unnamed = classification_metrics([0, 1, 2, 2], probs, 3, details=True)
    assert set(unnamed["per_class"]) == {"0", "1", "2"}
    patient = patient_level_metrics([0, 1, 2, 2], probs, ["p", "q", "r", "s"], 3, details=True)
    assert patient["predicted_class_counts"] == [1, 2, 1] and patient["num_patients"] == 4


def test_average_precision_edge_cases() -> None:
    assert average_precision([1, 0, 1], [0.9, 0.8, 0.7]) == pytest.approx((1 + 2 / 3) / 2)
    assert average_precision([1, 1, 0], [0.5, 0.5, 0.5]) == pytest.approx(2 / 3)  # one tied cut
    assert np.isnan(average_precision([0, 0], [0.3, 0.6]))


@pytest.mark.parametrize("num_classes", [2, 4])
def test_average_precision_and_balanced_accuracy_match_sklearn(num_classes: int) -> None:
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(num_classes)
    labels = np.concatenate([np.arange(num_classes), rng.integers(0, num_classes, 80)])
    probs = rng.dirichlet(np.ones(num_classes), 7)[rng.integers(0, 7, labels.size)]  # 7 rows: many ties
    result = classification_metrics(labels, probs, num_classes)
    if num_classes == 2:
        expected = metrics.average_precision_score(labels, probs[:, 1])
    else:
        expected = np.mean(
            [metrics.average_precision_score(labels == c, probs[:, c]) for c in range(num_classes)]
        )
    assert result["average_precision"] == pytest.approx(expected)
    assert result["balanced_accuracy"] == pytest.approx(
        metrics.balanced_accuracy_score(labels, probs.argmax(1))
    )


@pytest.mark.parametrize(("counts", "fires"), [([0, 50], True), ([2, 48], True), ([10, 40], False)])
def test_single_class_warning(counts: list[int], fires: bool) -> None:
    message = single_class_warning(counts, "test", ["benign", "malignant"])
    if not fires:
        assert message is None
        return
    assert "'test'" in message and "'malignant'" in message
    assert f"benign {counts[0]}" in message and f"malignant {counts[1]}" in message


def test_single_class_warning_share_and_defaults() -> None:
    assert single_class_warning([0, 0, 0], "val", None) is None
    assert single_class_warning([1, 8, 1], "val", None, share=0.8) is not None
    assert "'2'" in single_class_warning([0, 0, 5], "val", None)
    with pytest.raises(ValueError, match="class names"):
        single_class_warning([1, 2], "val", ["a"])


def test_a_separated_validation_split_leaves_the_temperature_alone(tmp_path, caplog) -> None:
    """Fitted on a split the network classifies without a mistake, the NLL falls all the way as T -> 0 and
    would push every probability to 0 or 1: the fitter keeps T = 1 and says why."""
    import logging
    from types import SimpleNamespace

    from monai_xai.handlers import OperatingPointFitter

    checkpoint = tmp_path / "best.pt"
    torch.save({"w": torch.zeros(1)}, checkpoint)
    fitter = OperatingPointFitter(checkpoint, num_classes=2, calibrate=True)
    labels = torch.tensor([0, 0, 0, 1, 1, 1])
    separated = torch.tensor([[3.0, -3.0], [2.0, -2.0], [2.5, -1.0], [-2.0, 2.0], [-1.0, 3.0], [-3.0, 1.5]])

    def validate(logits: torch.Tensor) -> None:  # one validation pass, as the evaluator feeds the fitter
        fitter.reset(None)
        fitter.collect(SimpleNamespace(state=SimpleNamespace(output={"pred": logits, "label": labels})))

    validate(separated)
    with caplog.at_level(logging.WARNING, logger="monai_xai.handlers.operating_point"):
        record = fitter.choose()
    assert record["temperature"] == 1.0 and record["temperature_fit"].startswith("not applied")
    assert "every validation image correctly" in caplog.text
    overlapping = separated.clone()
    overlapping[0] = torch.tensor([-1.0, 1.0])  # one mistake: the NLL has a minimum inside the bounds
    validate(overlapping)
    fitted = fitter.choose()
    assert fitted["temperature_fit"] == "fitted on validation NLL" and 0.05 < fitted["temperature"] < 20
