"""The multi-scale correction bundle as a model-zoo bundle, from copies outside the repository: MONAI's
``verify_net_in_out``, the specification's metadata keys, and one step each of training, fine-tuning and
inference on tiny demo data. Its training configs extend the ABN bundle's, so both folders are copied."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from bundle_support import config_problems, copy_bundle, metadata_problems

NAME = "multiscale_abn_correction"
SMOKE = {"max_epochs": 1, "batch_size": 4, "val_batch_size": 4, "num_workers": 0, "spatial_size": [64, 64]}


@pytest.fixture
def bundle(tmp_path, monkeypatch) -> Path:
    """A copy of the bundle, run from a folder of its own so that nothing can lean on the repository."""
    monkeypatch.chdir(tmp_path)
    return copy_bundle(NAME, tmp_path / "elsewhere")


def test_metadata_licence_and_configs(bundle):
    assert metadata_problems(bundle) == []
    meta = json.loads((bundle / "configs" / "metadata.json").read_text())
    for name, figures in meta["eval_metrics"].items():
        assert figures["run"] and all(isinstance(v, float) for k, v in figures.items() if k != "run"), name
    assert "Apache License" in (bundle / "LICENSE").read_text()
    assert "CC BY 4.0" in (bundle / "docs" / "data_license.txt").read_text()
    assert config_problems(bundle) == []


def test_verify_net_in_out(bundle):
    from monai.bundle import verify_net_in_out
    from monai.bundle.config_parser import ConfigParser

    meta, inference = str(bundle / "configs" / "metadata.json"), str(bundle / "configs" / "inference.json")
    verify_net_in_out("network_def", meta_file=meta, config_file=inference, device="cpu", n=4)
    parser = ConfigParser()
    parser.read_config(inference)
    parser.read_meta(meta)
    attention = parser.get("_meta_#network_data_format#outputs#attention_map")
    side = 16 * 4  # the input's "16*n" at n=4
    with torch.no_grad():
        out = parser.get_parsed_content("network_def").eval()(torch.rand(1, 1, side, side))
    map_side = eval(attention["spatial_shape"][0], {"n": 4})
    assert out.attention_map.shape == (1, attention["num_channels"], map_side, map_side)


@pytest.mark.slow
def test_train_finetune_infer_from_copies(bundle, tmp_path):
    from monai.bundle import run

    from monai_xai.data import write_demo_dataset

    data = tmp_path / "demo"
    write_demo_dataset(data, n_train=4, n_val=2, n_test=2, size=64)  # one training step of batch 4
    abn = copy_bundle("abn_classification", tmp_path / "elsewhere") / "configs"
    configs = bundle / "configs"
    train = [str(abn / "train.json"), str(configs / "train.json")]
    common = {**SMOKE, "bundle_root": str(bundle), "dataset_dir": str(data)}
    run(config_file=train, **common)
    out = bundle / "runs" / NAME / "demo"
    assert (out / "checkpoints" / "best.pt").is_file()
    run(config_file=[*train, str(configs / "finetune.json")], **common)
    finetuned = out / "finetune" / "mask_all_1.0" / "checkpoints" / "best.pt"
    assert finetuned.is_file()

    (bundle / "models").mkdir()
    shutil.copy(finetuned, bundle / "models" / "model.pt")  # where inference.json loads it
    images = sorted((data / "images").glob("test_*.png"))
    run(
        config_file=str(configs / "inference.json"),
        bundle_root=str(bundle),
        input_files=[str(p) for p in images],
        num_workers=0,
    )
    predictions = json.loads((bundle / "eval" / "predictions.json").read_text())
    assert [Path(p["source"]).name for p in predictions] == [p.name for p in images]
    assert all(abs(sum(p["probabilities"].values()) - 1) < 1e-3 for p in predictions)
    assert all(Path(p["overlay"]).is_file() for p in predictions)
