"""Corrections fix a shortcut: the multi-scale ABN on the demo phantoms, before and after fine-tuning on the
corrected maps of each active-learning strategy's top fractions of the training images.

The phantoms' label is the lesion's margin, while a bright corner marker agrees with the label in every
training and validation image and is random in the test set (``scripts/make_demo_data.py``). Trained without
map supervision (the bundle's default ``--map_weights 0``), the network can take the marker and fall to
chance on the shortcut-free test set. The trained model's records of the training images
(``collect.json``) are ranked by every strategy of ``monai_xai.active_learning``; the lesion masks of each
top fraction stand in for the expert's corrected maps. Fine-tuning starts from the same checkpoint in two
arms: ``branches`` (feature extractor frozen, as in the study) and ``whole`` (``--freeze_features false``),
one ``monai_xai.active_learning.sweep`` per arm. Each fine-tune is scored at its last epoch by default: the
validation images carry the marker, so a checkpoint chosen on them favours the shortcut.

Nothing is chosen on the test set. The arm the issue's target is judged on, :data:`JUDGED_ARM`, is declared
here before any test figure is read; every arm, strategy and fraction is reported with its interval, none
picked for its test figure. Each cell's test accuracy comes with a stratified (by label) bootstrap 95 %
interval from the per-image predictions of its evaluation, its map pointing game with a bootstrap interval
from the per-image map scores: ``run`` records where each fine-tune's evaluation lies
(``<arm>/sweep/eval_dirs.json``, beside the sweep's ``sweep.json``). A cell meets the target only when its
whole interval lies above it (:func:`~.results.verdict`); the target is met after correction when a cell of
the judged arm with at most 30 % corrected meets it (every such cell is listed with its verdict).

``run`` makes the phantoms when ``--data`` has none (``scripts/make_demo_data.py``, the images of
``demo_shortcut``: 800/200/400, seed 0), then runs one runner step (:mod:`.runner`) per bundle call: the
training, its test evaluation, the records of the training images, and one sweep per arm. Every step reuses
what a previous run finished: a finished step is skipped, a killed training resumes from its last epoch, a
sweep skips the combinations it evaluated after their last checkpoint. Writes
``bundles/multiscale_abn_correction/docs/results/demo_correction.json`` (``--publish``) or ``--out``: test
accuracy and map pointing game before; ``judged_arm``; under ``arms`` every arm's accuracy (``after``) and
pointing game per strategy and fraction, each ``{"mean", "ci95", "n"}``; the issue's target with its judged
cells; the settings; the wall time of the steps (:func:`~.runner.wall_time`).

Usage (one driver per run folder at a time; rerun the same command after an interruption; ``--publish`` only
at the default budget or above, data, epochs, size, and with no other options than those, then
``python -m monai_xai.experiments render``)::

    mkdir -p runs/experiments && nohup python -m monai_xai.experiments demo_correction run --publish \\
        >> runs/experiments/demo_correction.log 2>&1 &
    python -m monai_xai.experiments demo_correction run [--epochs 12] [--size 64] [--ft_epochs 15] \\
        [--map_weights 10] [--ft_learning_rate 0.001] [--data demo_data/phantom2d] \\
        [--n_train 800 --n_val 200 --n_test 400] [--runs runs/experiments/demo_correction-64px-12ep-ft15] \\
        [--strategies ...] [--fractions ...] [--arms ...] [--checkpoint last] \\
        (--out demo_correction.json | --publish) [--key value ...]
    # smoke test of the whole chain on 48/16/32 phantoms, one epoch each, one strategy and two fractions
    # (about 3.5 min under load; without --strategies/--fractions: all 30 fine-tunes):
    python -m monai_xai.experiments demo_correction run --data runs/experiments/demo_correction_smoke/data \\
        --n_train 48 --n_val 16 --n_test 32 --epochs 1 --ft_epochs 1 --strategies random \\
        --fractions 0.1 0.2 --runs runs/experiments/demo_correction_smoke \\
        --out runs/experiments/demo_correction_smoke/demo_correction.json --batch_size 16

Extra ``--key value`` pairs override config ids of every bundle run (e.g. ``--batch_size 8 --limit 40``).

Runtime: 1 training of ``--epochs`` epochs + 2 arms x 3 strategies x 5 fractions = 30 fine-tunes of
``--ft_epochs`` epochs, each with its test evaluation: 12 + 30 x 15 = 462 epochs of 800 training + 200
validation images. Measured on the 2-core machine while it also ran a BUSI cross-validation (this job at nice
19): a training epoch 170 s, a ``branches`` fine-tuning epoch 119 s (a ``whole`` one costs about a training
epoch), 19 s per fine-tune for its setup and test evaluation: about 19 h at that rate. Alone on the machine
it should take about 1.5 h: demo_shortcut's 6 arms x 12 epochs on the same images took 881 s (about 11 s an
epoch, and the multi-scale network's training step is as fast as the ABN's). Run it alone.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from monai_xai.errors import InputError

from .busi_maps import read_map_scores, read_predictions
from .results import (
    REPO,
    add_output_arguments,
    as_stats,
    bundle_results,
    fmt_ci,
    fraction_key,
    output_path,
    read_json,
    study_parser,
    verdict,
    write_results,
)
from .runner import Step, StepRunner, bundle_run_argv, sweep_argv, wall_time

__all__ = [
    "ARMS",
    "BLOCKS",
    "JUDGED_ARM",
    "TARGET",
    "arm_scores",
    "before_scores",
    "finetune_eval_dir",
    "main",
    "parse_args",
    "record_eval_dirs",
    "render",
    "results",
    "run",
    "steps",
    "target_check",
]

BUNDLE = "multiscale_abn_correction"
PUBLISHED = f"bundles/{BUNDLE}/docs/results/demo_correction.json"
ABN = REPO / "bundles" / "abn_classification" / "configs"
MULTISCALE = REPO / "bundles" / BUNDLE / "configs"
TRAIN = [str(ABN / "train.json"), str(MULTISCALE / "train.json")]
EVALUATE = [str(ABN / "evaluate.json"), str(MULTISCALE / "evaluate.json")]
FINETUNE = str(MULTISCALE / "finetune.json")

#: arm -> (what it fine-tunes, its bundle overrides)
ARMS: dict[str, tuple[str, dict]] = {
    "branches": ("the branches, feature extractor frozen (as in the study)", {"freeze_features": True}),
    "whole": ("the whole network, feature extractor included", {"freeze_features": False}),
}
FRACTIONS = (0.1, 0.2, 0.3, 0.5, 1.0)
#: the issue's target: test accuracy >= after_at_least with at most fraction_at_most of the maps corrected,
#: from at most before_at_most.
TARGET = {"before_at_most": 0.65, "after_at_least": 0.85, "fraction_at_most": 0.3}
#: the arm the target is judged on, declared before any test figure is read: the study's setting (feature
#: extractor frozen). The other arm is reported beside it, cell by cell, and never takes its place for
#: having come out higher on the test set.
JUDGED_ARM = "branches"
#: bootstrap resamples of each cell's 95 % interval (seed 0)
N_BOOT = 2000
#: which fine-tuning checkpoint each combination is scored by -> its file in the fine-tune's checkpoints/
CHECKPOINTS = {"last": "latest.pt", "best": "best.pt"}
DRIVER = "python -m monai_xai.experiments demo_correction run (it resumes)"
#: beside an arm's ``sweep/sweep.json``: strategy -> fraction -> the folder of its evaluation (per-image
#: predictions and map scores)
EVAL_DIRS = "eval_dirs.json"
#: a per-image figure may differ from the recorded one by the rounding of the per-image files
TOLERANCE = 1e-4


def _checked(stats: dict, figure: float, source: Path, what: str) -> dict:
    """``stats`` when its estimate is the recorded ``figure``; an error naming ``source`` otherwise (the
    per-image files were written by another evaluation than the one the figure came from)."""
    if abs(stats["mean"] - figure) > TOLERANCE:
        raise InputError(
            source,
            f"{what} {stats['mean']:.4f} of its per-image files, {figure:.4f} recorded: the evaluation "
            f"changed after it was scored; run {DRIVER}",
        )
    return stats


def cell_scores(eval_dir: Path | None, accuracy: float, pointing_game: float) -> tuple[dict, dict]:
    """Test accuracy (stratified bootstrap over the labels) and map pointing game of one evaluation, each
    ``{"mean", "ci95", "n"}`` from its per-image files, or the recorded figure alone without them."""
    from monai_xai.metrics.uncertainty import accuracy as accuracy_of
    from monai_xai.metrics.uncertainty import bootstrap_ci, mean_of

    accuracy_stats, pointing_stats = {"mean": accuracy}, {"mean": pointing_game}
    if eval_dir is None:
        return accuracy_stats, pointing_stats
    predictions = read_predictions(eval_dir)
    if predictions is not None:
        interval = bootstrap_ci(
            accuracy_of, predictions.labels, predictions.preds, n_boot=N_BOOT, stratify=0, seed=0
        )
        accuracy_stats = _checked(interval.to_dict(), accuracy, eval_dir, "accuracy")
    maps = read_map_scores(eval_dir, "attention") or {}
    hits = maps.get("pointing_game")
    if hits is not None and hits.size:
        interval = bootstrap_ci(mean_of, hits, n_boot=N_BOOT, seed=0)
        pointing_stats = _checked(interval.to_dict(), pointing_game, eval_dir, "map pointing game")
    return accuracy_stats, pointing_stats


def before_scores(trained_dir: Path) -> dict:
    """Test accuracy and map pointing game of the trained (uncorrected) model, with their intervals where
    the per-image files are there."""
    from monai_xai.handlers.evaluation_report import flatten_report

    eval_dir = trained_dir / "eval_test"
    flat = flatten_report(read_json(eval_dir / "metrics.json", f"run {DRIVER}"))
    accuracy, pointing_game = cell_scores(eval_dir, flat["image_accuracy"], flat["attention_pointing_game"])
    return {"test_accuracy": accuracy, "map_pointing_game": pointing_game}


def arm_scores(arm_dir: Path, strategies: Sequence[str], fractions: Sequence[float]) -> dict[str, dict]:
    """Test accuracy (``after``) and map pointing game per strategy and fraction from the arm's sweep, with
    intervals for every cell whose evaluation :func:`record_eval_dirs` located."""
    sweep_file = arm_dir / "sweep" / "sweep.json"
    rows = {(r["strategy"], fraction_key(r["fraction"])): r for r in read_json(sweep_file, f"run {DRIVER}")}
    wanted = [(s, fraction_key(f)) for s in strategies for f in fractions]
    missing = [f"{s} {f}" for s, f in wanted if (s, f) not in rows]
    if missing:
        raise InputError(sweep_file, f"lacks {', '.join(missing)}: run {DRIVER}")
    located = arm_dir / "sweep" / EVAL_DIRS
    eval_dirs = json.loads(located.read_text()) if located.is_file() else {}
    after: dict[str, dict[str, dict]] = {}
    pointing: dict[str, dict[str, dict]] = {}
    for s, f in wanted:
        relative = eval_dirs.get(s, {}).get(f)
        row = rows[(s, f)]
        eval_dir = None if relative is None else arm_dir / relative
        accuracy, pointing_game = cell_scores(eval_dir, row["accuracy"], row["map_pointing_game"])
        after.setdefault(s, {})[f] = accuracy
        pointing.setdefault(s, {})[f] = pointing_game
    return {"after": after, "pointing_game": pointing}


def target_check(before: Mapping, arms: Mapping[str, Mapping]) -> dict:
    """The issue's target: the before figure's verdict, and every cell of :data:`JUDGED_ARM` with at most the
    target's fraction corrected with its verdict; ``after_met`` when one of them meets the target (None when
    the judged arm was not run). A figure without an interval meets nothing."""
    limit, goal = TARGET["fraction_at_most"], TARGET["after_at_least"]
    before_verdict = verdict(before["test_accuracy"], TARGET["before_at_most"], higher_is_better=False)
    cells, after_met = [], None
    judged = arms.get(JUDGED_ARM)
    if judged is not None:
        for strategy, row in judged["after"].items():
            for fraction, stats in row.items():
                if float(fraction) <= limit:
                    cells.append({"strategy": strategy, "fraction": float(fraction), "test_accuracy": stats,
                                  "verdict": verdict(stats, goal)})  # fmt: skip
        after_met = any(c["verdict"] == "met" for c in cells)
    before_met = before_verdict == "met"
    return {
        **TARGET,
        "arm": JUDGED_ARM,
        "cells": cells,
        "verdicts": dict(Counter(c["verdict"] for c in cells)),
        "cells_met": sum(c["verdict"] == "met" for c in cells),
        "before_verdict": before_verdict,
        "before_met": before_met,
        "after_met": after_met,
        "met": None if after_met is None else before_met and after_met,
    }


def results(
    runs: Path, strategies: Sequence[str], fractions: Sequence[float], arms: Sequence[str], settings: dict
) -> dict:
    """The results file's content from the finished runs under ``runs`` (errors name what is missing)."""
    before = before_scores(runs / "trained")
    per_arm = {
        name: {"description": ARMS[name][0], **arm_scores(runs / name, strategies, fractions)}
        for name in arms
    }
    return {
        "before": before,
        "judged_arm": JUDGED_ARM,
        "arms": per_arm,
        "target": target_check(before, per_arm),
        "settings": settings,
    }


# ---------------------------------------------------------------------------------------------- runner


def finetune_eval_dir(
    output_dir: Path, strategy: str, fraction: float, overrides: Mapping | None = None
) -> Path:
    """Where the bundle configs put the test evaluation of the fine-tune of (``strategy``, ``fraction``) of
    the trained run in ``output_dir``: the sweep's own rule, read from the configs rather than restated."""
    from monai.bundle import ConfigParser

    parser = ConfigParser()
    parser.read_config([*TRAIN, FINETUNE, *EVALUATE])
    parser.update(
        {**dict(overrides or {}), "output_dir": str(output_dir), "strategy": strategy,
         "fraction": float(fraction), "eval_split": "test"}
    )  # fmt: skip
    return Path(parser.get_parsed_content("eval_dir"))


def record_eval_dirs(
    arm_dir: Path, strategies: Sequence[str], fractions: Sequence[float], overrides: Mapping
) -> Path:
    """Write ``<arm>/sweep/eval_dirs.json``: where each (strategy, fraction)'s test evaluation lies, relative
    to the arm's folder, so that :func:`results` reads its per-image files."""
    from monai_xai.utils import atomic_write_json

    located: dict[str, dict[str, str]] = {}
    for strategy in strategies:
        for fraction in fractions:
            eval_dir = finetune_eval_dir(arm_dir, strategy, fraction, overrides)
            located.setdefault(strategy, {})[fraction_key(fraction)] = os.path.relpath(eval_dir, arm_dir)
    return atomic_write_json(arm_dir / "sweep" / EVAL_DIRS, located, indent=1)


def split_sizes(data: Path) -> dict[str, int]:
    """Images per split of the phantoms' ``labels.csv``."""
    with open(data / "labels.csv", newline="") as f:
        return dict(Counter(row["split"] for row in csv.DictReader(f)))


#: the phantoms of the default budget (``demo_shortcut``'s), relative to the repository
DATA = Path("demo_data/phantom2d")
#: the default budget; below it (or with other data or any other option) ``--publish`` is refused
FULL_BUDGET = {"epochs": 12, "size": 64, "ft_epochs": 15, "n_train": 800, "n_val": 200, "n_test": 400}


def _data(args: argparse.Namespace) -> Path:
    return (args.data or REPO / DATA).resolve()


def _runs(args: argparse.Namespace) -> Path:
    name = f"demo_correction-{args.size}px-{args.epochs}ep-ft{args.ft_epochs}"
    return (args.runs or REPO / "runs" / "experiments" / name).resolve()


def _common(args: argparse.Namespace, extra: Mapping[str, Any]) -> dict[str, Any]:
    """The overrides of every bundle run: the extra ones, the phantoms and the image size."""
    return {**extra, "dataset_dir": str(_data(args)), "spatial_size": [args.size, args.size]}


def _training(args: argparse.Namespace, extra: Mapping[str, Any], runs: Path) -> dict[str, Any]:
    """The overrides of the training, its evaluation and its records: no map supervision."""
    training = {"max_epochs": args.epochs, "faithfulness_methods": [], "output_dir": str(runs / "trained")}
    return {**_common(args, extra), **training}


def finetune_overrides(args: argparse.Namespace, extra: Mapping[str, Any], runs: Path, arm: str) -> dict:
    """The overrides of an arm's fine-tunes: from the trained checkpoint and records, scored at
    ``--checkpoint``."""
    trained = runs / "trained"
    return {
        **_common(args, extra),
        "max_epochs": args.ft_epochs,
        "map_weights": args.map_weights,
        "learning_rate": args.ft_learning_rate,
        "pretrained_checkpoint": str(trained / "checkpoints" / "best.pt"),
        "records_file": str(trained / "correction" / "records.csv"),
        "checkpoint": f"$os.path.join(@ckpt_dir, '{CHECKPOINTS[args.checkpoint]}')",
        "faithfulness_methods": [],
        **ARMS[arm][1],
    }


def steps(args: argparse.Namespace, extra: Mapping[str, Any], runs: Path) -> list[Step]:
    """The run's steps in order: the phantoms (only where ``--data`` has none), the training without map
    supervision, its test evaluation, the records of the training images, and one sweep per arm."""
    data, trained = _data(args), runs / "trained"
    found = []
    if not (data / "labels.csv").is_file():
        make = [sys.executable, str(REPO / "scripts" / "make_demo_data.py"), "--out", str(data)]
        make += ["--n-train", str(args.n_train), "--n-val", str(args.n_val), "--n-test", str(args.n_test)]
        found.append(Step("data", [*make, "--seed", "0"], data))
    checkpoint, records = trained / "checkpoints" / "best.pt", trained / "correction" / "records.csv"
    training = _training(args, extra, runs)
    found += [
        Step("trained/train", bundle_run_argv(TRAIN, training), trained),
        Step("trained/evaluate", bundle_run_argv([*TRAIN, *EVALUATE], training), trained / "eval_test",
             inputs=[checkpoint]),
        Step("trained/collect", bundle_run_argv([*TRAIN, str(MULTISCALE / "collect.json")], training),
             trained / "correction", inputs=[checkpoint]),
    ]  # fmt: skip
    for arm in args.arms:
        argv = sweep_argv(
            TRAIN,
            FINETUNE,
            EVALUATE,
            runs / arm,
            args.fractions,
            finetune_overrides(args, extra, runs, arm),
            strategies=args.strategies,
        )
        found.append(Step(f"{arm}/sweep", argv, runs / arm, inputs=[checkpoint, records]))
    return found


def run(args: argparse.Namespace, extra: Mapping[str, Any]) -> dict:
    """Run every step (resumable: finished steps are skipped), record where each arm's fine-tunes were
    evaluated, then collect."""
    import torch

    runs = _runs(args)
    with StepRunner(runs, "demo_correction") as runner:
        for step in steps(args, extra, runs):
            runner.run(step)
            arm = step.name.removesuffix("/sweep")
            if arm in ARMS:
                overrides = finetune_overrides(args, extra, runs, arm)
                record_eval_dirs(runs / arm, args.strategies, args.fractions, overrides)
    settings = {
        "data": str(args.data or DATA),
        "images": split_sizes(_data(args)),
        "spatial_size": args.size,
        "epochs": args.epochs,
        "finetune": {
            "epochs": args.ft_epochs,
            "map_weights": args.map_weights,
            "learning_rate": args.ft_learning_rate,
            "checkpoint": args.checkpoint,
        },
        "strategies": list(args.strategies),
        "fractions": [float(f) for f in args.fractions],
        "bundle_overrides": dict(extra),
        "torch_threads": torch.get_num_threads(),
    }
    report = results(runs, args.strategies, args.fractions, args.arms, settings)
    report["wall_time"] = wall_time(runs)
    return report


def below_budget(args: argparse.Namespace, extra: Mapping[str, Any]) -> list[str]:
    """Why a run is below the default budget (data, epochs, size; no other option): empty at the budget."""
    from monai_xai.active_learning import STRATEGIES

    short = [
        f"{key} {getattr(args, key)} < {low}" for key, low in FULL_BUDGET.items() if getattr(args, key) < low
    ]
    if _data(args) != (REPO / DATA).resolve():
        short.append(f"data {args.data}, not {DATA}")
    defaults = {"strategies": list(STRATEGIES), "fractions": list(FRACTIONS), "arms": list(ARMS),
                "checkpoint": "last"}  # fmt: skip
    short += [
        f"--{key} {getattr(args, key)}" for key, value in defaults.items() if getattr(args, key) != value
    ]
    if extra:
        short.append(f"bundle overrides {dict(extra)}")
    return short


def parse_args(argv: Sequence[str] | None = None) -> tuple[argparse.Namespace, dict]:
    """The options, and the extra ``--key value`` bundle overrides."""
    from monai_xai.active_learning import STRATEGIES
    from monai_xai.cli_args import bundle_overrides

    parser, commands = study_parser("demo_correction", __doc__)
    run_parser = commands.add_parser(
        "run",
        help="make the phantoms, train, collect and sweep every arm (resumable), then collect the results; "
        "extra --key value pairs override config ids of every bundle run",
    )
    run_parser.add_argument("--data", type=Path, help=f"the phantoms (default {DATA}; made when missing)")
    run_parser.add_argument("--n_train", type=int, default=800, help="training phantoms, when made")
    run_parser.add_argument("--n_val", type=int, default=200, help="validation phantoms, when made")
    run_parser.add_argument("--n_test", type=int, default=400, help="test phantoms, when made")
    run_parser.add_argument(
        "--runs", type=Path, help="run folder: trained/, branches/, whole/ (default runs/experiments/...)"
    )
    add_output_arguments(run_parser, published=PUBLISHED)
    run_parser.add_argument("--epochs", type=int, default=12, help="training epochs")
    run_parser.add_argument("--size", type=int, default=64, help="image size the network sees")
    # the fine-tuning defaults: the setting under which L_map converged on BUSI (the bundle's docs)
    run_parser.add_argument("--ft_epochs", type=int, default=15, help="fine-tuning epochs")
    run_parser.add_argument("--map_weights", type=float, default=10.0, help="L_map weight while fine-tuning")
    run_parser.add_argument("--ft_learning_rate", type=float, default=0.001, help="fine-tuning learning rate")
    run_parser.add_argument(
        "--checkpoint",
        choices=CHECKPOINTS,
        default="last",
        help="the fine-tune's checkpoint scored: its last epoch, or its best validation AUC (marker in view)",
    )
    run_parser.add_argument("--strategies", nargs="+", choices=STRATEGIES, default=list(STRATEGIES))
    run_parser.add_argument("--fractions", nargs="+", type=float, default=list(FRACTIONS))
    run_parser.add_argument("--arms", nargs="+", choices=ARMS, default=list(ARMS))
    args, extra = parser.parse_known_args(argv)
    if not all(0.0 < f <= 1.0 for f in args.fractions):
        parser.error(f"--fractions {args.fractions}: each must lie in (0, 1], a share of the training images")
    if not any(f <= TARGET["fraction_at_most"] for f in args.fractions):
        parser.error(
            f"--fractions needs one of at most {TARGET['fraction_at_most']}: the target is judged there"
        )
    return args, bundle_overrides(extra)


def main(argv: Sequence[str] | None = None) -> int:
    args, extra = parse_args(argv)
    destination = output_path(args, PUBLISHED)
    short = below_budget(args, extra)
    if args.publish and short:
        raise InputError(None, f"--publish needs the default budget: {', '.join(short)}")
    report = run(args, extra)
    write_results(report, destination, publish=args.publish)
    target = report["target"]
    print(
        f"before: test accuracy {fmt_ci(report['before']['test_accuracy'])} ({target['before_verdict']}); "
        f"after, judged on arm {target['arm']} (declared): {target['cells_met']} of {len(target['cells'])} "
        f"cells with <= {target['fraction_at_most']:.0%} corrected meet {target['after_at_least']}; "
        f"target met: {target['met']}\nwritten {destination}"
    )
    return 0


# -------------------------------------------------------------------------------------------- renderer

#: the fine-tuning checkpoint ``--checkpoint`` scored, in words
SCORED_CHECKPOINT = {"last": "last epoch", "best": "epoch of best validation AUC"}


def _cell(arm: Mapping, measure: str, strategy: str, fraction: str) -> dict | None:
    """One cell's figure as ``{"mean", ...}``; files written before the intervals moved into the cells kept
    the accuracy bare with its interval under ``after_ci``."""
    stats = as_stats(arm[measure][strategy].get(fraction))
    interval = arm.get("after_ci", {}).get(strategy, {}).get(fraction) if measure == "after" else None
    if stats is not None and interval is not None:
        stats.update(ci95=interval["ci95"], n=interval.get("n"))
    return stats


def _before(before: Mapping) -> dict:
    stats = as_stats(before["test_accuracy"]) or {}
    if "test_accuracy_ci" in before:
        stats.update(ci95=before["test_accuracy_ci"]["ci95"], n=before["test_accuracy_ci"].get("n"))
    return stats


def _target_line(report: dict, before: dict) -> str:
    """The issue's target with its verdicts, recomputed from the figures with :func:`~.results.verdict`."""
    target, judged = report["target"], report.get("judged_arm")
    limit, goal = target["fraction_at_most"], target["after_at_least"]
    head = (
        f"Target: test accuracy ≥ {goal} after correcting ≤ {limit:.0%} of the maps, from ≤ "
        f"{target['before_at_most']} before"
    )
    before_verdict = verdict(before, target["before_at_most"], higher_is_better=False)
    if judged is None:
        return (
            f"{head}: not judged from this results file (re-run pending): it predates declaring the judged "
            f"arm before reading the test set, and its figures have no intervals (before: {before_verdict})."
        )
    arm = report["arms"].get(judged)
    if arm is None:
        return f"{head}, judged on arm `{judged}`: not judged (the arm was not run)."
    verdicts = Counter(
        verdict(_cell(arm, "after", strategy, fraction) or {}, goal)
        for strategy, row in arm["after"].items()
        for fraction in row
        if float(fraction) <= limit
    )
    cells = sum(verdicts.values())
    after = ", ".join(f"{count} {name}" for name, count in sorted(verdicts.items()))
    met = before_verdict == "met" and verdicts["met"] > 0
    overall = "met" if met else "no interval (re-run pending)" if verdicts["no interval"] else "**not met**"
    return (
        f"{head}, judged on arm `{judged}` (declared before any test figure was read; a figure meets its "
        f"target only when its whole 95 % interval clears it): before {before_verdict}; after, the "
        f"{cells} cells with ≤ {limit:.0%} corrected (each strategy and fraction, none picked): {after}. "
        f"Target {overall}."
    )


def render(report: dict) -> str:
    """Before and after fine-tuning on corrected maps, the target judged on the declared arm only, then
    accuracy / map pointing game with their 95 % intervals for every strategy and fraction of every arm,
    none picked. A results file from before the declared arm or the intervals renders its bare figures and
    judges nothing."""
    before, target, settings = report["before"], report["target"], report["settings"]
    limit, goal = target["fraction_at_most"], target["after_at_least"]
    judged = report.get("judged_arm")
    before_accuracy = _before(before)
    rows = [
        "| model | test accuracy | map pointing game |",
        "|---|---|---|",
        f"| trained without map supervision (before) | {fmt_ci(before_accuracy)} | "
        f"{fmt_ci(before['map_pointing_game'])} |",
        "",
        _target_line(report, before_accuracy),
    ]
    fractions = [fraction_key(f) for f in settings["fractions"]]
    with_intervals = "ci95" in before_accuracy
    for name, arm in report["arms"].items():
        role = " (judged)" if name == judged else ""
        rows += [
            "",
            f"`{name}`{role}, fine-tuning {arm['description']}: test accuracy / map pointing game",
            "",
            f"| strategy | {' | '.join(f'{float(f):.0%}' for f in fractions)} |",
            "|---" * (len(fractions) + 1) + "|",
        ]
        for strategy in arm["after"]:
            cells = []
            for f in fractions:
                accuracy = _cell(arm, "after", strategy, f)
                with_intervals = with_intervals or "ci95" in (accuracy or {})
                text = fmt_ci(accuracy)
                if name == judged and float(f) <= limit and verdict(accuracy or {}, goal) == "met":
                    text = f"**{text}**"
                cells.append(f"{text} / {fmt_ci(_cell(arm, 'pointing_game', strategy, f))}")
            rows.append(f"| `{strategy}` | {' | '.join(cells)} |")
    images, finetune, size = settings["images"], settings["finetune"], settings["spatial_size"]
    scored = SCORED_CHECKPOINT[finetune["checkpoint"]]
    wall = report["wall_time"]["seconds"] if "wall_time" in report else sum(settings["wall_s"].values())
    intervals_note = (
        "Brackets: bootstrap 95 % intervals over each cell's test images (accuracy stratified by label); "
        "bold: a cell of the judged arm whose interval clears the target."
        if with_intervals
        else "No intervals: this run kept no per-image predictions of its cells (re-run pending)."
    )
    rows += [
        "",
        f"Phantoms: {images['train']} training, {images['val']} validation (marker = label in both), "
        f"{images['test']} test images (marker random), {size}x{size}; {settings['epochs']} training "
        f"epochs, fine-tuning {finetune['epochs']} epochs (L_map weight {finetune['map_weights']:g}, "
        f"learning rate {finetune['learning_rate']:g}), scored at its {scored}; "
        "lesion masks stand in for the corrected maps. Every arm, strategy and fraction is shown; none is "
        f"picked for its test figure. {intervals_note} {settings['torch_threads']} threads, "
        f"{wall / 60:.0f} min in all.",
    ]
    return "\n".join(rows) + "\n"


BLOCKS = {"demo_correction": bundle_results(BUNDLE, "demo_correction", render)}
