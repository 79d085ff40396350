"""Every engine gets its batch from ``prepare_batch`` and its prediction from ``inferer``, as MONAI's do.

A config may pass both (``"prepare_batch": ...``, ``"inferer": ...``); an engine that moved the batch itself
or called the network directly would ignore them silently. Each test runs one iteration on tiny networks
with a counting ``prepare_batch`` and ``inferer`` and checks that both were called.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch
from monai.engines.utils import PrepareBatch, PrepareBatchExtraInput, default_prepare_batch
from monai.inferers import SimpleInferer

from monai_xai.detection import detection_collate
from monai_xai.engines import (
    AGCycleGANTrainer,
    AttentionEvaluator,
    AttentionSupervisedTrainer,
    CenterNetEvaluator,
    CenterNetTrainer,
    ClassifierGuidedAGCycleGANTrainer,
    CounterfactualEvaluator,
    PrepareBatchPair,
    PrepareBatchWithBoxes,
    PrepareBatchWithMasks,
    RetinaNetEvaluator,
    RetinaNetTrainer,
    SimSiamTrainer,
)
from monai_xai.losses import CenterNetLoss, SimSiamLoss, get_classifier_loss, get_gan_loss
from monai_xai.networks import CenterNet, get_classifier, retinanet_detector
from monai_xai.networks.nets import AGCycleGAN, PatchDiscriminator, ResNetClassifier, SimSiam


class CountingInferer(SimpleInferer):
    """MONAI's ``SimpleInferer`` that counts its calls."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def __call__(self, inputs: torch.Tensor, network: Callable, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        return super().__call__(inputs, network, *args, **kwargs)


class CountingPrepareBatch(PrepareBatch):
    """Wraps a ``prepare_batch`` and counts its calls."""

    def __init__(self, prepare: Callable) -> None:
        self.prepare, self.calls = prepare, 0

    def __call__(self, batchdata, device=None, non_blocking=False, **kwargs):
        self.calls += 1
        return self.prepare(batchdata, device, non_blocking, **kwargs)


def _classification_batch(size: int = 16) -> dict:
    torch.manual_seed(0)
    return {
        "image": torch.rand(2, 1, size, size),
        "label": torch.tensor([[0], [1]]),
        "mask": (torch.rand(2, 1, size, size) > 0.5).float(),
        "has_mask": torch.tensor([1, 0]),
    }


def _detection_batch() -> dict:
    torch.manual_seed(0)
    one_box = {"boxes": torch.tensor([[8.0, 16.0, 40.0, 32.0]]), "labels": torch.tensor([1])}
    no_box = {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.long)}
    return detection_collate([{"image": torch.rand(1, 64, 64), **boxes} for boxes in (one_box, no_box)])


def _gan() -> AGCycleGAN:
    torch.manual_seed(0)
    return AGCycleGAN(ResNetClassifier(), decoder_widths=(4, 4, 8, 8, 8))


def _run(engine_type: type, prepare: Callable, **kwargs) -> tuple[CountingPrepareBatch, CountingInferer, Any]:
    """One iteration of ``engine_type`` with counting ``prepare_batch`` and ``inferer``."""
    prepare_batch, inferer = CountingPrepareBatch(prepare), CountingInferer()
    engine = engine_type(device="cpu", prepare_batch=prepare_batch, inferer=inferer, **kwargs)
    engine.run()
    return prepare_batch, inferer, engine


def test_prepare_batch_with_masks_flattens_labels_and_flags():
    batch = PrepareBatchWithMasks()(_classification_batch(), "cpu")
    assert set(batch) == {"image", "label", "mask", "has_mask"}
    assert batch["label"].dtype == torch.long and batch["label"].tolist() == [0, 1]
    assert batch["has_mask"].dtype == torch.bool and batch["has_mask"].tolist() == [True, False]
    assert set(PrepareBatchWithMasks()({"image": torch.zeros(1, 1, 2, 2)})) == {"image"}


def test_prepare_batch_with_boxes_and_pair_give_monai_tuples():
    images, (boxes, labels) = PrepareBatchWithBoxes()(_detection_batch(), "cpu")
    assert images.shape == (2, 1, 64, 64) and [len(b) for b in boxes] == [1, 0] and labels[0].tolist() == [1]
    x, y = PrepareBatchPair(("a", "b"))({"a": torch.zeros(1), "b": torch.ones(1)}, "cpu")
    assert x.tolist() == [0.0] and y.tolist() == [1.0]


@pytest.mark.parametrize("engine_type", [AttentionSupervisedTrainer, AttentionEvaluator])
def test_attention_engines_use_prepare_batch_and_inferer(engine_type):
    torch.manual_seed(0)
    network = get_classifier("baseline", spatial_dims=2, in_channels=1, num_classes=2)
    if engine_type is AttentionSupervisedTrainer:
        loaders = {
            "max_epochs": 1,
            "train_data_loader": [_classification_batch()],
            "optimizer": torch.optim.SGD(network.parameters(), lr=0.01),
            "loss_function": get_classifier_loss("baseline"),
        }
    else:
        loaders = {"val_data_loader": [_classification_batch()]}
    prepare_batch, inferer, engine = _run(engine_type, PrepareBatchWithMasks(), network=network, **loaders)
    assert (prepare_batch.calls, inferer.calls) == (1, 1)
    assert engine.state.output["pred"].shape == (2, 2)


def test_counterfactual_evaluator_runs_classifier_and_gan_through_the_inferer():
    gan = _gan()
    prepare_batch, inferer, engine = _run(
        CounterfactualEvaluator,
        PrepareBatchWithMasks(),
        val_data_loader=[_classification_batch()],
        network=ResNetClassifier(),
        gan=gan,
    )
    # classifier before and after, one translation per source class (one item of each)
    assert (prepare_batch.calls, inferer.calls) == (1, 4)
    assert engine.state.output["fake"].shape == (2, 1, 16, 16)


@pytest.mark.parametrize("detector", ["centernet", "retinanet"])
def test_detection_engines_use_prepare_batch_and_inferer(detector):
    torch.manual_seed(0)
    if detector == "centernet":
        trainer_type, evaluator_type, loss = CenterNetTrainer, CenterNetEvaluator, CenterNetLoss()
        network = CenterNet(num_classes=2, neck_channels=(16, 16, 16), head_channels=8)
    else:
        trainer_type, evaluator_type, loss = RetinaNetTrainer, RetinaNetEvaluator, None
        network = retinanet_detector(num_classes=2, score_thresh=0.0)
    prepare_batch, inferer, _ = _run(
        trainer_type,
        PrepareBatchWithBoxes(),
        max_epochs=1,
        train_data_loader=[_detection_batch()],
        network=network,
        optimizer=torch.optim.SGD(network.parameters(), lr=0.01),
        loss_function=loss,
    )
    assert (prepare_batch.calls, inferer.calls) == (1, 1)
    prepare_batch, inferer, engine = _run(  # the evaluators' default: MONAI's, the images first
        evaluator_type, default_prepare_batch, val_data_loader=[_detection_batch()], network=network, top_k=5
    )
    assert (prepare_batch.calls, inferer.calls) == (1, 1)
    assert len(engine.state.output["detections"]) == 2


def test_simsiam_trainer_runs_both_views_through_the_inferer():
    torch.manual_seed(0)
    network = SimSiam(proj_dim=8, pred_dim=4)
    batch = {"image": torch.rand(2, 1, 32, 32), "image_2": torch.rand(2, 1, 32, 32)}
    prepare_batch, inferer, engine = _run(
        SimSiamTrainer,
        PrepareBatchExtraInput("image_2"),
        max_epochs=1,
        train_data_loader=[batch],
        network=network,
        optimizer=torch.optim.SGD(network.parameters(), lr=0.01),
        loss_function=SimSiamLoss(),
    )
    assert (prepare_batch.calls, inferer.calls) == (1, 1)
    assert engine.state.output["embedding"].shape == (2, 8)


@pytest.mark.parametrize("trainer_type", [AGCycleGANTrainer, ClassifierGuidedAGCycleGANTrainer])
def test_gan_trainers_run_the_generator_through_the_inferer(trainer_type):
    gan = _gan()
    d_x, d_y = PatchDiscriminator(channels=(4, 8)), PatchDiscriminator(channels=(4, 8))
    extra = {"classifier": ResNetClassifier()} if trainer_type is ClassifierGuidedAGCycleGANTrainer else {}
    prepare_batch, inferer, engine = _run(
        trainer_type,
        PrepareBatchPair(),
        max_epochs=1,
        train_data_loader=[{"x": torch.rand(2, 1, 16, 16), "y": torch.rand(2, 1, 16, 16)}],
        network=gan,
        d_x=d_x,
        d_y=d_y,
        g_optimizer=torch.optim.Adam(gan.generator_parameters(), lr=1e-3),
        d_optimizer=torch.optim.Adam([*d_x.parameters(), *d_y.parameters()], lr=1e-3),
        adversarial_loss=get_gan_loss("lsgan"),
        **extra,
    )
    # the generator's cycle only: discriminators and the guiding classifier are loss terms
    assert (prepare_batch.calls, inferer.calls) == (1, 1)
    assert "loss_g" in engine.state.output["loss_parts"]


@pytest.mark.parametrize(
    "engine_type, default",
    [
        (AttentionSupervisedTrainer, PrepareBatchWithMasks),
        (AttentionEvaluator, PrepareBatchWithMasks),
        (CenterNetTrainer, PrepareBatchWithBoxes),
    ],
)
def test_engines_build_their_default_prepare_batch_and_keep_a_given_one(engine_type, default):
    network = get_classifier("baseline", spatial_dims=2, in_channels=1, num_classes=2)
    kwargs = {"network": network}
    if engine_type is AttentionEvaluator:
        kwargs["val_data_loader"] = [_classification_batch()]
    else:
        optimizer = torch.optim.SGD(network.parameters(), lr=0.1)
        kwargs.update(max_epochs=1, train_data_loader=[], optimizer=optimizer)
        kwargs["loss_function"] = get_classifier_loss("baseline")
    engine = engine_type(device="cpu", **kwargs)
    assert type(engine.prepare_batch) is default
    given = CountingPrepareBatch(default())
    assert engine_type(device="cpu", prepare_batch=given, **kwargs).prepare_batch is given


def test_trainer_augments_the_batch_on_the_device_before_the_input_gradient_loss():
    """``PrepareBatchWithMasks(augmentation=...)``: the rrr loss sees the augmented image (its input gradients
    taken there) and the mask moved with it."""
    seen: dict[str, torch.Tensor] = {}

    def flip(batch: dict) -> dict:
        seen["before"] = batch["image"]
        return {**batch, "image": batch["image"].flip(-1), "mask": batch["mask"].flip(-1)}

    loss = get_classifier_loss("rrr")

    def recording_loss(output, labels, masks, has_mask, inputs):
        seen["mask"], seen["inputs"] = masks, inputs
        return loss(output, labels, masks, has_mask, inputs=inputs)

    recording_loss.needs_inputs = True
    torch.manual_seed(0)
    network = get_classifier("rrr", spatial_dims=2, in_channels=1, num_classes=2)
    batch = _classification_batch()
    trainer = AttentionSupervisedTrainer(
        device="cpu",
        max_epochs=1,
        train_data_loader=[batch],
        network=network,
        optimizer=torch.optim.SGD(network.parameters(), lr=0.01),
        loss_function=recording_loss,
        prepare_batch=PrepareBatchWithMasks(augmentation=flip),
    )
    trainer.run()
    torch.testing.assert_close(seen["before"], batch["image"])
    torch.testing.assert_close(seen["inputs"].detach(), batch["image"].flip(-1))
    torch.testing.assert_close(seen["mask"], batch["mask"].flip(-1))
    assert seen["inputs"].requires_grad
