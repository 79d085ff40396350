"""Load trained weights with an error that says what does not fit, instead of a wall of key names."""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from monai_xai.errors import InputError

__all__ = ["load_weights"]


def load_weights(network: nn.Module, path: str | os.PathLike, key: str = "model") -> nn.Module:
    """Load ``path`` (a state dict, or a training checkpoint holding one under ``key``) into ``network``."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "checkpoint not found (train first, or pass --checkpoint)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for truncated or foreign files
        raise InputError(path, f"cannot read as a PyTorch checkpoint ({type(err).__name__}: {err})") from err
    if isinstance(state, dict) and key in state and isinstance(state[key], dict):
        state = state[key]
    target = getattr(network, "module", network)
    own = target.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    mismatched = [k for k in set(own) & set(state) if own[k].shape != state[k].shape]
    if missing or unexpected or mismatched:
        details = []
        if missing:
            details.append(f"{len(missing)} weights missing (e.g. {missing[0]})")
        if unexpected:
            details.append(f"{len(unexpected)} unexpected weights (e.g. {unexpected[0]})")
        if mismatched:
            k = sorted(mismatched)[0]
            details.append(
                f"{len(mismatched)} shape mismatches "
                f"(e.g. {k}: {tuple(state[k].shape)} in file, {tuple(own[k].shape)} in network)"
            )
        raise InputError(
            path,
            f"checkpoint does not fit {type(target).__name__}: {'; '.join(details)}. "
            "Was it trained with another --network, --mode, channel count or number of classes?",
        )
    target.load_state_dict(state)
    return network
