"""A detector checkpoint's confidence threshold, chosen on the validation split and stored beside it."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from ignite.engine import Engine

from monai_xai.handlers.checkpoint_record import CheckpointRecordFitter

__all__ = ["ScoreThresholdFitter"]


class ScoreThresholdFitter(CheckpointRecordFitter):
    """Run a detector (:class:`~monai_xai.engines.CenterNetEvaluator` or the RetinaNet one) over the
    validation split once and store the confidence threshold of its best lesion-level F1 beside the
    checkpoint.

    The threshold is the one of ``thresholds`` (0.00, 0.05, ..., 1.00) whose boxes give the best F1 pooled
    over the classes at IoU >= ``iou_threshold`` (:func:`~monai_xai.metrics.detection.f1_threshold_search`;
    the lowest wins ties). The record (``<checkpoint stem>.score_threshold.json``, see
    :func:`~monai_xai.networks.read_score_threshold`) holds it with the split it was chosen on, the validation
    precision, recall, F1 and F1 curve, and the checkpoint's digest and settings, so an evaluation of the same
    weights reuses it (:meth:`fit` skips the pass). A :class:`~monai_xai.handlers.DetectionReportHandler` of
    any split applies it unchanged and ``inference.json`` keeps the boxes at or above it.

    Args:
        checkpoint: the weights the network holds (``best.pt``).
        num_classes: classes of the detector.
        iou_threshold: IoU at which a box finds its lesion (the study's 0.25).
        thresholds: the confidence thresholds searched.
        split_name: name of the split the evaluator runs on, recorded (``"val"``).
    """

    kind = "score_threshold"

    def __init__(
        self,
        checkpoint: str | os.PathLike,
        num_classes: int,
        iou_threshold: float = 0.25,
        thresholds: Sequence[float] | None = None,
        split_name: str = "val",
    ) -> None:
        from monai_xai.metrics.detection import F1_THRESHOLDS

        super().__init__(checkpoint, split_name)
        self.num_classes = int(num_classes)
        self.iou_threshold = float(iou_threshold)
        self.thresholds = [float(t) for t in (F1_THRESHOLDS if thresholds is None else thresholds)]
        self._predictions: list[dict] = []
        self._targets: list[dict] = []

    def settings(self) -> dict[str, Any]:
        return {
            **super().settings(),
            "num_classes": self.num_classes,
            "iou_threshold": self.iou_threshold,
            "thresholds": self.thresholds,
        }

    def reset(self, _: Engine) -> None:
        self._predictions, self._targets = [], []

    def collect(self, engine: Engine) -> None:
        from monai_xai.detection.collate import BOXES, LABELS
        from monai_xai.engines.detection import DETECTIONS

        out = engine.state.output
        self._predictions += [
            {k: v.detach().cpu() if isinstance(v, torch.Tensor) else v for k, v in p.items()}
            for p in out[DETECTIONS]
        ]
        self._targets += [{"boxes": b.cpu(), "labels": lab.cpu()} for b, lab in zip(out[BOXES], out[LABELS])]

    def choose(self) -> dict[str, Any]:
        from monai_xai.metrics.detection import f1_threshold_search

        search = f1_threshold_search(
            self._predictions, self._targets, self.num_classes, self.thresholds, self.iou_threshold
        )
        n_lesions = sum(len(t["labels"]) for t in self._targets)
        return {**search, "n_images": len(self._targets), "n_lesions": int(n_lesions)}

    def summary(self, record: Mapping[str, Any]) -> str:
        return (
            f"threshold {record['threshold']:.2f}, F1 {record['f1']:.3f} (precision "
            f"{record['precision']:.3f}, recall {record['recall']:.3f}) on {record['n_images']} images, "
            f"{record['n_lesions']} lesions"
        )
