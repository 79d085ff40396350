"""Small rules the bundle configs call by name, so that their JSON holds references, not inline logic."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import torch

__all__ = [
    "classifier_params",
    "dataset_splits",
    "finetune_name",
    "get_device",
    "is_not_rank0",
    "key_metric",
    "logged_state_attributes",
    "lower_is_better",
    "train_loader_workers",
    "validation_key_metric",
]


def key_metric(num_classes: int) -> str:
    """The validation metric that picks the best checkpoint: AUC for two classes, accuracy for more, as the
    bundle docs state (``checkpoints/best.pt``).

    Args:
        num_classes: number of classes of the classifier.
    """
    return "auc" if num_classes == 2 else "accuracy"


def validation_key_metric(num_classes: int) -> dict[str, Any]:
    """The validator's ``key_val_metric``: :func:`key_metric` under its logged name ``val_<name>``.

    Args:
        num_classes: number of classes of the classifier.
    """
    from monai_xai.handlers import ClassificationEpochMetric

    name = key_metric(num_classes)
    return {f"val_{name}": ClassificationEpochMetric(num_classes, only=name)}


def dataset_splits(
    source: str, path: str | os.PathLike, datalist_args: Mapping[str, Any] | None = None, **kwargs: Any
) -> dict:
    """:func:`monai_xai.data.dataset_splits` with a dataset fragment's ``datalist_args`` merged into the
    keyword arguments: a config component cannot unpack a mapping.

    Args:
        source: kind of dataset (``csv``, ``folder``, ``medmnist``, ...).
        path: the dataset's file or folder.
        datalist_args: the dataset fragment's reader options (columns, split file, ...).
        kwargs: the split's settings (fold, labels, class names, seed, limit).
    """
    from monai_xai.data import dataset_splits as read_splits

    return read_splits(source, path, **kwargs, **(datalist_args or {}))


def is_not_rank0() -> bool:
    """Whether this process is a distributed run's rank other than 0: the ``_disabled_`` of the handlers that
    log, validate or draw once per run (MONAI's tracking settings' ``is_not_rank0``)."""
    from monai_xai.distributed import process_rank

    return process_rank() > 0


def logged_state_attributes(mode: str) -> list[str] | None:
    """The trainer state the MLflow handler logs each epoch: ``alpha`` in the dynamic mode, whose alpha
    scheduler sets it; None otherwise, since MLflow refuses the None a missing attribute would log.

    Args:
        mode: the classifier's training mode.
    """
    return ["alpha"] if mode == "dynamic" else None


def finetune_name(map_source: str, strategy: str, fraction: float, freeze_features: bool) -> str:
    """``<map_source>_<strategy>_<fraction>[_whole]``: the folder and MLflow run of one fine-tuning on
    corrected maps, ``_whole`` when the feature extractor is trained too.

    Args:
        map_source: where the corrected maps come from (``mask`` or ``corrected_map``).
        strategy: the active-learning selection.
        fraction: the share of the training images selected.
        freeze_features: whether the feature extractor stays frozen.
    """
    return "_".join([map_source, strategy, str(fraction), *([] if freeze_features else ["whole"])])


def classifier_params(
    backbone: str, balance: Any, splits: Mapping[str, Any], amp: bool, device: torch.device, network: Any
) -> dict[str, Any]:
    """A classifier bundle's MLflow parameters: its literal settings
    (:func:`monai_xai.tracking.config_params`) and what is known only once resolved.

    Args:
        backbone: name of the backbone, logged as ``network`` too (the name :mod:`scripts.compare_runs`
            groups by).
        balance: the resolved :class:`~monai_xai.data.ClassBalance` (policy in force, class counts).
        splits: the checked splits (their ``input_check`` counts the skipped items).
        amp: whether mixed precision was asked for.
        device: the training device.
        network: the network, whose convolutions decide channels-last.
    """
    from monai_xai.engines import FastPath
    from monai_xai.tracking import config_params

    return config_params(
        network=backbone,
        class_balance=balance.policy,
        class_counts=balance.counts,
        skipped_items=splits["input_check"]["skipped"],
        fast_path=FastPath.resolve(amp, device, network).describe(),
    )


def train_loader_workers(num_workers: int, batch_augmentation: bool, dataset: Any) -> int:
    """DataLoader workers of the training split: none when its items come from memory ready-made (the cache
    holds the whole deterministic pipeline and augmentation runs on whole batches in the trainer), where
    workers would only copy tensors between processes on cores the training step needs; ``num_workers``
    otherwise (disk cache, per-item augmentation).

    Args:
        num_workers: the bundle's ``num_workers``.
        batch_augmentation: whether the random augmentation runs on whole batches in the trainer.
        dataset: the training split's cached dataset (:func:`monai_xai.data.cached_dataset`).
    """
    choice = getattr(dataset, "cache_choice", None)
    in_memory = choice is not None and choice.mode == "memory"
    return 0 if batch_augmentation and in_memory else num_workers


def get_device(name: str = "cuda") -> torch.device:
    """``name`` as a device, CUDA falling back to the CPU: one config then runs on any machine."""
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        return torch.device("cpu")
    return device


def lower_is_better(current: float, best: float) -> bool:
    """``metric_cmp_fn`` for losses: MONAI's default keeps the model of the highest key metric."""
    return current < best
