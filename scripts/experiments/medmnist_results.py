"""The MedMNIST runs of ``scripts/experiments/abn_medmnist.sh`` as the results file of the ABN docs' table.

Reads ``<runs>/<dataset>/<arm>/eval_test/metrics.json`` (the bundle's test evaluation) and ``budget.json``
(epochs, stem, batch size and wall time, written by the driver) and writes them atomically beside the
MedMNIST v2 paper's ResNet-18 (28) figures, the anchors the issue sets.

Usage::

    python scripts/experiments/medmnist_results.py --runs runs/experiments/medmnist \\
        --datasets pneumoniamnist breastmnist --out bundles/abn_classification/docs/results/medmnist.json
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

from monai_xai.utils import atomic_write_text

#: Yang et al., MedMNIST v2 (Scientific Data 2023), Table: ResNet-18 (28), test ACC and AUC.
PAPER_RESNET18_28 = {
    "pneumoniamnist": {"accuracy": 0.854, "auc": 0.944},
    "breastmnist": {"accuracy": 0.863, "auc": 0.901},
}
ARMS = ("baseline", "plain")
METRICS = ("accuracy", "auc", "sensitivity", "specificity")


def arm_result(run: Path) -> dict:
    """Test metrics and budget of one evaluated run; a clear error when the run is missing or unfinished."""
    metrics_file, budget_file = run / "eval_test" / "metrics.json", run / "budget.json"
    for path in (metrics_file, budget_file):
        if not path.is_file():
            raise SystemExit(f"{path} is missing: run scripts/experiments/abn_medmnist.sh (it resumes)")
    metrics = json.loads(metrics_file.read_text())
    budget = json.loads(budget_file.read_text())
    return {**{name: metrics["image"][name] for name in METRICS}, **budget, "n_test": metrics["n_images"]}


def results(runs: Path, datasets: Sequence[str]) -> dict:
    return {
        "reference": "MedMNIST v2, ResNet-18 (28)",
        "datasets": {
            ds: {
                "paper": PAPER_RESNET18_28.get(ds),
                "arms": {arm: arm_result(runs / ds / arm) for arm in ARMS},
            }
            for ds in datasets
        },
    }


def main(argv: Sequence[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=Path, required=True, help="the driver's output folder")
    parser.add_argument("--datasets", nargs="+", required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    report = results(args.runs, args.datasets)
    atomic_write_text(args.out, json.dumps(report, indent=1) + "\n")
    print(f"written {args.out}")
    return report


if __name__ == "__main__":
    main()
