"""Adversarial losses, selected by name: least squares (LSGAN) or binary cross-entropy.

Each takes a discriminator's raw output (patch logits) and whether it should be judged real, and averages
over every patch.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch
import torch.nn.functional as F
from monai.utils import look_up_option
from torch import nn

from monai_xai.errors import InputError

__all__ = ["GAN_LOSSES", "BCEGANLoss", "GANLoss", "LeastSquaresGANLoss", "get_gan_loss"]


class GANLoss(nn.Module, ABC):
    """Base: ``loss(logits, real)`` compares ``logits`` with an all-``real`` target."""

    @abstractmethod
    def criterion(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Mean loss of ``logits`` against the all-real or all-fake ``target``."""

    def forward(self, logits: torch.Tensor, real: bool) -> torch.Tensor:
        target = torch.full_like(logits, 1.0 if real else 0.0)
        return self.criterion(logits.float(), target.float())


class LeastSquaresGANLoss(GANLoss):
    """Mean squared distance to 1 (real) or 0 (fake): gradients do not vanish for confident fakes."""

    def criterion(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.mse_loss(logits, target)


class BCEGANLoss(GANLoss):
    """Binary cross-entropy on logits (the original GAN objective, non-saturating for the generator)."""

    def criterion(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.binary_cross_entropy_with_logits(logits, target)


GAN_LOSSES: dict[str, type[GANLoss]] = {"lsgan": LeastSquaresGANLoss, "bce": BCEGANLoss}


def get_gan_loss(name: str) -> GANLoss:
    """The adversarial loss called ``name``: ``"lsgan"`` or ``"bce"``.

    Args:
        name: a key of :data:`GAN_LOSSES` (the bundles' ``gan_loss`` key).

    Raises:
        InputError: for an unknown ``name``, naming the ``gan_loss`` key and the valid names.
    """
    loss_type = look_up_option(name, GAN_LOSSES, default=None)
    if loss_type is None:
        raise InputError("gan_loss", f"unknown adversarial loss {name!r}; valid: {', '.join(GAN_LOSSES)}")
    return loss_type()
