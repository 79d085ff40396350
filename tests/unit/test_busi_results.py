"""scripts/experiments/busi_results.py turns each arm's per-fold test metrics into the BUSI results file."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BINARY = REPO / "configs" / "datasets" / "busi_binary_dedup.json"
THREE_CLASS = REPO / "configs" / "datasets" / "busi_dedup.json"

#: per arm, per fold: test AUC and Grad-CAM++ pointing game; the ABN arms also get M(x) metrics.
AUC = {"dynamic": [0.8, 0.7, 0.9], "conventional": [0.7, 0.7, 0.7], "baseline": [0.6, 0.9, 0.6]}
POINTING = {"dynamic": [0.5, 0.4, 0.3], "conventional": [0.2, 0.4, 0.3], "baseline": [0.1, 0.1, 0.4]}


def _write_fold(
    runs: Path, arm: str, fold: int, auc: float, pointing: float, specificity: float = 0.5
) -> None:
    agreement = {"gradcampp": {"pointing_game": pointing, "energy_inside_mask": 0.1, "map_iou": 0.2}}
    if arm != "baseline":
        agreement["attention"] = {"pointing_game": pointing + 0.1, "energy_inside_mask": 0.3, "map_iou": 0.4}
    metrics = {
        "n_images": 126,
        "image": {"accuracy": auc - 0.1, "sensitivity": 0.6, "specificity": specificity, "auc": auc},
        "confusion_matrix": [[1, 0], [0, 1]],
        "attention_agreement": agreement,
    }
    path = runs / arm / f"fold{fold}" / "eval_test" / "metrics.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(metrics))  # NaN as the bundle writes it


@pytest.fixture
def runs(tmp_path: Path) -> Path:
    for arm in AUC:
        for fold in range(3):
            specificity = math.nan if (arm, fold) == ("dynamic", 1) else 0.5
            _write_fold(tmp_path, arm, fold, AUC[arm][fold], POINTING[arm][fold], specificity)
    (tmp_path / "dynamic" / "wall_s.json").write_text('{"seconds": 300, "resumed": false}')
    (tmp_path / "conventional" / "wall_s.json").write_text('{"seconds": 90, "resumed": true}')
    return tmp_path


def _args(runs: Path, out: Path, config: Path = BINARY) -> list[str]:
    return [
        "--runs", str(runs), "--dataset_config", str(config), "--arms", "dynamic", "conventional", "baseline",
        "--optional_arms", "abn_gated", "rrr", "--epochs", "40", "--spatial_size", "128", "128",
        "--gradcampp_layer", "layer3", "--out", str(out),
    ]  # fmt: skip


def test_writes_mean_sd_paired_differences_and_runtimes(runs, tmp_path, load_script) -> None:
    out = tmp_path / "results" / "busi_binary.json"
    load_script("experiments/busi_results.py").main(_args(runs, out))
    report = json.loads(out.read_text())
    assert set(report) == {
        "task", "dataset", "split", "spatial_size", "epochs", "folds", "class_metrics", "gradcampp_layer",
        "arms", "paired_differences", "runtime_s", "learning_curves",
    }  # fmt: skip
    assert report["split"] == "configs/datasets/busi_splits_dedup.json"
    assert (report["spatial_size"], report["epochs"], report["folds"]) == ([128, 128], 40, 3)
    assert report["class_metrics"] == "malignant vs benign" and report["task"] == "benign vs malignant"
    assert list(report["arms"]) == ["dynamic", "conventional", "baseline"]

    dynamic = report["arms"]["dynamic"]
    assert dynamic["auc"]["mean"] == pytest.approx(0.8) and dynamic["auc"]["sd"] == pytest.approx(0.1)
    assert dynamic["auc"]["values"] == pytest.approx([0.8, 0.7, 0.9]) and dynamic["auc"]["n"] == 3
    assert dynamic["accuracy"]["mean"] == pytest.approx(0.7)
    assert dynamic["map_pointing_game"]["mean"] == pytest.approx(0.5)  # M(x): 0.6, 0.5, 0.4
    assert dynamic["gradcampp_pointing_game"]["mean"] == pytest.approx(0.4)
    assert dynamic["gradcampp_iou"]["mean"] == pytest.approx(0.2) and dynamic["map_iou"][
        "mean"
    ] == pytest.approx(0.4)
    # the fold with an undefined specificity is left out of the mean, not turned into NaN
    assert dynamic["specificity"] == {"mean": 0.5, "sd": 0.0, "n": 2, "values": [0.5, None, 0.5]}
    baseline = report["arms"]["baseline"]
    assert "map_pointing_game" not in baseline and baseline["auc"]["sd"] == pytest.approx(math.sqrt(0.03))

    pairs = report["paired_differences"]
    assert set(pairs) == {"dynamic_minus_conventional", "dynamic_minus_baseline"}
    versus_conventional = pairs["dynamic_minus_conventional"]["auc"]
    assert versus_conventional["values"] == pytest.approx([0.1, 0.0, 0.2])
    assert versus_conventional["mean"] == pytest.approx(0.1) and versus_conventional["sd"] == pytest.approx(
        0.1
    )
    versus_baseline = pairs["dynamic_minus_baseline"]
    assert versus_baseline["auc"]["values"] == pytest.approx([0.2, -0.2, 0.3])
    # paired: sd of the per-fold differences (deviations 0.1, -0.3, 0.2), not of the two arms' means
    assert versus_baseline["auc"]["sd"] == pytest.approx(math.sqrt(0.07))
    assert versus_baseline["gradcampp_pointing_game"]["values"] == pytest.approx([0.4, 0.3, -0.1])
    assert "map_pointing_game" not in versus_baseline  # the ResNet has no M(x)

    assert report["runtime_s"] == {
        "dynamic": {"seconds": 300.0, "per_fold": 100.0, "resumed": False},
        "conventional": {"seconds": 90.0, "per_fold": 30.0, "resumed": True},
    }


def test_learning_curves_average_the_fold_runs_named_by_the_summary(runs, tmp_path, load_script) -> None:
    from mlflow.entities import Metric
    from mlflow.tracking import MlflowClient

    store = f"sqlite:///{tmp_path / 'mlruns.db'}"
    client = MlflowClient(store)
    experiment = client.create_experiment("abn_classification")
    # dynamic: val AUC per epoch in three folds (the third stopped one epoch early), alpha in each;
    # baseline logs no alpha and no pointing game, so it has only the AUC curve.
    histories = {
        "dynamic": {
            "val_auc": [[0.5, 0.7, 0.9], [0.7, 0.7, 0.8], [0.6, 0.7]],
            "alpha": [[0.9, 0.9, 0.1]] * 3,
        },
        "baseline": {"val_auc": [[0.4, 0.6, 0.8]] * 3},
    }
    for arm, metrics in histories.items():
        per_fold = []
        for fold in range(3):
            name = f"busi_{arm}_fold{fold}"
            run_id = client.create_run(experiment, run_name=name).info.run_id
            for key, by_fold in metrics.items():
                points = [Metric(key, v, 0, epoch) for epoch, v in enumerate(by_fold[fold], start=1)]
                client.log_batch(run_id, metrics=points)
            per_fold.append({"fold": fold, "run_name": name})
        summary = {"experiment_name": "abn_classification", "per_fold": per_fold}
        (runs / arm / "crossval_summary.json").write_text(json.dumps(summary))
    (runs / "conventional" / "crossval_summary.json").write_text(
        json.dumps({"experiment_name": "abn_classification", "per_fold": []})
    )

    script = load_script("experiments/busi_results.py")
    figure = tmp_path / "curves.png"
    report = script.main(
        [*_args(runs, tmp_path / "r.json"), "--tracking_uri", store, "--figure", str(figure)]
    )
    curves = report["learning_curves"]
    assert curves["dynamic"]["val_auc"] == pytest.approx(
        [0.6, 0.7, 0.85]
    )  # epoch 3: the two folds that had it
    assert curves["dynamic"]["alpha"] == pytest.approx([0.9, 0.9, 0.1])
    assert set(curves["baseline"]) == {"val_auc"} and curves["conventional"] == {}
    assert figure.stat().st_size > 0
    without = script.main(_args(runs, tmp_path / "w.json"))
    assert without["learning_curves"] == {}


def test_three_classes_report_macro_metrics(runs, tmp_path, load_script) -> None:
    report = load_script("experiments/busi_results.py").main(_args(runs, tmp_path / "r.json", THREE_CLASS))
    assert report["task"] == "normal vs benign vs malignant"
    assert report["class_metrics"].startswith("macro") and report["split"].endswith("busi_splits_dedup.json")


def test_missing_arm_or_fold_stops_with_a_clear_message(runs, tmp_path, load_script) -> None:
    script = load_script("experiments/busi_results.py")
    (runs / "conventional" / "fold1" / "eval_test" / "metrics.json").unlink()
    out = tmp_path / "busi_binary.json"
    with pytest.raises(SystemExit, match=r"arm 'conventional': fold\(s\) \[1\] of 3 .*ARMS=conventional"):
        script.main(_args(runs, out))
    with pytest.raises(SystemExit, match=r"arm 'plain': fold\(s\) \[0, 1, 2\] of 3"):
        script.main([*_args(runs, out), "--arms", "plain"])
    assert not out.exists()


def test_optional_arm_joins_only_when_every_fold_is_there(runs, tmp_path, load_script, capsys) -> None:
    script = load_script("experiments/busi_results.py")
    _write_fold(runs, "abn_gated", 0, 0.5, 0.5)
    report = script.main(_args(runs, tmp_path / "a.json"))
    assert "abn_gated" not in report["arms"] and "left out: fold(s) [1, 2]" in capsys.readouterr().out
    _write_fold(runs, "abn_gated", 1, 0.5, 0.5)
    _write_fold(runs, "abn_gated", 2, 0.5, 0.5)
    report = script.main(_args(runs, tmp_path / "b.json"))
    assert list(report["arms"]) == ["dynamic", "conventional", "baseline", "abn_gated"]


def test_renderer_tables_come_from_the_results_file(runs, tmp_path, load_script) -> None:
    report = load_script("experiments/busi_results.py").main(_args(runs, tmp_path / "r.json"))
    render = load_script("render_results.py")
    table = render.busi_crossval(report)
    dynamic_row = next(line for line in table.splitlines() if "(`dynamic`)" in line)
    assert "| 0.800 ± 0.100 | 0.700 ± 0.100 |" in dynamic_row and dynamic_row.endswith("| 300 s |")
    baseline_row = next(line for line in table.splitlines() if "(`baseline`)" in line)
    assert "| - | - | - |" in baseline_row and baseline_row.endswith("| - |")  # no M(x), no runtime
    auc_row = next(line for line in table.splitlines() if line.startswith("| AUC |"))
    assert (
        auc_row
        == "| AUC | +0.100 ± 0.100 | +0.100, +0.000, +0.200 | +0.100 ± 0.265 | +0.200, -0.200, +0.300 |"
    )
    assert "`configs/datasets/busi_splits_dedup.json`" in table and "`layer3`" in table
    readme = REPO / "bundles" / "abn_classification" / "docs" / "README.md"
    for name in ("busi_binary", "busi_3class"):
        assert render.RENDERERS[name][1](readme) == readme.parent / "results" / f"{name}.json"
