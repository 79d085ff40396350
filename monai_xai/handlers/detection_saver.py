"""Write what detection inference produced: boxes, classes and scores as JSON, and an overlay per image."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from ignite.engine import Engine

from monai_xai.engines.detection import DETECTIONS
from monai_xai.handlers.base import ReportHandler

__all__ = ["DetectionSaver"]


class DetectionSaver(ReportHandler):
    """``<output_dir>/detections.json`` and ``<output_dir>/overlays/<stem>.png`` for unlabeled images.

    Per image: its source, the network input size, and the boxes scoring at least ``score_threshold``
    in ``xyxy`` pixels of the source image (scaled back from the network input when the batch carries
    ``original_size``), with class names and scores.

    Args:
        output_dir: folder of ``detections.json`` and the overlays.
        class_names: names of the lesion classes, in label order.
        score_threshold: lowest score of a written box.
        overlays: whether to draw an overlay per image.
    """

    def __init__(
        self,
        output_dir: str | os.PathLike,
        class_names: Sequence[str],
        score_threshold: float = 0.3,
        overlays: bool = True,
    ) -> None:
        super().__init__(output_dir)
        self.class_names = list(class_names)
        self.score_threshold, self.overlays = float(score_threshold), overlays

    def reset(self, engine: Engine) -> None:
        self.records: list[dict] = []

    def collect(self, engine: Engine) -> None:
        from monai_xai.visualize.detection import detection_overlay, save_png

        out = engine.state.output
        for i, det in enumerate(out[DETECTIONS]):
            keep = det["scores"] >= self.score_threshold
            boxes, scores, labels = det["boxes"][keep], det["scores"][keep], det["labels"][keep]
            input_size = tuple(out["image"].shape[-2:])
            scaled = boxes.clone()
            if "original_size" in out:
                h, w = (float(v) for v in out["original_size"][i])
                scaled[:, [0, 2]] *= w / input_size[1]
                scaled[:, [1, 3]] *= h / input_size[0]
            source = str(out["source"][i]) if "source" in out else f"image_{len(self.records):04d}"
            record = {
                "source": source,
                "input_size": list(input_size),
                "boxes": [[round(float(v), 2) for v in box] for box in scaled],
                "classes": [self.class_names[int(c)] for c in labels],
                "scores": [round(float(s), 4) for s in scores],
            }
            if self.overlays:
                path = self.output_dir / "overlays" / f"{len(self.records):04d}_{Path(source).stem}.png"
                save_png(detection_overlay(out["image"][i], boxes, labels, scores, self.class_names), path)
                record["overlay"] = str(path)
            self.records.append(record)

    def write(self, engine: Engine) -> None:
        self.save_json("detections.json", {"score_threshold": self.score_threshold, "images": self.records})
