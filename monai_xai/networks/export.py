"""An Attention Branch Network as a TorchScript-friendly module: plain tensors in, plain tensors out."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

__all__ = ["ExportableABN"]


class ExportableABN(nn.Module):
    """Wrap an ABN so that ``forward(x)`` returns ``(logits, attention_map)`` as two plain tensors.

    ``torch.jit.trace`` and generic consumers (the MONAI Deploy operators, ``monai.bundle`` exports) expect a
    tensor or a tuple of tensors whose first element is the prediction; the ABN's own output starts with the
    attention branch's logits, and its ``attention_map`` argument does not script. The wrapper puts the
    perception logits first and drops the external map.

    Its state dict is the wrapped network's, without a prefix, so that a training checkpoint loads into it
    unchanged (what ``python -m monai.bundle ckpt_export`` does).

    Args:
        network: an ABN whose output has ``perception_logits`` and ``attention_map`` fields
            (:class:`~monai_xai.networks.nets.ABNOutput` or
            :class:`~monai_xai.networks.nets.MultiScaleABNOutput`).
    """

    def __init__(self, network: nn.Module) -> None:
        super().__init__()
        self.network = network

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, num_classes) perception logits and the (B, 1, *feature_size) attention map M(x)."""
        out = self.network(x)
        return out.perception_logits, out.attention_map

    def state_dict(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """The wrapped network's state dict."""
        return self.network.state_dict(*args, **kwargs)

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True, assign: bool = False):
        """Load a state dict of the wrapped network."""
        return self.network.load_state_dict(state_dict, strict=strict, assign=assign)
