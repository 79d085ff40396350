"""Each bundle's preprocessing is a list of ``_target_`` items: one transform can be overridden by its ``#``
path (as the model zoo's CI does), and the items give the pixels of the preset stages they spell out."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from monai.bundle import ConfigParser
from monai.data import MetaTensor
from monai.transforms import Compose

from monai_xai.errors import InputError
from monai_xai.transforms import PresetResized, ResizeWithBoxesd, detection_preset, preset_transforms

REPO = Path(__file__).resolve().parents[2]
BUNDLES = REPO / "bundles"
DATASETS = REPO / "configs" / "datasets"
ABN = BUNDLES / "abn_classification" / "configs"
MULTISCALE = BUNDLES / "multiscale_abn_correction" / "configs"
GAN = BUNDLES / "agcyclegan_explainer" / "configs"
CENTERNET = BUNDLES / "centernet_detection" / "configs"

#: config files, the preprocessing id, and the index of its resize item
RESIZE_ITEMS = [
    ([ABN / "train.json"], "train#preprocessing", 4),
    ([ABN / "train.json"], "validate#preprocessing", 4),
    ([ABN / "inference.json"], "preprocessing", 3),
    ([ABN / "train.json", MULTISCALE / "train.json"], "train#preprocessing", 4),
    ([MULTISCALE / "inference.json"], "preprocessing", 3),
    ([GAN / "train.json"], "preprocessing", 5),
    ([GAN / "train.json", GAN / "train_classifier.json"], "train#preprocessing", 5),
    ([GAN / "inference.json"], "preprocessing", 4),
    ([CENTERNET / "train.json"], "train#preprocessing", 5),
    ([CENTERNET / "train.json"], "validate#preprocessing", 5),
    ([CENTERNET / "train.json", CENTERNET / "pretrain_simsiam.json"], "train#preprocessing", 2),
    ([CENTERNET / "inference.json"], "preprocessing", 2),
]


def _parser(files: list[Path], **overrides) -> ConfigParser:
    parser = ConfigParser()
    parser.read_config([str(f) for f in files])
    parser.update(overrides)
    return parser


@pytest.mark.parametrize(("files", "pipeline", "index"), RESIZE_ITEMS)
def test_one_transform_is_overridden_by_its_path(files, pipeline, index):
    """``<pipeline>#transforms#<i>#spatial_size`` changes that item, and only it."""
    parser = _parser(files, **{f"{pipeline}#transforms#{index}#spatial_size": [20, 24]})
    compose = parser.get_parsed_content(pipeline)
    assert isinstance(compose, Compose)
    resize = compose.transforms[index]
    assert isinstance(resize, PresetResized | ResizeWithBoxesd)
    item = {"image": MetaTensor(torch.rand(1, 33, 41)), "mask": MetaTensor(torch.zeros(1, 33, 41))}
    if isinstance(resize, ResizeWithBoxesd):
        item = {"image": item["image"]}
    assert tuple(resize(item)["image"].shape[1:]) == (20, 24)
    assert parser.get_parsed_content("spatial_size") != [20, 24]


#: presets to check the abn items with: flips (ultrasound), none (xray), masks moved by interpolation (fundus)
PIXEL_CASES = [
    ("ultrasound", {"remove_overlays": False}, 1),
    ("xray", {"invert_monochrome1": False}, 1),
    ("fundus", {"fov_crop": False, "image_resize": "area", "mask_resize": "max"}, 3),
]


@pytest.mark.parametrize(("preset", "args", "channels"), PIXEL_CASES)
@pytest.mark.parametrize("pipeline", ["train#preprocessing", "validate#preprocessing"])
def test_the_config_items_give_the_stages_pixels(preset, args, channels, pipeline):
    """After loading and validation, the abn items equal :func:`preset_transforms` with the same seeds (the
    per-item augmentation path; the batched one is checked against MONAI's transforms in its unit tests)."""
    parser = _parser(
        [ABN / "train.json"], preset=preset, preset_args=args, spatial_size=[12, 10], batch_augmentation=False
    )
    items = parser.get_parsed_content(pipeline).transforms
    assert [type(t).__name__ for t in items[:3]] == ["LoadImageOrArrayd", "EnsureMaskd", "ValidateItemd"]
    augment = pipeline.startswith("train")
    stages = preset_transforms(preset, ["image"], ["mask"], (12, 10), augment, args)
    assert [type(t).__name__ for t in items[3:]] == [type(t).__name__ for t in stages]
    rng = np.random.default_rng(0)
    image = rng.uniform(0, 255, (channels, 30, 26)).astype(np.float32)
    mask = np.zeros((1, 30, 26), np.float32)
    mask[0, 8:14, 5:9] = 1.0
    mask[0, 20, 20] = 1.0
    for seed in range(4):
        item = {"image": MetaTensor(image), "mask": MetaTensor(mask)}
        expected = Compose(stages).set_random_state(seed)(dict(item))
        out = Compose(items[3:]).set_random_state(seed)(dict(item))
        for key in ("image", "mask"):
            torch.testing.assert_close(out[key], expected[key], rtol=0, atol=0)


@pytest.mark.parametrize("remove_overlays", [True, False])
@pytest.mark.parametrize("pipeline", ["train#preprocessing", "validate#preprocessing"])
def test_the_detection_items_give_the_detection_presets_pixels(pipeline, remove_overlays):
    """CenterNet's items equal :func:`detection_preset` (boxes included) with the same seeds."""
    parser = _parser([CENTERNET / "train.json"], spatial_size=[20, 16], remove_overlays=remove_overlays)
    items = parser.get_parsed_content(pipeline)
    augment = pipeline.startswith("train")
    preset = detection_preset((20, 16), augment=augment, remove_overlays=remove_overlays)
    assert [type(t).__name__ for t in items.transforms[2:]] == [
        type(t).__name__ for t in preset.transforms[3:]
    ]
    image = np.random.default_rng(0).uniform(0, 255, (3, 30, 26)).astype(np.float32)
    image[:, 8:16, 4:12] = 250.0
    for seed in range(4):
        item = {"image": image, "boxes": np.array([[4, 8, 12, 16]], np.float32), "labels": np.array([1])}
        expected = preset.set_random_state(seed)(dict(item))
        out = items.set_random_state(seed)(dict(item))
        for key in ("image", "boxes", "labels", "original_size"):
            torch.testing.assert_close(
                torch.as_tensor(out[key]), torch.as_tensor(expected[key]), rtol=0, atol=0
            )


#: the dataset fragments (the other files there are split files)
FRAGMENTS = sorted(p.name for p in DATASETS.glob("*.json") if "splits" not in p.name)
BUNDLE_TRAIN = [[ABN / "train.json"], [GAN / "train.json", GAN / "train_classifier.json"]]


@pytest.mark.parametrize("fragment", FRAGMENTS)
@pytest.mark.parametrize("bundle", BUNDLE_TRAIN)
def test_dataset_fragments_build_the_preprocessing(fragment, bundle):
    """Every dataset fragment's preset, preset_args and intensity_transforms make the bundle's pipelines."""
    parser = _parser([*bundle, DATASETS / fragment])
    for pipeline in ("train#preprocessing", "validate#preprocessing", "preprocessing"):
        if parser.get(pipeline) is not None:
            assert isinstance(parser.get_parsed_content(pipeline), Compose), pipeline


def test_3d_run_refuses_2d_preset_arguments_and_missing_volume_transforms():
    fragment = DATASETS / "adrenalmnist3d.json"
    parser = _parser([ABN / "train.json", fragment], preset_args={"remove_overlays": True})
    with pytest.raises(RuntimeError) as error:
        parser.get_parsed_content("validate#preprocessing")
    assert isinstance(error.value.__cause__, InputError) and "'preset_args'" in str(error.value.__cause__)
    parser = _parser([ABN / "train.json", fragment], intensity_transforms=[])
    with pytest.raises(RuntimeError) as error:
        parser.get_parsed_content("train#preprocessing")
    assert "'intensity_transforms' is empty" in str(error.value.__cause__)
