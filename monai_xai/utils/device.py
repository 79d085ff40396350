"""What the device can run fast and how a forward runs at it: one check of native bfloat16 on the CPU, the
autocast context and the float32 outputs, shared by training and inference."""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any

import torch
from torch.utils._pytree import tree_map

__all__ = ["autocast", "cpu_supports_bf16", "reduced_precision", "to_float32"]


def cpu_supports_bf16() -> bool:
    """Whether this CPU runs bfloat16 convolutions and matrix products natively (oneDNN's own check: AVX-512
    BF16 or AMX); elsewhere bfloat16 is emulated and many times slower than float32."""
    try:
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def reduced_precision(device_type: str) -> torch.dtype | None:
    """The autocast dtype that speeds a device up: float16 on CUDA, bfloat16 on CPUs that run it natively,
    None (float32) elsewhere.

    Args:
        device_type: ``"cuda"`` or ``"cpu"``, as ``torch.autocast`` names devices.
    """
    if device_type == "cuda":
        return torch.float16
    if device_type == "cpu" and cpu_supports_bf16():
        return torch.bfloat16
    return None


def autocast(device_type: str, dtype: torch.dtype | None) -> AbstractContextManager:
    """Autocast to ``dtype`` on the device; for None, float32 with any enclosing autocast switched off.

    Args:
        device_type: ``"cuda"`` or ``"cpu"``, as ``torch.autocast`` names devices.
        dtype: the reduced precision (:func:`reduced_precision`), or None.
    """
    if dtype is None:
        return torch.autocast(device_type, enabled=False)
    return torch.autocast(device_type, dtype=dtype)


def _upcast(value: Any) -> Any:
    if isinstance(value, torch.Tensor) and value.dtype in (torch.float16, torch.bfloat16):
        return value.float()
    return value


def to_float32(output: Any) -> Any:
    """``output`` (a tensor, or a dict, list, tuple or named tuple of them) with its float16 and bfloat16
    tensors in float32, as autocast returns them; every other tensor and value as it is."""
    return tree_map(_upcast, output)
