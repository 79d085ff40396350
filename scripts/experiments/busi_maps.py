"""Explanation quality per method and backbone on BUSI (``scripts/experiments/multiscale_busi.sh``): results.

Reads ``<out>/<backbone>/{gradcam_resnet,abn,multiscale,multiscale/finetune/<name>}/eval_test/`` and writes,
atomically, one record per method and backbone: Deletion AUC (lower is better), Insertion AUC (higher is
better), map MSE and pointing game against the lesion masks, and the test accuracy and AUC of the model
that produced the map; beside them, how long each model trained (epochs run, epoch of the best validation
score) and the settings. ``scripts/render_results.py`` lays it out like the study's tables (renderer
``busi_maps``).

    python scripts/experiments/busi_maps.py runs/experiments/multiscale_busi-128px \\
        --out bundles/multiscale_abn_correction/docs/results/busi_maps.json --spatial_size 128
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

from monai_xai.utils import atomic_write_json

#: (key, row label, run folder below the backbone, method key in faithfulness.json / attention_agreement)
METHODS = (
    ("gradcam", "Grad-CAM (plain ResNet)", "gradcam_resnet", "gradcam"),
    ("gradcampp", "Grad-CAM++ (plain ResNet)", "gradcam_resnet", "gradcampp"),
    ("abn", "ABN", "abn", "attention"),
    ("multiscale", "Multi-scale ABN", "multiscale", "attention"),
    ("multiscale_finetuned", "Multi-scale ABN, fine-tuned on corrected maps", "multiscale/finetune/{name}",
     "attention"),
)  # fmt: skip
#: fine-tuning run whose maps fill the last row: every training image's map corrected
FINETUNE = "mask_all_1.0"


def _read(path: Path) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {}


def method_scores(eval_dir: Path, method: str) -> dict[str, float]:
    """The map's faithfulness and agreement scores and the model's test scores; absent ones are left out."""
    faithfulness = _read(eval_dir / "faithfulness.json").get(method, {})
    metrics = _read(eval_dir / "metrics.json")
    agreement = metrics.get("attention_agreement", {}).get(method, {})
    image = metrics.get("image", {})
    scores = {
        "deletion_auc": faithfulness.get("deletion_auc"),
        "insertion_auc": faithfulness.get("insertion_auc"),
        "map_mse": agreement.get("map_mse"),
        "map_pointing_game": agreement.get("pointing_game"),
        "accuracy": image.get("accuracy"),
        "auc": image.get("auc"),
    }
    return {k: float(v) for k, v in scores.items() if v is not None}


def training_record(run_dir: Path) -> dict[str, int]:
    """Epochs the run trained (``latest.pt``) and the epoch of its best validation score (``best.json``)."""
    record = {}
    best = _read(run_dir / "checkpoints" / "best.json")
    if "epoch" in best:
        record["best_epoch"] = int(best["epoch"])
    latest = run_dir / "checkpoints" / "latest.pt"
    if latest.is_file():
        import torch

        record["epochs_trained"] = int(
            torch.load(latest, map_location="cpu", weights_only=True, mmap=True)["engine"]["epoch"]
        )
    return record


def collect(out: Path, finetune: str = FINETUNE) -> dict:
    """Every method's scores per backbone found under ``out``, and each model's training record."""
    backbones = sorted(p.name for p in out.iterdir() if p.is_dir() and (p / "multiscale").is_dir())
    if not backbones:
        raise SystemExit(
            f"{out}: no <backbone>/multiscale run in it: run bash scripts/experiments/multiscale_busi.sh"
        )
    methods, training = {}, {}
    for key, label, folder, method in METHODS:
        folder = folder.format(name=finetune)
        per_backbone = {}
        for backbone in backbones:
            run_dir = out / backbone / folder
            scores = method_scores(run_dir / "eval_test", method)
            if scores:
                per_backbone[backbone] = scores
                training.setdefault(backbone, {})[folder] = training_record(run_dir)
        methods[key] = {"label": label, "run": folder, "scores": per_backbone}
    return {"backbones": backbones, "methods": methods, "training": training}


def main(argv: Sequence[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="the experiment's output folder")
    parser.add_argument("--results", type=Path, help="results JSON to write (default: <out>/busi_maps.json)")
    parser.add_argument("--finetune", default=FINETUNE, help="fine-tuning run of the last row")
    parser.add_argument("--dataset", default="busi_binary_dedup")
    parser.add_argument("--spatial_size", type=int)
    parser.add_argument("--faithfulness_steps", type=int)
    parser.add_argument("--max_epochs", type=int)
    parser.add_argument("--patience", type=int)
    parser.add_argument("--ft_epochs", type=int)
    parser.add_argument("--map_weights", type=float)
    parser.add_argument("--ft_learning_rate", type=float)
    args = parser.parse_args(argv)
    report = collect(args.out, args.finetune)
    settings = {k: v for k, v in vars(args).items() if k not in ("out", "results") and v is not None}
    report["settings"] = settings
    runtime = args.out / "runtime.txt"
    if runtime.is_file():
        report["wall_time"] = runtime.read_text().splitlines()
    destination = args.results or args.out / "busi_maps.json"
    atomic_write_json(destination, report, indent=1)
    for key, method in report["methods"].items():
        print(key, json.dumps(method["scores"]))
    print(f"written {destination}")
    return report


if __name__ == "__main__":
    main()
