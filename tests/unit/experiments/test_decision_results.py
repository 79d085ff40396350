"""busi_decisions pools each arm's folds into intervals, reads the task from run.json, and renders them."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from monai_xai.errors import InputError
from monai_xai.experiments import busi_decisions

IDENTITY = {
    "data": {
        "class_names": ["benign", "malignant"],
        "dataset": "busi2_dedup",
        "datalist_args": {"split_file": {"file": "busi_splits_dedup.json", "content": "sha256:0"}},
        "fold": 0,
        "seed": 0,
    },
    "network": {"architecture": "abn", "mode": "dynamic"},
}


def _write_fold(fold_dir: Path, labels: np.ndarray, scores: np.ndarray, threshold: float, scaled) -> None:
    out = fold_dir / "eval_test"
    out.mkdir(parents=True)
    with (out / "predictions.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["source", "patient", "label", "pred", "decision", "prob_benign", "prob_malignant"])
        for i, (y, s) in enumerate(zip(labels, scores)):
            writer.writerow([f"img{i}.png", "", int(y), int(s >= 0.5), int(s >= threshold), 1 - s, s])
    calibration = {"ece": 0.2} if scaled is None else {"ece": 0.2, "ece_temperature_scaled": scaled}
    metrics = {
        "calibration": calibration,
        "operating_point": {"threshold": threshold, "temperature": 1.5},
        "warnings": [],
    }
    (out / "metrics.json").write_text(json.dumps(metrics))
    (fold_dir / "run.json").write_text(json.dumps({"fingerprint": "0", "identity": IDENTITY}))


@pytest.fixture(autouse=True)
def few_resamples(monkeypatch):
    """200 resamples instead of 2000: the same code, a tenth of the time."""
    monkeypatch.setattr(busi_decisions, "N_BOOT", 200)


@pytest.fixture
def runs(tmp_path) -> Path:
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1], [60, 30])
    for arm, signal in (("conventional", 0.2), ("dynamic", 1.0)):
        for fold, scaled in enumerate((0.1, 0.12, None)):  # the last fold's temperature was not applied
            scores = 1 / (1 + np.exp(-(signal * (labels - 0.5) * 2 + rng.normal(0, 1, labels.size))))
            _write_fold(tmp_path / "runs" / arm / f"fold{fold}", labels, scores, 0.4, scaled)
    return tmp_path / "runs"


def test_arms_pooled_over_folds_with_paired_differences(runs, tmp_path):
    out = tmp_path / "decisions.json"
    busi_decisions.main(["--runs", str(runs), "--arms", "conventional", "dynamic", "--out", str(out)])
    report = json.loads(out.read_text())
    dynamic, conventional = report["arms"]["dynamic"], report["arms"]["conventional"]
    assert report["test_class_counts"] == [60, 30] and report["folds"] == 3
    assert report["task"] == "benign vs malignant" and report["split"] == "busi_splits_dedup.json"
    low, high = dynamic["auc"]["ci95"]
    assert 0.85 < dynamic["auc"]["mean"] and low < dynamic["auc"]["mean"] < high
    assert dynamic["auc"]["n_runs"] == 3 and dynamic["auc"]["between_run_sd"] > 0
    assert conventional["auc"]["ci95"][1] < low  # a weak arm sits clearly below a strong one
    assert dynamic["thresholds"] == [0.4, 0.4, 0.4]
    # the unscaled fold is missing from the temperature-scaled mean, not counted with its unscaled ECE
    assert dynamic["ece"]["temperature_scaled"] == pytest.approx(
        {"mean": 0.11, "sd": pytest.approx(0.0141421, rel=1e-4), "n": 2, "missing": 1}
    )
    gap = report["differences"]["dynamic-conventional"]["auc"]
    assert gap["ci95"][0] > 0 and gap["verdict_vs_zero"] == "above 0"
    assert "dynamic-baseline" not in report["differences"]  # an arm that did not run is not invented

    table = busi_decisions.render(report)
    assert "| `dynamic` |" in table and f"{dynamic['auc']['mean']:.3f} [" in table
    assert "0.110 ± 0.014 (1 fold(s) not scaled)" in table
    assert "- `dynamic` minus `conventional`: auc " in table and "(above 0)" in table


def test_one_fold_writes_valid_json(runs, tmp_path):
    """A single fold has no between-run sd: None in the file, which JSON without NaN accepts."""
    for arm in ("conventional", "dynamic"):
        for fold in ("fold1", "fold2"):
            for path in sorted((runs / arm / fold).rglob("*"), reverse=True):
                path.unlink() if path.is_file() else path.rmdir()
            (runs / arm / fold).rmdir()
    out = tmp_path / "one.json"
    busi_decisions.main(["--runs", str(runs), "--arms", "conventional", "dynamic", "--out", str(out)])
    report = json.loads(out.read_text())
    assert report["folds"] == 1 and report["arms"]["dynamic"]["auc"]["between_run_sd"] is None
    assert report["arms"]["dynamic"]["ece"]["temperature_scaled"]["sd"] is None


def test_folds_tested_on_other_images_are_refused(runs, tmp_path):
    other = runs / "dynamic" / "fold0" / "eval_test" / "predictions.csv"
    other.write_text(other.read_text().replace("img0.png", "elsewhere.png"))
    with pytest.raises(InputError, match="different images"):
        busi_decisions.collect(runs, ["conventional", "dynamic"], ["dynamic-conventional"])


def test_arms_trained_on_other_data_are_refused(runs):
    record = runs / "dynamic" / "fold1" / "run.json"
    other = {**IDENTITY, "data": {**IDENTITY["data"], "seed": 1}}
    record.write_text(json.dumps({"fingerprint": "1", "identity": other}))
    with pytest.raises(InputError, match="other data than conventional's"):
        busi_decisions.collect(runs, ["conventional", "dynamic"], [])


def test_results_go_into_the_docs_only_with_publish(runs):
    with pytest.raises(InputError, match="--publish"):
        busi_decisions.main(["--runs", str(runs), "--arms", "dynamic"])
