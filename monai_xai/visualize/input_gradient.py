"""Input-gradient saliency: the explanation a "Right for the Right Reasons" model is trained to keep on the
annotation, so the same map shows what an RRR-trained classifier looks at."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["InputGradientSaliency"]


class InputGradientSaliency:
    """|d log p(c|x) / dx| summed over channels, per image scaled to a maximum of 1, shape (B, 1, *spatial).

    The gradient of the log-probability (not the logit) is what
    :class:`~monai_xai.losses.RightForRightReasonsLoss` penalises outside the mask. One forward and one
    backward per batch, in float32 and eval mode; each image is scored for ``class_idx`` (default: its
    predicted class).
    """

    def __init__(self, network: nn.Module):
        self.network = network

    def __call__(self, images: torch.Tensor, class_idx: torch.Tensor | None = None) -> torch.Tensor:
        from monai.networks.utils import eval_mode

        images = images.as_tensor() if hasattr(images, "as_tensor") else images
        images = images.detach().float().requires_grad_(True)
        with eval_mode(self.network), torch.enable_grad():
            output = self.network(images)
            logits = getattr(output, "perception_logits", output)
            log_p = F.log_softmax(logits.float(), dim=1)
            if class_idx is None:
                class_idx = log_p.argmax(dim=1)
            index = torch.as_tensor(class_idx, device=log_p.device).long().view(-1, 1)
            (gradient,) = torch.autograd.grad(log_p.gather(1, index).sum(), images)
        saliency = gradient.abs().sum(dim=1, keepdim=True)
        peak = saliency.flatten(1).amax(dim=1).clamp_min(torch.finfo(saliency.dtype).tiny)
        return saliency / peak.view(-1, *[1] * (saliency.ndim - 1))
