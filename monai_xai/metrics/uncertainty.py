"""Confidence intervals for reported results: bootstrap intervals, paired differences, pooling over runs.

Every number in a results table is a point estimate with a 95 % interval, and a target counts as met only
when the whole interval clears it (:meth:`Interval.verdict`). The intervals are percentile bootstraps of
any metric ``metric(*arrays) -> float`` computed on per-image arrays (labels, probabilities, per-image
scores):

* :func:`bootstrap_ci`: one model on one test set. ``stratify`` (usually the labels) keeps the class counts
  of every resample, so AUC and sensitivity stay defined on small, imbalanced test sets; ``groups``
  (patient ids) resamples whole patients, because images of one patient are not independent.
* :func:`paired_bootstrap_diff`: two models on the same images, the same resamples for both, so that the
  shared difficulty of the images cancels out of the difference.
* :func:`pooled_bootstrap_ci` and :func:`pool_runs`: several training runs (seeds, folds), keeping both
  the run-to-run and the test-sampling variance.

The metric functions (:func:`auc`, :func:`accuracy`, :func:`sensitivity`, :func:`specificity`,
:func:`balanced_accuracy`, :func:`mean_of`) return NaN where they are undefined (e.g. AUC with one class);
such resamples are dropped from the interval and counted in :attr:`Interval.n_undefined`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np

__all__ = [
    "Interval",
    "PooledInterval",
    "accuracy",
    "auc",
    "balanced_accuracy",
    "bootstrap_ci",
    "mean_of",
    "paired_bootstrap_diff",
    "pool_runs",
    "pooled_bootstrap_ci",
    "sensitivity",
    "specificity",
]

Metric = Callable[..., float]
# An array of one value per item, or the position of one of the metric's arrays (e.g. 0 for the labels).
ItemSpec = Any


@dataclass(frozen=True)
class Interval:
    """A point estimate with its confidence interval.

    ``estimate`` is the metric on the full data; ``low``/``high`` the percentile interval at ``level``;
    ``n`` the number of items (images); ``n_boot`` the resamples drawn, of which ``n_undefined`` gave NaN
    and were left out of the interval.
    """

    estimate: float
    low: float
    high: float
    level: float = 0.95
    n: int = 0
    n_boot: int = 0
    n_undefined: int = 0

    def _ci_key(self) -> str:
        return f"ci{self.level * 100:g}"

    def to_dict(self) -> dict[str, Any]:
        """``{"mean": estimate, "ci95": [low, high], "n": n}`` for a results file (``ci90`` at level 0.9)."""
        return {"mean": self.estimate, self._ci_key(): [self.low, self.high], "n": self.n}

    def clears(self, target: float, higher_is_better: bool = True) -> bool:
        """True only if the whole interval lies strictly on the good side of ``target``."""
        return bool(self.low > target) if higher_is_better else bool(self.high < target)

    def verdict(self, target: float, higher_is_better: bool = True) -> str:
        """ "met" (interval clears the target), "missed" (wholly on the wrong side) or undecided."""
        if self.clears(target, higher_is_better):
            return "met"
        missed = self.high < target if higher_is_better else self.low > target
        return "missed" if missed else "not distinguishable at this n"

    def __str__(self) -> str:
        return f"{self.estimate:.4g} [{self.low:.4g}, {self.high:.4g}] ({self._ci_key()}, n={self.n})"


@dataclass(frozen=True)
class PooledInterval(Interval):
    """An interval pooled over training runs; ``n`` is the largest test set of one run.

    ``between_run_sd`` is the standard deviation (ddof=1) of the per-run estimates in ``run_estimates``:
    the part of the uncertainty that a larger test set would not remove.
    """

    between_run_sd: float = math.nan
    n_runs: int = 1
    run_estimates: tuple[float, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """:meth:`Interval.to_dict` plus ``n_runs`` and ``between_run_sd``."""
        return {**super().to_dict(), "n_runs": self.n_runs, "between_run_sd": self.between_run_sd}


# ----------------------------------------------------------------------------------------------- metrics


def _flat(values: Any) -> np.ndarray:
    return np.asarray(values).reshape(-1)


def auc(labels: Any, scores: Any, positive: int = 1) -> float:
    """Binary ROC AUC in Mann-Whitney form (ties count half); NaN without both classes.

    O(n log n) from average ranks, so it is cheap enough to call thousands of times in a bootstrap.
    ``scores`` may be (N,) scores of the positive class or (N, C) probabilities (column ``positive``).
    """
    y = _flat(labels) == positive
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim == 2:
        s = s[:, positive]
    s = s.reshape(-1)
    if s.size != y.size:
        raise ValueError(f"{y.size} labels but {s.size} scores")
    n_pos = int(y.sum())
    n_neg = y.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return math.nan
    order = np.argsort(s, kind="stable")
    ordered = s[order]
    new_value = np.empty(s.size, dtype=bool)
    new_value[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=new_value[1:])
    starts = np.flatnonzero(new_value)
    ends = np.append(starts[1:], s.size)
    mean_rank = (starts + ends + 1) / 2.0  # 1-based ranks starts+1 .. ends share their mean
    ranks = mean_rank[np.cumsum(new_value) - 1]
    rank_sum = ranks[y[order]].sum()
    return float((rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def accuracy(labels: Any, preds: Any) -> float:
    """Fraction of correct predictions; NaN for no items."""
    y, p = _flat(labels), _flat(preds)
    return float(np.mean(y == p)) if y.size else math.nan


def sensitivity(labels: Any, preds: Any, positive: int = 1) -> float:
    """Recall of the ``positive`` class; NaN when no item has that label."""
    is_pos = _flat(labels) == positive
    return float(np.mean(_flat(preds)[is_pos] == positive)) if is_pos.any() else math.nan


def specificity(labels: Any, preds: Any, positive: int = 1) -> float:
    """Fraction of non-``positive`` items not predicted ``positive``; NaN when every item is positive."""
    is_neg = _flat(labels) != positive
    return float(np.mean(_flat(preds)[is_neg] != positive)) if is_neg.any() else math.nan


def balanced_accuracy(labels: Any, preds: Any, classes: Sequence[int] | None = None) -> float:
    """Mean recall over classes (multi-class too), insensitive to class imbalance.

    By default over the classes present in ``labels``; with ``classes`` given, a resample missing one of
    them is undefined (NaN) rather than silently averaged over fewer classes.
    """
    y, p = _flat(labels), _flat(preds)
    if not y.size:
        return math.nan
    present, codes, counts = np.unique(y, return_inverse=True, return_counts=True)
    if classes is not None and not np.isin(np.asarray(classes), present).all():
        return math.nan
    hits = np.bincount(codes.reshape(-1), weights=(y == p).astype(np.float64), minlength=present.size)
    return float(np.mean(hits / counts))


def mean_of(values: Any) -> float:
    """Mean of per-image scores (pointing game hits, energy inside the mask); NaN entries are left out.

    An image whose score is undefined (no mask) then does not count, and a resample with no defined score
    is NaN.
    """
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    v = v[~np.isnan(v)]
    return float(v.mean()) if v.size else math.nan


# ------------------------------------------------------------------------------------------- resampling


def _as_arrays(arrays: Sequence[Any], what: str) -> tuple[np.ndarray, ...]:
    out = tuple(np.asarray(a) for a in arrays)
    if not out:
        raise ValueError(f"{what}: the metric needs at least one array")
    if any(a.ndim == 0 for a in out):
        raise ValueError(f"{what}: arrays must have one entry per item, got a scalar")
    sizes = {len(a) for a in out}
    if len(sizes) != 1:
        raise ValueError(f"{what}: arrays differ in length {sorted(sizes)}")
    if not out[0].shape[0]:
        raise ValueError(f"{what}: no items")
    return out


def _resolve(spec: ItemSpec, arrays: tuple[np.ndarray, ...], n: int, name: str) -> np.ndarray | None:
    if spec is None:
        return None
    if isinstance(spec, (int, np.integer)) and not isinstance(spec, bool):
        values = arrays[int(spec)]
    else:
        values = np.asarray(spec)
    if values.ndim != 1 or values.shape[0] != n:
        raise ValueError(f"{name} must have one value per item ({n}), got shape {values.shape}")
    return values


class _Resampler:
    """Draws bootstrap index arrays: per stratum, of items or of whole groups (cluster bootstrap)."""

    def __init__(self, n: int, stratify: np.ndarray | None, groups: np.ndarray | None):
        self.n = n
        if groups is None:
            self.order = None
            n_units = n
            unit_strata = None if stratify is None else np.unique(stratify, return_inverse=True)[1]
        else:
            group_codes = np.unique(groups, return_inverse=True)[1].reshape(-1)
            self.order = np.argsort(group_codes, kind="stable")
            self.counts = np.bincount(group_codes)
            self.starts = np.cumsum(self.counts) - self.counts
            n_units = self.counts.size
            unit_strata = None
            if stratify is not None:
                codes = np.unique(stratify, return_inverse=True)[1].reshape(-1)[self.order]
                low = np.minimum.reduceat(codes, self.starts)
                if (np.maximum.reduceat(codes, self.starts) != low).any():
                    raise ValueError("with groups, stratify must be constant within each group")
                unit_strata = low
        self.n_units = n_units
        if unit_strata is None:
            self.strata = None
        else:
            unit_strata = unit_strata.reshape(-1)
            self.strata = [np.flatnonzero(unit_strata == s) for s in range(int(unit_strata.max()) + 1)]

    def draw(self, rng: np.random.Generator) -> np.ndarray:
        if self.strata is None:
            units = rng.integers(0, self.n_units, self.n_units)
        else:
            units = np.concatenate([s[rng.integers(0, s.size, s.size)] for s in self.strata])
        if self.order is None:
            return units
        lengths = self.counts[units]
        offsets = np.repeat(self.starts[units] - (np.cumsum(lengths) - lengths), lengths)
        return self.order[offsets + np.arange(lengths.sum())]


def _check_options(n_boot: int, level: float) -> None:
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must lie in (0, 1), got {level}")
    if n_boot < 1:
        raise ValueError(f"n_boot must be at least 1, got {n_boot}")


def _percentiles(replicates: np.ndarray, level: float) -> tuple[float, float, int]:
    defined = replicates[~np.isnan(replicates)]
    n_undefined = replicates.size - defined.size
    if not defined.size:
        return math.nan, math.nan, n_undefined
    alpha = (1.0 - level) / 2.0
    low, high = np.quantile(defined, [alpha, 1.0 - alpha])
    return float(low), float(high), n_undefined


def _take(arrays: tuple[np.ndarray, ...], idx: np.ndarray) -> tuple[np.ndarray, ...]:
    return tuple(a[idx] for a in arrays)


def bootstrap_ci(
    metric: Metric,
    *arrays: Any,
    n_boot: int = 2000,
    level: float = 0.95,
    stratify: ItemSpec = None,
    groups: ItemSpec = None,
    seed: int = 0,
) -> Interval:
    """Percentile bootstrap interval of ``metric(*arrays)``, resampling items (rows of every array) together.

    ``stratify`` (an array, or the position of one of ``arrays``, e.g. 0 for the labels) resamples within
    each stratum, so every resample keeps the class counts. ``groups`` (patient ids) resamples whole groups
    instead of items: correlated images of one patient are one unit of evidence, not several. Resamples
    where the metric is NaN are dropped and counted in ``n_undefined``.
    """
    _check_options(n_boot, level)
    data = _as_arrays(arrays, "bootstrap_ci")
    n = data[0].shape[0]
    sampler = _Resampler(n, _resolve(stratify, data, n, "stratify"), _resolve(groups, data, n, "groups"))
    rng = np.random.default_rng(seed)
    replicates = np.array([metric(*_take(data, sampler.draw(rng))) for _ in range(n_boot)], dtype=np.float64)
    low, high, n_undefined = _percentiles(replicates, level)
    return Interval(float(metric(*data)), low, high, level, n, n_boot, n_undefined)


def paired_bootstrap_diff(
    metric: Metric,
    arrays_a: Sequence[Any],
    arrays_b: Sequence[Any],
    *,
    n_boot: int = 2000,
    level: float = 0.95,
    stratify: ItemSpec = None,
    groups: ItemSpec = None,
    seed: int = 0,
) -> Interval:
    """Interval of ``metric(*arrays_a) - metric(*arrays_b)`` for two models scored on the same items.

    Both models see the same resample in every replicate, so what they share (hard and easy images)
    cancels and the interval is that of the difference, far narrower than two separate intervals suggest
    when the models' errors are correlated. A positive interval (``verdict(0) == "met"``) means a beats b.
    ``stratify``/``groups`` as in :func:`bootstrap_ci`; an integer refers to a position in ``arrays_a``.
    """
    _check_options(n_boot, level)
    data_a = _as_arrays(arrays_a, "paired_bootstrap_diff (a)")
    data_b = _as_arrays(arrays_b, "paired_bootstrap_diff (b)")
    n = data_a[0].shape[0]
    if data_b[0].shape[0] != n:
        raise ValueError(f"the two models are scored on {n} and {data_b[0].shape[0]} items")
    sampler = _Resampler(n, _resolve(stratify, data_a, n, "stratify"), _resolve(groups, data_a, n, "groups"))
    rng = np.random.default_rng(seed)
    replicates = np.empty(n_boot, dtype=np.float64)
    for b in range(n_boot):
        idx = sampler.draw(rng)
        replicates[b] = metric(*_take(data_a, idx)) - metric(*_take(data_b, idx))
    low, high, n_undefined = _percentiles(replicates, level)
    estimate = float(metric(*data_a)) - float(metric(*data_b))
    return Interval(estimate, low, high, level, n, n_boot, n_undefined)


def _per_run(spec: ItemSpec, n_runs: int, name: str) -> list[ItemSpec]:
    if spec is None or (isinstance(spec, (int, np.integer)) and not isinstance(spec, bool)):
        return [spec] * n_runs
    if len(spec) != n_runs:
        raise ValueError(f"{name} needs one entry per run ({n_runs}), got {len(spec)}")
    return list(spec)


def _between_sd(estimates: np.ndarray) -> float:
    return float(np.std(estimates, ddof=1)) if estimates.size > 1 else math.nan


def pooled_bootstrap_ci(
    metric: Metric,
    runs: Sequence[Sequence[Any]],
    *,
    n_boot: int = 2000,
    level: float = 0.95,
    stratify: ItemSpec = None,
    groups: ItemSpec = None,
    seed: int = 0,
) -> PooledInterval:
    """Interval for the metric of one training run, pooled over runs (seeds, folds).

    ``runs`` holds one tuple of arrays per run, e.g. ``[(labels, probs_seed0), (labels, probs_seed1)]``;
    the runs may be scored on the same test images or on different ones (cross-validation folds). Each
    bootstrap replicate picks a run and resamples that run's images, so the percentile interval is that of
    the mixture of the per-run bootstrap distributions: its spread covers both the test-sampling variance
    and the between-run variance (a retrained model lands elsewhere). Runs are assigned to replicates in
    equal shares (a shuffled round-robin), so the mixture weights are exactly uniform rather than only in
    expectation. This is the interval for what one run of the recipe achieves, which is what a deployed
    model is; it does not shrink with the number of runs, as an interval for the mean over runs would.
    The estimate is the mean of the per-run estimates, ``between_run_sd`` their standard deviation.

    ``stratify``/``groups``: None, a position in each run's arrays, or a list with one array per run.
    """
    _check_options(n_boot, level)
    if not runs:
        raise ValueError("pooled_bootstrap_ci needs at least one run")
    data = [_as_arrays(run, f"pooled_bootstrap_ci (run {i})") for i, run in enumerate(runs)]
    strata = _per_run(stratify, len(data), "stratify")
    group_ids = _per_run(groups, len(data), "groups")
    samplers = []
    for run, s, g in zip(data, strata, group_ids):
        n = run[0].shape[0]
        samplers.append(_Resampler(n, _resolve(s, run, n, "stratify"), _resolve(g, run, n, "groups")))
    rng = np.random.default_rng(seed)
    assignment = rng.permutation(np.arange(n_boot) % len(data))
    replicates = np.empty(n_boot, dtype=np.float64)
    for b, r in enumerate(assignment):
        replicates[b] = metric(*_take(data[r], samplers[r].draw(rng)))
    low, high, n_undefined = _percentiles(replicates, level)
    estimates = np.array([metric(*run) for run in data], dtype=np.float64)
    return PooledInterval(
        estimate=float(estimates.mean()),
        low=low,
        high=high,
        level=level,
        n=max(s.n for s in samplers),
        n_boot=n_boot,
        n_undefined=n_undefined,
        between_run_sd=_between_sd(estimates),
        n_runs=len(data),
        run_estimates=tuple(float(e) for e in estimates),
    )


def pool_runs(intervals: Sequence[Interval], level: float | None = None) -> PooledInterval:
    """Pool per-run intervals when only those were kept (normal approximation to :func:`pooled_bootstrap_ci`).

    Each run's test-sampling variance is read back from its interval width, ``((high - low) / 2z)^2``; the
    pooled variance is their mean plus the (ddof=0) variance of the run estimates, i.e. the variance of
    the equal-weight mixture. The interval is ``mean estimate ± z * sqrt(pooled variance)``. The inputs
    must share one level; ``level`` sets the output level (default: theirs).
    """
    if not intervals:
        raise ValueError("pool_runs needs at least one interval")
    levels = {iv.level for iv in intervals}
    if len(levels) != 1:
        raise ValueError(f"intervals have different levels {sorted(levels)}")
    in_level = levels.pop()
    out_level = in_level if level is None else level
    _check_options(1, out_level)
    z_in = NormalDist().inv_cdf(0.5 + in_level / 2.0)
    z_out = NormalDist().inv_cdf(0.5 + out_level / 2.0)
    estimates = np.array([iv.estimate for iv in intervals], dtype=np.float64)
    within = np.array([((iv.high - iv.low) / (2.0 * z_in)) ** 2 for iv in intervals], dtype=np.float64)
    sd = math.sqrt(float(within.mean() + estimates.var()))
    mean = float(estimates.mean())
    return PooledInterval(
        estimate=mean,
        low=mean - z_out * sd,
        high=mean + z_out * sd,
        level=out_level,
        n=max(iv.n for iv in intervals),
        n_boot=sum(iv.n_boot for iv in intervals),
        n_undefined=sum(iv.n_undefined for iv in intervals),
        between_run_sd=_between_sd(estimates),
        n_runs=len(intervals),
        run_estimates=tuple(float(e) for e in estimates),
    )
