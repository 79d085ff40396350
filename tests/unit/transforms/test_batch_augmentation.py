"""The batch transforms draw what MONAI's per-item ones draw, move images and masks together, are seedable,
and the ABN bundles apply them to whole batches with a per-item pipeline that a cache holds whole."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from monai.bundle import ConfigParser
from monai.transforms import Affine, Compose, Randomizable
from monai.utils import set_determinism

from monai_xai.errors import InputError
from monai_xai.runs import fingerprint
from monai_xai.transforms import (
    RandAffineBatchd,
    RandFlipBatchd,
    RandScaleIntensityBatchd,
    RandShiftIntensityBatchd,
)

REPO = Path(__file__).resolve().parents[3]
BUNDLE_TRAIN = {
    "abn": [REPO / "bundles" / "abn_classification" / "configs" / "train.json"],
    "multiscale": [
        REPO / "bundles" / "abn_classification" / "configs" / "train.json",
        REPO / "bundles" / "multiscale_abn_correction" / "configs" / "train.json",
    ],
}
ROTATE = math.radians(10.0)


def _affine(prob: float = 1.0, mode=("bilinear", "nearest")) -> RandAffineBatchd:
    return RandAffineBatchd(
        ["image", "mask"],
        prob=prob,
        rotate_range=[ROTATE],
        scale_range=[0.1, 0.1],
        translate_range=[3.0, 2.0],
        mode=list(mode),
    )


def _batch(n: int = 6, size: tuple[int, int] = (33, 40), seed: int = 1) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return {
        "image": torch.rand(n, 2, *size, generator=generator),
        "mask": (torch.rand(n, 1, *size, generator=generator) > 0.7).float(),
    }


def test_affine_resamples_as_monai_affine_with_the_drawn_parameters():
    transform = _affine().set_random_state(0)
    batch = _batch()
    out = transform(batch)
    for b in range(len(batch["image"])):
        params = {
            "rotate_params": float(transform.rotate_params[b]),
            "scale_params": transform.scale_params[b].tolist(),
            "translate_params": transform.translate_params[b].tolist(),
            "padding_mode": "zeros",
            "image_only": True,
        }
        image = Affine(mode="bilinear", **params)(batch["image"][b])
        mask = Affine(mode="nearest", **params)(batch["mask"][b])
        torch.testing.assert_close(out["image"][b], image.as_tensor(), atol=5e-5, rtol=0)
        torch.testing.assert_close(out["mask"][b], mask.as_tensor(), atol=0, rtol=0)


def test_affine_draws_within_the_ranges_and_leaves_the_other_samples_alone():
    transform = _affine(prob=0.5).set_random_state(3)
    batch = _batch(n=400, size=(8, 8))
    out = transform(batch)
    chosen = transform._do_transform
    assert 0.4 < chosen.float().mean() < 0.6
    assert len(transform.rotate_params) == int(chosen.sum())
    assert transform.rotate_params.abs().max() <= ROTATE
    assert ((transform.scale_params - 1.0).abs() <= 0.1).all()
    assert (transform.translate_params.abs() <= torch.tensor([3.0, 2.0])).all()
    # each axis varies on its own, as RandAffine's scale_range and translate_range
    assert not torch.allclose(transform.scale_params[:, 0], transform.scale_params[:, 1])
    for key in ("image", "mask"):
        assert torch.equal(out[key][~chosen], batch[key][~chosen])
        assert not torch.equal(out[key][chosen], batch[key][chosen])


def test_ranges_read_as_rand_affine_reads_them():
    """A number is ``(-f, f)``, a pair ``(low, high)``, a missing axis or ``None`` does not vary."""
    assert RandAffineBatchd("image", rotate_range=[[-0.1, 0.2]]).rotate_range == (-0.1, 0.2)
    assert RandAffineBatchd("image", rotate_range=0.3).rotate_range == (-0.3, 0.3)
    assert RandAffineBatchd("image").rotate_range == (0.0, 0.0)
    assert RandAffineBatchd("image", scale_range=[0.1]).scale_range == [(-0.1, 0.1), (0.0, 0.0)]
    assert RandAffineBatchd("image", translate_range=[None, (1, 3)]).translate_range == [(0, 0), (1, 3)]


def test_a_mask_and_an_image_of_the_same_shape_stay_aligned():
    """What the loss compares (attention maps, input gradients) with the mask moves with the image."""
    size = 48
    rows, cols = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    blobs = [((rows - r) ** 2 + (cols - c) ** 2 < 64).float() for r, c in [(12, 30), (30, 14), (24, 24)]]
    shape = torch.stack(blobs)[:, None]
    out = _affine().set_random_state(5)({"image": shape.clone(), "mask": shape.clone()})
    nearest = _affine(mode=("nearest", "nearest")).set_random_state(5)
    nearest = nearest({"image": shape.clone(), "mask": shape.clone()})
    assert torch.equal(nearest["image"], nearest["mask"])
    agreement = ((out["image"] >= 0.5).float() == out["mask"]).float().mean(dim=(1, 2, 3))
    assert (agreement > 0.99).all()
    assert not torch.equal(out["mask"], shape)


def test_flip_and_intensity_follow_monai_semantics():
    batch = _batch(n=200, size=(4, 5))
    flip = RandFlipBatchd(["image", "mask"], prob=0.5, spatial_axis=1).set_random_state(0)
    out = flip(batch)
    flipped = flip._do_transform
    assert 0.35 < flipped.float().mean() < 0.65
    for key in ("image", "mask"):
        torch.testing.assert_close(out[key][flipped], batch[key][flipped].flip(-1))
        torch.testing.assert_close(out[key][~flipped], batch[key][~flipped])
    image = torch.rand(200, 1, 4, 4) + 1.0
    scale = RandScaleIntensityBatchd("image", factors=0.1, prob=0.5).set_random_state(0)
    ratio = (scale({"image": image})["image"] / image).flatten(1)
    assert torch.allclose(ratio, ratio[:, :1]) and ((ratio - 1).abs() <= 0.1 + 1e-6).all()
    assert torch.equal(ratio[~scale._do_transform], torch.ones_like(ratio[~scale._do_transform]))
    shift = RandShiftIntensityBatchd("image", offsets=(-0.05, 0.02), prob=1.0).set_random_state(0)
    offset = (shift({"image": image})["image"] - image).flatten(1)
    assert torch.allclose(offset, offset[:, :1], atol=1e-6)
    assert offset.min() >= -0.05 - 1e-6 and offset.max() <= 0.02 + 1e-6 and offset.std() > 0.01


def test_draws_are_reproducible_by_seed_and_under_set_determinism():
    def run(seed: int | None = None) -> torch.Tensor:
        compose = Compose([_affine(prob=0.5), RandScaleIntensityBatchd("image", 0.1, prob=0.5)])
        if seed is not None:
            compose.set_random_state(seed)  # seeds each transform, as for MONAI's own
        return compose(_batch())["image"]

    assert isinstance(_affine(), Randomizable)
    assert torch.equal(run(7), run(7))
    assert not torch.equal(run(7), run(8))
    set_determinism(seed=2)
    first = run()
    set_determinism(seed=2)
    second = run()
    set_determinism(seed=None)
    assert torch.equal(first, second)


def test_bad_input_names_the_transform_and_the_problem():
    with pytest.raises(InputError, match=r"RandAffineBatchd: 'image' holds a batch of shape \(2, 1, 4, 4, 4"):
        _affine()({"image": torch.zeros(2, 1, 4, 4, 4), "mask": torch.zeros(2, 1, 4, 4, 4)})
    with pytest.raises(InputError, match="'prob' must lie in"):
        RandFlipBatchd("image", prob=1.5)
    with pytest.raises(InputError, match="'spatial_axis'"):
        RandFlipBatchd("image", spatial_axis=2)
    with pytest.raises(InputError, match="'mode' 'cubic' is not one of 'nearest', 'bilinear', 'bicubic'"):
        RandAffineBatchd("image", mode="cubic")
    with pytest.raises(InputError, match="'factors'"):
        RandScaleIntensityBatchd("image", factors=(0.1, 0.2, 0.3))


def _parser(bundle: str, **overrides) -> ConfigParser:
    parser = ConfigParser()
    parser.read_config([str(f) for f in BUNDLE_TRAIN[bundle]])
    parser.update(overrides)
    return parser


@pytest.mark.parametrize("bundle", list(BUNDLE_TRAIN))
def test_bundles_augment_whole_batches_after_a_deterministic_pipeline(bundle):
    parser = _parser(bundle)
    preprocessing = parser.get_parsed_content("train#preprocessing").transforms
    assert not any(isinstance(t, Randomizable) for t in preprocessing)
    augmentation = parser.get_parsed_content("train#augmentation")
    assert parser.get_parsed_content("train#trainer#prepare_batch").augmentation is augmentation
    names = [type(t).__name__ for t in augmentation.transforms]
    assert names == [
        "RandAffineBatchd",
        "RandFlipBatchd",
        "RandScaleIntensityBatchd",
        "RandShiftIntensityBatchd",
        "AsDiscreted",
    ]
    per_item = _parser(bundle, batch_augmentation=False)
    assert per_item.get_parsed_content("train#augmentation") is None
    names = [type(t).__name__ for t in per_item.get_parsed_content("train#preprocessing").transforms]
    assert names[5:9] == ["RandAffined", "RandFlipd", "RandScaleIntensityd", "RandShiftIntensityd"]
    # the two pipelines are two runs: a folder trained one way never resumes the other way
    batched_id, per_item_id = (p.get_parsed_content("run_identity") for p in (parser, per_item))
    assert batched_id["data"]["batch_augmentation"] is True
    assert fingerprint(batched_id) != fingerprint(per_item_id)


def test_bundle_binarises_masks_moved_by_interpolation():
    """fundus masks keep thin lesions by bilinear moves and are binarised at 0.1 after them, on the batch."""
    fundus = {"fov_crop": False, "image_resize": "area", "mask_resize": "max"}
    parser = _parser("abn", preset="fundus", preset_args=fundus, spatial_size=[16, 16])
    augmentation = parser.get_parsed_content("train#augmentation").set_random_state(0)
    mask = torch.zeros(8, 1, 16, 16)
    mask[:, :, 8, 3:12] = 1.0
    out = augmentation({"image": torch.rand(8, 3, 16, 16), "mask": mask})["mask"]
    assert set(out.unique().tolist()) <= {0.0, 1.0}
    assert (out.sum(dim=(1, 2, 3)) > 0).all()
    assert parser.get_parsed_content("train#augmentation#transforms#0").mode == {
        "image": "bilinear",
        "mask": "bilinear",
    }


def test_volume_runs_keep_the_per_item_path():
    parser = ConfigParser()
    fragment = REPO / "configs" / "datasets" / "adrenalmnist3d.json"
    parser.read_config([str(BUNDLE_TRAIN["abn"][0]), str(fragment)])
    assert parser.get_parsed_content("batch_augmentation") is False
    assert parser.get_parsed_content("train#augmentation") is None
