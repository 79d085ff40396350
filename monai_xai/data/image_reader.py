"""Reading one image file, or a DICOM series folder, into an array, its metadata and its channel layout.

PNG/JPEG/BMP/TIFF are read with PIL here; NIfTI with :func:`~monai_xai.data.nifti.read_nifti` and DICOM with
:func:`~monai_xai.data.dicom.read_dicom`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from monai_xai.data.dicom import has_dicom_prefix, read_dicom
from monai_xai.data.nifti import read_nifti
from monai_xai.errors import InputError

__all__ = ["PIL_SUFFIXES", "read_image"]

#: File suffixes read with PIL (2D images).
PIL_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"})
_NIFTI_SUFFIXES = (".nii", ".nii.gz")
_DICOM_SUFFIXES = frozenset({"", ".dcm", ".dicom", ".ima"})
_GREY_MODES = frozenset({"L", "I", "F", "I;16", "I;16L", "I;16B", "I;16N"})


def read_image(path: str | os.PathLike) -> tuple[np.ndarray, dict[str, Any], bool]:
    """Array, meta and whether the last axis holds channels, for any supported file or DICOM folder.

    Anything that cannot be read raises :class:`~monai_xai.errors.InputError` naming the file and the problem.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(path, "no such file or folder")
    suffix = path.suffix.lower()
    try:
        if path.is_dir():
            arr, meta = read_dicom(path)
            return arr, meta, meta["samples_per_pixel"] > 1
        if path.name.lower().endswith(_NIFTI_SUFFIXES):
            arr, meta = read_nifti(path)
            if arr.ndim > 4:
                raise InputError(
                    path, f"NIfTI images with {arr.ndim} dimensions are not supported (at most 4)"
                )
            return arr, meta, arr.ndim == 4
        if suffix in PIL_SUFFIXES:
            arr, meta = _read_pil(path)
            return arr, meta, arr.ndim == 3
        if suffix in _DICOM_SUFFIXES or has_dicom_prefix(path):
            arr, meta = read_dicom(path)
            return arr, meta, meta["samples_per_pixel"] > 1
    except InputError:
        raise
    except Exception as e:  # the reader boundary: an exotic file must still fail with its name attached
        raise InputError(path, f"cannot be read ({type(e).__name__}: {e})") from e
    raise InputError(path, f"unsupported file type {suffix!r}: expected PNG, JPEG, BMP, TIFF, NIfTI or DICOM")


def _read_pil(path: Path) -> tuple[np.ndarray, dict[str, Any]]:
    """A 2D image as ``(H, W)`` (grey) or ``(H, W, 3)`` (colour), rows first."""
    try:
        with Image.open(path) as image:
            frames = getattr(image, "n_frames", 1)
            if frames > 1:
                raise InputError(path, f"has {frames} pages or frames; only single-page images are supported")
            image.load()
            mode = image.mode
            arr = np.asarray(_to_grey_or_rgb(image))
    except InputError:
        raise
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise InputError(path, f"not a readable image ({type(e).__name__}: {e})") from e
    meta = {
        "filename_or_obj": str(path),
        "affine": np.eye(4),
        "spacing": (1.0, 1.0),
        "spatial_shape": tuple(int(s) for s in arr.shape[:2]),
        "mode": mode,
    }
    return arr, meta


def _to_grey_or_rgb(image: Image.Image) -> Image.Image:
    if image.mode in _GREY_MODES:
        return image
    if image.mode in ("1", "LA", "La"):
        return image.convert("L")
    if image.mode == "P":
        palette = np.asarray(image.getpalette() or [], dtype=np.uint8).reshape(-1, 3)
        grey = palette.size > 0 and bool(np.all(palette == palette[:, :1]))
        return image.convert("L" if grey else "RGB")
    return image.convert("RGB")
