"""HEI-MED exudates: the multi-scale ABN and expert correction in their own modality, fundus photographs.

The multi-scale ABN study argues for maps at three depths because exudates are small and scattered: a map at
input/16 cannot outline a 10-pixel lesion. HEI-MED (``configs/datasets/heimed_exudates.json``; 169 fundus
photographs, 54 with an exudate mask) tests that where it should show. Four arms, each trained by the bundle
configs on every fold of the out-of-fold split (``configs/datasets/heimed_splits_oof.json``: 5 stratified test
folds covering every image once, each fold with its own validation part for early stopping):

* ``baseline``: ResNet18, explained by Grad-CAM++ and Grad-CAM at the deepest stage whose grid is at least
  16x16 (:func:`cam_layer`);
* ``abn``: ABN with dynamic α (masks supervise the map), map at input/16;
* ``abn_gated``: the gated ABN, dynamic α, map at input/4;
* ``multiscale``: the multi-scale ABN (maps at input/4, /8, /16 averaged), trained as the bundle trains it
  (``--multiscale_map_weights``, default 0: no L_map, as in the study, so that correction adds the masks).

Every image is tested once, by the model that never saw it, and the five folds' test predictions are pooled:
exudate-presence AUC and accuracy (argmax) over all 169 images with stratified bootstrap 95 % intervals; for
the 54 images with exudates each map's pointing game, energy inside the mask and lesion hit rate (the share of
exudate regions the map's top 5 % touches, :func:`~monai_xai.metrics.lesion_hit_rate`), with bootstrap
intervals; Deletion/Insertion of each map over every test image (the folds' ``faithfulness_per_image.csv``),
with bootstrap intervals. Comparisons are paired image by
image (:data:`COMPARISONS`); the study's claim (:data:`CLAIM`) and the AUC target (:data:`AUC_TARGET`,
declared before any test figure is read) are judged only by their intervals.

Expert correction, the masks standing for the expert: each fold's multi-scale model is fine-tuned by the
bundle's sweep (``monai_xai.active_learning.sweep``, reused through :func:`~.busi_active_learning.sweep_step`)
on the corrected maps of 10, 20, 30, 50 and 100 % of its training images chosen by lowest confidence, largest
map error and random, the branches only (as in the study) and the whole network, once per seed of the
selection and fine-tuning (at least 3); each fine-tune is tested on its fold's held-out images, so the pooled
figures are again out of fold. Per mode, strategy and fraction: map measures and AUC pooled over the seeds
(:func:`~monai_xai.metrics.pooled_bootstrap_ci`), their change against the model before correction (paired
per image, then pooled over the seeds), and largest map error minus random (paired, same seed).

Usage (``run`` resumes: finished steps are skipped, a killed training resumes from its last epoch; one driver
per folder at a time; ``--publish`` only at the issue's budget; figures with ``--figures``)::

    mkdir -p runs/experiments && nohup python -m monai_xai.experiments fundus_exudates run --size 384 \\
        --publish --figures >> runs/experiments/fundus_exudates.log 2>&1 &
    # smoke test of the whole chain (tiny images, one epoch, 8 images per split; results stay in the runs):
    python -m monai_xai.experiments fundus_exudates run --size 64 --max_epochs 1 --ft_epochs 1 --seeds 0 \\
        --fractions 0.5 --modes branches --steps 4 --runs runs/experiments/fundus_smoke \\
        --out runs/experiments/fundus_smoke/heimed.json --figures --limit 8
    python -m monai_xai.experiments fundus_exudates collect --runs runs/experiments/fundus_exudates-384px \\
        --out heimed.json [--figures]

Runtime: one epoch per size is measured by :mod:`.heimed_resolution`, which also estimates this experiment's
total from it; the resolution is chosen there.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from monai_xai.errors import InputError

from .busi_active_learning import sweep_step
from .busi_maps import ABN_CONFIGS, CONFIGS, correction_records_step, train_eval_steps
from .results import (
    REPO,
    add_output_arguments,
    bundle_results,
    finite,
    fmt_ci,
    output_path,
    parse_study_args,
    refuse_short_publish,
    study_parser,
    verdict,
    vs_zero,
    write_results,
)
from .runner import Step, StepRunner, wall_time

__all__ = [
    "ARMS",
    "AUC_TARGET",
    "BLOCKS",
    "CLAIM",
    "CLAIM_FRACTION",
    "CLAIM_STRATEGY",
    "COMPARISONS",
    "Arm",
    "Evaluation",
    "arm_overrides",
    "arm_steps",
    "below_budget",
    "cam_layer",
    "collect",
    "correction_figure",
    "correction_step",
    "explain_fold",
    "main",
    "maps_figure",
    "read_evaluation",
    "render",
    "run",
]

BUNDLE = "multiscale_abn_correction"
PUBLISHED = f"bundles/{BUNDLE}/docs/results/heimed.json"
FIGURES = f"bundles/{BUNDLE}/docs/figures"
DATASET = REPO / "configs" / "datasets" / "heimed_exudates.json"
#: one driver at a time in a study folder
LOCK = "fundus_exudates"
N_BOOT = 2000
#: per-image map measures of ``attention_per_image.csv`` reported for the images with exudates -> words
MEASURES = {
    "pointing_game": "pointing game",
    "energy_inside_mask": "energy inside mask",
    "lesion_hit_rate": "lesion hit rate (top 5 %)",
}
#: Deletion/Insertion AUC of ``faithfulness_per_image.csv`` -> column heading
FAITHFULNESS = {"deletion_auc": "Deletion ↓", "insertion_auc": "Insertion ↑"}
METHOD_LABELS = {"attention": "M(x)", "gradcampp": "Grad-CAM++", "gradcam": "Grad-CAM"}
STRATEGIES = ("lowest_confidence", "largest_map_error", "random")
FRACTIONS = (0.1, 0.2, 0.3, 0.5, 1.0)
#: fine-tuning modes -> the bundle overrides that make them
MODES: dict[str, dict[str, Any]] = {"branches": {}, "whole": {"freeze_features": False}}
MODE_LABELS = {"branches": "branches only, features frozen (the study)", "whole": "whole network"}
#: the correction claim is read at fractions up to this one
CLAIM_FRACTION = 0.3
#: the correction claim's strategy, declared before the test is read: the study's (the largest map error)
CLAIM_STRATEGY = "largest_map_error"
#: exudate-presence AUC declared in advance for the ``multiscale`` arm: met only when the interval clears it
AUC_TARGET = 0.90
PAPER = (
    "Giancardo et al. (MedIA 2012) report AUC 0.88-0.94 for exudate-based macular-edema diagnosis across "
    "HEI-MED, MESSIDOR and DIARETDB1 and their feature sets (colour, wavelet, lesion probability), at a "
    "level they call comparable to two retina experts (abstract; HEI-MED's own row is in the paper's tables)"
)
#: paired comparisons: name -> ((arm, method), (reference arm, method)), each arm minus reference per image
COMPARISONS: dict[str, tuple[tuple[str, str], tuple[str, str]]] = {
    "multiscale_minus_abn": (("multiscale", "attention"), ("abn", "attention")),
    "multiscale_minus_abn_gated": (("multiscale", "attention"), ("abn_gated", "attention")),
    "multiscale_minus_gradcampp": (("multiscale", "attention"), ("baseline", "gradcampp")),
    "abn_gated_minus_abn": (("abn_gated", "attention"), ("abn", "attention")),
}
#: the study's claim, declared before any test figure: the multi-scale maps touch more exudate regions than
#: the single-scale ABN's and than Grad-CAM++ (both paired intervals above 0), without a lower AUC (neither
#: paired AUC interval below 0)
CLAIM = {
    "metric": "lesion_hit_rate",
    "comparisons": ("multiscale_minus_abn", "multiscale_minus_gradcampp"),
    "guard": "auc",
    "study": "maps at three depths find small, scattered lesions that a map at input/16 cannot outline",
}
#: the issue's budget (``--publish`` is refused below it)
FULL_SEEDS, MIN_SIZE = 3, 256
DRIVER = "python -m monai_xai.experiments fundus_exudates run (it resumes)"
SWEEP_DIR = re.compile(r"(?P<mode>[a-z]+)_fold(?P<fold>\d+)_seed(?P<seed>\d+)")


@dataclass(frozen=True)
class Arm:
    """One arm: its row label, whether it is the multi-scale bundle's network, its bundle overrides and the
    evaluation methods whose maps are scored (``attention`` = the network's own map)."""

    label: str
    multiscale: bool
    overrides: Mapping[str, Any]
    methods: tuple[str, ...]

    def configs(self, dataset: Path) -> list[Path]:
        """The training configs, merged in order, with the dataset fragment last."""
        return [ABN_CONFIGS / "train.json", *([CONFIGS / "train.json"] if self.multiscale else []), dataset]

    def eval_configs(self) -> list[Path]:
        """Configs merged after the ABN bundle's ``evaluate.json``."""
        return [CONFIGS / "evaluate.json"] if self.multiscale else []


_DYNAMIC = {"mode": "dynamic", "alpha_schedule": "step", "alpha_high": 0.9, "alpha_low": 0.1}
ARMS: dict[str, Arm] = {
    "baseline": Arm(
        "ResNet18",
        False,
        {"mode": "baseline", "saliency_baselines": ["gradcampp", "gradcam"],
         "faithfulness_methods": ["gradcampp", "gradcam"]},
        ("gradcampp", "gradcam"),
    ),
    "abn": Arm(
        "ABN, dynamic α, map at input/16",
        False,
        {**_DYNAMIC, "architecture": "abn", "saliency_baselines": [], "faithfulness_methods": ["attention"]},
        ("attention",),
    ),
    "abn_gated": Arm(
        "gated ABN, dynamic α, map at input/4",
        False,
        {**_DYNAMIC, "architecture": "abn_gated", "saliency_baselines": [],
         "faithfulness_methods": ["attention"]},
        ("attention",),
    ),
    "multiscale": Arm("multi-scale ABN, maps at input/4, /8, /16", True, {}, ("attention",)),
}  # fmt: skip


def cam_layer(size: int) -> str:
    """The deepest ResNet stage whose grid is at least 16x16 at ``size`` px (stem stride 4, stages /4 to /32),
    as :class:`~monai_xai.visualize.CAMSaliency` names it: ``layer3`` at 256-511 px, ``layer4`` from 512."""
    for stage, stride in (("layer4", 32), ("layer3", 16), ("layer2", 8)):
        if size // stride >= 16:
            return f"network.{stage}"
    return "network.layer1"


def arm_overrides(arm: str, size: int, multiscale_map_weights: float = 0.0) -> dict[str, Any]:
    """The bundle overrides that make ``arm`` at ``size`` px (the baseline's CAM layer depends on it)."""
    overrides = dict(ARMS[arm].overrides)
    if arm == "baseline":
        overrides["cam_layer"] = cam_layer(size)
    if ARMS[arm].multiscale:
        overrides["map_weights"] = float(multiscale_map_weights)
    return overrides


# ---------------------------------------------------------------------------------------------- steps


def study_folder(args: argparse.Namespace) -> Path:
    """``--runs``, or ``runs/experiments/fundus_exudates-<size>px``."""
    runs = args.runs or REPO / "runs" / "experiments" / f"fundus_exudates-{args.size}px"
    return Path(runs).resolve()


def _common(args: argparse.Namespace, extra: Mapping[str, Any], runs: Path) -> dict[str, Any]:
    """What every bundle run of the study shares: size, backbone, batch, Deletion/Insertion steps, store."""
    return {
        "spatial_size": [args.size, args.size],
        "backbone": args.backbone,
        "batch_size": args.batch_size,
        "faithfulness_steps": args.steps,
        "tracking_uri": f"sqlite:///{runs / 'mlruns.db'}",
        **extra,
    }


def arm_steps(
    runs: Path, arm: str, fold: int, args: argparse.Namespace, extra: Mapping[str, Any]
) -> list[Step]:
    """Train ``arm`` on ``fold`` and test it on the fold's held-out images (``<runs>/<arm>/fold<k>``); for the
    multi-scale arm also collect the correction records of its training images (what the strategies rank)."""
    spec = ARMS[arm]
    run_dir = runs / arm / f"fold{fold}"
    overrides = {
        "output_dir": run_dir,
        **arm_overrides(arm, args.size, args.multiscale_map_weights),
        "max_epochs": args.max_epochs,
        "early_stop_patience": args.patience,
        "seed": args.seed,
        **_common(args, extra, runs),
        "fold": fold,
    }
    configs = spec.configs(args.dataset)
    steps = train_eval_steps(f"{arm}/fold{fold}", run_dir, configs, spec.eval_configs(), overrides)
    if spec.multiscale:
        steps.append(correction_records_step(f"{arm}/fold{fold}", run_dir, configs, overrides))
    return steps


def correction_step(
    runs: Path, mode: str, fold: int, seed: int, args: argparse.Namespace, extra: Mapping[str, Any]
) -> tuple[Path, Path, Step]:
    """The sweep of fold ``fold``'s multi-scale model in ``mode``, selection and fine-tuning seed ``seed``:
    its folder ``<runs>/correction/<mode>_fold<k>_seed<s>``, the model it starts from and the runner step."""
    pretrained = runs / "multiscale" / f"fold{fold}"
    sweep = runs / "correction" / f"{mode}_fold{fold}_seed{seed}"
    plan = argparse.Namespace(
        backbone=args.backbone,
        size=args.size,
        ft_epochs=args.ft_epochs,
        map_weights=args.map_weights,
        ft_learning_rate=args.ft_learning_rate,
        dataset=args.dataset,
        fractions=args.fractions,
    )
    step_extra = {"fold": fold, "batch_size": args.batch_size, **MODES[mode], **extra}
    return sweep, pretrained, sweep_step(sweep, pretrained, seed, plan, step_extra, runs)


def link_pretrained(sweep: Path, pretrained: Path) -> None:
    """``sweep/{pretrained,checkpoints,correction}`` made links into the model the sweep fine-tunes, which is
    where the bundle's fine-tuning config looks for its checkpoint and correction records."""
    targets = {"pretrained": pretrained, "checkpoints": pretrained / "checkpoints"}
    targets["correction"] = pretrained / "correction"
    sweep.mkdir(parents=True, exist_ok=True)
    for name, target in targets.items():
        link, target = sweep / name, target.resolve()
        if link.is_symlink() and Path(os.readlink(link)) == target:
            continue
        if link.is_symlink():
            link.unlink()
        elif link.exists():
            raise InputError(link, f"not a link: move it aside, so that it can point to {target}")
        link.symlink_to(target, target_is_directory=True)


def run(args: argparse.Namespace, extra: Mapping[str, Any]) -> dict:
    """Train and test every arm on every fold, then sweep the corrections (resumable), then collect."""
    runs = study_folder(args)
    names: set[str] = set()
    folds = range(args.folds)
    with StepRunner(runs, LOCK) as runner:
        for arm in args.arms:  # arm-major: an interrupted run leaves whole arms
            for fold in folds:
                for step in arm_steps(runs, arm, fold, args, extra):
                    runner.run(step)
                    names.add(step.name)
        if "multiscale" in args.arms:
            for mode in args.modes:
                for seed in args.seeds:
                    for fold in folds:
                        sweep, pretrained, step = correction_step(runs, mode, fold, seed, args, extra)
                        link_pretrained(sweep, pretrained)
                        runner.run(step)
                        names.add(step.name)
    report = collect(runs, args.arms, budget(args))
    report["wall_time"] = wall_time(runs, names.__contains__)
    return report


#: the training budget, which no run file records: option -> its name in the results file's settings
BUDGET = {
    "max_epochs": "max_epochs",
    "patience": "patience",
    "batch_size": "batch_size",
    "multiscale_map_weights": "multiscale_map_weights",
    "ft_epochs": "ft_epochs",
    "map_weights": "map_weights",
    "ft_learning_rate": "ft_learning_rate",
    "steps": "deletion_insertion_steps",
}


def budget(args: argparse.Namespace) -> dict[str, Any]:
    """The training budget ``args`` gives (unset options left out), as the results file records it."""
    return {
        name: getattr(args, option)
        for option, name in BUDGET.items()
        if getattr(args, option, None) is not None
    }


def below_budget(args: argparse.Namespace, extra: Mapping[str, Any]) -> list[str]:
    """Why a run is below the issue's budget: empty at the budget."""
    short = []
    if args.size < MIN_SIZE:
        short.append(f"size {args.size} < {MIN_SIZE}")
    if args.patience <= 0:
        short.append("no early stopping (--patience 0)")
    if set(args.arms) != set(ARMS):
        short.append(f"arms {sorted(args.arms)}, not {sorted(ARMS)}")
    if args.folds != 5:
        short.append(f"{args.folds} folds, not 5")
    if len(args.seeds) < FULL_SEEDS:
        short.append(f"seeds {len(args.seeds)} < {FULL_SEEDS}")
    if not set(FRACTIONS) <= {float(f) for f in args.fractions}:
        short.append(f"fractions {args.fractions} lack some of {list(FRACTIONS)}")
    if set(args.modes) != set(MODES):
        short.append(f"modes {args.modes}, not {list(MODES)}")
    if args.dataset.resolve() != DATASET.resolve():
        short.append(f"dataset {args.dataset}, not {DATASET.relative_to(REPO)}")
    if extra:
        short.append(f"bundle overrides {dict(extra)}")
    return short


# -------------------------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class Evaluation:
    """One test evaluation (or several folds' pooled): per image its label, positive-class probability and
    argmax prediction; per map method and measure (agreement with the masks, Deletion/Insertion AUC) the
    finite per-image values."""

    labels: dict[str, int]
    probs: dict[str, float]
    preds: dict[str, int]
    maps: dict[str, dict[str, dict[str, float]]]  # method -> measure -> source -> value

    @property
    def sources(self) -> list[str]:
        return sorted(self.labels)


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def read_evaluation(eval_dir: Path) -> Evaluation:
    """An evaluation folder's ``predictions.csv`` (required), ``attention_per_image.csv`` and
    ``faithfulness_per_image.csv``; an error names what is missing."""
    predictions = eval_dir / "predictions.csv"
    if not predictions.is_file():
        raise InputError(predictions, f"missing: run {DRIVER}")
    rows = [row for row in _rows(predictions) if int(row["label"]) >= 0]
    prob_columns = [c for c in (rows[0] if rows else {}) if c.startswith("prob_")]
    if len(prob_columns) != 2:
        raise InputError(predictions, f"expected two class probabilities, found columns {prob_columns}")
    labels = {row["source"]: int(row["label"]) for row in rows}
    probs = {row["source"]: float(row[prob_columns[1]]) for row in rows}
    preds = {row["source"]: int(row["pred"]) for row in rows}
    faithfulness = eval_dir / "faithfulness_per_image.csv"
    if not faithfulness.is_file() and (eval_dir / "faithfulness.json").is_file():
        raise InputError(
            faithfulness, "missing: an evaluation from before per-image Deletion/Insertion, re-run it"
        )
    maps: dict[str, dict[str, dict[str, float]]] = {}
    sources = ((eval_dir / "attention_per_image.csv", MEASURES), (faithfulness, FAITHFULNESS))
    for per_image, measures in sources:
        for row in _rows(per_image) if per_image.is_file() else []:
            for measure in measures:
                value = float(row.get(measure) or "nan")
                if math.isfinite(value):
                    maps.setdefault(row["method"], {}).setdefault(measure, {})[row["source"]] = value
    return Evaluation(labels, probs, preds, maps)


def pool(evaluations: Sequence[Evaluation], where: str) -> Evaluation:
    """The folds' evaluations as one: every image must be tested by one fold only."""
    labels: dict[str, int] = {}
    for evaluation in evaluations:
        twice = set(labels) & set(evaluation.labels)
        if twice:
            raise InputError(where, f"{len(twice)} images are tested by two folds, e.g. {sorted(twice)[0]}")
        labels.update(evaluation.labels)
    maps: dict[str, dict[str, dict[str, float]]] = {}
    for evaluation in evaluations:
        for method, measures in evaluation.maps.items():
            for measure, values in measures.items():
                maps.setdefault(method, {}).setdefault(measure, {}).update(values)
    return Evaluation(
        labels,
        {s: p for e in evaluations for s, p in e.probs.items()},
        {s: p for e in evaluations for s, p in e.preds.items()},
        maps,
    )


def _fold_dirs(folder: Path, what: str) -> list[Path]:
    """``folder/fold0 ..`` in order, at least two and none missing; an error names what is absent."""
    found = (
        {int(p.name[4:]): p for p in folder.glob("fold*") if p.name[4:].isdigit()} if folder.is_dir() else {}
    )
    if len(found) < 2 or sorted(found) != list(range(len(found))):
        raise InputError(folder, f"{what}: folds {sorted(found)} found, expected 0..k (k >= 1): run {DRIVER}")
    return [found[k] for k in sorted(found)]


def read_arm(runs: Path, arm: str) -> tuple[Evaluation, list[float | None]]:
    """The arm's test evaluations of every fold pooled, and each fold's own AUC."""
    from monai_xai.metrics.uncertainty import auc

    folds = [read_evaluation(d / "eval_test") for d in _fold_dirs(runs / arm, arm)]
    per_fold = []
    for evaluation in folds:
        y = np.array([evaluation.labels[s] for s in evaluation.sources])
        p = np.array([evaluation.probs[s] for s in evaluation.sources])
        per_fold.append(auc(y, p))
    return pool(folds, str(runs / arm)), per_fold


# ------------------------------------------------------------------------------------------- figures of merit


def _interval(interval: Any) -> dict:
    return finite(interval.to_dict())


def _arrays(evaluation: Evaluation, sources: Sequence[str] | None = None) -> tuple[np.ndarray, ...]:
    """Labels, positive-class probabilities and argmax predictions over ``sources`` (default: all)."""
    sources = evaluation.sources if sources is None else sources
    return (
        np.array([evaluation.labels[s] for s in sources]),
        np.array([evaluation.probs[s] for s in sources]),
        np.array([evaluation.preds[s] for s in sources]),
    )


def _paired(a: Mapping[str, float], b: Mapping[str, float]) -> tuple[np.ndarray, np.ndarray]:
    common = sorted(set(a) & set(b))
    return np.array([a[s] for s in common]), np.array([b[s] for s in common])


def arm_figures(evaluation: Evaluation, methods: Sequence[str], fold_auc: Sequence[float | None]) -> dict:
    """AUC and accuracy over every image, and per map method its measures over the images with exudates
    (bootstrap 95 % intervals) and its Deletion/Insertion."""
    from monai_xai.metrics.uncertainty import accuracy, auc, bootstrap_ci, mean_of

    y, p, pred = _arrays(evaluation)
    options = {"n_boot": N_BOOT, "seed": 0}
    figures: dict[str, Any] = {
        "images": len(y),
        "positives": int(y.sum()),
        "auc": _interval(bootstrap_ci(auc, y, p, stratify=0, **options)),
        "accuracy": _interval(bootstrap_ci(accuracy, y, pred, stratify=0, **options)),
        "fold_auc": finite([None if v is None else float(v) for v in fold_auc]),
        "maps": {},
    }
    for method in methods:
        scores: dict[str, Any] = {}
        for measure in (*MEASURES, *FAITHFULNESS):
            values = evaluation.maps.get(method, {}).get(measure, {})
            if values:
                scores[measure] = _interval(bootstrap_ci(mean_of, np.array(list(values.values())), **options))
        figures["maps"][method] = scores
    return figures


def paired_figures(a: Evaluation, method_a: str, b: Evaluation, method_b: str) -> dict:
    """Arm a minus arm b on the same images: AUC and accuracy over every image, each map measure over the
    images with exudates; paired bootstrap 95 % intervals, each with where it lies against 0."""
    from monai_xai.metrics.uncertainty import accuracy, auc, mean_of, paired_bootstrap_diff

    options = {"n_boot": N_BOOT, "seed": 0}
    common = sorted(set(a.labels) & set(b.labels))
    ya, pa, da = _arrays(a, common)
    _, pb, db = _arrays(b, common)
    found = {
        "auc": paired_bootstrap_diff(auc, (ya, pa), (ya, pb), stratify=0, **options),
        "accuracy": paired_bootstrap_diff(accuracy, (ya, da), (ya, db), stratify=0, **options),
    }
    for measure in MEASURES:
        values_a = a.maps.get(method_a, {}).get(measure, {})
        values_b = b.maps.get(method_b, {}).get(measure, {})
        va, vb = _paired(values_a, values_b)
        if va.size:
            found[measure] = paired_bootstrap_diff(mean_of, (va,), (vb,), **options)
    return {name: {**_interval(iv), "vs_zero": vs_zero(_interval(iv))} for name, iv in found.items()}


def claim_verdict(differences: Mapping[str, Mapping]) -> str:
    """:data:`CLAIM`'s verdict from the paired differences: "met" when every compared map touches more
    regions (interval above 0) and no AUC interval lies below 0; "missed" when one of them lies wrong."""
    found = [differences.get(name) for name in CLAIM["comparisons"]]
    if any(f is None or CLAIM["metric"] not in f or CLAIM["guard"] not in f for f in found):
        return "not run"
    measures = [verdict(f[CLAIM["metric"]], 0.0) for f in found]
    guards = [verdict(f[CLAIM["guard"]], 0.0) for f in found]
    if "missed" in measures or "missed" in guards:
        return "missed"
    if all(v == "met" for v in measures):
        return "met"
    return "not distinguishable at this n"


# ------------------------------------------------------------------------------------------- correction


@cache
def _finetune_eval(strategy: str, fraction: float, mode: str) -> Path:
    """Where the bundle configs put a fine-tune's test evaluation, relative to its sweep folder."""
    from .demo_correction import finetune_eval_dir

    root = Path("/sweep")
    return finetune_eval_dir(root, strategy, fraction, MODES[mode]).relative_to(root)


def sweep_folders(runs: Path) -> dict[str, dict[int, dict[int, Path]]]:
    """``<runs>/correction/<mode>_fold<k>_seed<s>`` by mode, seed and fold."""
    found: dict[str, dict[int, dict[int, Path]]] = {}
    folder = runs / "correction"
    for path in sorted(folder.iterdir()) if folder.is_dir() else []:
        match = SWEEP_DIR.fullmatch(path.name)
        if match and match["mode"] in MODES:
            found.setdefault(match["mode"], {}).setdefault(int(match["seed"]), {})[int(match["fold"])] = path
    return found


def _combinations(sweep: Path) -> list[tuple[str, float]]:
    path = sweep / "sweep" / "sweep.json"
    if not path.is_file():
        raise InputError(path, f"missing: the sweep has not finished; run {DRIVER}")
    return [(row["strategy"], float(row["fraction"])) for row in json.loads(path.read_text())]


def _seed_evaluations(
    mode: str, by_seed: Mapping[int, Mapping[int, Path]], n_folds: int
) -> tuple[list[int], list[tuple[str, float]], dict[tuple[str, float], list[Evaluation]]]:
    """Per (strategy, fraction), each seed's fine-tunes pooled over the folds; every seed and fold must have
    swept the same combinations."""
    seeds = sorted(by_seed)
    combos: list[tuple[str, float]] | None = None
    for seed in seeds:
        folds = by_seed[seed]
        if sorted(folds) != list(range(n_folds)):
            raise InputError(
                None, f"correction {mode}, seed {seed}: folds {sorted(folds)} of {n_folds}: run {DRIVER}"
            )
        for fold in range(n_folds):
            found = _combinations(folds[fold])
            if combos is None:
                combos = found
            elif sorted(found) != sorted(combos):
                raise InputError(
                    folds[fold], f"swept {sorted(found)}, other sweeps {sorted(combos)}: not one study"
                )
    combos = combos or []
    evaluations = {
        combo: [
            pool(
                [read_evaluation(by_seed[s][k] / _finetune_eval(*combo, mode)) for k in range(n_folds)], mode
            )
            for s in seeds
        ]
        for combo in combos
    }
    return seeds, combos, evaluations


def _auc_change(y: np.ndarray, after: np.ndarray, before: np.ndarray) -> float:
    from monai_xai.metrics.uncertainty import auc

    return auc(y, after) - auc(y, before)


def _pooled(metric: Callable[..., float], runs: Sequence[tuple], stratify: int | None = None) -> dict:
    from monai_xai.metrics.uncertainty import pooled_bootstrap_ci

    runs = [r for r in runs if len(r[0])]
    if not runs:
        return {"mean": None}
    found = pooled_bootstrap_ci(metric, runs, n_boot=N_BOOT, stratify=stratify, seed=0)
    return finite({**found.to_dict(), "seeds": list(found.run_estimates)})


def correction_figures(after: Sequence[Evaluation], before: Evaluation) -> dict:
    """One (strategy, fraction) over its seeds: AUC, accuracy and the map measures pooled (95 % intervals
    over seeds and images), and each one's change against the model before correction, paired per image."""
    from monai_xai.metrics.uncertainty import accuracy, auc, mean_of

    figures: dict[str, Any] = {}
    runs = [_arrays(e) for e in after]
    figures["auc"] = _pooled(auc, [(y, p) for y, p, _ in runs], stratify=0)
    figures["accuracy"] = _pooled(accuracy, [(y, d) for y, _, d in runs], stratify=0)
    change: dict[str, Any] = {}
    auc_runs = []
    for evaluation in after:
        common = sorted(set(evaluation.labels) & set(before.labels))
        y, p, _ = _arrays(evaluation, common)
        auc_runs.append((y, p, _arrays(before, common)[1]))
    change["auc"] = _pooled(_auc_change, auc_runs, stratify=0)
    for measure in MEASURES:
        values = [e.maps.get("attention", {}).get(measure, {}) for e in after]
        figures[measure] = _pooled(mean_of, [(np.array(list(v.values())),) for v in values])
        reference = before.maps.get("attention", {}).get(measure, {})
        diffs = [np.subtract(*_paired(v, reference)) for v in values]
        change[measure] = _pooled(mean_of, [(d,) for d in diffs])
    for stats in change.values():
        if stats.get("ci95"):
            stats["vs_zero"] = vs_zero(stats)
    figures["change"] = change
    return figures


def strategy_difference(a: Sequence[Evaluation], b: Sequence[Evaluation]) -> dict:
    """Strategy a minus b at one fraction, paired per image within each seed, pooled over the seeds."""
    from monai_xai.metrics.uncertainty import mean_of

    found: dict[str, Any] = {}
    for measure in MEASURES:
        diffs = []
        for ea, eb in zip(a, b):
            va, vb = _paired(
                ea.maps.get("attention", {}).get(measure, {}), eb.maps.get("attention", {}).get(measure, {})
            )
            diffs.append((va - vb,))
        found[measure] = _pooled(mean_of, diffs)
    runs = []
    for ea, eb in zip(a, b):
        common = sorted(set(ea.labels) & set(eb.labels))
        y, pa, _ = _arrays(ea, common)
        runs.append((y, pa, _arrays(eb, common)[1]))
    found["auc"] = _pooled(_auc_change, runs, stratify=0)
    for stats in found.values():
        if stats.get("ci95"):
            stats["vs_zero"] = vs_zero(stats)
    return found


def correction_claim(strategies: Mapping[str, Mapping[str, dict]]) -> dict:
    """Per map measure: the change of the one declared cell, :data:`CLAIM_STRATEGY` at :data:`CLAIM_FRACTION`
    of the maps, against the model before correction, and its verdict against zero. Fixed before the test is
    read; every other strategy and fraction is reported, never picked."""
    cell = strategies.get(CLAIM_STRATEGY, {}).get(str(CLAIM_FRACTION), {})
    found = {}
    for measure in MEASURES:
        stats = cell.get("change", {}).get(measure)
        if not stats or stats.get("mean") is None:
            found[measure] = {"verdict": "not run"}
            continue
        found[measure] = {
            "strategy": CLAIM_STRATEGY,
            "fraction": CLAIM_FRACTION,
            "change": stats,
            "verdict": verdict(stats, 0.0),
        }
    return found


def collect_correction(runs: Path, before: Evaluation, n_folds: int) -> dict:
    """Every mode's sweeps under ``runs``: per strategy and fraction the pooled figures and changes, largest
    map error minus random, and the correction claim."""
    found = {}
    for mode, by_seed in sweep_folders(runs).items():
        seeds, combos, evaluations = _seed_evaluations(mode, by_seed, n_folds)
        strategies: dict[str, dict[str, dict]] = {}
        for strategy, fraction in combos:
            figures = correction_figures(evaluations[(strategy, fraction)], before)
            strategies.setdefault(strategy, {})[str(fraction)] = figures
        versus = {
            str(fraction): strategy_difference(
                evaluations[("largest_map_error", fraction)], evaluations[("random", fraction)]
            )
            for strategy, fraction in combos
            if strategy == "largest_map_error" and ("random", fraction) in evaluations
        }
        found[mode] = {
            "label": MODE_LABELS.get(mode, mode),
            "seeds": seeds,
            "fractions": sorted({f for _, f in combos}),
            "strategies": strategies,
            "map_error_minus_random": versus,
            "claim": correction_claim(strategies),
        }
    return found


# ---------------------------------------------------------------------------------------------- collect


def _settings(runs: Path, arm: str) -> dict[str, Any]:
    """Dataset, split, image size and backbone from the arm's fold-0 ``run.json``, where recorded."""
    path = runs / arm / "fold0" / "run.json"
    identity = json.loads(path.read_text()).get("identity", {}) if path.is_file() else {}
    data, network = identity.get("data", {}), identity.get("network", {})
    settings: dict[str, Any] = {}
    if "dataset" in data:
        settings["dataset"] = data["dataset"]
    split = data.get("datalist_args", {}).get("split_file")
    if split:
        settings["split"] = split["file"] if isinstance(split, Mapping) else split
    if network.get("spatial_size"):
        settings["spatial_size"] = network["spatial_size"][0]
    if "backbone" in network:
        settings["backbone"] = network["backbone"]
    return settings


def collect(runs: Path, arms: Sequence[str] = tuple(ARMS), settings: Mapping[str, Any] | None = None) -> dict:
    """The results file from the finished runs under ``runs``: every arm's pooled out-of-fold figures, the
    paired comparisons, the AUC target and the claim, and the correction sweeps found there."""
    runs = Path(runs)
    evaluations, fold_auc = {}, {}
    for arm in arms:
        evaluations[arm], fold_auc[arm] = read_arm(runs, arm)
    first = evaluations[arms[0]]
    for arm in arms[1:]:
        if set(evaluations[arm].labels) != set(first.labels):
            raise InputError(runs / arm, f"tests other images than {arms[0]}: not the same split")
    n_folds = len(fold_auc[arms[0]])
    report: dict[str, Any] = {
        "dataset": "HEI-MED (heimed_768), exudate vs no exudate",
        "images": len(first.labels),
        "positives": int(sum(first.labels.values())),
        "folds": n_folds,
        "interval": "stratified bootstrap over the pooled out-of-fold images, 95 %",
        "settings": {**_settings(runs, arms[0]), **dict(settings or {})},
        "arms": {
            arm: {"label": ARMS[arm].label, **arm_figures(evaluations[arm], ARMS[arm].methods, fold_auc[arm])}
            for arm in arms
        },
    }
    report["settings"].setdefault("cam_layer", cam_layer(int(report["settings"].get("spatial_size", 256))))
    report["paired"] = {
        name: paired_figures(evaluations[a], ma, evaluations[b], mb)
        for name, ((a, ma), (b, mb)) in COMPARISONS.items()
        if a in evaluations and b in evaluations
    }
    target = report["arms"].get("multiscale", {}).get("auc")
    report["target"] = {
        "arm": "multiscale",
        "metric": "auc",
        "target": AUC_TARGET,
        "figure": target,
        "verdict": verdict(target, AUC_TARGET) if target else "not run",
        "paper": PAPER,
    }
    report["claim"] = {**CLAIM, "comparisons": list(CLAIM["comparisons"])}
    report["claim"]["verdict"] = claim_verdict(report["paired"])
    if "multiscale" in evaluations:
        report["correction"] = collect_correction(runs, evaluations["multiscale"], n_folds)
    return finite(report)


# ---------------------------------------------------------------------------------------------- figures


def correction_figure(mode_report: Mapping[str, Any], before: Mapping[str, Any], title: str):
    """One panel per map measure and AUC: per strategy the pooled mean over the seeds against the corrected
    fraction with its 95 % band; dashed: the model before correction."""
    from monai_xai.utils import pyplot

    plt = pyplot()
    panels = {**MEASURES, "auc": "AUC (exudate presence)"}
    fig, axes = plt.subplots(1, len(panels), figsize=(3.8 * len(panels), 3.2), squeeze=False)
    for ax, (metric, words) in zip(axes[0], panels.items()):
        for i, (strategy, by_fraction) in enumerate(mode_report["strategies"].items()):
            points = sorted(
                (float(f), figures[metric]["mean"], figures[metric].get("ci95"))
                for f, figures in by_fraction.items()
                if figures.get(metric, {}).get("mean") is not None
            )
            if not points:
                continue
            ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", color=f"C{i}", label=strategy)
            banded = [p for p in points if p[2]]
            ax.fill_between([p[0] for p in banded], [p[2][0] for p in banded], [p[2][1] for p in banded],
                            color=f"C{i}", alpha=0.2)  # fmt: skip
        reference = before.get(metric, {}).get("mean")
        if reference is not None:
            ax.axhline(reference, color="grey", linestyle="--", label="before correction")
        ax.set_xlabel("fraction of training maps corrected")
        ax.set_title(words, fontsize=9)
        ax.legend(fontsize=6)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def _eval_overrides(runs: Path, arm: str, fold: int, settings: Mapping[str, Any], extra: Mapping) -> dict:
    """The overrides that rebuild fold ``fold`` of ``arm`` as it was trained, for its test images."""
    size = int(settings["spatial_size"])
    return {
        **arm_overrides(arm, size, settings.get("multiscale_map_weights", 0.0)),
        "spatial_size": [size, size],
        "backbone": settings.get("backbone", "resnet18"),
        "output_dir": str(runs / arm / f"fold{fold}"),
        "tracking_uri": f"sqlite:///{runs / 'mlruns.db'}",
        **dict(extra),
        "fold": fold,
        "eval_split": "test",
        "num_workers": 0,
    }


def explain_fold(
    runs: Path,
    fold: int,
    arms: Sequence[str],
    settings: Mapping[str, Any],
    dataset: Path = DATASET,
    extra: Mapping[str, Any] | None = None,
) -> tuple[list[str], list, list, dict[str, list]]:
    """Fold ``fold``'s test images with exudates: their names, images, masks and every arm's maps (one column
    per arm and method), from the trained checkpoints; inference only."""
    import torch
    from monai.bundle import ConfigParser

    from monai_xai.utils import batch_strings

    sources: list[str] = []
    images: list = []
    masks: list = []
    columns: dict[str, list] = {}
    for arm in arms:
        spec = ARMS[arm]
        parser = ConfigParser()
        files = [*spec.configs(dataset), ABN_CONFIGS / "evaluate.json", *spec.eval_configs()]
        parser.read_config([str(f) for f in files])
        parser.update(_eval_overrides(runs, arm, fold, settings, extra or {}))
        model = parser.get_parsed_content("model")
        parser.get_parsed_content("load_weights")
        model.eval()
        saliency = parser.get_parsed_content("saliency_fns")
        device = parser.get_parsed_content("device")
        found: dict[str, list] = {method: [] for method in spec.methods}
        names: list[str] = []
        for batch in parser.get_parsed_content("evaluate#dataloader"):
            keep = torch.as_tensor(batch["label"]).view(-1) == 1
            if not bool(keep.any()):
                continue
            x = batch["image"]
            x = (x.as_tensor() if hasattr(x, "as_tensor") else x)[keep].to(device)
            for method in spec.methods:
                if method == "attention":
                    with torch.no_grad():
                        found[method] += list(model(x).attention_map.float().cpu())
                else:
                    found[method] += list(saliency[method](x).float().cpu())
            batch_sources = batch_strings(batch, "source", len(keep))
            names += [Path(s).name for s, k in zip(batch_sources, keep.tolist()) if k]
            if not columns:  # the first arm's images and masks, shown in the first column
                images += list(x.cpu())
                masks += list(torch.as_tensor(batch["mask"])[keep].cpu())
        if columns and names != sources:
            raise InputError(runs / arm, f"fold {fold} tests other images with exudates than {arms[0]}")
        sources = names
        for method, maps in found.items():
            columns[f"{arm}: {METHOD_LABELS[method]}"] = maps
    return sources, images, masks, columns


def maps_figure(sources: Sequence[str], images: Sequence, masks: Sequence, columns: Mapping[str, Sequence]):
    """A row per image with exudates: the input, its exudate mask, then each arm's map (every panel with the
    exudates outlined)."""
    from monai_xai.visualize import explanation_grid_figure

    shown = {"exudate mask": list(masks), **columns}
    return explanation_grid_figure(images, shown, masks, row_titles=list(sources))


def draw_figures(
    report: Mapping, runs: Path, folder: Path, dataset: Path, extra: Mapping[str, Any]
) -> list[Path]:
    """The correction curves of each mode and a maps figure per fold, into ``folder``."""
    from monai_xai.visualize import save_figure

    written = []
    before = report["arms"].get("multiscale", {})
    before_maps = {**before.get("maps", {}).get("attention", {}), "auc": before.get("auc", {})}
    for mode, mode_report in report.get("correction", {}).items():
        title = f"HEI-MED, {mode_report['label']}: {len(mode_report['seeds'])} seeds, pooled out-of-fold"
        path = folder / f"heimed_correction_{mode}.png"
        written.append(save_figure(correction_figure(mode_report, before_maps, title), path))
    arms = [arm for arm in ARMS if arm in report["arms"]]
    for fold in range(report["folds"]):
        parts = explain_fold(runs, fold, arms, report["settings"], dataset, extra)
        if parts[0]:
            written.append(save_figure(maps_figure(*parts), folder / f"heimed_maps_fold{fold}.png"))
    return written


# ---------------------------------------------------------------------------------------------- main


def _add_budget_arguments(parser: argparse.ArgumentParser, defaults: bool) -> None:
    def default(value: Any) -> Any:
        return value if defaults else None

    parser.add_argument("--max_epochs", type=int, default=default(60), help="at most this many epochs")
    parser.add_argument("--patience", type=int, default=default(10), help="epochs without a better val AUC")
    parser.add_argument(
        "--batch_size", type=int, default=default(16), help="training batch (108 images a fold)"
    )
    parser.add_argument(
        "--multiscale_map_weights",
        type=float,
        default=default(0.0),
        help="L_map weight of the multi-scale arm's training (0: as the bundle and the study; correction "
        "adds it)",
    )
    parser.add_argument("--ft_epochs", type=int, default=default(15), help="fine-tuning epochs")
    parser.add_argument(
        "--map_weights", type=float, default=default(10.0), help="L_map weight while fine-tuning"
    )
    parser.add_argument(
        "--ft_learning_rate", type=float, default=default(0.001), help="fine-tuning learning rate"
    )
    parser.add_argument("--steps", type=int, default=default(20), help="Deletion/Insertion steps")


def main(argv: Sequence[str] | None = None) -> int:
    parser, commands = study_parser("fundus_exudates", __doc__)
    run_parser = commands.add_parser(
        "run",
        help="train and test every arm on every fold, sweep the corrections (resumable), then collect; extra "
        "--key value pairs override config ids of every bundle run",
    )
    run_parser.add_argument(
        "--runs", type=Path, help="the study's folder (default runs/experiments/fundus_exudates-<size>px)"
    )
    run_parser.add_argument(
        "--size", type=int, required=True, help="image size the networks see (heimed_resolution)"
    )
    run_parser.add_argument("--arms", nargs="+", default=list(ARMS), choices=list(ARMS))
    run_parser.add_argument("--folds", type=int, default=5, help="the split file's folds (all of them)")
    run_parser.add_argument("--seed", type=int, default=0, help="the arms' training seed")
    run_parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="correction seeds")
    run_parser.add_argument("--fractions", type=float, nargs="+", default=list(FRACTIONS))
    run_parser.add_argument("--modes", nargs="+", default=list(MODES), choices=list(MODES))
    run_parser.add_argument("--backbone", default="resnet18")
    run_parser.add_argument("--dataset", type=Path, default=DATASET, help="the dataset fragment")
    _add_budget_arguments(run_parser, defaults=True)
    collect_parser = commands.add_parser("collect", help="collect finished runs into the results file")
    collect_parser.add_argument("--runs", type=Path, required=True, help="the study's folder")
    collect_parser.add_argument("--arms", nargs="+", default=list(ARMS), choices=list(ARMS))
    collect_parser.add_argument(
        "--dataset", type=Path, default=DATASET, help="the dataset fragment (figures)"
    )
    _add_budget_arguments(collect_parser, defaults=False)
    for sub in (run_parser, collect_parser):
        sub.add_argument(
            "--figures",
            nargs="?",
            const="default",
            help="draw the correction curves and a maps figure per fold into this folder (default: "
            f"{FIGURES} with --publish, else beside the results file)",
        )
        add_output_arguments(sub, published=PUBLISHED)
    args, extra = parse_study_args(parser, argv)
    destination = output_path(args, PUBLISHED)
    if args.command == "run":
        refuse_short_publish(args.publish, below_budget(args, extra))
        report = run(args, extra)
        runs = study_folder(args)
    else:
        runs = args.runs.resolve()
        report = collect(runs, args.arms, budget(args))
    write_results(report, destination, publish=args.publish)
    print(
        f"written {destination}; target: {report['target']['verdict']}; claim: {report['claim']['verdict']}"
    )
    if args.figures:
        folder = Path(args.figures) if args.figures != "default" else (
            REPO / FIGURES if args.publish else destination.parent
        )  # fmt: skip
        if not args.publish and folder.resolve() == (REPO / FIGURES).resolve():
            raise InputError(folder, "the docs' figures are drawn only with --publish")
        for path in draw_figures(report, runs, folder, args.dataset, extra):
            print(f"written {path}")
    return 0


# -------------------------------------------------------------------------------------------- renderer


def _cell(stats: Mapping | None, digits: int = 3) -> str:
    return fmt_ci(stats, digits) if stats else "–"


def _difference(stats: Mapping | None) -> str:
    if not stats or stats.get("mean") is None:
        return "–"
    if not stats.get("ci95"):
        return f"{stats['mean']:+.3f}"
    low, high = stats["ci95"]
    return f"{stats['mean']:+.3f} [{low:+.3f}, {high:+.3f}] ({vs_zero(stats)})"


def _percent(fraction: float | str) -> str:
    return f"{float(fraction) * 100:g} %"


def render(report: dict) -> str:
    """The arms' pooled out-of-fold figures, the paired comparisons with the claim and the AUC target beside
    the paper's figure, and per fine-tuning mode the correction tables; no arm or strategy is marked best."""
    heads = ["AUC", "accuracy", *MEASURES.values(), *FAITHFULNESS.values()]
    rows = [f"| arm | map | {' | '.join(heads)} |", "|---" * (len(heads) + 2) + "|"]
    for figures in report["arms"].values():
        for method, scores in figures["maps"].items():
            cells = [_cell(figures.get("auc")), _cell(figures.get("accuracy"))]
            cells += [_cell(scores.get(m)) for m in MEASURES] + [_cell(scores.get(k)) for k in FAITHFULNESS]
            rows.append(f"| {figures['label']} | {METHOD_LABELS.get(method, method)} | {' | '.join(cells)} |")
    settings = report.get("settings", {})
    size = settings.get("spatial_size", "?")
    rows += [
        "",
        f"HEI-MED, {report['images']} fundus photographs ({report['positives']} with exudates), "
        f"{report['folds']} out-of-fold test folds pooled (`{settings.get('split', '?')}`), "
        f"{size}x{size} px; brackets: bootstrap 95 % intervals over the pooled images (AUC and accuracy "
        "stratified by label; map measures over the images with exudates; Deletion/Insertion over every test "
        "image). Grad-CAM at "
        f"`{settings.get('cam_layer', '?')}`. One training run per fold.",
    ]
    if report.get("paired"):
        names = list(report["paired"])
        measures = ["auc", "accuracy", *MEASURES]
        rows += ["", f"| paired difference | {' | '.join(n.replace('_minus_', ' − ') for n in names)} |",
                 "|---" * (len(names) + 1) + "|"]  # fmt: skip
        for measure in measures:
            words = {"auc": "AUC", "accuracy": "accuracy", **MEASURES}[measure]
            rows.append(
                f"| {words} | {' | '.join(_difference(report['paired'][n].get(measure)) for n in names)} |"
            )
    target = report.get("target", {})
    rows += [
        "",
        f"**Target**: `multiscale` AUC ≥ {target.get('target', AUC_TARGET):.2f}: "
        f"{_cell(target.get('figure'))}, **{target.get('verdict', 'not run')}**. {PAPER}.",
    ]
    claim = report.get("claim", {})
    rows += [
        "",
        f"**The study's claim** ({claim.get('study', CLAIM['study'])}): the multi-scale maps' "
        f"{MEASURES['lesion_hit_rate']} above the ABN's and Grad-CAM++'s (paired intervals above 0) "
        f"without a lower AUC: **{claim.get('verdict', 'not run')}**.",
    ]
    for mode, found in report.get("correction", {}).items():
        rows += ["", *_correction_rows(mode, found)]
    wall = report.get("wall_time")
    if wall:
        resumed = " (some resumed: time before them not counted)" if wall.get("resumed") else ""
        rows += ["", f"Wall time of the steps: {wall['seconds'] / 3600:.1f} h{resumed}."]
    return "\n".join(rows) + "\n"


def _correction_rows(mode: str, found: Mapping[str, Any]) -> list[str]:
    fractions = [str(f) for f in found["fractions"]]
    rows = [
        f"Correction, {found['label']}: {len(found['seeds'])} seeds of selection and fine-tuning, each "
        "pooled over the out-of-fold images; 95 % intervals over seeds and images.",
    ]
    for metric, words in (("lesion_hit_rate", MEASURES["lesion_hit_rate"]), ("auc", "AUC")):
        rows += ["", f"| {words}: strategy | {' | '.join(_percent(f) for f in fractions)} |",
                 "|---" * (len(fractions) + 1) + "|"]  # fmt: skip
        for strategy, by_fraction in found["strategies"].items():
            cells = []
            for f in fractions:
                figures = by_fraction.get(f, {})
                change = _difference(figures.get("change", {}).get(metric))
                cells.append(f"{_cell(figures.get(metric))}; change {change}")
            rows.append(f"| `{strategy}` | {' | '.join(cells)} |")
    versus = found.get("map_error_minus_random", {})
    if versus:
        cells = [f"{_percent(f)} {_difference(v.get('lesion_hit_rate'))}" for f, v in versus.items()]
        rows += ["", f"Largest map error minus random, {MEASURES['lesion_hit_rate']}: {'; '.join(cells)}."]
    claims = []
    for measure, claim in found.get("claim", {}).items():
        if "strategy" in claim:
            claims.append(
                f"{MEASURES[measure]}: `{claim['strategy']}` at {_percent(claim['fraction'])}, change "
                f"{_difference(claim['change'])}, **{claim['verdict']}**"
            )
    if claims:
        picked = f"the study's strategy at {_percent(CLAIM_FRACTION)} of the maps, declared before the test"
        rows += ["", f"Correction claim ({picked}): {'; '.join(claims)}."]
    return rows


BLOCKS = {"heimed": bundle_results(BUNDLE, "heimed", render)}
