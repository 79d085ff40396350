"""imbalanced_demo's collector: each arm's evaluation, the paired difference, the network from run.json."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from monai_xai.errors import InputError
from monai_xai.experiments import imbalanced_demo

IDENTITY = {
    "data": {"dataset": "demo", "seed": 3},
    "network": {"architecture": "abn", "backbone": "resnet18", "mode": "dynamic", "spatial_size": [64, 64]},
}


def _interval(mean: float) -> dict:
    return {"mean": mean, "ci95": [mean - 0.05, min(mean + 0.05, 1.0)], "n": 90}


def _write_arm(arm_dir: Path, labels: np.ndarray, preds: np.ndarray, decisions: np.ndarray) -> None:
    (arm_dir / "eval_test").mkdir(parents=True)
    (arm_dir / "run.json").write_text(json.dumps({"fingerprint": "f00d", "identity": IDENTITY}))
    metrics = {
        "intervals": {
            name: _interval(0.8)
            for name in (
                "auc",
                "balanced_accuracy",
                "balanced_accuracy_at_threshold",
                "sensitivity_at_threshold",
                "specificity_at_threshold",
            )
        },
        "image": {"average_precision": 0.7, "sensitivity": 0.6, "specificity": 0.95},
        "image_at_threshold": {"ppv": 0.5},
        "operating_point": {
            "threshold": 0.3,
            "temperature": 1.0,
            "temperature_fit": "not applied: no minimum",
        },
        "calibration": {"ece": 0.05},
        "warnings": ["test (argmax): 97 % class 0"],
    }
    (arm_dir / "eval_test" / "metrics.json").write_text(json.dumps(metrics))
    with (arm_dir / "eval_test" / "predictions.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["source", "patient", "label", "pred", "decision", "prob_0", "prob_1"])
        for i, (y, p, d) in enumerate(zip(labels, preds, decisions)):
            writer.writerow([f"{i}.png", "", y, p, d, 0.5, 0.5])


@pytest.fixture
def runs(tmp_path) -> Path:
    labels = np.repeat([0, 1], [80, 10])
    misses = labels.copy()
    misses[80:86] = 0  # the argmax of `none` misses 6 of the 10 minority images
    _write_arm(tmp_path / "runs" / "none", labels, misses, misses)
    _write_arm(tmp_path / "runs" / "auto", labels, misses, labels)  # its threshold finds them all
    data = tmp_path / "data"
    data.mkdir()
    counts = {"train": (16, 2), "val": (8, 1), "test": (80, 10)}
    with (data / "labels.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["image", "label", "split"])
        for part, (negatives, positives) in counts.items():
            for label, n in ((0, negatives), (1, positives)):
                writer.writerows([f"{part}_{label}_{i}.png", label, part] for i in range(n))
    return tmp_path


def test_collect_pairs_the_arms_and_reads_the_network_back(runs, monkeypatch) -> None:
    monkeypatch.setattr(imbalanced_demo, "N_BOOT", 200)
    attempt = {"step": "none/train", "status": "done", "seconds": 12.5, "resumed": False, "digest": "d"}
    (runs / "runs" / "runtime.jsonl").write_text(json.dumps({**attempt, "finished": "today"}) + "\n")
    report = imbalanced_demo.collect(runs / "runs", runs / "data", max_epochs=7)
    assert report["dataset"]["class_counts"] == {"train": [16, 2], "val": [8, 1], "test": [80, 10]}
    assert report["dataset"]["size"] == 64
    assert report["settings"]["seed"] == 3 and report["settings"]["max_epochs"] == 7
    assert report["wall_time"]["seconds"] == 12.5 and set(report["wall_time"]["steps"]) == {"none/train"}
    difference = report["balanced_accuracy_difference"]
    assert difference["mean"] == pytest.approx(0.3)  # (1.0 - 0.4) / 2 of the minority class
    assert difference["ci95"][0] > 0 and difference["verdict_vs_zero"] == "above 0"
    table = imbalanced_demo.render(report)
    assert "| `auto` | auto | 0.800 [0.750, 0.850] |" in table
    assert "paired on the same images: 0.300 [" in table and "(above 0)." in table
    assert "¹ Temperature scaling `none`: not applied: no minimum" in table
    assert "Warnings the evaluations printed: test (argmax): 97 % class 0" in table


def test_arms_on_other_networks_are_refused(runs) -> None:
    other = {**IDENTITY, "network": {**IDENTITY["network"], "architecture": "abn_compact"}}
    (runs / "runs" / "auto" / "run.json").write_text(json.dumps({"fingerprint": "0", "identity": other}))
    with pytest.raises(InputError, match="other data or networks"):
        imbalanced_demo.collect(runs / "runs", runs / "data", max_epochs=7)


def test_no_output_fails_before_training(runs, monkeypatch) -> None:
    monkeypatch.setattr(imbalanced_demo, "_train", lambda args: pytest.fail("trained without an output"))
    with pytest.raises(InputError, match="give --out"):
        imbalanced_demo.main(["--runs", str(runs / "runs"), "--data", str(runs / "data")])
