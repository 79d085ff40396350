"""Every MedMNIST file in ../shared/data/medmnist through the in-memory datalist."""

from __future__ import annotations

import numpy as np
import pytest

from monai_xai.data import medmnist_datalist

# split sizes and classes as published with the files (../shared/data/README.md)
EXPECTED = {
    "breastmnist.npz": ((546, 78, 156), (1, 28, 28), 2),
    "retinamnist.npz": ((1080, 120, 400), (3, 28, 28), 5),
    "pneumoniamnist.npz": ((4708, 524, 624), (1, 28, 28), 2),
    "adrenalmnist3d.npz": ((1188, 98, 298), (1, 28, 28, 28), 2),
}


@pytest.mark.integration
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_medmnist_file(shared_data, name):
    sizes, shape, n_classes = EXPECTED[name]
    for split, size in zip(("train", "val", "test"), sizes):
        items = medmnist_datalist(shared_data / "medmnist" / name, split)
        assert len(items) == size
        assert items[0]["image"].shape == shape and items[0]["image"].dtype == np.uint8
        labels = {item["label"] for item in items}
        assert labels <= set(range(n_classes)) and len(labels) == n_classes
        assert items[-1]["source"] == f"{name}:{split}[{size - 1}]"


@pytest.mark.integration
@pytest.mark.parametrize("fragment", ["pneumoniamnist", "retinamnist", "adrenalmnist3d"])
def test_dataset_fragment_feeds_the_abn_bundle(shared_data, fragment, tmp_path):
    """The fragment's channels, classes and preset fit its file: preprocessed items are ready to train on,
    and the bundle's inference preprocessing gives the validation pipeline's image (2D preset or 3D
    ``intensity_transforms``)."""
    from pathlib import Path

    import torch
    from monai.bundle import ConfigParser

    repo = Path(__file__).resolve().parents[2]
    configs = repo / "bundles" / "abn_classification" / "configs"
    fragment_file = str(repo / "configs" / "datasets" / f"{fragment}.json")
    parser = ConfigParser()
    parser.read_config([str(configs / "train.json"), fragment_file])
    overrides = {"dataset_dir": str(shared_data / "medmnist"), "limit": 4, "output_dir": str(tmp_path)}
    parser.update(overrides)
    splits = parser.get_parsed_content("splits")
    n_classes, channels = parser.get_parsed_content("num_classes"), parser.get_parsed_content("in_channels")
    assert [len(splits[s]) for s in ("train", "val", "test")] == [4, 4, 4]
    expected_classes, expected_shape = EXPECTED[f"{fragment}.npz"][2], EXPECTED[f"{fragment}.npz"][1]
    assert n_classes == expected_classes and channels == expected_shape[0]
    item = parser.get_parsed_content("validate#preprocessing")(splits["test"][0])
    assert tuple(item["image"].shape) == expected_shape
    assert 0.0 <= float(item["image"].min()) < float(item["image"].max()) <= 1.0
    inference = ConfigParser()
    inference.read_config([str(configs / "inference.json"), fragment_file])
    unlabelled = {k: splits["test"][0][k] for k in ("image", "source")}
    image = inference.get_parsed_content("preprocessing")(unlabelled)["image"]
    assert torch.equal(torch.as_tensor(image), torch.as_tensor(item["image"]))
