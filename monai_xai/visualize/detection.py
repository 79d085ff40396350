"""Detection overlays drawn with Pillow: boxes, classes and scores over the grey image the network saw."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from monai_xai.utils import atomic_path

__all__ = ["CLASS_COLOURS", "GT_COLOUR", "detection_overlay", "overlay_grid", "save_png"]

#: Prediction colours by class index (cycled); ground truth is drawn in :data:`GT_COLOUR`.
CLASS_COLOURS = ((255, 170, 0), (230, 40, 40), (60, 140, 255), (200, 80, 255))
GT_COLOUR = (40, 220, 90)


def _array(x) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def detection_overlay(
    image: torch.Tensor | np.ndarray,
    boxes: Sequence | np.ndarray | torch.Tensor,
    labels: Sequence | np.ndarray | torch.Tensor,
    scores: Sequence | np.ndarray | torch.Tensor,
    class_names: Sequence[str],
    gt_boxes: np.ndarray | torch.Tensor | None = None,
    gt_labels: np.ndarray | torch.Tensor | None = None,
    upscale: int = 2,
) -> Image.Image:
    """RGB image: ground truth in green with its class, predictions coloured by class with ``name score``.

    ``image`` is ``(1, H, W)`` or ``(H, W)`` in any range (min-max scaled); boxes are ``xyxy`` pixels of it.
    ``upscale`` enlarges small network inputs so that the labels stay legible.
    """
    img = _array(image).astype(np.float32).squeeze()
    img = (img - img.min()) / max(float(img.max() - img.min()), 1e-8)
    pil = Image.fromarray((img * 255).astype(np.uint8)).convert("RGB")
    pil = pil.resize((pil.width * upscale, pil.height * upscale), Image.Resampling.BILINEAR)
    draw = ImageDraw.Draw(pil)
    if gt_boxes is not None:
        gt_labels = np.zeros(len(gt_boxes), int) if gt_labels is None else _array(gt_labels)
        for box, cls in zip(_array(gt_boxes).reshape(-1, 4) * upscale, gt_labels.reshape(-1)):
            draw.rectangle(box.tolist(), outline=GT_COLOUR, width=2)
            draw.text((box[0] + 2, box[3] - 12), class_names[int(cls)], fill=GT_COLOUR)
    for box, cls, score in zip(
        _array(boxes).reshape(-1, 4) * upscale, _array(labels).reshape(-1), _array(scores)
    ):
        colour = CLASS_COLOURS[int(cls) % len(CLASS_COLOURS)]
        draw.rectangle(box.tolist(), outline=colour, width=2)
        draw.text((box[0] + 2, box[1] + 1), f"{class_names[int(cls)]} {float(score):.2f}", fill=colour)
    return pil


def overlay_grid(images: Sequence[Image.Image], columns: int = 4) -> Image.Image:
    """Tile overlays of one size into a grid (one figure per epoch instead of one file per image)."""
    w, h = images[0].size
    rows = -(-len(images) // columns)
    grid = Image.new("RGB", (w * min(columns, len(images)), h * rows))
    for i, img in enumerate(images):
        grid.paste(img, ((i % columns) * w, (i // columns) * h))
    return grid


def save_png(image: Image.Image, path: str | os.PathLike) -> Path:
    """Save atomically, so a killed run never leaves a truncated PNG."""
    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG")
    return Path(path)
