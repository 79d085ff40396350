"""Regenerate the measured-results tables of the bundle docs, and the ``eval_metrics`` of the bundle metadata
that restate them, from the JSON files experiments wrote.

A table lives in a README between ``<!-- results:NAME -->`` and ``<!-- /results:NAME -->``; NAME picks a
renderer below and the results file it reads (a bundle's ``docs/results/*.json``). Tables are never typed
by hand. A figure a block links (``figures/*.png``, copied into the bundle's docs by the experiment) must
exist beside the README, so that no run folder is needed; a missing one is an error naming it.

Usage::

    python scripts/render_results.py                 # every bundle README
    python scripts/render_results.py --check         # exit 1 when a README or metadata is out of date

The ``eval_metrics`` entries listed in ``EVAL_METRICS`` are derived from the results files; the other
entries of a bundle's metadata (earlier runs) are left as they are.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
#: a link or image target in rendered markdown that is a file beside the README (not a web address)
LINK = re.compile(r"\]\((?!https?://)([^)\s]+)\)")
BLOCK = re.compile(r"(<!-- results:(?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- /results:(?P=name) -->)", re.S)


def _fmt(value: float, digits: int = 2) -> str:
    return f"{value:.{digits}f}"


def train_throughput(report: dict) -> str:
    step = f"bare step, {report['size']}x{report['size']}, batch {report['batch']}"
    rows = [
        f"| network ({step}) | float32 images/s | fast path images/s | speed-up | target |",
        "|---|---|---|---|---|",
    ]
    targets = report["targets"]
    for name, figures in report["bare_steps"].items():
        target = targets.get(f"precision_speedup_{name}")
        rows.append(
            f"| {name} | {_fmt(figures['fp32_images_per_s'])} | {_fmt(figures['fast_images_per_s'])} | "
            f"{_fmt(figures['speedup'], 3)} | {'≥ ' + str(target) if target else '-'} |"
        )
    pipeline = report.get("pipeline")
    lines = [*rows, ""]
    if pipeline:
        lines += [
            "| ABN bundle trainer, BUSI epoch (cache warm) | bare loop, same network/loss/batch/optimiser | "
            "pipeline_efficiency | target |",
            "|---|---|---|---|",
            f"| {_fmt(pipeline['trainer_images_per_s'])} images/s ({pipeline['iterations_per_epoch']} steps, "
            f"{pipeline['num_workers']} workers) | {_fmt(pipeline['bare_images_per_s'])} images/s | "
            f"{_fmt(pipeline['pipeline_efficiency'], 3)} | ≥ {targets['pipeline_efficiency']} |",
            "",
        ]
    env = report["environment"]
    fast = next(iter(report["bare_steps"].values()))["fast_path"]
    lines.append(
        f"Fast path resolved here: {fast}; CPU supports bfloat16: {report['cpu_supports_bf16']}; "
        f"{env['threads']} threads, load {env['loadavg_1min_at_start']} at start and "
        f"{env['loadavg_1min_at_end']} at end; torch {env['torch']}, MONAI {env['monai']}."
    )
    return "\n".join(lines) + "\n"


def precision_busi(report: dict) -> str:
    rows = [
        "| arm | fast path | best val AUC | last val AUC | val AUC per epoch | wall time |",
        "|---|---|---|---|---|---|",
    ]
    for arm in report["arms"].values():
        per_epoch = ", ".join(_fmt(v, 3) for v in arm["val_auc_per_epoch"])
        rows.append(
            f"| `--amp {str(arm['amp']).lower()}` | {arm['fast_path']} | {_fmt(arm['best_val_auc'], 3)} | "
            f"{_fmt(arm['last_val_auc'], 3)} | {per_epoch} | {arm['wall_seconds']:.0f} s |"
        )
    rows += [
        "",
        f"{report['task']}, fold {report['fold']}, seed {report['seed']}, {report['epochs']} epochs, "
        f"{report['size']}x{report['size']}; best-AUC difference {report['best_val_auc_difference']:+.4f}, "
        f"wall-time ratio float32 / fast path {report['wall_time_ratio']}.",
    ]
    return "\n".join(rows) + "\n"


def demo_shortcut(report: dict) -> str:
    """The built-in demo's arms on the shortcut-free test set (``scripts/experiments/demo_shortcut.sh``)."""
    rows = [
        "| arm | what it is | test accuracy | test AUC | map pointing game | map energy on the marker "
        "| map |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, arm in report["arms"].items():
        figures = [arm[key] for key in ("test_accuracy", "test_auc", "map_pointing_game", "marker_energy")]
        cells = " | ".join(_fmt(value, 3) for value in figures)
        description = arm["description"].replace("|", "\\|")
        rows.append(f"| `{name}` | {description} | {cells} | {arm['explanation']} |")
        for method, other in arm.get("other_maps", {}).items():
            cells = f"{_fmt(other['map_pointing_game'], 3)} | {_fmt(other['marker_energy'], 3)}"
            rows.append(f"| `{name}` | the same network | | | {cells} | {method} |")
    rows += [
        "",
        f"{report['epochs']} epochs per arm, {report['torch_threads']} threads; the whole run took "
        f"{report['elapsed_s']:.0f} s. Marker energy: share of the map's energy in the marker's corner, "
        "over the test images that carry the marker (a map spread evenly: "
        f"{_fmt(report['marker_area_share'], 4)}).",
    ]
    return "\n".join(rows) + "\n"


def _ci(stats: dict, digits: int = 3) -> str:
    """``0.812 [0.771, 0.850]``: a figure with its 95 % interval."""
    low, high = stats["ci95"]
    return f"{_fmt(stats['mean'], digits)} [{_fmt(low, digits)}, {_fmt(high, digits)}]"


def imbalanced_demo(report: dict) -> str:
    """Class balance and the validation operating point on 1 : 8 phantoms (``imbalanced_demo.py``)."""
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
            _ci(arm["auc"]),
            _ci(arm["argmax"]["balanced_accuracy"]),
            _fmt(at["threshold"], 3),
            _ci(at["balanced_accuracy"]),
            f"{_ci(at['sensitivity'], 2)} / {_ci(at['specificity'], 2)}",
            _fmt(ece["as_trained"], 3),
            "not applied¹"
            if ece["temperature_scaled"] is None
            else f"{_fmt(ece['temperature_scaled'], 3)} (T {_fmt(ece['temperature'], 2)})",
        ]
        rows.append("| " + " | ".join(cells) + " |")
    diff = report["balanced_accuracy_difference"]
    settings = report["settings"]
    rows += [
        "",
        f"Test set {counts['test'][0]} : {counts['test'][1]} images (training {counts['train'][0]} : "
        f"{counts['train'][1]}, validation {counts['val'][0]} : {counts['val'][1]}), 64 px phantoms "
        f"without the marker; {settings['mode']} ABN, {settings['max_epochs']} epochs, seed "
        f"{settings['seed']}; intervals: {settings['intervals']} ({settings['n_boot']} resamples). "
        "Balanced accuracy of `auto` at the "
        f"validation threshold minus `none` at the argmax, paired on the same images: {_ci(diff)} "
        f"({diff['verdict_vs_zero']} against 0).",
    ]
    fits = {name: arm["ece"].get("temperature_fit") for name, arm in report["arms"].items()}
    skipped = [f"`{name}`: {fit}" for name, fit in fits.items() if fit and fit.startswith("not applied")]
    if skipped:
        rows += ["", "¹ Temperature scaling " + "; ".join(skipped) + "."]
    warnings = [w for arm in report["arms"].values() for w in arm["warnings"]]
    if warnings:
        rows += ["", "Warnings the evaluations printed: " + "; ".join(warnings) + "."]
    return "\n".join(rows) + "\n"


def busi_decisions(report: dict) -> str:
    """The BUSI arms as decisions: operating point from validation, calibration (``busi_decisions.py``)."""
    rows = [
        "| arm | test AUC | balanced accuracy at the argmax | balanced accuracy at the threshold "
        "| sensitivity / specificity at the threshold | thresholds (val) | ECE as trained "
        "| ECE temperature-scaled |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, arm in report["arms"].items():
        thresholds = ", ".join(_fmt(t, 2) for t in arm["thresholds"])
        cells = [
            f"`{name}`",
            _ci(arm["auc"]),
            _ci(arm["balanced_accuracy_argmax"]),
            _ci(arm["balanced_accuracy_at_threshold"]),
            f"{_ci(arm['sensitivity_at_threshold'], 2)} / {_ci(arm['specificity_at_threshold'], 2)}",
            thresholds,
            _fmt(arm["ece"]["as_trained"], 3),
            _fmt(arm["ece"]["temperature_scaled"], 3),
        ]
        rows.append("| " + " | ".join(cells) + " |")
    rows.append("")
    for pair, found in report["differences"].items():
        parts = [
            f"{name.replace('_', ' ')} {_ci(stats)} ({stats['verdict_vs_zero']})"
            for name, stats in found.items()
        ]
        rows.append(f"- `{pair.replace('-', '` minus `')}`: " + "; ".join(parts) + ".")
    counts = report["test_class_counts"]
    rows += [
        "",
        f"Test set {report['test_images']} images ({counts[0]} benign, {counts[1]} malignant), "
        f"{report['folds']} fold{'s' if report['folds'] != 1 else ''}; intervals {report['intervals']}; "
        f"operating point: {report['operating_point']}.",
    ]
    return "\n".join(rows) + "\n"


def _met(met: bool) -> str:
    return "met" if met else "**not met**"


#: the fine-tuning checkpoint ``demo_correction.py --checkpoint`` scored, in words
SCORED_CHECKPOINT = {"last": "last epoch", "best": "epoch of best validation AUC"}


def _demo_accuracy(accuracy: float, interval: dict | None) -> str:
    """A demo_correction cell's test accuracy, with its 95 % interval when the results file has one."""
    return _fmt(accuracy, 3) if interval is None else _ci({"mean": accuracy, "ci95": interval["ci95"]})


def _demo_meets(accuracy: float, interval: dict | None, target: float) -> bool:
    """The whole interval above ``target`` (the figure alone at or above it, without an interval)."""
    return accuracy >= target if interval is None else interval["ci95"][0] > target


def demo_correction(report: dict) -> str:
    """Before and after fine-tuning on corrected maps, the target judged on the arm the driver declared, then
    accuracy (with its 95 % interval where the results file has one) / map pointing game of every strategy
    and corrected fraction of every arm, none picked (``scripts/experiments/demo_correction.sh``). An older
    results file (no declared arm, no intervals) renders its plain figures and judges no arm."""
    before, target, settings = report["before"], report["target"], report["settings"]
    limit, goal = target["fraction_at_most"], target["after_at_least"]
    judged = report.get("judged_arm")
    rows = [
        "| model | test accuracy | map pointing game |",
        "|---|---|---|",
        f"| trained without map supervision (before) | "
        f"{_demo_accuracy(before['test_accuracy'], before.get('test_accuracy_ci'))} | "
        f"{_fmt(before['map_pointing_game'], 3)} |",
        "",
    ]
    head = (
        f"Target: test accuracy ≥ {goal} after correcting ≤ {limit:.0%} of the maps, from ≤ "
        f"{target['before_at_most']} before"
    )
    if judged is None:
        counts = [
            f"`{name}` {sum(_demo_meets(a, None, goal) for a in _demo_up_to(arm, limit))} of "
            f"{len(_demo_up_to(arm, limit))}"
            for name, arm in report["arms"].items()
        ]
        before_met = before["test_accuracy"] <= target["before_at_most"]
        rows.append(
            f"{head}: before {_met(before_met)}; after: this results file predates declaring the judged arm "
            "before reading the test set, so no arm is judged; cells "
            f"with ≤ {limit:.0%} corrected at or above {goal} (figures alone, no intervals): "
            + ", ".join(counts)
            + "."
        )
    else:
        cells = target["cells"]
        met = target["after_met"]
        after = "not judged (the arm was not run)" if met is None else _met(met)
        rows.append(
            f"{head}, judged on arm `{judged}` (declared in the driver before any test figure was read; a "
            f"cell meets it when its whole 95 % interval lies above {goal}): before "
            f"{_met(target['before_met'])} ({target['before_verdict']}), after {after}: "
            f"{target['cells_met']} of {len(cells)} cells with "
            f"≤ {limit:.0%} corrected (each strategy and fraction; no correction for looking at "
            f"{len(cells)})."
        )
    fractions = [str(float(f)) for f in settings["fractions"]]
    for name, arm in report["arms"].items():
        intervals = arm.get("after_ci", {})
        role = " (judged)" if name == judged else ""
        rows += [
            "",
            f"`{name}`{role}, fine-tuning {arm['description']}: test accuracy / map pointing game",
            "",
            f"| strategy | {' | '.join(f'{float(f):.0%}' for f in fractions)} |",
            "|---" * (len(fractions) + 1) + "|",
        ]
        for strategy, accuracies in arm["after"].items():
            cells = []
            for f in fractions:
                interval = intervals.get(strategy, {}).get(f)
                accuracy = _demo_accuracy(accuracies[f], interval)
                if float(f) <= limit and _demo_meets(accuracies[f], interval, goal):
                    accuracy = f"**{accuracy}**"
                cells.append(f"{accuracy} / {_fmt(arm['pointing_game'][strategy][f], 3)}")
            rows.append(f"| `{strategy}` | {' | '.join(cells)} |")
    images, finetune, size = settings["images"], settings["finetune"], settings["spatial_size"]
    scored = SCORED_CHECKPOINT[finetune["checkpoint"]]
    wall = sum(settings["wall_s"].values())
    with_intervals = "test_accuracy_ci" in before or any("after_ci" in a for a in report["arms"].values())
    intervals_note = (
        "Brackets: stratified (by label) bootstrap 95 % intervals of each cell's test images."
        if with_intervals
        else "No intervals: this run kept no per-image predictions of its cells."
    )
    rows += [
        "",
        f"Phantoms: {images['train']} training, {images['val']} validation (marker = label in both), "
        f"{images['test']} test images (marker random), {size}x{size}; {settings['epochs']} training "
        f"epochs, fine-tuning {finetune['epochs']} epochs (L_map weight {finetune['map_weights']:g}, "
        f"learning rate {finetune['learning_rate']:g}), scored at its {scored}; "
        "lesion masks stand in for the corrected maps. Every arm, strategy and fraction is shown; none is "
        f"picked for its test figure. Bold: the target met. {intervals_note} "
        f"{settings['torch_threads']} threads, {wall / 60:.0f} min in all.",
    ]
    return "\n".join(rows) + "\n"


def _demo_up_to(arm: dict, limit: float) -> list[float]:
    """An arm's test accuracies with at most ``limit`` of the maps corrected."""
    return [a for row in arm["after"].values() for f, a in row.items() if float(f) <= limit]


def _percent(fraction: float | str) -> str:
    """A share as the docs write it: ``0.3`` -> ``30 %``."""
    return f"{float(fraction) * 100:g} %"


def _seed_stats(stats: dict | None, digits: int) -> str:
    if stats is None or stats["mean"] is None:
        return "-"
    return f"{_fmt(stats['mean'], digits)} ± {_fmt(stats['sd'], digits)}"


#: the tables of busi_active_learning: metric -> (its words, decimals); map MSE and the pointing game can
#: disagree (a corrected map on the lesion but wider than its mask), so both are shown
ACTIVE_LEARNING_TABLES = {
    "map_mse": ("map MSE", 4),
    "map_pointing_game": ("map pointing game", 3),
    "accuracy": ("accuracy", 3),
}


def _active_learning_settings(settings: dict) -> str:
    """The settings the results file records, in one sentence; empty when it records none."""
    parts = []
    if "dataset" in settings:
        parts.append(f"dataset `{settings['dataset']}`")
    if "backbone" in settings:
        parts.append(f"backbone {settings['backbone']}")
    if "spatial_size" in settings:
        parts.append(f"{settings['spatial_size']}x{settings['spatial_size']}")
    if "max_epochs" in settings and "patience" in settings:
        parts.append(f"at most {settings['max_epochs']} training epochs (patience {settings['patience']})")
    elif "max_epochs" in settings:
        parts.append(f"{settings['max_epochs']} training epochs")
    elif "patience" in settings:
        parts.append(f"early-stopping patience {settings['patience']}")
    if "ft_epochs" in settings:
        parts.append(f"fine-tuning {settings['ft_epochs']} epochs")
    if "map_weights" in settings:
        parts.append(f"L_map weight {settings['map_weights']:g}")
    if "ft_learning_rate" in settings:
        parts.append(f"fine-tuning learning rate {settings['ft_learning_rate']:g}")
    return f"Settings: {'; '.join(parts)}." if parts else ""


def busi_active_learning(report: dict) -> str:
    """Map MSE and accuracy per strategy and corrected fraction, mean ± sd over the seeds, beside the model
    before correction, and where each strategy reaches most of its map-MSE gain
    (``scripts/experiments/busi_active_learning.py``)."""
    fractions = [str(float(f)) for f in report["fractions"]]
    seeds = report["seeds"]
    rows = [
        "Test set after fine-tuning on the corrected maps of each strategy's top fraction of the training "
        f"images, mean ± sd over {seeds} seed{'' if seeds == 1 else 's'} "
        f"({', '.join(report['seed_names'])})."
    ]
    for metric, (words, digits) in ACTIVE_LEARNING_TABLES.items():
        rows += [
            "",
            f"| strategy: {words} | {' | '.join(_percent(f) for f in fractions)} |",
            "|---" * (len(fractions) + 1) + "|",
        ]
        for strategy, by_fraction in report["strategies"].items():
            cells = [_seed_stats(by_fraction.get(f, {}).get(metric), digits) for f in fractions]
            rows.append(f"| `{strategy}` | {' | '.join(cells)} |")
    before = report["before"]
    rows += [
        "",
        "Before correction: "
        + ", ".join(
            f"{words} {_seed_stats(before.get(metric), digits)}"
            for metric, (words, digits) in ACTIVE_LEARNING_TABLES.items()
        )
        + ".",
    ]
    gain = report["fraction_for_gain"]
    reached = []
    for strategy in report["strategies"]:
        fraction = gain[strategy]["map_mse"]
        reached.append(f"`{strategy}` {'never' if fraction is None else _percent(fraction)}")
    rows += [
        "",
        f"Fraction at which each strategy reaches {_percent(gain['share'])} of its full-correction map-MSE "
        f"gain: {', '.join(reached)} (the study: about 30 % for choosing by map error).",
    ]
    settings = _active_learning_settings(report.get("settings", {}))
    if settings:
        rows += ["", settings]
    return "\n".join(rows) + "\n"


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


def _method_table(report: dict, measures: dict[str, tuple[str, int]], best: bool) -> list[str]:
    """One row per method, a column per backbone and measure; with ``best``, each column's best in bold."""
    backbones, methods = report["backbones"], report["methods"]
    heads = [f"{backbone} {head}" for backbone in backbones for head, _ in measures.values()]
    rows = [f"| method | {' | '.join(heads)} |", "|---" * (len(heads) + 1) + "|"]
    bold = {}
    for backbone in backbones:
        for measure in measures:
            values = [m["scores"].get(backbone, {}).get(measure) for m in methods.values()]
            values = [v for v in values if v is not None]
            if best and values:
                bold[backbone, measure] = max(values) if "↑" in measures[measure][0] else min(values)
    for method in methods.values():
        cells = []
        for backbone in backbones:
            for measure, (_, digits) in measures.items():
                value = method["scores"].get(backbone, {}).get(measure)
                text = "-" if value is None else _fmt(value, digits)
                cells.append(
                    f"**{text}**" if value is not None and bold.get((backbone, measure)) == value else text
                )
        rows.append(f"| {method['label']} | {' | '.join(cells)} |")
    return rows


def busi_maps(report: dict) -> str:
    """The study's layout: Deletion, Insertion and map MSE per method and backbone, then the explained
    models' test scores and how long each trained (``scripts/experiments/busi_maps.py``)."""
    settings = report.get("settings", {})
    rows = _method_table(report, MAP_MEASURES, best=True)
    rows += ["", *_method_table(report, MODEL_MEASURES, best=False), ""]
    trained = []
    for backbone, runs in report.get("training", {}).items():
        for run, record in runs.items():
            if "epochs_trained" in record and "best_epoch" in record:
                trained.append(f"{backbone} `{run}` {record['best_epoch']}/{record['epochs_trained']}")
    if trained:
        rows += [f"Best epoch / epochs trained: {', '.join(trained)}.", ""]
    size, get = settings.get("spatial_size"), settings.get
    rows.append(
        f"Dataset `{get('dataset', '?')}`, fold 0, {size}x{size}; training stopped after "
        f"{get('patience', '?')} epochs without a better validation AUC (at most {get('max_epochs', '?')}); "
        f"fine-tuning {get('ft_epochs', '?')} epochs, L_map weight {get('map_weights', '?')}, learning rate "
        f"{get('ft_learning_rate', '?')}; Deletion/Insertion {get('faithfulness_steps', '?')} steps, blur "
        "baseline. Bold: the best of each column."
    )
    return "\n".join(rows) + "\n"


def retinamnist(report: dict) -> str:
    """Kappa, accuracy and AUC per arm beside the MedMNIST v2 paper's ResNet-18 (28)."""
    rows = [
        "| model | quadratic weighted kappa | accuracy | AUC | test images | reaches the paper's ACC, AUC |",
        "|---|---|---|---|---|---|",
    ]
    for arm in report["arms"].values():
        rows.append(
            f"| {arm['label']} | {_fmt(arm['kappa'], 3)} | {_fmt(arm['accuracy'], 3)} | "
            f"{_fmt(arm['auc'], 3)} | {arm['n']} | {'yes' if arm['reaches_paper'] else '**no**'} |"
        )
    paper = report["paper"]
    rows.append(
        f"| MedMNIST v2 paper, ResNet-18 (28) | not reported | {_fmt(paper['accuracy'], 3)} | "
        f"{_fmt(paper['auc'], 3)} | 400 | |"
    )
    settings = report.get("settings", {})
    if settings:
        rows += ["", "Settings: " + ", ".join(f"{k} {v}" for k, v in settings.items()) + "."]
    if report.get("wall_time"):
        rows += ["", "Wall time: " + "; ".join(report["wall_time"]) + "."]
    return "\n".join(rows) + "\n"


#: The networks of train_throughput.py's bare steps that each bundle trains.
BUNDLE_NETWORKS = {
    "abn_classification": ["abn", "resnet"],
    "multiscale_abn_correction": ["multiscale_abn"],
    "agcyclegan_explainer": ["resnet", "agcyclegan"],
    "centernet_detection": ["simsiam", "centernet"],
}
THROUGHPUT = REPO / "bundles" / "abn_classification" / "docs" / "results" / "train_throughput.json"


def fast_path_speedups(report: dict, bundle: str) -> str:
    """One line per network this bundle trains: its fast-path speed-up from the shared benchmark run."""
    steps = report["bare_steps"]
    lines = [
        f"- `{name}`: {steps[name]['fp32_images_per_s']:.2f} images/s in float32, "
        f"{steps[name]['fast_images_per_s']:.2f} on the fast path ({steps[name]['fast_path']}): "
        f"x{steps[name]['speedup']:.3f}"
        for name in BUNDLE_NETWORKS[bundle]
    ]
    return "\n".join(lines) + "\n"


#: Column labels of the BUSI cross-validation tables by the names of ``scripts/experiments/busi_results.py``.
BUSI_COLUMNS = {
    "auc": "AUC",
    "accuracy": "accuracy",
    "sensitivity": "sensitivity",
    "specificity": "specificity",
    "map_pointing_game": "M(x) pointing game",
    "map_energy_inside_mask": "M(x) energy inside mask",
    "map_iou": "M(x) IoU",
    "gradcampp_pointing_game": "Grad-CAM++ pointing game",
    "gradcampp_energy_inside_mask": "Grad-CAM++ energy inside mask",
    "gradcampp_iou": "Grad-CAM++ IoU",
}
#: What each arm of ``scripts/experiments/abn_busi.sh`` trains.
BUSI_ARMS = {
    "baseline": "plain ResNet18 (`baseline`)",
    "rrr": "ResNet18, right for the right reasons (`rrr`)",
    "plain": "ABN, no map supervision (`plain`)",
    "conventional": "ABN, conventional γ (`conventional`)",
    "dynamic": "ABN, dynamic α step 0.9 → 0.1 (`dynamic`)",
    "abn_narrow": "`abn_narrow`, dynamic α",
    "abn_compact": "`abn_compact`, dynamic α",
    "abn_gated": "`abn_gated`, dynamic α",
}


def _mean_sd(stats: dict | None, sign: str = "") -> str:
    if stats is None or stats["mean"] is None:
        return "-"
    return f"{stats['mean']:{sign}.3f} ± {stats['sd']:.3f}"


def _runtime(record: dict | None) -> str:
    if record is None:
        return "-"
    return f"{record['seconds']:.0f} s" + (" (resumed: last part only)" if record["resumed"] else "")


def _per_fold(stats: dict | None) -> str:
    if stats is None:
        return "-"
    return ", ".join("-" if value is None else f"{value:+.3f}" for value in stats["values"])


def busi_crossval(report: dict) -> str:
    """Arm x metric as mean ± sd over the folds, then the paired per-fold differences
    (``scripts/experiments/abn_busi.sh``; one renderer for both BUSI tasks)."""
    names = [name for name in BUSI_COLUMNS if any(name in arm for arm in report["arms"].values())]
    rows = [
        f"| arm | {' | '.join(BUSI_COLUMNS[name] for name in names)} | runtime, {report['folds']} folds |",
        "|---" * (len(names) + 2) + "|",
    ]
    for arm, metrics in report["arms"].items():
        cells = " | ".join(_mean_sd(metrics.get(name)) for name in names)
        rows.append(
            f"| {BUSI_ARMS.get(arm, f'`{arm}`')} | {cells} | {_runtime(report['runtime_s'].get(arm))} |"
        )
    size = "x".join(str(s) for s in report["spatial_size"])
    rows += [
        "",
        f"BUSI {report['task']} on `{report['split']}`, {size}, {report['epochs']} epochs, "
        f"{report['folds']} folds; test set, mean ± sd over the folds. AUC, sensitivity and specificity: "
        f"{report['class_metrics']}. "
        f"M(x): the ABN's own map; Grad-CAM++ at `{report['gradcampp_layer']}`. Runtime: wall time of all "
        "folds, training and evaluation on the validation part and the test set.",
    ]
    differences = report["paired_differences"]
    if differences:
        pairs = list(differences)
        diff_names = [name for name in BUSI_COLUMNS if any(name in differences[p] for p in pairs)]
        labels = [pair.replace("_minus_", " − ") for pair in pairs]
        rows += [
            "",
            f"| metric | {' | '.join(f'{label} | per fold' for label in labels)} |",
            "|---" * (2 * len(pairs) + 1) + "|",
        ]
        for name in diff_names:
            cells = []
            for pair in pairs:
                stats = differences[pair].get(name)
                cells += [_mean_sd(stats, "+"), _per_fold(stats)]
            rows.append(f"| {BUSI_COLUMNS[name]} | {' | '.join(cells)} |")
        rows += [
            "",
            "Paired differences: arm minus reference on the same fold, mean ± sd over the folds, then each "
            "fold's value in fold order.",
        ]
    return "\n".join(rows) + "\n"


def explain_latency(report: dict) -> str:
    """Medians and ratios per ABN architecture against Grad-CAM++ / the plain ResNet, with the targets."""
    settings, medians = report["settings"], report["medians_ms"]
    architectures = settings["architectures"]

    def suffix(architecture: str) -> str:
        return "" if architecture == architectures[0] else f"_{architecture}"

    head = " | ".join(f"`{a}` | ratio" for a in architectures)
    rows = [f"| measurement | baseline | {head} | target |", "|---" * (3 + 2 * len(architectures)) + "|"]
    targets = report["targets"]
    measurements = [
        (f"prediction + map, batch {b} (baseline: Grad-CAM++ on the ResNet)", f"explain_b{b}", "gradcampp",
         f"explain_ratio_b{b}", targets["explain_ratio_max"])
        for b in settings["batch_sizes"]
    ]  # fmt: skip
    batch = settings["train_batch"]
    measurements.append(
        (f"one training step, batch {batch} (baseline: plain ResNet)", f"train_b{batch}", "resnet",
         "train_step_ratio", targets["train_step_ratio_max"])
    )  # fmt: skip
    for label, prefix, reference, ratio, target in measurements:
        cells = []
        for a in architectures:
            value = report[f"{ratio}{suffix(a)}"]
            mark = "**" if value <= target else ""
            cells += [f"{medians[f'{prefix}_{a}']:.1f} ms", f"{mark}{value:.2f}{mark}"]
        rows.append(
            f"| {label} | {medians[f'{prefix}_{reference}']:.1f} ms | {' | '.join(cells)} | ≤ {target} |"
        )
    return "\n".join(rows) + (
        f"\n\n{settings['backbone']}, {settings['size']}x{settings['size']}, {settings['device']}, "
        f"{settings['threads']} threads, {settings['warmup']} warm-up + {settings['repeats']} interleaved "
        f"repeats, medians; load {settings['loadavg_1min_at_start']} at start, "
        f"{settings['loadavg_1min_at_end']} at end. Bold: target met. "
        f"All targets met: {report['all_targets_met']}.\n"
    )


#: Rows of the Deletion/Insertion speed table: contender -> label.
DELETION_INSERTION_ROWS = {
    "loop": "per-image, per-step loop (batch-1 forwards)",
    "loop_optimised": "the loop on the optimised copy",
    "batched_plain": "`deletion_insertion` on the plain network",
    "batched": "**monai_xai: optimised copy + `deletion_insertion`**",
    "forwards_only": "the optimised copy's forward passes alone (ceiling)",
}


def deletion_insertion(report: dict) -> str:
    """Medians of the contenders, then each speed-up and difference against its target."""
    settings, medians = report["settings"], report["median_s"]
    loop = medians["loop"]
    rows = ["| deletion + insertion | median | loop / this |", "|---|---|---|"]
    rows += [
        f"| {label} | {medians[name]:.3f} s | {loop / medians[name]:.2f}x |"
        for name, label in DELETION_INSERTION_ROWS.items()
    ]
    checks = [
        (
            "`speedup`",
            f"{report['speedup']:.2f}x",
            f"≥ {report['target_speedup_of_ceiling']:g} x `speedup_ceiling` {report['speedup_ceiling']:.2f}x "
            f"= {report['target_speedup']:.2f}x",
            report["speedup_met"],
        ),
        ("`max_abs_diff`", f"{report['max_abs_diff']:.1e}", f"≤ {report['target_max_abs_diff']:g}",
         report["agreement_met"]),
    ]  # fmt: skip
    if "quantus_skipped" in report:
        quantus_note = f" Quantus skipped: {report['quantus_skipped']}."
    else:
        ours = medians["batched_deletion_only"]
        rows += ["", "| deletion alone | median | this / monai_xai |", "|---|---|---|"]
        quantus = f"Quantus {report['quantus_version']} `PixelFlipping`"
        for name, label in (
            ("batched_deletion_only", "**monai_xai**"),
            ("quantus", f"{quantus} on the plain network"),
            ("quantus_optimised", f"{quantus} on the optimised copy"),
        ):
            rows.append(f"| {label} | {medians[name]:.3f} s | {medians[name] / ours:.2f}x |")
        checks += [
            ("`speedup_vs_quantus`", f"{report['speedup_vs_quantus']:.2f}x",
             f"≥ {report['target_speedup_vs_quantus']}", report["speedup_vs_quantus_met"]),
            ("`max_abs_diff_vs_quantus`", f"{report['max_abs_diff_vs_quantus']:.1e}",
             f"≤ {report['target_max_abs_diff_vs_quantus']:g}", report["agreement_vs_quantus_met"]),
        ]  # fmt: skip
        quantus_note = ""
    rows += ["", "| figure | value | target | met |", "|---|---|---|---|"]
    rows += [
        f"| {name} | {value} | {target} | {'yes' if met else '**no**'} |"
        for name, value, target, met in checks
    ]
    return "\n".join(rows) + (
        f"\n\n{settings['backbone']}, {settings['images']} images of {settings['size']}x{settings['size']}, "
        f"{settings['steps']} steps, baseline {settings['baseline']}, torch {settings['torch']}, "
        f"{settings['threads']} threads, {settings['warmup']} warm-up + {settings['repeats']} interleaved "
        f"rounds, medians; load {settings['loadavg_1min_at_start']} at start, "
        f"{settings['loadavg_1min_at_end']} at end. All targets met: {report['target_met']}.{quantus_note}\n"
    )


MEDMNIST_METRICS = ("accuracy", "auc", "sensitivity", "specificity")


def medmnist(report: dict) -> str:
    """Test metrics per dataset and arm with their budgets, beside the paper's row."""
    names = {"baseline": "plain ResNet18 (`baseline`)", "plain": "ABN (`plain`)"}
    rows = [
        "| dataset | arm | accuracy | AUC | sensitivity | specificity | epochs, stem | train + test |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for dataset, entry in report["datasets"].items():
        for arm, figures in entry["arms"].items():
            scores = " | ".join(_fmt(figures[name], 3) for name in MEDMNIST_METRICS)
            rows.append(
                f"| {dataset} ({figures['n_test']} test) | {names.get(arm, arm)} | {scores} | "
                f"{figures['epochs']}, `{figures['stem']}` | {figures['seconds']} s |"
            )
        paper = entry.get("paper")
        if paper:
            rows.append(
                f"| {dataset} | {report['reference']} | {_fmt(paper['accuracy'], 3)} | "
                f"{_fmt(paper['auc'], 3)} | | | 100 | |"
            )
    return "\n".join(rows) + "\n"


def detector_throughput(report: dict) -> str:
    """CenterNet and MONAI RetinaNet images/s per batch size and their ratio against the target, then the
    run's settings and load (``scripts/benchmarks/detector_throughput.py --out``)."""
    prefix = "speed_ratio_b"
    batches = sorted(int(key.removeprefix(prefix)) for key in report if key.startswith(prefix))
    target = f"ratio (target ≥ {report['target']:g})"
    rows = [f"| batch | CenterNet images/s | RetinaNet (MONAI) images/s | {target} |", "|---|---|---|---|"]
    for batch in batches:
        rows.append(
            f"| {batch} | {_fmt(report[f'centernet_images_per_s_b{batch}'])} | "
            f"{_fmt(report[f'retinanet_images_per_s_b{batch}'])} | "
            f"{_fmt(report[f'speed_ratio_b{batch}'])}, {_met(report[f'target_met_b{batch}'])} |"
        )
    warmup = f" after {report['warmup']} warm-up rounds" if "warmup" in report else ""
    size = report["size"]
    rows += [
        "",
        f"{size}x{size}, one grey channel, {report['backbone']} backbone for both, freshly initialised; "
        f"{report['repeats']} interleaved rounds{warmup}, medians; device {report['device']} "
        f"({report['cpu']}), {report['threads']} threads; 1-minute load average "
        f"{report['load_average_start']} at start, {report['load_average_end']} at end; "
        f"torch {report['torch']}.",
    ]
    return "\n".join(rows) + "\n"


def _ap(value: float) -> str:
    """An AP as the detection tables write it; -1 (no lesion of that size) is n/a."""
    return "n/a" if value < 0 else _fmt(value, 3)


def _knn_row(label: str, scores: dict) -> str:
    cells = [
        _fmt(scores[part][key], 3) for part in ("val", "test") for key in ("accuracy", "balanced_accuracy")
    ]
    return f"| {label} | {' | '.join(cells)} |"


#: an arm's figures in ``centernet_busi`` results files' ``figures``: kind -> (name, what the caption adds)
CENTERNET_FIGURES = {
    "overlays": (
        "test overlays",
        " at the F1-optimal threshold (truth green, predictions with class and score)",
    ),
    "confusion": ("confusion matrix", ""),
}


def _centernet_figures(report: dict) -> list[str]:
    """The curves, the best arm's test overlays and confusion matrix as images, the other arms' as links;
    nothing when the results file records no figures in the docs (``figures``: a run below full budget)."""
    if "figures" not in report:
        return []
    arms, best = report["arms"], report["targets"]["best_arm"]
    rows = [
        "",
        "SimSiam loss, its collapse monitor `z_std_ratio` and each arm's validation mAP per epoch:",
        "",
        f"![SimSiam and validation curves]({report['figures']['curves']})",
    ]
    label = arms[best]["label"]
    for kind, (words, detail) in CENTERNET_FIGURES.items():
        path = arms[best]["figures"][kind]
        rows += ["", f"{label} (the best AP50), {words}{detail}:", "", f"![{words}, {label}]({path})"]
    others = [
        f"{arm['label']}: "
        + ", ".join(f"[{words}]({arm['figures'][kind]})" for kind, (words, _) in CENTERNET_FIGURES.items())
        for name, arm in arms.items()
        if name != best and "figures" in arm
    ]
    if others:
        rows += ["", f"The other arms' figures: {'; '.join(others)}."]
    return rows


def centernet_busi(report: dict) -> str:
    """Test AP and F1 per detector arm with its training length, the targets, the k-NN probe of the encoders,
    the SimSiam curves in numbers, then the IoU-0.25 confusion matrices and the per-class statistics
    (``scripts/experiments/centernet_busi.sh``)."""
    arms, target, settings = report["arms"], report["targets"], report["settings"]
    rows = [
        "| arm | mAP@[.50:.95] | AP50 | AP75 | AP small | AP medium | AP large | F1 | threshold | "
        "epochs (best) | train + test |",
        "|---" * 11 + "|",
    ]
    for arm in arms.values():
        aps = " | ".join(_ap(arm[k]) for k in ("map", "ap50", "ap75", "ap_small", "ap_medium", "ap_large"))
        epochs = f"{arm.get('epochs_trained', '-')} ({arm.get('best_epoch', '-')})"
        rows.append(
            f"| {arm['label']} | {aps} | {_fmt(arm['f1'], 3)} | {_fmt(arm['f1_threshold'])} | {epochs} | "
            f"{_runtime(arm.get('wall_s'))} |"
        )
    knn = target["knn_test_accuracy"]
    progressive, random_init = target["simsiam_progressive_map"], target["random_init_map"]
    rows += [
        "",
        f"Targets: best arm AP50 ≥ {target['ap50_at_least']:.2f}: {arms[target['best_arm']]['label']}, "
        f"{_fmt(target['best_ap50'], 3)}, {_met(target['ap50_met'])}; SimSiam + progressive unfreezing mAP ≥ "
        f"random init mAP: {_fmt(progressive, 3)} vs {_fmt(random_init, 3)}, "
        f"{_met(target['pretraining_met'])}; SimSiam encoder above a random one in k-NN test accuracy: "
        f"{_fmt(knn['simsiam'], 3)} vs {_fmt(knn['random'], 3)}, {_met(target['knn_met'])}.",
    ]
    probe, simsiam = report["knn_probe"], report["simsiam"]
    majority, n_images = probe["majority_class_rate"], probe["images"]
    rows += [
        "",
        "| encoder (frozen) | val accuracy | val balanced accuracy | test accuracy | test balanced "
        "accuracy |",
        "|---|---|---|---|---|",
        _knn_row(f"SimSiam, {simsiam['epochs']} epochs", probe["encoders"]["simsiam"]),
        _knn_row("random init", probe["encoders"]["random"]),
        f"| majority class of the training images | {_fmt(majority['val'], 3)} | "
        f"{_fmt(1 / len(probe['class_names']), 3)} | {_fmt(majority['test'], 3)} | "
        f"{_fmt(1 / len(probe['class_names']), 3)} |",
        "",
        f"k-NN probe: each validation or test image takes the class ({', '.join(probe['class_names'])}) "
        f"that wins the vote of its {probe['k']} nearest training images (the fold's {n_images['train']}, "
        "those SimSiam pretrained on) by cosine similarity s, each vote weighing exp(s / "
        f"{probe['temperature']:g}), on L2-normalised, globally pooled `layer4` features at "
        f"{probe['spatial_size'][0]}x{probe['spatial_size'][1]}; {n_images['val']} validation, "
        f"{n_images['test']} test images.",
    ]
    loss, ratio = simsiam["train_loss"], simsiam["z_std_ratio"]
    rows += [
        "",
        f"SimSiam: {simsiam['epochs']} epochs at {settings['simsiam_spatial_size']}x"
        f"{settings['simsiam_spatial_size']} on the fold's training images only, loss "
        f"{_fmt(loss['first'], 3)} → {_fmt(loss['last'], 3)} (lowest {_fmt(loss['min'], 3)}; -1 is the "
        f"bound), collapse monitor `z_std_ratio` {_fmt(ratio['first'], 3)} → {_fmt(ratio['last'], 3)} "
        f"(lowest {_fmt(ratio['min'], 3)}; about 1 healthy, 0 collapsed); {_runtime(simsiam.get('wall_s'))}.",
    ]
    for arm in arms.values():
        labels, matrix = arm["confusion_matrix"]["labels"], arm["confusion_matrix"]["matrix"]
        rows += [
            "",
            f"Confusion matrix, {arm['label']} (IoU ≥ {arm['iou_threshold']}, score ≥ "
            f"{_fmt(arm['f1_threshold'])}; rows true, columns predicted)",
            "",
            f"| true \\ predicted | {' | '.join(labels)} |",
            "|---" * (len(labels) + 1) + "|",
        ]
        rows += [f"| {label} | {' | '.join(str(v) for v in row)} |" for label, row in zip(labels, matrix)]
    rows += [
        "",
        "| arm | class | precision | recall | F1 | over-detected | missed | false detections |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for arm in arms.values():
        for name, s in arm["per_class"].items():
            rows.append(
                f"| {arm['label']} | {name} | {_fmt(s['precision'], 3)} | {_fmt(s['recall'], 3)} | "
                f"{_fmt(s['f1'], 3)} | {s['over_detected']} | {s['missed']} | {s['false_detections']} |"
            )
    rows += _centernet_figures(report)
    images, size = report["images"], settings["spatial_size"]
    smoke = f" Smoke run: at most {settings['limit']} images per part." if "limit" in settings else ""
    rows += [
        "",
        f"Split `{report['split']}` (near-duplicates kept in one part), fold {report['fold']}: "
        f"{images['train']} training, {images['val']} validation images; test set {images['test']} images, "
        f"{report['test_lesions']} lesions. Detectors at {size}x{size}, at most {settings['max_epochs']} "
        f"epochs, stopped after {settings['early_stop_patience']} validations without a better validation "
        "mAP; the epoch of the best validation mAP is tested. Progressive unfreezing: one more stage every "
        f"{settings['unfreeze_interval']} epochs, `layer4` first. Train + test: wall time of the arm.{smoke}",
    ]
    return "\n".join(rows) + "\n"


#: Per-direction columns of ``agcyclegan`` before the Grad-CAM++ agreement, by results-file key
#: (``judge_flip_rate`` only in evaluations with a judge classifier: "-" otherwise).
AGCYCLEGAN_FIGURES = (
    "flip_rate",
    "judge_flip_rate",
    "control_flip_rate",
    "uniform_flip_rate",
    "mean_attention",
    "mean_abs_difference",
)

#: the arms of an ``agcyclegan`` results file, in words
AGCYCLEGAN_ARMS = {"agcyclegan": "AG-CycleGAN (study's loss)", "guided": "classifier-guided"}

#: the workflows of an ``agcyclegan`` results file's ``training`` record, in words
AGCYCLEGAN_WORKFLOWS = {
    "classifier": "classifier",
    "judge": "judge",
    "gan": "GAN (study's loss)",
    "gan_guided": "GAN (classifier-guided)",
}

#: what the ``gan_checkpoint`` / ``guided_gan_checkpoint`` settings say about the tested GAN
AGCYCLEGAN_TESTED = {"best": "of the best validation", "latest": "of the last epoch"}

#: the example panels of an ``agcyclegan`` arm: kind -> (column heading, what its translations do, why a
#: panel is missing)
AGCYCLEGAN_PANELS = {
    "best": ("best: flipped, largest change of p(target)", "flipped", "no translation flipped"),
    "worst": ("worst: not flipped, smallest change of p(target)", "not flipped", "every translation flipped"),
}


def _agcyclegan_panel(path: str | None, summary: dict, kind: str, direction: str) -> str:
    """One cell of the panel table: the image and what its translations do to p(target), or why none."""
    _, verb, missing = AGCYCLEGAN_PANELS[kind]
    if path is None:
        return f"- ({missing})"
    before, after = _fmt(summary["prob_target_before"], 2), _fmt(summary["prob_target_after"], 2)
    return f"![{kind}, {direction}]({path})<br>{summary['n']} {verb}: mean p(target) {before} → {after}"


def _agcyclegan_panels(report: dict, directions: dict[str, str]) -> list[str]:
    """The top-level arm's best and worst example panels per direction as images, each with what its
    translations do to the target probability, and the other arms' as links; nothing when the results file
    records no panels in the docs (``docs_panels``: a run below full budget)."""
    arms, top = report["arms"], report["arm"]
    if "docs_panels" not in arms[top]:
        return []
    headings = " | ".join(heading for heading, _, _ in AGCYCLEGAN_PANELS.values())
    rows = [
        "",
        f"Example panels, {AGCYCLEGAN_ARMS[top]} (the top level): each row a test image, its attention A, "
        "translation M(x) and \\|M(x) − x\\|, titled with p(target) before → after.",
        "",
        f"| direction | {headings} |",
        "|---|---|---|",
    ]
    for suffix, direction in directions.items():
        cells = [
            _agcyclegan_panel(
                arms[top]["docs_panels"].get(kind + suffix),
                arms[top]["example_summary"][kind + suffix],
                kind,
                direction,
            )
            for kind in AGCYCLEGAN_PANELS
        ]
        rows.append(f"| {direction} | {' | '.join(cells)} |")
    others = [
        f"[{kind}, {direction}, {AGCYCLEGAN_ARMS[arm]}]({figures['docs_panels'][kind + suffix]})"
        for arm, figures in arms.items()
        if arm != top
        for suffix, direction in directions.items()
        for kind in AGCYCLEGAN_PANELS
        if kind + suffix in figures.get("docs_panels", {})
    ]
    if others:
        rows += ["", f"The other arm's panels: {', '.join(others)}."]
    return rows


def _agcyclegan_training(label: str, record: dict) -> str:
    """``classifier 34 epochs, best `val_loss` 0.212 at epoch 24``: one workflow's ``training`` record."""
    text = label + (f" {record['epochs']} epochs" if "epochs" in record else "")
    if "metric" in record:
        text += f", best `{record['metric']}` {_fmt(record['value'], 3)} at epoch {record['best_epoch']}"
    return text


def _agcyclegan_tested(settings: dict) -> str:
    """`` Tested: the study's GAN of the best validation; ...``, from the checkpoint settings given."""
    tested = [
        f"{label} {AGCYCLEGAN_TESTED[settings[key]]}"
        for key, label in (("gan_checkpoint", "the study's GAN"), ("guided_gan_checkpoint", "the guided GAN"))
        if key in settings
    ]
    return f" Tested: {'; '.join(tested)}." if tested else ""


def _scores_row(label: str, scores: dict) -> str:
    """``| label | accuracy | AUC | sensitivity | specificity |``."""
    return f"| {label} | {' | '.join(_fmt(scores[k], 3) for k in MEDMNIST_METRICS)} |"


def _agcyclegan_interval(value: float | None, interval: dict | None = None, digits: int = 3) -> str:
    """``0.932 [0.903, 0.957]``: a figure with its 95 % interval when the results file has one (``ci95``);
    "-" for a figure that is absent."""
    if value is None:
        return "-"
    text = _fmt(value, digits)
    if interval and "ci95" in interval:
        text += f" [{_fmt(interval['ci95'][0], digits)}, {_fmt(interval['ci95'][1], digits)}]"
    return text


def _agcyclegan_judge_rows(arms: dict, directions: dict[str, str]) -> list[str]:
    """Per direction and arm, the judge's flip rates of the translations and of both controls, and the KID
    of the translations and of the untranslated images to the real images of the target class in the
    judge's features; nothing for results files whose evaluations did not judge the controls."""
    if not any("judge_control_flip_rate_from_0" in figures for figures in arms.values()):
        return []
    rows = [
        "",
        "| direction | arm | judge's flip rate | judge: shuffled maps | judge: uniform maps "
        "| KID to the real target class: translations | KID: untranslated images |",
        "|---" * 7 + "|",
    ]
    rates = ("judge_flip_rate", "judge_control_flip_rate", "judge_uniform_flip_rate")
    for suffix, label in directions.items():
        for arm, figures in arms.items():
            intervals = figures.get("judge_flip_rate_intervals", {})
            cells = [_agcyclegan_interval(figures.get(k + suffix), intervals.get(k + suffix)) for k in rates]
            for kind in ("", "_untranslated"):
                kid = figures.get(f"judge_kid{kind}{suffix}")
                cells.append(_agcyclegan_interval(kid and kid["mean"], kid, 4))
            rows.append(f"| {label} | {AGCYCLEGAN_ARMS[arm]} | {' | '.join(cells)} |")
    return rows


def _agcyclegan_gap_rows(arms: dict, directions: dict[str, str]) -> list[str]:
    """Per direction and arm, the translations' flip rate minus each control's with its paired bootstrap
    interval, by the classifier and by the judge; nothing for results files without them."""
    if not any("control_gaps" in figures for figures in arms.values()):
        return []
    rows = [
        "",
        "| direction | arm | flips judged by | flip rate − shuffled maps | flip rate − uniform maps |",
        "|---|---|---|---|---|",
    ]
    for suffix, label in directions.items():
        for arm, figures in arms.items():
            for prefix, judged_by in (("", "classifier"), ("judge_", "judge")):
                gaps = figures.get(f"{prefix}control_gaps")
                if gaps:
                    cells = [
                        _agcyclegan_interval(gaps[c + suffix]["mean"], gaps[c + suffix])
                        for c in ("control", "uniform")
                    ]
                    rows.append(f"| {label} | {AGCYCLEGAN_ARMS[arm]} | {judged_by} | {' | '.join(cells)} |")
    return rows


def agcyclegan(report: dict) -> str:
    """Per direction and arm (the study's loss, classifier-guided): flip rate of the translations, the same
    translations judged by the judge classifier, the flip rate of their two controls, mean attention and
    change, agreement with Grad-CAM++; where the results file has them, the flip rates' 95 % intervals, the
    judge's flip rates of the controls and the KID of the translations in its features, and the paired
    intervals of translation minus control; which arm is the top level; then the classifier and the judge
    (with their architectures when recorded) beside the paper's row and the targets
    (``scripts/experiments/agcyclegan_results.py``). Results files without the new keys render as before."""
    classes, targets, arms = report["classes"], report["targets"], report["arms"]
    iou = next(key for key in report["attention_vs_gradcampp"] if key.endswith("pct_iou"))
    top = iou.removeprefix("top").removesuffix("pct_iou")
    rows = [
        "| direction | arm | test images | flip rate | judge's flip rate | control: shuffled maps "
        "| control: uniform maps | mean A | mean \\|M(x) − x\\| | corr(A, Grad-CAM++) "
        f"| top-{top} % IoU (A, Grad-CAM++) |",
        "|---" * 11 + "|",
    ]
    directions = {
        "_from_0": f"{classes[0]} → {classes[1]}",
        "_from_1": f"{classes[1]} → {classes[0]}",
        "": "both",
    }
    for suffix, label in directions.items():
        for arm, figures in arms.items():
            agreement = figures[f"attention_vs_gradcampp{suffix}"]
            intervals = {
                **figures.get("flip_rate_intervals", {}),
                **figures.get("judge_flip_rate_intervals", {}),
            }
            cells = [
                _agcyclegan_interval(figures.get(k + suffix), intervals.get(k + suffix))
                for k in AGCYCLEGAN_FIGURES
            ]
            cells += [_agcyclegan_interval(agreement[key]) for key in ("correlation", iou)]
            text = " | ".join(cells)
            rows.append(f"| {label} | {AGCYCLEGAN_ARMS[arm]} | {figures[f'n_images{suffix}']} | {text} |")
    both_ways = {k: v for k, v in directions.items() if k}
    rows += _agcyclegan_judge_rows(arms, both_ways) + _agcyclegan_gap_rows(arms, both_ways)
    rows += [
        "",
        f"Top level of the results file, and the targets below: {AGCYCLEGAN_ARMS[report['arm']]}, the arm "
        "whose weaker direction flipped more on the validation set.",
    ]
    clf, judge, reference = report["classifier"], report.get("judge"), report["reference"]
    rows += [
        "",
        "| classifier | accuracy | AUC | sensitivity | specificity |",
        "|---|---|---|---|---|",
        _scores_row(
            "this run's classifier" + (f" ({clf['architecture']})" if "architecture" in clf else ""), clf
        ),
    ]
    judged_by = "the classifier trained again with another seed"  # the judge of results files before its own
    if judge:
        if "architecture" in judge:
            judged_by = f"a {judge['architecture']} trained apart on the training split"
            rows.append(_scores_row(f"judge ({judge['architecture']}, trained apart)", judge))
        else:
            rows.append(_scores_row("judge (the same training, seed 1)", judge))
    if reference:
        rows.append(
            f"| {reference['model']} | {_fmt(reference['accuracy'], 3)} | {_fmt(reference['auc'], 3)} | | |"
        )
    paired = " (paired 95 % interval of the difference above 0)" if "control_gaps" in report else ""
    checks = [
        (f"classifier accuracy ≥ {targets['classifier_accuracy_at_least']} and AUC ≥ "
         f"{targets['classifier_auc_at_least']}", targets["classifier_met"]),
        (f"flip rate ≥ {targets['flip_rate_at_least']} both ways", targets["flip_rate_met"]),
        ("both controls flip less than the translations, each direction" + paired, targets["controls_met"]),
        (f"judge's flip rate ≥ {targets['flip_rate_at_least']} both ways",
         targets.get("judge_flip_rate_met")),
        ("both controls flip the judge less than the translations, each direction" + paired,
         targets.get("judge_controls_met")),
    ]  # fmt: skip
    rows += ["", "| target | |", "|---|---|"]
    rows += [f"| {label} | {_met(met)} |" for label, met in checks if met is not None]
    masks = {arm: figures["mask_agreement"] for arm, figures in arms.items() if "mask_agreement" in figures}
    if masks:
        rows += [
            "",
            "| map vs expert masks | energy inside mask | pointing game | IoU | MSE | images |",
            "|---|---|---|---|---|---|",
        ]
        maps = [
            (f"attention A, {AGCYCLEGAN_ARMS[arm]}", mask.get("attention")) for arm, mask in masks.items()
        ]
        maps.append(("Grad-CAM++", next(iter(masks.values())).get("gradcampp")))  # one classifier for all
        for label, scores in maps:
            if scores:
                keys = ("energy_inside_mask", "pointing_game", "map_iou", "map_mse")
                cells = " | ".join(_fmt(scores[k], 3) for k in keys)
                rows.append(f"| {label} | {cells} | {scores['num_evaluated']} |")
    rows += [
        "",
        "Controls: each translation G(x) let through another test image's attention map (seeded shuffle "
        "over its batch and the one before) or a uniform map of the same mean instead of its own A(x); they "
        "flip less when A picks the region that matters. Flip rate: share of translations the frozen "
        "classifier assigns to the target class; judge's flip rate: the same for the judge, "
        f"{judged_by}, which neither GAN saw (a flip that fools only the explained "
        "classifier is adversarial, not an explanation); mean \\|M(x) − x\\| in the classifier's [0, 1] "
        "input range. Classifier-guided: the study's loss plus the classifier's cross-entropy of each "
        "translation against its target class.",
    ]
    notes = []
    if "control_gaps" in report:
        notes.append(
            "In brackets: 95 % bootstrap intervals over the test images; a control counts as flipping less "
            "only when the paired interval (the same resampled images for both) of the translations' flip "
            "rate minus the control's lies above 0."
        )
    if any("judge_kid_from_0" in figures for figures in arms.values()):
        notes.append(
            "KID: kernel inception distance (unbiased MMD², cubic polynomial kernel) in the judge's "
            "penultimate features between the translations (or the untranslated images) of a direction and "
            "the real test images of its target class, with the interval of the same estimate on random "
            "halves of both sets; translations that look like the target class to the judge lie below the "
            "untranslated images."
        )
    if notes:
        rows += ["", " ".join(notes)]
    rows += _agcyclegan_panels(report, both_ways)
    trained = [
        _agcyclegan_training(label, report["training"][workflow])
        for workflow, label in AGCYCLEGAN_WORKFLOWS.items()
        if workflow in report.get("training", {})
    ]
    settings = report.get("settings", {})
    if trained:
        rows += ["", f"Trained: {'; '.join(trained)}.{_agcyclegan_tested(settings)}"]
    if settings:
        rows += ["", "Settings: " + ", ".join(f"{k} {v}" for k, v in settings.items()) + "."]
    if report.get("wall_time"):
        rows += ["", "Wall time: " + "; ".join(report["wall_time"]) + "."]
    return "\n".join(rows) + "\n"


#: a renderer and the results file it reads for a README
Renderer = tuple[Callable[..., str], Callable[[Path], Path]]


def _bundle_results(renderer: Callable[[dict], str], name: str) -> Renderer:
    """A block rendered from the README's own bundle's ``docs/results/<name>.json``."""
    return (
        lambda report, bundle: renderer(report),
        lambda readme: readme.parent / "results" / f"{name}.json",
    )


#: block name -> (renderer(report, bundle), the results file it reads for a README)
RENDERERS: dict[str, Renderer] = {
    "train_throughput": (lambda report, bundle: train_throughput(report), lambda readme: THROUGHPUT),
    "fast_path_speedups": (fast_path_speedups, lambda readme: THROUGHPUT),
    "precision_busi": _bundle_results(precision_busi, "precision_busi"),
    "busi_binary": _bundle_results(busi_crossval, "busi_binary"),
    "busi_3class": _bundle_results(busi_crossval, "busi_3class"),
    "busi_binary_decisions": _bundle_results(busi_decisions, "busi_binary_decisions"),
    "medmnist": _bundle_results(medmnist, "medmnist"),
    "explain_latency": _bundle_results(explain_latency, "explain_latency"),
    "demo_shortcut": _bundle_results(demo_shortcut, "demo_shortcut"),
    "imbalanced_demo": _bundle_results(imbalanced_demo, "imbalanced_demo"),
    "demo_correction": _bundle_results(demo_correction, "demo_correction"),
    "busi_active_learning": _bundle_results(busi_active_learning, "busi_active_learning"),
    "busi_maps": _bundle_results(busi_maps, "busi_maps"),
    "retinamnist": _bundle_results(retinamnist, "retinamnist"),
    "deletion_insertion": _bundle_results(deletion_insertion, "deletion_insertion"),
    "agcyclegan_pneumoniamnist": _bundle_results(agcyclegan, "pneumoniamnist"),
    "agcyclegan_adrenalmnist3d": _bundle_results(agcyclegan, "adrenalmnist3d"),
    "agcyclegan_busi": _bundle_results(agcyclegan, "busi"),
    "centernet_busi": _bundle_results(centernet_busi, "busi"),
    "detector_throughput": _bundle_results(detector_throughput, "detector_throughput"),
}


def render(readme: Path) -> str:
    """``readme``'s text with every results block regenerated from its bundle's ``docs/results``."""
    text = readme.read_text()

    def replace(match: re.Match) -> str:
        name = match["name"]
        if name not in RENDERERS:
            raise SystemExit(
                f"{readme}: no renderer for results block {name!r} (known: {', '.join(RENDERERS)})"
            )
        renderer, source_of = RENDERERS[name]
        source = source_of(readme)
        if not source.is_file():
            raise SystemExit(f"{readme}: results block {name!r} needs {source}, which does not exist")
        table = renderer(json.loads(source.read_text()), readme.parent.parent.name)
        missing = [link for link in LINK.findall(table) if not (readme.parent / link).is_file()]
        if missing:
            raise SystemExit(
                f"{source}: results block {name!r} links {', '.join(missing)}, missing beside {readme}"
            )
        return match.group(1) + table + match.group(4)

    return BLOCK.sub(replace, text)


def _rounded(figures: dict) -> dict:
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in figures.items()}


#: the per-arm figures of an ``agcyclegan`` results file that its bundle metadata restates
AGCYCLEGAN_EVAL_KEYS = (
    "flip_rate_from_0",
    "flip_rate_from_1",
    "judge_flip_rate_from_0",
    "judge_flip_rate_from_1",
    "control_flip_rate_from_0",
    "control_flip_rate_from_1",
    "uniform_flip_rate_from_0",
    "uniform_flip_rate_from_1",
    "mean_attention",
    "mean_abs_difference",
)


def agcyclegan_eval_metrics(report: dict) -> dict[str, dict]:
    task = report["task"]
    return {
        f"{task}_test_{arm}": _rounded(
            {
                "run": f"docs/results/{task}.json, arm '{arm}': "
                "bash scripts/experiments/agcyclegan_explain.sh (full budget); "
                f"{report['label']} at {report['settings']['spatial_size']} px, "
                f"{report['n_images']} test images",
                "classifier_accuracy": report["classifier"]["accuracy"],
                "classifier_auc": report["classifier"]["auc"],
                **{key: figures[key] for key in AGCYCLEGAN_EVAL_KEYS},
            }
        )
        for arm, figures in report["arms"].items()
    }


def centernet_eval_metrics(report: dict) -> dict[str, dict]:
    size = report["settings"]["spatial_size"]
    return {
        f"busi_leakfree_{size}px_test_{arm}": _rounded(
            {
                "run": f"docs/results/busi.json, arm '{arm}': bash scripts/experiments/centernet_busi.sh; "
                f"leak-free split ({report['split']}) fold {report['fold']}, "
                f"{report['images']['test']} test images, {size} px",
                **{key: figures[key] for key in ("map", "ap50", "ap75", "f1")},
            }
        )
        for arm, figures in report["arms"].items()
    }


def active_learning_eval_metrics(report: dict) -> dict[str, dict]:
    strategies = report["strategies"]
    at_30 = {
        f"{name}_30_percent_{measure}": by_fraction["0.3"][measure]["mean"]
        for name, by_fraction in strategies.items()
        for measure in ("map_mse", "accuracy")
    }
    every_map = next(iter(strategies.values()))["1.0"]["map_mse"]["mean"]
    settings = report["settings"]
    return {
        "busi_leakfree_active_learning_test": _rounded(
            {
                "run": "docs/results/busi_active_learning.json: bash scripts/experiments/multiscale_busi.sh; "
                f"leak-free split, {settings['spatial_size']} px, {settings['backbone']}, "
                f"{report['seeds']} seeds "
                "(mean), fine-tuning on 30 % of the training images' corrected maps (lesion masks)",
                **at_30,
                "every_map_map_mse": every_map,
                "before_map_mse": report["before"]["map_mse"]["mean"],
            }
        )
    }


#: bundle -> (results file in its docs/results, the eval_metrics entries derived from it)
EVAL_METRICS: dict[str, list[tuple[str, Callable[[dict], dict[str, dict]]]]] = {
    "agcyclegan_explainer": [
        (f"{task}.json", agcyclegan_eval_metrics) for task in ("pneumoniamnist", "adrenalmnist3d", "busi")
    ],
    "centernet_detection": [("busi.json", centernet_eval_metrics)],
    "multiscale_abn_correction": [("busi_active_learning.json", active_learning_eval_metrics)],
}


def render_metadata(metadata: Path) -> str:
    """``metadata``'s text with the ``eval_metrics`` entries of ``EVAL_METRICS`` derived from the results."""
    text = metadata.read_text()
    derived = EVAL_METRICS.get(metadata.parent.parent.name)
    if not derived:
        return text
    meta = json.loads(text)
    for name, eval_metrics in derived:
        meta["eval_metrics"].update(
            eval_metrics(json.loads((metadata.parent.parent / "docs" / "results" / name).read_text()))
        )
    return json.dumps(meta, indent=4, ensure_ascii=False) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--check", action="store_true", help="report out-of-date READMEs instead of writing")
    args = parser.parse_args(argv)
    stale = []
    targets = [(readme, render) for readme in sorted(REPO.glob("bundles/*/docs/README.md"))]
    targets += [(meta, render_metadata) for meta in sorted(REPO.glob("bundles/*/configs/metadata.json"))]
    for path, renderer in targets:
        new = renderer(path)
        if new != path.read_text():
            stale.append(path)
            if not args.check:
                path.write_text(new)
    for path in stale:
        print(f"{'out of date' if args.check else 'updated'}: {path.relative_to(REPO)}")
    return 1 if stale and args.check else 0


if __name__ == "__main__":
    sys.exit(main())
