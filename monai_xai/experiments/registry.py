"""The experiment modules, by name: what ``monai-xai-experiments`` runs and the README renderer reads."""

from __future__ import annotations

import importlib
from types import ModuleType

from monai_xai.errors import InputError

__all__ = ["EXPERIMENTS", "experiment", "experiments"]

#: every experiment module of this package (``monai_xai.experiments.<name>``)
EXPERIMENTS: tuple[str, ...] = (
    # abn_classification
    "busi_crossval",
    "busi_decisions",
    "imbalanced_demo",
    "demo_shortcut",
    "decoy_busi",
    "precision_busi",
    "medmnist",
    "train_throughput",
    "explain_latency",
    "dataset_scale",
    "quickstart_time",
    "speed_targets",
    # multiscale_abn_correction
    "demo_correction",
    "busi_active_learning",
    "busi_maps",
    "retinamnist",
    "deletion_insertion",
    "selection_profile",
    "heimed_resolution",
    "fundus_exudates",
    # centernet_detection
    "centernet_busi",
    "knn_probe",
    "detector_throughput",
    # agcyclegan_explainer
    "agcyclegan",
    "agcyclegan_shared_encoder",
)


def experiment(name: str) -> ModuleType:
    """The module of experiment ``name``; an error listing the known ones otherwise."""
    if name not in EXPERIMENTS:
        raise InputError(None, f"{name}: no such experiment (known: {', '.join(EXPERIMENTS)})")
    return importlib.import_module(f"monai_xai.experiments.{name}")


def experiments() -> dict[str, ModuleType]:
    """Every experiment module by name."""
    return {name: experiment(name) for name in EXPERIMENTS}
