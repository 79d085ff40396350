"""CenterNet targets and decoding (Zhou et al., "Objects as Points", 2019).

A box becomes a Gaussian peak at its centre on the heatmap of its class, its size and the sub-cell offset of
its centre at that cell. Decoding keeps the 3x3 local maxima of the heatmap and the top ``k`` of them, so
overlapping candidates never need non-maximum suppression.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

__all__ = ["decode_centernet", "draw_gaussian", "encode_centernet_targets", "gaussian_radius"]


def gaussian_radius(height: float, width: float, min_overlap: float = 0.7) -> float:
    """Largest centre shift (in cells) for which a box of this size still overlaps itself by ``min_overlap``.

    The three cases of CornerNet/CenterNet (both corners inside, both outside, one of each); the smallest
    radius wins.
    """
    b1 = height + width
    c1 = width * height * (1 - min_overlap) / (1 + min_overlap)
    r1 = (b1 + math.sqrt(b1**2 - 4 * c1)) / 2
    b2 = 2 * (height + width)
    c2 = (1 - min_overlap) * width * height
    r2 = (b2 + math.sqrt(b2**2 - 16 * c2)) / 2
    a3 = 4 * min_overlap
    b3 = -2 * min_overlap * (height + width)
    c3 = (min_overlap - 1) * width * height
    r3 = (b3 + math.sqrt(b3**2 - 4 * a3 * c3)) / 2
    return min(r1, r2, r3)


def draw_gaussian(heatmap: torch.Tensor, x: int, y: int, radius: int) -> torch.Tensor:
    """Max-merge a Gaussian of ``sigma = (2 radius + 1) / 6`` centred on cell ``(x, y)`` into ``heatmap``."""
    sigma = (2 * radius + 1) / 6
    h, w = heatmap.shape
    offsets = torch.arange(-radius, radius + 1, device=heatmap.device, dtype=heatmap.dtype)
    kernel = torch.exp(-(offsets[:, None] ** 2 + offsets[None, :] ** 2) / (2 * sigma**2))
    top, bottom = min(y, radius), min(h - y, radius + 1)
    left, right = min(x, radius), min(w - x, radius + 1)
    window = heatmap[y - top : y + bottom, x - left : x + right]
    patch = kernel[radius - top : radius + bottom, radius - left : radius + right]
    torch.maximum(window, patch, out=window)
    return heatmap


def encode_centernet_targets(
    boxes: Sequence[torch.Tensor],
    labels: Sequence[torch.Tensor],
    num_classes: int,
    output_size: Sequence[int],
    stride: int,
    min_overlap: float = 0.7,
) -> dict[str, torch.Tensor]:
    """Dense training targets of a batch from per-image ``xyxy`` pixel boxes and class indices.

    Returns ``heatmap (B, C, h, w)``, ``size (B, 2, h, w)`` (width, height in cells), ``offset (B, 2, h, w)``
    (sub-cell x, y of the centre) and ``mask (B, 1, h, w)`` (1 at the cells that carry a box). Two boxes
    whose centres fall in one cell share it: the heatmap keeps both peaks, size and offset the last box.
    An image without boxes gets all-zero targets, a valid negative.
    """
    h, w = int(output_size[0]), int(output_size[1])
    device = boxes[0].device if len(boxes) else torch.device("cpu")
    n = len(boxes)
    heatmap = torch.zeros(n, num_classes, h, w, device=device)
    size = torch.zeros(n, 2, h, w, device=device)
    offset = torch.zeros(n, 2, h, w, device=device)
    mask = torch.zeros(n, 1, h, w, device=device)
    for b, (img_boxes, img_labels) in enumerate(zip(boxes, labels)):
        cells = torch.as_tensor(img_boxes, dtype=torch.float32).reshape(-1, 4).cpu() / stride
        for (x1, y1, x2, y2), cls in zip(cells.tolist(), torch.as_tensor(img_labels).reshape(-1).tolist()):
            cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
            ix, iy = min(max(int(cx), 0), w - 1), min(max(int(cy), 0), h - 1)
            bw, bh = x2 - x1, y2 - y1
            radius = max(0, int(gaussian_radius(math.ceil(bh), math.ceil(bw), min_overlap)))
            draw_gaussian(heatmap[b, int(cls)], ix, iy, radius)
            size[b, :, iy, ix] = torch.tensor([bw, bh])
            offset[b, :, iy, ix] = torch.tensor([cx - ix, cy - iy])
            mask[b, 0, iy, ix] = 1.0
    return {"heatmap": heatmap, "size": size, "offset": offset, "mask": mask}


def decode_centernet(
    heatmap_logits: torch.Tensor,
    size: torch.Tensor,
    offset: torch.Tensor,
    stride: int,
    top_k: int = 100,
    score_threshold: float = 0.0,
) -> list[dict[str, torch.Tensor]]:
    """Per image ``{"boxes" (K, 4) xyxy pixels, "scores" (K,), "labels" (K,)}``, best score first.

    Peaks are heatmap cells that equal the maximum of their 3x3 neighbourhood; the ``top_k`` best over all
    classes are kept, then those scoring below ``score_threshold`` are dropped. Negative sizes become 0.
    """
    heat = torch.sigmoid(heatmap_logits.float())
    n, c, h, w = heat.shape
    peaks = heat * (F.max_pool2d(heat, 3, stride=1, padding=1) == heat)
    scores, index = peaks.reshape(n, -1).topk(min(top_k, c * h * w))
    classes, cell = index // (h * w), index % (h * w)
    ys, xs = (cell // w).float(), (cell % w).float()
    gather = cell[:, None, :].expand(n, 2, -1)
    wh = size.float().reshape(n, 2, -1).gather(2, gather).clamp(min=0)  # an untrained head may go negative
    off = offset.float().reshape(n, 2, -1).gather(2, gather)
    cx, cy = (xs + off[:, 0]) * stride, (ys + off[:, 1]) * stride
    half_w, half_h = wh[:, 0] * stride / 2, wh[:, 1] * stride / 2
    boxes = torch.stack([cx - half_w, cy - half_h, cx + half_w, cy + half_h], dim=-1)
    results = []
    for b in range(n):
        keep = scores[b] >= score_threshold
        results.append({"boxes": boxes[b][keep], "scores": scores[b][keep], "labels": classes[b][keep]})
    return results
