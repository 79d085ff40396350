"""k-fold cross-validation of the ABN bundle on tiny demo data: two folds, summaries, MLflow, reuse."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CONFIGS = REPO / "bundles" / "abn_classification" / "configs"
TRAIN, EVALUATE = [str(CONFIGS / "train.json")], str(CONFIGS / "evaluate.json")
SMOKE = {"max_epochs": 1, "batch_size": 4, "val_batch_size": 8, "num_workers": 0, "limit": None}


def _test_metrics_mtimes(out: Path) -> list[int]:
    return [(out / f"fold{k}" / "eval_test" / "metrics.json").stat().st_mtime_ns for k in (0, 1)]


@pytest.mark.slow
def test_two_folds_summarized_and_reused(tmp_path, capsys, one_thread):
    from monai_xai.crossval import run_crossval
    from monai_xai.data import write_demo_dataset
    from monai_xai.tracking import find_run

    data = tmp_path / "demo"
    write_demo_dataset(data, n_train=16, n_val=8, n_test=8, size=64)
    (data / "splits.json").unlink()  # the demo ships one fold; without it the seeded 3-fold split is used
    out = tmp_path / "cv"
    overrides = {**SMOKE, "dataset_dir": str(data), "mode": "dynamic", "n_overlays": 2}
    summary = run_crossval(TRAIN, EVALUATE, out, folds=[0, 1], overrides=overrides)

    assert summary["n_folds"] == 3 and summary["folds"] == [0, 1]
    assert summary["run_name"] == "demo_dynamic_resnet18_crossval"
    for split in ("val", "test"):
        for name in (
            "image_accuracy",
            "image_auc",
            "attention_pointing_game",
            "gradcampp_energy_inside_mask",
        ):
            stats = summary[split][name]
            first, second = stats["values"]
            assert stats["n"] == 2 and stats["mean"] == pytest.approx((first + second) / 2)
            assert stats["sd"] == pytest.approx(abs(first - second) / 2**0.5)  # sample sd of two values
    on_disk = json.loads((out / "crossval_summary.json").read_text())
    assert on_disk["test"]["image_auc"] == summary["test"]["image_auc"]
    assert [
        (f["fold"], f["run_name"][:-13], f["reused"], "image" in f["val"]) for f in on_disk["per_fold"]
    ] == [
        (0, "demo_dynamic_resnet18_fold0", False, True),
        (1, "demo_dynamic_resnet18_fold1", False, True),
    ]
    assert all(re.fullmatch(r".*_fold\d-[0-9a-f]{12}", f["run_name"]) for f in on_disk["per_fold"])
    markdown = (out / "crossval_summary.md").read_text()
    accuracy = summary["test"]["image_accuracy"]
    assert "| metric | val mean ± sd | test mean ± sd |" in markdown
    assert f"| image_accuracy | {summary['val']['image_accuracy']['mean']:.3f} ± " in markdown
    assert f"{accuracy['mean']:.3f} ± {accuracy['sd']:.3f} |" in markdown
    assert markdown in capsys.readouterr().out

    store = f"sqlite:///{out.resolve() / 'mlruns.db'}"
    assert summary["tracking_uri"] == store
    for k in (0, 1):
        fold_run = find_run(store, "abn_classification", f"demo_dynamic_resnet18_fold{k}")
        assert {"val_auc", "val_image_auc", "test_image_auc"} <= set(fold_run.data.metrics)
    cv_run = find_run(store, "abn_classification", "demo_dynamic_resnet18_crossval")
    assert cv_run.info.status == "FINISHED"
    assert cv_run.data.metrics["test_image_accuracy"] == pytest.approx(accuracy["mean"])
    assert cv_run.data.metrics["test_image_accuracy_sd"] == pytest.approx(accuracy["sd"])

    written = _test_metrics_mtimes(out)
    again = run_crossval(TRAIN, EVALUATE, out, folds=[0, 1], overrides=overrides)
    assert "fold 0: reusing" in capsys.readouterr().out and all(f["reused"] for f in again["per_fold"])
    assert _test_metrics_mtimes(out) == written and again["test"] == summary["test"]


def test_cli_refuses_what_would_mix_folds(tmp_path):
    from monai_xai.crossval import main
    from monai_xai.data import write_demo_dataset

    write_demo_dataset(tmp_path / "demo", n_train=8, n_val=4, n_test=4, size=32)
    cli = ["--config_file", str(TRAIN), "--evaluate_file", EVALUATE, "--output_dir", str(tmp_path / "cv")]
    cli += ["--dataset_dir", str(tmp_path / "demo"), "--limit", "null"]
    with pytest.raises(ValueError, match=r"subset of 0\.\.0, got \[1\]"):  # the demo's splits.json: one fold
        main([*cli, "--folds", "1"])
    with pytest.raises(ValueError, match=r"\['fold'\] are set per fold"):
        main([*cli, "--fold", "1"])
    (tmp_path / "demo" / "splits.json").unlink()
    with pytest.raises(ValueError, match="run_name must differ between folds"):
        main([*cli, "--folds", "0", "1", "--run_name", "same"])
    assert not (tmp_path / "cv" / "fold0").exists()
