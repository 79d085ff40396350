"""MONAI's RetinaNet on the same ResNet backbone as the CenterNet, as the reference anchor-based detector.

Built from ``monai.apps.detection`` and MONAI's FPN blocks without torchvision (MONAI's own
``resnet_fpn_feature_extractor`` needs it): a ResNet-FPN feature extractor on :class:`ResNetEncoder`,
anchors of three shapes per location on every pyramid level, focal-loss classification and box
regression heads, and NMS on the outputs. MONAI indexes box coordinates by array axis (x along
rows for a ``(C, H, W)`` image); :func:`swap_box_axes` converts from and to the COCO order used here.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import torch
from monai.networks.blocks.feature_pyramid_network import FeaturePyramidNetwork, LastLevelMaxPool
from torch import nn

from monai_xai.networks.nets.resnet_encoder import ResNetEncoder

__all__ = ["ResNetFPN", "retinanet_detector", "swap_box_axes"]


class ResNetFPN(nn.Module):
    """:class:`ResNetEncoder` + MONAI ``FeaturePyramidNetwork`` on ``returned_layers`` + a max-pooled level.

    The same layout as MONAI's ``resnet_fpn_feature_extractor`` (``out_channels`` 256 on every level).
    """

    def __init__(
        self,
        backbone: str = "resnet18",
        in_channels: int = 1,
        stem: str = "standard",
        returned_layers: Sequence[int] = (2, 3, 4),
        out_channels: int = 256,
    ) -> None:
        super().__init__()
        self.backbone = ResNetEncoder(backbone, spatial_dims=2, in_channels=in_channels, stem=stem)
        self.returned_layers = list(returned_layers)
        self.fpn = FeaturePyramidNetwork(
            2, [self.backbone.out_channels[i - 1] for i in self.returned_layers], out_channels,
            extra_blocks=LastLevelMaxPool(2),
        )  # fmt: skip
        self.out_channels = out_channels

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        stages = self.backbone(x)
        return self.fpn(OrderedDict((str(i), stages[i - 1]) for i in self.returned_layers))


def swap_box_axes(boxes: torch.Tensor) -> torch.Tensor:
    """``xyxy`` with x along columns <-> MONAI's array order (its own inverse)."""
    return boxes[..., [1, 0, 3, 2]]


def _without_torchvision() -> None:
    """Let MONAI's RetinaNetDetector train without torchvision.

    With ATSS matching and hard negative sampling it needs nothing from torchvision, but it tests
    ``isinstance(matcher, torchvision Matcher)`` first, and the placeholder MONAI leaves for a missing
    torchvision raises on that test. The placeholders become classes that nothing is an instance of.
    """
    from monai.apps.detection.networks import retinanet_detector as module
    from monai.utils import optional_import

    if optional_import("torchvision")[1]:
        return
    for name in ("Matcher", "BalancedPositiveNegativeSampler"):
        if not isinstance(getattr(module, name), type):
            setattr(module, name, type(f"Unavailable{name}", (), {}))


def retinanet_detector(
    num_classes: int = 2,
    backbone: str = "resnet18",
    in_channels: int = 1,
    stem: str = "standard",
    returned_layers: Sequence[int] = (2, 3, 4),
    base_anchor_shapes: Sequence[Sequence[int]] = ((16, 16), (16, 24), (24, 16)),
    score_thresh: float = 0.02,
    nms_thresh: float = 0.22,
    detections_per_img: int = 100,
):
    """A ``monai.apps.detection.networks.retinanet_detector.RetinaNetDetector`` for 2D images.

    The default pyramid follows the RetinaNet paper: ``layer2`` to ``layer4`` (strides 8 to 32) plus a
    max-pooled level (stride 64), where MONAI's default ``(1, 2, 3)`` would add a stride-4 level whose
    256-channel heads cost several times the whole backbone. Anchors on the finest level have
    ``base_anchor_shapes`` (pixels, array order) and double on each coarser level. Box selection keeps
    scores above ``score_thresh``, NMS at ``nms_thresh`` and at most ``detections_per_img`` boxes, as in
    MONAI's detection tutorials. Training uses MONAI's ATSS matcher and
    hard negative sampler.
    """
    from monai.apps.detection.networks.retinanet_detector import RetinaNetDetector
    from monai.apps.detection.networks.retinanet_network import RetinaNet
    from monai.apps.detection.utils.anchor_utils import AnchorGeneratorWithAnchorShape

    _without_torchvision()

    features = ResNetFPN(backbone, in_channels, stem, returned_layers)
    anchors = AnchorGeneratorWithAnchorShape(
        feature_map_scales=[2**level for level in range(len(returned_layers) + 1)],
        base_anchor_shapes=[tuple(s) for s in base_anchor_shapes],
    )
    encoder = features.backbone
    stride = encoder.conv1.stride[0] * (1 if encoder.no_max_pool else 2)
    network = RetinaNet(
        spatial_dims=2,
        num_classes=num_classes,
        num_anchors=anchors.num_anchors_per_location()[0],
        feature_extractor=features,
        size_divisible=stride * 2 ** max(returned_layers),
    )
    detector = RetinaNetDetector(network=network, anchor_generator=anchors)
    detector.set_box_selector_parameters(
        score_thresh=score_thresh, topk_candidates_per_level=1000, nms_thresh=nms_thresh,
        detections_per_img=detections_per_img,
    )  # fmt: skip
    detector.set_atss_matcher(num_candidates=4, center_in_gt=False)
    detector.set_hard_negative_sampler(
        batch_size_per_image=64, positive_fraction=0.3, min_neg=16, pool_size=20
    )
    detector.set_target_keys(box_key="boxes", label_key="labels")
    return detector
