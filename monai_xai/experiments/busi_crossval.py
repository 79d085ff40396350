"""BUSI cross-validation of the ABN bundle's arms over seeds: the study's claim judged by paired intervals.

Every arm (``baseline``, ``plain``, ``conventional``, ``dynamic``, ...) is trained by
``python -m monai_xai.crossval`` on the leak-free split, one run root per seed
(``<root>/<arm>/fold<k>/``). All folds and seeds are tested on the same fixed test set, so each figure is
pooled over the seed x fold runs with :func:`~monai_xai.metrics.pooled_bootstrap_ci` (its interval covers the
run-to-run and the test-sampling variance: what one run of the recipe achieves), and each comparison of
:data:`PAIRS` is paired image by image within a run (same seed and fold) before pooling. The comparison the
study's claim is judged on, :data:`CLAIM`, is declared here, before any test figure is read.

Settings are read back from the run folders (``run.json`` identity, ``crossval_done.json`` overrides,
``crossval_summary.json``), not passed again. Validation figures (``eval_val``) are reported beside the test
figures: an architecture or default is argued from those.

Usage (``run`` trains what is missing, one step per seed and arm, resumable, then collects; ``collect`` only
reads finished runs; results go to ``--out`` or, at the full budget, with ``--publish`` into the docs)::

    nohup python -m monai_xai.experiments busi_crossval run --publish --figure >> runs/abn_busi.log 2>&1 &
    python -m monai_xai.experiments busi_crossval run --seeds 0 --epochs 1 --size 64 --limit 40 \\
        --runs_prefix runs/smoke/busi --out runs/smoke/busi.json
    R=runs/experiments/abn_busi-128px-40ep
    python -m monai_xai.experiments busi_crossval collect --runs $R-seed{0,1,2}/busi_binary_dedup \\
        --arms baseline plain conventional dynamic --out busi.json

Runtime on the 2-core machine (bf16 fast path), 128 px, 40 epochs: about 8 min a fold for the ResNet arms and
10 for the ABN arms (training, validation, both evaluations), so 4 arms x 3 folds x 3 seeds take about 5.5 h,
spread over sessions (rerun the same command: finished folds are reused).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from monai_xai.errors import InputError

from .results import (
    REPO,
    add_output_arguments,
    bundle_results,
    fmt,
    fmt_ci,
    mean_sd,
    output_path,
    study_parser,
    verdict,
    write_results,
)

__all__ = ["ARM_OVERRIDES", "BLOCKS", "CLAIM", "PAIRS", "collect", "main", "render", "run"]

BUNDLE = "abn_classification"

#: (arm, reference): each reported as the paired difference arm - reference on the same images and runs.
PAIRS = (("dynamic", "conventional"), ("dynamic", "baseline"), ("conventional", "baseline"))
#: The study's claim (dynamic α above conventional γ; 0.923 vs 0.914 AUC on COVID CT), declared before the
#: test split is read: met only when the pooled paired interval of the AUC difference lies above zero.
CLAIM = {"pair": "dynamic_minus_conventional", "metric": "auc", "study": "0.923 vs 0.914 AUC on COVID CT"}

#: Column labels in table order; the image-level ones are computed from ``predictions.csv``, the map ones from
#: ``attention_per_image.csv`` (means only for runs evaluated before it was written). Accuracy, sensitivity
#: and specificity at the argmax and the IoUs are in the single-seed files written before intervals.
COLUMNS = {
    "auc": "AUC",
    "accuracy": "accuracy",
    "balanced_accuracy": "balanced accuracy",
    "sensitivity": "sensitivity",
    "specificity": "specificity",
    "balanced_accuracy_at_threshold": "balanced accuracy at the validation threshold",
    "sensitivity_at_threshold": "sensitivity at threshold",
    "specificity_at_threshold": "specificity at threshold",
    "map_pointing_game": "M(x) pointing game",
    "map_energy_inside_mask": "M(x) energy inside mask",
    "map_iou": "M(x) IoU",
    "gradcampp_pointing_game": "Grad-CAM++ pointing game",
    "gradcampp_energy_inside_mask": "Grad-CAM++ energy inside mask",
    "gradcampp_iou": "Grad-CAM++ IoU",
}
#: Map measures: results name -> (method in the evaluation, measure).
MAP_MEASURES = {
    "map_pointing_game": ("attention", "pointing_game"),
    "map_energy_inside_mask": ("attention", "energy_inside_mask"),
    "gradcampp_pointing_game": ("gradcampp", "pointing_game"),
    "gradcampp_energy_inside_mask": ("gradcampp", "energy_inside_mask"),
}
#: What each arm trains (for the table).
ARMS = {
    "baseline": "plain ResNet18 (`baseline`)",
    "rrr": "ResNet18, right for the right reasons (`rrr`)",
    "plain": "ABN, no map supervision (`plain`)",
    "conventional": "ABN, conventional γ (`conventional`)",
    "dynamic": "ABN, dynamic α step 0.9 → 0.1 (`dynamic`)",
    "abn_narrow": "`abn_narrow`, dynamic α",
    "abn_compact": "`abn_compact`, dynamic α",
    "abn_gated": "`abn_gated`, dynamic α",
}
#: Per-epoch validation metrics drawn as learning curves -> their axis label.
CURVES = {
    "val_auc": "validation AUC",
    "val_att_pointing_game": "validation pointing game of M(x)",
    "alpha": "α (weight of the attention losses)",
}
N_BOOT = 2000


@dataclass(frozen=True)
class FoldRun:
    """One trained fold of one seed: its test predictions (sorted by image) and per-image map scores."""

    seed: int
    fold: int
    sources: tuple[str, ...]
    labels: np.ndarray
    probs: np.ndarray  # (n, classes), as written (temperature-scaled where calibrated)
    decisions: np.ndarray  # the decision at the validation operating point (argmax without one)
    maps: dict[str, dict[str, dict[str, float]]]  # method -> source -> measure -> value
    map_means: dict[str, dict[str, float]]  # method -> measure -> mean (metrics.json)
    val_auc: float | None


# --------------------------------------------------------------------------------------------- reading


def _read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def _fold_run(fold_dir: Path, seed: int, fold: int) -> FoldRun:
    evaluation = fold_dir / "eval_test"
    rows = sorted(_read_csv(evaluation / "predictions.csv"), key=lambda row: row["source"])
    prob_columns = [c for c in rows[0] if c.startswith("prob_")]
    maps: dict[str, dict[str, dict[str, float]]] = {}
    per_image = evaluation / "attention_per_image.csv"
    if per_image.is_file():
        for row in _read_csv(per_image):
            scores = {k: float(v) for k, v in row.items() if k not in ("source", "method")}
            maps.setdefault(row["method"], {})[row["source"]] = scores
    metrics = json.loads((evaluation / "metrics.json").read_text())
    val = fold_dir / "eval_val" / "metrics.json"
    val_auc = json.loads(val.read_text()).get("image", {}).get("auc") if val.is_file() else None
    return FoldRun(
        seed=seed,
        fold=fold,
        sources=tuple(row["source"] for row in rows),
        labels=np.array([int(row["label"]) for row in rows]),
        probs=np.array([[float(row[c]) for c in prob_columns] for row in rows]),
        decisions=np.array([int(row.get("decision") or row["pred"]) for row in rows]),
        maps=maps,
        map_means=metrics.get("attention_agreement", {}),
        val_auc=val_auc,
    )


def _settings(fold_dir: Path) -> dict:
    """What a fold was trained as: its run identity and the overrides crossval recorded."""
    identity = json.loads((fold_dir / "run.json").read_text())["identity"]
    overrides = json.loads((fold_dir / "crossval_done.json").read_text())["overrides"]
    data = identity["data"]
    return {
        "dataset": data["dataset"],
        "class_names": data["class_names"],
        "split": data["datalist_args"]["split_file"],
        "spatial_size": identity["network"]["spatial_size"],
        "backbone": identity["network"]["backbone"],
        "epochs": overrides["max_epochs"],
        "cam_layer": overrides.get("cam_layer"),
        "seed": data["seed"],
    }


def _arm_runs(root: Path, arm: str) -> tuple[list[FoldRun], list[dict]]:
    summary_path = root / arm / "crossval_summary.json"
    if not summary_path.is_file():
        raise InputError(root / arm, "no crossval_summary.json (the arm has not run in this root)")
    n_folds = json.loads(summary_path.read_text())["n_folds"]
    missing = [k for k in range(n_folds) if not (root / arm / f"fold{k}" / "crossval_done.json").is_file()]
    if missing:
        raise InputError(
            root / arm, f"fold(s) {missing} of {n_folds} are not done; run the driver again (it resumes)"
        )
    folds = [root / arm / f"fold{k}" for k in range(n_folds)]
    settings = [_settings(f) for f in folds]
    return [_fold_run(f, s["seed"], k) for k, (f, s) in enumerate(zip(folds, settings))], settings


def _check_same(settings: list[dict], where: str) -> dict:
    """The settings every run shares (all but the seed and the CAM layer); an error names one that differs."""
    first = {k: v for k, v in settings[0].items() if k not in ("seed", "cam_layer")}
    for other in settings[1:]:
        for key, value in first.items():
            if other[key] != value:
                raise InputError(where, f"runs differ in {key}: {value!r} vs {other[key]!r}; not one study")
    return first


# ------------------------------------------------------------------------------------------- statistics


def _binary_metrics() -> dict[str, Callable[[FoldRun], tuple[tuple[np.ndarray, ...], Callable]]]:
    from monai_xai.metrics import auc, balanced_accuracy, sensitivity, specificity

    def balanced(y: np.ndarray, p: np.ndarray) -> float:
        return balanced_accuracy(y, p, classes=np.arange(2))

    return {
        "auc": lambda r: ((r.labels, r.probs[:, 1]), auc),
        "balanced_accuracy": lambda r: ((r.labels, r.probs.argmax(1)), balanced),
        "balanced_accuracy_at_threshold": lambda r: ((r.labels, r.decisions), balanced),
        "sensitivity_at_threshold": lambda r: ((r.labels, r.decisions), sensitivity),
        "specificity_at_threshold": lambda r: ((r.labels, r.decisions), specificity),
    }


def _multiclass_metrics(classes: int) -> dict[str, Callable]:
    from monai_xai.metrics import accuracy, auc, balanced_accuracy

    def balanced(y: np.ndarray, p: np.ndarray) -> float:
        return balanced_accuracy(y, p, classes=np.arange(classes))

    def macro_auc(y: np.ndarray, probs: np.ndarray) -> float:
        """One-vs-rest AUC averaged over the classes (NaN where a resample lacks one)."""
        return float(np.mean([auc(y == c, probs[:, c]) for c in range(classes)]))

    return {
        "auc": lambda r: ((r.labels, r.probs), macro_auc),
        "balanced_accuracy": lambda r: ((r.labels, r.probs.argmax(1)), balanced),
        "accuracy": lambda r: ((r.labels, r.probs.argmax(1)), accuracy),
    }


def _map_values(run: FoldRun, name: str) -> np.ndarray | None:
    method, measure = MAP_MEASURES[name]
    by_source = run.maps.get(method)
    if by_source is None:
        return None
    return np.array([by_source.get(s, {}).get(measure, math.nan) for s in run.sources])


def _pooled(metric: Callable, runs: list[tuple], stratified: bool) -> dict:
    from monai_xai.metrics import pooled_bootstrap_ci

    interval = pooled_bootstrap_ci(metric, runs, n_boot=N_BOOT, stratify=0 if stratified else None)
    found = interval.to_dict()
    found["run_estimates"] = [round(e, 6) for e in interval.run_estimates]
    return found


def _nanmean(values: np.ndarray) -> float:
    present = values[~np.isnan(values)]
    return float(present.mean()) if present.size else math.nan


def _nanmean_diff(a: np.ndarray, b: np.ndarray) -> float:
    both = ~(np.isnan(a) | np.isnan(b))
    return float((a[both] - b[both]).mean()) if both.any() else math.nan


def arm_figures(runs: list[FoldRun], classes: int) -> dict[str, dict]:
    """Every figure of one arm pooled over its runs: intervals from per-image data, else mean ± sd."""
    metrics = _binary_metrics() if classes == 2 else _multiclass_metrics(classes)
    found: dict[str, dict] = {}
    for name, arrays_of in metrics.items():
        pairs = [arrays_of(run) for run in runs]
        found[name] = _pooled(pairs[0][1], [arrays for arrays, _ in pairs], stratified=True)
    for name, (method, measure) in MAP_MEASURES.items():
        values = [_map_values(run, name) for run in runs]
        if all(v is not None for v in values):
            found[name] = _pooled(_nanmean, [(v,) for v in values], stratified=False)
        elif any(method in run.map_means for run in runs):
            found[name] = mean_sd(run.map_means.get(method, {}).get(measure) for run in runs)
    return found


def paired_figures(arm: list[FoldRun], reference: list[FoldRun], classes: int) -> dict[str, dict]:
    """arm - reference per run (same seed and fold, same images), pooled over the runs, with verdicts vs 0."""
    by_key = {(r.seed, r.fold): r for r in reference}
    matched = [(a, by_key[(a.seed, a.fold)]) for a in arm if (a.seed, a.fold) in by_key]
    for a, r in matched:
        if a.sources != r.sources:
            raise InputError(
                None, f"seed {a.seed} fold {a.fold}: the two arms were tested on different images"
            )
    if not matched:
        return {}
    metrics = _binary_metrics() if classes == 2 else _multiclass_metrics(classes)
    found: dict[str, dict] = {}
    for name, arrays_of in metrics.items():
        triples = []
        metric = None
        for a, r in matched:
            (labels, xa), metric = arrays_of(a)
            (_, xb), _ = arrays_of(r)
            triples.append((labels, xa, xb))

        def difference(y, xa, xb, metric=metric) -> float:
            return metric(y, xa) - metric(y, xb)

        found[name] = _pooled(difference, triples, stratified=True)
    for name in MAP_MEASURES:
        pairs = [(_map_values(a, name), _map_values(r, name)) for a, r in matched]
        if pairs and all(x is not None and y is not None for x, y in pairs):
            found[name] = _pooled(_nanmean_diff, pairs, stratified=False)
    for figures in found.values():
        if "ci95" in figures:
            figures["verdict"] = verdict(figures, 0.0)
    return found


def collect(roots: Sequence[Path], arms: Sequence[str], optional_arms: Sequence[str] = ()) -> dict:
    """The results file of the arms over the run roots (one per seed); optional arms join when complete."""
    per_arm: dict[str, list[FoldRun]] = {}
    settings: list[dict] = []
    for arm in [*arms, *optional_arms]:
        runs = []
        try:
            for root in roots:
                found, arm_settings = _arm_runs(Path(root), arm)
                runs += found
                settings += arm_settings
        except InputError as error:
            if arm in arms:
                raise
            print(f"optional arm {arm!r} left out: {error}")
            continue
        per_arm[arm] = runs
    shared = _check_same(settings, ", ".join(map(str, roots)))
    seeds = sorted({run.seed for runs in per_arm.values() for run in runs})
    if len(seeds) != len(roots):
        raise InputError(None, f"{len(roots)} run roots hold seeds {seeds}: each root must be another seed")
    classes = len(shared["class_names"])
    first = next(iter(per_arm.values()))
    return {
        "task": " vs ".join(shared["class_names"]),
        "dataset": shared["dataset"],
        "split": shared["split"],
        "spatial_size": shared["spatial_size"],
        "backbone": shared["backbone"],
        "epochs": shared["epochs"],
        "folds": len({run.fold for run in first}),
        "seeds": len(seeds),
        "seed_list": seeds,
        "test_images": len(first[0].sources),
        "class_metrics": (
            f"{shared['class_names'][1]} vs {shared['class_names'][0]}"
            if classes == 2
            else "macro averages over the classes"
        ),
        "interval": "pooled bootstrap over the seed x fold runs (stratified by class), 95 %",
        "arms": {arm: arm_figures(runs, classes) for arm, runs in per_arm.items()},
        "validation_auc": {arm: mean_sd(run.val_auc for run in runs) for arm, runs in per_arm.items()},
        "paired_differences": {
            f"{a}_minus_{r}": paired_figures(per_arm[a], per_arm[r], classes)
            for a, r in PAIRS
            if a in per_arm and r in per_arm
        },
        "claim": _claim(per_arm, classes),
    }


def _claim(per_arm: dict[str, list[FoldRun]], classes: int) -> dict:
    arm, reference = CLAIM["pair"].split("_minus_")
    if classes != 2 or arm not in per_arm or reference not in per_arm:
        return {**CLAIM, "verdict": "not run"}
    figures = paired_figures(per_arm[arm], per_arm[reference], classes)[CLAIM["metric"]]
    return {**CLAIM, "difference": figures, "verdict": figures["verdict"]}


# ------------------------------------------------------------------------------------------- rendering


def _cell(stats: dict | None) -> str:
    if stats is None:
        return "–"
    if "ci95" in stats or "sd" not in stats or stats["sd"] is None:
        return fmt_ci(stats)
    return f"{fmt(stats['mean'])} ± {fmt(stats['sd'])}"


def render(report: dict) -> str:
    """Arms x figures with pooled intervals, then the paired differences and the claim's verdict.

    Also renders the single-seed files written before intervals (per-fold mean ± sd, ``values``)."""
    names = [name for name in COLUMNS if any(name in arm for arm in report["arms"].values())]
    label = COLUMNS
    runtimes = report.get("runtime_s", {})
    header = " | ".join(label[n] for n in names) + (
        f" | runtime, {report['folds']} folds" if runtimes else ""
    )
    rows = [f"| arm | {header} |", "|---" * (len(names) + 1 + bool(runtimes)) + "|"]
    for arm, figures in report["arms"].items():
        cells = [_cell(figures.get(n)) for n in names] + ([_runtime(runtimes.get(arm))] if runtimes else [])
        rows.append(f"| {ARMS.get(arm, f'`{arm}`')} | {' | '.join(cells)} |")
    size = "x".join(str(s) for s in report["spatial_size"])
    split = report["split"] if isinstance(report["split"], str) else report["split"]["file"]
    seeds = report.get("seeds", 1)
    if seeds > 1 or "interval" in report:
        spread = (
            f"pooled over {seeds} seeds x {report['folds']} folds, each run tested on the same "
            f"{report['test_images']} images: estimate (mean over runs) [95 % interval covering run-to-run "
            "and test-sampling variance]; map measures without an interval are mean ± sd over the runs"
        )
    else:
        spread = "one seed, mean ± sd over the folds (no interval: measured before intervals were recorded)"
    rows += [
        "",
        f"BUSI {report['task']} on `{split}`, "
        f"{size}, {report['epochs']} epochs; test set, {spread}. AUC and the figures at threshold: "
        f"{report['class_metrics']}. M(x): the ABN's own map; Grad-CAM++ at the ResNet's layer3.",
    ]
    if report.get("validation_auc"):
        cells = ", ".join(f"`{a}` {_cell(s)}" for a, s in report["validation_auc"].items())
        rows += ["", f"Validation AUC (mean ± sd over the runs; what a default is argued from): {cells}."]
    differences = report["paired_differences"]
    if differences:
        pairs = list(differences)
        diff_names = [n for n in names if any(n in differences[p] for p in pairs)]
        rows += [
            "",
            f"| difference | {' | '.join(pair.replace('_minus_', ' − ') for pair in pairs)} |",
            "|---" * (len(pairs) + 1) + "|",
        ]
        for name in diff_names:
            cells = [_difference_cell(differences[p].get(name)) for p in pairs]
            rows.append(f"| {label[name]} | {' | '.join(cells)} |")
        rows += [
            "",
            "Paired: arm minus reference on the same images of the same seed and fold, pooled over the runs; "
            "a difference is called only when its 95 % interval excludes zero."
            if seeds > 1 or "interval" in report
            else "Paired: arm minus reference on the same fold, mean ± sd over the folds (one seed, no "
            "interval).",
        ]
    claim = report.get("claim")
    if claim and "difference" in claim:
        rows += [
            "",
            f"**The study's claim** (`{claim['pair'].replace('_minus_', ' − ')}` "
            f"{claim['metric'].upper()} > 0; the study: {claim['study']}): "
            f"{fmt_ci(claim['difference'])}, **{claim['verdict']}**.",
        ]
    return "\n".join(rows) + "\n"


def _runtime(record: dict | None) -> str:
    if record is None:
        return "–"
    return f"{record['seconds']:.0f} s" + (" (resumed: last part only)" if record.get("resumed") else "")


def _difference_cell(stats: dict | None) -> str:
    if stats is None:
        return "–"
    if "ci95" in stats:
        mark = {"met": " (above 0)", "missed": " (below 0)"}.get(
            stats.get("verdict", ""), " (not distinguishable)"
        )
        return fmt_ci(stats) + mark
    values = ", ".join("–" if v is None else f"{v:+.3f}" for v in stats.get("values", []))
    return f"{stats['mean']:+.3f} ± {fmt(stats['sd'])} (folds: {values})"


BLOCKS = {
    "busi_binary": bundle_results(BUNDLE, "busi_binary", render),
    "busi_3class": bundle_results(BUNDLE, "busi_3class", render),
}


# ------------------------------------------------------------------------------------------ learning curves


def learning_curves(roots: Sequence[Path], arms: Sequence[str]) -> dict[str, dict[str, list[float | None]]]:
    """Each :data:`CURVES` metric per epoch, averaged over the arm's runs (every seed and fold)."""
    from mlflow.tracking import MlflowClient

    from monai_xai.tracking import find_run

    curves: dict[str, dict[str, list[float | None]]] = {}
    for arm in arms:
        per_metric: dict[str, list[dict[int, float]]] = {name: [] for name in CURVES}
        for root in roots:
            summary = json.loads((Path(root) / arm / "crossval_summary.json").read_text())
            client = MlflowClient(summary["tracking_uri"])
            for fold in summary["per_fold"]:
                run = find_run(
                    summary["tracking_uri"],
                    summary["experiment_name"],
                    fold["run_name"],
                    with_metric="val_auc",
                )
                if run is None:
                    raise InputError(Path(root) / arm, f"no MLflow run {fold['run_name']!r} with val_auc")
                for name, by_run in per_metric.items():
                    history = client.get_metric_history(run.info.run_id, name)
                    if history:
                        by_run.append({m.step: m.value for m in history})
        curves[arm] = {}
        for name, by_run in per_metric.items():
            if by_run:
                epochs = range(1, max(max(r) for r in by_run) + 1)
                curves[arm][name] = [
                    float(np.mean(v)) if (v := [r[e] for r in by_run if e in r]) else None for e in epochs
                ]
    return curves


def curves_figure(curves: dict[str, dict[str, list[float | None]]], title: str):
    """One panel per :data:`CURVES` metric, one line per arm that logged it."""
    from monai_xai.utils import pyplot

    plt = pyplot()
    names = [name for name in CURVES if any(name in arm for arm in curves.values())]
    fig, axes = plt.subplots(1, len(names), figsize=(4.2 * len(names), 3.4), squeeze=False)
    for ax, name in zip(axes[0], names):
        for i, (arm, by_name) in enumerate(curves.items()):
            if name in by_name:
                values = [math.nan if v is None else v for v in by_name[name]]
                ax.plot(range(1, len(values) + 1), values, label=arm, color=f"C{i}")
        ax.set_xlabel("epoch")
        ax.set_title(CURVES[name], fontsize=9)
        ax.legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


#: What each arm trains, as crossval overrides. Grad-CAM++ reads layer3 (size/16 cells), named as CAMSaliency
#: sees the network: the ResNet's own layer3; the ABN's features end with layer3; abn_gated's features end
#: at layer1, so its layer3 is in the perception branch.
_ALPHA = {"alpha_schedule": "step", "alpha_high": 0.9, "alpha_low": 0.1}
_ABN = {"architecture": "abn", "cam_layer": "network.features.layer3"}
ARM_OVERRIDES: dict[str, dict] = {
    "baseline": {"mode": "baseline", "cam_layer": "network.layer3"},
    "rrr": {"mode": "rrr", "cam_layer": "network.layer3"},
    "plain": {"mode": "plain", **_ABN},
    "conventional": {"mode": "conventional", **_ABN},
    "dynamic": {"mode": "dynamic", **_ABN, **_ALPHA},
    "abn_narrow": {"mode": "dynamic", **_ABN, "architecture": "abn_narrow", **_ALPHA},
    "abn_compact": {"mode": "dynamic", **_ABN, "architecture": "abn_compact", **_ALPHA},
    "abn_gated": {
        "mode": "dynamic",
        "architecture": "abn_gated",
        "cam_layer": "network.perception_branch.layer3",
        **_ALPHA,
    },
}
#: results file -> the dataset fragment it trains on
TASKS = {"busi_binary": "busi_binary_dedup", "busi_3class": "busi_dedup"}
#: the budget below which results stay in the run folders (``--publish`` refused); the 3-class task is
#: published from one seed (intervals pooled over its folds): the seeds serve the binary study's claim
FULL_BUDGET = {"epochs": 40, "size": 128, "seeds": 3}
SEEDS_TO_PUBLISH = {"busi_binary": 3, "busi_3class": 1}


def seed_roots(prefix: Path, name: str, epochs: int, size: int, seeds: Sequence[int]) -> list[Path]:
    """``<prefix>-<size>px-<epochs>ep-seed<k>/<task>``: one folder of arm folders per seed."""
    return [Path(f"{prefix}-{size}px-{epochs}ep-seed{seed}") / TASKS[name] for seed in seeds]


def run(args: argparse.Namespace) -> dict:
    """Train and evaluate every arm x seed (resumable: crossval reuses finished folds), then collect."""
    from .runner import Step, StepRunner, crossval_argv

    configs = REPO / "bundles" / BUNDLE / "configs"
    fragment = REPO / "configs" / "datasets" / f"{TASKS[args.name]}.json"
    roots = [r.resolve() for r in seed_roots(args.runs_prefix, args.name, args.epochs, args.size, args.seeds)]
    with StepRunner(Path(f"{args.runs_prefix}-{args.size}px-{args.epochs}ep"), "busi_crossval") as runner:
        for seed, root in zip(args.seeds, roots):  # seed-major: an interrupted run leaves whole seeds
            for arm in [*args.arms, *args.optional_arms]:
                overrides = {
                    **ARM_OVERRIDES[arm],
                    "saliency_baselines": ["gradcampp"],
                    "max_epochs": args.epochs,
                    "spatial_size": [args.size, args.size],
                    "seed": seed,
                    "calibrate": True,
                    "tracking_uri": f"sqlite:///{root.parent / 'mlruns.db'}",
                    **({"limit": args.limit} if args.limit else {}),
                }
                argv = crossval_argv(
                    [configs / "train.json", fragment], configs / "evaluate.json", root / arm, overrides
                )
                runner.run(Step(f"seed{seed}/{TASKS[args.name]}/{arm}", argv, root / arm))
    return collect(roots, args.arms, args.optional_arms)


def _below_budget(args: argparse.Namespace) -> str | None:
    budget = {**FULL_BUDGET, "seeds": SEEDS_TO_PUBLISH[args.name]}
    short = [
        f"{key} {value} < {budget[key]}"
        for key, value in (("epochs", args.epochs), ("size", args.size), ("seeds", len(args.seeds)))
        if value < budget[key]
    ]
    if args.limit:
        short.append(f"--limit {args.limit}")
    return ", ".join(short) or None


def main(argv: Sequence[str] | None = None) -> int:
    parser, commands = study_parser("busi_crossval", __doc__)
    run_parser = commands.add_parser("run", help="train, evaluate and collect every arm x seed (resumable)")
    run_parser.add_argument(
        "--runs_prefix", type=Path, default=Path("runs/experiments/abn_busi"), help="where the runs go"
    )
    run_parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    run_parser.add_argument("--epochs", type=int, default=FULL_BUDGET["epochs"])
    run_parser.add_argument("--size", type=int, default=FULL_BUDGET["size"])
    run_parser.add_argument("--limit", type=int, help="images per split (a smoke test; never published)")
    collect_parser = commands.add_parser("collect", help="collect finished runs into the results file")
    collect_parser.add_argument("--runs", type=Path, nargs="+", required=True, help="a task folder per seed")
    for sub, arms in ((run_parser, ["baseline", "plain", "conventional", "dynamic"]), (collect_parser, None)):
        sub.add_argument(
            "--arms", nargs="+", default=arms, required=arms is None, choices=sorted(ARM_OVERRIDES)
        )
        sub.add_argument("--optional_arms", nargs="*", default=[], choices=sorted(ARM_OVERRIDES))
        sub.add_argument("--name", default="busi_binary", choices=sorted(BLOCKS), help="the results file")
        sub.add_argument("--figure", action="store_true", help="draw the learning curves beside the results")
        add_output_arguments(sub, published=f"bundles/{BUNDLE}/docs/results/<name>.json")
    args = parser.parse_args(argv)
    out = output_path(args, BLOCKS[args.name].results)
    if args.command == "run":
        short = _below_budget(args)
        if args.publish and short:
            raise InputError(None, f"--publish needs the full budget {FULL_BUDGET}: {short}")
        report = run(args)
        roots = seed_roots(args.runs_prefix, args.name, args.epochs, args.size, args.seeds)
    else:
        report = collect(args.runs, args.arms, args.optional_arms)
        roots = args.runs
    write_results(report, out, publish=args.publish)
    print(f"written {out}: arms {', '.join(report['arms'])}; claim: {report['claim']['verdict']}")
    if args.figure:
        from monai_xai.visualize.figures import save_figure

        curves = learning_curves(roots, list(report["arms"]))
        docs = REPO / "bundles" / BUNDLE / "docs" / "figures" / f"{args.name}_curves.png"
        figure = docs if args.publish else out.with_suffix(".png")
        title = f"{report['task']}: mean over {report['seeds']} seeds x {report['folds']} folds"
        save_figure(curves_figure(curves, title), figure)
        print(f"written {figure}")
    return 0
