"""COCO-style AP of one validation epoch, as an ignite metric of a detection evaluator."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from ignite.metrics import Metric
from ignite.metrics.metric import reinit__is_reduced
from monai.handlers.utils import from_engine

from monai_xai.detection.collate import BOXES, LABELS
from monai_xai.engines.detection import DETECTIONS

__all__ = ["DetectionEpochMetric"]

_DETECTIONS_AND_TRUTH = from_engine([DETECTIONS, BOXES, LABELS])


class DetectionEpochMetric(Metric):
    """``mAP``, ``AP50``, ``AP75``, size ranges and per-class AP of an epoch (:func:`coco_detection_metrics`).

    AP needs every detection of the epoch ranked together, so the metric gathers them and computes once.

    Args:
        class_names: names of the lesion classes, in label order (per-class AP is reported by name).
        prefix: put before every reported name.
        only: report this one score as a scalar (e.g. ``"mAP"``), as a workflow's key metric must be.
        output_transform: callable turning ``engine.state.output`` into ``(detections, boxes, labels)``, per
            image a ``{"boxes", "scores", "labels"}`` prediction and the true boxes and labels; by default
            the detection evaluator's ``detections``, ``boxes`` and ``labels`` entries.
        device: device of the metric's state.
    """

    def __init__(
        self,
        class_names: Sequence[str],
        prefix: str = "",
        only: str | None = None,
        output_transform: Callable = _DETECTIONS_AND_TRUTH,
        device: str | torch.device = "cpu",
    ) -> None:
        self.class_names, self.prefix, self.only = list(class_names), prefix, only
        super().__init__(output_transform=output_transform, device=device, skip_unrolling=True)

    @reinit__is_reduced
    def reset(self) -> None:
        self._predictions: list[dict] = []
        self._targets: list[dict] = []

    @reinit__is_reduced
    def update(self, output: tuple[Sequence[dict], Sequence[torch.Tensor], Sequence[torch.Tensor]]) -> None:
        detections, boxes, labels = output
        self._predictions += list(detections)
        self._targets += [{"boxes": b, "labels": lab} for b, lab in zip(boxes, labels)]

    def compute(self) -> dict[str, float] | float:
        from monai_xai.metrics.detection import coco_detection_metrics

        scores = coco_detection_metrics(self._predictions, self._targets, self.class_names)
        if self.only is not None:
            return scores[self.only]
        return {f"{self.prefix}{k}": v for k, v in scores.items()}
