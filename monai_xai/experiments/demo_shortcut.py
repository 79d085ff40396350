"""The built-in demo's shortcut test: does each arm learn the planted corner marker, and does its own
explanation show it? Every arm of ``scripts/quickstart.py``, including the study's ABN design
(g(x) * (1 + M(x)) after layer3), at the same budget.

``run`` makes the phantoms when ``--data`` has none (``scripts/make_demo_data.py``: 800/200/400, seed 0),
then runs the quickstart (it trains, evaluates and explains the arms) as one runner step (:mod:`.runner`)
into ``<runs>/quickstart/``, then collects; ``collect`` only reads a quickstart's output folder. The results
file (with ``--publish``: ``bundles/abn_classification/docs/results/demo_shortcut.json``, and the quickstart's
``explanations.png`` copied to the docs' ``figures/demo_explanations.png``; else ``--out``) holds the
quickstart's summary with each arm's test accuracy, test AUC, map pointing game and map energy on the marker
as figures with stratified (by label) bootstrap 95 % intervals over the shortcut-free test images (marker
energy: over the images that carry the marker), read from ``<quickstart>/summary.json`` and per arm
``eval_test/predictions.csv`` and ``map_scores.csv``; ``run`` adds the wall time of its steps
(:func:`~.runner.wall_time`).

Usage (one driver per run folder at a time; rerun the same command after an interruption: a finished step
is skipped, the quickstart resumes each arm's training from its checkpoint; ``--publish`` only at the full
budget: the default phantoms, 12 epochs, every arm, no other option; then
``python -m monai_xai.experiments render``)::

    python -m monai_xai.experiments demo_shortcut run --publish && python -m monai_xai.experiments render
    python -m monai_xai.experiments demo_shortcut run [--epochs 12] [--arms baseline rrr ...] \\
        [--data demo_data/phantom2d] [--n_train 800 --n_val 200 --n_test 400] \\
        [--batch_size N] [--rrr_lambda L] [--runs runs/experiments/demo_shortcut] \\
        (--out demo.json | --publish)
    # smoke test (a few minutes): 48/16/32 phantoms, one epoch, two arms
    python -m monai_xai.experiments demo_shortcut run --data runs/smoke/demo_shortcut/data --n_train 48 \\
        --n_val 16 --n_test 32 --epochs 1 --arms baseline abn_study --runs runs/smoke/demo_shortcut \\
        --out runs/smoke/demo_shortcut.json
    # the results of a quickstart run elsewhere (its --out folder), or of a run folder
    python -m monai_xai.experiments demo_shortcut collect --runs runs/quickstart --out demo.json

Runtime on the 2-core machine: the 6 arms x 12 epochs took 793 to 881 s.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import sys
from collections.abc import Callable, Sequence
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
    study_parser,
    write_results,
)
from .runner import RUNTIME_FILE, Step, StepRunner, wall_time

__all__ = [
    "ARMS",
    "BLOCKS",
    "FIGURE",
    "FULL_BUDGET",
    "PUBLISHED",
    "collect",
    "main",
    "render",
    "run",
    "steps",
]

PUBLISHED = "bundles/abn_classification/docs/results/demo_shortcut.json"
#: the quickstart's figure, as the ABN docs show it
FIGURE = "bundles/abn_classification/docs/figures/demo_explanations.png"
N_BOOT = 2000
#: the per-arm figures of the table, in column order
FIGURES = ("test_accuracy", "test_auc", "map_pointing_game", "marker_energy")
#: the quickstart's arms, in the order it trains them
ARMS = ("baseline", "rrr", "rrr_strong", "abn", "abn_study", "abn_study_long")
#: the phantoms of the published run, relative to the repository (made when missing)
DATA = Path("demo_data/phantom2d")
#: the budget of the published run; below it (or with other data or options) ``--publish`` is refused
FULL_BUDGET = {"epochs": 12, "n_train": 800, "n_val": 200, "n_test": 400}
#: the quickstart's output folder under the run folder
QUICKSTART = "quickstart"


def _rows(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        raise InputError(path, "missing: run scripts/quickstart.py (this version writes it) for this arm")
    with path.open() as f:
        return list(csv.DictReader(f))


def _interval(metric: Callable[..., float], *arrays: np.ndarray, stratify: np.ndarray) -> dict[str, Any]:
    from monai_xai.metrics.uncertainty import bootstrap_ci

    return bootstrap_ci(metric, *arrays, n_boot=N_BOOT, stratify=stratify).to_dict()


def _decision_intervals(arm_dir: Path) -> dict[str, dict]:
    """Test accuracy and AUC of one arm with their intervals, from its evaluation's ``predictions.csv``."""
    from monai_xai.metrics.uncertainty import accuracy, auc

    rows = _rows(arm_dir / "eval_test" / "predictions.csv")
    labels = np.asarray([int(r["label"]) for r in rows])
    preds = np.asarray([int(r["pred"]) for r in rows])
    positive = [c for c in rows[0] if c.startswith("prob_")][1]
    scores = np.asarray([float(r[positive]) for r in rows])
    return {
        "test_accuracy": _interval(accuracy, labels, preds, stratify=labels),
        "test_auc": _interval(auc, labels, scores, stratify=labels),
    }


def _map_intervals(arm_dir: Path) -> dict[str, dict[str, dict]]:
    """Per explanation method: pointing game over every test image, marker energy over the marked ones."""
    from monai_xai.metrics.uncertainty import mean_of

    by_method: dict[str, list[dict[str, str]]] = {}
    for row in _rows(arm_dir / "map_scores.csv"):
        by_method.setdefault(row["method"], []).append(row)
    found = {}
    for method, rows in by_method.items():
        labels = np.asarray([int(r["label"]) for r in rows])
        hits = np.asarray([float(r["pointing_game"]) for r in rows])
        marked = np.asarray([r["marker"] == "1" for r in rows])
        energy = np.asarray([float(r["marker_energy"] or "nan") for r in rows])
        found[method] = {
            "map_pointing_game": _interval(mean_of, hits, stratify=labels),
            # no test image with the marker (a tiny test set): no figure rather than a made-up one
            "marker_energy": _interval(mean_of, energy[marked], stratify=labels[marked])
            if marked.any()
            else {"mean": None, "ci95": None, "n": 0},
        }
    return found


def quickstart_dir(runs: Path) -> Path:
    """The quickstart's output folder: ``runs`` itself when it holds a ``summary.json``, else the one
    ``run`` writes, ``<runs>/quickstart``."""
    return runs if (runs / "summary.json").is_file() else runs / QUICKSTART


def collect(runs: Path) -> dict:
    """The quickstart's summary with every arm's figures as intervals over the test images; with the wall
    time of the steps where ``runs`` is a run folder of ``run``."""
    root, runs = runs, quickstart_dir(runs)
    summary_file = runs / "summary.json"
    if not summary_file.is_file():
        raise InputError(
            summary_file,
            "missing: run `python -m monai_xai.experiments demo_shortcut run` (or scripts/quickstart.py)",
        )
    report = json.loads(summary_file.read_text())
    for name, arm in report["arms"].items():
        maps = _map_intervals(runs / name)
        if arm["explanation"] not in maps:
            raise InputError(
                runs / name / "map_scores.csv", f"no scores of the arm's map {arm['explanation']}"
            )
        arm.update(_decision_intervals(runs / name))
        arm.update(maps[arm["explanation"]])
        for method in arm.get("other_maps", {}):
            arm["other_maps"][method] = maps[method]
    report["intervals"] = (
        f"stratified (by label) bootstrap, 95 %, {N_BOOT} resamples of the test images; marker energy over "
        "the images that carry the marker"
    )
    if (root / RUNTIME_FILE).is_file():
        report["wall_time"] = wall_time(root)
    return report


def _took(report: dict) -> str:
    """The run's wall time: the runner's record (a lower bound where a step continued an untimed attempt),
    else the quickstart's own (results files before ``run``)."""
    wall = report.get("wall_time")
    if wall is None:
        return f"{report['elapsed_s']:.0f} s"
    return f"{'at least ' if wall['resumed'] else ''}{wall['seconds']:.0f} s"


def render(report: dict) -> str:
    """The demo's arms on the shortcut-free test set: accuracy, AUC and where each arm's own map points."""
    rows = [
        "| arm | what it is | test accuracy | test AUC | map pointing game | map energy on the marker "
        "| map |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, arm in report["arms"].items():
        cells = " | ".join(fmt_ci(arm[key]) for key in FIGURES)
        description = arm["description"].replace("|", "\\|")
        rows.append(f"| `{name}` | {description} | {cells} | {arm['explanation']} |")
        for method, other in arm.get("other_maps", {}).items():
            cells = f"{fmt_ci(other['map_pointing_game'])} | {fmt_ci(other['marker_energy'])}"
            rows.append(f"| `{name}` | the same network | | | {cells} | {method} |")
    intervals = f" Brackets: {report['intervals']}." if "intervals" in report else ""
    rows += [
        "",
        f"{report['epochs']} epochs per arm, {report['torch_threads']} threads; the whole run took "
        f"{_took(report)}. Marker energy: share of the map's energy in the marker's corner, "
        "over the test images that carry the marker (a map spread evenly: "
        f"{fmt(report['marker_area_share'], 4)}).{intervals}",
    ]
    return "\n".join(rows) + "\n"


BLOCKS: dict[str, Block] = {"demo_shortcut": bundle_results("abn_classification", "demo_shortcut", render)}


def _publish_figure(runs: Path) -> None:
    """Copy the quickstart's figure into the docs, atomically (the README shows it beside the table)."""
    source, target = quickstart_dir(runs) / "explanations.png", REPO / FIGURE
    if not source.is_file():
        raise InputError(source, "missing: the quickstart writes it with summary.json")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp")
    shutil.copyfile(source, tmp)
    os.replace(tmp, target)


def _in_repo(path: Path) -> Path:
    """``path`` relative to the repository when it lies there (the steps run from it, and the summary
    records the data folder as given), else absolute."""
    path = path.resolve()
    return path.relative_to(REPO) if path.is_relative_to(REPO) else path


def steps(args: argparse.Namespace) -> list[Step]:
    """The phantoms (only where ``--data`` has none), then the quickstart over every arm."""
    data, runs = _in_repo(args.data), _in_repo(args.runs)
    found = []
    if not (REPO / data / "labels.csv").is_file():
        make = [
            sys.executable,
            "scripts/make_demo_data.py",
            "--out",
            str(data),
            "--n-train",
            str(args.n_train),
        ]
        make += ["--n-val", str(args.n_val), "--n-test", str(args.n_test)]
        found.append(Step("data", make, data))
    quickstart = [
        sys.executable,
        "scripts/quickstart.py",
        "--data",
        str(data),
        "--out",
        str(runs / QUICKSTART),
    ]
    quickstart += ["--epochs", str(args.epochs), "--arms", ",".join(args.arms)]
    if args.batch_size is not None:
        quickstart += ["--batch-size", str(args.batch_size)]
    if args.rrr_lambda is not None:
        quickstart += ["--rrr-lambda", str(args.rrr_lambda)]
    found.append(Step(QUICKSTART, quickstart, runs / QUICKSTART, inputs=[data / "labels.csv"]))
    return found


def run(args: argparse.Namespace) -> dict:
    """Make the phantoms where missing and run the quickstart (a finished step is skipped), then collect."""
    with StepRunner(_in_repo(args.runs), "demo_shortcut") as runner:
        for step in steps(args):
            runner.run(step)
    return collect(REPO / _in_repo(args.runs))


def below_budget(args: argparse.Namespace) -> list[str]:
    """Why a ``run`` is not the published one (data, epochs, arms; no other option): empty when it is."""
    short = [
        f"{key} {getattr(args, key)} < {low}" for key, low in FULL_BUDGET.items() if getattr(args, key) < low
    ]
    if args.data.resolve() != (REPO / DATA).resolve():
        short.append(f"data {args.data}, not {DATA}")
    missing = [arm for arm in ARMS if arm not in args.arms]
    if missing:
        short.append(f"--arms lacks {', '.join(missing)}")
    short += [f"--{key} {getattr(args, key)}" for key in ("batch_size", "rrr_lambda") if getattr(args, key)]
    return short


def main(argv: Sequence[str] | None = None) -> int:
    parser, commands = study_parser("demo_shortcut", __doc__)
    run_parser = commands.add_parser(
        "run", help="make the phantoms, run the quickstart over every arm (resumable), then collect"
    )
    run_parser.add_argument("--data", type=Path, default=REPO / DATA, help="the phantoms (made when missing)")
    run_parser.add_argument("--n_train", type=int, default=800, help="training phantoms, when made")
    run_parser.add_argument("--n_val", type=int, default=200, help="validation phantoms, when made")
    run_parser.add_argument("--n_test", type=int, default=400, help="test phantoms, when made")
    run_parser.add_argument(
        "--runs", type=Path, default=REPO / "runs" / "experiments" / "demo_shortcut", help="the run folder"
    )
    run_parser.add_argument("--epochs", type=int, default=FULL_BUDGET["epochs"], help="epochs per arm")
    run_parser.add_argument("--arms", nargs="+", choices=ARMS, default=list(ARMS))
    run_parser.add_argument("--batch_size", type=int, help="training batch (the bundle's default if unset)")
    run_parser.add_argument(
        "--rrr_lambda", type=float, help="RRR penalty weight (the bundle's default if unset)"
    )
    add_output_arguments(run_parser, published=PUBLISHED)
    collect_parser = commands.add_parser(
        "collect", help="collect a quickstart's output into the results file"
    )
    collect_parser.add_argument(
        "--runs", type=Path, required=True, help="the quickstart's --out folder, or a run folder of run"
    )
    add_output_arguments(collect_parser, published=PUBLISHED)
    args = parser.parse_args(argv)
    path = output_path(args, PUBLISHED)  # before training: a missing --out fails at once
    if args.command == "run":
        short = below_budget(args)
        if args.publish and short:
            raise InputError(None, f"--publish needs the full budget: {', '.join(short)}")
        report = run(args)
    else:
        report = collect(args.runs)
    write_results(report, path, publish=args.publish)
    if args.publish:
        _publish_figure(args.runs)
    print(f"written {path}")
    return 0
