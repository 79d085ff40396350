"""Small pieces that bundle configs need from the engines, so the configs hold no conditionals or lambdas."""

from __future__ import annotations

import torch

__all__ = ["get_device", "lower_is_better"]


def get_device(name: str = "cuda") -> torch.device:
    """``name`` as a device, CUDA falling back to the CPU: one config then runs on any machine."""
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        return torch.device("cpu")
    return device


def lower_is_better(current: float, best: float) -> bool:
    """``metric_cmp_fn`` for losses: MONAI's default keeps the model of the highest key metric."""
    return current < best
