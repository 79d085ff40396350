"""Results file of scripts/experiments/multiscale_retinamnist.sh: DR grading on the RetinaMNIST test split.

Reads ``<out>/<arm>/eval_test/{metrics.json,predictions.csv}`` for each arm and writes, atomically, the
quadratic weighted kappa (computed from the written predictions), accuracy and mean one-vs-rest AUC per
arm, the MedMNIST v2 paper's ResNet-18 (28) beside them, whether each arm reaches that row, and the
settings; ``scripts/render_results.py`` renders it (block ``retinamnist``). An arm not evaluated yet is an
error naming its folder.

    python scripts/experiments/retinamnist_results.py runs/experiments/retinamnist-10ep \\
        --results bundles/multiscale_abn_correction/docs/results/retinamnist.json --epochs 10
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

from monai_xai.utils import atomic_write_json

#: arm (run folder below ``<out>``) -> row label
ARMS = {
    "baseline": "ResNet18 (`baseline`)",
    "plain": "ResNet18 + ABN (`plain`)",
    "multiscale": "Multi-scale ABN (ResNet18)",
}
#: MedMNIST v2 (Yang et al., Scientific Data 2023), RetinaMNIST, ResNet-18 (28): test ACC and AUC.
PAPER = {"accuracy": 0.524, "auc": 0.717}


def arm_scores(eval_dir: Path) -> dict[str, float]:
    """Kappa, accuracy, AUC and test-image count of one evaluated arm, and whether it reaches the paper."""
    from monai_xai.metrics import predictions_kappa

    metrics_file, predictions = eval_dir / "metrics.json", eval_dir / "predictions.csv"
    if not (metrics_file.is_file() and predictions.is_file()):
        raise SystemExit(
            f"{eval_dir}: no test evaluation: run bash scripts/experiments/multiscale_retinamnist.sh"
        )
    image = json.loads(metrics_file.read_text())["image"]
    scores = {
        "kappa": predictions_kappa(predictions),
        "accuracy": float(image["accuracy"]),
        "auc": float(image["auc"]),
        "n": sum(1 for _ in predictions.open()) - 1,
    }
    return {**scores, "reaches_paper": all(scores[k] >= PAPER[k] for k in PAPER)}


def main(argv: Sequence[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("out", type=Path, help="the experiment's output folder (OUT of the shell script)")
    parser.add_argument(
        "--results", type=Path, help="results JSON to write (default: <out>/retinamnist.json)"
    )
    parser.add_argument("--epochs", type=int, help="training epochs (recorded)")
    parser.add_argument("--batch_size", type=int, help="batch size (recorded)")
    parser.add_argument("--stem", help="ResNet stem (recorded)")
    args = parser.parse_args(argv)
    arms = {
        name: {"label": label, **arm_scores(args.out / name / "eval_test")} for name, label in ARMS.items()
    }
    settings = {k: getattr(args, k) for k in ("epochs", "batch_size", "stem") if getattr(args, k) is not None}
    report = {"arms": arms, "paper": PAPER, "settings": settings}
    runtime = args.out / "runtime.txt"
    if runtime.is_file():
        report["wall_time"] = runtime.read_text().splitlines()
    destination = args.results or args.out / "retinamnist.json"
    atomic_write_json(destination, report, indent=1)
    for name, scores in arms.items():
        print(
            f"{name}: kappa {scores['kappa']:.3f}, accuracy {scores['accuracy']:.3f}, AUC {scores['auc']:.3f}"
        )
    print(f"written {destination}")
    return report


if __name__ == "__main__":
    main()
