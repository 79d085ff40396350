"""Tables of scripts/experiments/multiscale_busi.sh: explanation quality per method x backbone.

Reads ``<out>/<backbone>/{gradcam_resnet,abn,multiscale,multiscale/finetune/mask_all_1.0}/eval_test/`` and
prints (and writes to ``<out>/tables.md``) Deletion AUC (lower is better), Insertion AUC (higher is better),
map MSE against the lesion masks (lower is better) and test accuracy, one row per method, one column per
backbone; then the active-learning sweep table when it exists.

    python scripts/experiments/multiscale_tables.py runs/experiments/multiscale-busi-64px-6ep
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

#: (row label, run folder below the backbone, method key in faithfulness.json / attention_agreement)
METHODS = (
    ("Grad-CAM (ResNet)", "gradcam_resnet", "gradcam"),
    ("Grad-CAM++ (ResNet)", "gradcam_resnet", "gradcampp"),
    ("ABN", "abn", "attention"),
    ("Multi-scale ABN", "multiscale", "attention"),
    ("Multi-scale ABN, fine-tuned", "multiscale/finetune/mask_all_1.0", "attention"),
)


def _read(path: Path) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {}


def cell(out: Path, backbone: str, folder: str, method: str, measure: str) -> str:
    eval_dir = out / backbone / folder / "eval_test"
    if measure in ("deletion_auc", "insertion_auc"):
        value = _read(eval_dir / "faithfulness.json").get(method, {}).get(measure)
    elif measure == "map_mse":
        value = _read(eval_dir / "metrics.json").get("attention_agreement", {}).get(method, {}).get("map_mse")
    else:
        value = _read(eval_dir / "metrics.json").get("image", {}).get(measure)
    return "-" if value is None else f"{value:.4f}"


def tables(out: Path) -> str:
    backbones = sorted(p.name for p in out.iterdir() if p.is_dir() and (p / "multiscale").is_dir())
    sections = []
    for measure, title in (
        ("deletion_auc", "Deletion AUC (lower is better)"),
        ("insertion_auc", "Insertion AUC (higher is better)"),
        ("map_mse", "Map MSE against the lesion masks (lower is better)"),
        ("accuracy", "Test accuracy of the model that produced the map"),
    ):
        lines = [
            f"### {title}",
            "",
            "| method | " + " | ".join(backbones) + " |",
            "|---|" + "---|" * len(backbones),
        ]
        for label, folder, method in METHODS:
            lines.append(
                f"| {label} | " + " | ".join(cell(out, b, folder, method, measure) for b in backbones) + " |"
            )
        sections.append("\n".join(lines))
    for backbone in backbones:
        sweep = out / backbone / "multiscale" / "sweep" / "sweep.md"
        if sweep.is_file():
            sections.append(f"### Active-learning sweep ({backbone})\n\n{sweep.read_text().strip()}")
    runtime = out / "runtime.txt"
    if runtime.is_file():
        sections.append(
            "### Wall time\n\n" + "\n".join(f"- {line}" for line in runtime.read_text().splitlines())
        )
    return "\n\n".join(sections) + "\n"


def main(argv: Sequence[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="the experiment's output folder")
    args = parser.parse_args(argv)
    text = tables(args.out)
    (args.out / "tables.md").write_text(text)
    print(text)
    return text


if __name__ == "__main__":
    main()
