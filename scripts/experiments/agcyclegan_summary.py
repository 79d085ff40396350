"""Summary table of an AG-CycleGAN experiment folder: a row per task and arm, from each task sub-folder's
``eval_test/metrics.json`` (the study's AG-CycleGAN) and ``eval_test_<variant>/metrics.json`` (a GAN variant,
e.g. ``guided``), with the judge classifier's flip rates when the evaluation had one.

Usage: ``python scripts/experiments/agcyclegan_summary.py runs/experiments/agcyclegan-cls3-gan3``
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.3f}" if isinstance(value, float) else str(value)


def arm_name(eval_dir: Path) -> str:
    """``agcyclegan`` for ``eval_test`` (the study's GAN), ``<variant>`` for ``eval_test_<variant>``."""
    return eval_dir.name.removeprefix("eval_test").removeprefix("_") or "agcyclegan"


def summarize(root: Path) -> str:
    rows = [
        "| task | arm | n test | accuracy | sensitivity | specificity | AUC | confusion before "
        "| confusion after | flip rate | flip 0->1 | flip 1->0 | judge flip 0->1 | judge flip 1->0 "
        "| corr(A, Grad-CAM++) | top-10% IoU | A in mask (energy) | Grad-CAM++ in mask (energy) "
        "| A pointing game | Grad-CAM++ pointing game |",
        "|" + "---|" * 20,
    ]
    for metrics_file in sorted(root.glob("*/eval_test*/metrics.json")):
        m = json.loads(metrics_file.read_text())
        clf = m.get("classifier", {})
        flips = [v for k, v in m.items() if k.startswith("flip_rate_from_")]
        agree = m.get("attention_vs_gradcampp", {})
        mask = m.get("mask_agreement", {})
        att, cam = mask.get("attention", {}), mask.get("gradcampp", {})
        cells = [
            metrics_file.parts[-3],
            arm_name(metrics_file.parent),
            m["n_images"],
            clf.get("accuracy"),
            clf.get("sensitivity"),
            clf.get("specificity"),
            clf.get("auc"),
            m.get("confusion_before"),
            m.get("confusion_after"),
            m["flip_rate"],
            *(flips + [None, None])[:2],
            m.get("judge_flip_rate_from_0"),
            m.get("judge_flip_rate_from_1"),
            agree.get("correlation"),
            agree.get("top10pct_iou"),
            att.get("energy_inside_mask"),
            cam.get("energy_inside_mask"),
            att.get("pointing_game"),
            cam.get("pointing_game"),
        ]
        rows.append("| " + " | ".join(_fmt(c) for c in cells) + " |")
    runtime = root / "runtime.txt"
    if runtime.is_file():
        rows += ["", "Wall-clock time per step (CPU):", "", "```", runtime.read_text().strip(), "```"]
    return "\n".join(rows)


if __name__ == "__main__":
    print(summarize(Path(sys.argv[1])))
