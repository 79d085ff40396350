"""scripts/experiments/medmnist_results.py gathers the MedMNIST runs into the ABN docs' results file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


def _write_run(run: Path, accuracy: float, auc: float) -> None:
    (run / "eval_test").mkdir(parents=True)
    image = {"accuracy": accuracy, "auc": auc, "sensitivity": 0.9, "specificity": 0.6}
    (run / "eval_test" / "metrics.json").write_text(json.dumps({"n_images": 156, "image": image}))
    (run / "budget.json").write_text('{"epochs": 100, "stem": "small", "batch_size": 64, "seconds": 412}')


def test_results_hold_each_arm_beside_the_paper_and_render(tmp_path, load_script) -> None:
    _write_run(tmp_path / "breastmnist" / "baseline", 0.85, 0.89)
    _write_run(tmp_path / "breastmnist" / "plain", 0.87, 0.91)
    out = tmp_path / "medmnist.json"
    report = load_script("experiments/medmnist_results.py").main(
        ["--runs", str(tmp_path), "--datasets", "breastmnist", "--out", str(out)]
    )
    assert json.loads(out.read_text()) == report
    entry = report["datasets"]["breastmnist"]
    assert entry["paper"] == {"accuracy": 0.863, "auc": 0.901}
    assert entry["arms"]["plain"] == {
        "accuracy": 0.87, "auc": 0.91, "sensitivity": 0.9, "specificity": 0.6,
        "epochs": 100, "stem": "small", "batch_size": 64, "seconds": 412, "n_test": 156,
    }  # fmt: skip
    table = load_script("render_results.py").medmnist(report)
    assert (
        "| breastmnist (156 test) | ABN (`plain`) | 0.870 | 0.910 | 0.900 | 0.600 | 100, `small` | 412 s |"
        in table
    )
    assert "| breastmnist | MedMNIST v2, ResNet-18 (28) | 0.863 | 0.901 |" in table


def test_a_missing_run_names_the_file_and_the_command(tmp_path, load_script) -> None:
    _write_run(tmp_path / "breastmnist" / "baseline", 0.85, 0.89)
    out = tmp_path / "medmnist.json"
    with pytest.raises(
        SystemExit, match=r"breastmnist/plain/eval_test/metrics.json is missing: run .*abn_medmnist.sh"
    ):
        load_script("experiments/medmnist_results.py").main(
            ["--runs", str(tmp_path), "--datasets", "breastmnist", "--out", str(out)]
        )
    assert not out.exists()
