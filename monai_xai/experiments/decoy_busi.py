"""DecoyBUSI: does attention trained toward the lesion keep a classifier off a planted shortcut on real
images, against a fairly tuned RRR, judged by worst-group accuracy over three seeds?

The data are :mod:`monai_xai.data.decoy`'s copy of leak-free BUSI (benign vs malignant, the committed
near-duplicate-grouped split), a caliper-like cross in the top-left corner agreeing with the label in every
training and validation image and random in the test set, and its clean twin (same images, no marker): every
arm of :data:`ARMS` trains on both (``rrr_label`` on DecoyBUSI only) with the BUSI experiment's recipe
(:data:`~.busi_crossval.ARM_OVERRIDES`, 128 px, 40 epochs, the bundle's fast path), one
``python -m monai_xai.crossval`` run per seed on fold ``seed % 3`` of the split, tested on the fixed test set.

Declared before any DecoyBUSI figure is read:

* **RRR's weight** (:data:`SELECTION`): the magnitude rule of Ross et al.: before training, the probe
  measures on the first :data:`PROBE_BATCHES` training batches of DecoyBUSI, at the seeded initialisation,
  the mean cross-entropy and each penalty's mean; λ is the power of ten nearest their ratio, so that λ times
  the penalty starts at the order of the cross-entropy. Neither the validation nor the test split is read.
  The sweep trains λ times 10^k (:data:`SWEEP_DECADES`) on seed 0 for both penalties and is reported on the
  test set as a curve, for transparency only; the table holds the declared λ.
* **The arms the targets are judged on** (:data:`TARGETS`): ``abn_gated`` (the quickstart's choice) against
  ``rrr``, the summed-log-probability penalty of Ross et al. (the paper's own formulation); ``abn`` (the
  study's 1 + M(x)) and ``rrr_label`` (log p(y|x), the bundle's default penalty) are reported beside them.

Every figure is the arm's on the test set pooled over the seeds with
:func:`~monai_xai.metrics.pooled_bootstrap_ci` (stratified by group: class x marker agrees): AUC, accuracy,
worst-group accuracy and each group's accuracy at the argmax, the share of the arm's own map (Grad-CAM++ at
``layer3`` for the ResNet, the input gradient for RRR, M(x) for an ABN) on the marker over the test images
that carry it (the same images' would-be region on the clean twin), and the pointing game of that map
against the lesion masks. Comparisons are paired image by image within a seed.

Usage (``run`` writes the two copies outside the repository, probes, trains what is missing (resumable,
one driver at a time), then collects; ``--publish`` only at the full budget, then
``python -m monai_xai.experiments render`` once the README has the ``decoy_busi`` block)::

    nohup python -m monai_xai.experiments decoy_busi run --publish --figure >> runs/decoy_busi.log 2>&1 &
    # smoke test: one seed, one epoch, 64 px, 40 images per split, a two-point sweep
    python -m monai_xai.experiments decoy_busi run --seeds 0 --epochs 1 --size 64 --limit 40 \\
        --sweep_decades -1 0 --data /tmp/decoy_busi_smoke --runs runs/smoke/decoy_busi \\
        --out runs/smoke/decoy_busi.json --figure
    python -m monai_xai.experiments decoy_busi collect --runs runs/experiments/decoy_busi-128px-40ep \\
        --out decoy.json

Runtime on the 2-core machine (estimated from the BUSI experiment: about 8 min a fold for the ResNet, 10 for
an ABN, an RRR step costing about three plain ones, so about 20 min): per seed 2 x (8 + 20 + 10 + 10) + 20 =
116 min, so 3 seeds about 5.8 h, and the sweep 8 x 20 min = 2.7 h more: about 8.5 h in all.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from monai_xai.errors import InputError

from .busi_crossval import ARM_OVERRIDES
from .results import (
    REPO,
    add_output_arguments,
    bundle_results,
    finite,
    fmt,
    fmt_ci,
    output_path,
    read_json,
    study_parser,
    verdict,
    write_results,
)
from .shortcut import TestRun, arm_figures, mean_marked, paired_figures, worst_group

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from .runner import Step

__all__ = [
    "ARMS",
    "BLOCKS",
    "DATASETS",
    "PUBLISHED",
    "SELECTION",
    "SWEEP_DECADES",
    "TARGETS",
    "Arm",
    "collect",
    "declared_lambda",
    "main",
    "render",
    "run",
    "steps",
]

BUNDLE = "abn_classification"
CONFIGS = REPO / "bundles" / BUNDLE / "configs"
PUBLISHED = f"bundles/{BUNDLE}/docs/results/decoy_busi.json"
#: a row per shown test image: the input with its marker, then each arm's own map (seed 0, DecoyBUSI)
FIGURE = f"bundles/{BUNDLE}/docs/figures/decoy_busi_explanations.png"
#: the RRR sweep on the test set against λ, the declared λ marked
SWEEP_FIGURE = f"bundles/{BUNDLE}/docs/figures/decoy_busi_rrr_sweep.png"
#: data name -> the dataset fragment it trains with (the folder comes from ``--data``)
DATASETS = {"decoy": "decoy_busi", "clean": "decoy_busi_clean"}
#: where ``run`` writes the two copies by default: beside the checkout, like ``../shared``
DATA = REPO.parent / "decoy_busi"
N_BOOT = 2000
SEEDS = (0, 1, 2)
FULL_BUDGET = {"epochs": 40, "size": 128, "seeds": 3}
PROBE_BATCHES = 8
#: decades around the declared λ that the sweep trains on seed 0 (0 is the declared arm itself)
SWEEP_DECADES = (-2, -1, 0, 1, 2)
SWEEP_SEED = 0
SELECTION = (
    "magnitude rule (Ross et al. 2017): λ = 10^round(log10(CE / P)), with CE the mean cross-entropy and P "
    f"the penalty's mean over the first {PROBE_BATCHES} training batches of DecoyBUSI at the seeded "
    "initialisation, before any training; neither validation nor test is read"
)


@dataclass(frozen=True)
class Arm:
    """One classifier: its bundle overrides, the map it is judged by, and whether it has a clean twin run."""

    description: str
    overrides: Mapping[str, Any]
    #: "attention" (the network's own M(x)) or a saliency method of the evaluation
    explanation: str
    clean: bool = True
    #: RRR arms: the penalty whose declared λ they train with
    penalty: str | None = None
    #: the saliency methods the evaluation computes (its own map among them, unless that is M(x))
    saliency: tuple[str, ...] = ()


_RRR = {"mode": "rrr", "cam_layer": "network.layer3"}
ARMS: dict[str, Arm] = {
    "baseline": Arm(
        "ResNet18, cross-entropy", ARM_OVERRIDES["baseline"], "gradcampp", saliency=("gradcampp",)
    ),
    "rrr": Arm(
        "ResNet18 + RRR, gradient of the summed log-probabilities (Ross et al. 2017), declared λ",
        {**_RRR, "rrr_penalty": "summed"},
        "input_gradient",
        penalty="summed",
        saliency=("input_gradient",),
    ),
    "rrr_label": Arm(
        "ResNet18 + RRR, gradient of log p(y|x) (the bundle's default penalty), declared λ",
        {**_RRR, "rrr_penalty": "label"},
        "input_gradient",
        clean=False,
        penalty="label",
        saliency=("input_gradient",),
    ),
    "abn": Arm(
        "the study's ABN: layer3 features × (1 + M(x)), dynamic α", ARM_OVERRIDES["dynamic"], "attention"
    ),
    "abn_gated": Arm("gated ABN: layer1 features × M(x), dynamic α", ARM_OVERRIDES["abn_gated"], "attention"),
}

#: The targets of the issue, declared before any DecoyBUSI figure is read. ``figure`` is an arm's (or a
#: comparison's) entry; ``target`` None means the flat map's share of the marker region.
TARGETS = (
    {"what": "the baseline takes the shortcut", "arm": "baseline", "figure": "worst_group_accuracy",
     "target": 0.40, "higher_is_better": False},
    {"what": "abn_gated keeps its clean AUC (clean − DecoyBUSI within 0.03)", "arm": "abn_gated",
     "figure": "clean_minus_decoy_auc", "target": 0.03, "higher_is_better": False},
    {"what": "abn_gated worst-group accuracy", "arm": "abn_gated", "figure": "worst_group_accuracy",
     "target": 0.70, "higher_is_better": True},
    {"what": "abn_gated marker energy no more than a flat map's", "arm": "abn_gated",
     "figure": "marker_energy", "target": None, "higher_is_better": False},
    {"what": "abn_gated beats the declared RRR on worst-group accuracy", "comparison": "abn_gated_minus_rrr",
     "figure": "worst_group_accuracy", "target": 0.0, "higher_is_better": True},
)  # fmt: skip
#: (arm, reference): worst-group accuracy and AUC of arm − reference, paired within each seed (DecoyBUSI)
PAIRS = (("abn_gated", "rrr"), ("abn", "rrr"), ("abn_gated", "rrr_label"), ("abn_gated", "baseline"))


def fold_of(seed: int, n_folds: int = 3) -> int:
    """The fold a seed validates on: seed k on fold k, so that the seeds also vary the split."""
    return seed % n_folds


def declared_lambda(cross_entropy: float, penalty: float) -> float:
    """The magnitude rule: the power of ten nearest ``cross_entropy / penalty``."""
    if not (cross_entropy > 0 and penalty > 0) or not math.isfinite(cross_entropy / penalty):
        raise InputError(
            None, f"the magnitude rule needs positive figures, got CE {cross_entropy}, P {penalty}"
        )
    return float(10.0 ** round(math.log10(cross_entropy / penalty)))


def sweep_lambda(declared: float, decade: int) -> float:
    """λ of a sweep point: the declared λ times 10^decade, rounded to one significant digit."""
    return float(f"{declared * 10.0**decade:.0e}")


# ------------------------------------------------------------------------------------------- the steps


def bundle_overrides(
    arm: Arm, args: argparse.Namespace, data: str, seed: int, root: Path, lam: float | None
) -> dict:
    """What one training of ``arm`` on copy ``data`` overrides in the bundle: the BUSI recipe, the copy,
    the arm's own map, and the declared λ for RRR."""
    overrides = {
        **arm.overrides,
        "dataset_dir": str(Path(args.data).resolve() / data),
        "saliency_baselines": list(arm.saliency),
        "max_epochs": args.epochs,
        "spatial_size": [args.size, args.size],
        "seed": seed,
        "calibrate": True,
        "tracking_uri": f"sqlite:///{root.resolve() / 'mlruns.db'}",
    }
    if lam is not None:
        overrides["rrr_lambda"] = lam
    if args.limit:
        overrides["limit"] = args.limit
    return overrides


def _train_step(
    name: str,
    arm: Arm,
    args: argparse.Namespace,
    data: str,
    seed: int,
    run_dir: Path,
    root: Path,
    lam: float | None,
) -> Step:
    from .runner import Step, crossval_argv

    overrides = bundle_overrides(arm, args, data, seed, root, lam)
    fragment = REPO / "configs" / "datasets" / f"{DATASETS[data]}.json"
    argv = crossval_argv(
        [CONFIGS / "train.json", fragment],
        CONFIGS / "evaluate.json",
        run_dir,
        overrides,
        folds=[fold_of(seed)],
    )
    labels = Path(args.data).resolve() / data / "labels.csv"
    return Step(name, argv, run_dir, inputs=[labels])


def data_steps(args: argparse.Namespace) -> list[Step]:
    """The two copies, written by :mod:`monai_xai.data.decoy` (over an earlier copy when redone)."""
    from .runner import Step

    found = []
    for data in DATASETS:
        out = Path(args.data).resolve() / data
        argv = [sys.executable, "-m", "monai_xai.data.decoy", "--out", str(out), "--overwrite"]
        argv += ["--source", str(Path(args.source).resolve()), "--split", str(Path(args.split).resolve())]
        argv += ["--clean"] if data == "clean" else []
        inputs = [Path(args.source).resolve() / "labels.csv", Path(args.split).resolve()]
        found.append(Step(f"data/{data}", argv, out, inputs=inputs))
    return found


def probe_step(args: argparse.Namespace, root: Path) -> Step:
    """The magnitude probe on DecoyBUSI (seconds): what the declared λ of each penalty is computed from."""
    from .runner import Step

    argv = [sys.executable, "-m", "monai_xai.experiments", "decoy_busi", "probe"]
    argv += ["--data", str(Path(args.data).resolve() / "decoy"), "--size", str(args.size)]
    argv += ["--seed", str(SWEEP_SEED), "--batches", str(PROBE_BATCHES), "--out", str(root / "probe")]
    return Step("probe", argv, root / "probe", inputs=[Path(args.data).resolve() / "decoy" / "labels.csv"])


def _lambdas(root: Path) -> dict[str, float]:
    probe = read_json(root / "probe" / "magnitudes.json", "the probe writes it: run `decoy_busi run`")
    return {penalty: float(value) for penalty, value in probe["lambda"].items()}


def steps(args: argparse.Namespace, root: Path, lambdas: Mapping[str, float]) -> list[Step]:
    """Every training of the study after the probe: seed-major (an interrupted run leaves whole seeds), each
    arm on DecoyBUSI then on the clean twin, then the sweep's other points on seed 0."""
    found = []
    for seed in args.seeds:
        for data in DATASETS:
            for name in args.arms:
                arm = ARMS[name]
                if data == "clean" and not arm.clean:
                    continue
                lam = lambdas[arm.penalty] if arm.penalty else None
                run_dir = root / f"seed{seed}" / data / name
                found.append(
                    _train_step(f"seed{seed}/{data}/{name}", arm, args, data, seed, run_dir, root, lam)
                )
    if SWEEP_SEED in args.seeds:
        for name in ("rrr", "rrr_label"):
            if name not in args.arms:
                continue
            arm = ARMS[name]
            for decade in args.sweep_decades:
                if decade == 0:
                    continue  # the declared arm itself
                lam = sweep_lambda(lambdas[arm.penalty], decade)
                run_dir = _sweep_dir(root, arm.penalty, lam)
                step = f"seed{SWEEP_SEED}/decoy/sweep/{arm.penalty}/{run_dir.name}"
                found.append(_train_step(step, arm, args, "decoy", SWEEP_SEED, run_dir, root, lam))
    return found


def _sweep_dir(root: Path, penalty: str, lam: float) -> Path:
    return root / f"seed{SWEEP_SEED}" / "decoy" / "sweep" / penalty / f"lambda_{lam:.0e}"


def run_root(args: argparse.Namespace) -> Path:
    """``<runs>`` as given, else ``runs/experiments/decoy_busi-<size>px-<epochs>ep``."""
    if args.runs is not None:
        return Path(args.runs)
    return REPO / "runs" / "experiments" / f"decoy_busi-{args.size}px-{args.epochs}ep"


def run(args: argparse.Namespace) -> dict:
    """Write both copies, probe, train and evaluate every arm x seed x copy and the sweep, then collect."""
    from .runner import StepRunner

    root = run_root(args)
    with StepRunner(root, "decoy_busi") as runner:
        for step in data_steps(args):
            runner.run(step)
        datasets = {}
        for data in DATASETS:
            settings = Path(args.data).resolve() / data / "decoy.json"
            if settings.is_file():
                datasets[data] = json.loads(settings.read_text())
        write_results(datasets, root / "datasets.json")
        runner.run(probe_step(args, root))
        for step in steps(args, root, _lambdas(root)):
            runner.run(step)
    return collect(root)


# --------------------------------------------------------------------------------------------- the probe


def probe_magnitudes(data: Path, size: int, seed: int, batches: int, out: Path) -> dict:
    """Mean cross-entropy and each RRR penalty over the first ``batches`` training batches at the seeded
    initialisation (the bundle's own pipeline, with augmentation), and the declared λ of each penalty."""
    import torch
    from monai.bundle import ConfigParser

    from monai_xai.losses import RRR_PENALTIES, RightForRightReasonsLoss

    parser = ConfigParser()
    parser.read_config([str(CONFIGS / "train.json"), str(REPO / "configs" / "datasets" / "decoy_busi.json")])
    parser.update(
        {
            "dataset_dir": str(data),
            "spatial_size": [size, size],
            "seed": seed,
            "mode": "rrr",
            "num_workers": 0,
            "output_dir": str(out / "bundle"),
            "device": "cpu",
        }
    )
    parser.get_parsed_content("set_seed")
    network = parser.get_parsed_content("network")
    loader = parser.get_parsed_content("train#dataloader")
    network.train()
    losses = {penalty: RightForRightReasonsLoss(1.0, penalty=penalty) for penalty in RRR_PENALTIES}
    cross_entropy, penalties = [], {penalty: [] for penalty in RRR_PENALTIES}
    for i, batch in enumerate(loader):
        if i >= batches:
            break
        image = batch["image"]
        inputs = (image.as_tensor() if hasattr(image, "as_tensor") else image).detach().requires_grad_(True)
        mask = batch["mask"]
        mask = mask.as_tensor() if hasattr(mask, "as_tensor") else mask
        logits = network(inputs)
        for penalty, loss in losses.items():
            _, parts = loss(
                logits, torch.as_tensor(batch["label"]), mask, batch.get("has_mask"), inputs=inputs
            )
            penalties[penalty].append(parts["loss_rrr"])
        cross_entropy.append(parts["loss_ce"])
    if not cross_entropy:
        raise InputError(data, "no training batch: the probe needs DecoyBUSI's training images")
    ce = float(np.mean(cross_entropy))
    means = {penalty: float(np.mean(values)) for penalty, values in penalties.items()}
    return {
        "rule": SELECTION,
        "batches": len(cross_entropy),
        "seed": seed,
        "size": size,
        "cross_entropy": ce,
        "penalty": means,
        "lambda": {penalty: declared_lambda(ce, value) for penalty, value in means.items()},
    }


# ------------------------------------------------------------------------------------------- reading


def _read_csv(path: Path, hint: str) -> list[dict[str, str]]:
    if not path.is_file():
        raise InputError(path, f"missing: {hint}")
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def _key(source: str) -> str:
    """An image by its class folder and name: the same image in the decoy copy and its clean twin."""
    path = Path(source)
    return f"{path.parent.name}/{path.name}"


def _validation(fold_dir: Path) -> dict:
    path = fold_dir / "eval_val" / "predictions.csv"
    if not path.is_file():
        return {}
    rows = _read_csv(path, "")
    positive = [c for c in rows[0] if c.startswith("prob_")][-1]
    labels = np.array([int(r["label"]) for r in rows])
    p1 = np.clip(np.array([float(r[positive]) for r in rows]), 1e-7, 1 - 1e-7)
    from monai_xai.metrics.uncertainty import auc

    ce = -np.mean(np.where(labels == 1, np.log(p1), np.log(1 - p1)))
    return {"auc": auc(labels, p1), "cross_entropy": float(ce)}


def read_run(arm_dir: Path, explanation: str) -> TestRun:
    """The test evaluation of one crossval run folder (one fold), with the own map ``explanation``'s
    per-image marker energy and pointing game."""
    summary = read_json(arm_dir / "crossval_summary.json", "the arm has not finished here; rerun `run`")
    fold = int(summary["folds"][0])
    fold_dir = arm_dir / f"fold{fold}"
    evaluation = fold_dir / "eval_test"
    hint = "written by the bundle's evaluation (this version); rerun the arm"
    rows = sorted(_read_csv(evaluation / "predictions.csv", hint), key=lambda r: _key(r["source"]))
    keys = tuple(_key(r["source"]) for r in rows)
    positive = [c for c in rows[0] if c.startswith("prob_")][-1]
    markers = {}
    energy = {}
    for row in _read_csv(evaluation / "marker_per_image.csv", hint):
        markers[_key(row["source"])] = row
        if row["method"] == explanation:
            energy[_key(row["source"])] = float(row["marker_energy"] or "nan")
    if not energy:
        raise InputError(
            evaluation / "marker_per_image.csv", f"no marker energy of the arm's map {explanation}"
        )
    pointing = {
        _key(r["source"]): float(r["pointing_game"] or "nan")
        for r in _read_csv(evaluation / "attention_per_image.csv", hint)
        if r["method"] == explanation
    }
    missing = [k for k in keys if k not in markers]
    if missing:
        raise InputError(evaluation, f"{len(missing)} test images without marker rows, e.g. {missing[:2]}")
    identity = read_json(fold_dir / "run.json", hint)["identity"]
    overrides = read_json(fold_dir / "crossval_done.json", hint)["overrides"]
    settings = {
        "dataset": identity["data"]["dataset"],
        "spatial_size": identity["network"]["spatial_size"],
        "backbone": identity["network"]["backbone"],
        "epochs": overrides["max_epochs"],
        "limit": identity["data"].get("limit"),
        "rrr_lambda": overrides.get("rrr_lambda"),
        "rrr_penalty": overrides.get("rrr_penalty"),
    }
    return TestRun(
        seed=int(identity["data"]["seed"]),
        fold=fold,
        keys=keys,
        labels=np.array([int(r["label"]) for r in rows]),
        scores=np.array([float(r[positive]) for r in rows]),
        preds=np.array([int(r["pred"]) for r in rows]),
        agrees=np.array([markers[k]["marker_agrees"] == "1" for k in keys]),
        marked=np.array([markers[k]["marker"] not in ("", "0") for k in keys]),
        energy=np.array([energy.get(k, math.nan) for k in keys]),
        pointing=np.array([pointing.get(k, math.nan) for k in keys]),
        settings=settings,
        validation=_validation(fold_dir),
    )


# ------------------------------------------------------------------------------------------ statistics


def _sweep(root: Path, lambdas: Mapping[str, float]) -> dict:
    """Every sweep point run on seed 0, DecoyBUSI, by penalty and λ: test figures as point estimates (one run
    each), with the validation figures for the record. The declared λ is the arm's own run."""
    from monai_xai.metrics.uncertainty import accuracy, auc

    found: dict[str, list[dict]] = {}
    for name in ("rrr", "rrr_label"):
        arm = ARMS[name]
        declared = root / f"seed{SWEEP_SEED}" / "decoy" / name
        folders = sorted((root / f"seed{SWEEP_SEED}" / "decoy" / "sweep" / arm.penalty).glob("lambda_*"))
        points = []
        for folder in [declared, *folders]:
            if not (folder / "crossval_summary.json").is_file():
                continue
            r = read_run(folder, arm.explanation)
            lam = float(r.settings["rrr_lambda"])
            points.append(
                finite(
                    {
                        "lambda": lam,
                        "decade": round(math.log10(lam / lambdas[arm.penalty])),
                        "declared": folder == declared,
                        "auc": auc(r.labels, r.scores),
                        "accuracy": accuracy(r.labels, r.preds),
                        "worst_group_accuracy": worst_group(r.labels, r.preds, r.agrees),
                        "marker_energy": mean_marked(r.energy, r.marked),
                        "validation": r.validation,
                    }
                )
            )
        if points:
            found[arm.penalty] = sorted(points, key=lambda p: p["lambda"])
    return found


def _check_same(runs: Sequence[TestRun], where: Path) -> dict:
    first = runs[0].settings
    for run_ in runs[1:]:
        for key in ("spatial_size", "backbone", "epochs", "limit"):
            if run_.settings[key] != first[key]:
                raise InputError(where, f"runs differ in {key}: {first[key]!r} vs {run_.settings[key]!r}")
    return first


def collect(root: Path, arms: Sequence[str] | None = None) -> dict:
    """The results file of the run folder ``root``: every arm found (or ``arms``, all required), each on
    DecoyBUSI and under ``clean`` on its twin, the comparisons, the targets' verdicts and the sweep."""
    from .runner import RUNTIME_FILE, wall_time

    root = Path(root)
    probe = read_json(root / "probe" / "magnitudes.json", "the probe writes it: run `decoy_busi run`")
    lambdas = {penalty: float(value) for penalty, value in probe["lambda"].items()}
    seed_dirs = sorted(root.glob("seed*/decoy"))
    names = list(arms) if arms is not None else [n for n in ARMS if any((d / n).is_dir() for d in seed_dirs)]
    if not names:
        raise InputError(root, "no arm has run here (seed<k>/decoy/<arm>/)")
    per_arm: dict[str, dict[str, list[TestRun]]] = {}
    for name in names:
        arm = ARMS[name]
        per_arm[name] = {}
        for data in DATASETS:
            if data == "clean" and not arm.clean:
                continue
            folders = sorted(root.glob(f"seed*/{data}/{name}"))
            runs = [read_run(folder, arm.explanation) for folder in folders]
            if not runs:
                raise InputError(root, f"{name} has no {data} run (seed<k>/{data}/{name}/)")
            per_arm[name][data] = runs
    for by_data in per_arm.values():  # the clean twin is scored on its decoy copy's marked images
        if "clean" in by_data:
            decoy = {r.seed: r for r in by_data["decoy"]}
            by_data["clean"] = [
                replace(r, marked=decoy[r.seed].marked) if r.seed in decoy else r for r in by_data["clean"]
            ]
    all_runs = [r for by_data in per_arm.values() for runs in by_data.values() for r in runs]
    shared = _check_same(all_runs, root)
    seeds = sorted({r.seed for runs in per_arm.values() for r in runs["decoy"]})
    class_names = ("benign", "malignant")
    marker_share = _marker_area_share(root, names)
    report: dict[str, Any] = {
        "experiment": "decoy_busi",
        "task": "benign vs malignant, DecoyBUSI (marker agrees in training and validation, random in test)",
        "spatial_size": shared["spatial_size"],
        "backbone": shared["backbone"],
        "epochs": shared["epochs"],
        "limit": shared["limit"],
        "seeds": seeds,
        "folds": {str(r.seed): r.fold for r in per_arm[names[0]]["decoy"]},
        "test_images": len(all_runs[0].keys),
        "marker_area_share": marker_share,
        "interval": f"pooled bootstrap over the seeds ({N_BOOT} resamples, stratified by class x marker "
        "agrees), 95 %; marker energy over the test images that carry the marker",
        "rrr_selection": {**probe, "declared_penalty": ARMS["rrr"].penalty},
        "arms": {},
    }
    datasets = root / "datasets.json"
    if datasets.is_file():
        report["datasets"] = json.loads(datasets.read_text())
    for name, by_data in per_arm.items():
        arm = ARMS[name]
        figures: dict[str, Any] = {"description": arm.description, "map": arm.explanation}
        if arm.penalty:
            figures |= {"rrr_penalty": arm.penalty, "rrr_lambda": lambdas[arm.penalty]}
        figures |= arm_figures(by_data["decoy"], class_names, N_BOOT)
        if "clean" in by_data:
            figures["clean"] = arm_figures(by_data["clean"], class_names, N_BOOT)
            difference = paired_figures(
                by_data["clean"], by_data["decoy"], f"{name} clean vs DecoyBUSI", N_BOOT
            )
            figures["clean_minus_decoy_auc"] = difference.get("auc")
        figures["seeds"] = sorted(r.seed for r in by_data["decoy"])
        report["arms"][name] = figures
    report["comparisons"] = {
        f"{a}_minus_{b}": paired_figures(per_arm[a]["decoy"], per_arm[b]["decoy"], f"{a} vs {b}", N_BOOT)
        for a, b in PAIRS
        if a in per_arm and b in per_arm
    }
    report["targets"] = judge(report)
    report["sweep"] = {"seed": SWEEP_SEED, "points": _sweep(root, lambdas)}
    if (root / RUNTIME_FILE).is_file():
        report["wall_time"] = wall_time(root)
    return report


def _marker_area_share(root: Path, names: Sequence[str]) -> float | None:
    """What a flat map puts on the marker: the region's share of the image, from an evaluation's metrics."""
    for folder in sorted(root.glob("seed*/decoy/*")):
        if folder.name not in names:
            continue
        for metrics in sorted(folder.glob("fold*/eval_test/metrics.json")):
            share = json.loads(metrics.read_text()).get("shortcut", {}).get("marker_area_share")
            if share is not None:
                return float(share)
    return None


def judge(report: Mapping[str, Any]) -> list[dict]:
    """Each of :data:`TARGETS` with its figure and verdict ("met" only where the interval clears it)."""
    found = []
    for target in TARGETS:
        if "comparison" in target:
            stats = report["comparisons"].get(target["comparison"], {}).get(target["figure"])
        else:
            stats = report["arms"].get(target["arm"], {}).get(target["figure"])
        value = target["target"] if target["target"] is not None else report.get("marker_area_share")
        if stats is None or value is None:
            found.append({**target, "target": value, "stats": None, "verdict": "not run"})
            continue
        found.append(
            {
                **target,
                "target": value,
                "stats": stats,
                "verdict": verdict(stats, value, target["higher_is_better"]),
            }
        )
    return found


# ------------------------------------------------------------------------------------------- rendering


def render(report: Mapping[str, Any]) -> str:
    """The arms on DecoyBUSI and its clean twin, the group accuracies, the targets and the RRR sweep."""
    rows = [
        "| arm | what it is | AUC | AUC, clean | accuracy | worst-group accuracy "
        "| worst-group accuracy, clean | map energy on the marker | map pointing game | map |",
        "|---" * 10 + "|",
    ]
    for name, arm in report["arms"].items():
        clean = arm.get("clean", {})
        lam = f" (λ {arm['rrr_lambda']:g})" if "rrr_lambda" in arm else ""
        cells = [
            fmt_ci(arm["auc"]),
            fmt_ci(clean.get("auc")),
            fmt_ci(arm["accuracy"]),
            fmt_ci(arm["worst_group_accuracy"]),
            fmt_ci(clean.get("worst_group_accuracy")),
            fmt_ci(arm["marker_energy"]),
            fmt_ci(arm["map_pointing_game"]),
            arm["map"],
        ]
        description = arm["description"].replace("|", "\\|")
        rows.append(f"| `{name}` | {description}{lam} | {' | '.join(cells)} |")
    first = next(iter(report["arms"].values()))
    groups = list(first["group_accuracy"])
    counts = first.get("group_counts", {})
    rows += [
        "",
        "| arm | "
        + " | ".join(f"{g.replace('_', ', marker ')} ({counts.get(g, '?')})" for g in groups)
        + " |",
        "|---" * (len(groups) + 1) + "|",
    ]
    for name, arm in report["arms"].items():
        rows.append(
            f"| `{name}` | " + " | ".join(fmt_ci(arm["group_accuracy"].get(g)) for g in groups) + " |"
        )
    rows += ["", "| target | figure | verdict |", "|---|---|---|"]
    for target in report["targets"]:
        side = "≥" if target["higher_is_better"] else "≤"
        goal = f"{side} {fmt(target['target'])}" if target["target"] is not None else ""
        rows.append(f"| {target['what']} ({goal}) | {fmt_ci(target['stats'])} | **{target['verdict']}** |")
    sweep = report.get("sweep", {}).get("points", {})
    if sweep:
        rows += [
            "",
            "| RRR penalty | λ | test AUC | accuracy | worst-group accuracy | map energy on the marker "
            "| validation AUC |",
            "|---|---|---|---|---|---|---|",
        ]
        for penalty, points in sweep.items():
            for p in points:
                lam = f"**{p['lambda']:g}** (declared)" if p["declared"] else f"{p['lambda']:g}"
                cells = [
                    fmt(p["auc"]),
                    fmt(p["accuracy"]),
                    fmt(p["worst_group_accuracy"]),
                    fmt(p["marker_energy"]),
                    fmt(p["validation"].get("auc")),
                ]
                rows.append(f"| {penalty} | {lam} | {' | '.join(cells)} |")
    size = "x".join(str(s) for s in report["spatial_size"])
    seeds = report["seeds"]
    wall = report.get("wall_time")
    took = (
        ""
        if wall is None
        else f" The run took {'at least ' if wall['resumed'] else ''}{wall['seconds'] / 3600:.1f} h."
    )
    rows += [
        "",
        f"DecoyBUSI test set ({report['test_images']} images, the marker agreeing in half of each class), "
        f"{size}, {report['epochs']} epochs, {len(seeds)} seed{'s' if len(seeds) != 1 else ''} "
        f"({', '.join(map(str, seeds))}, seed k validating on fold k); brackets: {report['interval']}. "
        f"A flat map puts {fmt(report['marker_area_share'], 4)} of its energy on the marker. RRR's λ: "
        f"{report['rrr_selection']['rule']}; the sweep (seed {report['sweep']['seed']}, point estimates) is "
        f"shown for transparency only.{took}",
    ]
    return "\n".join(rows) + "\n"


BLOCKS = {"decoy_busi": bundle_results(BUNDLE, "decoy_busi", render)}


# --------------------------------------------------------------------------------------------- figures


def shown_rows(keys: Sequence[str], labels: np.ndarray, agrees: np.ndarray, per_group: int = 2) -> list[int]:
    """Test images to show: the first ``per_group`` of each group (class x marker agrees), in key order."""
    rows = []
    for label in (1, 0):
        for agree in (True, False):
            rows += [i for i in range(len(keys)) if labels[i] == label and agrees[i] == agree][:per_group]
    return rows


def sweep_figure(report: Mapping[str, Any]) -> Figure:
    """Test worst-group accuracy, accuracy and AUC of every sweep point against λ, the declared λ marked."""
    from monai_xai.utils import pyplot

    plt = pyplot()
    measures = {"worst_group_accuracy": "worst-group accuracy", "accuracy": "accuracy", "auc": "AUC"}
    fig, axes = plt.subplots(1, len(measures), figsize=(4.0 * len(measures), 3.2), squeeze=False)
    for ax, (key, label) in zip(axes[0], measures.items()):
        for i, (penalty, points) in enumerate(report["sweep"]["points"].items()):
            lams = [p["lambda"] for p in points]
            ax.plot(
                lams,
                [math.nan if p[key] is None else p[key] for p in points],
                marker="o",
                color=f"C{i}",
                label=f"RRR, {penalty}",
            )
            declared = [p for p in points if p["declared"]]
            if declared:
                ax.scatter(
                    [declared[0]["lambda"]], [declared[0][key]], s=90, facecolors="none", edgecolors=f"C{i}"
                )
        for j, name in enumerate(("baseline", "abn_gated")):
            arm = report["arms"].get(name)
            if arm is not None and arm.get(key) is not None:
                ax.axhline(arm[key]["mean"], color=f"C{j + 2}", linestyle="--", linewidth=0.8, label=name)
        ax.set_xscale("log")
        ax.set_xlabel("λ")
        ax.set_title(f"test {label}", fontsize=9)
        ax.legend(fontsize=7)
    fig.suptitle(f"RRR sweep on DecoyBUSI, seed {report['sweep']['seed']} (declared λ circled)", fontsize=10)
    fig.tight_layout()
    return fig


def explanation_figure(root: Path, arms: Sequence[str], per_group: int = 2) -> Figure:
    """A row per shown test image of seed 0 on DecoyBUSI (input with its marker and lesion outline), a
    column per arm's own map, each from the arm's trained weights."""
    import torch
    from monai.bundle import ConfigParser

    from monai_xai.visualize import explanation_grid_figure, get_saliency

    columns, images, masks, titles, rows, shown_keys = {}, None, None, None, None, None
    for name in arms:
        arm = ARMS[name]
        arm_dir = Path(root) / f"seed{SWEEP_SEED}" / "decoy" / name
        summary = read_json(arm_dir / "crossval_summary.json", "the arm has not finished here")
        fold = int(summary["folds"][0])
        overrides = read_json(arm_dir / f"fold{fold}" / "crossval_done.json", "")["overrides"]
        parser = ConfigParser()
        fragment = REPO / "configs" / "datasets" / f"{DATASETS['decoy']}.json"
        parser.read_config([str(CONFIGS / "train.json"), str(fragment), str(CONFIGS / "evaluate.json")])
        parser.update(
            {**overrides, "fold": fold, "output_dir": str(arm_dir / f"fold{fold}"), "num_workers": 0}
        )
        model = parser.get_parsed_content("model")
        parser.get_parsed_content("load_weights")
        model.eval()
        explain = (
            None
            if arm.explanation == "attention"
            else get_saliency(model, arm.explanation, overrides.get("cam_layer"))
        )
        batches = {"image": [], "mask": [], "label": [], "agrees": [], "key": [], "map": []}
        for batch in parser.get_parsed_content("evaluate#dataloader"):
            x = batch["image"].as_tensor() if hasattr(batch["image"], "as_tensor") else batch["image"]
            if explain is None:
                with torch.no_grad():
                    batches["map"].append(model(x).attention_map.float())
            else:
                batches["map"].append(explain(x).float())
            batches["image"].append(x)
            batches["mask"].append(torch.as_tensor(batch["mask"]).float())
            batches["label"] += [int(y) for y in torch.as_tensor(batch["label"]).view(-1)]
            batches["agrees"] += [a == "1" for a in batch["marker_agrees"]]
            batches["key"] += [_key(s) for s in batch["image"].meta["filename_or_obj"]]
        order = sorted(range(len(batches["key"])), key=lambda i: batches["key"][i])
        keys = [batches["key"][i] for i in order]
        maps = torch.cat(batches["map"])[order]
        if rows is None:
            labels = np.array([batches["label"][i] for i in order])
            agrees = np.array([batches["agrees"][i] for i in order])
            rows = shown_rows(keys, labels, agrees, per_group)
            images, masks = torch.cat(batches["image"])[order][rows], torch.cat(batches["mask"])[order][rows]
            names = ("benign", "malignant")
            titles = [f"{names[labels[i]]}, marker {'agrees' if agrees[i] else 'lies'}" for i in rows]
            shown_keys = [keys[i] for i in rows]
        elif [keys[i] for i in rows] != shown_keys:
            raise InputError(arm_dir, "the arms were tested on different images")
        columns[f"{name}: {arm.explanation}"] = maps[rows]
    return explanation_grid_figure(images, columns, masks, row_titles=titles)


def _write_figures(report: Mapping[str, Any], root: Path, out: Path, publish: bool) -> None:
    from monai_xai.visualize import save_figure

    sweep_path = REPO / SWEEP_FIGURE if publish else out.with_name(f"{out.stem}_rrr_sweep.png")
    if report["sweep"]["points"]:
        save_figure(sweep_figure(report), sweep_path)
        print(f"written {sweep_path}")
    path = REPO / FIGURE if publish else out.with_name(f"{out.stem}_explanations.png")
    save_figure(explanation_figure(root, list(report["arms"])), path)
    print(f"written {path}")


# ------------------------------------------------------------------------------------------ command line


def below_budget(args: argparse.Namespace) -> list[str]:
    """Why a ``run`` is not the published one: empty when it is."""
    given = {"epochs": args.epochs, "size": args.size, "seeds": len(args.seeds)}
    short = [
        f"{key} {value} < {FULL_BUDGET[key]}" for key, value in given.items() if value < FULL_BUDGET[key]
    ]
    if args.limit:
        short.append(f"--limit {args.limit}")
    missing = [arm for arm in ARMS if arm not in args.arms]
    if missing:
        short.append(f"--arms lacks {', '.join(missing)}")
    if tuple(args.sweep_decades) != SWEEP_DECADES:
        short.append(f"--sweep_decades {' '.join(map(str, args.sweep_decades))}")
    return short


def main(argv: Sequence[str] | None = None) -> int:
    parser, commands = study_parser("decoy_busi", __doc__)
    run_parser = commands.add_parser("run", help="write the copies, probe, train every arm x seed, collect")
    run_parser.add_argument("--data", type=Path, default=DATA, help="where the two copies go (not the repo)")
    run_parser.add_argument("--source", type=Path, default=REPO.parent / "shared" / "data" / "busi_256")
    run_parser.add_argument(
        "--split", type=Path, default=REPO / "configs" / "datasets" / "busi_splits_dedup.json"
    )
    run_parser.add_argument(
        "--runs", type=Path, help="the run folder (default runs/experiments/decoy_busi-...)"
    )
    run_parser.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS))
    run_parser.add_argument("--epochs", type=int, default=FULL_BUDGET["epochs"])
    run_parser.add_argument("--size", type=int, default=FULL_BUDGET["size"])
    run_parser.add_argument("--limit", type=int, help="images per split (a smoke test; never published)")
    run_parser.add_argument("--arms", nargs="+", choices=list(ARMS), default=list(ARMS))
    run_parser.add_argument("--sweep_decades", type=int, nargs="*", default=list(SWEEP_DECADES))
    collect_parser = commands.add_parser("collect", help="collect a run folder into the results file")
    collect_parser.add_argument("--runs", type=Path, required=True, help="the run folder of `run`")
    collect_parser.add_argument(
        "--arms", nargs="+", choices=list(ARMS), help="required arms (default: found)"
    )
    for sub in (run_parser, collect_parser):
        sub.add_argument("--figure", action="store_true", help="draw the explanations and the sweep curve")
        add_output_arguments(sub, published=PUBLISHED)
    probe_parser = commands.add_parser("probe", help="(a step of run) the magnitudes behind the declared λ")
    probe_parser.add_argument("--data", type=Path, required=True, help="the DecoyBUSI copy")
    probe_parser.add_argument("--size", type=int, default=FULL_BUDGET["size"])
    probe_parser.add_argument("--seed", type=int, default=SWEEP_SEED)
    probe_parser.add_argument("--batches", type=int, default=PROBE_BATCHES)
    probe_parser.add_argument("--out", type=Path, required=True, help="the folder of magnitudes.json")
    args = parser.parse_args(argv)
    if args.command == "probe":
        found = probe_magnitudes(args.data, args.size, args.seed, args.batches, args.out)
        write_results(found, args.out / "magnitudes.json")
        print(
            f"declared λ: {found['lambda']} (CE {found['cross_entropy']:.4g}, penalties {found['penalty']})"
        )
        return 0
    out = output_path(args, PUBLISHED)  # before training: a missing --out fails at once
    if args.command == "run":
        short = below_budget(args)
        if args.publish and short:
            raise InputError(None, f"--publish needs the full budget: {', '.join(short)}")
        report = run(args)
        root = run_root(args)
    else:
        report = collect(args.runs, args.arms)
        root = args.runs
    write_results(report, out, publish=args.publish)
    verdicts = "; ".join(f"{t['what']}: {t['verdict']}" for t in report["targets"])
    print(f"written {out}: arms {', '.join(report['arms'])}; {verdicts}")
    if args.figure:
        _write_figures(report, Path(root), out, args.publish)
    return 0
