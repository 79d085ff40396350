"""The ABN bundle end to end through ``monai.bundle.run``: a step or two on real and demo data from the
repository's configs, and train, export and inference from a copy of its folder outside the repository."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from bundle_support import copy_bundle

NAME = "abn_classification"
REPO = Path(__file__).resolve().parents[2]
CONFIGS = REPO / "bundles" / NAME / "configs"
SMOKE = {"max_epochs": 1, "batch_size": 4, "val_batch_size": 8, "num_workers": 0, "spatial_size": [64, 64]}


def run_bundle(*configs: str, **overrides):
    from monai.bundle import run

    files = [str(CONFIGS / f"{c}.json") if "/" not in c else c for c in configs]
    return run(
        config_file=files,
        meta_file=str(CONFIGS / "metadata.json"),
        logging_file=str(CONFIGS / "logging.conf"),
        **{**SMOKE, **overrides},
    )


def mlflow_run(out: Path, run_name: str):
    from monai_xai.tracking import find_run

    return find_run(f"sqlite:///{out.resolve() / 'mlruns.db'}", NAME, run_name)


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory) -> Path:
    from monai_xai.data import write_demo_dataset

    root = tmp_path_factory.mktemp("demo")
    write_demo_dataset(root, n_train=16, n_val=8, n_test=8, size=64)
    return root


@pytest.mark.integration
@pytest.mark.slow
def test_busi_train_evaluate_infer(shared_data, tmp_path):
    busi = str(REPO / "configs" / "datasets" / "busi_binary.json")
    common = {"dataset_dir": str(shared_data / "busi_256"), "output_dir": str(tmp_path), "limit": 12}
    run_bundle("train", busi, mode="dynamic", **common)
    assert (tmp_path / "checkpoints" / "best.pt").is_file() and (
        tmp_path / "checkpoints" / "latest.pt"
    ).is_file()
    assert (tmp_path / "figures" / "val_attention_epoch001.png").is_file()
    faithfulness = {"faithfulness_methods": ["attention", "gradcampp"], "faithfulness_steps": 4}
    run_bundle("train", busi, "evaluate", mode="dynamic", faithfulness_max_images=4, **faithfulness, **common)
    metrics = json.loads((tmp_path / "eval_test" / "metrics.json").read_text())
    scores = json.loads((tmp_path / "eval_test" / "faithfulness.json").read_text())
    assert scores["n_images"] == 4 and {"deletion_auc", "insertion_auc"} <= set(scores["gradcampp"])
    assert metrics["n_images"] == 12
    assert {"accuracy", "sensitivity", "specificity", "auc"} <= set(metrics["image"])
    assert set(metrics["attention_agreement"]) == {"attention", "gradcampp"}
    images = sorted((shared_data / "busi_256" / "malignant").glob("malignant_00[12].png"))
    inference = {
        "ckpt_path": str(tmp_path / "checkpoints" / "best.pt"),
        "input_files": [str(p) for p in images],
    }
    run_bundle(
        "inference",
        busi,
        mode="dynamic",
        **{**common, **inference, "output_dir": str(tmp_path / "inference")},
    )
    predictions = json.loads((tmp_path / "inference" / "predictions.json").read_text())
    assert [Path(p["source"]).name for p in predictions] == [p.name for p in images]
    assert all(abs(sum(p["probabilities"].values()) - 1) < 1e-3 for p in predictions)
    assert all(Path(p["overlay"]).is_file() for p in predictions)
    run = mlflow_run(tmp_path, "busi2_dynamic_resnet18_fold0")
    assert run.info.status == "FINISHED"
    assert {"val_auc", "val_att_pointing_game", "train_loss_map", "alpha", "test_image_auc"} <= set(
        run.data.metrics
    )
    assert {"test_attention_deletion_auc", "test_gradcampp_insertion_auc"} <= set(run.data.metrics)
    assert run.data.params["mode"] == "dynamic"


@pytest.mark.integration
@pytest.mark.slow
def test_medmnist_baseline_step(shared_data, tmp_path):
    pneumonia = str(REPO / "configs" / "datasets" / "pneumoniamnist.json")
    run_bundle(
        "train", pneumonia, mode="baseline", dataset_dir=str(shared_data / "medmnist"),
        output_dir=str(tmp_path), limit=16, spatial_size=[28, 28],
    )  # fmt: skip
    run = mlflow_run(tmp_path, "pneumoniamnist_baseline_resnet18_fold0")
    assert "val_accuracy" in run.data.metrics and "alpha" not in run.data.metrics


@pytest.mark.slow
def test_killed_run_resumes_with_its_mlflow_history(demo_dir, tmp_path):
    """SIGKILL a training process after its first epoch; the rerun continues the same MLflow run."""
    import signal
    import time

    from mlflow import MlflowClient

    cmd = [
        sys.executable, "-m", "monai.bundle", "run", "--config_file", str(CONFIGS / "train.json"),
        "--dataset_dir", str(demo_dir), "--output_dir", str(tmp_path), "--max_epochs", "3",
        "--batch_size", "4", "--num_workers", "0", "--spatial_size", "[64, 64]",
    ]  # fmt: skip
    latest = tmp_path / "checkpoints" / "latest.pt"
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while not latest.is_file() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert latest.is_file(), "the first epoch never finished"
    killed = mlflow_run(tmp_path, "demo_dynamic_resnet18_fold0")
    assert killed.info.status == "RUNNING"  # a killed process cannot close its run
    result = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    resumed = mlflow_run(tmp_path, "demo_dynamic_resnet18_fold0")
    assert resumed.info.run_id == killed.info.run_id and resumed.info.status == "FINISHED"
    client = MlflowClient(f"sqlite:///{tmp_path.resolve() / 'mlruns.db'}")
    steps = sorted({m.step for m in client.get_metric_history(resumed.info.run_id, "train_loss")})
    assert steps == [1, 2, 3]


@pytest.mark.slow
def test_resumed_run_may_extend_training(demo_dir, tmp_path):
    """A finished-then-extended run keeps its first parameters instead of crashing on them."""
    from mlflow import MlflowClient

    common = {"dataset_dir": str(demo_dir), "output_dir": str(tmp_path), "alpha_schedule": "linear"}
    run_bundle("train", **common)
    first = mlflow_run(tmp_path, "demo_dynamic_resnet18_fold0")
    client = MlflowClient(f"sqlite:///{tmp_path.resolve() / 'mlruns.db'}")
    client.set_terminated(first.info.run_id, "KILLED")
    run_bundle("train", **{**common, "max_epochs": 2})
    resumed = mlflow_run(tmp_path, "demo_dynamic_resnet18_fold0")
    assert resumed.info.run_id == first.info.run_id and resumed.data.params["max_epochs"] == "1"
    assert [m.value for m in client.get_metric_history(resumed.info.run_id, "alpha")] == pytest.approx(
        [0.9, 0.1]
    )


def test_wrong_mode_is_named(demo_dir, tmp_path):
    with pytest.raises(Exception) as info:
        run_bundle("train", dataset_dir=str(demo_dir), output_dir=str(tmp_path), mode="attention")
    chain, err = [], info.value
    while err is not None:
        chain.append(str(err))
        err = err.__cause__
    assert any(
        "unknown mode 'attention'; valid modes: baseline, rrr, plain, conventional, dynamic" in m
        for m in chain
    )


@pytest.mark.slow
def test_multi_gpu_config_two_processes_on_cpu(demo_dir, tmp_path):
    """The bundle's ``configs/multi_gpu_train.json`` under torchrun with 2 processes (gloo on CPU)."""
    configs = f"['{CONFIGS / 'train.json'}','{CONFIGS / 'multi_gpu_train.json'}']"
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--standalone",
        "-m", "monai.bundle", "run", "--config_file", configs, "--dataset_dir", str(demo_dir),
        "--output_dir", str(tmp_path), "--max_epochs", "1", "--batch_size", "4", "--num_workers", "0",
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert (tmp_path / "checkpoints" / "latest.pt").is_file()
    run = mlflow_run(tmp_path, "demo_dynamic_resnet18_fold0")
    assert run.info.status == "FINISHED" and "val_auc" in run.data.metrics


@pytest.mark.slow
def test_train_export_infer_from_a_copy(outside):
    from monai.bundle import ckpt_export, run

    from monai_xai.data import write_demo_dataset

    bundle = copy_bundle(NAME, outside / "elsewhere")
    configs, data = bundle / "configs", outside / "demo"
    write_demo_dataset(data, n_train=4, n_val=2, n_test=2, size=64)  # one training step of batch 4
    smoke = {"max_epochs": 1, "batch_size": 4, "val_batch_size": 4, "num_workers": 0}
    run(config_file=str(configs / "train.json"), bundle_root=str(bundle), dataset_dir=str(data), **smoke)
    checkpoints = bundle / "runs" / NAME / "demo_dynamic_resnet18_fold0" / "checkpoints"
    assert (checkpoints / "best.pt").is_file()

    model = bundle / "models" / "model.pt"  # where inference.json and ckpt_export look for it
    model.parent.mkdir()
    shutil.copy(checkpoints / "best.pt", model)
    ckpt_export(
        net_id="network_export",
        meta_file=str(configs / "metadata.json"),
        config_file=[str(configs / "inference.json"), str(configs / "export.json")],
        bundle_root=str(bundle),
        use_trace=True,
    )
    assert (bundle / "models" / "model.ts").is_file()

    inference = str(configs / "inference.json")
    run(config_file=inference, bundle_root=str(bundle), dataset_dir=str(data / "images"), num_workers=0)
    predictions = json.loads((bundle / "eval" / "predictions.json").read_text())
    images = sorted(p.name for p in (data / "images").iterdir())
    assert [Path(p["source"]).name for p in predictions] == images
    assert all(abs(sum(p["probabilities"].values()) - 1) < 1e-3 for p in predictions)
    assert all(Path(p["overlay"]).is_file() for p in predictions)
