"""Table of scripts/experiments/multiscale_retinamnist.sh: DR grading on the RetinaMNIST test split.

Reads ``<out>/<arm>/eval_test/{metrics.json,predictions.csv}`` for each arm and prints (and writes to
``<out>/table.md``) the quadratic weighted kappa, computed from the written predictions, accuracy and the
mean one-vs-rest AUC, next to the MedMNIST v2 paper's ResNet-18 (28). Arms not evaluated yet show "-".

    python scripts/experiments/retinamnist_table.py runs/experiments/retinamnist-10ep
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

#: (row label, run folder below ``<out>``)
ARMS = (
    ("ResNet18 (`baseline`)", "baseline"),
    ("ResNet18 + ABN (`plain`)", "plain"),
    ("Multi-scale ABN (ResNet18)", "multiscale"),
)
#: MedMNIST v2 (Yang et al., Scientific Data 2023), RetinaMNIST, ResNet-18 (28): test ACC and AUC.
PAPER = {"accuracy": 0.524, "auc": 0.717}


def arm_scores(eval_dir: Path) -> dict[str, float] | None:
    """Kappa, accuracy, AUC and sample count of one evaluated arm; None when it has not been evaluated."""
    from monai_xai.metrics import predictions_kappa

    metrics_file, predictions = eval_dir / "metrics.json", eval_dir / "predictions.csv"
    if not (metrics_file.is_file() and predictions.is_file()):
        return None
    image = json.loads(metrics_file.read_text())["image"]
    n = sum(1 for _ in predictions.open()) - 1
    kappa = predictions_kappa(predictions)
    return {"kappa": kappa, "accuracy": image["accuracy"], "auc": image["auc"], "n": n}


def table(out: Path) -> str:
    def fmt(value: float | None) -> str:
        return "-" if value is None else f"{value:.3f}"

    lines = [
        "| model | quadratic weighted kappa | accuracy | AUC | test images |",
        "|---|---|---|---|---|",
    ]
    for label, folder in ARMS:
        scores = arm_scores(out / folder / "eval_test") or {}
        cells = [fmt(scores.get(k)) for k in ("kappa", "accuracy", "auc")]
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {scores.get('n', '-')} |")
    paper = f"{PAPER['accuracy']:.3f} | {PAPER['auc']:.3f}"
    lines.append(f"| MedMNIST v2 paper, ResNet-18 (28) | not reported | {paper} | 400 |")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> str:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("out", type=Path, help="the experiment's output folder (OUT of the shell script)")
    args = parser.parse_args(argv)
    text = table(args.out)
    (args.out / "table.md").write_text(text)
    print(text, end="")
    return text


if __name__ == "__main__":
    main()
