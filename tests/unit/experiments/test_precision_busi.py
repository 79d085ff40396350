"""precision_busi compares the two precisions' runs: best checkpoints' AUC intervals, paired difference."""

from __future__ import annotations

import numpy as np
import pytest

from monai_xai.errors import InputError
from monai_xai.experiments import precision_busi

IDENTITY = {
    "data": {"dataset": "busi2", "class_names": ["benign", "malignant"], "fold": 1, "seed": 4},
    "network": {"mode": "dynamic", "backbone": "resnet18", "spatial_size": [128, 128]},
}


def _arm(amp: bool, scores: np.ndarray, labels: np.ndarray, aucs: list[float], wall: float) -> dict:
    return {
        "identity": IDENTITY,
        "max_epochs": len(aucs),
        "amp": amp,
        "fast_path": "cpu bfloat16 autocast" if amp else "cpu float32",
        "val_auc_per_epoch": aucs,
        "wall_seconds": wall,
        "predictions": {
            "sources": [f"{i}.png" for i in range(labels.size)],
            "labels": labels,
            "scores": scores,
        },
    }


@pytest.fixture
def arms() -> dict:
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1], [70, 30])
    scores = labels + rng.normal(0, 0.8, labels.size)
    return {
        "float32": _arm(False, scores, labels, [0.6, 0.8, 0.78], 150.0),
        "fast_path": _arm(True, scores + rng.normal(0, 0.05, labels.size), labels, [0.62, 0.79, 0.81], 80.0),
    }


def test_summary_reads_the_runs_settings_and_pairs_the_arms(arms, monkeypatch) -> None:
    monkeypatch.setattr(precision_busi, "N_BOOT", 200)
    report = precision_busi.summarise(arms, cpu_supports_bf16=True)
    assert (report["fold"], report["seed"], report["epochs"], report["size"]) == (1, 4, 3, 128)
    assert report["task"] == "busi2: benign vs malignant, ABN dynamic, resnet18"
    assert report["best_val_auc_difference"] == pytest.approx(0.01)
    assert report["wall_time_ratio"] == pytest.approx(1.875)
    difference = report["best_checkpoint_val_auc_difference"]
    low, high = difference["ci95"]
    assert low < 0 < high and high - low < 0.05  # near-identical scores: a narrow paired interval around 0
    assert difference["verdict_vs_zero"] == "not distinguishable at this n"
    best = report["arms"]["fast_path"]["best_checkpoint_val_auc"]
    assert best["ci95"][0] < best["mean"] < best["ci95"][1] and best["n"] == 100
    table = precision_busi.render(report)
    assert f"| `--amp true` | cpu bfloat16 autocast | {best['mean']:.3f} [" in table
    assert "| 0.620, 0.790, 0.810 | 80 s |" in table
    assert "paired on 100 validation images" in table


def test_a_results_file_without_intervals_says_so(arms) -> None:
    report = precision_busi.summarise(arms, cpu_supports_bf16=True)
    del report["best_checkpoint_val_auc_difference"]
    for arm in report["arms"].values():
        del arm["best_checkpoint_val_auc"]
    table = precision_busi.render(report)
    assert "best-AUC difference fast path minus float32 +0.0100 (no interval: re-run pending)" in table
    assert "| `--amp false` | cpu float32 | 0.800 | 0.780 |" in table


def test_an_untimed_training_has_no_wall_time_ratio(arms) -> None:
    arms["fast_path"]["wall_seconds"] = None  # it continued an attempt the runner did not time
    report = precision_busi.summarise(arms, cpu_supports_bf16=True)
    assert report["wall_time_ratio"] is None
    table = precision_busi.render(report)
    assert "| – s |" in table and "wall-time ratio float32 / fast path –." in table


def test_arms_on_other_images_are_refused(arms) -> None:
    arms["fast_path"]["predictions"]["sources"] = arms["fast_path"]["predictions"]["sources"][::-1]
    with pytest.raises(InputError, match="different validation images"):
        precision_busi.summarise(arms, cpu_supports_bf16=True)
