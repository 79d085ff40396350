"""An exported ABN bundle (TorchScript with its configs inside) as a classifier of image files.

``python -m monai.bundle ckpt_export`` stores the bundle's config files and metadata in the TorchScript file,
so the file alone says how the network was trained: its class names, its preprocessing
(``preprocessing`` of ``inference.json``) and which DICOM series it accepts (``series_selection`` of
``export.json``). The deploy app reads them from there, so that a deployed model cannot drift from the
settings it was trained with.
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from monai.bundle import ConfigParser
from monai.bundle.utils import merge_kv

from monai_xai.errors import InputError

__all__ = ["IMAGE_SUFFIXES", "ABNPrediction", "DeployedABN", "is_image_file", "load_selection_rules"]

#: File types classified as images (everything else in an input folder is left to the DICOM loader).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".nii", ".nii.gz")
_FIRST_CONFIG = "inference.json"
_LAST_CONFIGS = ("export.json",)
_PREPROCESSING_ID = "preprocessing"


def is_image_file(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a PNG/JPEG/BMP/TIFF or NIfTI file by its name."""
    return Path(path).name.lower().endswith(IMAGE_SUFFIXES)


def load_selection_rules(path: str | os.PathLike) -> dict[str, Any]:
    """Read DICOM series selection rules (the MONAI Deploy ``DICOMSeriesSelectorOperator`` format).

    ``{"selections": [{"name": ..., "conditions": {"Modality": "(?i)US", "BodyPartExamined": ...,
    "SeriesDescription": ...}}]}``; string conditions are case-insensitive regular expressions.
    """
    path = Path(path)
    try:
        rules = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise InputError(path, f"cannot read the series selection rules as JSON ({err})") from err
    _check_rules(rules, path)
    return rules


def _check_rules(rules: Any, source: str | os.PathLike | None) -> None:
    selections = rules.get("selections") if isinstance(rules, dict) else None
    if not isinstance(selections, list) or not selections:
        raise InputError(source, 'series selection rules need a non-empty "selections" list')
    for i, selection in enumerate(selections):
        if not isinstance(selection, dict) or not isinstance(selection.get("conditions"), dict):
            raise InputError(source, f'selection {i} needs a "conditions" object, got {selection!r}')


@dataclass
class ABNPrediction:
    """What one input gave: class probabilities and the attention map over the image the network saw."""

    #: the file or DICOM series that was classified.
    source: str
    class_names: list[str]
    #: (num_classes,) softmax of the perception logits.
    probabilities: np.ndarray
    #: the input as loaded, for display: (H, W) grey or (H, W, 3) colour, in [0, 1].
    image: np.ndarray
    #: the preprocessed image the network classified, in [0, 1]: (H, W, 3) for a colour input, else
    #: (H, W) of the first channel.
    network_input: np.ndarray
    #: (H, W) the attention map M(x) resized to ``network_input``, in [0, 1].
    attention: np.ndarray

    @property
    def prediction(self) -> str:
        """Name of the most probable class."""
        return self.class_names[int(np.argmax(self.probabilities))]

    @property
    def confidence(self) -> float:
        """Probability of the predicted class."""
        return float(np.max(self.probabilities))


class DeployedABN:
    """Classify image files with an ABN exported by ``ckpt_export`` (see the bundle's docs/README.md).

    Args:
        path: the exported ``.ts`` file, or a folder holding exactly one (the models folder of a MAP).
        device: where to run; CUDA when available by default.

    The embedded configs are merged as the bundle run merges them: ``inference.json`` first, then any other
    config (dataset fragments, in name order), then ``export.json``.
    """

    def __init__(self, path: str | os.PathLike, device: str | torch.device | None = None) -> None:
        self.path = _model_file(Path(path))
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        extra = dict.fromkeys(_embedded_files(self.path), "")
        if "metadata.json" not in extra or _FIRST_CONFIG not in extra:
            raise InputError(
                self.path,
                f"holds no bundle configs (found {sorted(extra) or 'none'}); export it with "
                "`python -m monai.bundle ckpt_export` and the configs listed in the bundle's README",
            )
        self.network = torch.jit.load(str(self.path), map_location=self.device, _extra_files=extra).eval()
        self.metadata: dict[str, Any] = json.loads(extra.pop("metadata.json"))
        self.parser = ConfigParser(_merge_configs(extra))
        if self.parser.get(_PREPROCESSING_ID) is None:
            raise InputError(self.path, f"has no '{_PREPROCESSING_ID}': export it with inference.json")
        self.class_names = [str(c) for c in self.parser.get_parsed_content("class_names")]
        self.preprocessing = self.parser.get_parsed_content(_PREPROCESSING_ID)
        self.series_rules: dict[str, Any] | None = self.parser.get("series_selection")
        if self.series_rules is not None:
            _check_rules(self.series_rules, self.path)
        self.sha256 = hashlib.sha256(self.path.read_bytes()).hexdigest()

    @property
    def info(self) -> dict[str, str]:
        """What identifies the model in every output: name, version, file and its SHA-256."""
        return {
            "name": str(self.metadata.get("name", self.path.stem)),
            "version": str(self.metadata.get("version", "unknown")),
            "file": self.path.name,
            "sha256": self.sha256,
            "intended_use": str(self.metadata.get("intended_use", "")),
        }

    def predict(self, source: str | os.PathLike) -> ABNPrediction:
        """Classify one file or DICOM series folder with the bundle's own inference preprocessing."""
        from monai_xai.transforms import LoadImageOrArrayd
        from monai_xai.utils import upsample_attention
        from monai_xai.visualize import display_plane, middle_slice

        loaded = LoadImageOrArrayd(keys=["image"])({"image": source})
        try:
            item = self.preprocessing(dict(loaded))
        except (RuntimeError, ValueError, TypeError) as err:  # MONAI wraps a failing transform's error
            cause = err
            while cause.__cause__ is not None:
                cause = cause.__cause__
            if isinstance(cause, InputError):
                raise cause from err
            shape = tuple(loaded["image"].shape)
            raise InputError(
                source, f"the bundle's preprocessing cannot take this input of shape {shape}: {cause}"
            ) from err
        x = torch.as_tensor(item["image"]).float()[None].to(self.device)
        with torch.no_grad():
            logits, attention = self.network(x)
            attention = upsample_attention(attention.float(), x.shape[2:])
        network_input = _unit_range(display_plane(x[0]))
        return ABNPrediction(
            source=str(source),
            class_names=self.class_names,
            probabilities=torch.softmax(logits.float(), dim=1)[0].cpu().numpy(),
            image=_display_image(loaded["image"], network_input),
            network_input=network_input,
            attention=np.clip(middle_slice(attention[0]), 0.0, 1.0),
        )


def _model_file(path: Path) -> Path:
    if path.is_dir():
        found = sorted(path.rglob("*.ts"))
        if len(found) != 1:
            raise InputError(path, f"expected one exported .ts model in this folder, found {len(found)}")
        return found[0]
    if not path.is_file():
        raise InputError(path, "model not found (export one with `python -m monai.bundle ckpt_export`)")
    return path


def _embedded_files(path: Path) -> list[str]:
    """Names of the extra files stored in a TorchScript archive (``<archive>/extra/<name>``)."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (OSError, zipfile.BadZipFile) as err:
        raise InputError(path, f"not a TorchScript file ({err})") from err
    return [n.split("/extra/", 1)[1] for n in names if "/extra/" in n and not n.endswith("/")]


def _merge_configs(extra: dict[str, str]) -> dict[str, Any]:
    """Merge the embedded configs in bundle order, with the override rules of ``monai.bundle``."""
    middle = sorted(n for n in extra if n not in (_FIRST_CONFIG, *_LAST_CONFIGS))
    order = [_FIRST_CONFIG, *middle, *(n for n in _LAST_CONFIGS if n in extra)]
    merged = ConfigParser(config={})
    for name in order:
        for key, value in json.loads(extra[name]).items():
            merge_kv(merged, key, value)
    return merged.get()


def _unit_range(a: np.ndarray) -> np.ndarray:
    lo, hi = float(np.min(a)), float(np.max(a))
    return (a - lo) / (hi - lo) if hi > lo else np.zeros_like(a)


def _display_image(image: torch.Tensor, network_input: np.ndarray) -> np.ndarray:
    """A 2D input as loaded: (H, W) grey or (H, W, 3) colour in [0, 1], 1st-99th percentile stretched.

    Volumes are shown as the network saw them: DICOM and NIfTI volumes differ in axis order, and the
    preset, not the display, decides which slice a 2D network classifies.
    """
    from monai_xai.visualize import display_plane

    if image.ndim != 3:
        return network_input
    shown = display_plane(image)
    lo, hi = np.percentile(shown, [1, 99])
    return np.clip((shown - lo) / (hi - lo), 0.0, 1.0) if hi > lo else np.zeros_like(shown)
