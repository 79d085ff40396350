"""torchrun process-group helpers behind each bundle's ``configs/multi_gpu_train.json`` fragment.

The fragment applies to any bundle whose ``train.json`` names its module ``network``, its trainer handlers
``train#handlers`` and its seed expression ``set_seed``; these functions hold the rank and device rules that
would otherwise be inline conditionals in its JSON.
"""

from __future__ import annotations

import os
from typing import Any

import torch
import torch.distributed as dist

__all__ = [
    "destroy_process_group",
    "device_ids",
    "local_device",
    "print_once",
    "process_rank",
    "setup_process_group",
]


def local_device() -> torch.device:
    """This process's GPU (``LOCAL_RANK`` set by torchrun) when CUDA is available, else the CPU."""
    if torch.cuda.is_available():
        return torch.device(f"cuda:{os.environ['LOCAL_RANK']}")
    return torch.device("cpu")


def device_ids(device: torch.device) -> list[torch.device] | None:
    """``DistributedDataParallel``'s ``device_ids``: the one GPU of this process; None on the CPU."""
    return [device] if device.type == "cuda" else None


def setup_process_group(device: torch.device, tracking_uri: str | None = None) -> None:
    """Join torchrun's process group (NCCL on GPUs, gloo on the CPU) and pin this process to ``device``.

    Rank 0 creates the MLflow store at ``tracking_uri`` while the others wait at a barrier, so that two
    processes never create one sqlite store at once.
    """
    from monai_xai.tracking import ensure_store

    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if tracking_uri is not None and dist.get_rank() == 0:
        ensure_store(tracking_uri)
    dist.barrier()


def process_rank() -> int:
    """This process's rank: from the process group once it exists, else from torchrun's ``RANK``.

    Why: bundle configs decide which handlers run on which rank while they are parsed, before the
    process group is initialised."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank()
    return int(os.environ.get("RANK", "0"))


def print_once(*message: Any) -> None:
    """``print`` on rank 0 only (in a single process too), so that a summary is not repeated per process."""
    if process_rank() == 0:
        print(*message)


def destroy_process_group() -> None:
    """Leave the process group if one was joined."""
    if dist.is_initialized():
        dist.destroy_process_group()
