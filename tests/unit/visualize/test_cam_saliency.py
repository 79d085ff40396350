"""CAMSaliency's maps are high where the explained class's evidence is (MONAI's default CAM normaliser
inverts them), for Grad-CAM and Grad-CAM++, in batches."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from monai_xai.visualize import CAMSaliency, scale_to_unit


class _EvidenceNet(nn.Module):
    """Class 1's logit is the mean of a non-negative feature map that copies the image: bright pixels are
    its evidence; class 0's logit is the negative of it."""

    def __init__(self) -> None:
        super().__init__()
        self.layer4 = nn.Conv2d(1, 1, 1, bias=False)
        nn.init.ones_(self.layer4.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        score = torch.relu(self.layer4(x)).mean(dim=(1, 2, 3))
        return torch.stack([-score, score], dim=1)


@pytest.mark.parametrize("method", ["gradcam", "gradcampp"])
def test_cam_peaks_on_the_evidence(method: str) -> None:
    images = torch.zeros(2, 1, 8, 8)
    images[0, :, 1:3, 1:3] = 1.0  # evidence top left
    images[1, :, 5:7, 4:6] = 1.0  # evidence bottom right
    maps = CAMSaliency(_EvidenceNet(), method, target_layer="network.layer4")(images, torch.tensor([1, 1]))
    assert maps.shape == (2, 1, 8, 8)
    assert maps[0, 0, 1:3, 1:3].min() == pytest.approx(1.0) and maps[0, 0, 5:, 5:].max() == pytest.approx(0.0)
    assert maps[1, 0, 5:7, 4:6].min() == pytest.approx(1.0) and maps[1, 0, :3, :3].max() == pytest.approx(0.0)


def test_scale_to_unit_per_map_and_constant_maps() -> None:
    maps = torch.tensor([[[[1.0, 3.0], [2.0, 5.0]]], [[[4.0, 4.0], [4.0, 4.0]]]])
    scaled = scale_to_unit(maps)
    assert torch.allclose(scaled[0], torch.tensor([[[0.0, 0.5], [0.25, 1.0]]]))
    assert torch.equal(scaled[1], torch.zeros(1, 2, 2))
