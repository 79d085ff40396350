"""Colour images stay in colour: the ``photo_rgb`` preset, and overlays drawn over RGB inputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.data import MetaTensor

from monai_xai.deploy import overlay_rgb
from monai_xai.transforms import PRESETS, ToRGBd, get_preset, photo_rgb_preset
from monai_xai.visualize import attention_overlay_figure, display_plane, explanation_grid_figure


def _red_left_blue_right(h: int = 40, w: int = 60) -> MetaTensor:
    """An 8-bit RGB photograph, (3, H, W): red (200, 0, 0) on the left half, blue (0, 0, 100) on the right."""
    image = torch.zeros(3, h, w)
    image[0, :, : w // 2] = 200.0
    image[2, :, w // 2 :] = 100.0
    return MetaTensor(image, affine=torch.eye(4))


def test_to_rgb_repeats_grey_drops_alpha_and_refuses_two_channels():
    grey = torch.arange(6.0).reshape(1, 2, 3)
    rgba = torch.rand(4, 2, 3)
    out = ToRGBd(keys=["grey", "rgba"])({"grey": grey, "rgba": rgba})
    torch.testing.assert_close(out["grey"], grey.expand(3, 2, 3))
    torch.testing.assert_close(out["rgba"], rgba[:3])
    with pytest.raises(ValueError, match="expected 1, 3 or 4 channels"):
        ToRGBd(keys="image")({"image": torch.rand(2, 2, 3)})


def test_photo_rgb_keeps_colour_on_a_fixed_scale_and_letterboxes():
    mask = torch.zeros(1, 40, 60)
    mask[:, 10:30, 5:25] = 1.0
    preset = photo_rgb_preset(mask_keys="mask", spatial_size=(32, 32))
    out = preset({"image": _red_left_blue_right(), "mask": mask})
    image, mask = out["image"].as_tensor(), out["mask"].as_tensor()
    assert image.shape == (3, 32, 32) and mask.shape == (1, 32, 32) and image.dtype == torch.float32
    # 60 columns -> 32, 40 rows -> 21, centred: zero rows above and below
    assert image[:, :5].abs().max() == 0 and image[:, 27:].abs().max() == 0 and mask[:, :5].max() == 0
    red, blue = image[:, 16, 4], image[:, 16, 28]
    torch.testing.assert_close(red, torch.tensor([200 / 255, 0.0, 0.0]))  # not stretched to 1 per image
    torch.testing.assert_close(blue, torch.tensor([0.0, 0.0, 100 / 255]))
    assert set(mask.unique().tolist()) == {0.0, 1.0}


def test_photo_rgb_stretches_when_asked_and_is_a_named_preset():
    grey = MetaTensor(torch.full((1, 40, 60), 51.0), affine=torch.eye(4))
    out = get_preset("photo_rgb", spatial_size=(16, 24), keep_aspect=False)({"image": grey})["image"]
    assert out.shape == (3, 16, 24)
    torch.testing.assert_close(out.as_tensor()[:, 4:-4, 4:-4], torch.full((3, 8, 16), 0.2))  # 51 / 255
    assert PRESETS["photo_rgb"] is photo_rgb_preset


def test_display_plane_keeps_three_channels_and_slices_the_rest():
    rgb = torch.rand(3, 5, 7)
    np.testing.assert_allclose(display_plane(rgb), rgb.permute(1, 2, 0).numpy(), rtol=1e-6)
    assert display_plane(np.zeros((1, 5, 7))).shape == (5, 7)
    assert display_plane(torch.zeros(1, 5, 7, 9)).shape == (5, 7)


def test_overlay_figures_draw_rgb_inputs_in_colour():
    image, grey = _red_left_blue_right() / 255.0, torch.rand(1, 40, 60)
    att = torch.rand(1, 5, 8)
    fig = attention_overlay_figure([image, grey], [att, att])
    # first image: the input in colour under the contour and under the map; second: grey as before
    shapes = [ax.images[0].get_array().shape for ax in fig.axes]
    assert shapes == [(40, 60, 3), (40, 60), (40, 60, 3), (40, 60)]
    grid = explanation_grid_figure([image], {"map": [att]})
    assert all(ax.images[0].get_array().shape == (40, 60, 3) for ax in grid.axes)
    shown = np.asarray(fig.axes[0].images[0].get_array())
    assert shown[20, 5, 0] > 0.9 and shown[20, 5, 1] < 0.1  # red stays red


def test_deploy_overlay_of_a_colour_image_is_in_colour():
    image = np.zeros((32, 32, 3))
    image[..., 0] = 1.0  # red
    overlay = overlay_rgb(image, np.zeros((32, 32))).astype(int)
    assert overlay.shape == (512, 512, 3)
    # jet(0) is dark blue: over grey, red and green would be equal; over red, red wins
    assert overlay[100, 100, 0] > 120 and overlay[100, 100, 1] == 0
