"""Load trained weights with an error that says what does not fit, instead of a wall of key names."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from torch import nn

from monai_xai.errors import InputError

__all__ = [
    "load_optional_weights",
    "load_weights",
    "checkpoint_record_path",
    "operating_point_path",
    "read_checkpoint_record",
    "read_operating_point",
    "read_score_threshold",
    "read_weights_file",
    "resnet_depth_of",
    "score_threshold_of",
    "score_threshold_path",
    "trainable_parameters",
]

# "<prefix>layer<stage>.<block>." in the weight names of MONAI ResNets and the networks built on them.
_STAGE_BLOCK = re.compile(r"(?:^|\.)layer([1-4])\.(\d+)\.")


def resnet_depth_of(state: Mapping[str, object]) -> str | None:
    """The ResNet depth ("resnet18", ...) whose stages a state dict's ``layer1..layer3`` weights match.

    Why: a checkpoint of another depth otherwise fails with a list of unexpected weight names, which does
    not say that ``--backbone`` is what differs. None when the names show no ResNet stages or no known depth.
    """
    from monai_xai.networks.nets.resnet import RESNET_SPECS

    blocks: dict[int, int] = {}
    bottleneck = False
    for key in state:
        match = _STAGE_BLOCK.search(key)
        if match and int(match.group(1)) <= 3:
            stage, block = int(match.group(1)), int(match.group(2))
            blocks[stage] = max(blocks.get(stage, 0), block + 1)
            bottleneck = bottleneck or key[match.end() :].startswith("conv3.")
    if sorted(blocks) != [1, 2, 3]:
        return None
    found = tuple(blocks[stage] for stage in (1, 2, 3))
    for name, spec in RESNET_SPECS.items():
        if spec.layers[:3] == found and (spec.block.expansion > 1) == bottleneck:
            return name
    return None


def read_weights_file(
    path: str | os.PathLike, missing: str, what: str = "checkpoint", keys: Sequence[str] = ("model",)
) -> object:
    """A PyTorch weights file's content, or the mapping it holds under the first of ``keys`` that has one.

    Why: a training checkpoint keeps the state dict beside the optimiser's (``"model"``), MedicalNet under
    ``"state_dict"``, and a bare state dict is the file itself. Reads with ``weights_only=True``: no code in
    the file runs.

    Args:
        path: the file.
        missing: the error when there is no file, saying what the file is for.
        what: what the file should be (``"checkpoint"``, ``"state dict"``), for the error when torch cannot
            read it.
        keys: the entries that may hold the state dict, tried in order.

    Raises:
        InputError: naming ``path`` when it is missing or torch cannot read it.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(path, missing)
    try:
        content = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for truncated or foreign files
        raise InputError(path, f"cannot read as a PyTorch {what} ({type(err).__name__}: {err})") from err
    if isinstance(content, Mapping):
        nested = next((content[key] for key in keys if isinstance(content.get(key), Mapping)), None)
        return content if nested is None else nested
    return content


def load_weights(network: nn.Module, path: str | os.PathLike, key: str = "model") -> nn.Module:
    """Load ``path`` (a state dict, or a training checkpoint holding one under ``key``) into ``network``."""
    path = Path(path)
    state = read_weights_file(path, "checkpoint not found (train first, or pass --checkpoint)", keys=(key,))
    target = getattr(network, "module", network)
    own = target.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    mismatched = [k for k in set(own) & set(state) if own[k].shape != state[k].shape]
    if missing or unexpected or mismatched:
        details = []
        depth, own_depth = resnet_depth_of(state), resnet_depth_of(own)
        if depth and own_depth and depth != own_depth:
            details.append(f"it holds a {depth} backbone, the network a {own_depth} (--backbone {depth}?)")
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
            "Was it trained with another --backbone, --mode, channel count or number of classes?",
        )
    target.load_state_dict(state)
    return network


def load_optional_weights(
    network: nn.Module, path: str | os.PathLike | None, key: str = "model"
) -> nn.Module | None:
    """``network`` with the weights of ``path`` (:func:`load_weights`), or None when ``path`` is None.

    Why: a config switches an optional network (the AG-CycleGAN evaluation's judge classifier) on by its
    checkpoint alone, without a conditional expression.
    """
    if path is None:
        return None
    return load_weights(network, path, key)


def trainable_parameters(network: nn.Module) -> list[nn.Parameter]:
    """The parameters that still require gradients, for an optimiser of a partly frozen network (the
    multi-scale ABN's fine-tuning freezes its feature extractor)."""
    return [p for p in network.parameters() if p.requires_grad]


def checkpoint_record_path(checkpoint: str | os.PathLike, kind: str) -> Path:
    """``<stem>.<kind>.json`` beside ``checkpoint``: a record that belongs to those weights, e.g. the decision
    rule chosen for them on the validation split (``operating_point``, ``score_threshold``)."""
    checkpoint = Path(checkpoint)
    return checkpoint.with_name(f"{checkpoint.stem}.{kind}.json")


def read_checkpoint_record(checkpoint: str | os.PathLike, kind: str) -> dict | None:
    """The ``kind`` record stored beside ``checkpoint`` (:func:`checkpoint_record_path`), or None when the
    checkpoint has none.

    The file is ``{kind: {...}}``, so it can also be given as one more config file to MONAI's ``ckpt_export``
    and travel inside the exported model. A record that names the digest of other weights (its
    ``checkpoint``, ``sha256:<hex>``) is an error: it was chosen for a model that is no longer there.
    """
    import json

    path = checkpoint_record_path(checkpoint, kind)
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())[kind]
    except (json.JSONDecodeError, KeyError, TypeError) as err:
        what = kind.replace("_", " ")
        raise InputError(path, f"not {'an' if what[0] in 'aeiou' else 'a'} {what} record ({err})") from err
    expected = record.get("checkpoint")
    if expected is not None and Path(checkpoint).is_file():
        from monai_xai.runs import file_digest

        if file_digest(checkpoint) != expected:
            raise InputError(path, f"made for other weights than {checkpoint}: evaluate the checkpoint again")
    return record


def operating_point_path(checkpoint: str | os.PathLike) -> Path:
    """``<stem>.operating_point.json`` beside ``checkpoint``: the decision rule of those weights."""
    return checkpoint_record_path(checkpoint, "operating_point")


def read_operating_point(checkpoint: str | os.PathLike) -> dict | None:
    """The operating point stored beside ``checkpoint`` (threshold, temperature, how they were chosen), or
    None when the checkpoint has none (the argmax decides, no temperature).

    The file is ``{"operating_point": {...}}`` (see :func:`read_checkpoint_record`); a record made for other
    weights is an error.
    """
    return read_checkpoint_record(checkpoint, "operating_point")


def score_threshold_path(checkpoint: str | os.PathLike) -> Path:
    """``<stem>.score_threshold.json`` beside a detector's ``checkpoint``: the confidence threshold of those
    weights, chosen on the validation split (:class:`~monai_xai.handlers.ScoreThresholdFitter`)."""
    return checkpoint_record_path(checkpoint, "score_threshold")


def read_score_threshold(checkpoint: str | os.PathLike) -> dict | None:
    """The score threshold record stored beside a detector's ``checkpoint`` (``threshold``, the ``split`` it
    was chosen on, its F1 there, the checkpoint's digest), or None when the checkpoint has none; a record
    made for other weights is an error (see :func:`read_checkpoint_record`)."""
    return read_checkpoint_record(checkpoint, "score_threshold")


def score_threshold_of(checkpoint: str | os.PathLike, default: float = 0.3) -> float:
    """The confidence threshold a detector's inference keeps boxes at: the one chosen on the validation split
    and stored beside ``checkpoint`` (:func:`read_score_threshold`), or ``default`` for weights that have not
    been evaluated yet. Never read from a test evaluation: that split chooses nothing."""
    record = read_score_threshold(checkpoint)
    return float(default) if record is None else float(record["threshold"])
