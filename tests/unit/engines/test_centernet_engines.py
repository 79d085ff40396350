"""Detection engines on tiny synthetic batches: both detectors train a step and report COCO-order boxes."""

from __future__ import annotations

import torch

from monai_xai.detection import detection_collate
from monai_xai.engines import CenterNetEvaluator, CenterNetTrainer, RetinaNetEvaluator, RetinaNetTrainer
from monai_xai.losses import CenterNetLoss
from monai_xai.networks import CenterNet, retinanet_detector


def _batches():
    items = [
        {
            "image": torch.rand(1, 64, 64),
            "boxes": torch.tensor([[8.0, 16.0, 40.0, 32.0]]),
            "labels": torch.tensor([1]),
        },
        {
            "image": torch.rand(1, 64, 64),
            "boxes": torch.zeros(0, 4),
            "labels": torch.zeros(0, dtype=torch.long),
        },
    ]
    return [detection_collate(items)]


def _train_and_eval(net, trainer_cls, evaluator_cls, loss=None):
    before = [p.detach().clone() for p in net.parameters()]
    opt = torch.optim.SGD(net.parameters(), lr=0.01)
    trainer = trainer_cls(
        device="cpu",
        max_epochs=1,
        train_data_loader=_batches(),
        network=net,
        optimizer=opt,
        loss_function=loss,
    )
    trainer.run()
    assert trainer.state.output["loss_parts"]["loss"] > 0
    assert any(not torch.equal(a, b) for a, b in zip(before, net.parameters()))
    evaluator = evaluator_cls(device="cpu", val_data_loader=_batches(), network=net, top_k=5)
    evaluator.run()
    return trainer.state.output, evaluator.state.output["detections"]


def test_centernet_engines():
    net = CenterNet(num_classes=2, neck_channels=(16, 16, 16), head_channels=8)
    out, detections = _train_and_eval(net, CenterNetTrainer, CenterNetEvaluator, CenterNetLoss())
    assert {"loss_heatmap", "loss_size", "loss_offset"} <= set(out["loss_parts"])
    assert len(detections) == 2 and detections[0]["boxes"].shape == (5, 4)


def test_retinanet_engines_swap_box_axes():
    net = retinanet_detector(num_classes=2, score_thresh=0.0)
    out, detections = _train_and_eval(net, RetinaNetTrainer, RetinaNetEvaluator)
    assert {"loss_classification", "loss_box_regression"} <= set(out["loss_parts"])
    boxes = detections[0]["boxes"]
    assert len(boxes) <= 5 and (boxes[:, 2] >= boxes[:, 0]).all()
    evaluator = RetinaNetEvaluator(device="cpu", val_data_loader=_batches(), network=net.eval(), top_k=5)
    with torch.no_grad():
        image = _batches()[0]["image"]
        raw = net(image)[0]["boxes"][:5]  # MONAI's array order: rows first
        torch.testing.assert_close(evaluator.detect(image)[0]["boxes"], raw[:, [1, 0, 3, 2]])
