"""PatchGAN discriminator with spectral normalisation, 2D or 3D.

Spectral normalisation bounds each layer's Lipschitz constant, which keeps the adversarial gradients
reaching the generators usable without a gradient penalty.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from monai.networks.layers.factories import Conv
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

__all__ = ["PatchDiscriminator"]


class PatchDiscriminator(nn.Module):
    """Stride-2 4x4 convolutions then a 3x3 one: one real/fake logit per receptive-field patch.

    Args:
        spatial_dims: 2 or 3.
        in_channels: image channels.
        channels: widths of the stride-2 layers; their number sets the patch size.
        use_spectral_norm: wrap every convolution in ``torch.nn.utils.parametrizations.spectral_norm``.
    """

    def __init__(
        self,
        spatial_dims: int = 2,
        in_channels: int = 1,
        channels: Sequence[int] = (16, 32, 64),
        use_spectral_norm: bool = True,
    ) -> None:
        super().__init__()
        conv = Conv[Conv.CONV, spatial_dims]
        wrap = spectral_norm if use_spectral_norm else (lambda module: module)
        layers: list[nn.Module] = []
        previous = in_channels
        for width in channels:
            layers += [wrap(conv(previous, width, kernel_size=4, stride=2, padding=1)), nn.LeakyReLU(0.2)]
            previous = width
        layers.append(wrap(conv(previous, 1, kernel_size=3, padding=1)))
        self.net = nn.Sequential(*layers)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Patch logits, shape (B, 1, *patches)."""
        return self.net(images)
