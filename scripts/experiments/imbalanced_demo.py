"""Imbalanced demo data (1 : 8, no shortcut marker): the ABN bundle without class balance, judged at the
argmax (what an unchanged run reports), against its default (``class_balance auto``) judged at the threshold
chosen on validation; ECE before and after temperature scaling fitted on validation. Test-set figures with
stratified bootstrap 95 % intervals and the paired interval of the difference in balanced accuracy.

    python scripts/experiments/imbalanced_demo.py                # runs/experiments/imbalanced_demo/
    python scripts/experiments/imbalanced_demo.py --publish      # also the ABN docs' results file

Resumable: each arm's run folder resumes itself; evaluations are rerun (a few seconds). Nothing is chosen on
the test split: the threshold and the temperature come from the validation split, the arms are fixed here.
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
CONFIGS = REPO / "bundles" / "abn_classification" / "configs"
PUBLISHED = REPO / "bundles" / "abn_classification" / "docs" / "results" / "imbalanced_demo.json"
#: the arms, declared before any test figure is read: the class balance each trains with
ARMS = {"none": "none", "auto": "auto"}
N_BOOT = 2000
PARTS = ("train", "val", "test")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "experiments" / "imbalanced_demo")
    parser.add_argument("--data", type=Path, default=REPO / "demo_data" / "imbalanced")
    parser.add_argument("--n-train", type=int, default=1800)
    parser.add_argument("--n-val", type=int, default=450)
    parser.add_argument("--n-test", type=int, default=900)
    parser.add_argument("--class-ratio", type=float, default=8.0)
    parser.add_argument("--max-epochs", type=int, default=10, help="the bundle's default budget")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--publish", action="store_true", help=f"also write {PUBLISHED.relative_to(REPO)}")
    return parser.parse_args(argv)


def bundle(configs: list[Path], **overrides) -> None:
    """One ``monai.bundle run`` in its own process (as a user runs it), stopping on the first failure."""
    command = [
        sys.executable,
        "-m",
        "monai.bundle",
        "run",
        "--config_file",
        json.dumps([str(c) for c in configs]),
    ]
    for key, value in overrides.items():
        command += [f"--{key}", json.dumps(value) if not isinstance(value, str) else value]
    subprocess.run(command, check=True, cwd=REPO)


def read_predictions(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels, argmax predictions and operating-point decisions of an evaluation's ``predictions.csv``."""
    with path.open() as f:
        rows = list(csv.DictReader(f))
    return tuple(np.asarray([int(r[key]) for r in rows]) for key in ("label", "pred", "decision"))


def read_part_labels(data: Path, part: str) -> list[int]:
    with (data / "labels.csv").open() as f:
        return [int(row["label"]) for row in csv.DictReader(f) if row["split"] == part]


def arm_figures(metrics: dict) -> dict:
    intervals = metrics["intervals"]
    at = metrics["image_at_threshold"]
    return {
        "auc": intervals["auc"],
        "average_precision": metrics["image"]["average_precision"],
        "argmax": {
            "balanced_accuracy": intervals["balanced_accuracy"],
            "sensitivity": metrics["image"]["sensitivity"],
            "specificity": metrics["image"]["specificity"],
        },
        "at_threshold": {
            "threshold": metrics["operating_point"]["threshold"],
            "balanced_accuracy": intervals["balanced_accuracy_at_threshold"],
            "sensitivity": intervals["sensitivity_at_threshold"],
            "specificity": intervals["specificity_at_threshold"],
            "ppv": at["ppv"],
        },
        "ece": {
            "as_trained": metrics["calibration"]["ece"],
            "temperature_scaled": metrics["calibration"].get("ece_temperature_scaled"),
            "temperature": metrics["operating_point"]["temperature"],
            "temperature_fit": metrics["operating_point"].get("temperature_fit"),
        },
        "warnings": metrics.get("warnings", []),
    }


def main(argv=None) -> dict:
    from monai_xai.data import write_demo_dataset
    from monai_xai.metrics import balanced_accuracy, paired_bootstrap_diff
    from monai_xai.utils import atomic_write_json

    args = parse_args(argv)
    start = time.perf_counter()
    if not (args.data / "labels.csv").is_file():
        write_demo_dataset(
            args.data, args.n_train, args.n_val, args.n_test, size=64, seed=args.seed,
            positive_fraction=1.0 / (1.0 + args.class_ratio), marker=False,
        )  # fmt: skip
    arms, walls = {}, {}
    for arm, balance in ARMS.items():
        out = args.out / arm
        common = {
            "dataset_dir": str(args.data), "output_dir": str(out), "class_balance": balance,
            "max_epochs": args.max_epochs, "seed": args.seed,
        }  # fmt: skip
        t0 = time.perf_counter()
        bundle([CONFIGS / "train.json"], **common)
        bundle(
            [CONFIGS / "train.json", CONFIGS / "evaluate.json"], calibrate=True, eval_split="test", **common
        )
        walls[arm] = time.perf_counter() - t0
        metrics = json.loads((out / "eval_test" / "metrics.json").read_text())
        run = json.loads((out / "run.json").read_text())
        arms[arm] = {"class_balance": balance, "fingerprint": run["fingerprint"], **arm_figures(metrics)}
        arms[arm]["invocation_s"] = round(walls[arm], 1)  # training is resumed, not redone, on a rerun

    labels, none_argmax, _ = read_predictions(args.out / "none" / "eval_test" / "predictions.csv")
    labels_auto, _, auto_threshold = read_predictions(args.out / "auto" / "eval_test" / "predictions.csv")
    assert (labels == labels_auto).all(), "the arms were tested on different images"
    difference = paired_bootstrap_diff(
        lambda y, p: balanced_accuracy(y, p, classes=np.arange(2)),
        (labels, auto_threshold),
        (labels, none_argmax),
        n_boot=N_BOOT,
        stratify=0,
    )
    counts = {part: np.bincount(read_part_labels(args.data, part), minlength=2).tolist() for part in PARTS}
    report = {
        "dataset": {"kind": "demo phantoms without the marker", "size": 64, "class_counts": counts},
        "settings": {
            "mode": "dynamic",
            "architecture": "abn",
            "backbone": "resnet18",
            "max_epochs": args.max_epochs,
            "seed": args.seed,
            "operating_point": "Youden's J on validation",
            "calibrate": True,
            "n_boot": N_BOOT,
            "intervals": "stratified bootstrap, 95 %",
        },  # fmt: skip
        "arms": arms,
        "balanced_accuracy_difference": {
            "what": "auto at the validation threshold minus none at the argmax, same test images",
            **difference.to_dict(),
            "verdict_vs_zero": difference.verdict(0.0),
        },
        "invocation_s": round(time.perf_counter() - start, 1),
    }
    atomic_write_json(args.out / "results.json", report, indent=2)
    if args.publish:
        atomic_write_json(PUBLISHED, report, indent=2)
    print(json.dumps(report["balanced_accuracy_difference"]))
    return report


if __name__ == "__main__":
    main()
