"""Right for the Right Reasons (RRR; Ross, Hughes and Doshi-Velez, IJCAI 2017): cross-entropy plus a
penalty on the input gradients outside an annotation mask, the reference for attention supervision.

Two penalties: the gradient of log p(y|x), the true class alone (``"label"``, what the bundle always used),
and the gradient of the log-probabilities summed over the classes (``"summed"``), the paper's own
formulation, which constrains the explanation of every class and not only the labelled one."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from monai.utils import look_up_option
from torch import nn

from monai_xai.losses.class_weighted import WeightedCrossEntropy

__all__ = ["RRR_PENALTIES", "RightForRightReasonsLoss"]

#: What the penalty differentiates: ``"label"`` log p(y|x); ``"summed"`` sum over classes k of log p(k|x).
RRR_PENALTIES = ("label", "summed")


class RightForRightReasonsLoss(nn.Module):
    """CE + ``lam`` * mean over samples of sum over pixels of ((1 - mask) * d L / dx)^2, where L is
    log p(y|x) (``penalty="label"``) or the sum over classes of log p(k|x) (``penalty="summed"``, as in
    Ross et al.).

    The penalty needs the gradient of the log-probability of the true class with respect to the input, so
    :attr:`needs_inputs` asks the trainer to make the inputs require gradients and to pass them as
    ``inputs``; the penalty is differentiated again (double back-propagation). Samples without a mask
    (``has_mask`` False) get no penalty: nothing says where their right reasons are.

    Args:
        lam: weight of the gradient penalty (lambda in the paper).
        class_weights: per-class weights of the cross-entropy (class balance), or None; the penalty's
            log-probability is not weighted.
        penalty: ``"label"`` or ``"summed"`` (:data:`RRR_PENALTIES`).
    """

    #: The trainer passes the network's input tensor (with ``requires_grad``) as ``inputs``.
    needs_inputs = True

    def __init__(
        self, lam: float = 0.1, class_weights: Sequence[float] | None = None, penalty: str = "label"
    ) -> None:
        super().__init__()
        if lam < 0:
            raise ValueError(f"lam must be non-negative, got {lam}")
        self.penalty = look_up_option(penalty, RRR_PENALTIES, default=None)
        if self.penalty is None:
            raise ValueError(f"penalty must be one of {', '.join(RRR_PENALTIES)}, got {penalty!r}")
        self.lam = float(lam)
        self.cross_entropy = WeightedCrossEntropy(class_weights)

    def forward(
        self,
        output: torch.Tensor,
        target: torch.Tensor,
        mask: torch.Tensor | None = None,
        has_mask: torch.Tensor | None = None,
        inputs: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """
        Args:
            output: (B, num_classes) logits computed from ``inputs``.
            target: (B,) or (B, 1) class indices.
            mask: (B, 1, *spatial) annotation, 1 where the right reasons are, at the input's size.
            has_mask: (B,) bool marking samples whose mask is real; all when None.
            inputs: the (B, C, *spatial) network input, with ``requires_grad``.
        """
        if mask is None or inputs is None:
            raise ValueError("the RRR loss needs the annotation masks and the network inputs")
        if not inputs.requires_grad:
            raise ValueError("the RRR loss needs inputs that require gradients (inputs.requires_grad_())")
        labels = torch.as_tensor(target, device=output.device).reshape(-1).long()
        cross_entropy = self.cross_entropy(output, labels)
        log_probs = F.log_softmax(output, dim=1)
        if self.penalty == "summed":  # every class's log-probability, as in the paper
            log_p = log_probs.sum()
        else:
            log_p = log_probs.gather(1, labels[:, None]).sum()
        (gradient,) = torch.autograd.grad(log_p, inputs, create_graph=True)
        outside = 1.0 - torch.as_tensor(mask, device=inputs.device).to(gradient.dtype)
        if outside.shape[2:] != gradient.shape[2:]:
            raise ValueError(
                f"mask of spatial size {tuple(outside.shape[2:])} does not match the input's "
                f"{tuple(gradient.shape[2:])}"
            )
        per_sample = (outside * gradient).pow(2).flatten(1).sum(dim=1)
        if has_mask is not None:
            per_sample = per_sample * torch.as_tensor(has_mask, device=inputs.device).reshape(-1).to(
                gradient.dtype
            )
        penalty = per_sample.mean()
        total = cross_entropy + self.lam * penalty
        parts = {"loss": total, "loss_ce": cross_entropy, "loss_rrr": penalty}
        return total, {name: float(value.detach()) for name, value in parts.items()}
