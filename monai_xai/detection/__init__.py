"""Keypoint detection: CenterNet target encoding and decoding, batching of variable box lists, and keeping the
confident detections."""

from monai_xai.detection.centernet_codec import (
    decode_centernet,
    draw_gaussian,
    encode_centernet_targets,
    gaussian_radius,
)
from monai_xai.detection.collate import BOXES, LABELS, detection_collate
from monai_xai.detection.postprocess import KeepConfidentd

__all__ = [
    "KeepConfidentd",
    "BOXES",
    "LABELS",
    "decode_centernet",
    "detection_collate",
    "draw_gaussian",
    "encode_centernet_targets",
    "gaussian_radius",
]
