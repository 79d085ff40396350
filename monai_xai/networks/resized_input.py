"""A network run on its input resized first: for architectures with a smallest input (DenseNet121 needs
32 px) on smaller images (MedMNIST's 28 px), as the AG-CycleGAN bundle's judge."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

__all__ = ["ResizedInput", "min_input_size"]


def min_input_size(spatial_size: Sequence[int], min_size: int) -> list[int]:
    """``spatial_size`` with every dimension raised to at least ``min_size``: the size ``ResizedInput`` takes.

    Args:
        spatial_size: the images' size per spatial dimension.
        min_size: the network's smallest input per dimension.
    """
    return [max(int(size), int(min_size)) for size in spatial_size]


class ResizedInput(nn.Sequential):
    """``network`` behind ``nn.Upsample(size=size)``.

    A ``Sequential`` of the two, so that its weights are named ``1.*`` as in checkpoints of
    ``torch.nn.Sequential(torch.nn.Upsample(size=size), network)``.

    Args:
        network: the network to run on the resized input.
        size: the input size it gets, per spatial dimension (see :func:`min_input_size`).
    """

    def __init__(self, network: nn.Module, size: Sequence[int]) -> None:
        super().__init__(nn.Upsample(size=list(size)), network)
