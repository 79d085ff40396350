"""SimSiam's symmetric negative cosine loss with stop-gradient (Chen & He, CVPR 2021)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["SimSiamLoss"]


class SimSiamLoss(nn.Module):
    """``-(cos(p1, sg(z2)) + cos(p2, sg(z1))) / 2``: in [-1, 1], -1 when each prediction matches the other
    view.

    The stop-gradient on ``z`` is what keeps SimSiam from collapsing without negative pairs; it is applied
    here, so a network that forgets to detach cannot bypass it.
    """

    def forward(self, output: dict[str, torch.Tensor]) -> torch.Tensor:
        p1, p2, z1, z2 = output["p1"], output["p2"], output["z1"], output["z2"]
        cos_12 = F.cosine_similarity(p1, z2.detach(), dim=-1).mean()
        cos_21 = F.cosine_similarity(p2, z1.detach(), dim=-1).mean()
        return -(cos_12 + cos_21) / 2
