"""What the demo's shortcut comparison rests on: RRR loss, gated ABN, input gradients, region energy."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from monai_xai.losses import RightForRightReasonsLoss, get_classifier_loss
from monai_xai.metrics import region_energy
from monai_xai.networks import (
    AttentionBranchNetwork,
    GatedAttentionBranchNetwork,
    MidrangeGatedAttentionBranchNetwork,
    ResNetClassifier,
    get_classifier,
)
from monai_xai.visualize import InputGradientSaliency, get_saliency


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def _linear_model() -> nn.Module:
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 2, bias=False))
    with torch.no_grad():
        model[1].weight.copy_(torch.tensor([[1.0, -2.0, 0.5, 3.0], [0.0, 1.0, -1.0, 2.0]]))
    return model


def test_rrr_loss_matches_hand_computed_linear_case() -> None:
    model = _linear_model()
    x = torch.tensor([[[[0.2, -0.4], [1.0, 0.3]]]], requires_grad=True)
    mask = torch.tensor([[[[1.0, 0.0], [0.0, 1.0]]]])  # right reasons at pixels 0 and 3
    target = torch.tensor([1])
    loss, parts = RightForRightReasonsLoss(lam=2.0)(model(x), target, mask, inputs=x)

    weight = model[1].weight.detach()
    flat = x.detach().flatten()
    p = torch.softmax(weight @ flat, dim=0)
    # d log p_y / dx = w_y - sum_k p_k w_k for a linear model
    grad = weight[1] - p @ weight
    penalty = grad[1] ** 2 + grad[2] ** 2  # the two pixels outside the mask
    ce = -torch.log(p[1])
    assert parts["loss_rrr"] == pytest.approx(float(penalty), rel=1e-5)
    assert parts["loss_ce"] == pytest.approx(float(ce), rel=1e-5)
    assert float(loss.detach()) == pytest.approx(float(ce + 2.0 * penalty), rel=1e-5)
    loss.backward()  # double back-propagation reaches the weights
    assert model[1].weight.grad is not None and model[1].weight.grad.abs().sum() > 0


def test_rrr_penalty_zero_inside_mask_and_for_unmasked_samples() -> None:
    model = _linear_model()
    x = torch.rand(2, 1, 2, 2, requires_grad=True)
    target = torch.tensor([0, 1])
    everywhere = torch.ones(2, 1, 2, 2)
    _, parts = RightForRightReasonsLoss()(model(x), target, everywhere, inputs=x)
    assert parts["loss_rrr"] == 0.0
    nowhere = torch.zeros(2, 1, 2, 2)
    _, with_masks = RightForRightReasonsLoss()(model(x), target, nowhere, inputs=x)
    _, first_only = RightForRightReasonsLoss()(
        model(x), target, nowhere, torch.tensor([True, False]), inputs=x
    )
    assert with_masks["loss_rrr"] > first_only["loss_rrr"] > 0


def test_rrr_loss_refuses_missing_inputs_and_masks() -> None:
    model = _linear_model()
    x = torch.rand(1, 1, 2, 2)
    with pytest.raises(ValueError, match="masks and the network inputs"):
        RightForRightReasonsLoss()(model(x), torch.tensor([0]), None, inputs=x)
    with pytest.raises(ValueError, match="require gradients"):
        RightForRightReasonsLoss()(model(x), torch.tensor([0]), torch.ones(1, 1, 2, 2), inputs=x)


def test_rrr_mode_builds_resnet_and_rrr_loss() -> None:
    assert isinstance(get_classifier("rrr", num_classes=2), ResNetClassifier)
    loss = get_classifier_loss("rrr", rrr_lambda=3.0)
    assert isinstance(loss, RightForRightReasonsLoss) and loss.lam == 3.0 and loss.needs_inputs


def test_trainer_passes_inputs_to_rrr_loss() -> None:
    from monai_xai.engines import AttentionSupervisedTrainer

    network = ResNetClassifier(num_classes=2)
    batches = [
        {
            "image": torch.rand(4, 1, 32, 32),
            "label": torch.tensor([0, 1, 0, 1]),
            "mask": torch.zeros(4, 1, 32, 32),
            "has_mask": torch.ones(4, dtype=torch.bool),
        }
    ]
    trainer = AttentionSupervisedTrainer(
        device="cpu",
        max_epochs=1,
        train_data_loader=batches,
        network=network,
        optimizer=torch.optim.SGD(network.parameters(), lr=0.01),
        loss_function=RightForRightReasonsLoss(1.0),
        amp=True,
    )
    # double back-propagation trains in the default layout, whatever the fast path picks for 2D networks
    assert not trainer.fast_path.channels_last
    assert network.conv1.weight.is_contiguous()
    trainer.run()
    parts = trainer.state.output["loss_parts"]
    assert parts["loss_rrr"] > 0 and parts["loss"] > parts["loss_ce"]


def test_gated_abn_map_resolution_and_gate() -> None:
    net = GatedAttentionBranchNetwork("resnet18", num_classes=2).eval()
    x = torch.rand(2, 1, 64, 64)
    out = net(x)
    assert out.attention_map.shape == (2, 1, 16, 16)
    assert list(dict(net.perception_branch.named_children()))[:3] == ["layer2", "layer3", "layer4"]
    # a closed gate removes everything: the prediction no longer depends on the image
    closed = torch.zeros(1, 1, 16, 16)
    a, b = net(x, closed).perception_logits, net(torch.rand(2, 1, 64, 64), closed).perception_logits
    torch.testing.assert_close(a, b)
    # the study's 1 + M design keeps the features: the prediction still depends on the image
    study = AttentionBranchNetwork("resnet18", num_classes=2).eval()
    closed4 = torch.zeros(1, 1, 4, 4)
    assert not torch.allclose(
        study(x, closed4).perception_logits, study(torch.rand(2, 1, 64, 64), closed4).perception_logits
    )


def test_gated_abn_perception_loss_does_not_move_the_map() -> None:
    net = GatedAttentionBranchNetwork("resnet18", num_classes=2)
    out = net(torch.rand(2, 1, 64, 64))
    F.cross_entropy(out.perception_logits, torch.tensor([0, 1])).backward()
    branch_grads = [p.grad for p in net.attention_branch.parameters()]
    assert all(g is None or g.abs().sum() == 0 for g in branch_grads)
    assert net.features.layer1[0].conv1.weight.grad.abs().sum() > 0
    assert isinstance(get_classifier("dynamic", architecture="abn_gated"), GatedAttentionBranchNetwork)


def test_midrange_gate_keeps_cells_at_or_above_the_midrange_of_each_map() -> None:
    net = MidrangeGatedAttentionBranchNetwork("resnet18", num_classes=2)
    features = torch.ones(2, 3, 2, 2)
    # image 0: range [0.2, 0.8], midrange 0.5; image 1: range [0.1, 0.3], midrange 0.2
    maps = torch.tensor([[[[0.2, 0.5], [0.45, 0.8]]], [[[0.1, 0.3], [0.2, 0.15]]]], requires_grad=True)
    gated = net.weight_features(features, maps)
    expected = torch.tensor([[[0.0, 0.5], [0.0, 0.8]], [[0.0, 0.3], [0.2, 0.0]]])
    torch.testing.assert_close(gated, expected.unsqueeze(1).expand(2, 3, 2, 2))
    # a constant map passes every cell at its value
    constant = net.weight_features(features[:1], torch.full((1, 1, 2, 2), 0.4))
    torch.testing.assert_close(constant, features[:1] * 0.4)
    # the perception loss does not reach the map through the gate
    assert not gated.requires_grad
    midrange = get_classifier("dynamic", architecture="abn_gated_midrange")
    assert isinstance(midrange, MidrangeGatedAttentionBranchNetwork)


def test_input_gradient_saliency_is_the_log_probability_gradient() -> None:
    model = _linear_model()
    x = torch.tensor([[[[0.2, -0.4], [1.0, 0.3]]]])
    maps = InputGradientSaliency(model)(x, torch.tensor([1]))
    weight = model[1].weight.detach()
    grad = (weight[1] - torch.softmax(weight @ x.flatten(), 0) @ weight).abs()
    torch.testing.assert_close(maps.flatten(), grad / grad.max())
    assert maps.shape == (1, 1, 2, 2)
    assert isinstance(get_saliency(model, "input_gradient"), InputGradientSaliency)
    with pytest.raises(ValueError, match="unknown saliency method"):
        get_saliency(model, "occlusion")


def test_region_energy_share_in_a_fixed_region() -> None:
    maps = torch.zeros(2, 1, 4, 4)
    maps[0, 0, 0, 0], maps[0, 0, 3, 3] = 3.0, 1.0  # 3/4 of the energy in the corner
    maps[1, 0, 2, 2] = 5.0  # none in the corner
    region = torch.zeros(1, 1, 4, 4)
    region[0, 0, :2, :2] = 1
    torch.testing.assert_close(region_energy(maps, region), torch.tensor([0.75, 0.0]))
    # maps at a coarser resolution are upsampled to the region
    assert region_energy(torch.ones(1, 1, 2, 2), region).item() == pytest.approx(0.25)
    with pytest.raises(ValueError, match="region must be"):
        region_energy(maps, torch.zeros(2, 1, 4, 4))
