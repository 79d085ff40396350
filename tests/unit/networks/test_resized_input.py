"""ResizedInput and min_input_size: the AG-CycleGAN judge's network behind a resize to its smallest input."""

from __future__ import annotations

import torch
from torch import nn

from monai_xai.networks.resized_input import ResizedInput, min_input_size


def test_min_input_size_raises_small_dimensions_only() -> None:
    assert min_input_size([28, 28], 32) == [32, 32]
    assert min_input_size([64, 20, 32], 32) == [64, 32, 32]


def test_resized_input_runs_the_network_on_the_resized_image() -> None:
    seen = []

    class Probe(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            seen.append(tuple(x.shape))
            return x.mean(dim=(2, 3))

    network = ResizedInput(Probe(), [32, 32])
    out = network(torch.rand(2, 1, 28, 28))
    assert seen == [(2, 1, 32, 32)] and out.shape == (2, 1)


def test_weights_keep_the_names_of_a_plain_sequential() -> None:
    """Checkpoints of ``torch.nn.Sequential(Upsample, network)`` (judges trained before) load unchanged."""
    plain = nn.Sequential(nn.Upsample(size=[8, 8]), nn.Conv2d(1, 2, 3))
    resized = ResizedInput(nn.Conv2d(1, 2, 3), [8, 8])
    assert list(resized.state_dict()) == list(plain.state_dict()) == ["1.weight", "1.bias"]
    resized.load_state_dict(plain.state_dict())
    x = torch.rand(1, 1, 5, 5)
    assert torch.equal(resized(x), plain(x))
