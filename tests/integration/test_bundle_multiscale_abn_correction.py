"""The multi-scale correction bundle on BUSI (train, collect, sweep: fine-tune and evaluate, infer), under
torchrun on CPU, and one step each of training, fine-tuning and inference on tiny demo data from a copy of
its folder alone, outside the repository."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from bundle_support import copy_bundle

NAME = "multiscale_abn_correction"
REPO = Path(__file__).resolve().parents[2]
MS = REPO / "bundles" / NAME / "configs"
BUSI = str(REPO / "configs" / "datasets" / "busi_binary.json")
SMOKE = {"max_epochs": 1, "batch_size": 4, "val_batch_size": 8, "num_workers": 0, "spatial_size": [64, 64]}


@pytest.mark.integration
@pytest.mark.slow
def test_train_collect_sweep_infer_on_busi(shared_data, tmp_path):
    from monai.bundle import run

    from monai_xai.active_learning.sweep import run_sweep
    from monai_xai.tracking import find_run

    train = [str(MS / "train.json"), BUSI]
    common = {**SMOKE, "dataset_dir": str(shared_data / "busi_256"), "output_dir": str(tmp_path), "limit": 12}
    run(config_file=train, logging_file=str(MS / "logging.conf"), **common)
    assert (tmp_path / "checkpoints" / "best.pt").is_file()

    run(config_file=[*train, str(MS / "collect.json")], **common)
    records = list(csv.DictReader(open(tmp_path / "correction" / "records.csv")))
    assert len(records) == 12 and all(r["map_mse"] for r in records)  # every BUSI lesion image has a mask
    candidates = list(csv.DictReader(open(tmp_path / "correction" / "candidates.csv")))
    assert all(
        r["reason"] in ("misclassified", "map_misses_lesion") and Path(r["map"]).is_file() for r in candidates
    )

    results = run_sweep(
        train,
        str(MS / "finetune.json"),
        [str(MS / "evaluate.json")],
        tmp_path,
        strategies=["largest_map_error"],
        fractions=[0.5],
        overrides={k: v for k, v in common.items() if k != "output_dir"} | {"faithfulness_steps": 4},
    )
    assert [(r["strategy"], r["fraction"]) for r in results] == [("largest_map_error", 0.5)]
    assert {"accuracy", "kappa", "map_mse", "map_pointing_game"} <= set(results[0])
    finetune_dir = tmp_path / "finetune" / "mask_largest_map_error_0.5"
    scores = json.loads((finetune_dir / "eval_test" / "faithfulness.json").read_text())
    assert {"deletion_auc", "insertion_auc"} <= set(scores["attention"])
    assert (tmp_path / "sweep" / "sweep_curves.png").is_file()
    store = f"sqlite:///{tmp_path.resolve() / 'mlruns.db'}"
    finetuned = find_run(
        store,
        NAME,
        "busi2_multiscale_finetune_mask_largest_map_error_0.5_resnet18_fold0",
    )
    assert {"train_loss_map", "val_accuracy", "test_image_accuracy", "test_attention_deletion_auc"} <= set(
        finetuned.data.metrics
    )

    images = sorted((shared_data / "busi_256" / "benign").glob("benign_00[12].png"))
    run(
        config_file=[str(MS / "inference.json"), BUSI],
        input_files=[str(p) for p in images],
        ckpt_path=str(finetune_dir / "checkpoints" / "best.pt"),
        **{**common, "output_dir": str(finetune_dir / "inference")},
    )
    predictions = json.loads((finetune_dir / "inference" / "predictions.json").read_text())
    assert [Path(p["source"]).name for p in predictions] == [p.name for p in images]


@pytest.mark.slow
def test_multi_gpu_train_and_finetune_two_processes_on_cpu(tmp_path):
    """The bundle's ``configs/multi_gpu_train.json`` under torchrun with 2 processes (gloo on CPU): training,
    then fine-tuning with the feature extractor frozen inside DistributedDataParallel; the fine-tuning
    summary is printed once."""
    from monai_xai.data import write_demo_dataset
    from monai_xai.tracking import find_run

    data = write_demo_dataset(tmp_path / "demo", n_train=8, n_val=4, n_test=4, size=32).parent
    out = tmp_path / "out"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    overrides = [
        "--dataset_dir", str(data), "--output_dir", str(out), "--limit", "4", "--spatial_size", "[32, 32]",
        "--max_epochs", "1", "--batch_size", "2", "--val_batch_size", "4", "--num_workers", "0",
    ]  # fmt: skip
    train = [MS / "train.json"]
    ddp = [MS / "multi_gpu_train.json"]
    for configs in ([*train, *ddp], [*train, MS / "finetune.json", *ddp]):
        config_list = str([str(c) for c in configs])
        cmd = [
            sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
            "--standalone", "-m", "monai.bundle", "run", "--config_file", config_list, *overrides,
        ]  # fmt: skip
        result = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert result.stdout.count("fine-tuning on 4 of 4 training samples with a mask map") == 1
    store = f"sqlite:///{out.resolve() / 'mlruns.db'}"
    finetuned = out / "finetune" / "mask_all_1.0"
    for run_name, run_dir in (
        ("demo_multiscale_resnet18_fold0", out),
        ("demo_multiscale_finetune_mask_all_1.0_resnet18_fold0", finetuned),
    ):
        assert all((run_dir / "checkpoints" / name).is_file() for name in ("latest.pt", "best.pt"))
        run = find_run(store, NAME, run_name)
        assert run.info.status == "FINISHED"
        assert {"val_auc", "train_loss_fuse"} <= set(run.data.metrics)


@pytest.mark.slow
def test_train_finetune_infer_from_copies(outside):
    from monai.bundle import run

    from monai_xai.data import write_demo_dataset

    bundle = copy_bundle(NAME, outside / "elsewhere")
    configs, data = bundle / "configs", outside / "demo"
    write_demo_dataset(data, n_train=4, n_val=2, n_test=2, size=64)
    train = [str(configs / "train.json")]
    common = {"bundle_root": str(bundle), "dataset_dir": str(data), "max_epochs": 1, "batch_size": 4}
    common |= {"val_batch_size": 4, "num_workers": 0}
    run(config_file=train, **common)
    out = bundle / "runs" / NAME / "demo_multiscale_resnet18_fold0"
    assert (out / "checkpoints" / "best.pt").is_file()
    run(config_file=[*train, str(configs / "finetune.json")], **common)
    finetuned = out / "finetune" / "mask_all_1.0" / "checkpoints" / "best.pt"

    model = bundle / "models" / "model.pt"  # where inference.json looks for it
    model.parent.mkdir()
    shutil.copy(finetuned, model)
    images = sorted((data / "images").glob("test_*.png"))
    inference = {"bundle_root": str(bundle), "input_files": [str(p) for p in images], "num_workers": 0}
    run(config_file=str(configs / "inference.json"), **inference)
    predictions = json.loads((bundle / "eval" / "predictions.json").read_text())
    assert [Path(p["source"]).name for p in predictions] == [p.name for p in images]
    assert all(abs(sum(p["probabilities"].values()) - 1) < 1e-3 for p in predictions)
    assert all(Path(p["overlay"]).is_file() for p in predictions)
