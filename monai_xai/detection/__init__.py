"""Keypoint detection: CenterNet target encoding and decoding, and batching of variable box lists."""

from monai_xai.detection.centernet_codec import (
    decode_centernet,
    draw_gaussian,
    encode_centernet_targets,
    gaussian_radius,
)
from monai_xai.detection.collate import BOXES, LABELS, detection_collate

__all__ = [
    "BOXES",
    "LABELS",
    "decode_centernet",
    "detection_collate",
    "draw_gaussian",
    "encode_centernet_targets",
    "gaussian_radius",
]
