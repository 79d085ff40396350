"""Each bundle folder is self-contained: a copy of that folder alone, outside the repository, trains and
infers with the installed package, the way a user runs a bundle downloaded from a model zoo.

Another bundle joins by an entry in :data:`BUNDLES`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from bundle_support import copy_bundle

#: a training step on a few demo images, on the CPU, without worker processes
SMOKE = {"max_epochs": 1, "batch_size": 4, "val_batch_size": 4, "num_workers": 0, "limit": 4}


@dataclass(frozen=True)
class CopiedBundle:
    """How one bundle trains and infers from its copy.

    Args:
        train: the configs of training, in ``configs/``, in the order they are layered.
        checkpoint: the trained weights, relative to the copy's root (its ``bundle_root``).
        overrides: settings of training beside :data:`SMOKE` and the demo data's folder.
    """

    train: tuple[str, ...] = ("train.json",)
    checkpoint: str = ""
    overrides: dict[str, Any] = field(default_factory=dict)


BUNDLES = {
    "abn_classification": CopiedBundle(
        checkpoint="runs/abn_classification/demo_dynamic_resnet18_fold0/checkpoints/best.pt"
    ),
    "multiscale_abn_correction": CopiedBundle(
        checkpoint="runs/multiscale_abn_correction/demo_multiscale_resnet18_fold0/checkpoints/best.pt"
    ),
}


def bundle_run(root: Path, configs: list[str], **overrides: Any) -> None:
    """``python -m monai.bundle run`` in the copy's root, with only the installed packages importable."""
    command = [sys.executable, "-m", "monai.bundle", "run", "--config_file", json.dumps(configs)]
    for key, value in overrides.items():
        command += [f"--{key}", json.dumps(value) if not isinstance(value, str) else value]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(BUNDLES))
def test_bundle_trains_and_infers_from_a_copy_of_its_folder(name, outside):
    from monai_xai.data import write_demo_dataset

    spec = BUNDLES[name]
    root = copy_bundle(name, outside / "downloaded")
    data = outside / "demo"
    write_demo_dataset(data, n_train=4, n_val=2, n_test=2, size=64)

    bundle_run(root, [f"configs/{c}" for c in spec.train], dataset_dir=str(data), **SMOKE, **spec.overrides)
    model = root / "models" / "model.pt"  # where inference.json looks for the weights
    model.parent.mkdir(exist_ok=True)
    shutil.copy(root / spec.checkpoint, model)

    bundle_run(root, ["configs/inference.json"], dataset_dir=str(data / "images"), num_workers=0)
    predictions = json.loads((root / "eval" / "predictions.json").read_text())
    assert sorted(Path(p["source"]).name for p in predictions) == sorted(
        p.name for p in (data / "images").iterdir()
    )
