"""CenterNet on BUSI's leak-free split: four detector arms, a k-NN probe of the SimSiam encoder, the targets.

Measures what self-supervised pretraining is worth to a lesion detector: CenterNet from random initialisation,
from the SimSiam encoder frozen, and from it progressively unfrozen, next to MONAI's RetinaNet, on the
leak-free split (``configs/datasets/busi_splits_dedup.json``: no near-duplicate group straddles the test set
and the folds; fold 0 validates, its test set is reported). ``run`` trains and evaluates them, one
:class:`~.runner.Step` each under the run folder (``--run_dir``), then collects in-process:

1. ``data``: COCO boxes (one per lesion-mask component) of exactly the split's images, and the split they
   follow (``data/boxes_coco.json``, ``data/boxes_coco.splits.json``; ``scripts/make_coco_from_masks.py
   --split_file``). Near-duplicates are all kept, in the part the split puts their group in; the images stay
   in ``--data`` (the bundles get it as ``--image_dir``).
2. ``simsiam``: SimSiam pretraining of the ResNet18 encoder on fold 0's training images only (never validation
   or test; ``pretrain_simsiam.json`` reads ``splits['train']`` only), ``--simsiam_epochs`` epochs at
   ``--simsiam_size``, on the fast path (the bundles' ``--amp true``: bf16 autocast on CPU); MLflow gets the
   loss and the collapse monitor's ``z_std_ratio`` every epoch.
3. ``knn_probe``: k-NN probe of the frozen SimSiam encoder against a random one, normal/benign/malignant, on
   the same training images as neighbours, with intervals (:mod:`.knn_probe`; ``knn_probe.json``).
4. ``<arm>/train`` and ``<arm>/evaluate`` for each of :data:`ARMS` (random_init | simsiam_frozen |
   simsiam_progressive, one more stage every ``--unfreeze_interval`` epochs | retinanet), at ``--size``:
   trained until its validation mAP has not improved for ``--early_stop_patience`` epochs (at most
   ``--max_epochs``; ValidationEarlyStopping; 0 trains every arm for ``--max_epochs``), its best epoch
   (``checkpoints/best.pt``, the evaluation's input) evaluated on the test set: COCO AP, the IoU-0.25
   confusion matrix with a None row and column at the score threshold of the best validation F1, chosen on
   the validation split and stored beside the checkpoint as ``checkpoints/best.score_threshold.json``, per
   class.
5. the results file (mAP, AP50 and F1 per arm with 95 % intervals over the test images, the targets judged on
   the arm the module declares, the SimSiam and validation curves), ``busi_curves.png`` and the tables,
   ``<run_dir>/tables.md``.

All runs log to one MLflow store, ``<run_dir>/mlruns.db``; each step's output goes to ``<run_dir>/<step>.log``
and its wall time to ``<run_dir>/runtime.jsonl`` (:func:`~.runner.wall_time`). ``--limit`` (at least SimSiam's
batch of 32) samples each part for the bundles and the probe; ``--extra "--key value ..."`` adds bundle
overrides to every training and evaluation. Only a run at the full budget (:data:`FULL_BUDGET`: ``--size`` ≥
192, ``--simsiam_size`` ≥ 128, ``--simsiam_epochs`` ≥ 200, ``--early_stop_patience`` > 0, the default split,
no ``--limit`` or ``--extra``) may ``--publish``: ``bundles/centernet_detection/docs/results/busi.json``,
``docs/figures/busi_curves.png`` and each arm's test overlays and confusion matrix copied to
``docs/figures/busi_<arm>_{overlays,confusion}.png`` (the README shows them), then the READMEs are rendered
again; other runs write ``busi.json`` and ``busi_curves.png`` into the run folder (or ``--out``).

    mkdir -p runs/experiments && nohup python -m monai_xai.experiments centernet_busi run --publish \\
        >> runs/experiments/centernet_busi.log 2>&1 &          # the full run, in the background
    python -m monai_xai.experiments centernet_busi run --size 64 --simsiam_size 64 --simsiam_epochs 1 \\
        --max_epochs 1 --early_stop_patience 1 --limit 40 \\
        --run_dir runs/experiments/centernet_busi_smoke        # smoke test of the whole chain
    python -m monai_xai.experiments centernet_busi collect runs/experiments/centernet_busi-192px \\
        --out runs/experiments/centernet_busi-192px/busi.json --figure curves.png

Resumable across sessions: rerun the same command (a second one refuses while one runs in the same run
folder: ``<run_dir>/.centernet_busi.lock``). A step that finished with the same command and inputs is skipped
(:class:`~.runner.StepRunner`), unless its outputs say it is not done (:func:`stale_output`): no
``boxes_coco.splits.json`` or ``simsiam/encoder.pt``, a ``knn_probe.json`` without its paired differences, or
an arm's ``eval_test`` whose threshold the test split chose or whose ``predictions.json`` lacks each image's
ground truth (``target_boxes``) is done again. A killed SimSiam or detector training resumes from its
``checkpoints/latest.pt`` (model, optimiser, LR schedule, freeze policy, epoch; the MLflow run is continued;
the early-stopping count goes on from ``checkpoints/early_stopping.json``, so a resumed arm stops after the
same epoch as an uninterrupted one), and an arm whose training finished goes straight to its evaluation.

Runtime estimate for the full run on the 2-core CPU (bf16 fast path), not measured end to end: the ABN bundle
trains its ~340 benign/malignant training images at 128 px in about 8.4 s an epoch, validation included
(1016 s for 3 folds x 40 epochs), and the bare CenterNet and SimSiam steps are a little faster than the ABN's
at 128 px (docs: fast_path_speedups), so:

* SimSiam, 200 epochs x 384 image pairs at 128 px (about 9 s an epoch): about 30 min (25-40);
* COCO files and the k-NN probe: about 3 min;
* CenterNet at 192 px (2.25x the pixels, 406 images: about 20 s an epoch with validation): 13-27 min per arm
  for 40-80 epochs (early stopping decides), the frozen arm less (no backward pass through the backbone);
* RetinaNet, about 3x CenterNet's time (``scripts/benchmarks/detector_throughput.py``): 40-80 min;
* the results' intervals (4 arms x 2000 resamples of COCO AP on per-image matches): about 5 min.

In all about 2.5 h (2 to 3.5 h); every step is resumable, so the run can be spread over several sessions.

``collect`` reads, below the run folder: each arm's test evaluation (``<arm>/eval_test/metrics.json`` and the
per-image ``predictions.json``, see :data:`RECORD_KEYS`; an evaluation whose score threshold another split
than validation chose is an error), its run identity (``<arm>/run.json``), best validation epoch
(``checkpoints/best.json``), the threshold's validation record (``checkpoints/best.score_threshold.json``),
the early-stopping patience its training step ran with (``<arm>/step_done.json``) and its wall time
(``runtime.jsonl``); the k-NN probe (``knn_probe.json``, :mod:`.knn_probe`); and, from the MLflow store, the
SimSiam loss and collapse monitor (``z_std_ratio``) per epoch, each arm's validation mAP and the settings the
runs logged.

mAP, AP50 and F1 (at the score threshold chosen on validation) carry 95 % intervals: a bootstrap over the test
images, stratified by image class, that re-accumulates per-image matches (:class:`ArmImages`). The AP50
target is judged on one arm declared here before any test figure is read (:data:`JUDGED_ARM`), never on the
arm with the best test figure, and is met only when its interval clears the target (:func:`verdict`); the
pretraining target is the paired difference of that arm's mAP and random initialisation's on the same
images. Results file: ``bundles/centernet_detection/docs/results/busi.json`` (block ``centernet_busi``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from monai_xai.errors import InputError

from .knn_probe import probe_table
from .results import (
    NO_INTERVAL,
    REPO,
    add_output_arguments,
    as_stats,
    bundle_results,
    fmt,
    fmt_ci,
    output_path,
    study_parser,
    verdict,
    verdict_cell,
    write_results,
)
from .runner import DONE_FILE, Step, StepRunner, bundle_run_argv, wall_time

__all__ = [
    "AP50_TARGET",
    "ARMS",
    "BASELINE_ARM",
    "BLOCKS",
    "EVAL_METRICS",
    "JUDGED_ARM",
    "PUBLISHED",
    "RECORD_KEYS",
    "ArmImages",
    "arm_results",
    "curves_figure",
    "docs_figures",
    "eval_metrics",
    "main",
    "map_difference",
    "metric_curves",
    "render",
    "results",
]

#: arm (run folder and MLflow run name below the experiment folder) -> row label
ARMS = {
    "random_init": "CenterNet, random init",
    "simsiam_frozen": "CenterNet, SimSiam + frozen backbone",
    "simsiam_progressive": "CenterNet, SimSiam + progressive unfreezing",
    "retinanet": "RetinaNet (MONAI), random init",
}
#: the arm the targets are judged on, declared before the test set is read: the method the bundle is about
#: (SimSiam pretraining, then progressive unfreezing). Picking the arm with the best test AP50 would turn four
#: draws into one optimistic figure.
JUDGED_ARM = "simsiam_progressive"
#: the arm the judged one must be at least as good as in mAP (the pretraining target)
BASELINE_ARM = "random_init"
#: the issue's detection target: the judged arm's test AP50
AP50_TARGET = 0.70
#: MLflow experiment and run name of the SimSiam pretraining (the driver's --run_name)
EXPERIMENT, SIMSIAM_RUN = "centernet_detection", "simsiam"
#: per-epoch metrics of the SimSiam run drawn as curves
SIMSIAM_CURVES = ("train_loss", "z_std_ratio")
#: figures of an arm's test evaluation the docs show: name in the docs -> file in ``<arm>/eval_test``
ARM_FIGURES = {"overlays": "overlays.png", "confusion": "confusion_matrix.png"}
#: the curves' file name in the figures folder
CURVES_FIGURE = "busi_curves.png"
#: the results file in the docs (``--publish``); its figures go to ``figures/`` beside ``results/``
PUBLISHED = "bundles/centernet_detection/docs/results/busi.json"
#: what each record (one per test image) of ``<arm>/eval_test/predictions.json`` must hold: the kept peaks
#: (``boxes`` xyxy in network-input pixels, ``scores``, ``classes`` by name) and the image's ground truth in
#: the same frame (``target_boxes``, ``target_classes``), so that AP can be recomputed on a resample of images
RECORD_KEYS = ("source", "boxes", "scores", "classes", "target_boxes", "target_classes")
#: detections per image that AP counts (the bundles' ``top_k``, COCO's maxDets)
MAX_DETECTIONS = 100


# ------------------------------------------------------------------------------------------ per image


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    from monai.data.box_utils import box_iou

    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    return np.asarray(box_iou(a, b), dtype=np.float64)


class ArmImages:
    """One arm's test images, matched once, so that a bootstrap resample only re-accumulates them.

    AP (COCO, through MONAI's ``COCOMetric``) accumulates per-image matches of boxes to lesions, and F1 at the
    score threshold sums per-image lesion confusion matrices (:func:`~monai_xai.metrics.detection.
    detection_confusion_matrix`); matching is the costly part and does not depend on which images a resample
    holds. On all images the figures are those of :func:`~monai_xai.metrics.detection.detection_report`
    (:func:`arm_results` checks them against the arm's ``metrics.json``).

    Args:
        records: ``predictions.json`` of the evaluation (:data:`RECORD_KEYS`).
        class_names: the classes, in the order of the confusion matrix.
        score_threshold: the score threshold chosen on validation, for F1.
        iou_threshold: the IoU at which a box hits a lesion, for F1.
    """

    def __init__(
        self,
        records: Sequence[Mapping[str, Any]],
        class_names: Sequence[str],
        score_threshold: float,
        iou_threshold: float,
    ) -> None:
        from monai.apps.detection.metrics.coco import COCOMetric
        from monai.apps.detection.metrics.matching import matching_batch

        from monai_xai.metrics.detection import detection_confusion_matrix

        index = {name: c for c, name in enumerate(class_names)}

        def labels(names: Sequence[str]) -> np.ndarray:
            unknown = sorted(set(names) - set(index))
            if unknown:
                raise ValueError(f"classes {unknown} are not among {list(class_names)}")
            return np.array([index[name] for name in names], dtype=np.int64)

        self.class_names = list(class_names)
        self.sources = [str(r["source"]) for r in records]
        self.predictions = [
            {
                "boxes": np.asarray(r["boxes"], dtype=np.float64).reshape(-1, 4),
                "scores": np.asarray(r["scores"], dtype=np.float64).reshape(-1),
                "labels": labels(r["classes"]),
            }
            for r in records
        ]
        self.targets = [
            {
                "boxes": np.asarray(r["target_boxes"], dtype=np.float64).reshape(-1, 4),
                "labels": labels(r["target_classes"]),
            }
            for r in records
        ]
        #: each image's class: that of its lesions (a lesion takes its image's class), -1 without one
        self.strata = np.array([int(t["labels"][0]) if len(t["labels"]) else -1 for t in self.targets])
        self._metric = COCOMetric(
            self.class_names, iou_list=(0.5, 0.75), iou_range=(0.5, 0.95, 0.05),
            max_detection=(MAX_DETECTIONS,), verbose=False,
        )  # fmt: skip
        self._matches = matching_batch(
            _iou, self._metric.iou_thresholds, [p["boxes"] for p in self.predictions],
            [p["labels"] for p in self.predictions], [p["scores"] for p in self.predictions],
            [t["boxes"] for t in self.targets], [t["labels"] for t in self.targets],
            max_detections=MAX_DETECTIONS,
        )  # fmt: skip
        num_classes = len(self.class_names)
        self._matrices = np.stack([
            detection_confusion_matrix([p], [t], num_classes, score_threshold, iou_threshold)[0]
            for p, t in zip(self.predictions, self.targets)
        ])  # fmt: skip
        self._ap: dict[bytes, dict[str, float]] = {}

    @property
    def n(self) -> int:
        return len(self.sources)

    def ap(self, idx: np.ndarray) -> dict[str, float]:
        """``mAP`` (IoU 0.50:0.95) and ``AP50`` of the images ``idx`` (repeats count again), averaged over the
        classes with a lesion among them, as :func:`~monai_xai.metrics.detection.coco_detection_metrics`
        does; NaN with no lesion. Cached by resample: the intervals of mAP, AP50 and a paired difference
        draw the same resamples (same seed), so each is accumulated once."""
        key = np.asarray(idx, dtype=np.int64).tobytes()
        if key not in self._ap:
            result = self._metric([self._matches[i] for i in idx])[0]
            names = {
                "mAP": f"mAP_IoU_0.50_0.95_0.05_MaxDet_{MAX_DETECTIONS}",
                "AP50": f"AP_IoU_0.50_MaxDet_{MAX_DETECTIONS}",
            }
            figures = {}
            for figure, name in names.items():
                present = [result[f"{c}_{name}"] for c in self.class_names if result[f"{c}_{name}"] > -1]
                figures[figure] = float(np.mean(present)) if present else math.nan
            self._ap[key] = figures
        return self._ap[key]

    def f1(self, idx: np.ndarray) -> float:
        """Lesion-level F1 pooled over the classes (class must match) at the score threshold, as
        :func:`~monai_xai.metrics.detection.detection_scores_at` counts it, over the images ``idx``."""
        matrix = self._matrices[np.asarray(idx)].sum(axis=0)
        num_classes = len(self.class_names)
        tp = int(np.trace(matrix[:num_classes, :num_classes]))
        fp = int(matrix[:, :num_classes].sum()) - tp
        fn = int(matrix[:num_classes, :].sum()) - tp
        return 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0


def arm_intervals(arm: ArmImages, n_boot: int = 2000, seed: int = 0) -> dict[str, dict]:
    """``map``, ``ap50`` and ``f1`` of the arm with 95 % intervals: bootstrap over its test images,
    stratified by image class (normal, benign, malignant keep their counts in every resample)."""
    from monai_xai.metrics.uncertainty import bootstrap_ci

    def interval(metric) -> dict:
        return bootstrap_ci(metric, np.arange(arm.n), n_boot=n_boot, stratify=arm.strata, seed=seed).to_dict()

    return {
        "map": interval(lambda idx: arm.ap(idx)["mAP"]),
        "ap50": interval(lambda idx: arm.ap(idx)["AP50"]),
        "f1": interval(arm.f1),
    }


def _aligned(a: ArmImages, b: ArmImages) -> np.ndarray:
    """``b``'s position of each of ``a``'s images (by source)."""
    if a.sources == b.sources:
        return np.arange(a.n)
    position = {source: i for i, source in enumerate(b.sources)}
    if len(position) != b.n or a.n != b.n or set(a.sources) != set(position):
        raise ValueError("not evaluated on the same images")
    return np.array([position[source] for source in a.sources])


def map_difference(a: ArmImages, b: ArmImages, n_boot: int = 2000, seed: int = 0) -> dict:
    """mAP of ``a`` minus that of ``b`` on the same test images, with a paired 95 % interval: every resample
    scores both arms on the same images, so what the images share (hard and easy lesions) cancels out."""
    from monai_xai.metrics.uncertainty import paired_bootstrap_diff

    arms = (a, b)

    def metric(idx: np.ndarray, arm: np.ndarray) -> float:  # ``arm``: which arm the indices belong to
        return arms[int(arm[0])].ap(idx)["mAP"]

    n = a.n
    return paired_bootstrap_diff(
        metric,
        (np.arange(n), np.zeros(n, dtype=np.int64)),
        (_aligned(a, b), np.ones(n, dtype=np.int64)),
        n_boot=n_boot,
        stratify=a.strata,
        seed=seed,
    ).to_dict()


# ------------------------------------------------------------------------------------------ collector


def _read_json(path: Path, what: str) -> Any:
    if not path.is_file():
        raise InputError(
            path.parent, f"no {what} ({path.name}): run python -m monai_xai.experiments centernet_busi run"
        )
    return json.loads(path.read_text())


def _records(eval_dir: Path) -> list[dict]:
    """The per-image records of an evaluation; an error naming what an older evaluation lacks."""
    records = _read_json(eval_dir / "predictions.json", "per-image predictions")
    lacking = sorted({key for record in records for key in RECORD_KEYS if key not in record})
    if lacking:
        raise InputError(
            eval_dir / "predictions.json",
            f"its records lack {', '.join(lacking)}: the intervals need each test image's predictions and "
            "ground truth (DetectionReportHandler must write target_boxes and target_classes); "
            "evaluate again",
        )
    return records


def _same(eval_dir: Path, name: str, recorded: float, recomputed: float) -> None:
    if not math.isclose(recorded, recomputed, rel_tol=0.0, abs_tol=1e-6):
        raise InputError(
            eval_dir,
            f"predictions.json gives {name} {recomputed:.6f} but metrics.json {recorded:.6f}: they are not "
            "one evaluation (or AP is computed differently now); evaluate again",
        )


def arm_results(arm_dir: Path, n_boot: int = 2000) -> tuple[dict, ArmImages]:
    """One arm's test figures (mAP, AP50 and F1 with intervals; AP75 and AP by size as recorded), confusion
    matrix and per-class statistics at its score threshold (chosen on validation), that threshold's
    validation F1 and the arm's best epoch; and its per-image data."""
    eval_dir = arm_dir / "eval_test"
    metrics = _read_json(eval_dir / "metrics.json", "test evaluation")
    if metrics.get("threshold_split") != "val":
        raise InputError(
            eval_dir,
            "its score threshold was not chosen on the validation split (an older evaluation searched it "
            "on the test set): rerun python -m monai_xai.experiments centernet_busi run (it evaluates again)",
        )
    class_names = metrics["confusion_matrix"]["labels"][:-1]
    at_threshold = metrics["f1_threshold"]
    try:
        images = ArmImages(
            _records(eval_dir), class_names, at_threshold["threshold"], metrics["iou_threshold"]
        )
    except ValueError as error:
        raise InputError(eval_dir / "predictions.json", str(error)) from error
    intervals = arm_intervals(images, n_boot)
    coco = metrics["coco"]
    for name, key, recorded in (
        ("mAP", "map", coco["mAP"]),
        ("AP50", "ap50", coco["AP50"]),
        ("F1", "f1", at_threshold["f1"]),
    ):
        _same(eval_dir, name, recorded, intervals[key]["mean"])
    result = {
        **intervals,
        "ap75": coco["AP75"],
        "ap_small": coco["AP_small"],
        "ap_medium": coco["AP_medium"],
        "ap_large": coco["AP_large"],
        "precision": at_threshold["precision"],
        "recall": at_threshold["recall"],
        "f1_threshold": at_threshold["threshold"],
        "threshold_split": metrics["threshold_split"],
        "iou_threshold": metrics["iou_threshold"],
        "confusion_matrix": metrics["confusion_matrix"],
        "per_class": metrics["per_class"],
        "n_images": metrics["n_images"],
        "n_lesions": metrics["n_lesions"],
    }
    best = arm_dir / "checkpoints" / "best.json"
    if best.is_file():
        record = json.loads(best.read_text())
        result["best_epoch"], result["best_val_map"] = record["epoch"], record["value"]
    chosen = arm_dir / "checkpoints" / "best.score_threshold.json"
    if chosen.is_file():
        result["val_f1"] = json.loads(chosen.read_text())["score_threshold"]["f1"]
    return result, images


def _run(tracking_uri: str, run_name: str):
    from monai_xai.tracking import find_run

    run = find_run(tracking_uri, EXPERIMENT, run_name)
    if run is None:
        raise InputError(None, f"no MLflow run {run_name!r} in experiment {EXPERIMENT!r} at {tracking_uri}")
    return run


def metric_curves(tracking_uri: str, run_name: str, names: Sequence[str]) -> dict[str, list[float | None]]:
    """Per-epoch values (step = epoch, from 1; null where an epoch was not logged) of the named run's
    metrics; a metric logged twice for one epoch (a resumed run repeating it) keeps its last value."""
    from mlflow.tracking import MlflowClient

    run = _run(tracking_uri, run_name)
    client = MlflowClient(tracking_uri)
    curves = {}
    for name in names:
        history = sorted(client.get_metric_history(run.info.run_id, name), key=lambda m: m.timestamp)
        by_epoch = {m.step: m.value for m in history}
        if by_epoch:
            curves[name] = [
                None if e not in by_epoch or math.isnan(by_epoch[e]) else by_epoch[e]
                for e in range(1, max(by_epoch) + 1)
            ]
    return curves


def _param(tracking_uri: str, run_name: str, name: str) -> int:
    params = _run(tracking_uri, run_name).data.params
    if name not in params:
        raise InputError(None, f"the MLflow run {run_name!r} at {tracking_uri} logged no parameter {name!r}")
    return int(params[name])


def _identity(run_dir: Path) -> dict:
    return _read_json(run_dir / "run.json", "run record")["identity"]


def recorded_settings(out: Path, tracking_uri: str) -> dict[str, int]:
    """The settings the runs recorded: input sides (``run.json``), epochs asked for and the unfreezing
    interval (MLflow parameters), and the smoke runs' image limit."""
    detector, simsiam = _identity(out / BASELINE_ARM), _identity(out / SIMSIAM_RUN)
    settings = {
        "spatial_size": int(detector["network"]["spatial_size"][0]),
        "simsiam_spatial_size": int(simsiam["network"]["spatial_size"][0]),
        "simsiam_epochs": _param(tracking_uri, SIMSIAM_RUN, "max_epochs"),
        "max_epochs": _param(tracking_uri, BASELINE_ARM, "max_epochs"),
        "unfreeze_interval": _param(tracking_uri, JUDGED_ARM, "unfreeze_interval"),
    }
    if detector["data"].get("limit") is not None:
        settings["limit"] = int(detector["data"]["limit"])
    return settings


def curve_summary(values: Sequence[float | None]) -> dict[str, float]:
    """First, last and smallest logged value of a curve."""
    logged = [v for v in values if v is not None]
    return {"first": logged[0], "last": logged[-1], "min": min(logged)}


def simsiam_results(tracking_uri: str) -> tuple[dict, dict[str, list[float | None]]]:
    """Summary of the SimSiam pretraining (epochs, loss and ``z_std_ratio`` first/last/min) and its curves."""
    curves = metric_curves(tracking_uri, SIMSIAM_RUN, SIMSIAM_CURVES)
    missing = [name for name in SIMSIAM_CURVES if name not in curves]
    if missing:
        raise InputError(
            None, f"the MLflow run {SIMSIAM_RUN!r} at {tracking_uri} logged no {', '.join(missing)}"
        )
    summary: dict = {"epochs": len(curves["train_loss"])}
    summary.update({name: curve_summary(values) for name, values in curves.items()})
    return summary, curves


def _option(command: Sequence[str], key: str) -> str | None:
    """The text of ``--key`` in a recorded command (``--key value`` or ``--key=value``), None without it."""
    for i, token in enumerate(command):
        if token == f"--{key}" and i + 1 < len(command):
            return command[i + 1]
        if token.startswith(f"--{key}="):
            return token.split("=", 1)[1]
    return None


def recorded_patience(out: Path) -> int | None:
    """The ``--early_stop_patience`` the arms' training steps ran with, read from their done records
    (``<arm>/step_done.json``); None where none records one (a run folder from before the step runner)."""
    found = {}
    for arm in ARMS:
        record = out / arm / DONE_FILE
        if record.is_file():
            text = _option(json.loads(record.read_text())["command"], "early_stop_patience")
            if text is not None:
                found[arm] = int(text)
    if len(set(found.values())) > 1:
        raise InputError(out, f"the arms trained with different early_stop_patience: {found}; not one study")
    return next(iter(found.values()), None)


def _step_time(times: Mapping[str, Any], names: Sequence[str]) -> dict | None:
    """The wall time of the named steps together (:func:`~.runner.wall_time`), None when none was timed."""
    timed = [times["steps"][name] for name in names if name in times["steps"]]
    if not timed:
        return None
    return {
        "seconds": round(sum(t["seconds"] for t in timed), 1),
        "resumed": any(t["resumed"] for t in timed),
    }


def targets(arms: Mapping[str, dict], difference: dict, probe: Mapping[str, Any]) -> dict:
    """The study's targets on the declared arm, each with its interval and :func:`verdict`."""
    knn = probe["difference"]["test"]["accuracy"]
    ap50 = arms[JUDGED_ARM]["ap50"]
    return {
        "judged_arm": JUDGED_ARM,
        "ap50_at_least": AP50_TARGET,
        "ap50": ap50,
        "ap50_verdict": verdict(ap50, AP50_TARGET),
        "baseline_arm": BASELINE_ARM,
        "map_difference": difference,
        "pretraining_verdict": verdict(difference, 0.0),
        "knn_test_accuracy_difference": knn,
        "knn_verdict": verdict(knn, 0.0),
    }


def results(out: Path, tracking_uri: str, early_stop_patience: int | None = None, n_boot: int = 2000) -> dict:
    """The results file's content (see the module docstring). ``early_stop_patience`` only for run folders
    whose training steps did not record it (:func:`recorded_patience`); it must agree where they did."""
    patience = recorded_patience(out)
    if patience is None and early_stop_patience is None:
        raise InputError(
            out,
            "no training step records its early_stop_patience (a run folder from before the step runner): "
            "give --early_stop_patience",
        )
    if patience is not None and early_stop_patience not in (None, patience):
        raise InputError(
            out, f"the arms trained with early_stop_patience {patience}, not {early_stop_patience}"
        )
    patience = early_stop_patience if patience is None else patience
    probe = _read_json(out / "knn_probe.json", "k-NN probe")
    if "difference" not in probe:
        raise InputError(
            out / "knn_probe.json",
            "no SimSiam encoder or no intervals (an older probe): rerun centernet_busi run (it probes again)",
        )
    arms, images = {}, {}
    for name, label in ARMS.items():
        print(f"{name}: bootstrap of mAP, AP50 and F1 ({n_boot} resamples)", flush=True)
        figures, images[name] = arm_results(out / name, n_boot)
        arms[name] = {"label": label, **figures}
    try:
        difference = map_difference(images[JUDGED_ARM], images[BASELINE_ARM], n_boot)
    except ValueError as error:
        raise InputError(out / JUDGED_ARM / "eval_test", f"{error} as {BASELINE_ARM}") from error
    simsiam, simsiam_curves = simsiam_results(tracking_uri)
    val_map = {name: metric_curves(tracking_uri, name, ["val_mAP"]).get("val_mAP", []) for name in ARMS}
    for name, curve in val_map.items():
        arms[name]["epochs_trained"] = len(curve)
    times = wall_time(out)
    for name in ARMS:  # an arm's wall time: its training and evaluation
        wall = _step_time(times, [f"{name}/train", f"{name}/evaluate"])
        if wall is not None:
            arms[name]["wall_s"] = wall
    wall = _step_time(times, [SIMSIAM_RUN])
    if wall is not None:
        simsiam["wall_s"] = wall
    settings = {**recorded_settings(out, tracking_uri), "early_stop_patience": patience}
    return {
        "split": probe["split"],
        "fold": probe["fold"],
        "images": probe["images"],
        "test_lesions": arms[BASELINE_ARM]["n_lesions"],
        "threshold_split": "val",
        "n_boot": n_boot,
        "arms": arms,
        "knn_probe": {key: value for key, value in probe.items() if key != "predictions"},
        "simsiam": simsiam,
        "curves": {"simsiam": simsiam_curves, "val_mAP": val_map},
        "settings": settings,
        "targets": targets(arms, difference, probe),
        "wall_time": times,
    }


def curves_figure(report: dict):
    """SimSiam loss, its collapse monitor, and each arm's validation mAP, per epoch."""
    from monai_xai.utils import pyplot

    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.4))
    simsiam = report["curves"]["simsiam"]
    panels = (
        ("train_loss", "SimSiam loss (negative cosine)"),
        ("z_std_ratio", "SimSiam z_std_ratio (1 healthy, 0 collapsed)"),
    )
    for ax, (name, title) in zip(axes, panels):
        values = [math.nan if v is None else v for v in simsiam[name]]
        ax.plot(range(1, len(values) + 1), values, color="C0")
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("epoch")
    axes[1].axhline(0.1, color="grey", linestyle="--", linewidth=0.8)  # the monitor's warning level
    for i, (name, curve) in enumerate(report["curves"]["val_mAP"].items()):
        values = [math.nan if v is None else v for v in curve]
        axes[2].plot(range(1, len(values) + 1), values, label=report["arms"][name]["label"], color=f"C{i}")
    axes[2].set_title("validation mAP@[.50:.95]", fontsize=9)
    axes[2].set_xlabel("epoch")
    axes[2].legend(fontsize=7)
    fig.tight_layout()
    return fig


def docs_figures(report: dict, out: Path, figures_dir: Path) -> None:
    """Copy each arm's test figures (:data:`ARM_FIGURES`) into ``figures_dir`` as ``busi_<arm>_<name>.png``,
    so that the docs show them without the run folder; their paths relative to the docs folder go to
    ``figures`` of each arm, and that of the curves (:data:`CURVES_FIGURE`, drawn by :func:`main`) to the
    report's."""
    from monai_xai.utils import copy_docs_figure

    for name, arm in report["arms"].items():
        arm["figures"] = {
            kind: copy_docs_figure(out / name / "eval_test" / file, figures_dir, f"busi_{name}_{kind}.png")
            for kind, file in ARM_FIGURES.items()
        }
    report["figures"] = {"curves": f"{figures_dir.name}/{CURVES_FIGURE}"}


# ------------------------------------------------------------------------------------------ run


#: the bundle's configs, as the steps' commands name them (they run in the repository)
CONFIGS = "bundles/centernet_detection/configs"
#: each arm's bundle overrides beside the shared ones (the progressive arm also gets ``unfreeze_interval``)
ARM_OVERRIDES: dict[str, dict[str, Any]] = {
    "random_init": {"init": "random", "freeze_policy": "all"},
    "simsiam_frozen": {"init": "simsiam", "freeze_policy": "frozen"},
    "simsiam_progressive": {"init": "simsiam", "freeze_policy": "progressive_epochs"},
    "retinanet": {},
}
#: each arm's config files after ``train.json`` (``evaluate.json`` follows them for its evaluation)
ARM_CONFIGS: dict[str, tuple[str, ...]] = {"retinanet": ("retinanet.json",)}
#: the budget below which results stay in the run folder (``--publish`` refused), with a patience above 0,
#: the default split and no ``--limit`` or ``--extra``
FULL_BUDGET = {"size": 192, "simsiam_size": 128, "simsiam_epochs": 200}
#: the split the published results are on
DEFAULT_SPLIT = "configs/datasets/busi_splits_dedup.json"
#: the fold that validates (its test set is reported)
FOLD = 0
#: the classes the COCO boxes carry (a normal image has no lesion)
BOX_CLASSES = ("benign", "malignant")


def _arg(path: Path) -> str:
    """A path as the steps' commands give it: relative to the repository, where they run, when inside it."""
    path = Path(os.path.abspath(path))
    return path.relative_to(REPO).as_posix() if path.is_relative_to(REPO) else str(path)


def tracking_store(out: Path) -> str:
    """The experiment's one MLflow store, ``sqlite:///<run_dir>/mlruns.db`` (absolute)."""
    return f"sqlite:///{os.path.abspath(out / 'mlruns.db')}"


def _extra_overrides(text: str | None) -> dict[str, Any]:
    """``--key value ...`` (or ``--key=value``) bundle overrides, each value as ``monai.bundle run`` (Fire)
    reads it from its command line."""
    import shlex

    from fire.parser import DefaultParseValue

    tokens, found = shlex.split(text or ""), {}
    while tokens:
        token = tokens.pop(0)
        if not token.startswith("--") or len(token) < 3:
            raise InputError(None, f"--extra: expected --key value, got {token!r}")
        if "=" in token:
            key, value = token[2:].split("=", 1)
        elif tokens:
            key, value = token[2:], tokens.pop(0)
        else:
            raise InputError(None, f"--extra: {token} has no value")
        found[key.replace("-", "_")] = DefaultParseValue(value)
    return found


def _json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def stale_output(step: str, out: Path) -> str | None:
    """Why step ``step`` of the run folder ``out`` is not done though its command finished, from its outputs;
    None when they are as the collector needs them. The runner skips a step by its command, and an output
    can be older than the command's record (an evaluation from before the threshold was chosen on
    validation, or before the ground truth was written per image) or deleted."""
    if step == "data":
        return None if (out / "data" / "boxes_coco.splits.json").is_file() else "no boxes_coco.splits.json"
    if step == SIMSIAM_RUN:
        return None if (out / SIMSIAM_RUN / "encoder.pt").is_file() else "no simsiam/encoder.pt"
    if step == "knn_probe":
        probe = _json(out / "knn_probe.json")
        return None if isinstance(probe, dict) and "difference" in probe else "no paired differences"
    arm, _, kind = step.partition("/")
    if kind == "evaluate":
        eval_dir = out / arm / "eval_test"
        metrics = _json(eval_dir / "metrics.json")
        if not isinstance(metrics, dict) or metrics.get("threshold_split") != "val":
            return "its score threshold was not chosen on the validation split"
        records = _json(eval_dir / "predictions.json")
        if not isinstance(records, list) or any(key not in r for r in records for key in RECORD_KEYS):
            return "its predictions.json lacks each image's ground truth (target_boxes, target_classes)"
    return None


def _run_step(runner: StepRunner, step: Step, out: Path) -> None:
    """``runner.run(step)``, after forgetting the step's done record where its outputs say it is not done
    (:func:`stale_output`): the runner skips by command and inputs only."""
    done = Path(step.run_dir) / DONE_FILE
    reason = stale_output(step.name, out)
    if reason is not None and done.is_file():
        print(f"{step.name}: done again ({reason})", flush=True)
        done.unlink()
    runner.run(step)


def steps(args: argparse.Namespace) -> list[Step]:
    """The run's steps in order: data, SimSiam, k-NN probe, then each arm's training and evaluation."""
    out, data, split = args.run_dir, args.data, args.split_file
    coco, coco_split = out / "data" / "boxes_coco.json", out / "data" / "boxes_coco.splits.json"
    encoder = out / SIMSIAM_RUN / "encoder.pt"
    limit = {"limit": args.limit} if args.limit else {}
    common = {
        "meta_file": f"{CONFIGS}/metadata.json",
        "logging_file": f"{CONFIGS}/logging.conf",
        "dataset": "busi_dedup",
        "coco_file": _arg(coco),
        "image_dir": _arg(data),
        "split_file": _arg(coco_split),
        "fold": FOLD,
        "num_workers": args.num_workers,
        "tracking_uri": tracking_store(out),
        **limit,
    }
    extra = _extra_overrides(args.extra)
    own = set(common) | {"limit", "output_dir", "spatial_size", "max_epochs", "run_name", "model_dir"}
    own |= {
        "pretrain_dir",
        "early_stop_patience",
        "unfreeze_interval",
        *(k for o in ARM_OVERRIDES.values() for k in o),
    }
    clashing = sorted(own & set(extra))
    if clashing:
        raise InputError(None, f"--extra sets {', '.join(clashing)}, which the run sets itself")
    common |= extra
    found = [
        Step(
            "data",
            [
                sys.executable, "scripts/make_coco_from_masks.py", "--csv", _arg(data / "labels.csv"),
                "--classes", *BOX_CLASSES, "--dedup_distance", "-1", "--split_file", _arg(split),
                "--out", _arg(coco),
            ],
            out / "data",
            inputs=[split],
        ),
        Step(
            SIMSIAM_RUN,
            bundle_run_argv(
                f"{CONFIGS}/pretrain_simsiam.json",
                {
                    **common, "output_dir": _arg(out / SIMSIAM_RUN),
                    "spatial_size": [args.simsiam_size, args.simsiam_size],
                    "max_epochs": args.simsiam_epochs, "run_name": SIMSIAM_RUN,
                },
            ),
            out / SIMSIAM_RUN,
            inputs=[coco, coco_split],
        ),
        Step(
            "knn_probe",
            [
                sys.executable, "-m", "monai_xai.experiments", "knn_probe",
                "--csv", _arg(data / "labels.csv"),
                "--split_file", _arg(split), "--fold", str(FOLD), "--encoder", _arg(encoder),
                "--spatial_size", str(args.simsiam_size), "--k", str(args.k),
                "--num_workers", str(args.num_workers),
                *(["--limit", str(args.limit)] if args.limit else []), "--out", _arg(out / "knn_probe.json"),
            ],
            out / "knn_probe",
            inputs=[split, encoder],
        ),
    ]  # fmt: skip
    for arm in ARMS:
        arm_dir = out / arm
        overrides = dict(ARM_OVERRIDES[arm])
        if overrides.get("freeze_policy") == "progressive_epochs":
            overrides["unfreeze_interval"] = args.unfreeze_interval
        overrides = {
            **common,
            "spatial_size": [args.size, args.size],
            "output_dir": _arg(arm_dir),
            "model_dir": _arg(arm_dir / "models"),
            "pretrain_dir": _arg(out / SIMSIAM_RUN),
            "max_epochs": args.max_epochs,
            "early_stop_patience": args.early_stop_patience,
            "run_name": arm,
            **overrides,
        }
        configs = [f"{CONFIGS}/train.json", *(f"{CONFIGS}/{name}" for name in ARM_CONFIGS.get(arm, ()))]
        reads = [coco, coco_split, *([encoder] if overrides.get("init") == "simsiam" else [])]
        found.append(Step(f"{arm}/train", bundle_run_argv(configs, overrides), arm_dir, inputs=reads))
        found.append(
            Step(
                f"{arm}/evaluate",
                bundle_run_argv([*configs, f"{CONFIGS}/evaluate.json"], overrides),
                arm_dir / "eval_test",
                inputs=[coco, coco_split, arm_dir / "checkpoints" / "best.pt"],
            )
        )
    return found


def below_budget(args: argparse.Namespace) -> str | None:
    """What keeps a run from publishing (:data:`FULL_BUDGET`); None at the full budget."""
    short = [
        f"--{key} {getattr(args, key)} < {value}"
        for key, value in FULL_BUDGET.items()
        if getattr(args, key) < value
    ]
    if args.early_stop_patience <= 0:
        short.append("--early_stop_patience 0 (no early stopping)")
    if args.split_file != REPO / DEFAULT_SPLIT:
        short.append(f"--split_file {args.split_file} is not {DEFAULT_SPLIT}")
    if args.limit:
        short.append(f"--limit {args.limit}")
    if args.extra:
        short.append(f"--extra {args.extra!r}")
    return ", ".join(short) or None


def run(args: argparse.Namespace) -> dict:
    """Run every step not done yet (resumable), then collect the results file's content."""
    with StepRunner(args.run_dir, "centernet_busi") as runner:
        for step in steps(args):
            _run_step(runner, step, args.run_dir)
    return results(args.run_dir, tracking_store(args.run_dir), n_boot=args.n_boot)


def _run_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--run_dir",
        type=Path,
        help="the run folder (default: runs/experiments/centernet_busi-<size>px in the repository)",
    )
    parser.add_argument("--size", type=int, default=FULL_BUDGET["size"], help="the detectors' input side")
    parser.add_argument("--simsiam_size", type=int, default=FULL_BUDGET["simsiam_size"])
    parser.add_argument("--simsiam_epochs", type=int, default=FULL_BUDGET["simsiam_epochs"])
    parser.add_argument("--max_epochs", type=int, default=80, help="the most epochs an arm trains")
    parser.add_argument(
        "--early_stop_patience", type=int, default=10, help="validations without a better mAP; 0 for none"
    )
    parser.add_argument("--unfreeze_interval", type=int, default=2, help="epochs per progressive stage")
    parser.add_argument("--k", type=int, default=20, help="neighbours that vote in the k-NN probe")
    parser.add_argument("--num_workers", type=int, default=2)
    parser.add_argument("--limit", type=int, help="images per part (a smoke test; never published)")
    parser.add_argument(
        "--extra", help='bundle overrides for every training and evaluation: "--key value ..."'
    )
    parser.add_argument(
        "--data", type=Path, help="the BUSI folder with labels.csv (default: ../shared/data/busi_256)"
    )
    parser.add_argument("--split_file", type=Path, default=REPO / DEFAULT_SPLIT)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser, commands = study_parser("centernet_busi", __doc__)
    run_parser = commands.add_parser(
        "run", help="convert the data, pretrain, probe, train and evaluate every arm (resumable), collect"
    )
    _run_arguments(run_parser)
    collect_parser = commands.add_parser(
        "collect", help="collect a finished run folder into the results file"
    )
    collect_parser.add_argument("run_dir", type=Path, help="the experiment's run folder")
    collect_parser.add_argument(
        "--early_stop_patience",
        type=int,
        help="validations without a better mAP before an arm stopped, 0 for none: only for run folders whose "
        "training steps did not record it (from before the step runner)",
    )
    collect_parser.add_argument(
        "--tracking_uri", help="the experiment's MLflow store (default: sqlite:///<run_dir>/mlruns.db)"
    )
    for sub in (run_parser, collect_parser):
        sub.add_argument("--n_boot", type=int, default=2000, help="bootstrap resamples of each interval")
        add_output_arguments(sub, published=PUBLISHED)
        figures = sub.add_mutually_exclusive_group()
        figures.add_argument("--figure", type=Path, help="where to draw the curves (PNG)")
        figures.add_argument(
            "--figures_dir",
            type=Path,
            help=f"a docs figures folder: draw the curves there ({CURVES_FIGURE}), copy each arm's overlays "
            "and confusion matrix there, and record their paths relative to its parent (default with "
            "--publish: the bundle's docs/figures)",
        )
        sub.add_argument("--tables", type=Path, help="also write the rendered tables (markdown) here")
    args = parser.parse_args(argv)
    if args.command == "run":  # paths as given, relative to the working folder; the steps run in REPO
        run_dir = args.run_dir or REPO / "runs" / "experiments" / f"centernet_busi-{args.size}px"
        args.run_dir = Path(os.path.abspath(run_dir))
        args.data = Path(os.path.abspath(args.data or REPO.parent / "shared" / "data" / "busi_256"))
        args.split_file = Path(os.path.abspath(args.split_file))
        if not args.publish:  # the run folder keeps what is not published
            args.out = args.out or args.run_dir / "busi.json"
            if args.figures_dir is None:
                args.figure = args.figure or args.run_dir / CURVES_FIGURE
        args.tables = args.tables or args.run_dir / "tables.md"
    return args


def destinations(args: argparse.Namespace) -> tuple[Path, Path | None]:
    """The results file and the docs figures folder ``args`` ask for (none without ``--figures_dir`` or
    ``--publish``); an error for a combination that would write into a bundle's docs without ``--publish``."""
    destination = output_path(args, PUBLISHED)
    figures_dir = args.figures_dir
    if args.publish and figures_dir is None:
        if args.figure is not None:
            raise InputError(args.figure, "--publish draws the curves into the docs' figures; drop --figure")
        figures_dir = (REPO / PUBLISHED).parent.parent / "figures"
    if (
        figures_dir is not None
        and not args.publish
        and figures_dir.resolve().is_relative_to(REPO / "bundles")
    ):
        raise InputError(figures_dir, "figures go into a bundle's docs only with --publish")
    return destination, figures_dir


def write_report(report: dict, args: argparse.Namespace) -> Path:
    """Write the results file (``--out``, or the docs with ``--publish``), its curves and figures and, with
    ``--tables``, the rendered tables; after ``--publish`` render the READMEs again."""
    destination, figures_dir = destinations(args)
    curves = args.figure
    if figures_dir is not None:
        docs_figures(report, args.run_dir, figures_dir)
        print(f"copied each arm's overlays and confusion matrix into {figures_dir}")
        curves = figures_dir / CURVES_FIGURE
    if curves is not None:
        from monai_xai.visualize.figures import save_figure

        save_figure(curves_figure(report), curves)
        print(f"written {curves}")
    write_results(report, destination, publish=args.publish)
    if args.tables is not None:
        args.tables.write_text(render(report))
    for name, arm in report["arms"].items():
        print(f"{name}: " + ", ".join(f"{key} {fmt_ci(arm[key])}" for key in ("map", "ap50", "f1")))
    verdicts = {k: v for k, v in report["targets"].items() if k.endswith("_verdict")}
    print(f"targets: {verdicts}; written {destination}" + (f", tables {args.tables}" if args.tables else ""))
    if args.publish:
        from .readme import update

        for path in update():
            print(f"updated: {path.relative_to(REPO)}")
    return destination


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.command == "run":
        short = below_budget(args)
        if args.publish and short:
            raise InputError(None, f"--publish needs the full budget {FULL_BUDGET}: {short}")
        destinations(args)  # refuse a destination before hours of training, not after
        report = run(args)
    else:
        tracking_uri = args.tracking_uri or tracking_store(args.run_dir)
        report = results(args.run_dir, tracking_uri, args.early_stop_patience, args.n_boot)
    write_report(report, args)
    return 0


# ------------------------------------------------------------------------------------------ rendering


def _ap(value: Any) -> str:
    """An AP as the detection tables write it; -1 (no lesion of that size) is n/a."""
    return "n/a" if as_stats(value)["mean"] < 0 else fmt_ci(value)


def _judged(stats: Any, target: float) -> str:
    """:func:`verdict`, which says "met" only from an interval; a figure without one awaits the re-run."""
    return NO_INTERVAL if stats is None else verdict_cell(stats, target)


def _wall_time(record: Mapping[str, Any] | None) -> str:
    if record is None:
        return "-"
    return f"{record['seconds']:.0f} s" + (" (resumed: last part only)" if record["resumed"] else "")


#: an arm's figures in the results file's ``figures``: kind -> (name, what the caption adds)
FIGURE_CAPTIONS = {
    "overlays": (
        "test overlays",
        " at its score threshold (truth green, predictions with class and score)",
    ),
    "confusion": ("confusion matrix", ""),
}


def _figures(report: dict, judged: str) -> list[str]:
    """The curves, the judged arm's test overlays and confusion matrix as images, the other arms' as links;
    nothing when the results file records no figures in the docs (``figures``: a run below full budget)."""
    if "figures" not in report:
        return []
    arms = report["arms"]
    rows = [
        "",
        "SimSiam loss, its collapse monitor `z_std_ratio` and each arm's validation mAP per epoch:",
        "",
        f"![SimSiam and validation curves]({report['figures']['curves']})",
    ]
    label = arms[judged]["label"]
    for kind, (words, detail) in FIGURE_CAPTIONS.items():
        path = arms[judged]["figures"][kind]
        rows += ["", f"{label} (the judged arm), {words}{detail}:", "", f"![{words}, {label}]({path})"]
    others = [
        f"{arm['label']}: "
        + ", ".join(f"[{words}]({arm['figures'][kind]})" for kind, (words, _) in FIGURE_CAPTIONS.items())
        for name, arm in arms.items()
        if name != judged and "figures" in arm
    ]
    if others:
        rows += ["", f"The other arms' figures: {'; '.join(others)}."]
    return rows


def _targets(report: dict, judged: str) -> list[str]:
    arms, target, probe = report["arms"], report["targets"], report["knn_probe"]
    baseline = target.get("baseline_arm", BASELINE_ARM)
    ap50, difference = arms[judged]["ap50"], target.get("map_difference")
    knn = {name: probe["encoders"][name]["test"]["accuracy"] for name in ("simsiam", "random")}
    knn_difference = probe.get("difference", {}).get("test", {}).get("accuracy")

    def paired(stats: Mapping[str, Any] | None) -> str:
        return "" if stats is None else f", paired difference {fmt_ci(stats)}"

    return [
        "",
        f"Targets, judged on the arm declared before the test set was read ({arms[judged]['label']}), each "
        "met only when its 95 % interval clears it: test AP50 ≥ "
        f"{target['ap50_at_least']:.2f}: {fmt_ci(ap50)}, {_judged(ap50, target['ap50_at_least'])}; mAP at "
        f"least that of {arms[baseline]['label']}: {fmt_ci(arms[judged]['map'])} vs "
        f"{fmt_ci(arms[baseline]['map'])}{paired(difference)}, {_judged(difference, 0.0)}; SimSiam "
        f"encoder above a random one in k-NN test accuracy: {fmt_ci(knn['simsiam'])} vs "
        f"{fmt_ci(knn['random'])}{paired(knn_difference)}, {_judged(knn_difference, 0.0)}.",
    ]


def _threshold_note(report: dict, judged: str) -> str:
    if report.get("threshold_split") == "val":
        n_images, n_boot = report["arms"][judged]["n_images"], report.get("n_boot")
        return (
            "F1, threshold, confusion matrices and per-class figures: at each arm's score threshold, the F1-"
            "optimal one on the validation split, applied unchanged to the test set. mAP, AP50 and F1: 95 % "
            f"intervals, bootstrap over the {n_images} test images stratified by image class ({n_boot} "
            "resamples)."
        )
    return (
        "This file predates the intervals and choosing the score threshold on validation: each arm's F1, "
        "threshold, confusion matrix and per-class figures come from a threshold searched on the test set, "
        "so they are optimistic (mAP and AP are threshold-free); no figure has an interval (re-run pending)."
    )


def render(report: dict) -> str:
    """Test AP and F1 per detector arm with its training length, the targets on the declared arm, the k-NN
    probe of the encoders, the SimSiam curves in numbers, then the IoU-0.25 confusion matrices and the
    per-class statistics. Renders files with and without intervals; "met" only from an interval."""
    arms, settings = report["arms"], report["settings"]
    judged = report["targets"].get("judged_arm", JUDGED_ARM)
    rows = [
        "| arm | mAP@[.50:.95] | AP50 | AP75 | AP small | AP medium | AP large | F1 | threshold | "
        "epochs (best) | train + test |",
        "|---" * 11 + "|",
    ]
    for arm in arms.values():
        aps = " | ".join(_ap(arm[k]) for k in ("map", "ap50", "ap75", "ap_small", "ap_medium", "ap_large"))
        epochs = f"{arm.get('epochs_trained', '-')} ({arm.get('best_epoch', '-')})"
        rows.append(
            f"| {arm['label']} | {aps} | {fmt_ci(arm['f1'])} | {fmt(arm['f1_threshold'], 2)} | "
            f"{epochs} | {_wall_time(arm.get('wall_s'))} |"
        )
    rows += ["", _threshold_note(report, judged)]
    rows += _targets(report, judged)
    simsiam = report["simsiam"]
    rows += ["", *probe_table(report["knn_probe"], f"SimSiam, {simsiam['epochs']} epochs")]
    loss, ratio = simsiam["train_loss"], simsiam["z_std_ratio"]
    rows += [
        "",
        f"SimSiam: {simsiam['epochs']} epochs at {settings['simsiam_spatial_size']}x"
        f"{settings['simsiam_spatial_size']} on the fold's training images only, loss "
        f"{fmt(loss['first'])} → {fmt(loss['last'])} (lowest {fmt(loss['min'])}; -1 is the bound), collapse "
        f"monitor `z_std_ratio` {fmt(ratio['first'])} → {fmt(ratio['last'])} (lowest {fmt(ratio['min'])}; "
        f"about 1 healthy, 0 collapsed); {_wall_time(simsiam.get('wall_s'))}.",
    ]
    for arm in arms.values():
        labels, matrix = arm["confusion_matrix"]["labels"], arm["confusion_matrix"]["matrix"]
        rows += [
            "",
            f"Confusion matrix, {arm['label']} (IoU ≥ {arm['iou_threshold']}, score ≥ "
            f"{fmt(arm['f1_threshold'], 2)}; rows true, columns predicted)",
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
                f"| {arm['label']} | {name} | {fmt(s['precision'])} | {fmt(s['recall'])} | {fmt(s['f1'])} | "
                f"{s['over_detected']} | {s['missed']} | {s['false_detections']} |"
            )
    rows += _figures(report, judged)
    images, size = report["images"], settings["spatial_size"]
    patience = settings.get("early_stop_patience")
    stopping = (
        f"stopped after {patience} validations without a better validation mAP"
        if patience
        else "without early stopping"
    )
    smoke = f" Smoke run: at most {settings['limit']} images per part." if "limit" in settings else ""
    rows += [
        "",
        f"Split `{report['split']}` (near-duplicates kept in one part), fold {report['fold']}: "
        f"{images['train']} training, {images['val']} validation images; test set {images['test']} images, "
        f"{report['test_lesions']} lesions. Detectors at {size}x{size}, at most {settings['max_epochs']} "
        f"epochs, {stopping}; the epoch of the best validation mAP is tested. Progressive unfreezing: one "
        f"more stage every {settings['unfreeze_interval']} epochs, `layer4` first. Train + test: wall time "
        f"of the arm.{smoke}",
    ]
    return "\n".join(rows) + "\n"


def eval_metrics(report: dict) -> dict[str, dict]:
    """The metadata's ``eval_metrics`` entry of each arm: mAP, AP50, AP75 and F1 (with ``<key>_ci95`` where
    the file has intervals), rounded to 4 decimals."""
    size = report["settings"]["spatial_size"]
    entries = {}
    for arm, figures in report["arms"].items():
        entry: dict[str, Any] = {
            "run": f"docs/results/busi.json, arm '{arm}': "
            "python -m monai_xai.experiments centernet_busi run; "
            f"leak-free split ({report['split']}) fold {report['fold']}, "
            f"{report['images']['test']} test images, {size} px",
        }
        for key in ("map", "ap50", "ap75", "f1"):
            stats = as_stats(figures[key])
            entry[key] = round(stats["mean"], 4)
            if "ci95" in stats:
                entry[f"{key}_ci95"] = [round(v, 4) for v in stats["ci95"]]
        entries[f"busi_leakfree_{size}px_test_{arm}"] = entry
    return entries


BLOCKS = {"centernet_busi": bundle_results("centernet_detection", "busi", render)}
EVAL_METRICS = {PUBLISHED: eval_metrics}
