"""The quickstart driver end to end on a few phantoms: every arm trains, is evaluated and explained."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_quickstart_writes_summary_and_figure(tmp_path: Path) -> None:
    from monai_xai.data import write_demo_dataset

    data, out = tmp_path / "phantoms", tmp_path / "quickstart"
    write_demo_dataset(data, n_train=16, n_val=8, n_test=8, size=64)
    command = [sys.executable, "scripts/quickstart.py", "--data", str(data), "--out", str(out)]
    done = subprocess.run(
        [*command, "--epochs", "1", "--batch-size", "8"], cwd=REPO, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "\r" not in done.stderr  # stderr is a pipe here, not a terminal: no progress bars
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["arms"]) == {"baseline", "rrr", "abn"}
    assert summary["elapsed_s"] > 0
    for arm in summary["arms"].values():
        for key in ("test_accuracy", "test_auc", "map_pointing_game", "marker_energy"):
            assert 0.0 <= arm[key] <= 1.0, (key, arm)
    assert summary["arms"]["baseline"]["explanation"] == "gradcampp at network.layer2"
    for name, arm in summary["arms"].items():  # the per-image scores demo_shortcut takes its intervals from
        with (out / name / "map_scores.csv").open() as f:
            rows = list(csv.DictReader(f))
        methods = {arm["explanation"], *arm.get("other_maps", {})}
        assert {row["method"] for row in rows} == methods and len(rows) == 8 * len(methods)
    assert (out / "explanations.png").stat().st_size > 0
    assert "| abn |" in done.stdout and "Shortcut-free test set" in done.stdout
    _all_arms_in_one_mlflow_experiment(out, done.stdout)


def _all_arms_in_one_mlflow_experiment(out: Path, stdout: str) -> None:
    """`mlflow ui` can compare the arms only when their runs share one store and experiment."""
    import mlflow

    uri = f"sqlite:///{out.resolve() / 'mlruns.db'}"
    assert f"mlflow ui --backend-store-uri {uri}" in stdout
    assert not any((out / arm / "mlruns.db").exists() for arm in ("baseline", "rrr", "abn"))
    client = mlflow.MlflowClient(tracking_uri=uri)
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert len({r.info.experiment_id for r in runs}) == 1
    names = {r.info.run_name.rsplit("-", 1)[0] for r in runs}
    assert names == {
        "demo_baseline_resnet18_fold0",
        "demo_rrr_resnet18_fold0",
        "demo_dynamic_abn_gated_resnet18_fold0",
    }


def test_quickstart_refuses_unknown_arm(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "scripts/quickstart.py", "--arms", "baseline,gradcam_only", "--out", str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert done.returncode != 0 and "unknown arm(s) ['gradcam_only']" in done.stderr
