"""Lesion masks resized without losing a lesion (max-pooled footprints), and the fundus preset that uses them:
a one-pixel exudate survives a 4x downsize, augmentation, and stays aligned with the image."""

from __future__ import annotations

import pytest
import torch
from monai.data import MetaTensor
from monai.transforms import Resized

from monai_xai.transforms import ResizeMaskKeepLesionsd, fundus_preset, resize_mask_keep_lesions


def _one_pixel(h: int = 64, w: int = 64, at: tuple[int, int] = (21, 42)) -> torch.Tensor:
    mask = torch.zeros(1, h, w)
    mask[0, at[0], at[1]] = 1.0
    return mask


@pytest.mark.parametrize("at", [(0, 0), (21, 42), (63, 63), (1, 62)])
def test_a_one_pixel_lesion_survives_a_4x_downsize_where_nearest_loses_it(at) -> None:
    mask = _one_pixel(at=at)
    small = resize_mask_keep_lesions(mask, (16, 16))
    assert small.shape == (1, 16, 16) and small.dtype == torch.float32
    assert small.sum() == 1 and small[0, at[0] // 4, at[1] // 4] == 1  # in the output pixel holding it
    area = resize_mask_keep_lesions(mask, (16, 16), mode="area")
    assert area.max() == pytest.approx(1 / 16) and area.sum() == pytest.approx(1 / 16)
    nearest = Resized("mask", (16, 16), mode="nearest-exact")({"mask": mask})["mask"]
    assert nearest.sum() == 0  # sampled at pixel centres 1.5, 5.5, ...: the lesion falls between samples


def test_footprints_of_a_non_integer_ratio_cover_every_source_pixel() -> None:
    for row in range(50):
        for col in (0, 17, 49):
            mask = _one_pixel(50, 50, (row, col))
            small = resize_mask_keep_lesions(mask, (15, 15))
            assert small.sum() >= 1, (row, col)
            assert small[0, row * 15 // 50, col * 15 // 50] == 1  # the pixel whose footprint holds it
    with pytest.raises(ValueError, match="unknown mask resize mode 'nearest'"):
        resize_mask_keep_lesions(_one_pixel(), (16, 16), mode="nearest")
    with pytest.raises(ValueError, match="a size for each"):
        resize_mask_keep_lesions(_one_pixel(), (16, 16, 16))


def test_dictionary_form_has_the_shape_and_affine_the_images_get() -> None:
    image = MetaTensor(torch.rand(3, 64, 48), affine=torch.diag(torch.tensor([0.5, 0.5, 1.0, 1.0])))
    mask = MetaTensor(_one_pixel(64, 48, (40, 3)), affine=image.affine.clone())
    for size, size_mode in (((16, 12), "all"), (32, "longest")):
        images = Resized("image", size, size_mode=size_mode)({"image": image})["image"]
        out = ResizeMaskKeepLesionsd("mask", size, size_mode=size_mode)({"mask": mask})["mask"]
        assert isinstance(out, MetaTensor) and out.shape[1:] == images.shape[1:]
        torch.testing.assert_close(out.affine, images.affine)
        assert out.sum() == 1
    unchanged = ResizeMaskKeepLesionsd("mask", (64, 48))({"mask": mask})["mask"]
    torch.testing.assert_close(unchanged.as_tensor(), mask.as_tensor())
    with pytest.raises(ValueError, match="unknown mask resize mode"):
        ResizeMaskKeepLesionsd("mask", (16, 16), mode="mean")


def _fundus_item() -> dict:
    """A bright disc (the field of view) on black with a one-pixel exudate and its mask."""
    yy, xx = torch.meshgrid(torch.arange(96.0), torch.arange(100.0), indexing="ij")
    disc = (yy - 48) ** 2 + (xx - 50) ** 2 < 44**2
    image = torch.where(disc, 90.0, 0.0).expand(3, 96, 100).clone()
    image[:, 30, 61] = torch.tensor([250.0, 240.0, 120.0])  # a small yellow exudate
    mask = torch.zeros(1, 96, 100)
    mask[0, 30, 61] = 1.0
    return {"image": MetaTensor(image), "mask": MetaTensor(mask)}


def test_fundus_preset_keeps_the_exudate_in_mask_and_image_where_nearest_drops_it() -> None:
    keep = {"image_resize": "area", "mask_resize": "max"}
    out = fundus_preset(mask_keys=["mask"], spatial_size=(22, 22), **keep)(_fundus_item())
    assert out["image"].shape == (3, 22, 22) and out["mask"].shape == (1, 22, 22)
    assert out["mask"].sum() == 1 and set(out["mask"].unique().tolist()) == {0.0, 1.0}
    where = tuple(out["mask"][0].nonzero()[0].tolist())
    brightest = divmod(int(out["image"][0].argmax()), 22)
    assert where == brightest  # the image pixel holding the exudate is the one the mask marks
    nearest = fundus_preset(mask_keys=["mask"], spatial_size=(22, 22))(_fundus_item())
    assert nearest["mask"].sum() == 0  # the default (as the other presets): sampled, and lost here
    with pytest.raises(ValueError, match="image_resize must be one of"):
        fundus_preset(mask_keys=["mask"], spatial_size=(22, 22), image_resize="bicubic")


def test_augmented_fundus_masks_keep_the_exudate() -> None:
    preset = fundus_preset(
        mask_keys=["mask"], spatial_size=(22, 22), augment=True, image_resize="area", mask_resize="max"
    )
    kept = 0
    for seed in range(40):
        preset.set_random_state(seed)
        out = preset(_fundus_item())
        assert set(out["mask"].unique().tolist()) <= {0.0, 1.0}
        kept += int(out["mask"].sum() > 0)
    assert kept == 40
