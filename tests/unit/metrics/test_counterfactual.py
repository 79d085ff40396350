"""The counterfactual flip, control and judge figures of monai_xai.metrics.counterfactual, on tiny inputs."""

from __future__ import annotations

import math

import numpy as np
import torch

from monai_xai.metrics.counterfactual import (
    direction_rows,
    flip_indicators,
    flip_rate_correct_only,
    flip_rate_summary,
    flip_rates,
    translation_kid,
)

NAN = float("nan")


def _probs(*classes: float) -> torch.Tensor:
    """One-hot probabilities of two classes; NaN rows for NaN entries."""
    rows = [[NAN, NAN] if math.isnan(c) else [1.0 - c, float(c)] for c in classes]
    return torch.tensor(rows)


def test_flip_indicators_mark_undefined_rows_nan() -> None:
    flipped = flip_indicators(_probs(1, 0, NAN, 0), torch.tensor([1, 1, 0, 0]))
    np.testing.assert_array_equal(flipped, [1.0, 0.0, NAN, 1.0])


def test_direction_rows() -> None:
    rows = direction_rows(torch.tensor([0, 1, 1]))
    assert list(rows) == ["", "_from_0", "_from_1"]
    assert rows[""].tolist() == [True] * 3 and rows["_from_1"].tolist() == [False, True, True]


def test_flip_rates_per_direction_leave_undefined_rows_out() -> None:
    source = torch.tensor([0, 0, 1, 1, 1])
    rates = flip_rates(_probs(1, 0, 0, NAN, 1), 1 - source, source)
    assert rates == {"flip_rate": 0.5, "flip_rate_from_0": 0.5, "flip_rate_from_1": 0.5}
    assert math.isnan(flip_rates(_probs(1), [1], [0])["flip_rate_from_1"])  # no image: no rate


def test_flip_rate_correct_only_counts_correctly_classified_images() -> None:
    labels = torch.tensor([0, 0, 1, 1])
    before, after = _probs(0, 1, 1, 0), _probs(1, 1, 1, 1)  # images 0 and 2 are right before
    assert flip_rate_correct_only(before, after, labels, 1 - labels) == 0.5


def test_flip_rate_summary_intervals_gaps_and_prefix() -> None:
    source = torch.tensor([0, 1] * 20)
    target = 1 - source
    after = _probs(*target.tolist())  # every translation flips
    control = _probs(*source.tolist())  # no control does
    summary = flip_rate_summary(after, {"uniform": control}, target, source, correct=source >= 0, n_boot=50)
    intervals = summary["flip_rate_intervals"]
    assert set(intervals) == {
        "flip_rate", "flip_rate_from_0", "flip_rate_from_1", "uniform_flip_rate", "uniform_flip_rate_from_0",
        "uniform_flip_rate_from_1", "flip_rate_correct_only",
    }  # fmt: skip
    assert intervals["flip_rate"]["mean"] == 1.0 and intervals["uniform_flip_rate_from_1"]["mean"] == 0.0
    assert set(summary["control_gaps"]) == {"uniform_from_0", "uniform_from_1"}
    assert summary["controls_met"] is True
    judged = flip_rate_summary(after, {"uniform": after}, target, source, prefix="judge_", n_boot=50)
    assert judged["judge_controls_met"] is False  # a control that flips as often is not met
    assert "judge_flip_rate_correct_only" not in judged["judge_flip_rate_intervals"]
    assert set(flip_rate_summary(after, {}, target, source, n_boot=50)) == {"flip_rate_intervals"}


def test_translation_kid_is_lower_for_translations_that_look_like_the_target() -> None:
    rng = np.random.default_rng(0)
    source = np.array([0] * 20 + [1] * 20)
    real = rng.normal(size=(40, 3)) + 4.0 * source[:, None]  # the classes lie apart
    translated = rng.normal(size=(40, 3)) + 4.0 * (1 - source)[:, None]  # each lands among the other class
    kid = translation_kid(real, translated, source, source, seed=0)
    assert set(kid) == {f"judge_kid{part}_from_{cls}" for part in ("", "_untranslated") for cls in (0, 1)}
    for cls in (0, 1):
        assert kid[f"judge_kid_from_{cls}"]["mean"] < kid[f"judge_kid_untranslated_from_{cls}"]["mean"]


def test_flip_rate_summary_interval_level() -> None:
    source = torch.tensor([0, 1] * 5)
    summary = flip_rate_summary(_probs(*(1 - source).tolist()), {}, 1 - source, source, level=0.9, n_boot=20)
    assert "ci90" in summary["flip_rate_intervals"]["flip_rate"]
