"""Box-aware preprocessing for 2D detection, built on ``monai.apps.detection.transforms``.

Boxes enter and leave as ``xyxy`` pixels with x along image columns, the COCO convention the detector
and the metrics use. MONAI's box transforms instead index box coordinates by array axis (x along the first
spatial axis); images here are ``(C, H, W)``, so the pipeline swaps the two box axes around MONAI's
transforms (:class:`SwapBoxAxesd`) and every flip, zoom, crop and resize moves the boxes with the pixels.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import torch
from monai.apps.detection.transforms.array import ResizeBox
from monai.apps.detection.transforms.dictionary import (
    ClipBoxToImaged,
    RandFlipBoxd,
    RandZoomBoxd,
    StandardizeEmptyBoxd,
)
from monai.config import KeysCollection
from monai.transforms import (
    Compose,
    EnsureTyped,
    MapTransform,
    RandScaleIntensityd,
    RandShiftIntensityd,
    Resize,
    ScaleIntensityd,
)

from monai_xai.transforms.intensity import RemoveColorOverlayd, ToGrayscaled
from monai_xai.transforms.io import LoadImageOrArrayd

__all__ = ["ResizeWithBoxesd", "SwapBoxAxesd", "detection_preset"]


class SwapBoxAxesd(MapTransform):
    """Swap x and y of ``xyxy`` boxes: COCO (x = column) to MONAI array order (x = row) and back."""

    def __init__(self, keys: KeysCollection = ("boxes",), allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = d[key][:, [1, 0, 3, 2]]
        return d


class ResizeWithBoxesd(MapTransform):
    """Resize the image to ``spatial_size`` (anti-aliased bilinear) and scale its boxes by the same factors.

    Boxes must be in MONAI array order (see :class:`SwapBoxAxesd`); corners scale exactly, so a box
    covering the whole image still covers it afterwards. The size before resizing is kept as
    ``original_size`` (a ``(H, W)`` tensor), so that predictions can be mapped back to the source image.
    """

    def __init__(
        self, image_key: str = "image", box_key: str = "boxes", spatial_size: Sequence[int] = (256, 256)
    ):
        super().__init__([image_key, box_key], allow_missing_keys=True)
        self.image_key, self.box_key = image_key, box_key
        self.resize = Resize(tuple(spatial_size), mode="bilinear", anti_aliasing=True)
        self.resize_box = ResizeBox(tuple(spatial_size))

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        src = d[self.image_key].shape[1:]
        d[self.image_key] = self.resize(d[self.image_key])
        if self.box_key in d:
            d[self.box_key] = self.resize_box(d[self.box_key], src_spatial_size=src)
        d["original_size"] = torch.as_tensor(tuple(src))
        return d


def detection_preset(
    spatial_size: Sequence[int] = (256, 256),
    augment: bool = False,
    remove_overlays: bool = True,
    image_key: str = "image",
    box_key: str = "boxes",
    label_key: str = "labels",
    load: bool = True,
    with_boxes: bool = True,
) -> Compose:
    """Ultrasound detection pipeline: load, one grey channel in [0, 1] without coloured annotations, resize.

    With ``augment``: horizontal flips and zooms of 0.85 to 1.15 that keep the size (crop or pad), boxes
    following, then boxes clipped to the image and those left without area dropped with their labels;
    mild intensity jitter. Items without boxes pass as negatives (``(0, 4)`` boxes). ``with_boxes=False``
    is for inference on unannotated images.
    """
    boxes = {"box_keys": box_key, "box_ref_image_keys": image_key}
    transforms: list = [LoadImageOrArrayd(keys=image_key)] if load else []
    transforms += [
        RemoveColorOverlayd(keys=image_key) if remove_overlays else ToGrayscaled(keys=image_key),
        ScaleIntensityd(keys=image_key, minv=0.0, maxv=1.0),
    ]
    if with_boxes:
        transforms += [
            EnsureTyped(keys=[box_key], dtype=torch.float32, track_meta=False),
            StandardizeEmptyBoxd(**boxes),
            SwapBoxAxesd(keys=box_key),
        ]
    transforms.append(ResizeWithBoxesd(image_key, box_key, spatial_size))
    if augment and with_boxes:
        transforms += [
            RandFlipBoxd(image_keys=image_key, prob=0.5, spatial_axis=1, **boxes),
            RandZoomBoxd(
                image_keys=image_key, prob=0.5, min_zoom=0.85, max_zoom=1.15, keep_size=True, **boxes
            ),
            ClipBoxToImaged(
                box_keys=box_key, label_keys=label_key, box_ref_image_keys=image_key, remove_empty=True
            ),
            RandScaleIntensityd(keys=image_key, factors=0.1, prob=0.5),
            RandShiftIntensityd(keys=image_key, offsets=0.05, prob=0.5),
        ]
    if with_boxes:
        transforms += [
            SwapBoxAxesd(keys=box_key),
            EnsureTyped(keys=[box_key], dtype=torch.float32, track_meta=False),
            EnsureTyped(keys=[label_key], dtype=torch.long, track_meta=False, allow_missing_keys=True),
        ]
    transforms.append(EnsureTyped(keys=[image_key], dtype=torch.float32, track_meta=False))
    return Compose(transforms)
