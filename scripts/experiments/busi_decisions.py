"""Decisions and calibration of the BUSI arms: what a clinician would read from each cross-validated arm.

Reads each arm's folds (``<runs>/<arm>/fold<k>/eval_test/{metrics,predictions}.csv``, written by
``python -m monai_xai.crossval`` with the ABN bundle's evaluate.json) and writes one results file: per arm the
test AUC, balanced accuracy at the argmax and at the threshold chosen on each fold's validation split,
sensitivity and specificity there, ECE as trained and temperature-scaled, all pooled over the folds with 95 %
intervals that cover both the fold-to-fold and the test-sampling variance
(:func:`monai_xai.metrics.pooled_bootstrap_ci`), and the paired differences named on the command line.

    R=runs/experiments/abn_busi-128px-40ep-seed0/busi_binary_dedup
    python scripts/experiments/busi_decisions.py --runs $R --arms baseline plain conventional dynamic \\
        --out runs/experiments/busi_decisions.json [--publish]
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
PUBLISHED = REPO / "bundles" / "abn_classification" / "docs" / "results" / "busi_binary_decisions.json"
N_BOOT = 2000


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=Path, required=True, help="folder of the arms' crossval folders")
    parser.add_argument("--arms", nargs="+", required=True)
    parser.add_argument(
        "--differences", nargs="*", default=["dynamic-conventional", "dynamic-baseline"], help="a-b pairs"
    )
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--publish", action="store_true", help=f"also write {PUBLISHED.relative_to(REPO)}")
    return parser.parse_args(argv)


def read_fold(fold_dir: Path) -> dict:
    """A fold's test predictions (labels, p(class 1) after its temperature, decisions) and metrics."""
    with (fold_dir / "eval_test" / "predictions.csv").open() as f:
        rows = list(csv.DictReader(f))
    prob_columns = [c for c in rows[0] if c.startswith("prob_")]
    return {
        "sources": [r["source"] for r in rows],
        "labels": np.asarray([int(r["label"]) for r in rows]),
        "scores": np.asarray([float(r[prob_columns[1]]) for r in rows]),
        "argmax": np.asarray([int(r["pred"]) for r in rows]),
        "decision": np.asarray([int(r["decision"]) for r in rows]),
        "metrics": json.loads((fold_dir / "eval_test" / "metrics.json").read_text()),
    }


def folds_of(arm_dir: Path) -> list[dict]:
    folds = sorted(arm_dir.glob("fold*/eval_test/predictions.csv"))
    if not folds:
        raise SystemExit(f"{arm_dir}: no evaluated folds (fold<k>/eval_test/predictions.csv)")
    return [read_fold(p.parent.parent) for p in folds]


def pooled(metric: Callable, runs: Sequence[tuple], seed: int = 0) -> dict:
    from monai_xai.metrics import pooled_bootstrap_ci

    return pooled_bootstrap_ci(metric, list(runs), n_boot=N_BOOT, stratify=0, seed=seed).to_dict()


def arm_figures(folds: list[dict]) -> dict:
    from monai_xai.metrics import auc, balanced_accuracy, sensitivity, specificity

    def balanced(y, p):
        return balanced_accuracy(y, p, classes=np.arange(2))

    figures = {
        "auc": pooled(auc, [(f["labels"], f["scores"]) for f in folds]),
        "balanced_accuracy_argmax": pooled(balanced, [(f["labels"], f["argmax"]) for f in folds]),
        "balanced_accuracy_at_threshold": pooled(balanced, [(f["labels"], f["decision"]) for f in folds]),
        "sensitivity_at_threshold": pooled(sensitivity, [(f["labels"], f["decision"]) for f in folds]),
        "specificity_at_threshold": pooled(specificity, [(f["labels"], f["decision"]) for f in folds]),
    }
    calibration = [f["metrics"]["calibration"] for f in folds]
    points = [f["metrics"]["operating_point"] for f in folds]
    figures["ece"] = {
        "as_trained": statistics.fmean(c["ece"] for c in calibration),
        "temperature_scaled": statistics.fmean(
            c.get("ece_temperature_scaled", c["ece"]) for c in calibration
        ),
        "per_fold": [[c["ece"], c.get("ece_temperature_scaled")] for c in calibration],
    }
    figures["thresholds"] = [p["threshold"] for p in points]
    figures["temperatures"] = [p["temperature"] for p in points]
    figures["warnings"] = [w for f in folds for w in f["metrics"].get("warnings", [])]
    return figures


def difference(folds_a: list[dict], folds_b: list[dict]) -> dict:
    """AUC and balanced accuracy at the threshold of arm a minus arm b, paired on the same test images."""
    from monai_xai.metrics import auc, balanced_accuracy

    for a, b in zip(folds_a, folds_b, strict=True):
        if a["sources"] != b["sources"]:
            raise SystemExit("the arms' folds were tested on different images")

    def auc_gap(y, sa, sb):
        return auc(y, sa) - auc(y, sb)

    def balanced_gap(y, da, db):
        classes = np.arange(2)
        return balanced_accuracy(y, da, classes=classes) - balanced_accuracy(y, db, classes=classes)

    found = {
        "auc": pooled(auc_gap, [(a["labels"], a["scores"], b["scores"]) for a, b in zip(folds_a, folds_b)]),
        "balanced_accuracy_at_threshold": pooled(
            balanced_gap, [(a["labels"], a["decision"], b["decision"]) for a, b in zip(folds_a, folds_b)]
        ),
    }
    for stats in found.values():
        low, high = stats["ci95"]
        stats["verdict_vs_zero"] = (
            "above" if low > 0 else "below" if high < 0 else "not distinguishable at this n"
        )
    return found


def main(argv=None) -> dict:
    from monai_xai.utils import atomic_write_json

    args = parse_args(argv)
    folds = {arm: folds_of(args.runs / arm) for arm in args.arms}
    labels = folds[args.arms[0]][0]["labels"]
    report = {
        "task": "benign vs malignant",
        "split": "configs/datasets/busi_splits_dedup.json",
        "test_images": int(labels.size),
        "test_class_counts": np.bincount(labels, minlength=2).tolist(),
        "folds": len(folds[args.arms[0]]),
        "intervals": f"95 %, pooled over folds: each of {N_BOOT} resamples draws a fold and resamples its "
        "test images by class",
        "operating_point": "Youden's J on each fold's validation split, after temperature scaling fitted "
        "there",
        "arms": {arm: arm_figures(found) for arm, found in folds.items()},
        "differences": {},
    }
    for pair in args.differences:
        a, b = pair.split("-")
        if a in folds and b in folds:
            report["differences"][pair] = difference(folds[a], folds[b])
    atomic_write_json(args.out, report, indent=2)
    if args.publish:
        atomic_write_json(PUBLISHED, report, indent=2)
    return report


if __name__ == "__main__":
    main()
