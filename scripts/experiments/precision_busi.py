"""The ABN bundle on BUSI (benign vs malignant) twice with the same seed: ``--amp false`` (float32,
contiguous) and ``--amp true`` (the fast path this machine resolves to), validation AUCs side by side.

Each arm is one ``python -m monai.bundle run`` of ``train.json`` + ``configs/datasets/busi_binary.json``
(fold ``--fold``, ``--epochs``, ``--size``), resumable: an arm whose run finished is read back, not
trained again. Writes ``bundles/abn_classification/docs/results/precision_busi.json`` with, per arm, the
resolved fast path, the validation AUC of every epoch, the best and last, and the training wall time.

Usage::

    python scripts/experiments/precision_busi.py --epochs 10 --size 128
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CONFIGS = REPO / "bundles" / "abn_classification" / "configs"
DATASET_CONFIG = REPO / "configs" / "datasets" / "busi_binary.json"
RESULTS = REPO / "bundles" / "abn_classification" / "docs" / "results" / "precision_busi.json"


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--fold", type=int, default=0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "busi_256")
    parser.add_argument("--output-dir", type=Path, default=REPO / "runs" / "experiments" / "precision_busi")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--limit", type=int, default=None, help="items per split, for smoke runs")
    return parser.parse_args(argv)


def run_arm(args, amp: bool) -> dict:
    from monai_xai.tracking import find_run

    out = args.output_dir / ("fast_path" if amp else "float32")
    store = f"sqlite:///{out.resolve() / 'mlruns.db'}"
    run_name = f"busi2_dynamic_resnet18_fold{args.fold}"
    wall_file = out / "wall_seconds.txt"
    finished = find_run(store, "abn_classification", run_name) if (out / "mlruns.db").is_file() else None
    if finished is None or finished.info.status != "FINISHED" or not wall_file.is_file():
        command = [
            sys.executable, "-m", "monai.bundle", "run",
            "--config_file", str([str(CONFIGS / "train.json"), str(DATASET_CONFIG)]),
            "--dataset_dir", str(args.data), "--output_dir", str(out), "--mode", "dynamic",
            "--fold", str(args.fold), "--seed", str(args.seed), "--max_epochs", str(args.epochs),
            "--spatial_size", f"[{args.size}, {args.size}]", "--amp", str(amp).lower(),
            *(["--limit", str(args.limit)] if args.limit else []),
        ]  # fmt: skip
        start = time.perf_counter()
        # progress bars on a terminal only: TQDM_DISABLE turns off the bundle's ignite and MONAI bars in a log
        env = None if sys.stderr.isatty() else {**os.environ, "TQDM_DISABLE": "1"}
        subprocess.run(command, cwd=REPO, check=True, env=env)
        out.mkdir(parents=True, exist_ok=True)
        wall_file.write_text(f"{time.perf_counter() - start:.1f}\n")
        finished = find_run(store, "abn_classification", run_name)
    import mlflow

    history = mlflow.MlflowClient(tracking_uri=store).get_metric_history(finished.info.run_id, "val_auc")
    aucs = [round(m.value, 4) for m in sorted(history, key=lambda m: m.step)]
    return {
        "amp": amp,
        "fast_path": finished.data.params.get("fast_path"),
        "val_auc_per_epoch": aucs,
        "best_val_auc": max(aucs),
        "last_val_auc": aucs[-1],
        "wall_seconds": float(wall_file.read_text()),
    }


def main(argv=None) -> dict:
    from monai_xai.engines import cpu_supports_bf16
    from monai_xai.utils import atomic_write_text

    args = parse_args(argv)
    arms = {"float32": run_arm(args, amp=False), "fast_path": run_arm(args, amp=True)}
    report = {
        "task": "BUSI benign vs malignant, ABN dynamic, ResNet18",
        "fold": args.fold,
        "seed": args.seed,
        "epochs": args.epochs,
        "size": args.size,
        "cpu_supports_bf16": cpu_supports_bf16(),
        "arms": arms,
        "best_val_auc_difference": round(
            arms["fast_path"]["best_val_auc"] - arms["float32"]["best_val_auc"], 4
        ),
        "wall_time_ratio": round(arms["float32"]["wall_seconds"] / arms["fast_path"]["wall_seconds"], 3),
    }
    atomic_write_text(args.out, json.dumps(report, indent=1) + "\n")
    print(json.dumps(report))
    return report


if __name__ == "__main__":
    main()
