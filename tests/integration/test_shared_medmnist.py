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
