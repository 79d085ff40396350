"""Losses of monai-xai."""

from __future__ import annotations

from .abn_loss import ABN_LOSS_MODES, ABNLoss, AttentionMapLoss
from .classifier_loss import CLASSIFIER_MODES, ClassifierLoss, get_classifier_loss

__all__ = [
    "ABN_LOSS_MODES",
    "ABNLoss",
    "AttentionMapLoss",
    "CLASSIFIER_MODES",
    "ClassifierLoss",
    "get_classifier_loss",
]
