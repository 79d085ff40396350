"""Everything a detection evaluation leaves behind: metrics, predictions, figures, and their MLflow copy."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import numpy as np
from ignite.engine import Engine

from monai_xai.detection.collate import BOXES, LABELS
from monai_xai.engines.detection import DETECTIONS
from monai_xai.handlers.base import ReportHandler

__all__ = ["DetectionReportHandler", "flatten_detection_report"]


def flatten_detection_report(report: dict, prefix: str = "") -> dict[str, float]:
    """Flat metric names for MLflow: ``<prefix>mAP``, ``<prefix>f1``, ``<prefix>f1_threshold`` (the threshold
    chosen on validation), ``<prefix>precision``, ``<prefix>recall``, ``<prefix>benign_recall``, ..."""
    flat = {f"{prefix}{k}": float(v) for k, v in report["coco"].items()}
    at_threshold = report["f1_threshold"]
    flat[f"{prefix}f1"] = float(at_threshold["f1"])
    flat[f"{prefix}f1_threshold"] = float(at_threshold["threshold"])
    for key in ("precision", "recall"):
        if key in at_threshold:
            flat[f"{prefix}{key}"] = float(at_threshold[key])
    for name, stats in report["per_class"].items():
        for key, value in stats.items():
            flat[f"{prefix}{name}_{key}"] = float(value)
    return flat


class DetectionReportHandler(ReportHandler):
    """Collects one pass of a :class:`~monai_xai.engines.CenterNetEvaluator` and writes the study's report.

    ``metrics.json`` (COCO AP; at ``score_threshold``, chosen on the validation split and applied here
    unchanged: pooled precision, recall and F1, the IoU-0.25 confusion matrix with its None row/column,
    per-class P/R/F1, over-detections, misses; ``threshold_split`` names the split that chose it),
    ``predictions.json`` (every kept peak per image), ``confusion_matrix.png`` and ``overlays.png`` (the
    first ``n_overlays`` images at that threshold); then logs metrics and files to the MLflow run.

    Args:
        output_dir: folder of the report.
        class_names: names of the lesion classes, in label order.
        n_overlays: how many images the overlay figure shows.
        split_name: name of the evaluated split, put before the logged metric names.
        iou_threshold: IoU at which a prediction matches a true box in the confusion matrix and P/R/F1.
        tracking_uri: MLflow tracking URI.
        experiment_name: MLflow experiment of the run.
        run_name: MLflow run the report is logged to; nothing is logged without it.
        score_threshold: the record of :class:`~monai_xai.handlers.ScoreThresholdFitter` (its ``threshold``
            and ``split``), or a number given by hand (``threshold_split`` ``"given"``). Nothing is chosen
            on the evaluated split; a record chosen on ``"test"`` is refused.
    """

    def __init__(
        self,
        output_dir: str | os.PathLike,
        class_names: Sequence[str],
        n_overlays: int = 8,
        split_name: str = "test",
        iou_threshold: float = 0.25,
        tracking_uri: str | None = None,
        experiment_name: str = "centernet_detection",
        run_name: str | None = None,
        *,
        score_threshold: Mapping | float,
    ) -> None:
        super().__init__(output_dir, tracking_uri, experiment_name, run_name)
        self.class_names = list(class_names)
        self.n_overlays, self.split_name, self.iou_threshold = n_overlays, split_name, iou_threshold
        if isinstance(score_threshold, Mapping):
            self.score_threshold = float(score_threshold["threshold"])
            self.threshold_split = str(score_threshold.get("split", "val"))
        else:
            self.score_threshold, self.threshold_split = float(score_threshold), "given"
        if self.threshold_split == "test":
            raise ValueError(
                "DetectionReportHandler: the score threshold was chosen on the test split; choose it on "
                "validation (ScoreThresholdFitter)"
            )

    def reset(self, engine: Engine) -> None:
        self._predictions: list[dict] = []
        self._targets: list[dict] = []
        self._sources: list[str] = []
        self._images: list = []

    def collect(self, engine: Engine) -> None:
        out = engine.state.output
        n = len(out[DETECTIONS])
        self._predictions += out[DETECTIONS]
        self._targets += [{"boxes": b.cpu(), "labels": lab.cpu()} for b, lab in zip(out[BOXES], out[LABELS])]
        self._sources += [str(s) for s in out.get("source", [""] * n)]
        self._images += [img.cpu() for img in out["image"][: max(0, self.n_overlays - len(self._images))]]

    def write(self, engine: Engine) -> None:
        from monai_xai.metrics.detection import detection_report

        report = detection_report(
            self._predictions,
            self._targets,
            self.class_names,
            self.iou_threshold,
            score_threshold=self.score_threshold,
            threshold_split=self.threshold_split,
        )
        self.save_json("metrics.json", report)
        # each image's detections beside its ground truth (one pixel frame): what per-image resampling needs
        self.save_json(
            "predictions.json",
            [
                {"source": src, "boxes": p["boxes"].tolist(), "scores": p["scores"].tolist(),
                 "classes": [self.class_names[int(c)] for c in p["labels"]],
                 "target_boxes": t["boxes"].tolist(),
                 "target_classes": [self.class_names[int(c)] for c in t["labels"]]}
                for src, p, t in zip(self._sources, self._predictions, self._targets)
            ],
        )  # fmt: skip
        self._figures(report)
        self.results = report
        self.log(
            flatten_detection_report(report, prefix=f"{self.split_name}_"), [self.output_dir], self.split_name
        )

    def _figures(self, report: dict) -> None:
        from monai_xai.visualize import confusion_matrix_figure, save_figure
        from monai_xai.visualize.detection import detection_overlay, overlay_grid, save_png

        cm = report["confusion_matrix"]
        threshold, chosen_on = report["f1_threshold"]["threshold"], self.threshold_split
        title = f"Lesions at IoU >= {self.iou_threshold}, score >= {threshold:.2f} (chosen on {chosen_on})"
        save_figure(
            confusion_matrix_figure(np.asarray(cm["matrix"]), cm["labels"], title),
            self.output_dir / "confusion_matrix.png",
        )
        overlays = []
        for image, pred, target in zip(self._images, self._predictions, self._targets):
            keep = pred["scores"] >= threshold
            overlays.append(
                detection_overlay(
                    image,
                    pred["boxes"][keep],
                    pred["labels"][keep],
                    pred["scores"][keep],
                    self.class_names,
                    target["boxes"],
                    target["labels"],
                )  # fmt: skip
            )
        if overlays:
            save_png(overlay_grid(overlays), self.output_dir / "overlays.png")
