"""scripts/experiments/retinamnist_results.py: kappa from the written predictions, arms against the paper."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


def _write(eval_dir: Path, labels: list[int], preds: list[int], accuracy: float, auc: float) -> None:
    eval_dir.mkdir(parents=True)
    (eval_dir / "metrics.json").write_text(json.dumps({"image": {"accuracy": accuracy, "auc": auc}}))
    probs = ",".join(f"prob_grade_{k}" for k in range(5))
    rows = [f"a{i},,{t},{p}," + ",".join(["0.2"] * 5) for i, (t, p) in enumerate(zip(labels, preds))]
    (eval_dir / "predictions.csv").write_text(f"source,patient,label,pred,{probs}\n" + "\n".join(rows) + "\n")


def test_results_score_each_arm_from_its_predictions(tmp_path, load_script) -> None:
    script = load_script("experiments/retinamnist_results.py")
    # Confusion [[2, 0], [1, 1]] over grades 0 and 1: kappa 0.5 (worked out in test_deletion_insertion_kappa).
    _write(tmp_path / "baseline" / "eval_test", [0, 0, 1, 1], [0, 0, 0, 1], 0.75, 0.8)
    _write(tmp_path / "multiscale" / "eval_test", [0, 1, 2, 4], [0, 1, 2, 4], 1.0, 1.0)
    with pytest.raises(SystemExit, match="plain/eval_test: no test evaluation"):
        script.main([str(tmp_path)])
    _write(tmp_path / "plain" / "eval_test", [0, 1], [1, 1], 0.5, 0.7)
    report = script.main([str(tmp_path), "--epochs", "10"])
    assert report["arms"]["baseline"] == {
        "label": "ResNet18 (`baseline`)", "kappa": pytest.approx(0.5), "accuracy": 0.75, "auc": 0.8, "n": 4,
        "reaches_paper": True,
    }  # fmt: skip
    assert not report["arms"]["plain"]["reaches_paper"]  # accuracy 0.5 < 0.524
    assert report["settings"] == {"epochs": 10} and report["paper"] == {"accuracy": 0.524, "auc": 0.717}
    assert json.loads((tmp_path / "retinamnist.json").read_text()) == json.loads(json.dumps(report))
    table = load_script("render_results.py").retinamnist(report)
    assert "| ResNet18 (`baseline`) | 0.500 | 0.750 | 0.800 | 4 | yes |" in table
    assert "| ResNet18 + ABN (`plain`) | 0.000 | 0.500 | 0.700 | 2 | **no** |" in table
    assert "| MedMNIST v2 paper, ResNet-18 (28) | not reported | 0.524 | 0.717 | 400 | |" in table


def test_predictions_kappa_skips_unlabelled_rows_and_names_bad_files(tmp_path) -> None:
    from monai_xai.errors import InputError
    from monai_xai.metrics import predictions_kappa

    eval_dir = tmp_path / "eval"
    _write(eval_dir, [0, 0, 1, 1, -1], [0, 0, 0, 1, 4], 0.75, 0.8)
    assert predictions_kappa(eval_dir / "predictions.csv") == pytest.approx(0.5)
    with pytest.raises(InputError, match="missing.csv: cannot read predictions"):
        predictions_kappa(tmp_path / "missing.csv")
    (tmp_path / "bad.csv").write_text("source,prediction\na,1\n")
    with pytest.raises(InputError, match="bad.csv: expected 'label' and 'pred' columns"):
        predictions_kappa(tmp_path / "bad.csv")
    (tmp_path / "range.csv").write_text("source,label,pred,prob_a,prob_b\na,0,2,0.5,0.5\n")
    with pytest.raises(InputError, match=r"range.csv: grades must lie in \[0, 1\]"):
        predictions_kappa(tmp_path / "range.csv")
