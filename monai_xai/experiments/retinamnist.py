"""RetinaMNIST diabetic-retinopathy grading beside the MedMNIST v2 paper's ResNet-18 (28), over seeds.

``run`` trains a plain ResNet18 (``baseline``), ResNet18 + ABN (``plain``, no map supervision) and the
multi-scale ABN on the official train split (5 grades, 28x28 RGB fundus, no masks), once per seed, keeps the
epoch with the best validation accuracy and evaluates on the 400 test images: one runner step per training
and per evaluation (:mod:`.runner`), ``<runs>/seed<k>/<arm>``. It then reads each arm's
``eval_test/predictions.csv`` of every seed (``collect`` does only that) into
``bundles/multiscale_abn_correction/docs/results/retinamnist.json``: quadratic weighted kappa, accuracy and
mean one-vs-rest AUC (of the probabilities as written), each pooled over the seeds with
:func:`~monai_xai.metrics.pooled_bootstrap_ci` (stratified by grade; its 95 % interval covers the seed-to-seed
and the test-sampling variance: what one run of the recipe achieves) with every seed's own figure, and the
paper's test ACC and AUC beside them. An arm "reaches" a figure of the paper only when its whole pooled
interval lies above it (:func:`~.results.verdict`). The ResNet stem and the seeds are read from each arm's
``run.json``; the training budget, which no run file records, comes from ``run``'s options (``collect``
takes it as options). An arm not evaluated yet is an error naming its folder.

Usage (``run`` resumes: an evaluated arm is skipped, a killed training resumes; one driver per folder at a
time; results go to ``--out`` or, at the default budget or above, >= 10 epochs, >= 3 seeds, the standard
stem and no extra bundle overrides, with ``--publish`` into the docs; then
``python -m monai_xai.experiments render``)::

    python -m monai_xai.experiments retinamnist run --publish
    python -m monai_xai.experiments retinamnist run [--epochs 10] [--batch_size 64] [--stem standard] \\
        [--seeds 0 1 2] [--runs runs/experiments/retinamnist-10ep] (--out retinamnist.json | --publish) \\
        [--key value ...]   # extra bundle overrides for every run
    # smoke test (results stay in the run folder):
    python -m monai_xai.experiments retinamnist run --epochs 1 --seeds 0 --runs /tmp/retina \\
        --out /tmp/retina/retinamnist.json --limit 16
    R=runs/experiments/retinamnist-10ep
    python -m monai_xai.experiments retinamnist collect --runs $R/seed0 $R/seed1 $R/seed2 \\
        --out retinamnist.json [--epochs 10 --batch_size 64]

``--stem monai`` (stride-1 7x7 stem) keeps four times the positions through the network at about four times
the cost. One seed of the three arms took about 4 min on the 2-core machine (64, 91 and 73 s).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from monai_xai.errors import InputError

from .busi_maps import ABN_CONFIGS, CONFIGS, read_predictions, train_eval_steps
from .results import (
    REPO,
    add_output_arguments,
    bundle_results,
    finite,
    fmt_ci,
    output_path,
    parse_study_args,
    study_parser,
    verdict,
    write_results,
)
from .runner import StepRunner, wall_time

__all__ = ["ARMS", "BLOCKS", "PAPER", "arm_scores", "collect", "main", "mean_ovr_auc", "render", "run"]

BUNDLE = "multiscale_abn_correction"
PUBLISHED = f"bundles/{BUNDLE}/docs/results/retinamnist.json"
#: arm (run folder below ``<runs>/seed<k>``) -> row label
ARMS = {
    "baseline": "ResNet18 (`baseline`)",
    "plain": "ResNet18 + ABN (`plain`)",
    "multiscale": "Multi-scale ABN (ResNet18)",
}
#: MedMNIST v2 (Yang et al., Scientific Data 2023), RetinaMNIST, ResNet-18 (28): test ACC and AUC.
PAPER = {"accuracy": 0.524, "auc": 0.717}
#: the paper's test set
PAPER_TEST_IMAGES = 400
#: bootstrap resamples of each interval (seed 0)
N_BOOT = 2000
#: the training budget, which no file of the run folders records: option -> type
BUDGET = {"epochs": int, "batch_size": int}
#: the default budget; below it (or with another stem, or extra overrides) ``--publish`` is refused
FULL_BUDGET = {"epochs": 10, "seeds": 3}
DRIVER = "python -m monai_xai.experiments retinamnist run"
DATASET = REPO / "configs" / "datasets" / "retinamnist.json"


def mean_ovr_auc(labels: np.ndarray, probs: np.ndarray) -> float:
    """Mean one-vs-rest AUC over the grades present in ``labels`` (the evaluation's macro AUC)."""
    from monai_xai.metrics.uncertainty import auc

    values = [auc(labels, probs, positive=c) for c in np.unique(labels)]
    return float(np.nanmean(values))


def _pooled(metric, runs: list[tuple]) -> dict:
    from monai_xai.metrics.uncertainty import pooled_bootstrap_ci

    interval = pooled_bootstrap_ci(metric, runs, n_boot=N_BOOT, stratify=0, seed=0)
    return finite({**interval.to_dict(), "run_estimates": list(interval.run_estimates)})


def arm_scores(eval_dirs: Sequence[Path]) -> dict:
    """Kappa, accuracy and AUC of one arm pooled over its seeds' evaluations (``{"mean", "ci95", "n",
    "n_runs", "between_run_sd", "run_estimates"}``), its test-image count and its verdict against each figure
    of the paper."""
    from monai_xai.metrics import quadratic_weighted_kappa
    from monai_xai.metrics.uncertainty import accuracy

    predictions = []
    for eval_dir in eval_dirs:
        found = read_predictions(eval_dir)
        if found is None:
            raise InputError(eval_dir, f"no test evaluation (predictions.csv): run {DRIVER}")
        predictions.append(found)
    grades = predictions[0].probs.shape[1]

    def kappa(labels: np.ndarray, preds: np.ndarray) -> float:
        return quadratic_weighted_kappa(labels, preds, num_classes=grades)

    decided = [(p.labels, p.preds) for p in predictions]
    scores: dict = {
        "kappa": _pooled(kappa, decided),
        "accuracy": _pooled(accuracy, decided),
        "auc": _pooled(mean_ovr_auc, [(p.labels, p.probs) for p in predictions]),
        "n": max(int(p.labels.size) for p in predictions),
    }
    scores["paper_verdicts"] = {name: verdict(scores[name], target) for name, target in PAPER.items()}
    scores["reaches_paper"] = all(v == "met" for v in scores["paper_verdicts"].values())
    return scores


def _identity(run_dir: Path) -> dict:
    path = run_dir / "run.json"
    return json.loads(path.read_text()).get("identity", {}) if path.is_file() else {}


def collect(roots: Sequence[Path], given: Mapping[str, Any] | None = None) -> dict:
    """The results file of the arms over the run folders (one per seed, each holding the arms)."""
    arms = {
        name: {"label": label, **arm_scores([Path(root) / name / "eval_test" for root in roots])}
        for name, label in ARMS.items()
    }
    identities = [(Path(root), [_identity(Path(root) / name) for name in ARMS]) for root in roots]
    settings = dict(given or {})
    stems = {i.get("network", {}).get("stem") for _, found in identities for i in found} - {None}
    if stems:
        settings["stem"] = ", ".join(sorted(stems))
    seeds = []
    for root, found in identities:
        recorded = {i["data"]["seed"] for i in found if "seed" in i.get("data", {})}
        if len(recorded) > 1:
            raise InputError(root, f"its arms were trained with seeds {sorted(recorded)}: one seed a folder")
        seeds += recorded
    if len(set(seeds)) != len(seeds):
        raise InputError(None, f"the run folders hold seeds {seeds}: each folder must be another seed")
    return {"arms": arms, "paper": PAPER, "runs": len(roots), "seeds": sorted(seeds), "settings": settings}


# ---------------------------------------------------------------------------------------------- runner


def run(args: argparse.Namespace, extra: Mapping[str, Any]) -> dict:
    """Train and test every arm x seed (resumable: finished steps are skipped), then collect."""
    single = [ABN_CONFIGS / "train.json", DATASET]
    multi = [ABN_CONFIGS / "train.json", CONFIGS / "train.json", DATASET]
    #: arm -> (train configs, extra evaluation configs, its own overrides)
    recipes = {
        "baseline": (single, [], {"mode": "baseline"}),
        "plain": (single, [], {"mode": "plain"}),
        "multiscale": (multi, [CONFIGS / "evaluate.json"], {}),
    }
    runs = _runs(args)
    roots = [runs / f"seed{seed}" for seed in args.seeds]
    with StepRunner(runs, "retinamnist") as runner:
        for seed, root in zip(args.seeds, roots):  # seed-major: an interrupted run leaves whole seeds
            for arm, (configs, eval_configs, own) in recipes.items():
                overrides = {"output_dir": root / arm, **own, "max_epochs": args.epochs}
                overrides |= {"batch_size": args.batch_size, "stem": args.stem, "seed": seed, **extra}
                name = f"{root.name}/{arm}"
                for step in train_eval_steps(name, root / arm, configs, eval_configs, overrides):
                    runner.run(step)
    report = collect(roots, {"epochs": args.epochs, "batch_size": args.batch_size})
    report["wall_time"] = wall_time(runs)
    return report


def _runs(args: argparse.Namespace) -> Path:
    runs = args.runs or REPO / "runs" / "experiments" / f"retinamnist-{args.epochs}ep"
    return runs.resolve()


def _below_budget(args: argparse.Namespace, extra: Mapping[str, Any]) -> list[str]:
    short = []
    if args.epochs < FULL_BUDGET["epochs"]:
        short.append(f"epochs {args.epochs} < {FULL_BUDGET['epochs']}")
    if len(args.seeds) < FULL_BUDGET["seeds"]:
        short.append(f"seeds {len(args.seeds)} < {FULL_BUDGET['seeds']}")
    if args.stem != "standard":
        short.append(f"stem {args.stem}")
    if extra:
        short.append(f"bundle overrides {dict(extra)}")
    return short


def main(argv: Sequence[str] | None = None) -> int:
    parser, commands = study_parser("retinamnist", __doc__)
    run_parser = commands.add_parser(
        "run",
        help="train and test every arm x seed (resumable), then collect; extra --key value pairs override "
        "config ids of every bundle run",
    )
    run_parser.add_argument("--runs", type=Path, help="default runs/experiments/retinamnist-<epochs>ep")
    run_parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    run_parser.add_argument("--epochs", type=int, default=FULL_BUDGET["epochs"])
    run_parser.add_argument("--batch_size", type=int, default=64)
    run_parser.add_argument("--stem", default="standard", help="ResNet stem (monai: stride-1 7x7)")
    collect_parser = commands.add_parser("collect", help="collect finished runs into the results file")
    collect_parser.add_argument(
        "--runs", type=Path, nargs="+", required=True, help="a folder of arms per seed (<runs>/seed<k>)"
    )
    for name, kind in BUDGET.items():
        collect_parser.add_argument(f"--{name}", type=kind, help="training budget, recorded under settings")
    for sub in (run_parser, collect_parser):
        add_output_arguments(sub, published=PUBLISHED)
    args, extra = parse_study_args(parser, argv)
    destination = output_path(args, PUBLISHED)
    if args.command == "run":
        short = _below_budget(args, extra)
        if args.publish and short:
            raise InputError(None, f"--publish needs the default budget: {', '.join(short)}")
        report = run(args, extra)
    else:
        given = {name: getattr(args, name) for name in BUDGET if getattr(args, name) is not None}
        report = collect(args.runs, given)
    write_results(report, destination, publish=args.publish)
    for name, scores in report["arms"].items():
        print(
            f"{name}: kappa {fmt_ci(scores['kappa'])}, accuracy {fmt_ci(scores['accuracy'])}, "
            f"AUC {fmt_ci(scores['auc'])}; against the paper: {scores['paper_verdicts']}"
        )
    print(f"written {destination}")
    return 0


# -------------------------------------------------------------------------------------------- renderer


def _against_paper(arm: Mapping, paper: Mapping) -> str:
    """Each figure's verdict against the paper's: "met" only where the arm's interval clears it."""
    verdicts = [verdict(arm[name], target) for name, target in paper.items()]
    if all(v == "no interval" for v in verdicts):
        return "no interval (re-run pending)"
    return ", ".join(v if v == "met" else f"**{v}**" for v in verdicts)


def _wall_time(wall: list | Mapping) -> str:
    """The wall time as a results file records it: lines of a driver's (files before the runner), or the
    runner's steps."""
    if isinstance(wall, list):
        return "; ".join(wall)
    text = f"{wall['seconds'] / 60:.0f} min over {len(wall['steps'])} steps (training and test evaluation)"
    return text + (", without the time of interrupted attempts it continued" if wall.get("resumed") else "")


def render(report: dict) -> str:
    """Kappa, accuracy and AUC per arm with their 95 % intervals (pooled over the seeds) beside the MedMNIST
    v2 paper's ResNet-18 (28), and whether each arm's interval clears the paper's accuracy and AUC."""
    paper = report["paper"]
    rows = [
        "| model | quadratic weighted kappa | accuracy | AUC | test images | against the paper's ACC, AUC |",
        "|---|---|---|---|---|---|",
    ]
    for arm in report["arms"].values():
        figures = " | ".join(fmt_ci(arm[name]) for name in ("kappa", "accuracy", "auc"))
        rows.append(f"| {arm['label']} | {figures} | {arm['n']} | {_against_paper(arm, paper)} |")
    rows.append(
        f"| MedMNIST v2 paper, ResNet-18 (28) | not reported | {fmt_ci(paper['accuracy'])} | "
        f"{fmt_ci(paper['auc'])} | {PAPER_TEST_IMAGES} | |"
    )
    with_intervals = any(isinstance(arm["accuracy"], Mapping) and "ci95" in arm["accuracy"]
                         for arm in report["arms"].values())  # fmt: skip
    if not with_intervals:
        note = (
            "No intervals: this results file predates them, so no arm is judged against the paper "
            "(re-run pending)."
        )
    elif "runs" in report:
        seeds = ", ".join(map(str, report["seeds"])) or "not recorded"
        note = (
            f"Brackets: 95 % intervals pooled over {report['runs']} training run(s) (seeds {seeds}; "
            "`pooled_bootstrap_ci`, stratified by grade: seed-to-seed and test-image variance, what one run "
            "of the recipe achieves); an arm meets a figure of the paper only when its whole interval lies "
            "above it."
        )
    else:
        note = (
            "Brackets: stratified (by grade) bootstrap 95 % intervals over the test images; an arm meets a "
            "figure of the paper only when its whole interval lies above it."
        )
    rows += ["", note]
    settings = report.get("settings", {})
    if settings:
        rows += ["", "Settings: " + ", ".join(f"{k} {v}" for k, v in settings.items()) + "."]
    if report.get("wall_time"):
        rows += ["", f"Wall time: {_wall_time(report['wall_time'])}."]
    return "\n".join(rows) + "\n"


BLOCKS = {"retinamnist": bundle_results(BUNDLE, "retinamnist", render)}
