"""An Attention Branch Network as a TorchScript-friendly module: plain tensors in, plain tensors out."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from .inference import fold_batch_norm

__all__ = ["ExportableABN"]

logger = logging.getLogger(__name__)


class ExportableABN(nn.Module):
    """Wrap an ABN so that ``forward(x)`` returns ``(logits, attention_map)`` as two plain tensors.

    ``torch.jit.trace`` and generic consumers (the MONAI Deploy operators, ``monai.bundle`` exports) expect a
    tensor or a tuple of tensors whose first element is the prediction; the ABN's own output starts with the
    attention branch's logits, and its ``attention_map`` argument does not script. The wrapper puts the
    perception logits first and drops the external map.

    Its state dict is the wrapped network's, without a prefix, so that a training checkpoint loads into it
    unchanged (what ``python -m monai.bundle ckpt_export`` does).

    With ``fold_batch_norm``, loading a checkpoint also folds every batch norm into the convolution before
    it (:func:`~monai_xai.networks.fold_batch_norm`), so that the traced file runs fewer operations; its
    outputs equal the network's up to float32 rounding (about 1e-6). The wrapper then holds the folded,
    eval-mode copy, which has no batch-norm entries to load: it is ready to trace, not to load again. A
    network ``torch.fx`` cannot trace is kept as it is, and the reason logged.

    Args:
        network: an ABN whose output has ``perception_logits`` and ``attention_map`` fields
            (:class:`~monai_xai.networks.nets.ABNOutput` or
            :class:`~monai_xai.networks.nets.MultiScaleABNOutput`).
        fold_batch_norm: whether loading a checkpoint folds the batch norms.
    """

    def __init__(self, network: nn.Module, fold_batch_norm: bool = False) -> None:
        super().__init__()
        self.network = network
        self.fold_batch_norm = fold_batch_norm

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, num_classes) perception logits and the (B, 1, *feature_size) attention map M(x)."""
        out = self.network(x)
        return out.perception_logits, out.attention_map

    def state_dict(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """The wrapped network's state dict."""
        return self.network.state_dict(*args, **kwargs)

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True, assign: bool = False):
        """Load a state dict of the wrapped network, then fold its batch norms when asked to."""
        result = self.network.load_state_dict(state_dict, strict=strict, assign=assign)
        if self.fold_batch_norm:
            try:
                self.network = fold_batch_norm(self.network)
            except Exception as err:  # torch.fx raises many types for graphs it cannot trace
                logger.warning("ExportableABN: batch norm not folded (%s: %s)", type(err).__name__, err)
        return result
