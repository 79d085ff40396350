"""CenterNet pieces: target encoding/decoding, focal loss, network shapes, backbone freezing and loading."""

from __future__ import annotations

import math

import pytest
import torch

from monai_xai.detection import decode_centernet, detection_collate, encode_centernet_targets, gaussian_radius
from monai_xai.errors import InputError
from monai_xai.losses.centernet_loss import CenterNetLoss, penalty_reduced_focal_loss
from monai_xai.losses.simsiam_loss import SimSiamLoss
from monai_xai.networks.nets.centernet import CenterNet, init_backbone
from monai_xai.networks.nets.simsiam import SimSiam, save_encoder


def test_encode_decode_round_trip():
    boxes = [torch.tensor([[10.0, 12.0, 30.0, 40.0], [40.0, 5.0, 61.0, 19.0]]), torch.zeros(0, 4)]
    labels = [torch.tensor([1, 0]), torch.zeros(0, dtype=torch.long)]
    t = encode_centernet_targets(boxes, labels, num_classes=2, output_size=(16, 16), stride=4)
    assert t["heatmap"].shape == (2, 2, 16, 16) and t["mask"].sum() == 2
    assert t["heatmap"][0, 1, 6, 5] == 1 and t["heatmap"][0, 0, 3, 12] == 1  # centres (20, 26) and (50.5, 12)
    assert t["heatmap"][1].abs().sum() == 0  # an image without boxes is all background
    logits = torch.logit(t["heatmap"].clamp(1e-6, 1 - 1e-6))
    decoded = decode_centernet(logits, t["size"], t["offset"], stride=4, score_threshold=0.5)
    order = decoded[0]["labels"].argsort(descending=True)
    torch.testing.assert_close(decoded[0]["boxes"][order], boxes[0], atol=1e-4, rtol=0)
    assert decoded[0]["labels"][order].tolist() == [1, 0] and len(decoded[1]["boxes"]) == 0
    negative = decode_centernet(logits, -t["size"], t["offset"], stride=4, score_threshold=0.5)[0]["boxes"]
    assert (negative[:, 2:] >= negative[:, :2]).all()  # a head's negative sizes give empty, valid boxes


def test_gaussian_radius_and_peak_shape():
    # case 3 of CenterNet: (-b + sqrt(b^2 - 4ac)) / 2 with a = 2.8, b = -28, c = -30
    assert gaussian_radius(10, 10) == pytest.approx((-28 + math.sqrt(28**2 + 4 * 2.8 * 30)) / 2)
    t = encode_centernet_targets(
        [torch.tensor([[0.0, 0.0, 40.0, 40.0]])], [torch.tensor([0])], 1, (16, 16), 4
    )
    heat = t["heatmap"][0, 0]
    assert heat[5, 5] == 1 and 0 < heat[5, 6] < 1 and heat[5, 6] == heat[6, 5] == heat[4, 5]


def test_focal_loss_hand_computed():
    logits = torch.zeros(1, 1, 1, 3)  # p = 0.5 everywhere
    target = torch.tensor([1.0, 0.5, 0.0]).view(1, 1, 1, 3)
    # positive: (1 - .5)^2 ln 2; near-peak negative: (1 - .5)^4 .5^2 ln 2; far negative: .5^2 ln 2; / 1 peak
    expected = (0.25 + 0.0625 * 0.25 + 0.25) * math.log(2)
    assert penalty_reduced_focal_loss(logits, target).item() == pytest.approx(expected, rel=1e-6)


def test_centernet_loss_parts_and_perfect_regression():
    t = encode_centernet_targets([torch.tensor([[8.0, 8.0, 24.0, 20.0]])], [torch.tensor([0])], 1, (8, 8), 4)
    out = {
        "heatmap": torch.full((1, 1, 8, 8), -5.0),
        "size": t["size"].clone(),
        "offset": t["offset"].clone(),
    }
    loss, parts = CenterNetLoss()(out, t)
    assert (
        parts["loss_size"] == 0
        and parts["loss_offset"] == 0
        and loss.item() == pytest.approx(parts["loss_heatmap"])
    )
    out["size"] = out["size"] + 1.0
    assert CenterNetLoss()(out, t)[1]["loss_size"] == pytest.approx(2.0)  # |1| + |1| at one box


def test_centernet_shapes_and_stride():
    net = CenterNet(num_classes=2).eval()
    out = net(torch.rand(2, 1, 64, 96))
    assert out["heatmap"].shape == (2, 2, 16, 24) and out["size"].shape == out["offset"].shape == (
        2,
        2,
        16,
        24,
    )
    assert torch.sigmoid(out["heatmap"]).mean() < 0.2  # prior bias: few positives at the start


def test_freeze_keeps_batchnorm_stats_and_gradients():
    net = CenterNet(num_classes=1)
    net.backbone.freeze(5)
    net.train()
    assert not net.backbone.bn1.training and not net.backbone.layer4[0].bn1.training
    assert not any(p.requires_grad for p in net.backbone.parameters())
    net.backbone.freeze(4)  # layer4 unfrozen first
    assert all(p.requires_grad for p in net.backbone.layer4.parameters())
    assert not any(p.requires_grad for p in net.backbone.layer3.parameters())
    assert net.backbone.layer4[0].bn1.training and not net.backbone.layer3[0].bn1.training
    with pytest.raises(ValueError, match="n_stages"):
        net.backbone.freeze(6)


def test_simsiam_loss_and_checkpoint_into_detector(tmp_path):
    model = SimSiam(proj_dim=32, pred_dim=8)
    x = torch.rand(4, 1, 32, 32)
    out = model(x, x.flip(-1))
    loss = SimSiamLoss()(out)
    assert -1 <= loss.item() <= 1
    loss.backward()
    assert model.encoder.conv1.weight.grad is not None
    same = {"p1": out["z1"], "p2": out["z2"], "z1": out["z2"], "z2": out["z1"]}
    assert SimSiamLoss()(same).item() == pytest.approx(-1.0, abs=1e-5)
    path = save_encoder(model, tmp_path / "encoder.pt")
    detector = init_backbone(CenterNet(num_classes=2), "simsiam", path)
    torch.testing.assert_close(detector.backbone.conv1.weight, model.encoder.conv1.weight)
    with pytest.raises(InputError, match="encoder.pt: checkpoint does not fit ResNetEncoder"):
        init_backbone(CenterNet(num_classes=2, backbone="resnet34"), "simsiam", path)
    with pytest.raises(ValueError, match="unknown backbone init 'imagenet'"):
        init_backbone(CenterNet(num_classes=2), "imagenet")


def test_collate_keeps_box_lists():
    items = [
        {"image": torch.zeros(1, 8, 8), "boxes": torch.ones(2, 4), "labels": torch.tensor([0, 1])},
        {"image": torch.zeros(1, 8, 8), "boxes": torch.zeros(0, 4), "labels": torch.zeros(0)},
    ]
    batch = detection_collate(items)
    assert batch["image"].shape == (2, 1, 8, 8) and [len(b) for b in batch["boxes"]] == [2, 0]
    assert batch["labels"][1].dtype == torch.long
