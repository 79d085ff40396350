"""What every per-bundle test needs: a copy of the bundle outside the repository and the metadata checks of
MONAI's bundle specification (``verify_metadata`` needs a schema that cannot be downloaded here)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
BUNDLES = REPO / "bundles"

#: Keys MONAI's bundle specification requires in ``configs/metadata.json``.
REQUIRED_METADATA_KEYS = (
    "version",
    "changelog",
    "monai_version",
    "pytorch_version",
    "numpy_version",
    "required_packages_version",
    "task",
    "description",
    "authors",
    "copyright",
    "network_data_format",
)
#: Inline logic a config expression should call a named library function for instead.
LOGIC = re.compile(r"\bif\b.*\belse\b|\blambda\b|\bfor\b.*\bin\b")

#: Keys the specification requires for each input and output in ``network_data_format``.
REQUIRED_TENSOR_KEYS = ("type", "format", "num_channels", "spatial_shape", "dtype", "value_range")


def copy_bundle(name: str, destination: Path) -> Path:
    """Copy ``bundles/<name>`` to ``destination/<name>`` and return the copy's root (its ``bundle_root``)."""
    source = BUNDLES / name
    if not (source / "configs" / "metadata.json").is_file():
        raise FileNotFoundError(f"{source} is not a bundle: configs/metadata.json is missing")
    return Path(shutil.copytree(source, destination / name))


def metadata_problems(bundle_root: Path) -> list[str]:
    """What the bundle's ``metadata.json`` lacks of the specification's required keys; empty when valid."""
    meta: dict[str, Any] = json.loads((bundle_root / "configs" / "metadata.json").read_text())
    problems = [f"missing key {key!r}" for key in REQUIRED_METADATA_KEYS if key not in meta]
    version = meta.get("version")
    if version is not None and version not in meta.get("changelog", {}):
        problems.append(f"version {version!r} has no changelog entry")
    formats = meta.get("network_data_format", {})
    for part in ("inputs", "outputs"):
        tensors = formats.get(part)
        if not tensors:
            problems.append(f"network_data_format has no {part}")
            continue
        for tensor, spec in tensors.items():
            missing = [key for key in REQUIRED_TENSOR_KEYS if key not in spec]
            problems += [f"{part}.{tensor}: missing {key!r}" for key in missing]
            shape = spec.get("spatial_shape")
            if shape is not None and not isinstance(shape, list):
                problems.append(f"{part}.{tensor}: spatial_shape {shape!r} is not a list")
    return problems


def inference_parser(bundle_root: Path, **overrides: Any):
    """The bundle's ``inference.json`` with its metadata, as MONAI's ``verify_net_in_out`` reads them."""
    from monai.bundle import ConfigParser

    parser = ConfigParser()
    parser.read_config(str(bundle_root / "configs" / "inference.json"))
    parser.read_meta(str(bundle_root / "configs" / "metadata.json"))
    parser.update({"bundle_root": str(bundle_root), **overrides})
    return parser


def tensor_shape(spec: dict[str, Any], n: int) -> tuple[int, ...]:
    """``(1, num_channels, *spatial_shape)`` of one ``network_data_format`` entry, its ``"n"`` expressions
    evaluated by MONAI's own helper, so the shapes are those ``verify_net_in_out`` would build."""
    from monai.bundle.scripts import _get_fake_spatial_shape

    return (1, spec["num_channels"], *_get_fake_spatial_shape(spec["spatial_shape"], n=n))


def _expressions(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value] if value.startswith("$") else []
    if isinstance(value, dict):
        return [e for v in value.values() for e in _expressions(v)]
    if isinstance(value, list):
        return [e for v in value for e in _expressions(v)]
    return []


def config_problems(bundle_root: Path) -> list[str]:
    """What keeps the bundle's configs from running as a folder of their own: a ``%`` reference or a path
    into the repository's ``bundles/`` folder, and inline logic (conditionals, lambdas, comprehensions) in a
    ``$`` expression."""
    problems = []
    for config in sorted((bundle_root / "configs").glob("*.json")):
        if config.name == "metadata.json":
            continue
        expressions = _expressions(json.loads(config.read_text()))
        problems += [f"{config.name}: repository path in {e}" for e in expressions if "bundles/" in e]
        problems += [f"{config.name}: inline logic in {e}" for e in expressions if LOGIC.search(e)]
        problems += [f"{config.name}: {ref}" for ref in re.findall(r'"%[^"]*"', config.read_text())]
    return problems


def packaging_problems(bundle_root: Path) -> list[str]:
    """Everything a model-zoo bundle folder lacks: valid metadata, ``eval_metrics`` figures that name the run
    they come from, a ``LICENSE``, a ``docs/data_license.txt``, and configs that run from the folder alone."""
    problems = metadata_problems(bundle_root)
    meta = json.loads((bundle_root / "configs" / "metadata.json").read_text())
    for name, figures in meta.get("eval_metrics", {}).items():
        if not isinstance(figures, dict) or not figures.get("run"):
            problems.append(f"eval_metrics.{name} does not name its run")
        elif not all(isinstance(v, float) for k, v in figures.items() if k != "run"):
            problems.append(f"eval_metrics.{name} holds something other than measured figures")
    if "Apache License" not in _read(bundle_root / "LICENSE"):
        problems.append("LICENSE is not the Apache-2.0 text")
    if not _read(bundle_root / "docs" / "data_license.txt"):
        problems.append("docs/data_license.txt is missing")
    return problems + config_problems(bundle_root)


def _read(path: Path) -> str:
    return path.read_text() if path.is_file() else ""


def verify_network_io(bundle_root: Path, n: int = 4) -> None:
    """MONAI's ``verify_net_in_out`` on ``network_def`` of ``inference.json``, and the same check for the
    ``attention_map`` output, whose shape MONAI's tool does not look at."""
    import torch
    from monai.bundle import ConfigParser, verify_net_in_out

    meta, inference = (str(bundle_root / "configs" / name) for name in ("metadata.json", "inference.json"))
    verify_net_in_out("network_def", meta_file=meta, config_file=inference, device="cpu", n=n)
    parser = ConfigParser()
    parser.read_config(inference)
    parser.read_meta(meta)
    formats = parser.get("_meta_#network_data_format")
    image, attention = formats["inputs"]["image"], formats["outputs"]["attention_map"]
    size = [eval(str(s), {"n": n}) for s in image["spatial_shape"]]
    with torch.no_grad():
        out = parser.get_parsed_content("network_def").eval()(torch.rand(1, image["num_channels"], *size))
    expected = (1, attention["num_channels"], *(eval(str(s), {"n": n}) for s in attention["spatial_shape"]))
    found = tuple(out.attention_map.shape)
    if found != expected:
        raise ValueError(f"attention_map has shape {found}, the metadata says {expected}")
