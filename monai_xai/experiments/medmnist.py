"""MedMNIST at 28x28 (no masks): the ABN without map supervision (``plain``) and the plain ResNet18
(``baseline``) on the official test splits over seeds, beside the MedMNIST v2 paper's ResNet-18 (28).

``run`` trains each arm on the official train split (best epoch on validation AUC, batch 64) and evaluates
its best checkpoint on the test split, one runner step (:mod:`.runner`) per bundle call, seed by seed, into
``<runs>/seed<k>/<dataset>/<arm>/`` (one MLflow store, ``<runs>/mlruns.db``), then collects. ``collect`` only
reads finished runs. The results file (``bundles/abn_classification/docs/results/medmnist.json`` with
``--publish``, else ``--out``) holds per dataset and arm the test accuracy, AUC, sensitivity and specificity
pooled over the seeds with :func:`~monai_xai.metrics.pooled_bootstrap_ci` (each resample draws one seed's run
and resamples its test images within each class: the interval of what one run of the recipe achieves), and
whether each arm reaches the paper's accuracy and AUC: "met" only where the whole pooled interval lies above
the paper's figure. The epochs, stem and batch size are read back from the runs (``run.json`` identity, the
MLflow run's parameters), the seeds from their identity, the wall times from the runner's record
(:func:`~.runner.wall_time`).

Budget per dataset (``--epochs DATASET=N``, ``--stem DATASET=NAME``): PneumoniaMNIST 10 epochs with the
standard stem (4708 training images), BreastMNIST 60 epochs with the small stem (546 training images). The
small stem is the 3x3 stride-1 convolution without max-pool of ResNets for 28x28 inputs (as in the MedMNIST
paper's ResNet-18 (28)), about 16x the compute of the standard one, which leaves layer1 7x7 positions.

Usage (one driver per run folder at a time; rerun the same command after an interruption: a finished step
is skipped, a killed training resumes from its ``checkpoints/latest.pt``; ``--publish`` only at the full
budget: both datasets at their default epochs and stem, three seeds, no ``--limit``)::

    mkdir -p runs/experiments && nohup python -m monai_xai.experiments medmnist run --publish \\
        >> runs/experiments/medmnist.log 2>&1 &
    python -m monai_xai.experiments medmnist run [--datasets pneumoniamnist breastmnist] [--seeds 0 1 2] \\
        [--epochs breastmnist=60] [--stem breastmnist=small] [--runs runs/experiments/medmnist] \\
        (--out medmnist.json | --publish)
    # smoke test (a minute or two): one seed, one epoch, 64 images per split
    python -m monai_xai.experiments medmnist run --datasets breastmnist --seeds 0 --epochs breastmnist=1 \\
        --limit 64 --runs runs/smoke/medmnist --out runs/smoke/medmnist.json
    # the standard stem on BreastMNIST (it gave AUC 0.843 for both arms at 10 epochs, seed 0)
    python -m monai_xai.experiments medmnist run --datasets breastmnist --seeds 0 --epochs breastmnist=10 \\
        --stem breastmnist=standard --runs runs/experiments/medmnist-standard \\
        --out runs/experiments/medmnist-standard/medmnist.json
    python -m monai_xai.experiments medmnist collect --runs runs/experiments/medmnist --publish

Runtime, each run alone on the 2-core machine: a seed of both datasets and arms took about 22 min (259 and
367 s for the PneumoniaMNIST arms, 280 and 438 s for the BreastMNIST ones, training and test), so three
seeds take about 1.1 h.
"""

from __future__ import annotations

import argparse
import csv
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from monai_xai.errors import InputError

from .results import (
    REPO,
    Block,
    add_output_arguments,
    bundle_results,
    finite,
    fmt_ci,
    output_path,
    study_parser,
    verdict,
    verdict_cell,
    write_results,
)
from .runner import Step, StepRunner, bundle_run_argv, wall_time

__all__ = [
    "ARMS",
    "BLOCKS",
    "BUDGET",
    "PAPER_RESNET18_28",
    "PUBLISHED",
    "arm_result",
    "collect",
    "main",
    "render",
    "run",
    "steps",
]

PUBLISHED = "bundles/abn_classification/docs/results/medmnist.json"
CONFIGS = REPO / "bundles" / "abn_classification" / "configs"
#: Yang et al., MedMNIST v2 (Scientific Data 2023), Table: ResNet-18 (28), test ACC and AUC.
PAPER_RESNET18_28 = {
    "pneumoniamnist": {"accuracy": 0.854, "auc": 0.944},
    "breastmnist": {"accuracy": 0.863, "auc": 0.901},
}
REFERENCE = "MedMNIST v2, ResNet-18 (28)"
ARMS = ("baseline", "plain")
METRICS = ("accuracy", "auc", "sensitivity", "specificity")
#: the paper's figures an arm is judged against
JUDGED = ("accuracy", "auc")
N_BOOT = 2000
ARM_NAMES = {"baseline": "plain ResNet18 (`baseline`)", "plain": "ABN (`plain`)"}
#: a verdict from a figure without an interval: the results file predates intervals
#: the budget of each dataset the docs report (any other dataset: :data:`OTHER_BUDGET`)
BUDGET = {
    "pneumoniamnist": {"epochs": 10, "stem": "standard"},
    "breastmnist": {"epochs": 60, "stem": "small"},
}
OTHER_BUDGET = {"epochs": 10, "stem": "standard"}
BATCH_SIZE = 64
#: seeds of a published run
FULL_SEEDS = 3
#: the MLflow experiment of the ABN bundle's trainings
EXPERIMENT = "abn_classification"


# ---------------------------------------------------------------------------------------------- running


def _budget(args: argparse.Namespace, dataset: str) -> dict[str, Any]:
    """Epochs and stem of one dataset: its default budget with the command line's changes."""
    budget = dict(BUDGET.get(dataset, OTHER_BUDGET))
    if dataset in args.epochs:
        budget["epochs"] = args.epochs[dataset]
    if dataset in args.stem:
        budget["stem"] = args.stem[dataset]
    return budget


def run_dir(runs: Path, seed: int, dataset: str, arm: str) -> Path:
    """``<runs>/seed<k>/<dataset>/<arm>``: the folder of one training and its evaluation."""
    return runs / f"seed{seed}" / dataset / arm


def steps(args: argparse.Namespace) -> list[Step]:
    """Every training and test evaluation, seed by seed (an interrupted run leaves whole seeds)."""
    runs = args.runs.resolve()
    found = []
    for seed in args.seeds:
        for dataset in args.datasets:
            budget = _budget(args, dataset)
            train = [CONFIGS / "train.json", REPO / "configs" / "datasets" / f"{dataset}.json"]
            for arm in ARMS:
                out = run_dir(runs, seed, dataset, arm)
                overrides = {
                    "mode": arm,
                    "max_epochs": budget["epochs"],
                    "stem": budget["stem"],
                    "output_dir": str(out),
                    "batch_size": BATCH_SIZE,
                    "tracking_uri": f"sqlite:///{runs / 'mlruns.db'}",
                    "seed": seed,
                    **({"limit": args.limit} if args.limit else {}),
                }
                name = f"seed{seed}/{dataset}/{arm}"
                evaluation = bundle_run_argv([*train, CONFIGS / "evaluate.json"], overrides)
                found += [
                    Step(f"{name}/train", bundle_run_argv(train, overrides), out),
                    Step(f"{name}/evaluate_test", evaluation, out / "eval_test",
                         inputs=[out / "checkpoints" / "best.pt"]),
                ]  # fmt: skip
    return found


def run(args: argparse.Namespace) -> dict:
    """Train and evaluate every seed, dataset and arm (finished steps are skipped), then collect."""
    with StepRunner(args.runs.resolve(), "medmnist") as runner:
        for step in steps(args):
            runner.run(step)
    return collect(args.runs.resolve(), args.datasets, args.seeds)


def below_budget(args: argparse.Namespace) -> list[str]:
    """Why a ``run`` is below the budget the docs report: empty at the full budget."""
    short = [f"--datasets lacks {name}" for name in BUDGET if name not in args.datasets]
    if len(args.seeds) < FULL_SEEDS:
        short.append(f"seeds {len(args.seeds)} < {FULL_SEEDS}")
    for dataset in args.datasets:
        budget, default = _budget(args, dataset), BUDGET.get(dataset, OTHER_BUDGET)
        if budget["epochs"] < default["epochs"]:
            short.append(f"{dataset} epochs {budget['epochs']} < {default['epochs']}")
        if budget["stem"] != default["stem"]:
            short.append(f"{dataset} stem {budget['stem']}, not {default['stem']}")
    if args.limit:
        short.append(f"--limit {args.limit}")
    return short


# -------------------------------------------------------------------------------------------- collecting


def _logged_params(store: Path, uid: str) -> dict[str, str]:
    """The parameters of the MLflow run tagged with a run folder's ``uid``; a parameter a resumed run
    changed (tag ``changed.<param>``, ``"<old> -> <new>"``) at its new value; none without the store."""
    if not store.is_file():
        return {}
    import mlflow

    from monai_xai.handlers.mlflow_handler import UID_TAG

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{store.resolve()}")
    experiment = client.get_experiment_by_name(EXPERIMENT)
    if experiment is None:
        return {}
    found = client.search_runs(
        [experiment.experiment_id], filter_string=f"tags.`{UID_TAG}` = '{uid}'", max_results=1
    )
    if not found:
        return {}
    params = dict(found[0].data.params)
    for tag, value in found[0].data.tags.items():
        if tag.startswith("changed.") and " -> " in value:
            params[tag.removeprefix("changed.")] = value.split(" -> ", 1)[1]
    return params


def _read_run(run: Path, store: Path) -> dict[str, Any]:
    """One evaluated run: its test predictions, and the settings its run folder and MLflow run recorded."""
    files = [run / "run.json", run / "eval_test" / "metrics.json", run / "eval_test" / "predictions.csv"]
    for path in files:
        if not path.is_file():
            raise InputError(path, "missing: run `python -m monai_xai.experiments medmnist run` (it resumes)")
    record = json.loads(files[0].read_text())
    uid = record.get("uid")
    params = _logged_params(store, uid) if uid else {}
    missing = [name for name in ("max_epochs", "batch_size") if name not in params]
    if missing:
        raise InputError(store, f"no MLflow run of {run} with the parameters {', '.join(missing)}")
    with files[2].open() as f:
        rows = list(csv.DictReader(f))
    probs = [c for c in rows[0] if c.startswith("prob_")]
    if len(probs) != 2:
        raise InputError(files[2], f"{len(probs)} classes: this table is for binary datasets")
    identity = record["identity"]
    return {
        "labels": np.asarray([int(r["label"]) for r in rows]),
        "preds": np.asarray([int(r["pred"]) for r in rows]),
        "scores": np.asarray([float(r[probs[1]]) for r in rows]),
        "n_test": json.loads(files[1].read_text())["n_images"],
        "settings": {
            "epochs": int(params["max_epochs"]),
            "stem": identity["network"]["stem"],
            "batch_size": int(params["batch_size"]),
        },
        "seed": identity["data"]["seed"],
    }


def _pooled(metric, runs: list[tuple]) -> dict[str, Any]:
    """The pooled interval of one figure as a results entry, with each seed's estimate."""
    from monai_xai.metrics.uncertainty import pooled_bootstrap_ci

    interval = pooled_bootstrap_ci(metric, runs, n_boot=N_BOOT, stratify=0)
    # one seed has no between-run sd: None, not NaN, in the results file
    return finite({**interval.to_dict(), "run_estimates": [round(e, 6) for e in interval.run_estimates]})


def _seconds(wall: dict, dataset: str, arm: str, seeds: Sequence[int]) -> tuple[float | None, bool]:
    """Training and test time of one arm over its seeds from the runner's record (None where a step has
    none), and whether a step continued an attempt that was not timed."""
    found = [
        wall["steps"].get(f"seed{seed}/{dataset}/{arm}/{step}")
        for seed in seeds
        for step in ("train", "evaluate_test")
    ]
    if any(step is None for step in found):
        return None, False
    return round(sum(step["seconds"] for step in found), 1), any(step["resumed"] for step in found)


def arm_result(runs: Path, dataset: str, arm: str, seeds: Sequence[int], wall: dict) -> dict[str, Any]:
    """One arm's test figures pooled over its seeds, the settings they share and its wall time."""
    from monai_xai.metrics.uncertainty import accuracy, auc, sensitivity, specificity

    found = [_read_run(run_dir(runs, seed, dataset, arm), runs / "mlruns.db") for seed in seeds]
    for seed, one in zip(seeds, found):
        if one["seed"] != seed:
            raise InputError(
                run_dir(runs, seed, dataset, arm), f"trained with seed {one['seed']}, not {seed}"
            )
        if one["settings"] != found[0]["settings"] or one["n_test"] != found[0]["n_test"]:
            raise InputError(
                run_dir(runs, seed, dataset, arm),
                f"its settings {one['settings']} (test {one['n_test']}) differ from seed {seeds[0]}'s "
                f"{found[0]['settings']} (test {found[0]['n_test']}): not one recipe",
            )
    seconds, resumed = _seconds(wall, dataset, arm, seeds)
    figures = {
        "accuracy": _pooled(accuracy, [(r["labels"], r["preds"]) for r in found]),
        "auc": _pooled(auc, [(r["labels"], r["scores"]) for r in found]),
        "sensitivity": _pooled(sensitivity, [(r["labels"], r["preds"]) for r in found]),
        "specificity": _pooled(specificity, [(r["labels"], r["preds"]) for r in found]),
    }
    return {
        **figures,
        **found[0]["settings"],
        "seeds": list(seeds),
        "seconds": seconds,
        "seconds_resumed": resumed,
        "n_test": found[0]["n_test"],
    }


def _judged(figures: dict, paper: dict | None) -> dict[str, str]:
    """Per judged metric, whether the arm reaches the paper's figure (:func:`.results.verdict`)."""
    if not paper:
        return {}
    return {name: verdict(figures[name], paper[name]) for name in JUDGED}


def _seed_folders(runs: Path) -> list[int]:
    return sorted(int(p.name[4:]) for p in runs.glob("seed*") if p.is_dir() and p.name[4:].isdigit())


def collect(runs: Path, datasets: Sequence[str] | None = None, seeds: Sequence[int] | None = None) -> dict:
    """The results file of ``datasets`` over ``seeds`` (default: every ``seed<k>`` folder under ``runs``,
    and every dataset folder in the first of them with both arms)."""
    seeds = list(seeds) if seeds else _seed_folders(runs)
    if not seeds:
        raise InputError(runs, "no seed<k> folder: run `python -m monai_xai.experiments medmnist run`")
    if not datasets:
        first = runs / f"seed{seeds[0]}"
        found = first.iterdir() if first.is_dir() else []
        datasets = sorted(p.name for p in found if all((p / arm).is_dir() for arm in ARMS))
    if not datasets:
        raise InputError(runs / f"seed{seeds[0]}", f"no dataset folder with the arms {', '.join(ARMS)}")
    wall = wall_time(runs)
    report: dict[str, Any] = {
        "reference": REFERENCE,
        "intervals": f"pooled over {len(seeds)} seed(s): each of {N_BOOT} resamples draws one seed's run and "
        "resamples its test images within each class",
        "datasets": {},
    }
    for dataset in datasets:
        paper = PAPER_RESNET18_28.get(dataset)
        arms = {arm: arm_result(runs, dataset, arm, seeds, wall) for arm in ARMS}
        for figures in arms.values():
            figures["reaches_paper"] = _judged(figures, paper)
        report["datasets"][dataset] = {"paper": paper, "arms": arms}
    report["wall_time"] = wall
    return report


# --------------------------------------------------------------------------------------------- rendering


def _reaches(figures: dict, paper: dict, name: str) -> str:
    return verdict_cell(figures[name], paper[name])


def _budget_cell(figures: dict) -> str:
    cell = f"{figures['epochs']}, `{figures['stem']}`"
    return cell + (f", {len(figures['seeds'])}" if "seeds" in figures else "")


def _seconds_cell(figures: dict) -> str:
    """The arm's training and test time; "≥" where a step continued an attempt that was not timed."""
    if figures["seconds"] is None:
        return "–"
    return f"{'≥ ' if figures.get('seconds_resumed') else ''}{figures['seconds']:.0f} s"


def render(report: dict) -> str:
    """Test figures (with intervals) per dataset and arm with their budgets, the paper's row, and whether
    each arm reaches the paper's accuracy and AUC (met only where the interval clears it)."""
    seeded = any("seeds" in arm for entry in report["datasets"].values() for arm in entry["arms"].values())
    budget = "epochs, stem, seeds" if seeded else "epochs, stem"
    rows = [
        f"| dataset | arm | accuracy | AUC | sensitivity | specificity | {budget} | train + test |",
        "|---|---|---|---|---|---|---|---|",
    ]
    judged = []
    for dataset, entry in report["datasets"].items():
        paper = entry.get("paper")
        for arm, figures in entry["arms"].items():
            scores = " | ".join(fmt_ci(figures[name]) for name in METRICS)
            rows.append(
                f"| {dataset} ({figures['n_test']} test) | {ARM_NAMES.get(arm, arm)} | {scores} | "
                f"{_budget_cell(figures)} | {_seconds_cell(figures)} |"
            )
            if paper:
                verdicts = " | ".join(_reaches(figures, paper, name) for name in JUDGED)
                judged.append(f"| {dataset} | {ARM_NAMES.get(arm, arm)} | {verdicts} |")
        if paper:
            rows.append(
                f"| {dataset} | {report['reference']} | {fmt_ci(paper['accuracy'])} | {fmt_ci(paper['auc'])} "
                "| | | 100 | |"
            )
    if judged:
        how = report["intervals"] if seeded else "stratified bootstrap over the test images"
        rows += [
            "",
            "| reaches the paper's row | arm | accuracy | AUC |",
            "|---|---|---|---|",
            *judged,
            "",
            f"Met: the whole 95 % interval ({how}) lies above the paper's figure; missed: wholly below it.",
        ]
    return "\n".join(rows) + "\n"


BLOCKS: dict[str, Block] = {"medmnist": bundle_results("abn_classification", "medmnist", render)}


# ------------------------------------------------------------------------------------------ command line


def _per_dataset(kind: type):
    """An argparse type for ``DATASET=VALUE``."""

    def parse(text: str) -> tuple[str, Any]:
        name, sep, value = text.partition("=")
        if not sep or not name:
            raise argparse.ArgumentTypeError(f"{text!r}: give DATASET=VALUE, e.g. breastmnist=60")
        return name, kind(value)

    return parse


def main(argv: Sequence[str] | None = None) -> int:
    parser, commands = study_parser("medmnist", __doc__)
    run_parser = commands.add_parser(
        "run", help="train and evaluate every seed, dataset and arm (resumable), then collect"
    )
    run_parser.add_argument(
        "--runs", type=Path, default=REPO / "runs" / "experiments" / "medmnist", help="where the runs go"
    )
    run_parser.add_argument("--datasets", nargs="+", default=list(BUDGET))
    run_parser.add_argument("--seeds", type=int, nargs="+", default=list(range(FULL_SEEDS)))
    run_parser.add_argument(
        "--epochs", type=_per_dataset(int), nargs="+", default=[], help="DATASET=N: another epoch budget"
    )
    run_parser.add_argument(
        "--stem", type=_per_dataset(str), nargs="+", default=[], help="DATASET=NAME: another stem"
    )
    run_parser.add_argument("--limit", type=int, help="images per split (a smoke test; never published)")
    add_output_arguments(run_parser, published=PUBLISHED)
    collect_parser = commands.add_parser("collect", help="collect finished runs into the results file")
    collect_parser.add_argument("--runs", type=Path, required=True, help="the run folder (seed<k>/ folders)")
    collect_parser.add_argument("--datasets", nargs="*", help="default: every dataset folder of the runs")
    collect_parser.add_argument("--seeds", type=int, nargs="*", help="default: every seed<k> folder")
    add_output_arguments(collect_parser, published=PUBLISHED)
    args = parser.parse_args(argv)
    if args.seeds and len(set(args.seeds)) != len(args.seeds):
        parser.error(f"--seeds {args.seeds}: each seed once")
    path = output_path(args, PUBLISHED)  # before training: a missing --out fails at once
    if args.command == "run":
        args.epochs, args.stem = dict(args.epochs), dict(args.stem)
        short = below_budget(args)
        if args.publish and short:
            raise InputError(None, f"--publish needs the full budget: {', '.join(short)}")
        report = run(args)
    else:
        report = collect(args.runs, args.datasets, args.seeds)
    write_results(report, path, publish=args.publish)
    print(f"written {path}")
    return 0
