"""Losses of monai-xai."""

from __future__ import annotations

from monai_xai.utils import CLASSIFIER_MODES, RESNET_MODES

from .abn_loss import ABN_LOSS_MODES, ABNLoss, AttentionMapLoss
from .centernet_loss import CenterNetLoss, penalty_reduced_focal_loss
from .class_weighted import WeightedCrossEntropy
from .classifier_loss import ClassifierLoss, get_classifier_loss
from .gan_loss import GAN_LOSSES, BCEGANLoss, GANLoss, LeastSquaresGANLoss, get_gan_loss
from .multiscale_abn_loss import MultiScaleABNLoss
from .rrr_loss import RRR_PENALTIES, RightForRightReasonsLoss
from .simsiam_loss import SimSiamLoss

__all__ = [
    "CenterNetLoss",
    "SimSiamLoss",
    "penalty_reduced_focal_loss",
    "BCEGANLoss",
    "GAN_LOSSES",
    "GANLoss",
    "LeastSquaresGANLoss",
    "get_gan_loss",
    "ABN_LOSS_MODES",
    "ABNLoss",
    "AttentionMapLoss",
    "CLASSIFIER_MODES",
    "ClassifierLoss",
    "MultiScaleABNLoss",
    "RESNET_MODES",
    "RRR_PENALTIES",
    "RightForRightReasonsLoss",
    "WeightedCrossEntropy",
    "get_classifier_loss",
]
