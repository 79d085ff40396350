"""The AG-CycleGAN bundle as a model-zoo user gets it: a copy of its folder outside the repository.

MONAI's ``verify_net_in_out`` calls ``network(x)``; the GAN translates with ``translate(x, source)``, so the
same check (network built from the copy's ``inference.json``, fake input from the metadata) is done here.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from bundle_support import copy_bundle, inference_parser, tensor_shape

NAME = "agcyclegan_explainer"
TINY = {"decoder_widths": [4, 4, 8, 8, 8], "num_workers": 0}


@pytest.mark.parametrize("n", [28, 32])
def test_network_def_shapes_match_the_metadata(tmp_path, n):
    parser = inference_parser(copy_bundle(NAME, tmp_path), device_name="cpu", **TINY)
    formats = parser["_meta_"]["network_data_format"]
    network = parser.get_parsed_content("network_def").eval()
    classifier = parser.get_parsed_content("classifier_def").eval()
    x = torch.rand(tensor_shape(formats["inputs"]["image"], n)) * 2 - 1  # the GAN's [-1, 1]
    with torch.no_grad():
        translation = network.translate(x, source=0)
        logits = classifier((x + 1) / 2)
    assert logits.shape == (1, parser["num_classes"])
    for key, spec in formats["outputs"].items():
        out = getattr(translation, key)
        assert out.shape == tensor_shape(spec, n) and out.dtype == torch.float32, key


@pytest.mark.slow
def test_train_then_infer_from_a_copy(tmp_path, monkeypatch):
    """The classifier's learning-rate range test (``--run_id lr_find``), classifier and GAN one step each
    (each validated, with early stopping on), then the standalone inference.json on a folder of images, all
    run from the copy's folder with its default bundle_root ``.``."""
    from monai.bundle import run

    from monai_xai.data import write_demo_dataset

    root = copy_bundle(NAME, tmp_path / "elsewhere")
    csv = write_demo_dataset(tmp_path / "demo", n_train=8, n_val=4, n_test=4, size=28)
    monkeypatch.chdir(root)
    data = {
        "dataset": "demo", "dataset_source": "csv", "dataset_dir": str(csv.parent), "dataset_path": str(csv),
        "class_names": ["class0", "class1"], "limit": 4, "batch_size": 4, "gan_batch_size": 2,
        "val_batch_size": 4, "max_epochs": 1, "gan_epochs": 1,
        "early_stop_patience": 1, "gan_early_stop_patience": 1,
    }  # fmt: skip
    classifier = ["configs/train.json", "configs/train_classifier.json"]
    run(run_id="lr_find", config_file=classifier, lr_test_iters=2, lr_test_momenta=[0.9], **data, **TINY)
    assert (root / "runs" / "demo" / "classifier" / "lr_range_test" / "lr_range_test.json").is_file()
    run(config_file=classifier, **data, **TINY)
    assert (root / "runs" / "demo" / "classifier" / "checkpoints" / "best.pt").is_file()
    run(config_file="configs/train.json", **data, **TINY)
    assert (root / "runs" / "demo" / "gan" / "checkpoints" / "best.pt").is_file()
    model = torch.load(root / "models" / "model.pt", map_location="cpu", weights_only=True)
    assert set(model) == {"classifier", "gan"}
    run(config_file="configs/inference.json", dataset="demo", dataset_dir=str(csv.parent / "images"),
        class_names=["class0", "class1"], **TINY)  # fmt: skip
    predictions = json.loads((root / "runs" / "demo" / "inference" / "predictions.json").read_text())
    assert len(predictions) == 16 and all(Path(p["panel"]).is_file() for p in predictions)
