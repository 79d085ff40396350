"""Deletion/Insertion on a model whose answer is known pixel by pixel, and quadratic weighted kappa."""

from __future__ import annotations

import csv
import importlib

import numpy as np
import pytest
import torch

from monai_xai.metrics import deletion_insertion, perturbation_baseline, quadratic_weighted_kappa


class LinearEvidence(torch.nn.Module):
    """Class-1 logit = sum of the pixels in a fixed region, class-0 logit = 0: only that region matters."""

    def __init__(self, region: torch.Tensor) -> None:
        super().__init__()
        self.region = region.float()
        self.calls = 0
        self.images_seen = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        self.images_seen += len(x)
        evidence = (x * self.region).flatten(1).sum(1)
        return torch.stack([torch.zeros_like(evidence), evidence], dim=1)


def _setup(spatial: tuple[int, ...]):
    region = torch.zeros(1, 1, *spatial)
    region[(0, 0, *[slice(0, 2)] * len(spatial))] = 1.0
    images = torch.ones(2, 1, *spatial)
    good = region.expand(2, 1, *spatial).clone()  # ranks the region first
    bad = 1.0 - good  # ranks the region last
    return LinearEvidence(region), images, good, bad


@pytest.mark.parametrize("spatial", [(4, 4), (4, 4, 4)])
def test_deletion_hand_computed_curve(spatial: tuple[int, ...]) -> None:
    model, images, good, _ = _setup(spatial)
    n_pixels = int(np.prod(spatial))
    n_region = 2 ** len(spatial)
    result = deletion_insertion(
        model, images, good, mode="deletion", steps=n_pixels, target=torch.tensor([1, 1])
    )
    # After removing k pixels of the region, the class-1 logit is n_region - k: probability sigmoid(n - k).
    remaining = torch.clamp(n_region - torch.arange(n_pixels + 1), min=0).float()
    expected = torch.sigmoid(remaining)
    torch.testing.assert_close(result.curves, expected.expand(2, -1))
    torch.testing.assert_close(result.auc, torch.trapezoid(expected, dx=1.0 / n_pixels).expand(2))
    assert model.calls == 1  # every image and step in one forward pass


def test_faithful_map_beats_the_inverted_map_on_both_curves() -> None:
    model, images, good, bad = _setup((8, 8))
    target = torch.tensor([1, 1])
    deletion_good = deletion_insertion(model, images, good, "deletion", steps=16, target=target).auc
    deletion_bad = deletion_insertion(model, images, bad, "deletion", steps=16, target=target).auc
    insertion_good = deletion_insertion(model, images, good, "insertion", steps=16, target=target).auc
    insertion_bad = deletion_insertion(model, images, bad, "insertion", steps=16, target=target).auc
    assert (deletion_good < deletion_bad).all() and (insertion_good > insertion_bad).all()


def test_chunks_and_resized_maps_give_the_same_curves() -> None:
    model, images, good, _ = _setup((8, 8))
    small = good[:, :, ::2, ::2]  # a 4x4 map is upsampled to the 8x8 image
    whole = deletion_insertion(model, images, small, steps=8, target=torch.tensor([1, 1]))
    model.calls = 0
    chunked = deletion_insertion(model, images, small, steps=8, target=torch.tensor([1, 1]), batch_size=5)
    torch.testing.assert_close(whole.curves, chunked.curves)
    assert model.calls == 4  # 2 x 7 interior steps + 2 unchanged + 1 shared zero image, in chunks of 5


def test_default_chunks_cap_the_pixels_per_forward(monkeypatch) -> None:
    # The package attribute of that name is the function: fetch the module itself.
    module = importlib.import_module("monai_xai.metrics.deletion_insertion")
    model, images, good, _ = _setup((8, 8))
    expected = deletion_insertion(model, images, good, steps=4, target=torch.tensor([1, 1]))
    monkeypatch.setattr(module, "MAX_PIXELS_PER_FORWARD", 3 * 64)  # three 8x8 images per forward
    model.calls = 0
    capped = deletion_insertion(model, images, good, steps=4, target=torch.tensor([1, 1]))
    assert model.calls == 3  # 2 x 3 interior steps + 2 unchanged + 1 shared zero image, in forwards of 3
    torch.testing.assert_close(capped.curves, expected.curves)
    with pytest.raises(ValueError, match="batch_size must be at least 1, got 0"):
        deletion_insertion(model, images, good, batch_size=0)


@pytest.mark.parametrize(("baseline", "scored"), [("zero", 2 * 3 + 2 + 1), ("mean", 2 * 5), ("blur", 2 * 5)])
@pytest.mark.parametrize("mode", ["deletion", "insertion"])
def test_each_distinct_perturbed_image_is_scored_once(baseline: str, scored: int, mode: str) -> None:
    model, _, good, _ = _setup((8, 8))
    images = torch.rand(2, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    result = deletion_insertion(model, images, good, mode, steps=4, baseline=baseline)
    assert model.images_seen == scored  # zero: one all-zero image for both; others: one baseline each
    # The same points one image and one step at a time.
    reference = perturbation_baseline(images, baseline)
    order = torch.argsort(-good.flatten(1), dim=1, stable=True)
    for b in range(2):
        for k, count in enumerate([0, 16, 32, 48, 64]):
            picked = torch.zeros(64, dtype=torch.bool)
            picked[order[b, :count]] = True
            picked = picked.view(1, 8, 8)
            inside, outside = (reference[b], images[b]) if mode == "deletion" else (images[b], reference[b])
            logits = model(torch.where(picked, inside, outside)[None])
            expected = torch.softmax(logits, dim=1)[0, result.target[b]]
            torch.testing.assert_close(result.curves[b, k], expected)


def test_default_target_is_the_predicted_class_and_curve_ends_at_baseline() -> None:
    model, images, good, _ = _setup((4, 4))
    result = deletion_insertion(model, images, good, steps=4)
    assert result.target.tolist() == [1, 1]
    # Everything deleted: the zero image, logits (0, 0), probability 0.5.
    torch.testing.assert_close(result.curves[:, -1], torch.full((2,), 0.5))
    insertion = deletion_insertion(model, images, good, mode="insertion", steps=4)
    torch.testing.assert_close(insertion.curves[:, 0], torch.full((2,), 0.5))


def test_baselines_and_bad_arguments() -> None:
    images = torch.arange(32.0).view(2, 1, 4, 4)
    assert perturbation_baseline(images, "zero").abs().sum() == 0
    torch.testing.assert_close(perturbation_baseline(images, "mean")[1], torch.full((1, 4, 4), 23.5))
    blurred = perturbation_baseline(images, "blur", blur_sigma=1.0)
    assert blurred.shape == images.shape and blurred.std() < images.std()
    with pytest.raises(ValueError, match="unknown baseline 'noise'"):
        perturbation_baseline(images, "noise")
    model = LinearEvidence(torch.ones(1, 1, 4, 4))
    with pytest.raises(ValueError, match="unknown mode 'both'"):
        deletion_insertion(model, images, images, mode="both")
    with pytest.raises(ValueError, match="3 saliency maps for 2 images"):
        deletion_insertion(model, images, torch.rand(3, 1, 4, 4))


def test_quadratic_weighted_kappa_hand_computed() -> None:
    # Confusion [[2, 0], [1, 1]] on 4 samples: observed weighted disagreement 1/4; marginals (3, 1) and
    # (2, 2) give expected disagreement (3*2 + 1*2) / 16 = 1/2; kappa = 1 - (1/4) / (1/2) = 0.5.
    assert quadratic_weighted_kappa([0, 0, 1, 1], [0, 0, 0, 1]) == pytest.approx(0.5)
    assert quadratic_weighted_kappa([0, 1, 2, 3], [0, 1, 2, 3]) == pytest.approx(1.0)
    # Three grades: a two-grade miss costs four times a one-grade miss.
    one_off = quadratic_weighted_kappa([0, 1, 2, 2], [1, 1, 2, 2], num_classes=3)
    two_off = quadratic_weighted_kappa([0, 1, 2, 2], [2, 1, 2, 2], num_classes=3)
    assert two_off < one_off < 1.0
    assert quadratic_weighted_kappa([2, 2], [2, 2]) == 1.0
    with pytest.raises(ValueError, match="grades must lie in"):
        quadratic_weighted_kappa([0, 3], [0, 1], num_classes=3)


def test_faithfulness_report_scores_each_method(tmp_path) -> None:
    from ignite.engine import Engine

    from monai_xai.handlers import FaithfulnessReportHandler
    from monai_xai.networks import AttentionBranchNetwork, split_network_output
    from monai_xai.visualize import CAMSaliency

    torch.manual_seed(0)
    net = AttentionBranchNetwork(num_classes=2).eval()
    images = torch.rand(3, 1, 32, 32)
    with torch.no_grad():
        output = {"image": images, **split_network_output(net(images))}
    report = FaithfulnessReportHandler(
        net,
        tmp_path,
        methods=["attention", "gradcam"],
        saliency_fns={"gradcam": CAMSaliency(net, "gradcam")},
        steps=4,
        baseline="zero",
        max_images=4,
    )
    engine = Engine(lambda e, b: output)
    report.attach(engine)
    batches = [{"source": ["s0", "s1", "s2"]}, {"source": ["s3", "s4", "s5"]}]
    engine.run(batches, max_epochs=1)  # two batches of 3, capped at 4 images: the second one cut to its first
    result = report.results
    assert result["n_images"] == 4 and set(result) >= {"attention", "gradcam"}
    for method in ("attention", "gradcam"):
        assert 0.0 <= result[method]["deletion_auc"] <= 1.0 and 0.0 <= result[method]["insertion_auc"] <= 1.0
    assert (tmp_path / "faithfulness.json").is_file() and (tmp_path / "deletion_insertion.png").is_file()
    with open(tmp_path / "faithfulness_per_image.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [(row["method"], row["source"]) for row in rows] == [
        (method, f"s{i}") for method in ("attention", "gradcam") for i in range(4)
    ]
    for method in ("attention", "gradcam"):
        for key in ("deletion_auc", "insertion_auc"):
            per_image = [float(row[key]) for row in rows if row["method"] == method]
            assert np.mean(per_image) == pytest.approx(result[method][key], abs=1e-6)
            low, high = result[method][f"{key}_ci95"]
            assert min(per_image) - 1e-6 <= low <= result[method][key] <= high <= max(per_image) + 1e-6
    with pytest.raises(ValueError, match="methods \\['rise'\\] have no saliency function"):
        FaithfulnessReportHandler(net, tmp_path, methods=["rise"])
