"""The ABN bundle as a model-zoo bundle, from a copy of its folder outside the repository: MONAI's
``verify_net_in_out``, the specification's metadata keys, and train, export and inference on tiny demo
data."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from bundle_support import config_problems, copy_bundle, metadata_problems

NAME = "abn_classification"
SMOKE = {"max_epochs": 1, "batch_size": 4, "val_batch_size": 4, "num_workers": 0, "spatial_size": [64, 64]}


@pytest.fixture
def bundle(tmp_path, monkeypatch) -> Path:
    """A copy of the bundle, run from a folder of its own so that nothing can lean on the repository."""
    monkeypatch.chdir(tmp_path)
    return copy_bundle(NAME, tmp_path / "elsewhere")


def test_metadata_licence_and_paths(bundle):
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

    configs = bundle / "configs"
    meta, inference = str(configs / "metadata.json"), str(configs / "inference.json")
    verify_net_in_out("network_def", meta_file=meta, config_file=inference, device="cpu", n=4)
    # verify_net_in_out checks the prediction; the map's shape expression is checked here the same way
    parser = ConfigParser()
    parser.read_config(inference)
    parser.read_meta(meta)
    outputs = parser.get("_meta_#network_data_format#outputs")
    side = eval(parser.get("_meta_#network_data_format#inputs#image#spatial_shape")[0], {"n": 4})
    with torch.no_grad():
        out = parser.get_parsed_content("network_def").eval()(torch.rand(1, 1, side, side))
    map_side = eval(outputs["attention_map"]["spatial_shape"][0], {"n": 4})
    assert out.attention_map.shape == (1, outputs["attention_map"]["num_channels"], map_side, map_side)


@pytest.mark.slow
def test_train_export_infer_from_a_copy(bundle, tmp_path):
    from monai.bundle import ckpt_export, run

    from monai_xai.data import write_demo_dataset

    data = tmp_path / "demo"
    write_demo_dataset(data, n_train=4, n_val=2, n_test=2, size=64)  # one training step of batch 4
    configs = bundle / "configs"
    run(config_file=str(configs / "train.json"), bundle_root=str(bundle), dataset_dir=str(data), **SMOKE)
    checkpoints = bundle / "runs" / NAME / "demo" / "checkpoints"
    assert (checkpoints / "best.pt").is_file()

    (bundle / "models").mkdir()
    shutil.copy(checkpoints / "best.pt", bundle / "models" / "model.pt")  # where inference.json loads it
    exported = bundle / "models" / "model.ts"
    ckpt_export(
        net_id="network_export",
        filepath=str(exported),
        ckpt_file=str(bundle / "models" / "model.pt"),
        meta_file=str(configs / "metadata.json"),
        config_file=[str(configs / "inference.json"), str(configs / "export.json")],
        bundle_root=str(bundle),
        use_trace=True,
    )
    assert exported.is_file()

    inference = str(configs / "inference.json")
    run(config_file=inference, bundle_root=str(bundle), dataset_dir=str(data / "images"))
    predictions = json.loads((bundle / "eval" / "predictions.json").read_text())
    images = sorted(p.name for p in (data / "images").iterdir())
    assert [Path(p["source"]).name for p in predictions] == images
    assert all(abs(sum(p["probabilities"].values()) - 1) < 1e-3 for p in predictions)
    assert all(Path(p["overlay"]).is_file() for p in predictions)
