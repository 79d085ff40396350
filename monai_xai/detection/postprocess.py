"""Post-processing of decoded detections: a MONAI dictionary transform for a bundle's ``postprocessing``."""

from __future__ import annotations

from collections.abc import Hashable, Mapping

from monai.config import KeysCollection
from monai.transforms import MapTransform

__all__ = ["KeepConfidentd"]


class KeepConfidentd(MapTransform):
    """Keep each image's boxes, scores and labels that score at least ``threshold``.

    Why: decoding keeps the ``top_k`` peaks down to score 0, as COCO AP needs; what inference reports are the
    confident ones.
    """

    def __init__(
        self, keys: KeysCollection = "detections", threshold: float = 0.3, allow_missing_keys: bool = False
    ):
        super().__init__(keys, allow_missing_keys)
        self.threshold = float(threshold)

    def __call__(self, data: Mapping[Hashable, list[dict]]) -> dict:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = [{k: v[det["scores"] >= self.threshold] for k, v in det.items()} for det in d[key]]
        return d
