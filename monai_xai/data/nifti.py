"""NIfTI reading with nibabel: the voxel array in stored order and the geometry needed to place it."""

from __future__ import annotations

import os
import zlib
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
from nibabel.filebasedimages import ImageFileError
from nibabel.spatialimages import HeaderDataError

from monai_xai.errors import InputError

__all__ = ["read_nifti"]


def read_nifti(path: str | os.PathLike) -> tuple[np.ndarray, dict[str, Any]]:
    """Read a NIfTI-1/NIfTI-2 image (``.nii`` or ``.nii.gz``) fully into memory.

    The whole file is decoded here, not lazily, so that a truncated or corrupt file fails now with a
    message naming it rather than later inside a data loader worker.

    Returns:
        The voxel array in nibabel's index order, scaled by the header's ``scl_slope``/``scl_inter`` and in
        native byte order, and a dict with ``filename_or_obj``, ``affine`` (4x4, voxel to RAS+ world),
        ``spacing`` (the spatial zooms, at most 3), ``zooms`` (all of them, time included), ``axcodes``
        (``nibabel.aff2axcodes`` joined, e.g. ``"RAS"``), ``shape``, ``spatial_shape`` and ``format``
        (the nibabel image class, e.g. ``"Nifti2Image"``).

    Raises:
        InputError: the file is missing, not an image nibabel can read, or truncated.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "no such file")
    try:
        image = nib.load(path, mmap=False)
        data = np.asanyarray(image.dataobj)
    except (ImageFileError, HeaderDataError, OSError, EOFError, ValueError, zlib.error) as e:
        raise InputError(path, f"not a readable NIfTI file ({type(e).__name__}: {e})") from e
    data = data.astype(data.dtype.newbyteorder("="), copy=False)
    affine = np.asarray(image.affine, dtype=np.float64)
    zooms = tuple(float(z) for z in image.header.get_zooms())
    spatial = min(data.ndim, 3)
    meta = {
        "filename_or_obj": str(path),
        "affine": affine,
        "spacing": zooms[:spatial],
        "zooms": zooms,
        "axcodes": "".join(code or "?" for code in nib.aff2axcodes(affine)),
        "shape": tuple(int(s) for s in data.shape),
        "spatial_shape": tuple(int(s) for s in data.shape[:spatial]),
        "format": type(image).__name__,
    }
    return data, meta
