"""The dataset-scale benchmark's parts: a dataset generated once (completed, never rewritten), which
iterations are timed, the process tree's memory, and the report from a run folder's records."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest

from monai_xai.errors import InputError
from monai_xai.experiments import dataset_scale
from monai_xai.experiments.dataset_scale import TreeMemory, collect, generate_dataset, main, render


def test_a_dataset_is_generated_once_and_a_partial_one_completed(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(dataset_scale, "CHUNK", 10)
    folder = tmp_path / "phantoms"
    record = generate_dataset(folder, 30, size=32, seed=3)
    assert (record["n"], record["reused"], record["resumed"]) == (30, False, False)
    rows = (folder / "labels.csv").read_text().splitlines()
    assert (
        rows[0] == "image,mask,label" and len(rows) == 31 and rows[1].startswith("images/000000.png,masks/")
    )
    splits = json.loads((folder / "splits.json").read_text())
    assert len(splits["test"]) == len(splits["folds"][0]) == 3 and splits["test"][-1] == "images/000029.png"
    image = (folder / "images" / "000015.png").read_bytes()
    assert generate_dataset(folder, 30, size=32, seed=3)["reused"]
    with pytest.raises(InputError, match="holds another dataset"):
        generate_dataset(folder, 40, size=32, seed=3)
    # interrupted: the record and one chunk are missing, and so is an image of that chunk
    (folder / "dataset.json").unlink()
    (folder / "chunks" / "00001.csv").unlink()
    (folder / "images" / "000015.png").unlink()
    (folder / "images" / "000003.png").write_bytes(b"kept")  # a finished chunk is not rewritten
    again = generate_dataset(folder, 30, size=32, seed=3)
    assert again["resumed"] and (folder / "images" / "000015.png").read_bytes() == image
    assert (folder / "images" / "000003.png").read_bytes() == b"kept"
    assert (folder / "labels.csv").read_text().splitlines() == rows
    assert not list(folder.rglob(".tmp*"))


def test_the_warm_up_and_each_epochs_first_batch_are_not_timed() -> None:
    assert dataset_scale._timed_indices([1, 1, 1, 2, 2, 3, 3], warmup=1) == [1, 2, 4, 6]
    assert dataset_scale._timed_indices([1, 1, 1], warmup=0) == [1, 2]
    assert dataset_scale._timed_indices([1, 1, 1, 1], warmup=2) == [2, 3]


def test_the_tree_memory_counts_the_children(tmp_path) -> None:
    alone = TreeMemory(os.getpid()).sample()
    code = "import time, numpy; a = numpy.ones(200_000_000 // 8); time.sleep(30)"
    child = subprocess.Popen([sys.executable, "-c", code])
    try:
        deadline = time.monotonic() + 30
        while TreeMemory(child.pid).sample()[0] < 200e6 and time.monotonic() < deadline:
            time.sleep(0.05)
        with_child = TreeMemory(os.getpid()).sample()
    finally:
        child.kill()
        child.wait()
    assert with_child[0] > alone[0] + 180e6 and with_child[1] > alone[1] + 180e6  # RSS and PSS
    with TreeMemory(os.getpid(), interval=0.01) as memory:
        pass
    assert memory.samples >= 1 and memory.to_dict()["peak_tree_pss_gb"] > 0


def _slice(n_train: int, mode: str, seconds: list[float], epochs: list[int]) -> dict:
    return {
        "n_train": n_train, "batch_size": 4, "device": "cpu", "epoch_length": 3,
        "train_cache": {"mode": mode, "items": n_train, "gb": 0.01, "reason": "r"},
        "val_cache": {"mode": "memory", "items": 6, "gb": 0.0, "reason": "r"},
        "input_check_s": 1.0, "train_cache_s": 2.0, "val_cache_s": 0.5, "setup_s": 5.0, "warmup": 1,
        "iterations": [{"epoch": e, "seconds": s} for e, s in zip(epochs, seconds)],
        "trainer_peak_rss_gb": 1.0, "worker_peak_rss_gb": 0.5,
    }  # fmt: skip


def test_the_report_puts_both_runs_side_by_side_against_the_targets(tmp_path) -> None:
    runs = tmp_path / "runs"
    from monai_xai.experiments.results import write_results

    datasets = {"small": {"n": 60, "seconds": 3.0}, "large": {"n": 300, "seconds": 9.0}}
    settings = {"iterations": 3, "warmup": 1, "batch_size": 4, "size": 64, "num_workers": 2}
    environment = {"threads": 2, "loadavg_1min_at_start": 0.1, "loadavg_1min_at_end": 0.2}
    write_results({"settings": settings, "datasets": datasets, "environment": environment}, runs / "run.json")
    # the small run's epoch turns (epochs 2 and 3 start) and the warm-up are left out: 0.2 s per step
    small = _slice(48, "memory", [9.0, 0.2, 0.2, 7.0, 0.2], [1, 1, 1, 2, 2])
    large = _slice(240, "disk", [9.0, 0.25, 0.25, 0.25, 0.25], [1, 1, 1, 1, 1])
    for name, record, peak in (("small", small, 2.0), ("large", large, 3.5)):
        write_results(record, runs / name / "slice.json")
        memory = {"peak_tree_pss_gb": peak, "peak_tree_rss_gb": peak + 1, "samples": 9, "interval_s": 0.5}
        write_results(memory, runs / name / "memory.json")
    report = collect(runs)
    assert (
        report["runs"]["small"]["timed_iterations"] == 3 and report["runs"]["large"]["timed_iterations"] == 4
    )
    assert report["runs"]["small"]["images_per_s"] == 20.0 and report["runs"]["large"]["images_per_s"] == 16.0
    assert report["runs"]["large"]["cache_build_s"] == 2.5 and report["runs"]["large"]["generation_s"] == 9.0
    assert report["scale_peak_memory_gb"] == 3.5 and report["verdicts"]["scale_peak_memory_gb"] == "met"
    ratio = report["scale_throughput_ratio"]
    assert ratio["mean"] == pytest.approx(0.8) and ratio["ci95"] == pytest.approx([0.8, 0.8])
    assert report["verdicts"]["scale_throughput_ratio"] == "missed"
    table = render(report)
    assert "| 300 images | 240 | disk | 9 | 2.5 | 16.00 | 3.50 | 4.50 |" in table
    assert "0.800 [0.800, 0.800] (target ≥ 0.9: missed)" in table
    json.dumps(report, allow_nan=False)


def test_publish_needs_the_full_budget_before_any_work(tmp_path) -> None:
    with pytest.raises(InputError, match="--n_large 300 \\(needs 80000\\)"):
        main(["run", "--n_large", "300", "--runs", str(tmp_path), "--publish"])
    with pytest.raises(InputError, match="--out"):
        main(["run", "--runs", str(tmp_path)])
    assert list(tmp_path.iterdir()) == []


def test_the_timed_seconds_are_read_as_an_array() -> None:
    record = _slice(8, "memory", [1.0, 0.5, 0.25], [1, 1, 1])
    assert np.array_equal(dataset_scale._timed(record), [0.5, 0.25])
