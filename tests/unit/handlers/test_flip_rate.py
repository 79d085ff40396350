"""FlipRateEpochMetric: the flip rate of each direction and their minimum, alone and as the metrics of a
CounterfactualEvaluator that validates a (stub) GAN against a (stub) classifier."""

from __future__ import annotations

import math

import pytest
import torch
from ignite.engine import Engine
from torch import nn

from monai_xai.engines import CounterfactualEvaluator
from monai_xai.handlers import FlipRateEpochMetric
from monai_xai.networks.nets.agcyclegan import Translation


class _Brightness(nn.Module):
    """Stub classifier: class 1 when an image's mean intensity is above 0.5."""

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        mean = images.mean(dim=tuple(range(1, images.ndim)))
        return torch.stack([0.5 - mean, mean - 0.5], dim=1)


class _Shift(nn.Module):
    """Stub GAN: a translation brightens class-0 images by 0.3 and darkens class-1 images by 0.3 (on the
    classifier's [0, 1] scale; 0.6 in the GAN's [-1, 1])."""

    def translate(self, images: torch.Tensor, source: int) -> Translation:
        fake = images + (0.6 if source == 0 else -0.6)
        return Translation(fake, torch.ones_like(images), fake)


def _images(means: list[float]) -> torch.Tensor:
    return torch.tensor(means).view(-1, 1, 1, 1).expand(-1, 1, 4, 4).clone()


def _outputs(pred_after: list[int], source: list[int]) -> dict[str, torch.Tensor]:
    source_class = torch.tensor(source)
    return {
        "pred_after": nn.functional.one_hot(torch.tensor(pred_after), 2).float(),
        "source_class": source_class,
        "target_class": 1 - source_class,
    }


def _run(metric: FlipRateEpochMetric, batches: list[dict]) -> dict:
    engine = Engine(lambda engine, batch: batch)
    metric.attach(engine, "flip")
    return engine.run(batches).metrics


def test_rates_per_direction_over_batches():
    batches = [_outputs([1, 0, 0], [0, 0, 1]), _outputs([1, 0, 1], [0, 1, 1])]
    metrics = _run(FlipRateEpochMetric(prefix="val_"), batches)
    # from 0: 2 of 3 classified as 1; from 1: 2 of 3 classified as 0
    assert metrics["val_flip_rate_from_0"] == pytest.approx(2 / 3)
    assert metrics["val_flip_rate_from_1"] == pytest.approx(2 / 3)
    batches[1] = _outputs([1, 1, 1], [0, 1, 1])
    assert _run(FlipRateEpochMetric(only="flip_rate_min"), batches) == {"flip": pytest.approx(1 / 3)}


def test_a_direction_without_images_has_no_rate():
    metrics = _run(FlipRateEpochMetric(), [_outputs([1, 0], [0, 0])])
    assert metrics["flip_rate_from_0"] == 0.5
    assert math.isnan(metrics["flip_rate_from_1"]) and math.isnan(metrics["flip_rate_min"])


def test_validates_a_gan_with_the_counterfactual_evaluator():
    # class 0: means 0.1, 0.3, 0.4 -> 0.4, 0.6, 0.7 (2 of 3 flip); class 1: 0.6, 0.9 -> 0.3, 0.6 (1 of 2)
    images = _images([0.1, 0.3, 0.4, 0.6, 0.9])
    labels = torch.tensor([0, 0, 0, 1, 1])
    loader = [{"image": images[:3], "label": labels[:3]}, {"image": images[3:], "label": labels[3:]}]
    evaluator = CounterfactualEvaluator(
        device="cpu",
        val_data_loader=loader,
        network=_Brightness(),
        gan=_Shift(),
        source="label",
        key_val_metric={"val_flip_rate_min": FlipRateEpochMetric(only="flip_rate_min")},
        additional_metrics={"val_flip_rate": FlipRateEpochMetric(prefix="val_")},
    )
    evaluator.run()
    metrics = evaluator.state.metrics
    assert metrics["val_flip_rate_from_0"] == pytest.approx(2 / 3)
    assert metrics["val_flip_rate_from_1"] == pytest.approx(1 / 2)
    assert metrics["val_flip_rate_min"] == pytest.approx(1 / 2)
    assert evaluator.state.best_metric == pytest.approx(1 / 2)  # the key metric: higher is better
