"""Markdown tables of detection arms from their ``eval_<split>/metrics.json``: AP, confusion, per class.

python scripts/experiments/centernet_tables.py --arm "random init=runs/x/random" --arm "SimSiam=runs/x/ss"
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def _fmt(value: float) -> str:
    return "n/a" if value < 0 else f"{value:.3f}"


def tables(arms: dict[str, dict]) -> str:
    lines = ["| arm | mAP@[.50:.95] | AP50 | AP75 | AP small | AP medium | AP large | F1 | threshold |",
             "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for name, m in arms.items():
        c = m["coco"]
        lines.append(
            f"| {name} | {_fmt(c['mAP'])} | {_fmt(c['AP50'])} | {_fmt(c['AP75'])} | {_fmt(c['AP_small'])} | "
            f"{_fmt(c['AP_medium'])} | {_fmt(c['AP_large'])} | {m['f1_threshold']['f1']:.3f} | "
            f"{m['f1_threshold']['threshold']:.2f} |"
        )
    for name, m in arms.items():
        labels, matrix = m["confusion_matrix"]["labels"], m["confusion_matrix"]["matrix"]
        title = (f"Confusion matrix, {name} (IoU >= {m['iou_threshold']}, score >= "
                 f"{m['f1_threshold']['threshold']:.2f}; rows true, columns predicted)")  # fmt: skip
        header = "| true \\ predicted | " + " | ".join(labels) + " |"
        lines += ["", title, "", header, "|---" * (len(labels) + 1) + "|"]
        lines += [f"| {lab} | " + " | ".join(str(v) for v in row) + " |" for lab, row in zip(labels, matrix)]
    lines += ["", "| arm | class | precision | recall | F1 | over-detected | missed | false detections |",
              "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for name, m in arms.items():
        for cls, s in m["per_class"].items():
            lines.append(
                f"| {name} | {cls} | {s['precision']:.3f} | {s['recall']:.3f} | {s['f1']:.3f} | "
                f"{s['over_detected']} | {s['missed']} | {s['false_detections']} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--arm", action="append", required=True, help="NAME=OUTPUT_DIR of a trained, evaluated arm"
    )
    parser.add_argument("--split", default="test")
    parser.add_argument("--out", type=Path, help="also write the tables here")
    args = parser.parse_args()
    arms = {}
    for spec in args.arm:
        name, folder = spec.split("=", 1)
        arms[name] = json.loads((Path(folder) / f"eval_{args.split}" / "metrics.json").read_text())
    text = tables(arms)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
