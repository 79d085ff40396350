"""Keys that the attention-aware engines add to ``engine.state.output``."""

from __future__ import annotations

from collections.abc import Callable

from monai_xai.networks.outputs import ATTENTION_LOGITS, ATTENTION_MAP

__all__ = [
    "ATTENTION_LOGITS",
    "ATTENTION_MAP",
    "LOSS_PARTS",
    "MASK",
    "HAS_MASK",
    "loss_part",
]

LOSS_PARTS = "loss_parts"
MASK = "mask"
HAS_MASK = "has_mask"


def loss_part(name: str) -> Callable[[dict], float]:
    """``output_transform`` reading one named loss of ``output["loss_parts"]``, e.g. the GAN's ``loss_g``.

    Why: MONAI's ``from_engine`` reads top-level keys only; the trainers keep their loss parts one level down.
    """

    def transform(output: dict) -> float:
        return output[LOSS_PARTS][name]

    return transform
