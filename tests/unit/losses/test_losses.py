"""AttentionMapLoss and ABNLoss against hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch

from monai_xai.losses import ABN_LOSS_MODES, ABNLoss, AttentionMapLoss
from monai_xai.networks import ABNOutput


def test_map_loss_area_resizes_teacher() -> None:
    amap = torch.tensor([[[[0.5, 0.0], [1.0, 0.25]]]])
    mask = torch.zeros(1, 1, 4, 4)
    mask[0, 0, :2, :2] = 1.0  # top-left cell fully inside
    mask[0, 0, 2, 2] = 1.0  # a quarter of the bottom-right cell
    # teacher [[1, 0], [0, 0.25]] -> squared errors 0.25, 0, 1, 0
    loss = AttentionMapLoss()(amap, mask)
    assert loss.item() == pytest.approx(1.25 / 4)


def test_map_loss_accepts_mask_without_channel() -> None:
    amap = torch.full((2, 1, 2, 2), 0.5)
    assert AttentionMapLoss()(amap, torch.ones(2, 2, 2)).item() == pytest.approx(0.25)


def test_map_loss_excludes_samples_without_mask() -> None:
    amap = torch.stack([torch.full((1, 2, 2), 0.5), torch.zeros(1, 2, 2)])
    mask = torch.stack([torch.ones(1, 2, 2), torch.ones(1, 2, 2)])
    loss_fn = AttentionMapLoss()
    assert loss_fn(amap, mask).item() == pytest.approx((0.25 + 1.0) / 2)
    assert loss_fn(amap, mask, torch.tensor([True, False])).item() == pytest.approx(0.25)
    assert loss_fn(amap, mask, torch.tensor([False, True])).item() == pytest.approx(1.0)


def test_map_loss_without_any_mask_is_zero_with_grad() -> None:
    amap = torch.rand(2, 1, 2, 2, requires_grad=True)
    loss = AttentionMapLoss()(amap, torch.zeros(2, 1, 8, 8), torch.tensor([False, False]))
    assert loss.item() == 0.0 and loss.requires_grad
    loss.backward()
    assert torch.equal(amap.grad, torch.zeros_like(amap))


def test_map_loss_rejects_mismatched_mask() -> None:
    with pytest.raises(ValueError, match="does not match"):
        AttentionMapLoss()(torch.rand(2, 1, 2, 2), torch.rand(3, 1, 2, 2))


def _output(requires_grad: bool = False) -> ABNOutput:
    # attention logits [0, 0] -> CE ln 2; perception logits [0, ln 3] with target 1 -> CE -ln(3/4)
    attention_logits = torch.zeros(1, 2, requires_grad=requires_grad)
    perception_logits = torch.tensor([[0.0, math.log(3.0)]], requires_grad=requires_grad)
    attention_map = torch.full((1, 1, 2, 2), 0.5, requires_grad=requires_grad)
    return ABNOutput(attention_logits, perception_logits, attention_map)


L_ATT, L_PER, L_MAP = math.log(2.0), -math.log(0.75), 0.25
TARGET, MASK = torch.tensor([1]), torch.ones(1, 1, 8, 8)


@pytest.mark.parametrize(
    "mode, kwargs, expected",
    [
        ("plain", {}, L_ATT + L_PER),
        ("conventional", {"gamma": 2.0}, L_ATT + L_PER + 2.0 * L_MAP),
        ("dynamic", {"alpha": 0.9}, 0.1 * L_PER + 0.9 * (L_MAP + L_ATT)),
        ("dynamic", {"alpha": 0.1}, 0.9 * L_PER + 0.1 * (L_MAP + L_ATT)),
    ],
)
def test_abn_loss_modes(mode: str, kwargs: dict, expected: float) -> None:
    total, parts = ABNLoss(mode, **kwargs)(_output(), TARGET, MASK)
    assert total.item() == pytest.approx(expected, rel=1e-6)
    assert parts == pytest.approx({"loss": expected, "loss_att": L_ATT, "loss_per": L_PER, "loss_map": L_MAP})
    assert all(isinstance(v, float) for v in parts.values())


def test_dynamic_loss_follows_alpha_attribute() -> None:
    loss = ABNLoss("dynamic")
    loss.alpha = 0.1
    total, _ = loss(_output(), TARGET.view(1, 1), MASK)
    assert total.item() == pytest.approx(0.9 * L_PER + 0.1 * (L_MAP + L_ATT), rel=1e-6)
    with pytest.raises(ValueError, match="alpha"):
        loss.alpha = 1.5


def test_masked_samples_only_in_map_term() -> None:
    out = ABNOutput(torch.zeros(2, 2), torch.zeros(2, 2), torch.stack([torch.full((1, 2, 2), 0.5)] * 2))
    mask = torch.stack([torch.ones(1, 2, 2), torch.zeros(1, 2, 2)])
    _, parts = ABNLoss("conventional")(out, torch.tensor([0, 1]), mask, torch.tensor([True, False]))
    assert parts["loss_map"] == pytest.approx(0.25)
    _, parts = ABNLoss("conventional")(out, torch.tensor([0, 1]), mask, torch.tensor([False, False]))
    assert parts["loss_map"] == 0.0


def test_plain_mode_without_masks_and_gradients() -> None:
    out = _output(requires_grad=True)
    total, parts = ABNLoss("plain")(out, TARGET)
    assert "loss_map" not in parts
    total.backward()
    assert out.attention_logits.grad is not None and out.perception_logits.grad is not None
    out = _output(requires_grad=True)
    ABNLoss("dynamic")(out, TARGET, MASK)[0].backward()
    assert out.attention_map.grad.abs().sum() > 0


def test_bad_mode_and_missing_mask() -> None:
    assert ABN_LOSS_MODES == ("plain", "conventional", "dynamic")
    with pytest.raises(ValueError, match="plain, conventional, dynamic"):
        ABNLoss("adaptive")
    with pytest.raises(ValueError, match="needs teacher masks"):
        ABNLoss("conventional")(_output(), TARGET)
