"""scripts/experiments/busi_maps.py reads each method's evaluation into one results file; its renderer lays
it out like the study's tables."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch


def _write(eval_dir: Path, faithfulness: dict, agreement: dict, accuracy: float) -> None:
    eval_dir.mkdir(parents=True)
    (eval_dir / "faithfulness.json").write_text(json.dumps(faithfulness))
    (eval_dir / "metrics.json").write_text(
        json.dumps({"image": {"accuracy": accuracy, "auc": 0.5}, "attention_agreement": agreement})
    )


def test_results_put_each_method_in_its_row(tmp_path, load_script) -> None:
    net = tmp_path / "resnet18"
    _write(
        net / "gradcam_resnet" / "eval_test",
        {"gradcam": {"deletion_auc": 0.31, "insertion_auc": 0.5}, "gradcampp": {"deletion_auc": 0.32}},
        {"gradcam": {"map_mse": 0.21, "pointing_game": 0.4}, "gradcampp": {"map_mse": 0.22}},
        0.7,
    )
    _write(
        net / "multiscale" / "eval_test",
        {"attention": {"deletion_auc": 0.25, "insertion_auc": 0.6}},
        {"attention": {"map_mse": 0.1}},
        0.8,
    )
    (net / "multiscale" / "checkpoints").mkdir()
    (net / "multiscale" / "checkpoints" / "best.json").write_text('{"metric": "val_auc", "epoch": 7}')
    torch.save({"engine": {"epoch": 17, "iteration": 170}}, net / "multiscale" / "checkpoints" / "latest.pt")
    (tmp_path / "runtime.txt").write_text("resnet18 plain ResNet: 12 s\n")
    report = load_script("experiments/busi_maps.py").main([str(tmp_path), "--spatial_size", "128"])
    methods = report["methods"]
    assert methods["gradcam"]["scores"]["resnet18"] == {
        "deletion_auc": 0.31, "insertion_auc": 0.5, "map_mse": 0.21, "map_pointing_game": 0.4,
        "accuracy": 0.7, "auc": 0.5,
    }  # fmt: skip
    assert methods["gradcampp"]["scores"]["resnet18"]["deletion_auc"] == 0.32
    assert methods["abn"]["scores"] == {} and methods["multiscale_finetuned"]["scores"] == {}  # not run yet
    assert report["training"]["resnet18"]["multiscale"] == {"best_epoch": 7, "epochs_trained": 17}
    assert report["settings"]["spatial_size"] == 128 and report["wall_time"] == [
        "resnet18 plain ResNet: 12 s"
    ]
    assert json.loads((tmp_path / "busi_maps.json").read_text()) == report

    table = load_script("render_results.py").busi_maps(report)
    assert "| Grad-CAM (plain ResNet) | 0.310 | 0.500 | 0.210 |" in table
    assert "| Multi-scale ABN | **0.250** | **0.600** | **0.100** |" in table  # best of each column
    assert "| ABN | - | - | - |" in table
    assert "resnet18 `multiscale` 7/17" in table


def test_no_runs_is_an_error_naming_the_driver(tmp_path, load_script) -> None:
    with pytest.raises(SystemExit, match="multiscale_busi.sh"):
        load_script("experiments/busi_maps.py").main([str(tmp_path)])
