"""Adversarial losses against hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch

from monai_xai.losses import GAN_LOSSES, BCEGANLoss, LeastSquaresGANLoss, get_gan_loss


def test_least_squares_targets_one_and_zero() -> None:
    logits = torch.tensor([[[[0.5, 1.0], [0.0, 2.0]]]])
    loss = LeastSquaresGANLoss()
    assert loss(logits, True).item() == pytest.approx((0.25 + 0 + 1 + 1) / 4)
    assert loss(logits, False).item() == pytest.approx((0.25 + 1 + 0 + 4) / 4)


def test_bce_on_logits() -> None:
    logits = torch.tensor([[0.0, 2.0]])
    expected_real = (math.log(2) + math.log(1 + math.exp(-2))) / 2
    expected_fake = (math.log(2) + math.log(1 + math.exp(2))) / 2
    assert BCEGANLoss()(logits, True).item() == pytest.approx(expected_real, rel=1e-5)
    assert BCEGANLoss()(logits, False).item() == pytest.approx(expected_fake, rel=1e-5)


def test_selected_by_name_and_unknown_name_lists_valid_ones() -> None:
    assert isinstance(get_gan_loss("lsgan"), LeastSquaresGANLoss)
    assert isinstance(get_gan_loss("bce"), BCEGANLoss)
    with pytest.raises(ValueError, match="lsgan"):
        get_gan_loss("wgan")
    assert set(GAN_LOSSES) == {"lsgan", "bce"}


def test_half_precision_logits_give_float_loss_with_grad() -> None:
    logits = torch.zeros(2, 1, 3, 3, dtype=torch.bfloat16, requires_grad=True)
    loss = get_gan_loss("lsgan")(logits, True)
    assert loss.dtype == torch.float32
    loss.backward()
    assert logits.grad is not None
