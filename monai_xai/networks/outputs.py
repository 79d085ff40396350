"""Names of the parts of a classifier's output: plain logits, or the branches of an attention network."""

from __future__ import annotations

import torch

__all__ = ["ATTENTION_LOGITS", "ATTENTION_MAP", "split_network_output"]

ATTENTION_LOGITS = "attention_logits"
ATTENTION_MAP = "attention_map"


def split_network_output(output) -> dict[str, torch.Tensor]:
    """Name the parts of a network's output: ``pred`` always, attention parts when the network has them.

    A plain classifier returns logits; an attention branch network returns an object with
    ``perception_logits``, ``attention_logits`` and ``attention_map``.
    """
    if isinstance(output, torch.Tensor):
        return {"pred": output}
    return {
        "pred": output.perception_logits,
        ATTENTION_LOGITS: output.attention_logits,
        ATTENTION_MAP: output.attention_map,
    }
