"""Top-label ECE (through MONAI), reliability curves, temperature scaling and the reliability diagram."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.metrics import CalibrationErrorMetric

from monai_xai.metrics import (
    apply_temperature,
    expected_calibration_error,
    fit_temperature,
    negative_log_likelihood,
    reliability_curve,
    top_label_confidence,
)
from monai_xai.visualize import reliability_diagram_figure, save_figure


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _sample_labels(rng: np.random.Generator, probs: np.ndarray) -> np.ndarray:
    """One label per row drawn from that row's class probabilities."""
    return (rng.random((probs.shape[0], 1)) > probs.cumsum(axis=1)).sum(axis=1).clip(max=probs.shape[1] - 1)


def _direct_top_label_ece(labels: np.ndarray, probs: np.ndarray, n_bins: int) -> float:
    """Reference: equal-width bins [left, right), the last closed at 1; |conf - acc| weighted by share."""
    confidence, correct = probs.max(axis=1), (probs.argmax(axis=1) == labels)
    bins = np.minimum((confidence * n_bins).astype(int), n_bins - 1)
    total = 0.0
    for b in range(n_bins):
        inside = bins == b
        if inside.any():
            total += inside.sum() * abs(confidence[inside].mean() - correct[inside].mean())
    return total / labels.size


def test_top_label_ece_by_hand() -> None:
    # confidences 0.95 (right), 0.85 (wrong), 0.65 (right), 0.75 (right); 5 bins of 0.2:
    # [0.6, 0.8): 0.65, 0.75 -> conf 0.7, acc 1 -> 2 x 0.3
    # [0.8, 1]: 0.95, 0.85 -> conf 0.9, acc 0.5 -> 2 x 0.4
    probs = np.array([[0.95, 0.05], [0.15, 0.85], [0.65, 0.35], [0.25, 0.75]])
    labels = np.array([0, 0, 0, 1])
    expected = (2 * 0.3 + 2 * 0.4) / 4
    assert expected_calibration_error(labels, probs, n_bins=5) == pytest.approx(expected, abs=1e-6)
    assert expected_calibration_error(labels, probs[:, 1], n_bins=5) == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize(("num_classes", "seed"), [(2, 0), (3, 1), (5, 2)])
def test_top_label_ece_matches_a_direct_computation(num_classes: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    probs = rng.dirichlet(np.ones(num_classes) * 0.7, 500)
    labels = rng.integers(0, num_classes, 500)
    direct = _direct_top_label_ece(labels, probs, 15)
    assert expected_calibration_error(labels, torch.from_numpy(probs), n_bins=15) == pytest.approx(
        direct, abs=1e-5
    )


def test_top_label_ece_equals_monai_class_ece_when_class_one_is_always_predicted() -> None:
    """Binary, every p1 > 0.5: the top label is class 1, so top-label ECE is MONAI's class-1 ECE."""
    rng = np.random.default_rng(3)
    p1 = rng.uniform(0.51, 1.0, 400)
    labels = (rng.random(400) < p1**2).astype(int)
    probs = np.stack([1 - p1, p1], axis=1)
    metric = CalibrationErrorMetric(num_bins=15, metric_reduction="none")
    y_pred = torch.from_numpy(probs.T[None]).float().contiguous()  # (1, 2, N): samples as one image's pixels
    y = torch.nn.functional.one_hot(torch.from_numpy(labels), 2).T[None].float().contiguous()
    metric(y_pred=y_pred, y=y)
    class_one = float(metric.aggregate()[0, 1])
    assert expected_calibration_error(labels, probs) == pytest.approx(class_one, abs=1e-6)


def test_ece_near_zero_when_calibrated_and_positive_when_over_confident() -> None:
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(3), 20000)
    labels = _sample_labels(rng, probs)  # drawn from the probabilities: calibrated by construction
    assert expected_calibration_error(labels, probs) < 0.02
    sharpened = _softmax(3.0 * np.log(probs))  # same argmax, far more confident than the labels warrant
    assert expected_calibration_error(labels, sharpened) > 0.1
    p1 = rng.uniform(0, 1, 20000)
    binary = (rng.random(20000) < p1).astype(int)
    assert expected_calibration_error(binary, p1) < 0.02


def test_reliability_curve_bins() -> None:
    rng = np.random.default_rng(1)
    probs = rng.dirichlet(np.ones(4), 300)
    labels = rng.integers(0, 4, 300)
    curve = reliability_curve(labels, probs, n_bins=10)
    assert len(curve["bin_centres"]) == len(curve["counts"]) == 10 and len(curve["bin_edges"]) == 11
    assert sum(curve["counts"]) == curve["n"] == 300
    assert curve["ece"] == pytest.approx(expected_calibration_error(labels, probs, n_bins=10), abs=1e-6)
    confidence, correct = top_label_confidence(labels, probs)
    bins = np.minimum((confidence * 10).astype(int), 9)
    for b in range(10):
        inside = bins == b
        assert curve["counts"][b] == inside.sum()
        if inside.any():
            assert curve["accuracy"][b] == pytest.approx(correct[inside].mean(), abs=1e-6)
            assert curve["confidence"][b] == pytest.approx(confidence[inside].mean(), abs=1e-6)
        else:
            assert np.isnan(curve["accuracy"][b]) and np.isnan(curve["confidence"][b])
    assert curve["counts"][0] == 0  # a top-label confidence is never below 1/4


def _tempered(rng: np.random.Generator, n: int, t0: float) -> tuple[np.ndarray, np.ndarray]:
    """Logits that are ``t0`` times too large: the labels follow softmax(logits / t0)."""
    true_logits = rng.normal(0.0, 1.5, (n, 4))
    return true_logits * t0, _sample_labels(rng, _softmax(true_logits))


def test_temperature_scaling_recovers_the_temperature_and_calibrates_held_out_data() -> None:
    rng = np.random.default_rng(0)
    t0 = 2.5
    val_logits, val_labels = _tempered(rng, 4000, t0)
    test_logits, test_labels = _tempered(rng, 4000, t0)
    t = fit_temperature(val_logits, val_labels)
    assert t == pytest.approx(t0, rel=0.1)
    # from probabilities (their logs as logits) and from tensors: the same temperature
    assert fit_temperature(_softmax(val_logits), val_labels) == pytest.approx(t, rel=1e-3)
    assert fit_temperature(torch.from_numpy(val_logits), torch.from_numpy(val_labels)) == pytest.approx(
        t, rel=1e-3
    )
    before, after = _softmax(test_logits), apply_temperature(test_logits, t)
    assert negative_log_likelihood(test_labels, after) < negative_log_likelihood(test_labels, before)
    assert negative_log_likelihood(test_labels, test_logits, t) == pytest.approx(
        negative_log_likelihood(test_labels, after), rel=1e-6
    )
    ece_before = expected_calibration_error(test_labels, before)
    ece_after = expected_calibration_error(test_labels, after)
    assert ece_after < ece_before and ece_after < 0.03
    np.testing.assert_array_equal(after.argmax(axis=1), before.argmax(axis=1))


def test_under_confident_logits_get_a_temperature_below_one() -> None:
    rng = np.random.default_rng(4)
    logits, labels = _tempered(rng, 3000, 0.5)
    assert fit_temperature(logits, labels) == pytest.approx(0.5, rel=0.1)


def test_apply_temperature_types_and_checks() -> None:
    probs = torch.tensor([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]])
    out = apply_temperature(probs, 1.0)
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float32
    torch.testing.assert_close(out, probs, atol=1e-6, rtol=0)
    softer = apply_temperature(probs, 2.0)
    assert torch.all(softer.max(dim=1).values < probs.max(dim=1).values)
    binary = apply_temperature(np.array([0.9, 0.2]), 2.0)  # 1-D: p(class 1)
    assert binary.shape == (2, 2) and binary[0, 1] == pytest.approx(3 / (3 + 1))  # sqrt(.9/.1) : 1
    with pytest.raises(ValueError, match="positive"):
        apply_temperature(probs, 0.0)
    with pytest.raises(ValueError, match="probabilities"):
        apply_temperature(np.array([[2.0, -1.0]]), 1.0, inputs="probs")
    with pytest.raises(ValueError, match="labels must lie"):
        expected_calibration_error([0, 3], probs)


def test_reliability_diagram_renders_to_png(tmp_path) -> None:
    rng = np.random.default_rng(2)
    logits, labels = _tempered(rng, 500, 2.0)
    curves = {
        "before": reliability_curve(labels, _softmax(logits)),
        "after temperature scaling": reliability_curve(labels, apply_temperature(logits, 2.0)),
    }
    fig = reliability_diagram_figure(curves, title="test")
    path = save_figure(fig, tmp_path / "reliability.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="no reliability curves"):
        reliability_diagram_figure({})
