"""Small rules the bundle configs call by name, so that their JSON holds references, not inline logic."""

from __future__ import annotations

from typing import Any

import torch

__all__ = ["default_device", "key_metric", "when"]


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


def default_device() -> torch.device:
    """The first CUDA device when there is one, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
