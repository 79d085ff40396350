"""The multi-scale correction bundle as a model-zoo bundle, from copies outside the repository: MONAI's
``verify_net_in_out``, the specification's metadata keys, and one step each of training, fine-tuning and
inference on tiny demo data, from a copy of this bundle's folder alone."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from bundle_support import copy_bundle

NAME = "multiscale_abn_correction"


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
