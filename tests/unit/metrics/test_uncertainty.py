"""Bootstrap intervals, paired differences and pooling over runs, checked against closed forms (normal mean,
DeLong's AUC variance, a normal mixture) and against the properties the resampling must keep."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
from scipy.optimize import brentq
from scipy.stats import norm

from monai_xai.metrics import (
    Interval,
    PooledInterval,
    accuracy,
    auc,
    balanced_accuracy,
    bootstrap_ci,
    mean_of,
    paired_bootstrap_diff,
    pool_runs,
    pooled_bootstrap_ci,
    sensitivity,
    specificity,
)

Z95 = norm.ppf(0.975)


def _width(iv: Interval) -> float:
    return iv.high - iv.low


def _binormal(n_pos: int, n_neg: int, shift: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = np.r_[np.ones(n_pos, dtype=int), np.zeros(n_neg, dtype=int)]
    scores = rng.normal(size=n_pos + n_neg) + shift * labels
    return labels, scores


def _delong_se(labels: np.ndarray, scores: np.ndarray) -> float:
    pos, neg = scores[labels == 1], scores[labels == 0]
    psi = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])
    v10, v01 = psi.mean(axis=1), psi.mean(axis=0)
    return math.sqrt(v10.var(ddof=1) / pos.size + v01.var(ddof=1) / neg.size)


# ------------------------------------------------------------------------------------------------ metrics


def test_auc_matches_pairwise_definition_with_ties():
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 2, 200)
    scores = np.round(rng.normal(size=200) + labels, 1)  # many ties, within and across classes
    pos, neg = scores[labels == 1], scores[labels == 0]
    pairwise = ((pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])).mean()
    assert auc(labels, scores) == pytest.approx(pairwise, abs=1e-12)
    assert auc(labels, np.zeros(200)) == 0.5
    probs = np.stack([1 - scores, scores], axis=1)
    assert auc(labels, probs) == pytest.approx(pairwise, abs=1e-12)
    assert auc(1 - labels, scores, positive=0) == pytest.approx(pairwise, abs=1e-12)
    assert math.isnan(auc(np.ones(5), np.arange(5.0)))
    assert auc([0, 0, 1, 1], [0.1, 0.2, 0.3, 0.4]) == 1.0
    assert auc([0, 0, 1, 1], [0.4, 0.3, 0.2, 0.1]) == 0.0


def test_classification_metrics_small_cases():
    labels = np.array([0, 0, 0, 1, 1, 2])
    preds = np.array([0, 1, 0, 1, 0, 2])
    assert accuracy(labels, preds) == pytest.approx(4 / 6)
    assert balanced_accuracy(labels, preds) == pytest.approx((2 / 3 + 1 / 2 + 1) / 3)
    assert balanced_accuracy(labels[:5], preds[:5]) == pytest.approx((2 / 3 + 1 / 2) / 2)
    assert math.isnan(balanced_accuracy(labels[:5], preds[:5], classes=[0, 1, 2]))
    binary_labels, binary_preds = np.array([1, 1, 1, 0, 0]), np.array([1, 0, 1, 1, 0])
    assert sensitivity(binary_labels, binary_preds) == pytest.approx(2 / 3)
    assert specificity(binary_labels, binary_preds) == pytest.approx(1 / 2)
    assert sensitivity(binary_labels, binary_preds, positive=0) == pytest.approx(1 / 2)
    assert math.isnan(sensitivity([0, 0], [1, 0]))
    assert math.isnan(specificity([1, 1], [1, 0]))
    assert mean_of([1.0, np.nan, 0.0, 0.5]) == pytest.approx(0.5)
    assert math.isnan(mean_of([np.nan, np.nan]))


# ----------------------------------------------------------------------------------------- bootstrap_ci


def test_mean_interval_matches_normal_theory():
    values = np.random.default_rng(0).normal(size=400)
    iv = bootstrap_ci(mean_of, values)
    half = Z95 * values.std(ddof=1) / math.sqrt(values.size)
    assert _width(iv) == pytest.approx(2 * half, rel=0.15)
    assert (iv.low + iv.high) / 2 == pytest.approx(values.mean(), abs=0.2 * half)
    assert iv.estimate == pytest.approx(values.mean())
    assert (iv.n, iv.n_boot, iv.n_undefined, iv.level) == (400, 2000, 0, 0.95)


def test_auc_interval_matches_delong():
    labels, scores = _binormal(100, 200, shift=1.2, seed=1)
    iv = bootstrap_ci(auc, labels, scores, stratify=0)
    se = _delong_se(labels, scores)
    assert _width(iv) == pytest.approx(2 * Z95 * se, rel=0.2)
    assert iv.low < auc(labels, scores) < iv.high
    assert iv.n_undefined == 0


def test_stratified_resamples_keep_class_counts():
    labels, scores = _binormal(7, 43, shift=1.0, seed=2)
    seen: dict[str, list[int]] = {"strat": [], "plain": []}

    def counting(key):
        def metric(y, s):
            seen[key].append(int(y.sum()))
            return auc(y, s)

        return metric

    bootstrap_ci(counting("strat"), labels, scores, n_boot=300, stratify=labels)
    bootstrap_ci(counting("plain"), labels, scores, n_boot=300)
    assert set(seen["strat"]) == {7}
    assert len(set(seen["plain"])) > 3  # without strata the count varies, so the check above can fail


def test_undefined_replicates_are_dropped_and_counted():
    labels = np.r_[1, np.zeros(9, dtype=int)]
    scores = np.linspace(0, 1, 10)
    iv = bootstrap_ci(auc, labels, scores, n_boot=2000, seed=4)
    expected = 2000 * (0.9**10 + 0.1**10)  # resamples without the positive or with only it
    assert abs(iv.n_undefined - expected) < 5 * math.sqrt(2000 * 0.35 * 0.65)
    assert np.isfinite([iv.low, iv.high]).all()
    assert bootstrap_ci(auc, labels, scores, n_boot=200, stratify=0).n_undefined == 0
    nothing = bootstrap_ci(lambda x: math.nan, scores, n_boot=50)
    assert nothing.n_undefined == 50 and math.isnan(nothing.low) and math.isnan(nothing.high)
    assert nothing.verdict(0.5) == "not distinguishable at this n"


def test_cluster_bootstrap_widens_by_sqrt_group_size():
    rng = np.random.default_rng(5)
    n_groups, size = 60, 9
    values = np.repeat(rng.normal(size=n_groups), size)  # all images of one patient agree perfectly
    patients = np.repeat(np.arange(n_groups), size)
    naive = bootstrap_ci(mean_of, values, seed=1)
    clustered = bootstrap_ci(mean_of, values, groups=patients, seed=1)
    assert _width(clustered) / _width(naive) == pytest.approx(math.sqrt(size), rel=0.2)
    assert clustered.estimate == naive.estimate


def test_cluster_bootstrap_draws_whole_groups_and_keeps_strata():
    sizes = np.array([1, 2, 3, 4, 5, 6, 2, 3])
    patients = np.repeat(np.arange(sizes.size), sizes)
    labels = np.repeat([0, 1, 0, 1, 0, 1, 0, 1], sizes)
    drawn: list[np.ndarray] = []

    def record(ids, y):
        drawn.append((np.bincount(ids, minlength=sizes.size), int((np.diff(ids) != 0).sum())))
        return float(y.mean())

    bootstrap_ci(record, patients, labels, n_boot=200, groups=patients, stratify=labels)
    for counts, _ in drawn:
        assert (counts % sizes == 0).all()  # a patient comes with all of its images, or not at all
        n_patients = counts // sizes
        assert n_patients[labels[np.r_[0, np.cumsum(sizes)[:-1]]] == 1].sum() == 4  # 4 positive patients
    with pytest.raises(ValueError, match="constant within each group"):
        bootstrap_ci(mean_of, np.arange(4.0), groups=[0, 0, 1, 1], stratify=[0, 1, 0, 1])


def test_seeded_determinism():
    labels, scores = _binormal(30, 70, shift=1.0, seed=6)
    a = bootstrap_ci(auc, labels, scores, stratify=0, seed=11, n_boot=300)
    b = bootstrap_ci(auc, labels, scores, stratify=0, seed=11, n_boot=300)
    c = bootstrap_ci(auc, labels, scores, stratify=0, seed=12, n_boot=300)
    assert a == b
    assert (a.low, a.high) != (c.low, c.high)


def test_input_checks():
    with pytest.raises(ValueError, match="differ in length"):
        bootstrap_ci(auc, [0, 1, 1], [0.1, 0.2])
    with pytest.raises(ValueError, match="one value per item"):
        bootstrap_ci(auc, [0, 1, 1], [0.1, 0.2, 0.3], stratify=[0, 1])
    with pytest.raises(ValueError, match="level"):
        bootstrap_ci(mean_of, [1.0, 2.0], level=95)


def test_two_thousand_auc_resamples_are_fast():
    labels, scores = _binormal(300, 700, shift=1.0, seed=7)
    start = time.perf_counter()
    bootstrap_ci(auc, labels, scores, stratify=0, n_boot=2000)
    assert time.perf_counter() - start < 2.5


# --------------------------------------------------------------------------------------- Interval methods


def test_verdict_and_clears():
    iv = Interval(0.9, 0.85, 0.95)
    assert iv.verdict(0.8) == "met" and iv.clears(0.8)
    assert iv.verdict(0.97) == "missed" and not iv.clears(0.97)
    assert iv.verdict(0.9) == "not distinguishable at this n"
    assert iv.verdict(0.85) == "not distinguishable at this n"  # touching the target is not clearing it
    loss = Interval(0.1, 0.05, 0.15)
    assert loss.verdict(0.2, higher_is_better=False) == "met"
    assert loss.verdict(0.03, higher_is_better=False) == "missed"
    assert loss.verdict(0.12, higher_is_better=False) == "not distinguishable at this n"
    assert not loss.clears(0.03, higher_is_better=False)


def test_to_dict_keys():
    iv = Interval(0.9, 0.85, 0.95, n=120)
    assert iv.to_dict() == {"mean": 0.9, "ci95": [0.85, 0.95], "n": 120}
    assert "ci90" in Interval(0.9, 0.85, 0.95, level=0.9).to_dict()
    assert "ci97.5" in Interval(0.9, 0.85, 0.95, level=0.975).to_dict()
    with pytest.raises(AttributeError):
        iv.low = 0.0  # frozen


# ------------------------------------------------------------------------------------- paired difference


def test_paired_difference_of_a_model_with_itself_is_zero():
    labels, scores = _binormal(40, 60, shift=1.0, seed=8)
    iv = paired_bootstrap_diff(auc, (labels, scores), (labels, scores), stratify=0, n_boot=500)
    assert (iv.estimate, iv.low, iv.high) == (0.0, 0.0, 0.0)


def test_paired_difference_is_narrower_than_unpaired_for_correlated_models():
    rng = np.random.default_rng(9)
    labels = np.r_[np.ones(100, dtype=int), np.zeros(200, dtype=int)]
    difficulty = rng.normal(size=300)  # shared by both models: hard images are hard for both
    score_a = 1.0 * labels + difficulty + 0.2 * rng.normal(size=300)
    score_b = 0.9 * labels + difficulty + 0.2 * rng.normal(size=300)
    paired = paired_bootstrap_diff(auc, (labels, score_a), (labels, score_b), stratify=0)
    unpaired = math.hypot(
        _width(bootstrap_ci(auc, labels, score_a, stratify=0, seed=1)),
        _width(bootstrap_ci(auc, labels, score_b, stratify=0, seed=2)),
    )
    assert _width(paired) < 0.5 * unpaired
    assert paired.estimate == pytest.approx(auc(labels, score_a) - auc(labels, score_b))
    assert paired.low < paired.estimate < paired.high


def test_paired_difference_with_groups():
    patients = np.repeat(np.arange(20), 5)
    labels = np.repeat(np.arange(20) % 2, 5)
    iv = paired_bootstrap_diff(
        accuracy, (labels, labels), (labels, np.zeros(100)), groups=patients, n_boot=300
    )
    assert iv.estimate == pytest.approx(0.5)
    assert 0.2 < iv.low < 0.5 < iv.high < 0.8
    assert iv.verdict(0.0) == "met"
    with pytest.raises(ValueError, match="scored on"):
        paired_bootstrap_diff(accuracy, (labels, labels), (labels[:50], labels[:50]))


# ------------------------------------------------------------------------------------------------ pooling


def _mixture_quantile(means: np.ndarray, ses: np.ndarray, q: float) -> float:
    def cdf(x):
        return norm.cdf((x - means) / ses).mean() - q

    return brentq(cdf, means.min() - 10 * ses.max(), means.max() + 10 * ses.max())


def test_pooled_interval_matches_normal_mixture():
    rng = np.random.default_rng(10)
    shifts = np.array([0.0, 0.1, 0.25, 0.4])  # between-run spread comparable to the test-sampling se (0.05)
    runs = [(rng.normal(loc=m, size=400),) for m in shifts]
    pooled = pooled_bootstrap_ci(mean_of, runs, n_boot=4000)
    means = np.array([r[0].mean() for r in runs])
    ses = np.array([r[0].std(ddof=1) / 20 for r in runs])
    ref_low, ref_high = _mixture_quantile(means, ses, 0.025), _mixture_quantile(means, ses, 0.975)
    tolerance = 0.05 * (ref_high - ref_low)
    assert pooled.low == pytest.approx(ref_low, abs=tolerance)
    assert pooled.high == pytest.approx(ref_high, abs=tolerance)
    assert pooled.estimate == pytest.approx(means.mean())
    assert pooled.between_run_sd == pytest.approx(means.std(ddof=1))
    assert pooled.run_estimates == pytest.approx(tuple(means))
    assert (pooled.n_runs, pooled.n) == (4, 400)
    assert pooled.to_dict()["n_runs"] == 4 and "between_run_sd" in pooled.to_dict()
    single = bootstrap_ci(mean_of, *runs[0])
    assert _width(pooled) > 2 * _width(single)  # the between-run variance is kept


def test_pooled_identical_runs_reduce_to_one_run():
    labels, scores = _binormal(50, 150, shift=1.0, seed=12)
    pooled = pooled_bootstrap_ci(auc, [(labels, scores)] * 3, stratify=0)
    single = bootstrap_ci(auc, labels, scores, stratify=0)
    assert pooled.between_run_sd == 0.0
    assert pooled.estimate == single.estimate
    assert _width(pooled) == pytest.approx(_width(single), rel=0.1)


def test_pooled_runs_on_different_test_sets_with_per_run_strata():
    folds = [_binormal(20 + 5 * k, 60, shift=1.0, seed=20 + k) for k in range(3)]
    pooled = pooled_bootstrap_ci(auc, folds, stratify=[f[0] for f in folds], n_boot=600)
    assert pooled.n_undefined == 0 and pooled.n == 90
    assert isinstance(pooled, PooledInterval)
    with pytest.raises(ValueError, match="one entry per run"):
        pooled_bootstrap_ci(auc, folds, stratify=[folds[0][0]])


def test_pool_runs_of_intervals():
    one = Interval(0.8, 0.8 - Z95 * 0.02, 0.8 + Z95 * 0.02, n=200, n_boot=2000)
    alone = pool_runs([one])
    assert (alone.low, alone.high) == pytest.approx((one.low, one.high))
    assert math.isnan(alone.between_run_sd)
    two = Interval(0.9, 0.9 - Z95 * 0.02, 0.9 + Z95 * 0.02, n=200, n_boot=2000)
    both = pool_runs([one, two])
    sd = math.sqrt(0.02**2 + 0.05**2)  # within-run variance plus the variance of {0.8, 0.9}
    assert (both.low, both.high) == pytest.approx((0.85 - Z95 * sd, 0.85 + Z95 * sd))
    assert both.between_run_sd == pytest.approx(math.sqrt(0.005))
    assert pool_runs([one, two], level=0.9).to_dict()["ci90"][0] == pytest.approx(0.85 - norm.ppf(0.95) * sd)
    with pytest.raises(ValueError, match="different levels"):
        pool_runs([one, Interval(0.9, 0.85, 0.95, level=0.9)])


def test_pool_runs_agrees_with_pooled_bootstrap():
    rng = np.random.default_rng(13)
    runs = [(rng.normal(loc=m, size=300),) for m in (0.0, 0.03, 0.08)]
    from_intervals = pool_runs([bootstrap_ci(mean_of, *r, seed=i) for i, r in enumerate(runs)])
    pooled = pooled_bootstrap_ci(mean_of, runs)
    assert _width(from_intervals) == pytest.approx(_width(pooled), rel=0.15)
