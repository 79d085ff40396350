"""Validation figures of a detector: a grid of overlays (truth and predictions) per epoch."""

from __future__ import annotations

import os
from collections.abc import Sequence

from ignite.engine import Engine, Events

from monai_xai.detection.collate import BOXES, LABELS
from monai_xai.engines.detection import DETECTIONS
from monai_xai.handlers.base import ReportHandler

__all__ = ["DetectionOverlayHandler"]


class DetectionOverlayHandler(ReportHandler):
    """Save ``<output_dir>/<name>_epoch###.png`` (and ``<name>_latest.png``) for the first ``n_images``.

    Predictions under ``score_threshold`` are left out so that the figure shows what a user would see.
    The files land in the figures folder that the bundle logs to MLflow.

    Args:
        output_dir: folder of the figures.
        class_names: names of the lesion classes, in label order.
        n_images: how many images the grid shows.
        score_threshold: lowest score of a drawn prediction.
        name: stem of the file names.
    """

    reset_event = Events.EPOCH_STARTED
    write_event = Events.EPOCH_COMPLETED

    def __init__(
        self,
        output_dir: str | os.PathLike,
        class_names: Sequence[str],
        n_images: int = 8,
        score_threshold: float = 0.3,
        name: str = "val_detections",
    ) -> None:
        super().__init__(output_dir)
        self.class_names = list(class_names)
        self.n_images, self.score_threshold, self.name = n_images, score_threshold, name

    def reset(self, engine: Engine) -> None:
        self._overlays: list = []

    def collect(self, engine: Engine) -> None:
        from monai_xai.visualize.detection import detection_overlay

        out = engine.state.output
        for i in range(min(len(out["image"]), self.n_images - len(self._overlays))):
            det = out[DETECTIONS][i]
            keep = det["scores"] >= self.score_threshold
            self._overlays.append(
                detection_overlay(
                    out["image"][i],
                    det["boxes"][keep],
                    det["labels"][keep],
                    det["scores"][keep],
                    self.class_names,
                    out[BOXES][i] if BOXES in out else None,
                    out[LABELS][i] if LABELS in out else None,
                )  # fmt: skip
            )

    def write(self, engine: Engine) -> None:
        from monai_xai.visualize.detection import overlay_grid, save_png

        if not self._overlays:
            return
        grid = overlay_grid(self._overlays)
        save_png(grid, self.output_dir / f"{self.name}_epoch{engine.state.epoch:03d}.png")
        save_png(grid, self.output_dir / f"{self.name}_latest.png")
