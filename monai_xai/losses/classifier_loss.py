"""Cross-entropy for plain classifiers, with the call signature of the ABN loss."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from monai.utils import look_up_option
from torch import nn

from monai_xai.errors import InputError
from monai_xai.losses.class_weighted import WeightedCrossEntropy
from monai_xai.utils import CLASSIFIER_MODES

__all__ = ["ClassifierLoss", "get_classifier_loss"]


class ClassifierLoss(nn.Module):
    """Cross-entropy of a plain classifier's logits; masks are accepted and ignored.

    Sharing ``(output, target, mask, has_mask) -> (loss, parts)`` with :class:`ABNLoss` lets one
    trainer run every arm of a comparison.

    Args:
        class_weights: per-class weights of the cross-entropy (class balance), or None.
    """

    def __init__(self, class_weights: Sequence[float] | None = None) -> None:
        super().__init__()
        self.cross_entropy = WeightedCrossEntropy(class_weights)

    def forward(
        self,
        output: torch.Tensor,
        target: torch.Tensor,
        mask: torch.Tensor | None = None,
        has_mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, dict[str, float]]:
        loss = self.cross_entropy(output, target.reshape(-1).long())
        return loss, {"loss": loss.item()}


def get_classifier_loss(
    mode: str,
    gamma: float = 1.0,
    alpha: float = 0.9,
    rrr_lambda: float = 0.1,
    class_weights: Sequence[float] | None = None,
    rrr_penalty: str = "label",
) -> nn.Module:
    """``baseline`` -> :class:`ClassifierLoss`; ``rrr`` -> :class:`RightForRightReasonsLoss` with weight
    ``rrr_lambda`` and penalty ``rrr_penalty`` (``"label"`` or ``"summed"``); an ABN mode -> :class:`ABNLoss`
    in that mode. ``class_weights`` weight every cross-entropy term (attention and perception branches
    alike).

    Args:
        mode: one of ``CLASSIFIER_MODES`` (the bundles' ``mode`` key).
        gamma: weight of the ABN map loss in "conventional" mode.
        alpha: initial weight of the ABN attention terms in "dynamic" mode.
        rrr_lambda: weight of the RRR input-gradient penalty.
        class_weights: per-class cross-entropy weights, or None.
        rrr_penalty: the RRR penalty, ``"label"`` or ``"summed"``.

    Raises:
        InputError: for an unknown ``mode``, naming the ``mode`` key and the valid modes.
    """
    checked = look_up_option(mode, CLASSIFIER_MODES, default=None)
    if checked is None:
        raise InputError("mode", f"unknown mode {mode!r}; valid modes: {', '.join(CLASSIFIER_MODES)}")
    if checked == "baseline":
        return ClassifierLoss(class_weights)
    if checked == "rrr":
        from monai_xai.losses.rrr_loss import RightForRightReasonsLoss

        return RightForRightReasonsLoss(rrr_lambda, class_weights, penalty=rrr_penalty)
    from monai_xai.losses.abn_loss import ABNLoss

    return ABNLoss(checked, gamma=gamma, alpha=alpha, class_weights=class_weights)
