"""compare_runs.py: arms from MLflow params, mean ± sd over their finished runs, table and chart."""

from __future__ import annotations

import pytest

# (run name, mode, status, test_image_accuracy, test_image_auc or None)
RUNS = [
    ("demo_dynamic_resnet18_fold0", "dynamic", "FINISHED", 0.8, 0.90),
    ("demo_dynamic_resnet18_fold1", "dynamic", "FINISHED", 0.9, 0.80),
    ("demo_dynamic_resnet18_fold2", "dynamic", "FINISHED", 0.7, None),
    ("demo_baseline_resnet18_fold0", "baseline", "FINISHED", 0.6, 0.70),
    ("demo_baseline_resnet18_fold1", "baseline", "FINISHED", 0.7, 0.75),
    ("demo_baseline_resnet18_fold2", "baseline", "RUNNING", 0.2, 0.20),
    ("demo_dynamic_resnet18_crossval", "dynamic", "FINISHED", 0.8, 0.85),
]


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> str:
    from mlflow import MlflowClient

    uri = f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlruns.db'}"
    client = MlflowClient(uri)
    experiment = client.create_experiment("abn_classification")
    for name, mode, status, accuracy, auc in RUNS:
        run_id = client.create_run(experiment, run_name=name).info.run_id
        for key, value in {"mode": mode, "network": "resnet18", "dataset": "demo"}.items():
            client.log_param(run_id, key, value)
        client.log_metric(run_id, "test_image_accuracy", accuracy)
        if auc is not None:
            client.log_metric(run_id, "test_image_auc", auc)
        if status != "RUNNING":
            client.set_terminated(run_id, status)
    return uri


def _rows(table: str) -> dict[str, list[str]]:
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in table.splitlines()[2:]]
    return {row[0]: row for row in rows}


def test_finished_runs_per_arm(store, tmp_path, capsys, load_script):
    out = tmp_path / "cmp" / "compare.md"
    args = ["--tracking_uri", store, "--out", str(out), "--metrics", "test_image_accuracy", "test_image_auc"]
    table = load_script("compare_runs.py").main(args)
    assert table.splitlines()[0] == "| mode | network | dataset | test_image_accuracy | test_image_auc |"
    rows = _rows(table)
    assert sorted(rows) == ["baseline", "dynamic"]  # the unfinished and the _crossval run are left out
    # dynamic: accuracy 0.8, 0.9, 0.7 -> mean 0.8, sd 0.1; auc 0.9, 0.8 -> 0.85, sqrt(0.005) = 0.0707
    assert rows["dynamic"][1:] == ["resnet18", "demo", "0.800 ± 0.100 (3)", "0.850 ± 0.071 (2)"]
    # baseline: accuracy 0.6, 0.7 -> 0.65, 0.0707; auc 0.70, 0.75 -> 0.725, 0.0354
    assert rows["baseline"][3:] == ["0.650 ± 0.071 (2)", "0.725 ± 0.035 (2)"]
    assert out.read_text() == table and table in capsys.readouterr().out
    png = out.with_suffix(".png")
    assert png.is_file() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_unfinished_runs_and_coarser_arms(store, tmp_path, load_script):
    module = load_script("compare_runs.py")
    runs = module.load_runs(store, "abn_classification", include_unfinished=True)
    assert len(runs) == 6
    summary = module.summarize(runs, ["network"], ["test_image_accuracy", "test_gradcampp_pointing_game"])
    (mean, sd, n), missing = summary[("resnet18",)].values()
    # all six: 0.8, 0.9, 0.7, 0.6, 0.7, 0.2 -> mean 0.65, squared deviations sum to 0.295, sd sqrt(0.295 / 5)
    assert (mean, sd, n) == (pytest.approx(0.65), pytest.approx((0.295 / 5) ** 0.5), 6)
    assert missing[2] == 0
    table = module.markdown_table(summary, ["network"])
    assert table.splitlines()[2] == "| resnet18 | 0.650 ± 0.243 (6) | - |"
    with pytest.raises(SystemExit, match="no experiment 'other'"):
        module.main(["--tracking_uri", store, "--experiment", "other", "--out", str(tmp_path / "x.md")])
