"""Start a ResNet-based network from pretrained weights in a file (torchvision ImageNet, MedicalNet, ...).

Why not MONAI's ``ResNet(pretrained=...)``: that downloads MedicalNet weights and loads them strictly into a
plain ResNet. Here the weights come from a file on disk (nothing downloads at run time), they go into the
ResNet trunk inside the networks built on one (the ABN's ``features``/``perception_branch``, the multi-scale
ABN's ``features``, CenterNet's ``backbone``), and what does not fit (the classifier head, another kernel size
or channel count) is skipped and reported instead of failing the run.

torchvision's, MedicalNet's and MONAI's ResNets name their trunk alike (``conv1``, ``bn1``,
``layer1.0.conv1``, ``layer1.0.downsample.0``, ``fc``), so a file's key maps onto a network by where that
network keeps each trunk module (:func:`resnet_trunk_paths`).
"""

from __future__ import annotations

import logging
import os
from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch
from monai.networks.nets import ResNetBlock, ResNetBottleneck
from monai.networks.utils import copy_model_state
from torch import nn

from monai_xai.errors import InputError
from monai_xai.networks.weights import read_weights_file

__all__ = [
    "RESNET_TRUNK",
    "PretrainedWeightsReport",
    "load_pretrained_weights",
    "read_state_dict",
    "resnet_trunk_paths",
]

logger = logging.getLogger(__name__)

#: The trunk modules of a ResNet, named alike by MONAI, torchvision and MedicalNet; ``fc`` is the head.
RESNET_TRUNK = ("conv1", "bn1", "layer1", "layer2", "layer3", "layer4", "fc")
#: The classifier head: never loaded, its classes are those of the data the weights were trained on.
_HEAD = "fc"
#: Reasons a file's tensor is skipped, as the report groups them.
_SKIP_HEAD = "classifier head (trained for the source's classes)"
_SKIP_NAME = "no counterpart in the network"
_SKIP_SHAPE = "shape does not fit"
_SKIP_OTHER = "not a tensor"


@dataclass
class PretrainedWeightsReport:
    """What :func:`load_pretrained_weights` did: the log line, and a record a test or notebook can check.

    Args:
        path: the weights file.
        network: the network's class name.
        loaded: network tensors set from the file (biases set to zero not counted).
        skipped: file keys that were not used, by reason.
        kept: network tensors that kept their initialisation.
        notes: adaptations made while loading (RGB filters summed, biases the file lacks set to zero).
        mismatches: ``file key -> "file shape in file, network shape in network"`` for the shape skips.
        trunk: the network's trunk module paths (:func:`resnet_trunk_paths`), to group ``kept`` by.
    """

    path: Path
    network: str
    loaded: list[str] = field(default_factory=list)
    skipped: dict[str, list[str]] = field(default_factory=dict)
    kept: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    mismatches: dict[str, str] = field(default_factory=dict)
    trunk: tuple[str, ...] = ()

    def __str__(self) -> str:
        n_skipped = sum(len(keys) for keys in self.skipped.values())
        lines = [
            f"pretrained weights {self.path} -> {self.network}: {len(self.loaded)} tensors loaded, "
            f"{n_skipped} skipped, {len(self.kept)} kept their initialisation"
        ]
        lines += [f"  {note}" for note in self.notes]
        lines += self.skipped_lines()
        if self.kept:
            groups = Counter(self._module_of(key) for key in self.kept)
            lines.append(
                "  kept their initialisation: " + ", ".join(f"{name} ({n})" for name, n in groups.items())
            )
        return "\n".join(lines)

    def skipped_lines(self) -> list[str]:
        """One line per reason for skipping: how many file tensors, and the first of them."""
        lines = []
        for reason, keys in self.skipped.items():
            example = keys[0] + (f" ({self.mismatches[keys[0]]})" if keys[0] in self.mismatches else "")
            lines.append(f"  skipped {len(keys)}, {reason}: e.g. {example}")
        return lines

    def _module_of(self, key: str) -> str:
        """The module a network tensor belongs to, coarse enough to list: ``attention_branch`` for its 48
        tensors, the path in the trunk (``perception_branch.fc``, ``layer2.0.downsample``)."""
        if key.endswith(".num_batches_tracked"):
            return "batch-norm counters"
        if not any(key.startswith(path + ".") for path in self.trunk):
            return key.partition(".")[0]
        module = key.rpartition(".")[0]
        return module.partition(".downsample")[0] + ".downsample" if ".downsample" in module else module


def read_state_dict(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], list[str]]:
    """The tensors of a state dict file, ``module.`` prefixes stripped, and the keys that held no tensor.

    Accepts a raw state dict (``torch.save(model.state_dict(), path)``) or a checkpoint holding one under
    ``"state_dict"`` (MedicalNet) or ``"model"`` (this project's training checkpoints), read by
    :func:`~monai_xai.networks.weights.read_weights_file`.

    Args:
        path: the file.
    """
    path = Path(path)
    content = read_weights_file(
        path, "pretrained weights file not found", "state dict", ("state_dict", "model")
    )
    if not isinstance(content, Mapping) or not any(isinstance(v, torch.Tensor) for v in content.values()):
        raise InputError(
            path,
            f"not a state dict (a {type(content).__name__} without tensors); save one with "
            "torch.save(model.state_dict(), path)",
        )
    state, other = {}, []
    for key, value in content.items():
        name = str(key)
        while name.startswith("module."):
            name = name[len("module.") :]
        if isinstance(value, torch.Tensor):
            state[name] = value
        else:
            other.append(name)
    return state, other


def resnet_trunk_paths(network: nn.Module) -> dict[str, str]:
    """Where ``network`` keeps a ResNet's trunk modules: ``{module path: trunk name}``.

    A module counts when its name is one of :data:`RESNET_TRUNK` and its parent is not a residual block (a
    block's own ``conv1``/``bn1`` are not the stem's), e.g. ``features.layer1 -> layer1`` in the ABN.

    Args:
        network: any module holding a MONAI ResNet's trunk modules under their names.
    """
    paths = {}
    for parent_path, parent in network.named_modules():
        if isinstance(parent, ResNetBlock | ResNetBottleneck):
            continue
        for name, _ in parent.named_children():
            if name in RESNET_TRUNK:
                paths[f"{parent_path}.{name}" if parent_path else name] = name
    return paths


def _fit(key: str, value: torch.Tensor, own: torch.Tensor) -> tuple[torch.Tensor | None, str | None]:
    """``value`` shaped for the network's ``own`` tensor (None when it does not fit) and a note on how."""
    if value.shape == own.shape:
        return value.to(own.dtype), None
    if key == "conv1.weight" and value.ndim == own.ndim and value.shape[1] == 3 and own.shape[1] == 1:
        summed = value.sum(dim=1, keepdim=True)
        if summed.shape == own.shape:
            return summed.to(own.dtype), "conv1.weight: RGB filters summed for the 1-channel input"
    return None, None


def load_pretrained_weights(network: nn.Module, path: str | os.PathLike) -> PretrainedWeightsReport:
    """Load the ResNet trunk weights of ``path`` into ``network`` and report what fitted (logged at INFO).

    Keys are torchvision's or MedicalNet's ResNet names (``conv1.weight``, ``layer1.0.downsample.0.weight``,
    ``module.`` prefixes stripped); each goes to where ``network`` keeps that trunk module
    (:func:`resnet_trunk_paths`). A 1-channel network given 3-channel ``conv1`` weights gets the RGB filters
    summed. Never loaded, each listed in the report: the head (``fc``), keys the network lacks (MedicalNet's
    ``conv_seg``), and tensors of another shape (a 3x3 ``stem="small"`` against 7x7 weights, 2D against 3D).
    A convolution bias the network has and the file lacks (MONAI's ``downsample`` convolutions) is set to
    zero, as the file's network computes without it.

    Args:
        network: a network built on a MONAI ResNet (or a ``DataParallel`` of one); changed in place.
        path: a state dict file (see :func:`read_state_dict`).

    Raises:
        InputError: naming ``path`` when it is not a state dict or no convolution of it fits the network.
    """
    path = Path(path)
    state, non_tensors = read_state_dict(path)
    target = getattr(network, "module", network)
    own = target.state_dict()
    trunk = resnet_trunk_paths(target)
    # network tensors by their ResNet name: "features.layer1.0.conv1.weight" under "layer1.0.conv1.weight"
    by_resnet_name: dict[str, list[str]] = defaultdict(list)
    for key in own:
        module = max((p for p in trunk if key.startswith(p + ".")), key=len, default=None)
        if module is not None:
            by_resnet_name[trunk[module] + key[len(module) :]].append(key)

    report = PretrainedWeightsReport(path, type(target).__name__, trunk=tuple(trunk))
    skipped: dict[str, list[str]] = defaultdict(list)
    fitted: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if key.split(".")[0] == _HEAD:
            skipped[_SKIP_HEAD].append(key)
            continue
        if key not in by_resnet_name:
            skipped[_SKIP_NAME].append(key)
            continue
        for own_key in by_resnet_name[key]:
            tensor, note = _fit(key, value, own[own_key])
            if tensor is None:
                skipped[_SKIP_SHAPE].append(key)
                report.mismatches[key] = (
                    f"{tuple(value.shape)} in file, {tuple(own[own_key].shape)} in network"
                )
                continue
            fitted[own_key] = tensor
            if note and note not in report.notes:
                report.notes.append(note)
    skipped[_SKIP_OTHER] += non_tensors
    report.skipped = {reason: keys for reason, keys in skipped.items() if keys}
    if not any(tensor.ndim > 2 for tensor in fitted.values()):
        why = "\n".join(report.skipped_lines())
        raise InputError(path, f"no convolution fits {report.network} (is it a ResNet state dict?):\n{why}")

    # MONAI's downsample convolutions have a bias that torchvision's and MedicalNet's lack: zero is theirs
    zeroed = []
    for key in own:
        weight = fitted.get(key.removesuffix("bias") + "weight")
        if key.endswith(".bias") and key not in fitted and weight is not None and weight.ndim > 2:
            fitted[key] = torch.zeros_like(own[key])
            zeroed.append(key)
    if zeroed:
        report.notes.append(f"{len(zeroed)} convolution biases the file lacks set to zero (e.g. {zeroed[0]})")
    _, updated, _ = copy_model_state(target, fitted, inplace=True)
    report.loaded = [key for key in updated if key not in zeroed]
    report.kept = [key for key in own if key not in fitted]
    logger.info("%s", report)
    return report
