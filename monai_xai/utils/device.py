"""What the device can run fast: one check of native bfloat16 on the CPU, shared by training and inference."""

from __future__ import annotations

import torch

__all__ = ["cpu_supports_bf16", "reduced_precision"]


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
