"""The first transform of every pipeline: file paths or in-memory arrays to channel-first MetaTensors."""

from __future__ import annotations

import os
from collections.abc import Hashable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from monai.config import DtypeLike, KeysCollection
from monai.data import MetaTensor
from monai.transforms import MapTransform
from monai.utils import get_equivalent_dtype

from monai_xai.data.image_reader import read_image
from monai_xai.errors import InputError

__all__ = ["LoadImageOrArrayd"]

SOURCE_KEY = "source"
#: Meta key of the type the values were stored in (``"uint16"``), which the conversion to ``dtype`` hides.
STORED_DTYPE_KEY = "stored_dtype"


class LoadImageOrArrayd(MapTransform):
    """Load the images under ``keys`` from files, or take them as given arrays, as channel-first MetaTensors.

    File values (``str`` or ``os.PathLike``) are read by :func:`~monai_xai.data.image_reader.read_image`,
    according to their type:

    - PNG/JPEG/BMP/TIFF with PIL, as ``(C, H, W)`` in the file's row-major orientation. MONAI's
      ``PILReader`` returns ``(W, H)`` instead; keeping rows first makes heat-map overlays line up with the
      picture. Grey images get 1 channel, colour images 3: alpha is dropped, palette images go through
      their palette (to 1 channel when the palette is grey).
    - NIfTI (``.nii``, ``.nii.gz``) with :func:`~monai_xai.data.nifti.read_nifti`: nibabel's voxel order and
      affine; the last axis of a 4D file becomes the channel axis.
    - DICOM files and single-series folders with :func:`~monai_xai.data.dicom.read_dicom`:
      ``(C, H, W)`` or ``(C, D, H, W)`` with a RAS affine.

    Array values (numpy arrays, torch tensors, MetaTensors) pass through. With ``ensure_channel_first``,
    a channel axis is added when the array has none. Given ``spatial_dims``, an array with that many
    dimensions gets one and an array with one more is taken as channel-first. Without the hint the layout
    is inferred: 2D arrays are ``(H, W)``; 3D arrays are ``(C, H, W)`` when the first dimension is at most
    4 and ``(D, H, W)`` otherwise; 4D arrays are ``(C, D, H, W)``. Pass ``spatial_dims=3`` whenever a
    volume may have 4 slices or fewer. An array's ``filename_or_obj`` comes from the item's ``source``
    entry, when there is one, so that later errors can still say where it came from. The type the values
    were stored in (e.g. ``"uint16"``) is kept in ``meta["stored_dtype"]``: presets with a fixed intensity
    scale need it to refuse what they would clip.

    ``None`` values pass through unchanged (an absent optional mask); :class:`ValidateItemd` decides
    whether that is acceptable. Anything that cannot be read raises
    :class:`~monai_xai.errors.InputError` naming the file and the problem.

    Args:
        keys: keys of the items to load.
        ensure_channel_first: add or move the channel axis to the front (see above).
        dtype: data type of the output; ``None`` keeps the stored type.
        allow_missing_keys: do not raise when a key is absent from the item.
        spatial_dims: number of spatial dimensions of array values, to resolve ambiguous layouts.
    """

    def __init__(
        self,
        keys: KeysCollection,
        ensure_channel_first: bool = True,
        dtype: DtypeLike | torch.dtype = np.float32,
        allow_missing_keys: bool = False,
        spatial_dims: int | None = None,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        if spatial_dims is not None and spatial_dims not in (1, 2, 3):
            raise ValueError(f"spatial_dims must be 1, 2 or 3, got {spatial_dims}")
        self.ensure_channel_first = ensure_channel_first
        self.dtype = get_equivalent_dtype(dtype, torch.Tensor)
        self.spatial_dims = spatial_dims

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        source = d.get(SOURCE_KEY)
        for key in self.key_iterator(d):
            value = d[key]
            if value is None:
                continue
            if isinstance(value, (str, os.PathLike)):
                d[key] = self._load_file(Path(value))
            else:
                d[key] = self._load_array(value, key, source)
        return d

    def _load_file(self, path: Path) -> MetaTensor:
        arr, meta, channel_last = read_image(path)
        if self.ensure_channel_first:
            arr = np.moveaxis(arr, -1, 0) if channel_last else arr[None]
        meta["original_channel_dim"] = -1 if channel_last else float("nan")
        meta["original_affine"] = meta["affine"].copy()
        meta[STORED_DTYPE_KEY] = str(arr.dtype)
        tensor = _to_tensor(arr)
        return MetaTensor(
            tensor.to(self.dtype or tensor.dtype), meta=meta, spatial_ndim=len(meta["spatial_shape"])
        )

    def _load_array(self, value: Any, key: Hashable, source: Any) -> MetaTensor:
        if isinstance(value, np.ndarray):
            value = _to_tensor(value)
        elif not isinstance(value, torch.Tensor):
            raise InputError(
                source,
                f"{key!r} must be a file path, numpy array or torch tensor, not {type(value).__name__}",
            )
        if isinstance(value, MetaTensor):
            meta, operations, tensor = dict(value.meta), value.applied_operations, value.as_tensor()
        else:
            meta, operations, tensor = {}, None, value
            if source is not None:
                meta["filename_or_obj"] = str(source)
        meta.setdefault(STORED_DTYPE_KEY, str(tensor.dtype).removeprefix("torch."))
        spatial_ndim = self.spatial_dims
        if self.ensure_channel_first:
            if not self._has_channel(tuple(tensor.shape), key, source):
                tensor = tensor.unsqueeze(0)
            spatial_ndim = tensor.ndim - 1
        tensor = tensor.to(self.dtype or tensor.dtype)
        return MetaTensor(tensor, meta=meta, applied_operations=operations, spatial_ndim=spatial_ndim)

    def _has_channel(self, shape: tuple[int, ...], key: Hashable, source: Any) -> bool:
        """Whether an array of ``shape`` is already channel-first (see the class docstring)."""
        ndim = len(shape)
        if self.spatial_dims is not None:
            if ndim in (self.spatial_dims, self.spatial_dims + 1):
                return ndim == self.spatial_dims + 1
        elif ndim in (2, 3, 4):
            return ndim == 4 or (ndim == 3 and shape[0] <= 4)
        hint = (
            f"spatial_dims={self.spatial_dims}" if self.spatial_dims is not None else "no spatial_dims hint"
        )
        raise InputError(
            source, f"{key!r}: cannot place the channel axis of an array of shape {shape} ({hint})"
        )


def _to_tensor(arr: np.ndarray) -> torch.Tensor:
    """Share memory where torch allows it: native byte order, contiguous and writable."""
    arr = np.ascontiguousarray(arr.astype(arr.dtype.newbyteorder("="), copy=False))
    return torch.as_tensor(arr if arr.flags.writeable else arr.copy())
