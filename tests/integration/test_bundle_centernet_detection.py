"""The CenterNet bundle as a model-zoo user gets it: a copy of its folder outside the repository.

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
