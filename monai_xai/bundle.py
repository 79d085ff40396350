"""Small rules the bundle configs call by name, so that their JSON holds references, not inline logic."""

from __future__ import annotations

from typing import Any

import torch

__all__ = ["get_device", "key_metric", "lower_is_better", "when"]


def when(condition: Any, *items: Any) -> list[Any]:
    """``items`` as a list when ``condition`` is true (a non-empty list counts), else an empty list.

    Lets a config add optional handlers or logged attributes (``[@a] + when(@mode == 'dynamic', @b)``)
    without a conditional expression in its JSON.
    """
    return list(items) if condition else []


def key_metric(num_classes: int) -> str:
    """The validation metric that picks the best checkpoint: AUC for two classes, accuracy for more, as the
    bundle docs state (``checkpoints/best.pt``)."""
    return "auc" if num_classes == 2 else "accuracy"


def get_device(name: str = "cuda") -> torch.device:
    """``name`` as a device, CUDA falling back to the CPU: one config then runs on any machine."""
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        return torch.device("cpu")
    return device


def lower_is_better(current: float, best: float) -> bool:
    """``metric_cmp_fn`` for losses: MONAI's default keeps the model of the highest key metric."""
    return current < best
