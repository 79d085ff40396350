"""scripts/experiments/retinamnist_table.py: kappa from the written predictions, arms in their rows."""

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


def test_table_scores_each_arm_from_its_predictions(tmp_path, load_script) -> None:
    table = load_script("experiments/retinamnist_table.py")
    # Confusion [[2, 0], [1, 1]] over grades 0 and 1: kappa 0.5 (worked out in test_deletion_insertion_kappa).
    _write(tmp_path / "baseline" / "eval_test", [0, 0, 1, 1], [0, 0, 0, 1], 0.75, 0.8)
    _write(tmp_path / "multiscale" / "eval_test", [0, 1, 2, 4], [0, 1, 2, 4], 1.0, 1.0)
    text = table.main([str(tmp_path)])
    rows = {line.split(" | ")[0].lstrip("| "): line for line in text.splitlines()[2:]}
    assert rows["ResNet18 (`baseline`)"] == "| ResNet18 (`baseline`) | 0.500 | 0.750 | 0.800 | 4 |"
    assert rows["ResNet18 + ABN (`plain`)"] == "| ResNet18 + ABN (`plain`) | - | - | - | - |"
    assert rows["Multi-scale ABN (ResNet18)"].startswith("| Multi-scale ABN (ResNet18) | 1.000 | 1.000 |")
    assert "| 0.524 | 0.717 |" in rows["MedMNIST v2 paper, ResNet-18 (28)"]
    assert (tmp_path / "table.md").read_text() == text


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
