"""Keys that the attention-aware engines add to ``engine.state.output``."""

from __future__ import annotations

from collections.abc import Callable

import torch

from monai_xai.networks.outputs import ATTENTION_LOGITS, ATTENTION_MAP

__all__ = [
    "ATTENTION_LOGITS",
    "ATTENTION_MAP",
    "LOSS_PARTS",
    "MASK",
    "HAS_MASK",
    "batch_to_device",
    "loss_part",
]

LOSS_PARTS = "loss_parts"
MASK = "mask"
HAS_MASK = "has_mask"


def batch_to_device(
    batchdata: dict, device: torch.device, non_blocking: bool = False
) -> dict[str, torch.Tensor]:
    """The batch entries an attention-aware engine uses, on ``device``: image, and when present
    label (as a flat long tensor), mask and has_mask (as a flat bool tensor)."""
    if batchdata is None:
        raise ValueError("Must provide batch data for current iteration.")
    batch = {"image": batchdata["image"].to(device, non_blocking=non_blocking)}
    if "label" in batchdata:
        batch["label"] = torch.as_tensor(batchdata["label"]).to(device).long().view(-1)
    if MASK in batchdata:
        batch[MASK] = batchdata[MASK].to(device, non_blocking=non_blocking)
    if HAS_MASK in batchdata:
        batch[HAS_MASK] = torch.as_tensor(batchdata[HAS_MASK]).to(device).bool().view(-1)
    return batch


def loss_part(name: str) -> Callable[[dict], float]:
    """``output_transform`` reading one named loss of ``output["loss_parts"]``, e.g. the GAN's ``loss_g``.

    Why: MONAI's ``from_engine`` reads top-level keys only; the trainers keep their loss parts one level down.
    """

    def transform(output: dict) -> float:
        return output[LOSS_PARTS][name]

    return transform
