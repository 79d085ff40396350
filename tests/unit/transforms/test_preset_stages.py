"""The preset stages: the pixels of the preset factories, and errors instead of ignored settings in 3D."""

from __future__ import annotations

import pytest
import torch
from monai.data import MetaTensor
from monai.transforms import Compose, Invertd, ScaleIntensityd

from monai_xai.errors import InputError
from monai_xai.transforms.preset_stages import (
    PRESET_NAMES,
    PresetIntensityd,
    PresetResized,
    preset_flip_axis,
    preset_mask_mode,
    preset_mask_threshold,
    preset_transforms,
)


def _image(name: str) -> dict[str, MetaTensor]:
    """A small item the preset takes: HU for CT, a volume for MRI, RGB with a coloured line for ultrasound."""
    g = torch.Generator().manual_seed(0)
    affine = torch.diag(torch.tensor([1.5, 1.5, 1.5, 1.0]))
    if name == "mri":
        image = torch.rand((1, 10, 12, 8), generator=g) * 500.0
    elif name == "ct":
        image = torch.rand((1, 20, 24), generator=g) * 1600.0 - 1200.0
    elif name in ("fundus", "photo_rgb", "ultrasound"):
        yy, xx = torch.meshgrid(torch.arange(30.0), torch.arange(26.0), indexing="ij")
        disc = ((yy - 15) ** 2 + (xx - 13) ** 2 < 120).float()
        image = (torch.rand((3, 30, 26), generator=g) * 200.0 + 40.0) * disc
        if name == "ultrasound":
            image = image[:1].repeat(3, 1, 1)
            image[:, 7, :] = torch.tensor([0.0, 255.0, 0.0])[:, None]
    else:
        image = torch.rand((1, 20, 24), generator=g) * 4000.0
    mask = torch.zeros((1, *image.shape[1:]))
    mask[(0, *(slice(s // 3, s // 3 + 4) for s in image.shape[1:]))] = 1.0
    mask[(0, *(s // 2 for s in image.shape[1:]))] = 1.0  # a one-pixel lesion
    return {"image": MetaTensor(image, affine=affine), "mask": MetaTensor(mask, affine=affine)}


#: every preset with its arguments (each name a preset takes, at least once), an output size, and digests of
#: its output (see :func:`_digest`) without and with augmentation, recorded from the preset factories before
#: they were built from the stages
CASES = [
    ("ct", {}, (16, 12), [(116.176, 116.854, 6.0), (332.412, 332.425, 18.0)]),
    ("ct", {"window": "bone"}, (16, 12), [(26.4274, 27.0445, 6.0), (75.5028, 76.7769, 18.0)]),
    ("ct", {"window": [40, 80]}, None, [(103.917, 105.584, 17.0), (306.756, 311.056, 52.0)]),
    ("mri", {}, (8, 8, 8), [(-5.20832, -7.75663, 216.0), (-19.7186, -26.815, 677.0)]),
    (
        "mri",
        {"intensity": "zscore", "pixdim": [1.5, 2.0, 1.0], "axcodes": "LPS"},
        (8, 10, 6),
        [(4.68271, -2.78425, 72.0), (7.99333, -14.5958, 218.0)],
    ),
    ("mri", {"pixdim": None}, None, [(1.20867, 6.74479, 64.0), (-1.92631, 15.1606, 194.0)]),
    ("xray", {}, (16, 12), [(93.0178, 93.7543, 6.0), (266.091, 266.629, 18.0)]),
    (
        "xray",
        {"invert_monochrome1": False, "percentiles": [1.0, 99.0]},
        (10, 10),
        [(47.5101, 47.9598, 4.0), (136.214, 136.729, 12.0)],
    ),
    ("fundus", {}, (16, 14), [(325.606, 325.444, 9.0), (930.509, 927.702, 27.0)]),
    ("fundus", {"fov_crop": False}, (16, 14), [(186.377, 187.263, 5.0), (525.951, 526.459, 15.0)]),
    (
        "fundus",
        {"image_resize": "area", "mask_resize": "max"},
        (16, 14),
        [(332.643, 332.531, 16.0), (949.533, 947.005, 54.0)],
    ),
    ("fundus", {"image_resize": "area"}, (12, 12), [(206.774, 206.173, 4.0), (590.224, 587.025, 12.0)]),
    ("fundus", {"mask_resize": "max"}, (12, 12), [(209.625, 209.751, 19.0), (598.601, 597.468, 62.0)]),
    ("fundus", {}, None, [(645.576, 645.169, 17.0), (1909.79, 1908.5, 55.0)]),
    ("photo_rgb", {}, (16, 12), [(93.627, 94.0378, 4.0), (256.136, 256.33, 12.0)]),
    (
        "photo_rgb",
        {"keep_aspect": False, "max_value": 300.0},
        (16, 12),
        [(127.237, 128.044, 4.0), (355.102, 356.091, 12.0)],
    ),
    ("ultrasound", {}, (16, 12), [(50.9843, 52.9122, 4.0), (143.596, 147.59, 12.0)]),
    ("ultrasound", {"remove_overlays": False}, (12, 16), [(55.0412, 55.6179, 4.0), (155.537, 155.239, 11.0)]),
]


def _digest(out: dict) -> torch.Tensor:
    """Sums of the image, of the image weighted by position, and of the mask."""
    image, mask = out["image"].as_tensor().double(), out["mask"].as_tensor().double()
    weights = torch.linspace(0.5, 1.5, image.numel(), dtype=torch.float64).reshape(image.shape)
    return torch.stack([image.sum(), (image * weights).sum(), mask.sum()])


@pytest.mark.parametrize(("name", "args", "size", "digests"), CASES)
def test_stages_keep_the_pixels_of_the_presets(name, args, size, digests):
    """The stage list gives the pixels the preset factories gave before (seeds 0, 1, 2 with augmentation)."""
    for augment, expected in zip((False, True), digests):
        total = torch.zeros(3, dtype=torch.float64)
        for seed in (0, 1, 2) if augment else (0,):
            kwargs = {"keys": ["image"], "mask_keys": ["mask"], "spatial_size": size, "augment": augment}
            stages = Compose(preset_transforms(name, preset_args=args, **kwargs)).set_random_state(seed)
            total += _digest(stages(_image(name)))
        torch.testing.assert_close(total, torch.tensor(expected, dtype=torch.float64), rtol=2e-5, atol=1e-4)


def test_a_preset_argument_goes_to_its_stage_and_a_wrong_name_is_refused():
    resize = PresetResized(["image"], "photo_rgb", (16, 12), {"keep_aspect": False, "max_value": 300.0})
    assert resize(_image("photo_rgb"))["image"].shape == (3, 16, 12)  # stretched, not letterboxed
    with pytest.raises(InputError, match="'preset_args': 'fov_crop' is not an argument of the 'xray'"):
        PresetIntensityd(["image"], "xray", {"fov_crop": False})
    with pytest.raises(ValueError, match="ultrasoud"):
        PresetIntensityd(["image"], "ultrasoud")
    with pytest.raises(ValueError, match="image_resize must be one of"):
        PresetResized(["image"], "fundus", (8, 8), {"image_resize": "bicubic"})


def test_preset_rules_for_the_augmentation_and_mask_items():
    assert [preset_flip_axis(n) for n in PRESET_NAMES] == [None, None, None, 1, 1, 1]
    assert preset_mask_mode("fundus", {"mask_resize": "max"}) == "bilinear"
    assert preset_mask_mode("fundus", {"image_resize": "area"}) == preset_mask_mode("xray") == "nearest"
    assert preset_mask_threshold("fundus", {"mask_resize": "max"}) == 0.1
    assert preset_mask_threshold("ultrasound", {"remove_overlays": True}) == 0.5


def test_3d_takes_the_volume_transforms_and_refuses_what_it_would_ignore():
    volume = {"image": MetaTensor(torch.arange(24.0).reshape(1, 2, 3, 4))}
    scale = ScaleIntensityd(keys="image")
    stages = preset_transforms(
        "ultrasound", spatial_size=(2, 3, 4), spatial_dims=3, intensity_transforms=[scale]
    )
    assert len(stages) == 1
    out = Compose(stages)(volume)["image"]
    assert float(out.min()) == 0.0 and float(out.max()) == 1.0
    with pytest.raises(InputError, match="'preset_args': 'remove_overlays' are arguments of the 2D presets"):
        PresetIntensityd(
            "image", "ultrasound", {"remove_overlays": False}, spatial_dims=3, intensity_transforms=[scale]
        )
    with pytest.raises(InputError, match="'intensity_transforms' is empty"):
        PresetIntensityd("image", "ultrasound", {}, spatial_dims=3)
    with pytest.raises(InputError, match="'intensity_transforms' are a 3D volume's transforms"):
        PresetIntensityd("image", "ultrasound", spatial_dims=2, intensity_transforms=[scale])


def test_stages_invert_as_the_transforms_inside_them():
    """The attention editor inverts the validation pipeline: a resized map goes back to the input's size."""
    pipeline = Compose(
        preset_transforms("fundus", ["image"], ["mask"], (12, 16), preset_args={"fov_crop": False})
    )
    out = pipeline(_image("fundus"))
    out["edited"] = MetaTensor(torch.ones((1, 12, 16)))
    invert = Invertd(keys="edited", transform=pipeline, orig_keys="image", nearest_interp=False)
    assert invert(out)["edited"].shape == (1, 30, 26)
