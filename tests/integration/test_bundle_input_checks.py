"""A bad input anywhere in a run's splits stops the bundle before training, and says which file it is."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[2]
CONFIGS = REPO / "bundles" / "abn_classification" / "configs"
SMOKE = ["--max_epochs", "1", "--batch_size", "4", "--val_batch_size", "4", "--num_workers", "0"]


@pytest.fixture
def demo_with_a_bad_test_image(tmp_path) -> tuple[Path, Path]:
    from monai_xai.data import write_demo_dataset

    write_demo_dataset(tmp_path / "demo", n_train=8, n_val=4, n_test=4, size=32)
    bad = tmp_path / "demo" / "images" / "test_00002.png"
    Image.fromarray(np.full((32, 32), 9, dtype=np.uint8)).save(bad)
    return tmp_path / "demo", bad


def _run(*args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "monai.bundle", "run", "--config_file", str(CONFIGS / "train.json")]
    return subprocess.run([*command, *SMOKE, *args], capture_output=True, text=True, cwd=REPO, timeout=600)


@pytest.mark.slow
def test_a_bad_test_image_stops_training_before_it_starts_and_is_named_last(
    demo_with_a_bad_test_image, tmp_path
):
    data, bad = demo_with_a_bad_test_image
    out = tmp_path / "run"
    result = _run("--dataset_dir", str(data), "--output_dir", str(out))
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last == f"  test: {bad}: image is constant (every value is 9)", result.stderr[-2000:]
    assert "1 of 16 items cannot be used" in result.stderr
    assert not (out / "checkpoints").exists(), "nothing was trained"


@pytest.mark.slow
def test_skip_bad_items_drops_the_bad_image_and_logs_the_count(demo_with_a_bad_test_image, tmp_path):
    from monai.bundle import run

    from monai_xai.tracking import find_run

    data, bad = demo_with_a_bad_test_image
    out = tmp_path / "run"
    overrides = dict(zip([a.lstrip("-") for a in SMOKE[::2]], [int(v) for v in SMOKE[1::2]]))
    run(config_file=str(CONFIGS / "train.json"), dataset_dir=str(data), output_dir=str(out),
        skip_bad_items=True, **overrides)  # fmt: skip
    assert (out / "checkpoints" / "best.pt").is_file()
    logged = find_run(
        f"sqlite:///{out.resolve() / 'mlruns.db'}", "abn_classification", "demo_dynamic_resnet18_fold0"
    )
    assert logged.data.params["skipped_items"] == "1"
    assert "fast_path" in logged.data.params


@pytest.mark.slow
def test_a_training_split_smaller_than_one_batch_is_an_error(tmp_path):
    from monai_xai.data import write_demo_dataset

    write_demo_dataset(tmp_path / "demo", n_train=3, n_val=2, n_test=2, size=32)
    result = _run("--dataset_dir", str(tmp_path / "demo"), "--output_dir", str(tmp_path / "run"))
    assert result.returncode != 0
    assert "the train split has 3 items, fewer than one batch of 4" in result.stderr.strip().splitlines()[-1]
