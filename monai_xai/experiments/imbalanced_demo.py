"""Imbalanced demo data (1 : 8, no shortcut marker): the ABN bundle without class balance, judged at the
argmax (what an unchanged run reports), against its default (``class_balance auto``) judged at the threshold
chosen on validation; ECE before and after temperature scaling fitted on validation. Test-set figures with
stratified bootstrap 95 % intervals (from each evaluation's ``metrics.json``) and the paired interval of the
difference in balanced accuracy (from the two ``predictions.csv``). Results file:
``bundles/abn_classification/docs/results/imbalanced_demo.json`` (with ``--publish``).

Usage::

    python -m monai_xai.experiments imbalanced_demo --out runs/experiments/imbalanced_demo/results.json
    python -m monai_xai.experiments imbalanced_demo --publish      # the ABN docs' results file

Trains and evaluates each arm (``python -m monai.bundle run``, one step at a time through
:class:`~monai_xai.experiments.runner.StepRunner`) into ``--runs/<arm>``; a step already done with the same
command is skipped, a killed training resumes. Nothing is chosen on the test split: the threshold and the
temperature come from the validation split, the arms are fixed here. The network and seed in the results file
are read back from each arm's ``run.json``, the wall times from the runner's record.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

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

__all__ = ["ARMS", "BLOCKS", "PUBLISHED", "arm_figures", "collect", "main", "render"]

PUBLISHED = "bundles/abn_classification/docs/results/imbalanced_demo.json"
CONFIGS = REPO / "bundles" / "abn_classification" / "configs"
#: the arms, declared before any test figure is read: the class balance each trains with
ARMS = {"none": "none", "auto": "auto"}
N_BOOT = 2000
PARTS = ("train", "val", "test")


def _predictions(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels, argmax predictions and operating-point decisions of an evaluation's ``predictions.csv``."""
    with path.open() as f:
        rows = list(csv.DictReader(f))
    labels, argmax, decision = (
        np.asarray([int(r[key]) for r in rows]) for key in ("label", "pred", "decision")
    )
    return labels, argmax, decision


def _part_counts(data: Path) -> dict[str, list[int]]:
    """Images per class of each split of the demo data's ``labels.csv``."""
    with (data / "labels.csv").open() as f:
        rows = list(csv.DictReader(f))
    return {
        part: np.bincount([int(r["label"]) for r in rows if r["split"] == part], minlength=2).tolist()
        for part in PARTS
    }


def arm_figures(metrics: dict) -> dict:
    """An arm's test figures from its evaluation's ``metrics.json``, with the intervals it wrote."""
    intervals = metrics["intervals"]
    at = metrics["image_at_threshold"]
    return {
        "auc": intervals["auc"],
        "average_precision": metrics["image"]["average_precision"],
        "argmax": {
            "balanced_accuracy": intervals["balanced_accuracy"],
            "sensitivity": metrics["image"]["sensitivity"],
            "specificity": metrics["image"]["specificity"],
        },
        "at_threshold": {
            "threshold": metrics["operating_point"]["threshold"],
            "balanced_accuracy": intervals["balanced_accuracy_at_threshold"],
            "sensitivity": intervals["sensitivity_at_threshold"],
            "specificity": intervals["specificity_at_threshold"],
            "ppv": at["ppv"],
        },
        "ece": {
            "as_trained": metrics["calibration"]["ece"],
            "temperature_scaled": metrics["calibration"].get("ece_temperature_scaled"),
            "temperature": metrics["operating_point"]["temperature"],
            "temperature_fit": metrics["operating_point"].get("temperature_fit"),
        },
        "warnings": metrics.get("warnings", []),
    }


def collect(runs: Path, data: Path, max_epochs: int) -> dict:
    """The results file from the evaluated arms under ``runs`` (``<arm>/run.json``, ``<arm>/eval_test/``)."""
    from monai_xai.metrics.uncertainty import balanced_accuracy, paired_bootstrap_diff

    from .runner import wall_time

    arms, identities = {}, {}
    for arm, balance in ARMS.items():
        record = runs / arm / "run.json"
        if not record.is_file():
            raise InputError(record, "missing: the arm has not been trained")
        run = json.loads(record.read_text())
        identities[arm] = run["identity"]
        metrics = json.loads((runs / arm / "eval_test" / "metrics.json").read_text())
        arms[arm] = {"class_balance": balance, "fingerprint": run["fingerprint"], **arm_figures(metrics)}
    if identities["none"] != identities["auto"]:
        raise InputError(runs, "the arms were trained on other data or networks (their run.json differ)")
    labels, none_argmax, _ = _predictions(runs / "none" / "eval_test" / "predictions.csv")
    labels_auto, _, auto_threshold = _predictions(runs / "auto" / "eval_test" / "predictions.csv")
    if not np.array_equal(labels, labels_auto):
        raise InputError(runs, "the arms were tested on different images")
    difference = paired_bootstrap_diff(
        lambda y, p: balanced_accuracy(y, p, classes=np.arange(2)),
        (labels, auto_threshold),
        (labels, none_argmax),
        n_boot=N_BOOT,
        stratify=0,
    ).to_dict()
    network, data_identity = identities["auto"]["network"], identities["auto"]["data"]
    return {
        "dataset": {
            "kind": "demo phantoms without the marker",
            "size": network["spatial_size"][0],
            "class_counts": _part_counts(data),
        },
        "settings": {
            "mode": network["mode"],
            "architecture": network["architecture"],
            "backbone": network["backbone"],
            "max_epochs": max_epochs,
            "seed": data_identity["seed"],
            "operating_point": "Youden's J on validation",
            "calibrate": True,
            "n_boot": N_BOOT,
            "intervals": "stratified bootstrap, 95 %",
        },
        "arms": arms,
        "balanced_accuracy_difference": {
            "what": "auto at the validation threshold minus none at the argmax, same test images",
            **difference,
            "verdict_vs_zero": vs_zero(difference),
        },
        "wall_time": wall_time(runs),
    }


def _train(args: argparse.Namespace) -> None:
    """Generate the data when missing, then train and evaluate each arm (steps done before are skipped)."""
    from monai_xai.data import write_demo_dataset

    from .runner import Step, StepRunner, bundle_run_argv

    if not (args.data / "labels.csv").is_file():
        write_demo_dataset(
            args.data, args.n_train, args.n_val, args.n_test, size=64, seed=args.seed,
            positive_fraction=1.0 / (1.0 + args.class_ratio), marker=False,
        )  # fmt: skip
    train, evaluate = CONFIGS / "train.json", CONFIGS / "evaluate.json"
    with StepRunner(args.runs, "imbalanced_demo") as runner:
        for arm, balance in ARMS.items():
            out = args.runs / arm
            common = {
                "dataset_dir": str(args.data), "output_dir": str(out), "class_balance": balance,
                "max_epochs": args.max_epochs, "seed": args.seed,
            }  # fmt: skip
            runner.run(Step(f"{arm}/train", bundle_run_argv([train], common), out))
            evaluation = bundle_run_argv(
                [train, evaluate], {**common, "calibrate": True, "eval_split": "test"}
            )
            best = out / "checkpoints" / "best.pt"
            runner.run(Step(f"{arm}/evaluate_test", evaluation, out / "eval_test", inputs=[best]))


def render(report: dict) -> str:
    """Class balance and the validation operating point on 1 : 8 phantoms, with intervals and the paired
    difference of balanced accuracy against 0."""
    counts = report["dataset"]["class_counts"]
    rows = [
        "| arm | class balance | test AUC | balanced accuracy at the argmax | threshold (val) "
        "| balanced accuracy at the threshold | sensitivity / specificity at the threshold | ECE as trained "
        "| ECE temperature-scaled (T) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, arm in report["arms"].items():
        at, ece = arm["at_threshold"], arm["ece"]
        cells = [
            f"`{name}`",
            arm["class_balance"],
            fmt_ci(arm["auc"]),
            fmt_ci(arm["argmax"]["balanced_accuracy"]),
            fmt(at["threshold"]),
            fmt_ci(at["balanced_accuracy"]),
            f"{fmt_ci(at['sensitivity'], 2)} / {fmt_ci(at['specificity'], 2)}",
            fmt(ece["as_trained"]),
            "not applied¹"
            if ece["temperature_scaled"] is None
            else f"{fmt(ece['temperature_scaled'])} (T {fmt(ece['temperature'], 2)})",
        ]
        rows.append("| " + " | ".join(cells) + " |")
    diff, settings = report["balanced_accuracy_difference"], report["settings"]
    rows += [
        "",
        f"Test set {counts['test'][0]} : {counts['test'][1]} images (training {counts['train'][0]} : "
        f"{counts['train'][1]}, validation {counts['val'][0]} : {counts['val'][1]}), "
        f"{report['dataset']['size']} px phantoms without the marker; {settings['mode']} ABN, "
        f"{settings['max_epochs']} epochs, seed {settings['seed']}; intervals: {settings['intervals']} "
        f"({settings['n_boot']} resamples). Balanced accuracy of `auto` at the validation threshold minus "
        f"`none` at the argmax, paired on the same images: {fmt_ci(diff)} ({vs_zero(diff)}).",
    ]
    fits = {name: arm["ece"].get("temperature_fit") for name, arm in report["arms"].items()}
    skipped = [f"`{name}`: {fit}" for name, fit in fits.items() if fit and fit.startswith("not applied")]
    if skipped:
        rows += ["", "¹ Temperature scaling " + "; ".join(skipped) + "."]
    warnings = [w for arm in report["arms"].values() for w in arm["warnings"]]
    if warnings:
        rows += ["", "Warnings the evaluations printed: " + "; ".join(warnings) + "."]
    return "\n".join(rows) + "\n"


BLOCKS: dict[str, Block] = {
    "imbalanced_demo": bundle_results("abn_classification", "imbalanced_demo", render)
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m monai_xai.experiments imbalanced_demo",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--runs", type=Path, default=REPO / "runs" / "experiments" / "imbalanced_demo")
    parser.add_argument("--data", type=Path, default=REPO / "demo_data" / "imbalanced")
    parser.add_argument("--n-train", type=int, default=1800)
    parser.add_argument("--n-val", type=int, default=450)
    parser.add_argument("--n-test", type=int, default=900)
    parser.add_argument("--class-ratio", type=float, default=8.0)
    parser.add_argument("--max-epochs", type=int, default=10, help="the bundle's default budget")
    parser.add_argument("--seed", type=int, default=0)
    add_output_arguments(parser, published=PUBLISHED)
    args = parser.parse_args(argv)
    path = output_path(args, PUBLISHED)  # before training: a missing --out fails at once
    _train(args)
    report = collect(args.runs, args.data, args.max_epochs)
    write_results(report, path, publish=args.publish)
    print(json.dumps(report["balanced_accuracy_difference"]))
    return 0
