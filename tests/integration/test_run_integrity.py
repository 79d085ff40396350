"""The ABN bundle's runs never mix: the README's commands in any order, another dataset, a changed budget."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[2]
CONFIGS = REPO / "bundles" / "abn_classification" / "configs"
TINY = {"max_epochs": 1, "batch_size": 4, "val_batch_size": 8, "num_workers": 0, "spatial_size": [32, 32]}


@pytest.fixture(scope="module")
def bundle_root(tmp_path_factory) -> Path:
    """A folder holding the demo data where the bundle's defaults look for it (``demo_data/phantom2d``)."""
    from monai_xai.data import write_demo_dataset

    root = tmp_path_factory.mktemp("bundle_root")
    write_demo_dataset(root / "demo_data" / "phantom2d", n_train=8, n_val=4, n_test=4, size=32)
    return root


def train(root: Path, **overrides):
    from monai.bundle import run

    run(config_file=str(CONFIGS / "train.json"), bundle_root=str(root), **{**TINY, **overrides})


def run_record(folder: Path) -> dict:
    return json.loads((folder / "run.json").read_text())


def trained_epochs(folder: Path) -> int:
    return torch.load(folder / "checkpoints" / "latest.pt", weights_only=True)["engine"]["epoch"]


@pytest.mark.integration
def test_readme_commands_in_any_order_train_their_own_runs(bundle_root):
    from monai_xai.errors import input_error_behind

    train(bundle_root, mode="dynamic")
    train(bundle_root, mode="plain")
    runs = bundle_root / "runs" / "abn_classification"
    dynamic, plain = runs / "demo_dynamic_resnet18_fold0", runs / "demo_plain_resnet18_fold0"
    assert run_record(dynamic)["identity"]["network"]["mode"] == "dynamic"
    assert run_record(plain)["identity"]["network"]["mode"] == "plain" and trained_epochs(plain) == 1

    # the plain arm pointed at the dynamic run's folder: stopped before training, the settings named
    with pytest.raises(Exception) as err:
        train(bundle_root, mode="plain", output_dir=str(dynamic))
    message = input_error_behind(err.value)
    assert message is not None and 'network.mode: "dynamic" -> "plain"' in message
    assert run_record(dynamic)["identity"]["network"]["mode"] == "dynamic"

    # --overwrite true moves the dynamic run aside, never deletes it
    train(bundle_root, mode="plain", output_dir=str(dynamic), overwrite=True)
    assert run_record(dynamic)["identity"]["network"]["mode"] == "plain"
    aside = [p for p in runs.iterdir() if p.name.startswith("demo_dynamic_resnet18_fold0.replaced-")]
    assert len(aside) == 1 and run_record(aside[0])["identity"]["network"]["mode"] == "dynamic"
    assert (aside[0] / "checkpoints" / "best.pt").is_file()


@pytest.mark.integration
def test_another_dataset_of_the_same_shape_is_not_resumed(bundle_root, tmp_path):
    from monai_xai.data import write_demo_dataset

    out = tmp_path / "run"
    train(bundle_root, output_dir=str(out))
    other = tmp_path / "other_data"
    write_demo_dataset(other, n_train=8, n_val=4, n_test=4, size=32, seed=7)
    command = [
        sys.executable,
        "-m",
        "monai.bundle",
        "run",
        "--config_file",
        str(CONFIGS / "train.json"),
        "--bundle_root",
        str(bundle_root),
        "--dataset_dir",
        str(other),
        "--output_dir",
        str(out),
        *[arg for key, value in TINY.items() for arg in (f"--{key}", json.dumps(value))],
    ]
    result = subprocess.run(command, capture_output=True, text=True, cwd=REPO)
    assert result.returncode != 0
    last_lines = "\n".join(result.stderr.strip().splitlines()[-6:])
    assert str(out) in last_lines and "data.path" in last_lines and "--overwrite true" in last_lines


@pytest.mark.integration
def test_a_longer_budget_continues_the_run_with_a_schedule_for_it(bundle_root, tmp_path):
    out = tmp_path / "run"
    train(bundle_root, output_dir=str(out), max_epochs=1)
    uid = run_record(out)["uid"]
    train(bundle_root, output_dir=str(out), max_epochs=2)
    assert run_record(out)["uid"] == uid and trained_epochs(out) == 2
    state = torch.load(out / "checkpoints" / "latest.pt", weights_only=True)
    assert state["lr_scheduler"]["T_max"] == 2 and state["engine"]["max_epochs"] == 2

    from monai_xai.tracking import find_run

    run = find_run(f"sqlite:///{out / 'mlruns.db'}", "abn_classification", "demo_dynamic_resnet18_fold0")
    assert run.info.status == "FINISHED" and run.data.tags["changed.max_epochs"] == "1 -> 2"
    assert run.info.run_name.endswith("-" + run_record(out)["fingerprint"])
