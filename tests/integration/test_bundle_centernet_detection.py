"""The CenterNet bundle end to end through ``monai.bundle.run`` on a few real BUSI images, and as a model-zoo
user gets it: a copy of its folder outside the repository.

The detector returns a dict of heatmap, size and offset maps, which MONAI's ``verify_net_in_out`` (one output
tensor) cannot check; the same check (network built from the copy's ``inference.json``, fake input from the
metadata) is done here for every output.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch
from bundle_support import copy_bundle, inference_parser, tensor_shape

NAME = "centernet_detection"
REPO = Path(__file__).resolve().parents[2]
CONFIGS = REPO / "bundles" / NAME / "configs"
SMOKE = {"max_epochs": 1, "batch_size": 4, "val_batch_size": 8, "num_workers": 0, "spatial_size": [64, 64]}
SMOKE["limit"] = 8


def run_bundle(*configs: str, **overrides):
    from monai.bundle import run

    return run(
        config_file=[str(CONFIGS / f"{c}.json") for c in configs],
        meta_file=str(CONFIGS / "metadata.json"),
        logging_file=str(CONFIGS / "logging.conf"),
        **{**SMOKE, **overrides},
    )


@pytest.mark.integration
@pytest.mark.slow
def test_pretrain_train_evaluate_infer_on_busi(shared_data, tmp_path):
    from monai_xai.networks import read_score_threshold
    from monai_xai.runs import file_digest
    from monai_xai.tracking import find_run

    common = {"dataset_dir": str(shared_data / "busi_256"), "pretrain_dir": str(tmp_path / "simsiam")}
    run_bundle("pretrain_simsiam", output_dir=str(tmp_path / "simsiam"), proj_dim=64, pred_dim=16, **common)
    assert (tmp_path / "simsiam" / "encoder.pt").is_file()
    out = tmp_path / "detector"
    arm = {
        "output_dir": str(out),
        "bundle_root": str(out),
        "init": "simsiam",
        "freeze_policy": "progressive_epochs",
        "unfreeze_interval": 1,
    }
    run_bundle("train", **common, **arm)
    assert (out / "checkpoints" / "best.pt").is_file() and (
        out / "figures" / "val_detections_epoch001.png"
    ).is_file()
    run_bundle("train", "evaluate", **common, **arm)
    # the score threshold is chosen on the validation split, stored beside the checkpoint, applied on test
    chosen = read_score_threshold(out / "checkpoints" / "best.pt")
    assert chosen["split"] == "val" and chosen["n_images"] == 8 and 0.0 <= chosen["threshold"] <= 1.0
    assert chosen["checkpoint"] == file_digest(out / "checkpoints" / "best.pt")
    metrics = json.loads((out / "eval_test" / "metrics.json").read_text())
    assert metrics["threshold_split"] == "val" and metrics["f1_threshold"]["threshold"] == chosen["threshold"]
    assert "curve" not in metrics["f1_threshold"]  # nothing is searched on the test split
    assert metrics["n_images"] == 8 and {"mAP", "AP50", "AP75", "AP_small"} <= set(metrics["coco"])
    assert metrics["confusion_matrix"]["labels"] == ["benign", "malignant", "None"]
    assert sum(map(sum, metrics["confusion_matrix"]["matrix"])) >= metrics["n_lesions"]
    assert (out / "eval_test" / "overlays.png").is_file() and (
        out / "eval_test" / "confusion_matrix.png"
    ).is_file()
    images = sorted((shared_data / "busi_256" / "malignant").glob("malignant_00[12].png"))
    run_bundle(
        "inference", input_files=[str(p) for p in images], ckpt_path=str(out / "checkpoints" / "best.pt"),
        **common, **arm,
    )  # fmt: skip
    detections = json.loads((out / "inference" / "detections.json").read_text())
    assert detections["score_threshold"] == chosen["threshold"]  # the record beside --ckpt_path
    assert [Path(r["source"]).name for r in detections["images"]] == [p.name for p in images]
    assert all(Path(r["overlay"]).is_file() for r in detections["images"])
    store = f"sqlite:///{out.resolve() / 'mlruns.db'}"
    run = find_run(store, NAME, "busi_simsiam_progressive_epochs_resnet18_fold0")
    assert run.info.status == "FINISHED" and run.data.params["init"] == "simsiam"
    logged = {"train_loss", "val_mAP", "val_AP50", "frozen_stages", "test_mAP", "test_f1", "test_recall"}
    assert logged <= set(run.data.metrics)
    assert run.data.metrics["frozen_stages"] == 5  # epoch 1 of progressive unfreezing: backbone frozen
    pretrain = find_run(f"sqlite:///{(tmp_path / 'simsiam').resolve() / 'mlruns.db'}", NAME,
                        "busi_simsiam_resnet18_fold0")  # fmt: skip
    assert {"train_loss", "z_std", "z_std_ratio"} <= set(pretrain.data.metrics)


def test_simsiam_checkpoint_of_another_architecture_is_named(shared_data, tmp_path):
    from monai_xai.errors import InputError
    from monai_xai.networks import SimSiam, save_encoder

    ckpt = save_encoder(SimSiam(backbone="resnet34", proj_dim=8, pred_dim=4), tmp_path / "encoder.pt")
    assert torch.load(ckpt, weights_only=True)["backbone"] == "resnet34"
    with pytest.raises(Exception) as info:
        run_bundle(
            "train", dataset_dir=str(shared_data / "busi_256"), output_dir=str(tmp_path), init="simsiam",
            simsiam_checkpoint=str(ckpt),
        )  # fmt: skip
    chain, err = [], info.value
    while err is not None:
        chain.append(err)
        err = err.__cause__ or err.__context__
    assert any(
        isinstance(e, InputError) and "encoder.pt: checkpoint does not fit ResNetEncoder" in str(e)
        for e in chain
    )


@pytest.mark.integration
@pytest.mark.slow
def test_multi_gpu_config_two_processes_on_cpu(shared_data, tmp_path):
    """The bundle's ``configs/multi_gpu_train.json`` under torchrun with 2 processes (gloo on CPU),
    progressive unfreezing."""
    import os
    import subprocess
    import sys

    from monai_xai.tracking import find_run

    configs = f"['{CONFIGS / 'train.json'}','{CONFIGS / 'multi_gpu_train.json'}']"
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--standalone",
        "-m", "monai.bundle", "run", "--config_file", configs, "--dataset_dir", str(shared_data / "busi_256"),
        "--output_dir", str(tmp_path), "--max_epochs", "2", "--batch_size", "2", "--num_workers", "0",
        "--limit", "4", "--spatial_size", "[64, 64]", "--freeze_policy", "progressive_epochs",
        "--unfreeze_interval", "1",
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert (tmp_path / "checkpoints" / "latest.pt").is_file()
    run = find_run(f"sqlite:///{tmp_path.resolve() / 'mlruns.db'}", NAME,
                   "busi_random_progressive_epochs_resnet18_fold0")  # fmt: skip
    assert run.info.status == "FINISHED" and "val_mAP" in run.data.metrics
    assert run.data.metrics["frozen_stages"] == 4  # epoch 2: layer4 given back on both ranks


@pytest.mark.parametrize("n", [2, 3])
def test_network_def_shapes_match_the_metadata(tmp_path, n):
    parser = inference_parser(copy_bundle(NAME, tmp_path))
    formats = parser["_meta_"]["network_data_format"]
    network = parser.get_parsed_content("network_def").eval()
    with torch.no_grad():
        outputs = network(torch.rand(tensor_shape(formats["inputs"]["image"], n)))
    assert set(outputs) == set(formats["outputs"])
    for key, spec in formats["outputs"].items():
        assert outputs[key].shape == tensor_shape(spec, n) and outputs[key].dtype == torch.float32, key


def _demo_coco(root: Path) -> Path:
    """Demo phantoms with their marker masks as COCO boxes, in the layout of the BUSI folder."""
    from monai_xai.data import masks_to_coco, write_demo_dataset

    labels = write_demo_dataset(root, n_train=8, n_val=4, n_test=4, size=64)
    with open(labels, newline="") as f:
        items = [
            {**row, "class_name": ("benign", "malignant")[int(row["label"])]} for row in csv.DictReader(f)
        ]
    coco = root / "boxes_coco.json"
    coco.write_text(json.dumps(masks_to_coco(items, ["benign", "malignant"], root)))
    return coco


@pytest.mark.slow
def test_train_then_infer_from_a_copy(tmp_path, monkeypatch):
    """One training step with validation (which writes models/model.pt), then the standalone inference.json
    on a folder of images, run from the copy's folder with its default bundle_root ``.``."""
    from monai.bundle import run

    root = copy_bundle(NAME, tmp_path / "elsewhere")
    coco = _demo_coco(tmp_path / "demo")
    monkeypatch.chdir(root)
    common = {
        "dataset_dir": str(coco.parent),
        "spatial_size": [64, 64],
        "num_workers": 0,
        "val_batch_size": 4,
    }
    run(config_file="configs/train.json", max_epochs=1, batch_size=4, limit=4, **common)
    assert (root / "runs" / "busi" / "checkpoints" / "best.pt").is_file()
    assert (root / "models" / "model.pt").is_file()
    images = sorted((coco.parent / "images").glob("test_*.png"))
    run(config_file="configs/inference.json", input_files=[str(p) for p in images], **common)
    detections = json.loads((root / "runs" / "busi" / "inference" / "detections.json").read_text())
    assert detections["score_threshold"] == 0.3  # not evaluated yet: the default
    assert [Path(r["source"]).name for r in detections["images"]] == [p.name for p in images]
    assert all(
        Path(r["overlay"]).is_file() and min(r["scores"], default=1.0) >= 0.3 for r in detections["images"]
    )
    # a threshold chosen on validation for these very weights, stored beside them, is the one inference keeps
    from monai_xai.networks import score_threshold_path
    from monai_xai.runs import file_digest

    model = root / "models" / "model.pt"
    record = {"threshold": 0.05, "split": "val", "checkpoint": file_digest(model)}
    score_threshold_path(model).write_text(json.dumps({"score_threshold": record}))
    run(config_file="configs/inference.json", input_files=[str(p) for p in images], **common)
    detections = json.loads((root / "runs" / "busi" / "inference" / "detections.json").read_text())
    assert detections["score_threshold"] == 0.05
    assert all(min(r["scores"], default=1.0) >= 0.05 for r in detections["images"])
