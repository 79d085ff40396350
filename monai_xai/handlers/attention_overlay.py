"""Save the attention maps of a fixed set of validation images after every validation run."""

from __future__ import annotations

import os

import torch
from ignite.engine import Engine, Events

from monai_xai.engines.outputs import ATTENTION_MAP, MASK
from monai_xai.handlers.base import ReportHandler
from monai_xai.utils import atomic_write_bytes

__all__ = ["AttentionOverlayHandler"]


class AttentionOverlayHandler(ReportHandler):
    """Overlay figure of the first ``n_images`` items an evaluator sees (use an unshuffled loader).

    Written to ``<output_dir>/val_attention_epoch<NNN>.png`` and ``val_attention_latest.png`` so
    that the evolution of the attention over training can be browsed, in files and in MLflow.
    Does nothing for networks without an attention map.

    Args:
        output_dir: folder of the figures.
        n_images: how many items the figure shows.
        class_names: names of the classes in the titles; class indices when None.
    """

    reset_event = Events.EPOCH_STARTED
    write_event = Events.EPOCH_COMPLETED

    def __init__(
        self, output_dir: str | os.PathLike, n_images: int = 8, class_names: list[str] | None = None
    ) -> None:
        super().__init__(output_dir)
        self.n_images = n_images
        self.class_names = class_names

    def reset(self, engine: Engine) -> None:
        self._items: list[tuple] = []

    def collect(self, engine: Engine) -> None:
        out = engine.state.output
        if ATTENTION_MAP not in out or len(self._items) >= self.n_images:
            return
        probs = torch.softmax(out["pred"].detach().float(), dim=1).cpu()
        for i in range(min(len(out["image"]), self.n_images - len(self._items))):
            mask = out[MASK][i].cpu() if MASK in out else None
            label = int(out["label"][i]) if "label" in out else None
            self._items.append((out["image"][i].cpu(), out[ATTENTION_MAP][i].cpu(), mask, label, probs[i]))

    def _name(self, index: int | None) -> str:
        if index is None:
            return "?"
        return self.class_names[index] if self.class_names else str(index)

    def write(self, engine: Engine) -> None:
        if not self._items:
            return
        from monai_xai.visualize import attention_overlay_figure, save_figure

        images, maps, masks, labels, probs = zip(*self._items)
        titles = [
            f"true {self._name(lab)}\npred {self._name(int(p.argmax()))} {float(p.max()):.2f}"
            for lab, p in zip(labels, probs)
        ]
        has_masks = all(m is not None for m in masks)
        fig = attention_overlay_figure(images, maps, masks if has_masks else None, titles)
        path = save_figure(fig, self.output_dir / f"val_attention_epoch{engine.state.epoch:03d}.png")
        atomic_write_bytes(self.output_dir / "val_attention_latest.png", path.read_bytes())
