"""Explanation quality per method and backbone on BUSI, laid out like the study's tables.

``run`` trains, per backbone, a plain ResNet (explained by Grad-CAM and Grad-CAM++), the single-scale ABN, the
multi-scale ABN and the multi-scale ABN fine-tuned on every training image's corrected map (lesion masks stand
in for the expert's), each until its validation AUC has not improved for ``--patience`` epochs, on the
leak-free split (``configs/datasets/busi_binary_dedup.json``, fold 0, the fixed test set), and evaluates
each on the test set; one runner step per training, evaluation and collection of correction records
(:mod:`.runner`). It then reads ``<runs>/<backbone>/{gradcam_resnet,abn,multiscale,
multiscale/finetune/<name>}/eval_test/`` (``collect`` does only that) into
``bundles/multiscale_abn_correction/docs/results/busi_maps.json``: per method and backbone the Deletion AUC
(lower is better) and Insertion AUC (higher is better) of the map, its MSE and pointing game against the
lesion masks, and the explaining model's test accuracy and AUC; beside them how long each model trained and
the wall time of the steps (:func:`~.runner.wall_time`). The active-learning half of the study is
:mod:`.busi_active_learning` (its ``run`` shares this one's folder and steps).

Every figure carries a bootstrap 95 % interval over the test images: accuracy and AUC from
``predictions.csv`` (stratified by label), map MSE and pointing game from ``attention_per_image.csv``,
Deletion and Insertion from ``faithfulness_per_image.csv`` (an evaluation written before that file existed
gives its ``faithfulness.json`` means, bare).
No method is marked best: with one run per cell the columns' differences are read from their intervals.

Dataset, fold and image size are read from the multi-scale run's ``run.json``, the Deletion/Insertion steps
and baseline from its ``faithfulness.json``; the training budget, which no run file records, comes from
``run``'s options (``collect`` takes it as options).

Usage (``run`` resumes: a finished step is skipped, a killed training resumes from its last epoch, its
early-stopping count too; one driver per folder at a time; results go to ``--out`` or, at the issue's
budget, >= 128 px, early stopping, the leak-free split and no extra bundle overrides, with ``--publish``
into the docs; then ``python -m monai_xai.experiments render``)::

    mkdir -p runs/experiments && nohup python -m monai_xai.experiments busi_maps run --publish \\
        >> runs/experiments/multiscale_busi.log 2>&1 &
    python -m monai_xai.experiments busi_maps run [--backbones resnet18 resnet34] [--size 128] \\
        [--max_epochs 60] [--patience 10] [--ft_epochs 15] [--map_weights 10] [--ft_learning_rate 0.001] \\
        [--steps 20] [--runs runs/experiments/multiscale_busi-128px] (--out busi_maps.json | --publish) \\
        [--key value ...]   # extra bundle overrides for every step, e.g. --limit 24
    # smoke test of the chain (with busi_active_learning's, about 6 min; results stay in the run folder):
    python -m monai_xai.experiments busi_maps run --backbones resnet18 --size 64 --max_epochs 1 \\
        --ft_epochs 1 --steps 4 --runs runs/experiments/multiscale_busi_smoke \\
        --out runs/experiments/multiscale_busi_smoke/busi_maps.json --limit 24
    python -m monai_xai.experiments busi_maps collect --runs runs/experiments/multiscale_busi-128px \\
        --out busi_maps.json [--max_epochs 60 --patience 10 --ft_epochs 15 --map_weights 10 \\
        --ft_learning_rate 0.001]

Runtime measured on the 2-core machine (bf16 fast path), 128 px, training and test evaluation of each model:
about 30 min in all (ResNet18 2-4 min a model, early stopping at epoch 19-33; ResNet34 3-8 min, epoch 33-43;
each fine-tune on every map about 2 min). All runs log to one MLflow store, ``<runs>/mlruns.db``.

The per-image readers here (:func:`read_predictions`, :func:`read_map_scores`) and the step builders
(:func:`train_eval_steps`, :func:`multiscale_steps`, :func:`~.runner.sweep_argv`) serve the bundle's other
experiment modules too.
"""

from __future__ import annotations

import argparse
import csv
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from monai_xai.errors import InputError

from .results import (
    REPO,
    add_output_arguments,
    bundle_results,
    fmt_ci,
    output_path,
    parse_study_args,
    read_json_if_present,
    refuse_short_publish,
    study_parser,
    write_results,
)
from .runner import RUNTIME_FILE, Step, StepRunner, bundle_run_argv, wall_time

__all__ = [
    "BLOCKS",
    "METHODS",
    "Predictions",
    "add_run_arguments",
    "below_budget",
    "collect",
    "common_overrides",
    "correction_records_step",
    "main",
    "method_scores",
    "multiscale_steps",
    "read_map_scores",
    "read_predictions",
    "render",
    "run",
    "train_eval_steps",
    "training_record",
]

BUNDLE = "multiscale_abn_correction"
PUBLISHED = f"bundles/{BUNDLE}/docs/results/busi_maps.json"
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
#: bootstrap resamples of each interval (seed 0)
N_BOOT = 2000
#: the training budget, which no file of the run folders records: option -> type
BUDGET = {
    "max_epochs": int,
    "patience": int,
    "ft_epochs": int,
    "map_weights": float,
    "ft_learning_rate": float,
}
#: the study's map tables: measure -> (column heading, decimals)
MAP_MEASURES = {
    "deletion_auc": ("Deletion ↓", 3),
    "insertion_auc": ("Insertion ↑", 3),
    "map_mse": ("map MSE ↓", 3),
}
#: the explained model's test scores: measure -> (column heading, decimals)
MODEL_MEASURES = {
    "accuracy": ("accuracy", 3),
    "auc": ("AUC", 3),
    "map_pointing_game": ("map pointing game", 3),
}
#: map measure of a results file -> its column in ``attention_per_image.csv``/``faithfulness_per_image.csv``
PER_IMAGE_COLUMNS = {
    "deletion_auc": "deletion_auc",
    "insertion_auc": "insertion_auc",
    "map_mse": "map_mse",
    "map_pointing_game": "pointing_game",
}
DRIVER = "python -m monai_xai.experiments busi_maps run"
ABN_CONFIGS = REPO / "bundles" / "abn_classification" / "configs"
CONFIGS = REPO / "bundles" / BUNDLE / "configs"
#: the leak-free split: the dataset of the issue's budget
DATASET = REPO / "configs" / "datasets" / "busi_binary_dedup.json"
#: the smallest image size of the issue's budget (below it, ``--publish`` is refused)
FULL_SIZE = 128
#: the lock of the study's runs (this module's and busi_active_learning's ``run`` share the folder)
LOCK = "multiscale_busi"


# ----------------------------------------------------------------------------------- per-image readers


@dataclass(frozen=True)
class Predictions:
    """The labelled rows of an evaluation's ``predictions.csv``: labels, argmax predictions, probabilities
    as written (temperature-scaled where the run has an operating point; the argmax is unchanged)."""

    labels: np.ndarray
    preds: np.ndarray
    probs: np.ndarray  # (n, classes)


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def read_predictions(eval_dir: Path) -> Predictions | None:
    """The labelled predictions of ``eval_dir`` (an unlabelled image counts in no figure); None without
    the file."""
    path = eval_dir / "predictions.csv"
    if not path.is_file():
        return None
    rows = [row for row in _rows(path) if int(row["label"]) >= 0]
    if not rows:
        raise InputError(path, "no labelled predictions to score")
    columns = [c for c in rows[0] if c.startswith("prob_")]
    return Predictions(
        labels=np.array([int(row["label"]) for row in rows]),
        preds=np.array([int(row["pred"]) for row in rows]),
        probs=np.array([[float(row[c]) for c in columns] for row in rows]),
    )


def read_map_scores(
    eval_dir: Path, method: str, file_name: str = "attention_per_image.csv"
) -> dict[str, np.ndarray] | None:
    """Per-image scores of ``method``'s maps: their agreement with the masks (``attention_per_image.csv``) or
    their Deletion/Insertion AUCs (``faithfulness_per_image.csv``), each measure without the images it is
    undefined for (no mask); None without the file or the method."""
    path = eval_dir / file_name
    if not path.is_file():
        return None
    rows = [row for row in _rows(path) if row["method"] == method]
    if not rows:
        return None
    measures = [c for c in rows[0] if c not in ("source", "method")]
    found = {m: np.array([float(row[m]) for row in rows]) for m in measures}
    return {m: values[~np.isnan(values)] for m, values in found.items()}


# ------------------------------------------------------------------------------------------- collector


def method_scores(eval_dir: Path, method: str) -> dict[str, dict]:
    """The map's and its model's test figures (``{"mean", "ci95", "n"}`` where per-image data exist,
    ``{"mean"}`` otherwise); empty for an evaluation that is not there."""
    from monai_xai.metrics.uncertainty import accuracy, auc, bootstrap_ci, mean_of

    metrics = read_json_if_present(eval_dir / "metrics.json")
    if not metrics:
        return {}
    faithfulness = read_json_if_present(eval_dir / "faithfulness.json").get(method, {})
    agreement = metrics.get("attention_agreement", {}).get(method, {})
    recorded = {
        "deletion_auc": faithfulness.get("deletion_auc"),
        "insertion_auc": faithfulness.get("insertion_auc"),
        "map_mse": agreement.get("map_mse"),
        "map_pointing_game": agreement.get("pointing_game"),
        "accuracy": metrics.get("image", {}).get("accuracy"),
        "auc": metrics.get("image", {}).get("auc"),
    }
    scores = {k: {"mean": float(v)} for k, v in recorded.items() if v is not None}
    options = {"n_boot": N_BOOT, "seed": 0}
    predictions = read_predictions(eval_dir)
    if predictions is not None:
        y = predictions.labels
        scores["accuracy"] = bootstrap_ci(accuracy, y, predictions.preds, stratify=0, **options).to_dict()
        if predictions.probs.shape[1] == 2:
            scores["auc"] = bootstrap_ci(auc, y, predictions.probs[:, 1], stratify=0, **options).to_dict()
    per_image = {
        **(read_map_scores(eval_dir, method) or {}),
        **(read_map_scores(eval_dir, method, "faithfulness_per_image.csv") or {}),
    }
    for measure, column in PER_IMAGE_COLUMNS.items():
        if per_image.get(column) is not None and per_image[column].size:
            scores[measure] = bootstrap_ci(mean_of, per_image[column], **options).to_dict()
    return scores


def training_record(run_dir: Path) -> dict[str, int]:
    """Epochs the run trained (``latest.pt``) and the epoch of its best validation score (``best.json``)."""
    record = {}
    best = read_json_if_present(run_dir / "checkpoints" / "best.json")
    if "epoch" in best:
        record["best_epoch"] = int(best["epoch"])
    latest = run_dir / "checkpoints" / "latest.pt"
    if latest.is_file():
        import torch

        record["epochs_trained"] = int(
            torch.load(latest, map_location="cpu", weights_only=True, mmap=True)["engine"]["epoch"]
        )
    return record


def recorded_settings(multiscale_dir: Path) -> dict[str, Any]:
    """Dataset, fold and image size of a run (its ``run.json``) and the Deletion/Insertion steps and
    baseline of its test evaluation (``faithfulness.json``), where recorded."""
    settings: dict[str, Any] = {}
    identity = read_json_if_present(multiscale_dir / "run.json").get("identity", {})
    data, network = identity.get("data", {}), identity.get("network", {})
    if "dataset" in data:
        settings["dataset"] = data["dataset"]
    if "fold" in data:
        settings["fold"] = data["fold"]
    if network.get("spatial_size"):
        settings["spatial_size"] = network["spatial_size"][0]
    faithfulness = read_json_if_present(multiscale_dir / "eval_test" / "faithfulness.json")
    if "steps" in faithfulness:
        settings["faithfulness_steps"] = faithfulness["steps"]
    if "baseline" in faithfulness:
        settings["faithfulness_baseline"] = faithfulness["baseline"]
    return settings


def collect(runs: Path, finetune: str = FINETUNE) -> dict:
    """Every method's scores per backbone found under ``runs``, each model's training record, the settings
    the first backbone's multi-scale run recorded and, where a runner ran the steps there, their wall time."""
    backbones = (
        sorted(p.name for p in runs.iterdir() if p.is_dir() and (p / "multiscale").is_dir())
        if runs.is_dir()
        else []
    )
    if not backbones:
        raise InputError(runs, f"no <backbone>/multiscale run in it: run {DRIVER}")
    methods, training = {}, {}
    for key, label, folder, method in METHODS:
        folder = folder.format(name=finetune)
        per_backbone = {}
        for backbone in backbones:
            run_dir = runs / backbone / folder
            scores = method_scores(run_dir / "eval_test", method)
            if scores:
                per_backbone[backbone] = scores
                training.setdefault(backbone, {})[folder] = training_record(run_dir)
        methods[key] = {"label": label, "run": folder, "scores": per_backbone}
    settings = {"finetune": finetune, **recorded_settings(runs / backbones[0] / "multiscale")}
    report = {"backbones": backbones, "methods": methods, "training": training, "settings": settings}
    if (runs / RUNTIME_FILE).is_file():
        models = {(b, folder.split("/")[0]) for b in backbones for _, _, folder, _ in METHODS}
        report["wall_time"] = wall_time(runs, lambda name: tuple(name.split("/")[:2]) in models)
    return report


# ---------------------------------------------------------------------------------------------- runner


def train_eval_steps(
    name: str,
    run_dir: Path,
    configs: Sequence[Path],
    eval_configs: Sequence[Path],
    overrides: Mapping[str, Any],
    inputs: Sequence[Path] = (),
) -> list[Step]:
    """A bundle training and its test evaluation as two runner steps, ``<name>/train`` and
    ``<name>/evaluate``: ``configs`` with ``overrides`` (and the ABN bundle's logging config), then
    ``configs`` + the ABN bundle's ``evaluate.json`` + ``eval_configs`` with the same overrides.

    ``run_dir`` is the folder the training writes (its ``run.json``; ``inputs`` are files it reads, a
    pretrained checkpoint); the evaluation writes ``<run_dir>/eval_test`` from ``checkpoints/best.pt``.
    """
    options = {"logging_file": ABN_CONFIGS / "logging.conf", **overrides}
    evaluate = [*configs, ABN_CONFIGS / "evaluate.json", *eval_configs]
    checkpoint = run_dir / "checkpoints" / "best.pt"
    return [
        Step(f"{name}/train", bundle_run_argv(configs, options), run_dir, inputs=inputs),
        Step(
            f"{name}/evaluate", bundle_run_argv(evaluate, options), run_dir / "eval_test", inputs=[checkpoint]
        ),
    ]


def correction_records_step(
    name: str, run_dir: Path, configs: Sequence[Path], overrides: Mapping[str, Any]
) -> Step:
    """``<name>/collect``: the multi-scale model's correction records (``collect.json``: its maps and
    confidences over the training images) from ``run_dir``'s best checkpoint into ``<run_dir>/correction``."""
    options = {"logging_file": ABN_CONFIGS / "logging.conf", **overrides}
    return Step(
        f"{name}/collect",
        bundle_run_argv([*configs, CONFIGS / "collect.json"], options),
        run_dir / "correction",
        inputs=[run_dir / "checkpoints" / "best.pt"],
    )


def common_overrides(args: argparse.Namespace, extra: Mapping[str, Any], folder: Path) -> dict[str, Any]:
    """The overrides every bundle run of the study shares: image size, Deletion/Insertion steps, the MLflow
    store of ``folder`` and the extra overrides of the command line."""
    store = f"sqlite:///{folder.resolve() / 'mlruns.db'}"
    return {
        "spatial_size": [args.size, args.size],
        "faithfulness_steps": args.steps,
        "tracking_uri": store,
        **extra,
    }


def _training(args: argparse.Namespace) -> dict[str, Any]:
    return {"max_epochs": args.max_epochs, "early_stop_patience": args.patience}


def _multiscale_configs(args: argparse.Namespace) -> list[Path]:
    return [ABN_CONFIGS / "train.json", CONFIGS / "train.json", args.dataset]


def multiscale_steps(
    folder: Path, backbone: str, args: argparse.Namespace, extra: Mapping[str, Any], seed: int = 0
) -> tuple[Path, list[Step]]:
    """The multi-scale ABN of ``backbone`` under ``folder``: trained, tested, and the correction records of
    its training images collected (what the strategies rank). Seed 0 is the maps' ``<backbone>/multiscale``;
    another seed is ``<backbone>/multiscale_seed<k>``, trained with that seed and without Deletion/Insertion
    (an active-learning repetition). Returns its folder and its steps."""
    name = "multiscale" if seed == 0 else f"multiscale_seed{seed}"
    run_dir = folder / backbone / name
    common = common_overrides(args, extra, folder)
    seeded = {} if seed == 0 else {"seed": seed}
    training = {"output_dir": run_dir, "backbone": backbone, **seeded, **_training(args), **common}
    if seed != 0:
        training["faithfulness_methods"] = []
    configs = _multiscale_configs(args)
    steps = train_eval_steps(f"{backbone}/{name}", run_dir, configs, [CONFIGS / "evaluate.json"], training)
    records = {"backbone": backbone, "output_dir": run_dir, **common, **seeded}
    steps.append(correction_records_step(f"{backbone}/{name}", run_dir, configs, records))
    return run_dir, steps


def map_steps(runs: Path, backbone: str, args: argparse.Namespace, extra: Mapping[str, Any]) -> list[Step]:
    """Every step of one backbone's row of models: the plain ResNet explained by Grad-CAM and Grad-CAM++,
    the single-scale ABN, the multi-scale ABN with its correction records, and the multi-scale ABN
    fine-tuned on every training image's corrected map."""
    common = common_overrides(args, extra, runs)
    training = _training(args)
    single = [ABN_CONFIGS / "train.json", args.dataset]
    base, abn = runs / backbone / "gradcam_resnet", runs / backbone / "abn"
    steps = train_eval_steps(
        f"{backbone}/gradcam_resnet", base, single, [],
        {"output_dir": base, "mode": "baseline", "backbone": backbone, **training, **common,
         "saliency_baselines": ["gradcam", "gradcampp"], "faithfulness_methods": ["gradcam", "gradcampp"],
         "cam_layer": "network.layer3"},
    )  # fmt: skip
    steps += train_eval_steps(
        f"{backbone}/abn", abn, single, [],
        {"output_dir": abn, "mode": "plain", "backbone": backbone, **training, **common,
         "saliency_baselines": [], "faithfulness_methods": ["attention"]},
    )  # fmt: skip
    multiscale, model = multiscale_steps(runs, backbone, args, extra)
    finetuning = {
        "max_epochs": args.ft_epochs,
        "map_weights": args.map_weights,
        "learning_rate": args.ft_learning_rate,
    }
    steps += model + train_eval_steps(
        f"{backbone}/multiscale/finetune/{FINETUNE}",
        multiscale / "finetune" / FINETUNE,
        [*_multiscale_configs(args), CONFIGS / "finetune.json"],
        [CONFIGS / "evaluate.json"],
        {"backbone": backbone, "output_dir": multiscale, **finetuning, **common},
        inputs=[multiscale / "checkpoints" / "best.pt", multiscale / "correction" / "records.csv"],
    )
    return steps


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of the study's ``run`` (this module's and busi_active_learning's)."""
    parser.add_argument(
        "--runs",
        type=Path,
        help="the study's folder (default runs/experiments/multiscale_busi-<size>px); one MLflow store in it",
    )
    parser.add_argument("--size", type=int, default=FULL_SIZE, help="image size the networks see")
    parser.add_argument("--max_epochs", type=int, default=60, help="at most this many training epochs")
    parser.add_argument(
        "--patience", type=int, default=10, help="stop after this many epochs without a better validation AUC"
    )
    parser.add_argument("--ft_epochs", type=int, default=15, help="fine-tuning epochs")
    parser.add_argument("--map_weights", type=float, default=10.0, help="L_map weight while fine-tuning")
    parser.add_argument("--ft_learning_rate", type=float, default=0.001, help="fine-tuning learning rate")
    parser.add_argument("--steps", type=int, default=20, help="Deletion/Insertion steps")
    parser.add_argument("--dataset", type=Path, default=DATASET, help="the dataset fragment")


def study_folder(args: argparse.Namespace) -> Path:
    """``--runs``, or the default folder of the image size."""
    runs = args.runs or REPO / "runs" / "experiments" / f"multiscale_busi-{args.size}px"
    return runs.resolve()


def budget(args: argparse.Namespace) -> dict[str, Any]:
    """The training budget ``run`` was given, as the results files record it."""
    return {
        "max_epochs": args.max_epochs,
        "patience": args.patience,
        "ft_epochs": args.ft_epochs,
        "map_weights": args.map_weights,
        "ft_learning_rate": args.ft_learning_rate,
    }


def below_budget(args: argparse.Namespace, extra: Mapping[str, Any]) -> list[str]:
    """Why a run is below the issue's budget (>= 128 px, early stopping, the leak-free split, no extra
    overrides): empty at the budget."""
    short = []
    if args.size < FULL_SIZE:
        short.append(f"size {args.size} < {FULL_SIZE}")
    if args.patience <= 0:
        short.append("no early stopping (--patience 0)")
    if args.dataset.resolve() != DATASET.resolve():
        short.append(f"dataset {args.dataset}, not {DATASET.relative_to(REPO)}")
    if extra:
        short.append(f"bundle overrides {dict(extra)}")
    return short


def run(args: argparse.Namespace, extra: Mapping[str, Any]) -> dict:
    """Train and test every backbone's models (resumable: finished steps are skipped), then collect."""
    runs = study_folder(args)
    names: set[str] = set()
    with StepRunner(runs, LOCK) as runner:
        for backbone in args.backbones:
            for step in map_steps(runs, backbone, args, extra):
                runner.run(step)
                names.add(step.name)
    report = collect(runs)
    report["settings"].update(budget(args))
    report["wall_time"] = wall_time(runs, names.__contains__)
    return report


def main(argv: Sequence[str] | None = None) -> int:
    parser, commands = study_parser("busi_maps", __doc__)
    run_parser = commands.add_parser(
        "run",
        help="train and test every backbone's models (resumable), then collect; extra --key value pairs "
        "override config ids of every bundle run",
    )
    add_run_arguments(run_parser)
    run_parser.add_argument("--backbones", nargs="+", default=["resnet18", "resnet34"])
    collect_parser = commands.add_parser("collect", help="collect finished runs into the results file")
    collect_parser.add_argument("--runs", type=Path, required=True, help="the study's folder")
    collect_parser.add_argument("--finetune", default=FINETUNE, help="fine-tuning run of the last row")
    for name, kind in BUDGET.items():
        collect_parser.add_argument(f"--{name}", type=kind, help="training budget, recorded under settings")
    for sub in (run_parser, collect_parser):
        add_output_arguments(sub, published=PUBLISHED)
    args, extra = parse_study_args(parser, argv)
    destination = output_path(args, PUBLISHED)
    if args.command == "run":
        refuse_short_publish(args.publish, below_budget(args, extra))
        report = run(args, extra)
    else:
        report = collect(args.runs, args.finetune)
        report["settings"].update({k: getattr(args, k) for k in BUDGET if getattr(args, k) is not None})
    write_results(report, destination, publish=args.publish)
    for key, method in report["methods"].items():
        figures = {b: {m: fmt_ci(s) for m, s in scores.items()} for b, scores in method["scores"].items()}
        print(key, json.dumps(figures, ensure_ascii=False))
    print(
        f"written {destination}"
        + ("; render the READMEs: python -m monai_xai.experiments render" if args.publish else "")
    )
    return 0


# -------------------------------------------------------------------------------------------- renderer


def _method_table(report: dict, measures: Mapping[str, tuple[str, int]]) -> list[str]:
    """One row per method, a column per backbone and measure."""
    backbones, methods = report["backbones"], report["methods"]
    heads = [f"{backbone} {head}" for backbone in backbones for head, _ in measures.values()]
    rows = [f"| method | {' | '.join(heads)} |", "|---" * (len(heads) + 1) + "|"]
    for method in methods.values():
        cells = [
            fmt_ci(method["scores"].get(backbone, {}).get(measure), digits)
            for backbone in backbones
            for measure, (_, digits) in measures.items()
        ]
        rows.append(f"| {method['label']} | {' | '.join(cells)} |")
    return rows


def _has_intervals(report: dict) -> bool:
    return any(
        isinstance(value, Mapping) and "ci95" in value
        for method in report["methods"].values()
        for scores in method["scores"].values()
        for value in scores.values()
    )


def render(report: dict) -> str:
    """Deletion, Insertion and map MSE per method and backbone, then the explained models' test scores and
    how long each trained; intervals where the results file has them, no column's best marked."""
    settings = report.get("settings", {})
    rows = _method_table(report, MAP_MEASURES)
    rows += ["", *_method_table(report, MODEL_MEASURES), ""]
    trained = []
    for backbone, runs in report.get("training", {}).items():
        for run, record in runs.items():
            if "epochs_trained" in record and "best_epoch" in record:
                trained.append(f"{backbone} `{run}` {record['best_epoch']}/{record['epochs_trained']}")
    if trained:
        rows += [f"Best validation epoch / epochs trained: {', '.join(trained)}.", ""]
    get = settings.get
    size = get("spatial_size")
    intervals = (
        "Brackets: bootstrap 95 % intervals over the test images (accuracy and AUC stratified by label); "
        "a figure without brackets comes from an evaluation that kept no per-image scores."
        if _has_intervals(report)
        else "No intervals: these evaluations kept no per-image scores (re-run pending)."
    )
    rows.append(
        f"Dataset `{get('dataset', '?')}`, fold {get('fold', 0)}, {size}x{size}; training stopped after "
        f"{get('patience', '?')} epochs without a better validation AUC (at most {get('max_epochs', '?')}); "
        f"fine-tuning {get('ft_epochs', '?')} epochs, L_map weight {get('map_weights', '?')}, learning rate "
        f"{get('ft_learning_rate', '?')}; Deletion/Insertion {get('faithfulness_steps', '?')} steps, "
        f"{get('faithfulness_baseline', 'blur')} baseline. One run per cell; no method is marked best. "
        f"{intervals}"
    )
    return "\n".join(rows) + "\n"


BLOCKS = {"busi_maps": bundle_results(BUNDLE, "busi_maps", render)}
