"""An exported ABN bundle (TorchScript with its configs inside) as a classifier of image files.

``python -m monai.bundle ckpt_export`` stores the bundle's config files and metadata in the TorchScript file,
so the file alone says how the network was trained: its class names, its preprocessing
(``preprocessing`` of ``inference.json``) and which DICOM series it accepts (``series_selection`` of
``export.json``). The deploy app reads them from there, so that a deployed model cannot drift from the
settings it was trained with. It reads them as plain JSON: a model file comes from elsewhere, and MONAI's
config expressions (``$...``) are Python that would run on load, so the app evaluates none of them and
builds the bundle's preprocessing itself from the plain settings it names.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from monai.bundle.utils import merge_kv

from monai_xai.errors import InputError

__all__ = ["IMAGE_SUFFIXES", "ABNPrediction", "DeployedABN", "is_image_file", "load_selection_rules"]

#: File types classified as images (everything else in an input folder is left to the DICOM loader).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".nii", ".nii.gz")
_FIRST_CONFIG = "inference.json"
_LAST_CONFIGS = ("export.json",)
_PREPROCESSING_ID = "preprocessing"
#: The ``preprocessing`` of the bundles' ``inference.json``: the transforms of
#: :func:`~monai_xai.transforms.inference_transforms` spelled out as addressable items. :func:`_preprocessing`
#: accepts exactly this and builds it from the plain settings it references, evaluating none of it.
_PREPROCESSING: dict[str, Any] = {
    "_target_": "Compose",
    "transforms": [
        {"_target_": "monai_xai.transforms.LoadImageOrArrayd", "keys": ["image"]},
        {
            "_target_": "monai_xai.transforms.ValidateItemd",
            "expected_channels": "@in_channels",
            "spatial_dims": "@spatial_dims",
        },
        {
            "_target_": "monai_xai.transforms.PresetIntensityd",
            "keys": ["image"],
            "preset": "@preset",
            "preset_args": "@preset_args",
            "spatial_dims": "@spatial_dims",
            "intensity_transforms": "@intensity_transforms",
        },
        {
            "_target_": "monai_xai.transforms.PresetResized",
            "_disabled_": "$@spatial_dims != 2",
            "keys": ["image"],
            "preset": "@preset",
            "spatial_size": "@spatial_size",
            "preset_args": "@preset_args",
        },
        {
            "_target_": "EnsureTyped",
            "_disabled_": "$@spatial_dims != 2",
            "keys": ["image"],
            "dtype": "float32",
        },
    ],
}
#: The plain settings it takes, with their JSON types (``None``: may be null).
_SETTINGS: dict[str, tuple[type, ...]] = {
    "preset": (str,),
    "spatial_size": (list, type(None)),
    "in_channels": (int,),
    "preset_args": (dict, type(None)),
    "spatial_dims": (int,),
}
#: Strings MONAI's ConfigParser would evaluate (``$``), resolve (``@``) or read from a file (``%``).
_EXPRESSION_PREFIXES = ("$", "@", "%")
_SHA256 = re.compile(r"[0-9a-f]{64}")


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

    #: the input as the user knows it: the file, or (set by the app) the input folder and the series UID.
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
    #: the checkpoint's operating point as exported (threshold on the probability of class 1, temperature,
    #: how and on which split it was chosen), or None: the argmax decides.
    operating_point: dict[str, Any] | None = None

    @property
    def prediction(self) -> str:
        """Name of the decided class: class 1 from the operating point's threshold on, else the argmax."""
        threshold = (self.operating_point or {}).get("threshold")
        if threshold is not None and len(self.class_names) == 2:
            return self.class_names[int(self.probabilities[1] >= threshold)]
        return self.class_names[int(np.argmax(self.probabilities))]

    @property
    def confidence(self) -> float:
        """Probability of the decided class."""
        return float(self.probabilities[self.class_names.index(self.prediction)])

    @property
    def decision_rule(self) -> str:
        """How :attr:`prediction` was decided, in words for the report."""
        point = self.operating_point or {}
        if point.get("threshold") is None:
            return "most probable class (no operating point was exported with the model)"
        return (
            f"{self.class_names[1]} when its probability is at least {point['threshold']:.4g} "
            f"(threshold chosen on the {point.get('split', 'validation')} split by {point.get('method')})"
        )


class DeployedABN:
    """Classify image files with an ABN exported by ``ckpt_export`` (see the bundle's docs/README.md).

    Args:
        path: the exported ``.ts`` file, or a folder holding exactly one (the models folder of a MAP).
        device: where to run; CUDA when available by default.
        sha256: the file's expected SHA-256 (hex); another file is refused before anything in it is read.

    The embedded configs are merged as the bundle run merges them: ``inference.json`` first, then any other
    config (dataset fragments, in name order), then ``export.json``; as plain JSON (see the module's doc).
    """

    def __init__(
        self, path: str | os.PathLike, device: str | torch.device | None = None, sha256: str | None = None
    ) -> None:
        self.path = _model_file(Path(path))
        data = self.path.read_bytes()  # hashed and loaded from the same bytes: the file may change meanwhile
        self.sha256 = hashlib.sha256(data).hexdigest()
        if sha256 is not None and self.sha256 != _expected_sha256(sha256):
            raise InputError(
                self.path,
                f"SHA-256 is {self.sha256}, not the expected {sha256} (--model-sha256): refusing to load it",
            )
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        extra = _embedded_files(data, self.path)
        if "metadata.json" not in extra or _FIRST_CONFIG not in extra:
            raise InputError(
                self.path,
                f"holds no bundle configs (found {sorted(extra) or 'none'}); export it with "
                "`python -m monai.bundle ckpt_export` and the configs listed in the bundle's README",
            )
        self.metadata: dict[str, Any] = _json_object(extra.pop("metadata.json"), "metadata.json", self.path)
        #: the merged configs, plain JSON: expressions in it are text, never evaluated.
        self.config = _merge_configs(extra, self.path)
        self.class_names = _class_names(self.config, self.path)
        self.operating_point = _operating_point(self.config, self.path)
        self.preprocessing = _preprocessing(self.config, self.path)
        self.series_rules: dict[str, Any] | None = self.config.get("series_selection")
        if self.series_rules is not None:
            _check_rules(self.series_rules, self.path)
        self.network = torch.jit.load(io.BytesIO(data), map_location=self.device).eval()

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
        temperature = float((self.operating_point or {}).get("temperature", 1.0))
        with torch.no_grad():
            logits, attention = self.network(x)
            attention = upsample_attention(attention.float(), x.shape[2:])
        network_input = _unit_range(display_plane(x[0]))
        return ABNPrediction(
            source=str(source),
            class_names=self.class_names,
            probabilities=torch.softmax(logits.float() / temperature, dim=1)[0].cpu().numpy(),
            image=_display_image(loaded["image"], network_input),
            network_input=network_input,
            attention=np.clip(middle_slice(attention[0]), 0.0, 1.0),
            operating_point=self.operating_point,
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


def _expected_sha256(value: str) -> str:
    expected = value.strip().lower()
    if not _SHA256.fullmatch(expected):
        raise InputError(None, f"--model-sha256 needs the 64 hex digits of a SHA-256, got {value!r}")
    return expected


def _embedded_files(data: bytes, path: Path) -> dict[str, bytes]:
    """The extra files stored in a TorchScript archive (``<archive>/extra/<name>``), by name."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return {
                n.split("/extra/", 1)[1]: archive.read(n)
                for n in archive.namelist()
                if "/extra/" in n and not n.endswith("/")
            }
    except (OSError, zipfile.BadZipFile) as err:
        raise InputError(path, f"not a TorchScript file ({err})") from err


def _json_object(text: bytes, name: str, path: Path) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError as err:
        raise InputError(path, f"its embedded {name} is not JSON ({err})") from err
    if not isinstance(value, dict):
        raise InputError(path, f"its embedded {name} is not a JSON object")
    return value


def _merge_configs(extra: dict[str, bytes], path: Path) -> dict[str, Any]:
    """Merge the embedded configs in bundle order, with the override rules of ``monai.bundle``."""
    middle = sorted(n for n in extra if n not in (_FIRST_CONFIG, *_LAST_CONFIGS))
    order = [_FIRST_CONFIG, *middle, *(n for n in _LAST_CONFIGS if n in extra)]
    merged: dict[str, Any] = {}
    for name in order:
        for key, value in _json_object(extra[name], name, path).items():
            merge_kv(merged, key, value)
    return merged


def _is_expression(value: Any) -> bool:
    """Whether ``value`` holds anything MONAI's ConfigParser would evaluate, resolve or read."""
    if isinstance(value, str):
        return value.startswith(_EXPRESSION_PREFIXES)
    if isinstance(value, dict):
        return any(_is_expression(k) or _is_expression(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_is_expression(v) for v in value)
    return False


def _plain(config: dict[str, Any], key: str, types: tuple[type, ...], path: Path) -> Any:
    """The setting ``key``, refused when it is missing, of another type, or a config expression."""
    if key not in config:
        raise InputError(path, f"its configs have no '{key}': export it with inference.json")
    value = config[key]
    if _is_expression(value):
        raise InputError(
            path,
            f"'{key}' is a config expression ({str(value)[:80]!r}): the deploy app reads the embedded "
            "configs as plain JSON and evaluates no expressions; put the plain value in the exported configs",
        )
    if not isinstance(value, types) or isinstance(value, bool) and bool not in types:
        names = " or ".join("null" if t is type(None) else t.__name__ for t in types)
        raise InputError(path, f"'{key}' must be {names} in plain JSON, got {value!r}")
    return value


#: inference.json's ``operating_point`` when no record was exported with the model: read beside a checkpoint.
_OPERATING_POINT_READER = {"_target_": "monai_xai.networks.read_operating_point", "checkpoint": "@ckpt_path"}


def _operating_point(config: dict[str, Any], path: Path) -> dict[str, Any] | None:
    """The exported operating point record (``<checkpoint>.operating_point.json`` given to ``ckpt_export``),
    or None when only inference.json's reader component is there (never instantiated)."""
    value = config.get("operating_point")
    if value is None or value == _OPERATING_POINT_READER:
        return None
    point = _plain(config, "operating_point", (dict,), path)
    threshold, temperature = point.get("threshold"), point.get("temperature", 1.0)
    if threshold is not None and (isinstance(threshold, bool) or not isinstance(threshold, int | float)):
        raise InputError(path, f"'operating_point.threshold' must be a number or null, got {threshold!r}")
    if isinstance(temperature, bool) or not isinstance(temperature, int | float) or temperature <= 0:
        raise InputError(
            path, f"'operating_point.temperature' must be a positive number, got {temperature!r}"
        )
    return point


def _class_names(config: dict[str, Any], path: Path) -> list[str]:
    names = _plain(config, "class_names", (list,), path)
    if not names or not all(isinstance(n, str) for n in names):
        raise InputError(path, f"'class_names' must be a non-empty list of names, got {names!r}")
    return names


def _preprocessing(config: dict[str, Any], path: Path) -> Callable:
    """``inference.json``'s preprocessing, built by :func:`~monai_xai.transforms.inference_transforms` from
    the plain settings its items reference.

    A model whose ``preprocessing`` is another list, or a 3D model whose ``intensity_transforms``
    are transform objects (made by expressions), is refused: running it would mean evaluating its configs.
    """
    from monai_xai.transforms import inference_transforms

    expression = config.get(_PREPROCESSING_ID)
    if expression is None:
        raise InputError(path, f"has no '{_PREPROCESSING_ID}': export it with inference.json")
    if expression != _PREPROCESSING:
        raise InputError(
            path,
            f"its '{_PREPROCESSING_ID}' is not the bundle's transform list (see monai_xai.deploy.model): the "
            "deploy app builds only that one, from plain settings, and evaluates no config expressions",
        )
    settings = {key: _plain(config, key, types, path) for key, types in _SETTINGS.items()}
    if settings["spatial_dims"] == 3 and config.get("intensity_transforms", []) != []:
        raise InputError(
            path,
            "a 3D model's 'intensity_transforms' are transform objects built by config expressions, which "
            "the deploy app does not evaluate; deploy 2D models, or 3D ones without intensity_transforms",
        )
    try:
        return inference_transforms(**settings)
    except (KeyError, TypeError, ValueError) as err:
        raise InputError(path, f"cannot build the bundle's preprocessing from its settings ({err})") from err


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
