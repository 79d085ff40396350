"""Write what inference produced: class probabilities as JSON and an attention overlay per image."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import torch
from ignite.engine import Engine

from monai_xai.engines.outputs import ATTENTION_MAP
from monai_xai.handlers.base import ReportHandler
from monai_xai.utils import batch_strings

__all__ = ["PredictionSaver"]


class PredictionSaver(ReportHandler):
    """Collect predictions of an evaluator over unlabeled images and save them.

    ``<output_dir>/predictions.json`` lists, per image, its source, the predicted class and the
    probability of every class; ``<output_dir>/overlays/<stem>.png`` shows the attention map over
    the image, for networks that have one. Class and probabilities are the engine's postprocessing outputs
    (``class``, ``probabilities``: with a checkpoint's operating point, its threshold and temperature) when
    it has them, else the argmax and softmax of the logits.

    Args:
        output_dir: folder of ``predictions.json`` and the overlays.
        class_names: names of the classes, in label order.
        overlays: whether to draw an attention overlay per image.
    """

    def __init__(
        self, output_dir: str | os.PathLike, class_names: Sequence[str], overlays: bool = True
    ) -> None:
        super().__init__(output_dir)
        self.class_names = list(class_names)
        self.overlays = overlays

    def reset(self, engine: Engine) -> None:
        self.records: list[dict] = []

    def collect(self, engine: Engine) -> None:
        from monai_xai.visualize import attention_overlay_figure, save_figure

        out = engine.state.output
        if "probabilities" in out:
            probs = torch.as_tensor(out["probabilities"]).detach().float().cpu()
        else:
            probs = torch.softmax(out["pred"].detach().float(), dim=1).cpu()
        decided = torch.as_tensor(out["class"]).reshape(-1).long() if "class" in out else probs.argmax(dim=1)
        sources = batch_strings(engine.state.batch, "source", len(probs))
        for i, (src, p) in enumerate(zip(sources, probs)):
            k = int(decided[i])
            record = {
                "source": src,
                "prediction": self.class_names[k],
                "probabilities": {c: round(float(v), 5) for c, v in zip(self.class_names, p)},
            }
            if self.overlays and ATTENTION_MAP in out:
                stem = Path(src).name.split(".")[0] or f"image{len(self.records):05d}"
                fig = attention_overlay_figure(
                    [out["image"][i]],
                    [out[ATTENTION_MAP][i]],
                    titles=[f"{record['prediction']} {float(p[k]):.2f}"],
                )
                record["overlay"] = str(save_figure(fig, self.output_dir / "overlays" / f"{stem}.png"))
            self.records.append(record)

    def write(self, engine: Engine) -> None:
        self.save_json("predictions.json", self.records)
