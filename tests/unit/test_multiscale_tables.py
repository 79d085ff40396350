"""scripts/experiments/multiscale_tables.py reads each method's evaluation into method x backbone tables."""

from __future__ import annotations

import json
from pathlib import Path


def _write(eval_dir: Path, faithfulness: dict, agreement: dict, accuracy: float) -> None:
    eval_dir.mkdir(parents=True)
    (eval_dir / "faithfulness.json").write_text(json.dumps(faithfulness))
    (eval_dir / "metrics.json").write_text(
        json.dumps({"image": {"accuracy": accuracy}, "attention_agreement": agreement})
    )


def test_tables_put_each_method_in_its_row(tmp_path, load_script) -> None:
    net = tmp_path / "resnet18"
    _write(
        net / "gradcam_resnet" / "eval_test",
        {"gradcam": {"deletion_auc": 0.31}, "gradcampp": {"deletion_auc": 0.32}},
        {"gradcam": {"map_mse": 0.21}, "gradcampp": {"map_mse": 0.22}},
        0.7,
    )
    _write(
        net / "multiscale" / "eval_test",
        {"attention": {"deletion_auc": 0.25}},
        {"attention": {"map_mse": 0.1}},
        0.8,
    )
    (tmp_path / "runtime.txt").write_text("resnet18 plain ResNet: 12 s\n")
    text = load_script("experiments/multiscale_tables.py").main([str(tmp_path)])
    assert "| Grad-CAM (ResNet) | 0.3100 |" in text and "| Grad-CAM++ (ResNet) | 0.3200 |" in text
    assert "| Multi-scale ABN | 0.2500 |" in text and "| ABN | - |" in text  # no single-scale run yet
    assert "| Multi-scale ABN | 0.1000 |" in text and "| Grad-CAM (ResNet) | 0.7000 |" in text
    assert "- resnet18 plain ResNet: 12 s" in text and (tmp_path / "tables.md").read_text() == text
