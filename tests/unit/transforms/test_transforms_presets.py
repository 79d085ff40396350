"""Modality presets and their custom transforms, on tiny synthetic images."""

from __future__ import annotations

import nibabel as nib
import pytest
import torch
from monai.data import MetaTensor
from monai.transforms import Compose

from monai_xai.transforms.intensity import (
    ExtractSliced,
    FieldOfViewCropd,
    InvertMonochrome1d,
    RemoveColorOverlayd,
    ToGrayscaled,
)
from monai_xai.transforms.preset_stages import CT_WINDOWS
from monai_xai.transforms.presets import (
    PRESETS,
    ct_preset,
    fundus_preset,
    get_preset,
    mri_preset,
    ultrasound_preset,
    xray_preset,
)


def _grid(h: int, w: int) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.meshgrid(
        torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij"
    )


def _ellipse(h: int, w: int, cy: float, cx: float, ry: float, rx: float) -> torch.Tensor:
    yy, xx = _grid(h, w)
    return ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1.0


def _dice(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.bool(), b.bool()
    return float(2 * (a & b).sum() / (a.sum() + b.sum()))


# --- CT ---------------------------------------------------------------------------------------------------


def test_ct_lung_window_matches_hand_computed_values():
    hu = MetaTensor(
        torch.tensor([[[-2000.0, -1350.0, -1000.0, -600.0, 0.0, 150.0, 2000.0]]]), affine=torch.eye(4)
    )
    out = ct_preset(window="lung", spatial_size=None)({"image": hu})["image"]
    # lung: center -600, width 1500 -> [-1350, 150] mapped to [0, 1], clipped outside.
    expected = torch.tensor([0.0, 0.0, 350 / 1500, 750 / 1500, 1350 / 1500, 1.0, 1.0])
    assert out.dtype == torch.float32
    torch.testing.assert_close(out.as_tensor()[0, 0], expected)


def test_ct_custom_window_from_json_list():
    hu = MetaTensor(torch.tensor([[[0.0, 40.0, 60.0, 100.0]]]))
    out = ct_preset(window=[40, 80], spatial_size=None)({"image": hu})["image"]
    torch.testing.assert_close(out.as_tensor()[0, 0], torch.tensor([0.0, 0.5, 0.75, 1.0]))
    assert set(CT_WINDOWS) == {"lung", "mediastinum", "bone", "brain", "abdomen"}


def test_ct_unknown_window_is_rejected():
    with pytest.raises(ValueError, match="lung"):
        ct_preset(window="liver")


def test_ct_slice_extraction_middle_and_given_index():
    # Value = index along the last axis, so the slice taken is readable from the output.
    vol = torch.arange(6, dtype=torch.float32).reshape(1, 1, 1, 6).expand(1, 4, 5, 6).clone()
    affine = torch.diag(torch.tensor([2.0, 3.0, 4.0, 1.0]))
    mask = (vol == 3).float()
    data = {"image": MetaTensor(vol, affine=affine), "mask": MetaTensor(mask, affine=affine)}
    out = ct_preset(mask_keys="mask", window=(2.5, 5.0), slice_axis=2, spatial_size=None)(data)
    assert out["image"].shape == (1, 4, 5)
    torch.testing.assert_close(out["image"].as_tensor(), torch.full((1, 4, 5), 0.6))  # middle: index 3 -> 3/5
    assert out["mask"].shape == (1, 4, 5) and bool((out["mask"] == 1).all())
    torch.testing.assert_close(
        out["image"].affine[:2, :2], torch.diag(torch.tensor([2.0, 3.0], dtype=torch.float64))
    )
    last = ct_preset(window=(2.5, 5.0), slice_axis=2, slice_index=-1, spatial_size=(8, 10))(data)["image"]
    assert last.shape == (1, 8, 10)
    torch.testing.assert_close(last.as_tensor(), torch.ones(1, 8, 10))


def test_extract_slice_other_axis_and_bad_index():
    vol = MetaTensor(torch.rand(1, 3, 4, 5))
    out = ExtractSliced("image", axis=0, index=1)({"image": vol})["image"]
    torch.testing.assert_close(out.as_tensor(), vol.as_tensor()[:, 1])
    with pytest.raises(IndexError):
        ExtractSliced("image", axis=0, index=3)({"image": vol})


# --- X-ray ------------------------------------------------------------------------------------------------


def test_invert_monochrome1_sources():
    img = torch.arange(6, dtype=torch.float32).reshape(1, 2, 3) + 10
    inverted = 25 - img  # max + min - x
    t = InvertMonochrome1d("image")
    out = t({"image": MetaTensor(img.clone(), meta={"photometric": "MONOCHROME1"})})["image"]
    torch.testing.assert_close(out.as_tensor(), inverted)
    assert out.meta["photometric"] == "MONOCHROME2"
    torch.testing.assert_close(t({"image": out})["image"].as_tensor(), inverted)  # idempotent
    pydicom_json = {"00280004": {"vr": "CS", "Value": ["MONOCHROME1"]}}
    torch.testing.assert_close(
        t({"image": MetaTensor(img.clone(), meta=pydicom_json)})["image"].as_tensor(), inverted
    )
    itk = {"0028|0004": "MONOCHROME1 "}
    torch.testing.assert_close(t({"image": MetaTensor(img.clone(), meta=itk)})["image"].as_tensor(), inverted)
    item_level = t({"image": img.clone(), "photometric": "MONOCHROME1"})["image"]
    torch.testing.assert_close(item_level, inverted)
    untouched = t({"image": MetaTensor(img.clone(), meta={"PhotometricInterpretation": "MONOCHROME2"})})[
        "image"
    ]
    torch.testing.assert_close(untouched.as_tensor(), img)
    forced = InvertMonochrome1d("image", force=True)({"image": img.clone()})["image"]
    torch.testing.assert_close(forced, inverted)


def test_xray_preset_inverts_monochrome1_and_scales_by_percentiles():
    ramp = torch.arange(10000, dtype=torch.float32).reshape(1, 100, 100)
    preset = xray_preset(percentiles=(0.5, 99.5), spatial_size=None)
    out = preset({"image": MetaTensor(ramp.clone(), meta={"photometric": "MONOCHROME2"})})["image"]
    assert out.dtype == torch.float32
    assert float(out.min()) == 0.0 and float(out.max()) == 1.0
    # 0.5 % of 10000 values lie at or below the low percentile, as many at or above the high one.
    assert abs(int((out == 0).sum()) - 50) <= 1 and abs(int((out == 1).sum()) - 50) <= 1
    mono1 = preset({"image": MetaTensor(9999 - ramp, meta={"photometric": "MONOCHROME1"})})["image"]
    torch.testing.assert_close(mono1.as_tensor(), out.as_tensor())


# --- fundus -----------------------------------------------------------------------------------------------


def _fundus(h: int = 64, w: int = 72) -> tuple[torch.Tensor, torch.Tensor]:
    disc = _ellipse(h, w, 30, 38, 22, 22)
    rgb = torch.full((3, h, w), 3.0) + torch.rand(3, h, w) * 4  # dark, noisy surround
    rgb[:, disc] = torch.tensor([180.0, 90.0, 40.0])[:, None]
    rgb[:, 30, 20:50] = 2.0  # a dark vessel across the retina
    rgb[:, 1, 1] = 255.0  # a bright speck (text) outside the field of view
    return rgb, disc


def test_fov_crop_on_synthetic_disc():
    rgb, disc = _fundus()
    data = {"image": MetaTensor(rgb, affine=torch.eye(4)), "mask": MetaTensor(disc[None].float())}
    out = FieldOfViewCropd("image", mask_keys="mask", fov_key="fov")(data)
    rows, cols = disc.any(1).nonzero()[:, 0], disc.any(0).nonzero()[:, 0]
    box = (slice(int(rows[0]), int(rows[-1]) + 1), slice(int(cols[0]), int(cols[-1]) + 1))
    assert out["image"].shape == (3, 45, 45) and out["mask"].shape == (1, 45, 45)
    assert bool((out["fov"][0].bool() == disc[box]).all())  # the vessel is inside, the speck is not
    torch.testing.assert_close(out["mask"].as_tensor(), disc[box][None].float())
    assert float(out["image"][:, ~disc[box]].abs().max()) == 0.0
    torch.testing.assert_close(out["image"].affine[:2, 3], torch.tensor([8.0, 16.0], dtype=torch.float64))
    uncropped = FieldOfViewCropd("image", crop=False)({"image": rgb})["image"]
    assert uncropped.shape == rgb.shape and float(uncropped[:, ~disc].abs().max()) == 0.0


# --- ultrasound -------------------------------------------------------------------------------------------


def test_overlay_removal_on_gray_image_with_red_line():
    _, xx = _grid(40, 48)
    gray = 40 + 3 * xx  # horizontal ramp: a removed pixel's neighbours above and below share its value
    rgb = gray.expand(3, 40, 48).clone()
    rgb[:, 12] = torch.tensor([255.0, 0.0, 0.0])[:, None]  # thin red line
    rgb[:, 25:33, 5:40] = torch.tensor([230.0, 220.0, 0.0])[:, None, None]  # wide yellow box
    out = RemoveColorOverlayd("image")({"image": MetaTensor(rgb)})["image"]
    assert out.shape == (1, 40, 48) and out.dtype == torch.float32 and isinstance(out, MetaTensor)
    out = out.as_tensor()[0]
    torch.testing.assert_close(out[:20], gray[:20], atol=3.5, rtol=0)  # thin line: neighbours above and below
    # The box fills from its borders, so the ramp is only approximated; no trace of the yellow is left.
    torch.testing.assert_close(out[20:], gray[20:], atol=15.0, rtol=0)
    gray_in = RemoveColorOverlayd("image")({"image": gray[None]})["image"]
    torch.testing.assert_close(gray_in, gray[None])
    luma = ToGrayscaled("image")({"image": torch.tensor([[[1.0]], [[1.0]], [[1.0]]])})["image"]
    torch.testing.assert_close(luma, torch.ones(1, 1, 1))


# --- mask alignment through every preset ------------------------------------------------------------------


def _case(name: str) -> tuple[dict, dict, float]:
    """A synthetic item for a preset, kwargs, and the output threshold separating the bright region."""
    h, w = 60, 76
    blob = _ellipse(h, w, 22, 48, 10, 16)
    if name == "ct":
        img = torch.where(blob, 400.0, -1000.0)[None]
        return {"image": img, "mask": blob[None].float() * 255}, {"window": "mediastinum"}, 0.5
    if name == "xray":
        img = torch.where(blob, 3000.0, 500.0)[None] + torch.rand(1, h, w)
        return {"image": img, "mask": blob[None].float()}, {}, 0.5
    if name == "fundus":
        fov = _ellipse(h, w, 30, 38, 29, 36)
        img = torch.where(blob, 250.0, torch.where(fov, 80.0, 0.0)).expand(3, h, w).clone()
        return {"image": img, "mask": blob[None].float()}, {}, 0.66
    if name == "photo_rgb":  # an orange lesion on dark brown skin, letterboxed into 48x40
        img = torch.stack([torch.where(blob, v, b) for v, b in ((230.0, 60.0), (140.0, 35.0), (40.0, 20.0))])
        return {"image": img, "mask": blob[None].float()}, {}, 0.3
    if name == "ultrasound":
        img = torch.where(blob, 220.0, 60.0).expand(3, h, w).clone()
        img[:, 50, :] = torch.tensor([0.0, 255.0, 0.0])[:, None]  # green caliper line
        return {"image": img, "mask": blob[None].float()}, {}, 0.5
    blob3 = torch.zeros(20, 24, 16, dtype=torch.bool)
    blob3[4:12, 6:18, 3:9] = True
    img = torch.where(blob3, 100.0, 0.0)[None]
    return {"image": img, "mask": blob3[None].float()}, {"pixdim": (1.5, 1.5, 1.5)}, 0.0


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_masks_follow_images_through_each_preset(name):
    data, kwargs, threshold = _case(name)
    affine = torch.diag(torch.tensor([2.0, 2.0, 2.0, 1.0]))
    items = {k: MetaTensor(v, affine=affine) for k, v in data.items()}
    if name == "mri":
        kwargs["spatial_size"] = (32, 32, 32)
    else:
        kwargs["spatial_size"] = (48, 40)
    plain = get_preset(name, mask_keys="mask", **kwargs)(dict(items))
    outputs = [plain]
    for seed in range(3):
        preset = get_preset(name, mask_keys="mask", augment=True, **kwargs)
        preset.set_random_state(seed)
        outputs.append(preset(dict(items)))
    for out in outputs:
        image, mask = out["image"], out["mask"]
        assert image.dtype == torch.float32 and mask.dtype == torch.float32
        assert set(mask.unique().tolist()) <= {0.0, 1.0}
        assert image.shape[1:] == mask.shape[1:] == tuple(kwargs["spatial_size"])
        bright = image.mean(0) > threshold
        assert _dice(bright, mask[0]) > 0.9, name
    assert any(not torch.equal(o["mask"], plain["mask"]) for o in outputs[1:]), (
        "augmentation never moved the mask"
    )
    expected_channels = 3 if name in ("fundus", "photo_rgb") else 1
    assert plain["image"].shape[0] == expected_channels


# --- MRI --------------------------------------------------------------------------------------------------


def test_mri_orientation_lps_to_ras_flips_data():
    vol = torch.rand(1, 4, 5, 6) + 1
    lps = torch.diag(torch.tensor([-1.0, -1.0, 1.0, 1.0]))
    assert nib.aff2axcodes(lps.numpy()) == ("L", "P", "S")
    out = mri_preset(pixdim=None)({"image": MetaTensor(vol, affine=lps)})["image"]
    assert nib.aff2axcodes(out.affine.numpy()) == ("R", "A", "S")
    scaled = (vol - vol.min()) / (vol.max() - vol.min()) * 2 - 1
    torch.testing.assert_close(out.as_tensor(), scaled.flip(1, 2))


def test_mri_spacing_and_zscore():
    vol = torch.zeros(1, 8, 8, 8)
    vol[0, 2:6, 2:6, 2:6] = torch.rand(4, 4, 4) * 50 + 100
    affine = torch.diag(torch.tensor([2.0, 2.0, 2.0, 1.0]))
    out = mri_preset(pixdim=(1.0, 1.0, 1.0), intensity="zscore")({"image": MetaTensor(vol, affine=affine)})[
        "image"
    ]
    assert out.shape == (1, 15, 15, 15)
    torch.testing.assert_close(out.pixdim, torch.ones(3, dtype=torch.float64))
    nonzero = out[out != 0]
    assert abs(float(nonzero.mean())) < 0.1 and abs(float(nonzero.std()) - 1) < 0.1
    with pytest.raises(ValueError, match="zscore"):
        mri_preset(intensity="percentile")


def test_get_preset_lists_valid_names():
    assert isinstance(get_preset("ultrasound", remove_overlays=False), Compose)
    with pytest.raises(ValueError, match="'pet' is not a valid value"):
        get_preset("pet")
    assert isinstance(fundus_preset(fov_crop=False), Compose) and isinstance(ultrasound_preset(), Compose)
