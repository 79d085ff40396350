"""The inference path on real BUSI ultrasound images (../shared/data/busi_256): the default ABN's copy keeps
class probabilities within 0.01 and its attention maps correlated >= 0.99 with float32's, per image, on
images it was not calibrated on, with reduced precision forced on as well as at this host's own setting."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch
from monai.data import MetaTensor
from PIL import Image

from monai_xai.losses import get_classifier_loss
from monai_xai.networks import InferenceTolerance, get_classifier, optimise_for_inference
from monai_xai.networks import inference as inference_module
from monai_xai.transforms.presets import ultrasound_preset

pytestmark = pytest.mark.integration

SIZE = 128
PER_CLASS = 4


def _png(path: Path) -> MetaTensor:
    with Image.open(path) as img:
        arr = np.asarray(img.convert("L"), dtype=np.float32)
    return MetaTensor(torch.from_numpy(arr)[None], affine=torch.eye(4), meta={"filename_or_obj": str(path)})


@pytest.fixture(scope="module")
def busi(shared_data) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``PER_CLASS`` benign and malignant images at 128 px (the ultrasound preset, no augmentation), their
    labels and lesion masks, alternating classes."""
    root = shared_data / "busi_256"
    if not (root / "labels.csv").is_file():
        pytest.skip(f"BUSI not found at {root} (expected ../shared/data/busi_256 beside the checkout)")
    with open(root / "labels.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    picked = [[r for r in rows if r["label"] == label][:PER_CLASS] for label in ("benign", "malignant")]
    preset = ultrasound_preset(mask_keys="mask", spatial_size=(SIZE, SIZE), augment=False)
    items = [
        preset({"image": _png(root / r["image"]), "mask": _png(root / r["mask"])})
        for pair in zip(*picked, strict=True)
        for r in pair
    ]
    images = torch.stack([torch.as_tensor(i["image"]) for i in items])
    masks = torch.stack([(torch.as_tensor(i["mask"]) > 0).float() for i in items])
    labels = torch.tensor([0, 1] * PER_CLASS)
    return images, labels, masks


@pytest.fixture(scope="module")
def abn(busi) -> torch.nn.Module:
    """The default ABN trained from scratch for a few steps: batch-norm statistics and weights moved off
    their initial values by real images, as after the start of training."""
    images, labels, masks = busi
    torch.manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    network = get_classifier("dynamic")
    loss_function = get_classifier_loss("dynamic")
    optimizer = torch.optim.AdamW(network.parameters(), lr=1e-3)
    for _ in range(3):
        optimizer.zero_grad()
        loss, _ = loss_function(network(images), labels, masks)
        loss.backward()
        optimizer.step()
    torch.set_num_threads(threads)
    return network.eval()


@pytest.mark.parametrize("reduced_precision", [False, True], ids=["host_setting", "reduced_precision_forced"])
def test_the_inference_path_keeps_the_tolerance_on_real_images(
    busi, abn, reduced_precision, monkeypatch, one_thread
):
    if reduced_precision:  # bfloat16 autocast on any CPU: emulated where not native, the same numbers
        monkeypatch.setattr(inference_module, "reduced_precision", lambda device_type: torch.bfloat16)
    images = busi[0]
    calibration, held_out = images[:4], images[4:]
    optimised = optimise_for_inference(abn, calibration)
    setting = optimised.setting
    if reduced_precision:
        assert setting.dtype == torch.bfloat16, setting.rejected  # the tolerance holds at bfloat16 here
    with torch.no_grad():
        expected, got = abn(held_out), optimised(held_out)
    probability, correlation, within = InferenceTolerance().check(expected, got)
    assert within, (setting.describe(), probability, correlation)
    assert probability <= 0.01 and correlation >= 0.99
