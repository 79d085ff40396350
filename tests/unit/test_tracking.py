"""monai_xai.tracking: runs created outside MONAI's handler keep their artifacts beside the sqlite store."""

from __future__ import annotations

from pathlib import Path

import pytest


def test_log_to_run_stores_artifacts_beside_the_database_not_in_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlflow.tracking import MlflowClient

    from monai_xai.tracking import artifact_location, find_run, log_to_run

    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    store = f"sqlite:///{tmp_path / 'out' / 'mlruns.db'}"
    (tmp_path / "out").mkdir()
    figure = tmp_path / "figure.png"
    figure.write_bytes(b"png")
    log_to_run(
        store, "explainer", "run0", metrics={"flip_rate": 0.5}, artifacts=[figure], artifact_path="figs"
    )

    run = find_run(store, "explainer", "run0")
    assert run.data.metrics == {"flip_rate": 0.5}
    assert (tmp_path / "out" / "mlruns").is_dir() and not (elsewhere / "mlruns").exists()
    listed = MlflowClient(store).list_artifacts(run.info.run_id, "figs")
    assert [a.path for a in listed] == ["figs/figure.png"]
    assert artifact_location(store) == (tmp_path / "out" / "mlruns").as_uri()
    assert artifact_location("http://tracking.example:5000") is None


def test_find_run_with_metric_skips_a_newer_run_of_the_same_name_without_it(tmp_path: Path) -> None:
    import mlflow

    from monai_xai.tracking import find_run, log_to_run

    store = f"sqlite:///{tmp_path / 'mlruns.db'}"
    trained = log_to_run(store, "abn", "fold0", metrics={"val_auc": 0.8}, finish=True)
    client = mlflow.MlflowClient(store)
    experiment_id = client.get_experiment_by_name("abn").experiment_id
    reevaluated = client.create_run(experiment_id, run_name="fold0").info.run_id
    client.log_metric(reevaluated, "test_auc", 0.81)

    assert find_run(store, "abn", "fold0").info.run_id == reevaluated
    assert find_run(store, "abn", "fold0", with_metric="val_auc").info.run_id == trained
    assert find_run(store, "abn", "fold0", with_metric="loss") is None


def test_config_params_are_the_literal_settings_of_the_config_being_parsed() -> None:
    from monai.bundle import ConfigParser

    config = {
        "imports": ["$import os"],
        "mode": "dynamic",
        "max_epochs": 10,
        "spatial_size": [64, 64],
        "datalist_args": {"label_col": "label"},
        "limit": None,
        "num_classes": "$len(@class_names)",
        "class_names": ["a", "b"],
        "model": "@network",
        "network": {"_target_": "torch.nn.Identity"},
        "params": {
            "_target_": "monai_xai.tracking.config_params",
            "skipped_items": "$1 + 1",
            "mode": "plain",
        },
    }
    parser = ConfigParser(config)
    parser.update({"max_epochs": 2})  # a command-line override is logged as given
    params = parser.get_parsed_content("params")
    assert params == {
        "mode": "plain",  # a fact wins over the setting of the same name
        "max_epochs": 2,
        "spatial_size": [64, 64],
        "datalist_args": {"label_col": "label"},
        "limit": None,
        "class_names": ["a", "b"],
        "skipped_items": 2,
    }


def test_config_params_need_a_config_being_parsed() -> None:
    from monai_xai.tracking import config_params

    with pytest.raises(RuntimeError, match="bundle config"):
        config_params(skipped_items=0)


def test_finish_run_releases_the_run_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from monai_xai.runs import RunFolder
    from monai_xai.tracking import find_run, finish_run

    released = []
    monkeypatch.setattr(RunFolder, "release", lambda self: released.append(self))
    store = f"sqlite:///{tmp_path / 'mlruns.db'}"
    folder = RunFolder(tmp_path / "run", identity={"seed": 0}).claim()
    finish_run(store, "exp", "run0", tmp_path / "run", tmp_path / "run" / "figures", run_folder=folder)
    assert find_run(store, "exp", "run0").info.status == "FINISHED" and released == [folder]
