"""Decisions and calibration of the BUSI arms: what a clinician would read from each cross-validated arm.

Reads each arm's folds (``<runs>/<arm>/fold<k>/{run.json,eval_test/metrics.json,eval_test/predictions.csv}``,
written by ``python -m monai_xai.crossval`` with the ABN bundle's evaluate.json) and writes one results file
(``bundles/abn_classification/docs/results/busi_binary_decisions.json`` with ``--publish``): per arm the test
AUC, balanced accuracy at the argmax and at the threshold chosen on each fold's validation split, sensitivity
and specificity there, all pooled over the folds with 95 % intervals that cover both the fold-to-fold and the
test-sampling variance (:func:`monai_xai.metrics.pooled_bootstrap_ci`, stratified by label); ECE as trained
and temperature-scaled (mean ± sd over the folds); and the paired differences named on the command line. The
task and split come from the folds' ``run.json``.

Usage::

    R=runs/experiments/abn_busi-128px-40ep-seed0/busi_binary_dedup
    python -m monai_xai.experiments busi_decisions --runs $R --arms baseline dynamic \\
        --differences dynamic-baseline --out runs/experiments/busi_decisions.json   # or --publish
"""

from __future__ import annotations

import argparse
import csv
import json
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from monai_xai.errors import InputError

from .results import (
    Block,
    add_output_arguments,
    bundle_results,
    finite,
    fmt,
    fmt_ci,
    mean_sd,
    output_path,
    vs_zero,
    write_results,
)

__all__ = ["BLOCKS", "PUBLISHED", "arm_figures", "collect", "difference", "main", "render"]

PUBLISHED = "bundles/abn_classification/docs/results/busi_binary_decisions.json"
#: bootstrap resamples of every interval
N_BOOT = 2000


def read_fold(fold_dir: Path) -> dict:
    """A fold's test predictions (labels, p(class 1) after its temperature, decisions), metrics, identity."""
    record = fold_dir / "run.json"
    if not record.is_file():
        raise InputError(
            record, "missing: not a fold of a bundle run (python -m monai_xai.crossval writes it)"
        )
    with (fold_dir / "eval_test" / "predictions.csv").open() as f:
        rows = list(csv.DictReader(f))
    prob_columns = [c for c in rows[0] if c.startswith("prob_")]
    if len(prob_columns) != 2:
        raise InputError(fold_dir / "eval_test" / "predictions.csv", f"{len(prob_columns)} classes, not 2")
    return {
        "sources": [r["source"] for r in rows],
        "labels": np.asarray([int(r["label"]) for r in rows]),
        "scores": np.asarray([float(r[prob_columns[1]]) for r in rows]),
        "argmax": np.asarray([int(r["pred"]) for r in rows]),
        "decision": np.asarray([int(r["decision"]) for r in rows]),
        "metrics": json.loads((fold_dir / "eval_test" / "metrics.json").read_text()),
        "data": json.loads(record.read_text())["identity"]["data"],
    }


def folds_of(arm_dir: Path) -> list[dict]:
    """Every evaluated fold of one arm, in fold order."""
    folds = sorted(arm_dir.glob("fold*/eval_test/predictions.csv"))
    if not folds:
        raise InputError(arm_dir, "no evaluated folds (fold<k>/eval_test/predictions.csv)")
    return [read_fold(p.parent.parent) for p in folds]


def _pooled(metric: Callable[..., float], runs: Sequence[tuple], seed: int = 0) -> dict:
    """The pooled interval as a results entry; one fold has no between-run sd (None, not NaN, in JSON)."""
    from monai_xai.metrics.uncertainty import pooled_bootstrap_ci

    return finite(pooled_bootstrap_ci(metric, list(runs), n_boot=N_BOOT, stratify=0, seed=seed).to_dict())


def _balanced(labels: np.ndarray, preds: np.ndarray) -> float:
    from monai_xai.metrics.uncertainty import balanced_accuracy

    return balanced_accuracy(labels, preds, classes=np.arange(2))


def arm_figures(folds: list[dict]) -> dict:
    """One arm's headline figures pooled over its folds, and each fold's operating point and calibration."""
    from monai_xai.metrics.uncertainty import auc, sensitivity, specificity

    figures = {
        "auc": _pooled(auc, [(f["labels"], f["scores"]) for f in folds]),
        "balanced_accuracy_argmax": _pooled(_balanced, [(f["labels"], f["argmax"]) for f in folds]),
        "balanced_accuracy_at_threshold": _pooled(_balanced, [(f["labels"], f["decision"]) for f in folds]),
        "sensitivity_at_threshold": _pooled(sensitivity, [(f["labels"], f["decision"]) for f in folds]),
        "specificity_at_threshold": _pooled(specificity, [(f["labels"], f["decision"]) for f in folds]),
    }
    calibration = [f["metrics"]["calibration"] for f in folds]
    points = [f["metrics"]["operating_point"] for f in folds]
    figures["ece"] = {
        "as_trained": mean_sd(c["ece"] for c in calibration),
        # a fold whose temperature was not applied counts as missing, not as its unscaled ECE
        "temperature_scaled": mean_sd(c.get("ece_temperature_scaled") for c in calibration),
        "per_fold": [[c["ece"], c.get("ece_temperature_scaled")] for c in calibration],
    }
    figures["thresholds"] = [p["threshold"] for p in points]
    figures["temperatures"] = [p["temperature"] for p in points]
    figures["warnings"] = [w for f in folds for w in f["metrics"].get("warnings", [])]
    return figures


def difference(folds_a: list[dict], folds_b: list[dict]) -> dict:
    """AUC and balanced accuracy at the threshold of arm a minus arm b, paired on the same test images."""
    from monai_xai.metrics.uncertainty import auc

    for a, b in zip(folds_a, folds_b, strict=True):
        if a["sources"] != b["sources"]:
            raise InputError(None, "the arms' folds were tested on different images")

    def auc_gap(y: np.ndarray, sa: np.ndarray, sb: np.ndarray) -> float:
        return auc(y, sa) - auc(y, sb)

    def balanced_gap(y: np.ndarray, da: np.ndarray, db: np.ndarray) -> float:
        return _balanced(y, da) - _balanced(y, db)

    pairs = list(zip(folds_a, folds_b))
    found = {
        "auc": _pooled(auc_gap, [(a["labels"], a["scores"], b["scores"]) for a, b in pairs]),
        "balanced_accuracy_at_threshold": _pooled(
            balanced_gap, [(a["labels"], a["decision"], b["decision"]) for a, b in pairs]
        ),
    }
    for stats in found.values():
        stats["verdict_vs_zero"] = vs_zero(stats)
    return found


def _split_of(data: dict) -> str:
    split_file = data.get("datalist_args", {}).get("split_file")
    return split_file["file"] if split_file else f"seeded split of {data['dataset']} (no split file)"


def collect(runs: Path, arms: Sequence[str], differences: Sequence[str]) -> dict:
    """The results file of ``arms`` under ``runs``, with the differences ``a-b`` whose arms both ran."""
    folds = {arm: folds_of(runs / arm) for arm in arms}
    first = folds[arms[0]]
    for arm, found in folds.items():
        if len(found) != len(first) or any(f["data"] != g["data"] for f, g in zip(found, first)):
            raise InputError(runs / arm, f"its folds were trained on other data than {arms[0]}'s")
    labels, data = first[0]["labels"], first[0]["data"]
    report = {
        "task": " vs ".join(data["class_names"]),
        "split": _split_of(data),
        "test_images": int(labels.size),
        "test_class_counts": np.bincount(labels, minlength=2).tolist(),
        "folds": len(first),
        "intervals": f"95 %, pooled over folds: each of {N_BOOT} resamples draws a fold and resamples its "
        "test images by class",
        "operating_point": "Youden's J on each fold's validation split, after temperature scaling fitted "
        "there",
        "arms": {arm: arm_figures(found) for arm, found in folds.items()},
        "differences": {},
    }
    for pair in differences:
        a, b = pair.split("-")
        if a in folds and b in folds:
            report["differences"][pair] = difference(folds[a], folds[b])
    return report


def _ece(value: float | dict) -> str:
    """An ECE cell: the mean over folds (± sd with several), with the folds it is missing for."""
    if not isinstance(value, dict):  # results files before mean_sd: the plain mean
        return fmt(value)
    text = fmt(value["mean"]) + (f" ± {fmt(value['sd'])}" if value["sd"] is not None else "")
    return text + (f" ({value['missing']} fold(s) not scaled)" if value["missing"] else "")


def render(report: dict) -> str:
    """The arms as decisions: AUC, balanced accuracy at the argmax and at the validation threshold, with
    their intervals; ECE as trained and temperature-scaled; the paired differences against 0."""
    rows = [
        "| arm | test AUC | balanced accuracy at the argmax | balanced accuracy at the threshold "
        "| sensitivity / specificity at the threshold | thresholds (val) | ECE as trained "
        "| ECE temperature-scaled |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, arm in report["arms"].items():
        cells = [
            f"`{name}`",
            fmt_ci(arm["auc"]),
            fmt_ci(arm["balanced_accuracy_argmax"]),
            fmt_ci(arm["balanced_accuracy_at_threshold"]),
            f"{fmt_ci(arm['sensitivity_at_threshold'], 2)} / {fmt_ci(arm['specificity_at_threshold'], 2)}",
            ", ".join(fmt(t, 2) for t in arm["thresholds"]),
            _ece(arm["ece"]["as_trained"]),
            _ece(arm["ece"]["temperature_scaled"]),
        ]
        rows.append("| " + " | ".join(cells) + " |")
    rows.append("")
    for pair, found in report["differences"].items():
        parts = [
            f"{name.replace('_', ' ')} {fmt_ci(stats)} ({vs_zero(stats)})" for name, stats in found.items()
        ]
        rows.append(f"- `{pair.replace('-', '` minus `')}`: " + "; ".join(parts) + ".")
    counts, folds = report["test_class_counts"], report["folds"]
    rows += [
        "",
        f"Test set {report['test_images']} images ({counts[0]} benign, {counts[1]} malignant), "
        f"{folds} fold{'s' if folds != 1 else ''}; intervals {report['intervals']}; "
        f"operating point: {report['operating_point']}.",
    ]
    return "\n".join(rows) + "\n"


BLOCKS: dict[str, Block] = {
    "busi_binary_decisions": bundle_results("abn_classification", "busi_binary_decisions", render)
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m monai_xai.experiments busi_decisions",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--runs", type=Path, required=True, help="folder of the arms' crossval folders")
    parser.add_argument("--arms", nargs="+", required=True, help="the arms' folder names under --runs")
    parser.add_argument(
        "--differences",
        nargs="*",
        default=["dynamic-conventional", "dynamic-baseline"],
        help="a-b pairs of arms, each paired on the same test images (skipped when an arm did not run)",
    )
    add_output_arguments(parser, published=PUBLISHED)
    args = parser.parse_args(argv)
    path = output_path(args, PUBLISHED)
    write_results(collect(args.runs, args.arms, args.differences), path, publish=args.publish)
    print(f"written {path}")
    return 0
