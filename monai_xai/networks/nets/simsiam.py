"""SimSiam (Chen & He, "Exploring Simple Siamese Representation Learning", CVPR 2021) on a ResNet."""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from monai_xai.networks.nets.resnet_encoder import ResNetEncoder
from monai_xai.utils import atomic_save

__all__ = ["SimSiam", "save_encoder"]


class SimSiam(nn.Module):
    """Encoder + 3-layer projector MLP (``z``) + 2-layer bottleneck predictor (``p``).

    ``forward(x1, x2)`` returns ``{"p1", "p2", "z1", "z2"}`` for two augmented views of the same images;
    :class:`~monai_xai.losses.SimSiamLoss` applies the stop-gradient. The last projector batch norm has no
    affine parameters, as in the paper, so the scale of ``z`` cannot drift.
    """

    def __init__(
        self,
        backbone: str = "resnet18",
        in_channels: int = 1,
        stem: str = "standard",
        proj_dim: int = 512,
        pred_dim: int = 128,
    ) -> None:
        super().__init__()
        self.encoder = ResNetEncoder(backbone, spatial_dims=2, in_channels=in_channels, stem=stem)
        feat = self.encoder.out_channels[-1]
        self.projector = nn.Sequential(
            nn.Linear(feat, proj_dim, bias=False),
            nn.BatchNorm1d(proj_dim),
            nn.ReLU(inplace=True),
            nn.Linear(proj_dim, proj_dim, bias=False),
            nn.BatchNorm1d(proj_dim),
            nn.ReLU(inplace=True),
            nn.Linear(proj_dim, proj_dim, bias=False),
            nn.BatchNorm1d(proj_dim, affine=False),
        )
        self.predictor = nn.Sequential(
            nn.Linear(proj_dim, pred_dim, bias=False),
            nn.BatchNorm1d(pred_dim),
            nn.ReLU(inplace=True),
            nn.Linear(pred_dim, proj_dim),
        )

    def project(self, x: torch.Tensor) -> torch.Tensor:
        """``z`` of one view: the projected, globally pooled ``layer4`` features."""
        return self.projector(self.encoder(x)[-1].mean(dim=(-2, -1)))

    def forward(self, x1: torch.Tensor, x2: torch.Tensor) -> dict[str, torch.Tensor]:
        z1, z2 = self.project(x1), self.project(x2)
        return {"p1": self.predictor(z1), "p2": self.predictor(z2), "z1": z1, "z2": z2}


def save_encoder(network: nn.Module, path: str | os.PathLike) -> Path:
    """Write the encoder's weights (``{"encoder": state_dict, "backbone": name}``) for the detector to load.

    Only rank 0 writes in distributed runs; the write is atomic.
    """
    import ignite.distributed as idist

    path = Path(path)
    if idist.get_rank() == 0:
        encoder = getattr(network, "module", network).encoder
        atomic_save({"encoder": encoder.state_dict(), "backbone": encoder.backbone}, path)
    return path
