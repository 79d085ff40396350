"""Print a side-by-side table of evaluated bundle runs and where their outputs are.

python scripts/summarize_runs.py runs/quickstart/baseline runs/quickstart/dynamic
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

COLUMNS = [
    ("accuracy", ("image", "accuracy")),
    ("AUC", ("image", "auc")),
    ("sens", ("image", "sensitivity")),
    ("spec", ("image", "specificity")),
    ("map pointing", ("attention_agreement", "attention", "pointing_game")),
    ("map energy-in", ("attention_agreement", "attention", "energy_inside_mask")),
    ("Grad-CAM++ pointing", ("attention_agreement", "gradcampp", "pointing_game")),
    ("Grad-CAM++ energy-in", ("attention_agreement", "gradcampp", "energy_inside_mask")),
]


def _get(metrics: dict, path: tuple[str, ...]) -> str:
    for key in path:
        if not isinstance(metrics, dict) or key not in metrics:
            return "-"
        metrics = metrics[key]
    return f"{metrics:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("run_dirs", nargs="+", type=Path)
    parser.add_argument("--split", default="test")
    args = parser.parse_args()

    header = ["run", *[name for name, _ in COLUMNS]]
    rows = []
    for run in args.run_dirs:
        metrics_file = run / f"eval_{args.split}" / "metrics.json"
        metrics = json.loads(metrics_file.read_text()) if metrics_file.is_file() else {}
        rows.append([run.name, *[_get(metrics, path) for _, path in COLUMNS]])
    print(f"\n{args.split} set ({', '.join(str(r) for r in args.run_dirs)})")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print("\nProduced:")
    for run in args.run_dirs:
        run = run.resolve()
        print(f"  {run}")
        print(f"    checkpoints  {run / 'checkpoints'} (best.pt, latest.pt)")
        print(f"    metrics      {run / f'eval_{args.split}' / 'metrics.json'}, predictions.csv")
        print(f"    figures      {run / 'figures'} (attention per epoch)")
        print(f"                 {run / f'eval_{args.split}'} (ROC, confusion matrix, overlays)")
        print(f"    MLflow       mlflow ui --backend-store-uri sqlite:///{run / 'mlruns.db'}")


if __name__ == "__main__":
    main()
