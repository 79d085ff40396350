"""busi_decisions.py pools each arm's folds into intervals; render_results.py shows them."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest


def _write_fold(fold_dir: Path, labels: np.ndarray, scores: np.ndarray, threshold: float) -> None:
    out = fold_dir / "eval_test"
    out.mkdir(parents=True)
    with (out / "predictions.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["source", "patient", "label", "pred", "decision", "prob_benign", "prob_malignant"])
        for i, (y, s) in enumerate(zip(labels, scores)):
            writer.writerow([f"img{i}.png", "", int(y), int(s >= 0.5), int(s >= threshold), 1 - s, s])
    metrics = {
        "calibration": {"ece": 0.2, "ece_temperature_scaled": 0.1},
        "operating_point": {"threshold": threshold, "temperature": 1.5},
        "warnings": [],
    }
    (out / "metrics.json").write_text(json.dumps(metrics))


@pytest.fixture
def runs(tmp_path) -> Path:
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1], [60, 30])
    for arm, signal in (("conventional", 0.2), ("dynamic", 1.0)):
        for fold in range(3):
            scores = 1 / (1 + np.exp(-(signal * (labels - 0.5) * 2 + rng.normal(0, 1, labels.size))))
            _write_fold(tmp_path / arm / f"fold{fold}", labels, scores, threshold=0.4)
    return tmp_path


def test_arms_pooled_over_folds_with_paired_differences(runs, tmp_path, load_script):
    out = tmp_path / "decisions.json"
    module = load_script("experiments/busi_decisions.py")
    report = module.main(["--runs", str(runs), "--arms", "conventional", "dynamic", "--out", str(out)])
    assert json.loads(out.read_text()) == json.loads(json.dumps(report))
    dynamic, conventional = report["arms"]["dynamic"], report["arms"]["conventional"]
    assert report["test_class_counts"] == [60, 30] and report["folds"] == 3
    low, high = dynamic["auc"]["ci95"]
    assert 0.85 < dynamic["auc"]["mean"] and low < dynamic["auc"]["mean"] < high
    assert conventional["auc"]["ci95"][1] < low  # a weak arm sits clearly below a strong one
    assert dynamic["thresholds"] == [0.4, 0.4, 0.4] and dynamic["ece"]["temperature_scaled"] == pytest.approx(
        0.1
    )
    gap = report["differences"]["dynamic-conventional"]["auc"]
    assert gap["ci95"][0] > 0 and gap["verdict_vs_zero"] == "above"
    assert "dynamic-baseline" not in report["differences"]  # an arm that did not run is not invented

    render = load_script("render_results.py")
    table = render.busi_decisions(report)
    assert "| `dynamic` |" in table and f"{dynamic['auc']['mean']:.3f} [" in table
    assert "`dynamic` minus `conventional`" in table


def test_folds_tested_on_other_images_are_refused(runs, tmp_path, load_script):
    other = runs / "dynamic" / "fold0" / "eval_test" / "predictions.csv"
    other.write_text(other.read_text().replace("img0.png", "elsewhere.png"))
    module = load_script("experiments/busi_decisions.py")
    with pytest.raises(SystemExit, match="different images"):
        module.main(
            ["--runs", str(runs), "--arms", "conventional", "dynamic", "--out", str(tmp_path / "x.json")]
        )
