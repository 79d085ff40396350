"""Presets and near-duplicate search on the real images in ../shared/data (BUSI ultrasound, IXI T1 MRI)."""

from __future__ import annotations

import csv
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from monai.data import MetaTensor
from PIL import Image

from monai_xai.data.dedup import drop_near_duplicates, find_near_duplicates
from monai_xai.transforms.presets import mri_preset, ultrasound_preset

pytestmark = pytest.mark.integration


def _busi_rows(shared_data: Path) -> list[dict[str, str]]:
    with open(shared_data / "busi_256" / "labels.csv", newline="") as f:
        return list(csv.DictReader(f))


def _png(path: Path) -> MetaTensor:
    """A PNG as a (1, H, W) MetaTensor, the layout the preset receives after loading."""
    with Image.open(path) as img:
        arr = np.asarray(img.convert("L"), dtype=np.float32)
    return MetaTensor(torch.from_numpy(arr)[None], affine=torch.eye(4), meta={"filename_or_obj": str(path)})


@pytest.mark.parametrize("augment", [False, True])
def test_ultrasound_preset_on_busi_keeps_lesion_mask_aligned(shared_data, augment):
    root = shared_data / "busi_256"
    row = next(
        r for r in _busi_rows(shared_data) if r["label"] == "malignant" and float(r["mask_fraction"]) > 0.05
    )
    image, mask = _png(root / row["image"]), _png(root / row["mask"])
    preset = ultrasound_preset(mask_keys="mask", spatial_size=(128, 128), augment=augment)
    preset.set_random_state(0)
    out = preset({"image": image, "mask": mask})
    assert out["image"].shape == out["mask"].shape == (1, 128, 128)
    assert out["image"].dtype == out["mask"].dtype == torch.float32
    assert set(out["mask"].unique().tolist()) == {0.0, 1.0}
    assert 0.0 <= float(out["image"].min()) and float(out["image"].max()) <= 1.2
    if not augment:
        assert abs(float(out["mask"].mean()) - float(row["mask_fraction"])) < 0.01
        # The tissue under the mask is the same before and after: same mean intensity, in [0, 1] units.
        scaled = (image - image.min()) / (image.max() - image.min())
        before = float(scaled[mask > 0].mean())
        after = float(out["image"][out["mask"] > 0].mean())
        assert abs(before - after) < 0.03


def test_mri_preset_on_ixi_t1_resamples_to_ras(shared_data):
    path = shared_data / "ixi_t1" / "IXI533-Guys-1066-T1.nii.gz"
    nii = nib.load(path)
    assert nib.aff2axcodes(nii.affine) != ("R", "A", "S")  # the test must exercise a reorientation
    volume = MetaTensor(
        torch.from_numpy(np.asarray(nii.dataobj, dtype=np.float32))[None],
        affine=torch.as_tensor(nii.affine, dtype=torch.float64),
        meta={"filename_or_obj": str(path)},
    )
    out = mri_preset(pixdim=(2.0, 2.0, 2.0), intensity="zscore")({"image": volume})["image"]
    assert nib.aff2axcodes(out.affine.numpy()) == ("R", "A", "S")
    torch.testing.assert_close(out.pixdim, torch.full((3,), 2.0, dtype=torch.float64), atol=1e-4, rtol=0)
    extent_in = np.asarray(nii.shape) * np.asarray(nii.header.get_zooms())
    extent_out = np.asarray(out.shape[1:]) * 2.0
    np.testing.assert_allclose(np.sort(extent_out), np.sort(extent_in), atol=2.0)
    assert out.dtype == torch.float32
    assert abs(float(out[out != 0].mean())) < 0.05


def test_busi_near_duplicates(shared_data):
    root = shared_data / "busi_256"
    datalist = [{"image": str(root / r["image"])} for r in _busi_rows(shared_data)[:200]]
    groups = find_near_duplicates([d["image"] for d in datalist], progress=False)
    print(f"\nBUSI, first {len(datalist)} images: {len(groups)} near-duplicate groups")
    for group in groups:
        print("  " + ", ".join(Path(datalist[i]["image"]).name for i in group))
    copy_of = 17
    kept, report = drop_near_duplicates([*datalist, dict(datalist[copy_of])], progress=False)
    group = next(r for r in report if len(datalist) in r["dropped"])
    assert copy_of in [group["kept"], *group["dropped"]]
    assert len(kept) == len(datalist) + 1 - sum(len(r["dropped"]) for r in report)
