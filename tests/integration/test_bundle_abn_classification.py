"""The ABN bundle as a model-zoo bundle, from a copy of its folder outside the repository: MONAI's
``verify_net_in_out``, the specification's metadata keys, and train, export and inference on tiny demo
data."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from bundle_support import copy_bundle

NAME = "abn_classification"


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
