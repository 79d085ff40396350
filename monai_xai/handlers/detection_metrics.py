"""COCO-style AP of one validation epoch, as an ignite metric of a detection evaluator."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from ignite.metrics import Metric
from ignite.metrics.metric import reinit__is_reduced

from monai_xai.detection.collate import BOXES, LABELS
from monai_xai.engines.detection import DETECTIONS

__all__ = ["DetectionEpochMetric"]


class DetectionEpochMetric(Metric):
    """``mAP``, ``AP50``, ``AP75``, size ranges and per-class AP of an epoch (:func:`coco_detection_metrics`).

    With ``only`` set (e.g. ``"mAP"``) it reports that one scalar, as a workflow's key metric must be.
    """

    def __init__(
        self,
        class_names: Sequence[str],
        prefix: str = "",
        only: str | None = None,
        device: str | torch.device = "cpu",
    ):
        self.class_names, self.prefix, self.only = list(class_names), prefix, only
        super().__init__(output_transform=lambda output: (output,), device=device, skip_unrolling=True)

    @reinit__is_reduced
    def reset(self) -> None:
        self._predictions: list[dict] = []
        self._targets: list[dict] = []

    @reinit__is_reduced
    def update(self, wrapped: tuple[dict]) -> None:
        (output,) = wrapped
        self._predictions += output[DETECTIONS]
        self._targets += [{"boxes": b, "labels": lab} for b, lab in zip(output[BOXES], output[LABELS])]

    def compute(self) -> dict[str, float] | float:
        from monai_xai.metrics.detection import coco_detection_metrics

        scores = coco_detection_metrics(self._predictions, self._targets, self.class_names)
        if self.only is not None:
            return scores[self.only]
        return {f"{self.prefix}{k}": v for k, v in scores.items()}
