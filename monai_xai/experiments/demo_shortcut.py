"""The built-in demo's shortcut test: does each arm learn the planted corner marker, and does its own
explanation show it? Every arm of ``scripts/quickstart.py``, including the study's ABN design
(g(x) * (1 + M(x)) after layer3), at the same budget, over three training seeds.

``run`` makes the phantoms when ``--data`` has none (``scripts/make_demo_data.py``: 800/200/400, seed 0),
then runs the quickstart (it trains, evaluates and explains the arms) once per ``--seeds`` seed, each one
runner step (:mod:`.runner`) into ``<runs>/seed<k>/quickstart/``, then collects; ``collect`` only reads the
quickstarts' output folders (or one quickstart's ``--out`` folder). The results file (with ``--publish``:
``bundles/abn_classification/docs/results/demo_shortcut.json``, and seed 0's ``explanations.png`` copied to
the docs' ``figures/demo_explanations.png``; else ``--out``) holds per arm the test accuracy, worst-group
and per-group accuracy (class x marker agrees / disagrees), test AUC, map pointing game and map energy on
the marker, pooled over the seeds with :func:`~monai_xai.metrics.pooled_bootstrap_ci` (the same test
phantoms in every seed; stratified by group; marker energy over the images that carry the marker), read
from each ``summary.json`` and per arm ``eval_test/predictions.csv`` and ``map_scores.csv``
(:mod:`.shortcut`); the paired differences of the gated ABN against the baseline and RRR; the demo's claims
(:data:`TARGETS`, the quickstart's verdict) judged on the pooled intervals; and ``run``'s wall time
(:func:`~.runner.wall_time`).

Usage (one driver per run folder at a time; rerun the same command after an interruption: a finished step
is skipped, the quickstart resumes each arm's training from its checkpoint; ``--publish`` only at the full
budget: the default phantoms, 12 epochs, every arm, seeds 0, 1 and 2, no other option; then
``python -m monai_xai.experiments render``)::

    python -m monai_xai.experiments demo_shortcut run --publish && python -m monai_xai.experiments render
    python -m monai_xai.experiments demo_shortcut run [--epochs 12] [--arms baseline rrr ...] \\
        [--data demo_data/phantom2d] [--data_seed 0] [--n_train 800 --n_val 200 --n_test 400] \\
        [--seeds 0 1 2] [--batch_size N] [--rrr_lambda L] [--runs runs/experiments/demo_shortcut] \\
        (--out demo.json | --publish)
    # smoke test (a few minutes): 48/16/32 phantoms, one epoch, two arms
    python -m monai_xai.experiments demo_shortcut run --data runs/smoke/demo_shortcut/data --n_train 48 \\
        --n_val 16 --n_test 32 --epochs 1 --arms baseline abn_study --seeds 0 \\
        --runs runs/smoke/demo_shortcut --out runs/smoke/demo_shortcut.json
    # the results of a quickstart run elsewhere (its --out folder), or of a run folder
    python -m monai_xai.experiments demo_shortcut collect --runs runs/quickstart --out demo.json

Runtime on a 2-core machine: the 6 arms x 12 epochs took 793 to 881 s per seed with native bfloat16, and
2,185 s in float32 (AVX2 only): three seeds about 40 min and 1 h 50 min.
"""

from __future__ import annotations

import argparse
import csv
import sys
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
    fmt,
    fmt_ci,
    output_path,
    read_json,
    study_parser,
    verdict,
    write_results,
)
from .runner import RUNTIME_FILE, Step, StepRunner, wall_time
from .shortcut import TestRun, arm_figures, mean_marked, paired_figures, pooled_figure

__all__ = [
    "ARMS",
    "BLOCKS",
    "FIGURE",
    "FULL_BUDGET",
    "PUBLISHED",
    "SEEDS",
    "TARGETS",
    "collect",
    "main",
    "quickstart_dirs",
    "read_arm",
    "render",
    "run",
    "steps",
]

PUBLISHED = "bundles/abn_classification/docs/results/demo_shortcut.json"
#: the quickstart's figure (seed 0's), as the ABN docs show it
FIGURE = "bundles/abn_classification/docs/figures/demo_explanations.png"
N_BOOT = 2000
#: the per-arm figures of the table, in column order
FIGURES = ("test_accuracy", "worst_group_accuracy", "test_auc", "map_pointing_game", "marker_energy")
#: the arms of the published run, in the order the quickstart trains them
ARMS = ("baseline", "rrr", "rrr_strong", "abn", "abn_study", "abn_study_long")
#: arms a development replicate may run besides: the gated ABN with its gate closed below M(x)'s midrange
DEVELOPMENT_ARMS = ("abn_midrange",)
#: The gate's development replicate, declared before it ran: other phantoms (``--data_seed 10``, 800/200/400,
#: the full budget), training seeds 0 to 3, the soft gate (``abn``) against the midrange gate. Its results
#: go to :data:`DEVELOPMENT_PUBLISHED` and decide the quickstart's gate by :data:`GATE_RULE`; the demo's own
#: test phantoms are run again only if the rule changes the gate (it kept the soft gate).
DEVELOPMENT = {"data_seed": 10, "arms": ("abn", "abn_midrange"), "seeds": (0, 1, 2, 3)}
DEVELOPMENT_PUBLISHED = "bundles/abn_classification/docs/results/demo_gate_development.json"
#: the midrange gate is taken when its worst-group accuracy reaches ``worst_group_every_seed`` in every seed
#: and its pooled test AUC is at most ``auc_margin`` below the soft gate's; else the soft gate stays
GATE_RULE = {"worst_group_every_seed": 0.70, "auc_margin": 0.02}
#: training seeds of the published run: replicates on the same phantoms
SEEDS = (0, 1, 2)
#: the phantoms of the published run, relative to the repository (made when missing)
DATA = Path("demo_data/phantom2d")
#: the budget of the published run; below it (or with other data or options) ``--publish`` is refused
FULL_BUDGET = {"epochs": 12, "n_train": 800, "n_val": 200, "n_test": 400, "seeds": len(SEEDS)}
#: the quickstart's output folder under each seed's folder of the run folder
QUICKSTART = "quickstart"
#: the demo's claims, judged on the figures pooled over the seeds (the quickstart's verdict, with intervals)
TARGETS = (
    {"arm": "abn", "figure": "test_accuracy", "target": 0.90, "higher_is_better": True},
    {"arm": "baseline", "figure": "test_accuracy", "target": 0.65, "higher_is_better": False},
)
#: paired comparisons, arm minus reference, image by image within each seed
COMPARISONS = (("abn", "baseline"), ("abn", "rrr"), ("abn_midrange", "abn"))


def _rows(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        raise InputError(path, "missing: run scripts/quickstart.py (this version writes it) for this arm")
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def _name(source: str) -> str:
    return Path(source).name


def read_arm(arm_dir: Path, explanation: str, seed: int) -> tuple[TestRun, dict[str, TestRun]]:
    """One arm of one quickstart as a :class:`~.shortcut.TestRun` judged by its own map ``explanation``,
    and one per other map it was explained with (the same decisions, that map's scores)."""
    predictions = _rows(arm_dir / "eval_test" / "predictions.csv")
    predictions.sort(key=lambda r: _name(r["source"]))  # in the order of the image names, as the maps
    keys = tuple(_name(r["source"]) for r in predictions)
    positive = [c for c in predictions[0] if c.startswith("prob_")][1]
    by_method: dict[str, dict[str, dict[str, str]]] = {}
    for row in _rows(arm_dir / "map_scores.csv"):
        if "marker_agrees" not in row:
            raise InputError(arm_dir / "map_scores.csv", "no marker_agrees column: rerun this quickstart")
        by_method.setdefault(row["method"], {})[_name(row["source"])] = row
    if explanation not in by_method:
        raise InputError(arm_dir / "map_scores.csv", f"no scores of the arm's map {explanation}")
    runs = {}
    for method, rows in by_method.items():
        missing = [k for k in keys if k not in rows]
        if missing:
            raise InputError(arm_dir / "map_scores.csv", f"{method}: no row of {len(missing)} test images")
        ordered = [rows[k] for k in keys]
        runs[method] = TestRun(
            seed=seed,
            keys=keys,
            labels=np.array([int(r["label"]) for r in predictions]),
            scores=np.array([float(r[positive]) for r in predictions]),
            preds=np.array([int(r["pred"]) for r in predictions]),
            agrees=np.array([r["marker_agrees"] == "1" for r in ordered]),
            marked=np.array([r["marker"] == "1" for r in ordered]),
            energy=np.array([float(r["marker_energy"] or "nan") for r in ordered]),
            pointing=np.array([float(r["pointing_game"]) for r in ordered]),
        )
    own = runs.pop(explanation)
    return own, runs


def quickstart_dirs(runs: Path) -> list[Path]:
    """The quickstart output folders to collect: ``runs`` itself when it holds a ``summary.json`` (one
    quickstart run elsewhere), else each ``<runs>/seed<k>/quickstart`` that ``run`` writes."""
    if (runs / "summary.json").is_file():
        return [runs]
    found = sorted(runs.glob(f"seed*/{QUICKSTART}/summary.json"), key=lambda p: int(p.parts[-3][4:]))
    if not found:
        raise InputError(
            runs,
            "no quickstart here (summary.json, or seed<k>/quickstart/summary.json): run "
            "`python -m monai_xai.experiments demo_shortcut run` (or scripts/quickstart.py)",
        )
    return [p.parent for p in found]


def _same(summaries: Sequence[dict], where: Path) -> dict:
    first = summaries[0]
    for other in summaries[1:]:
        for key in ("epochs", "data", "marker_area_share"):
            if other.get(key) != first.get(key):
                raise InputError(
                    where, f"the seeds differ in {key}: {first.get(key)!r} vs {other.get(key)!r}"
                )
        if list(other["arms"]) != list(first["arms"]):
            raise InputError(
                where, f"the seeds ran other arms: {list(first['arms'])} vs {list(other['arms'])}"
            )
    return first


def _arm_report(arm: dict, own: list[TestRun], others: dict[str, list[TestRun]], classes: list[str]) -> dict:
    from monai_xai.metrics.uncertainty import mean_of

    figures = arm_figures(own, classes, N_BOOT)
    groups = [r.groups for r in own]
    found = {
        "description": arm["description"],
        "explanation": arm["explanation"],
        "test_accuracy": figures.pop("accuracy"),
        "test_auc": figures.pop("auc"),
        **figures,
    }
    if others:
        found["other_maps"] = {
            method: {
                "map_pointing_game": pooled_figure(mean_of, [(r.pointing,) for r in runs], groups, N_BOOT),
                "marker_energy": pooled_figure(
                    mean_marked, [(r.energy, r.marked) for r in runs], None, N_BOOT
                ),
            }
            for method, runs in others.items()
        }
    return found


def collect(runs: Path) -> dict:
    """Every arm's figures pooled over the seeds' quickstarts, with intervals over the test images, the
    paired comparisons and the demo's claims judged on them; the wall time of the steps where ``runs`` is a
    run folder of ``run``."""
    root = runs
    folders = quickstart_dirs(runs)
    summaries = [read_json(folder / "summary.json", "the quickstart writes it") for folder in folders]
    first = _same(summaries, root)
    seeds = [int(summary.get("seed", 0)) for summary in summaries]
    own: dict[str, list[TestRun]] = {name: [] for name in first["arms"]}
    others: dict[str, dict[str, list[TestRun]]] = {name: {} for name in first["arms"]}
    for folder, summary, seed in zip(folders, summaries, seeds):
        for name, arm in summary["arms"].items():
            run_, other_runs = read_arm(folder / name, arm["explanation"], seed)
            own[name].append(run_)
            for method, other in other_runs.items():
                others[name].setdefault(method, []).append(other)
    predictions = _rows(folders[0] / next(iter(first["arms"])) / "eval_test" / "predictions.csv")
    classes = [c.removeprefix("prob_") for c in predictions[0] if c.startswith("prob_")]
    arms = {name: _arm_report(arm, own[name], others[name], classes) for name, arm in first["arms"].items()}
    report: dict[str, Any] = {
        "experiment": "demo_shortcut",
        "seeds": seeds,
        "epochs": first["epochs"],
        "data": first["data"],
        "test_images": len(own[next(iter(own))][0].keys),
        "marker_area_share": first["marker_area_share"],
        "torch_threads": first["torch_threads"],
        "elapsed_s": round(sum(summary["elapsed_s"] for summary in summaries), 1),
        "arms": arms,
        "comparisons": {
            f"{a}_minus_{b}": paired_figures(own[a], own[b], f"{a} vs {b}", N_BOOT)
            for a, b in COMPARISONS
            if a in own and b in own
        },
        "targets": [
            {
                **t,
                "stats": arms[t["arm"]][t["figure"]],
                "verdict": verdict(arms[t["arm"]][t["figure"]], t["target"], t["higher_is_better"]),
            }
            for t in TARGETS
            if t["arm"] in arms
        ],
        "quickstart_verdicts": {str(seed): summary["verdict"] for seed, summary in zip(seeds, summaries)},
        "intervals": f"pooled bootstrap over the seeds ({N_BOOT} resamples of the test images, stratified by "
        "class x marker agrees), 95 %; marker energy over the images that carry the marker",
    }
    if set(DEVELOPMENT["arms"]) <= set(arms):
        report["gate_decision"] = gate_decision(arms)
    if (root / RUNTIME_FILE).is_file():
        report["wall_time"] = wall_time(root)
    return report


def gate_decision(arms: dict) -> dict:
    """:data:`GATE_RULE` applied to the soft (``abn``) and midrange (``abn_midrange``) gates' figures."""
    soft_name, midrange_name = DEVELOPMENT["arms"]
    soft, midrange = arms[soft_name], arms[midrange_name]
    worst = midrange["worst_group_accuracy"]["run_estimates"]
    auc_gap = midrange["test_auc"]["mean"] - soft["test_auc"]["mean"]
    every_seed = min(worst) >= GATE_RULE["worst_group_every_seed"]
    close_auc = auc_gap >= -GATE_RULE["auc_margin"]
    return {
        "rule": GATE_RULE,
        "midrange_worst_group_by_seed": worst,
        "soft_worst_group_by_seed": soft["worst_group_accuracy"]["run_estimates"],
        "auc_midrange_minus_soft": round(auc_gap, 6),
        "chosen": midrange_name if every_seed and close_auc else soft_name,
    }


def _took(report: dict) -> str:
    """The run's wall time: the runner's record (a lower bound where a step continued an untimed attempt),
    else the quickstarts' own."""
    wall = report.get("wall_time")
    if wall is None:
        return f"{report['elapsed_s']:.0f} s"
    return f"{'at least ' if wall['resumed'] else ''}{wall['seconds']:.0f} s"


def _group_table(arms: dict) -> list[str]:
    names = list(next(iter(arms.values())).get("group_accuracy", {}))
    if not names:
        return []
    rows = ["", "Accuracy per group (class x marker agrees / disagrees with the class it stands for):", ""]
    rows += ["| arm | " + " | ".join(n.replace("_", ", marker ") for n in names) + " |"]
    rows += ["|---|" + "---|" * len(names)]
    for name, arm in arms.items():
        rows.append(f"| `{name}` | " + " | ".join(fmt_ci(arm["group_accuracy"][g]) for g in names) + " |")
    return rows


def _claims(report: dict) -> list[str]:
    rows = []
    for name, diff in report.get("comparisons", {}).items():
        if diff:
            rows.append(
                f"| {name.replace('_minus_', ' minus ')} | {fmt_ci(diff['worst_group_accuracy'])} | "
                f"{fmt_ci(diff['auc'])} |"
            )
    if rows:
        rows = ["", "| paired difference | worst-group accuracy | AUC |", "|---|---|---|", *rows]
    targets = report.get("targets", [])
    if targets:
        rows += ["", "| claim | figure | verdict |", "|---|---|---|"]
        for t in targets:
            goal = f"{'≥' if t['higher_is_better'] else '≤'} {t['target']}"
            rows.append(f"| `{t['arm']}` test accuracy {goal} | {fmt_ci(t['stats'])} | **{t['verdict']}** |")
    return rows


def _gate_rows(report: dict) -> list[str]:
    decision = report.get("gate_decision")
    if decision is None:
        return []
    rule = decision["rule"]
    seeds = ", ".join(fmt(w, 3) for w in decision["midrange_worst_group_by_seed"])
    soft = ", ".join(fmt(w, 3) for w in decision["soft_worst_group_by_seed"])
    gap = fmt(decision["auc_midrange_minus_soft"], 3)
    return [
        "",
        "Gate rule (declared before the run): the midrange gate is taken when its worst-group accuracy is at "
        f"least {rule['worst_group_every_seed']} in every seed (here {seeds}; the soft gate {soft}) and its "
        f"AUC at most {rule['auc_margin']} below the soft gate's (here {gap}): **`{decision['chosen']}`**.",
    ]


def render(report: dict) -> str:
    """The demo's arms on the shortcut-free test set: accuracy, worst-group accuracy, AUC and where each
    arm's own map points; per-group accuracies, paired differences and the demo's claims."""
    rows = [
        "| arm | what it is | test accuracy | worst-group accuracy | test AUC | map pointing game "
        "| map energy on the marker | map |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, arm in report["arms"].items():
        cells = " | ".join(fmt_ci(arm.get(key)) for key in FIGURES)
        description = arm["description"].replace("|", "\\|")
        rows.append(f"| `{name}` | {description} | {cells} | {arm['explanation']} |")
        for method, other in arm.get("other_maps", {}).items():
            cells = f"{fmt_ci(other['map_pointing_game'])} | {fmt_ci(other['marker_energy'])}"
            rows.append(f"| `{name}` | the same network | | | | {cells} | {method} |")
    rows += _group_table(report["arms"]) + _claims(report) + _gate_rows(report)
    seeds = report.get("seeds")
    runs = f"Seeds {', '.join(map(str, seeds))}; " if seeds else ""
    intervals = f" Brackets: {report['intervals']}." if "intervals" in report else ""
    rows += [
        "",
        f"{runs}{report['epochs']} epochs per arm, {report['torch_threads']} threads; the whole run took "
        f"{_took(report)}. Marker energy: share of the map's energy in the marker's corner, "
        "over the test images that carry the marker (a map spread evenly: "
        f"{fmt(report['marker_area_share'], 4)}).{intervals}",
    ]
    return "\n".join(rows) + "\n"


BLOCKS: dict[str, Block] = {
    "demo_shortcut": bundle_results("abn_classification", "demo_shortcut", render),
    "demo_gate_development": bundle_results("abn_classification", "demo_gate_development", render),
}


def _publish_figure(quickstart: Path) -> None:
    """Copy a quickstart's figure into the docs, atomically (the README shows it beside the table)."""
    from monai_xai.utils import copy_docs_figure

    source, target = quickstart / "explanations.png", REPO / FIGURE
    if not source.is_file():
        raise InputError(source, "missing: the quickstart writes it with summary.json")
    copy_docs_figure(source, target.parent, target.name)


def _in_repo(path: Path) -> Path:
    """``path`` relative to the repository when it lies there (the steps run from it, and the summary
    records the data folder as given), else absolute."""
    path = path.resolve()
    return path.relative_to(REPO) if path.is_relative_to(REPO) else path


def steps(args: argparse.Namespace) -> list[Step]:
    """The phantoms (only where ``--data`` has none), then per seed the quickstart over every arm."""
    from monai_xai.data.synthetic import check_phantom_seed

    data, runs = _in_repo(args.data), _in_repo(args.runs)
    check_phantom_seed(REPO / data, args.data_seed)
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
        make += ["--n-val", str(args.n_val), "--n-test", str(args.n_test), "--seed", str(args.data_seed)]
        found.append(Step("data", make, data))
    for seed in args.seeds:
        out = runs / f"seed{seed}" / QUICKSTART
        quickstart = [sys.executable, "scripts/quickstart.py", "--data", str(data), "--out", str(out)]
        quickstart += ["--seed", str(seed), "--epochs", str(args.epochs), "--arms", ",".join(args.arms)]
        if args.batch_size is not None:
            quickstart += ["--batch-size", str(args.batch_size)]
        if args.rrr_lambda is not None:
            quickstart += ["--rrr-lambda", str(args.rrr_lambda)]
        found.append(Step(f"{QUICKSTART}_seed{seed}", quickstart, out, inputs=[data / "labels.csv"]))
    return found


def run(args: argparse.Namespace) -> dict:
    """Make the phantoms where missing and run the quickstart (a finished step is skipped), then collect."""
    with StepRunner(_in_repo(args.runs), "demo_shortcut") as runner:
        for step in steps(args):
            runner.run(step)
    return collect(REPO / _in_repo(args.runs))


def is_development(args: argparse.Namespace) -> bool:
    """Whether ``run`` is the declared development replicate of the gate (:data:`DEVELOPMENT`) at the full
    budget, which ``--publish`` writes to :data:`DEVELOPMENT_PUBLISHED`."""
    declared = (args.data_seed, tuple(args.arms), tuple(args.seeds)) == (
        DEVELOPMENT["data_seed"],
        DEVELOPMENT["arms"],
        DEVELOPMENT["seeds"],
    )
    # everything else as the published run has it
    as_published = argparse.Namespace(**{**vars(args), "data": REPO / DATA, "arms": ARMS, "data_seed": 0})
    return declared and not below_budget(as_published)


def below_budget(args: argparse.Namespace) -> list[str]:
    """Why a ``run`` is not the published one (data, epochs, arms, seeds; no other option): empty when it
    is."""
    counts = {**vars(args), "seeds": len(set(args.seeds))}
    short = [f"{key} {counts[key]} < {low}" for key, low in FULL_BUDGET.items() if counts[key] < low]
    if args.data.resolve() != (REPO / DATA).resolve():
        short.append(f"data {args.data}, not {DATA}")
    missing = [arm for arm in ARMS if arm not in args.arms]
    if missing:
        short.append(f"--arms lacks {', '.join(missing)}")
    options = ("batch_size", "rrr_lambda", "data_seed")
    short += [f"--{key} {getattr(args, key)}" for key in options if getattr(args, key)]
    short += [f"--arms has the development arm {arm}" for arm in DEVELOPMENT_ARMS if arm in args.arms]
    return short


def main(argv: Sequence[str] | None = None) -> int:
    parser, commands = study_parser("demo_shortcut", __doc__)
    run_parser = commands.add_parser(
        "run", help="make the phantoms, run the quickstart over every arm (resumable), then collect"
    )
    run_parser.add_argument("--data", type=Path, default=REPO / DATA, help="the phantoms (made when missing)")
    run_parser.add_argument(
        "--data_seed",
        type=int,
        default=0,
        help="seed of the phantoms, when made (0: the demo's); another seed in another --data folder is a "
        "development replicate, where designs are compared without reading the demo's test phantoms",
    )
    run_parser.add_argument("--n_train", type=int, default=800, help="training phantoms, when made")
    run_parser.add_argument("--n_val", type=int, default=200, help="validation phantoms, when made")
    run_parser.add_argument("--n_test", type=int, default=400, help="test phantoms, when made")
    run_parser.add_argument(
        "--runs", type=Path, default=REPO / "runs" / "experiments" / "demo_shortcut", help="the run folder"
    )
    run_parser.add_argument("--epochs", type=int, default=FULL_BUDGET["epochs"], help="epochs per arm")
    run_parser.add_argument("--arms", nargs="+", choices=ARMS + DEVELOPMENT_ARMS, default=list(ARMS))
    run_parser.add_argument(
        "--seeds", nargs="+", type=int, default=list(SEEDS), help="training seeds, one quickstart each"
    )
    run_parser.add_argument("--batch_size", type=int, help="training batch (the bundle's default if unset)")
    run_parser.add_argument(
        "--rrr_lambda", type=float, help="RRR penalty weight (the bundle's default if unset)"
    )
    add_output_arguments(run_parser, published=PUBLISHED)
    collect_parser = commands.add_parser(
        "collect", help="collect the quickstarts' output into the results file"
    )
    collect_parser.add_argument(
        "--runs", type=Path, required=True, help="a quickstart's --out folder, or a run folder of run"
    )
    add_output_arguments(collect_parser, published=PUBLISHED)
    args = parser.parse_args(argv)
    development = args.command == "run" and is_development(args)
    path = output_path(args, DEVELOPMENT_PUBLISHED if development else PUBLISHED)  # a missing --out fails now
    if args.command == "run":
        short = [] if development else below_budget(args)
        if args.publish and short:
            raise InputError(None, f"--publish needs the full budget: {', '.join(short)}")
        report = run(args)
    else:
        report = collect(args.runs)
    write_results(report, path, publish=args.publish)
    if args.publish and not development:
        _publish_figure(quickstart_dirs(args.runs)[0])
    print(f"written {path}")
    return 0
