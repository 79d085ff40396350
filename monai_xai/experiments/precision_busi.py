"""Is the fast path safe? The ABN bundle on BUSI (benign vs malignant) twice with the same seed:
``--amp false`` (float32, contiguous) and ``--amp true`` (the fast path this machine resolves to), validation
AUCs side by side.

Each arm is one ``python -m monai.bundle run`` of ``train.json`` + ``configs/datasets/busi_binary.json``
(fold ``--fold``, ``--epochs``, ``--size``) into ``<runs>/<arm>``, then an evaluation of its best checkpoint
on the validation split (``evaluate.json``, ``--eval_split val``, in the arm's precision), one step at a time
through :class:`~monai_xai.experiments.runner.StepRunner` (a step already done is skipped, a killed training
resumes). The results file (with ``--publish``:
``bundles/abn_classification/docs/results/precision_busi.json``) holds per arm the resolved fast path, the
validation AUC of every epoch (MLflow), the best and last, the training wall time, and the best checkpoint's
validation AUC with its stratified bootstrap 95 % interval; and the paired interval of the difference (fast
path minus float32) on the same validation images. The data, network and budget are read back from the runs
(``run.json``, MLflow), the training wall times from the runner's record (none for a training that continued
an attempt the runner did not time).

Usage::

    python -m monai_xai.experiments precision_busi --epochs 10 --size 128 --publish
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path
from typing import Any

import numpy as np

from monai_xai.errors import InputError

from .results import (
    REPO,
    Block,
    add_output_arguments,
    bundle_results,
    fmt,
    fmt_ci,
    output_path,
    vs_zero,
    write_results,
)

__all__ = ["ARMS", "BLOCKS", "PUBLISHED", "main", "read_arm", "render", "run_arms", "summarise"]

PUBLISHED = "bundles/abn_classification/docs/results/precision_busi.json"
CONFIGS = REPO / "bundles" / "abn_classification" / "configs"
DATASET_CONFIG = REPO / "configs" / "datasets" / "busi_binary.json"
#: arm -> the bundle's ``--amp``
ARMS = {"float32": False, "fast_path": True}
N_BOOT = 2000


def _run_name(fold: int) -> str:
    return f"busi2_dynamic_resnet18_fold{fold}"


def run_arms(args: argparse.Namespace) -> None:
    """Train each arm and evaluate its best checkpoint on validation; steps done before are skipped."""
    from .runner import Step, StepRunner, bundle_run_argv

    configs = [CONFIGS / "train.json", DATASET_CONFIG]
    with StepRunner(args.runs, "precision_busi") as runner:
        for name, amp in ARMS.items():
            out = args.runs / name
            overrides = {
                "dataset_dir": str(args.data), "output_dir": str(out), "mode": "dynamic", "fold": args.fold,
                "seed": args.seed, "max_epochs": args.epochs, "spatial_size": [args.size, args.size],
                "amp": amp, **({"limit": args.limit} if args.limit else {}),
            }  # fmt: skip
            runner.run(Step(f"{name}/train", bundle_run_argv(configs, overrides), out))
            evaluation = bundle_run_argv(
                [*configs, CONFIGS / "evaluate.json"], {**overrides, "eval_split": "val"}
            )
            best = out / "checkpoints" / "best.pt"
            runner.run(Step(f"{name}/evaluate_val", evaluation, out / "eval_val", inputs=[best]))


def _validation_predictions(out: Path) -> dict[str, np.ndarray | list[str]]:
    """The best checkpoint's validation predictions: image sources, labels and p(class 1)."""
    path = out / "eval_val" / "predictions.csv"
    if not path.is_file():
        raise InputError(path, "missing: the arm's best checkpoint was not evaluated on validation")
    with path.open() as f:
        rows = list(csv.DictReader(f))
    positive = [c for c in rows[0] if c.startswith("prob_")][1]
    return {
        "sources": [r["source"] for r in rows],
        "labels": np.asarray([int(r["label"]) for r in rows]),
        "scores": np.asarray([float(r[positive]) for r in rows]),
    }


def read_arm(runs: Path, name: str, fold: int) -> dict[str, Any]:
    """One arm as recorded: its run identity, MLflow history and parameters, wall time and predictions."""
    import mlflow

    from monai_xai.tracking import find_run

    from .runner import wall_time

    out = runs / name
    store = f"sqlite:///{out.resolve() / 'mlruns.db'}"
    finished = find_run(store, "abn_classification", _run_name(fold), with_metric="val_auc")
    if finished is None:
        raise InputError(out, "no finished training run with a validation AUC in its MLflow store")
    history = mlflow.MlflowClient(tracking_uri=store).get_metric_history(finished.info.run_id, "val_auc")
    training = wall_time(runs)["steps"].get(f"{name}/train")
    return {
        "identity": json.loads((out / "run.json").read_text())["identity"],
        "max_epochs": int(finished.data.params["max_epochs"]),
        "amp": ARMS[name],
        "fast_path": finished.data.params.get("fast_path"),
        "val_auc_per_epoch": [round(m.value, 4) for m in sorted(history, key=lambda m: m.step)],
        # a training that continued an untimed attempt has no whole wall time
        "wall_seconds": None if training is None or training["resumed"] else training["seconds"],
        "predictions": _validation_predictions(out),
    }


def summarise(arms: dict[str, dict[str, Any]], cpu_supports_bf16: bool) -> dict:
    """The results file from the two arms read by :func:`read_arm` (``float32`` and ``fast_path``)."""
    from monai_xai.metrics.uncertainty import auc, bootstrap_ci, paired_bootstrap_diff

    slow, fast = arms["float32"], arms["fast_path"]
    if slow["identity"] != fast["identity"] or slow["max_epochs"] != fast["max_epochs"]:
        raise InputError(None, "the two arms were trained on other data, networks or budgets")
    a, b = fast["predictions"], slow["predictions"]
    if a["sources"] != b["sources"]:
        raise InputError(None, "the two arms were evaluated on different validation images")
    labels = b["labels"]
    data, network = slow["identity"]["data"], slow["identity"]["network"]
    found = {}
    for name, arm in arms.items():
        aucs = arm["val_auc_per_epoch"]
        interval = bootstrap_ci(auc, labels, arm["predictions"]["scores"], n_boot=N_BOOT, stratify=0)
        found[name] = {
            "amp": arm["amp"],
            "fast_path": arm["fast_path"],
            "val_auc_per_epoch": aucs,
            "best_val_auc": max(aucs),
            "last_val_auc": aucs[-1],
            "best_checkpoint_val_auc": interval.to_dict(),
            "wall_seconds": arm["wall_seconds"],
        }
    difference = paired_bootstrap_diff(
        auc, (labels, a["scores"]), (labels, b["scores"]), n_boot=N_BOOT, stratify=0
    ).to_dict()
    return {
        "task": f"{data['dataset']}: {' vs '.join(data['class_names'])}, ABN {network['mode']}, "
        f"{network['backbone']}",
        "fold": data["fold"],
        "seed": data["seed"],
        "epochs": slow["max_epochs"],
        "size": network["spatial_size"][0],
        "cpu_supports_bf16": cpu_supports_bf16,
        "validation_images": int(labels.size),
        "intervals": f"stratified (by label) bootstrap, 95 %, {N_BOOT} resamples of the validation images; "
        "the difference paired on the same images",
        "arms": found,
        "best_val_auc_difference": round(
            found["fast_path"]["best_val_auc"] - found["float32"]["best_val_auc"], 4
        ),
        "best_checkpoint_val_auc_difference": {**difference, "verdict_vs_zero": vs_zero(difference)},
        "wall_time_ratio": round(slow["wall_seconds"] / fast["wall_seconds"], 3)
        if slow["wall_seconds"] and fast["wall_seconds"]
        else None,
    }


def render(report: dict) -> str:
    """Both arms' validation AUC curves and wall times; with intervals, the best checkpoints' AUC and their
    paired difference."""
    rows = [
        "| arm | fast path | best val AUC | last val AUC | val AUC per epoch | wall time |",
        "|---|---|---|---|---|---|",
    ]
    for arm in report["arms"].values():
        best = fmt_ci(arm.get("best_checkpoint_val_auc", {"mean": arm["best_val_auc"]}))
        per_epoch = ", ".join(fmt(v) for v in arm["val_auc_per_epoch"])
        amp, last, wall = (
            str(arm["amp"]).lower(),
            fmt(arm["last_val_auc"]),
            f"{fmt(arm['wall_seconds'], 0)} s",
        )
        rows.append(f"| `--amp {amp}` | {arm['fast_path']} | {best} | {last} | {per_epoch} | {wall} |")
    paired = report.get("best_checkpoint_val_auc_difference")
    difference = (
        f"{report['best_val_auc_difference']:+.4f} (no interval: re-run pending)"
        if paired is None
        else f"{fmt_ci(paired)} ({vs_zero(paired)}; paired on {report['validation_images']} validation "
        "images)"
    )
    rows += [
        "",
        f"{report['task']}, fold {report['fold']}, seed {report['seed']}, {report['epochs']} epochs, "
        f"{report['size']}x{report['size']}; best-AUC difference fast path minus float32 {difference}, "
        f"wall-time ratio float32 / fast path {fmt(report['wall_time_ratio'])}.",
    ]
    if paired is not None:
        rows += [
            "",
            f"Best val AUC: the best checkpoint re-evaluated on validation; brackets: {report['intervals']}.",
        ]
    return "\n".join(rows) + "\n"


BLOCKS: dict[str, Block] = {"precision_busi": bundle_results("abn_classification", "precision_busi", render)}


def main(argv: list[str] | None = None) -> int:
    from monai_xai.utils import cpu_supports_bf16

    parser = argparse.ArgumentParser(
        prog="python -m monai_xai.experiments precision_busi",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--fold", type=int, default=0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "busi_256")
    parser.add_argument("--runs", type=Path, default=REPO / "runs" / "experiments" / "precision_busi")
    parser.add_argument("--limit", type=int, default=None, help="items per split, for smoke runs")
    add_output_arguments(parser, published=PUBLISHED)
    args = parser.parse_args(argv)
    path = output_path(args, PUBLISHED)  # before training: a missing --out fails at once
    run_arms(args)
    arms = {name: read_arm(args.runs, name, args.fold) for name in ARMS}
    report = summarise(arms, cpu_supports_bf16())
    write_results(report, path, publish=args.publish)
    print(json.dumps({k: v for k, v in report.items() if k != "arms"}))
    return 0
