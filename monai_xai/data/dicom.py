"""DICOM reading: single files, multi-frame files and single-series folders.

Arrays keep DICOM storage order: ``(rows, columns)`` for one frame and ``(slices, rows, columns)`` for a
multi-frame file or a series, with colour samples (RGB) on a trailing axis. ``meta["affine"]`` maps these
array indices to patient coordinates in RAS, the convention of nibabel and MONAI, so that spatial
transforms treat DICOM and NIfTI inputs alike. Stored values are turned into modality values
(Rescale Slope/Intercept), YBR colour into RGB and palette colour into RGB; MONOCHROME1 is left as stored
and reported in ``meta["photometric_interpretation"]``.
"""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.pixels import apply_color_lut
from pydicom.uid import UID, ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from monai_xai.errors import InputError

__all__ = ["find_dicom_series", "has_dicom_prefix", "read_dicom"]

logger = logging.getLogger(__name__)

_PIXEL_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")
_LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
_DEFAULT_ORIENTATION = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
# Values larger than this stay on disk while a folder is scanned: only headers are needed to group series.
_SCAN_DEFER_SIZE = "4 KB"


def read_dicom(path: str | os.PathLike, series_uid: str | None = None) -> tuple[np.ndarray, dict[str, Any]]:
    """Read a DICOM file (single- or multi-frame) or a folder holding one series.

    Slices of a series are ordered by ImagePositionPatient projected on the slice normal, or by
    InstanceNumber when positions are missing. Only the files directly in the folder are read; other
    files (README, DICOMDIR, objects without pixel data) are ignored.

    Args:
        path: a DICOM file or a folder of single-frame files of one series.
        series_uid: for a folder holding several series, the SeriesInstanceUID to read.

    Returns:
        The pixel array (float32 where a rescale applies, else the stored integer type in native byte
        order) and a dict with ``filename_or_obj``, ``spacing`` (mm, in array axis order), ``affine``
        (4x4, RAS), ``spatial_shape``, ``modality``, ``photometric_interpretation``, ``samples_per_pixel``
        (size of the trailing colour axis, 1 when there is none), ``patient_id``, ``study_instance_uid``,
        ``series_instance_uid``, ``sop_class_uid``, ``transfer_syntax_uid``, ``number_of_frames`` (per
        file) and ``number_of_slices`` (along the first axis of a 3D result; 1 for a 2D image).

    Raises:
        InputError: the path cannot be read, has no pixel data, uses a transfer syntax that the installed
            decoders cannot handle, or the folder does not hold exactly one stackable series.
    """
    path = Path(path)
    if path.is_dir():
        return _read_series(path, series_uid)
    if not path.is_file():
        raise InputError(path, "no such file or folder")
    try:
        ds = pydicom.dcmread(path, force=True)
    except Exception as e:  # pydicom raises many exception types on bytes that are not DICOM
        raise InputError(path, f"not a readable DICOM file ({type(e).__name__}: {e})") from e
    return _read_dataset(ds, path)


def find_dicom_series(folder: str | os.PathLike) -> dict[str, list[Path]]:
    """Group the DICOM image files directly in ``folder`` by SeriesInstanceUID.

    Files without pixel data and files that are not DICOM are left out; files without a
    SeriesInstanceUID are grouped under ``""``. Paths are listed in file-name order.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(folder, "not a folder")
    series, _ = _scan_folder(folder)
    return {uid: [Path(ds.filename) for ds in headers] for uid, headers in series.items()}


def has_dicom_prefix(path: str | os.PathLike) -> bool:
    """Whether the file has the 128-byte preamble and ``DICM`` prefix of a standard DICOM file.

    Files written without a meta header lack it, so ``False`` does not prove a file is not DICOM.
    """
    with open(path, "rb") as f:
        return f.read(132)[128:] == b"DICM"


def _scan_folder(folder: Path) -> tuple[dict[str, list[Dataset]], int]:
    """Headers of the image files in ``folder`` by series UID, and the number of other files seen."""
    series: dict[str, list[Dataset]] = {}
    others = 0
    for path in sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")):
        try:
            with warnings.catch_warnings():
                if not has_dicom_prefix(path):  # README files and the like: pydicom's complaints are noise
                    warnings.simplefilter("ignore")
                ds = pydicom.dcmread(path, force=True, defer_size=_SCAN_DEFER_SIZE)
        except Exception:  # pydicom raises many exception types on bytes that are not DICOM
            others += 1
            continue
        if not _has_pixels(ds):
            others += 1
            continue
        series.setdefault(str(ds.get("SeriesInstanceUID", "")), []).append(ds)
    return series, others


def _read_series(folder: Path, series_uid: str | None) -> tuple[np.ndarray, dict[str, Any]]:
    series, others = _scan_folder(folder)
    if not series:
        raise InputError(
            folder,
            f"no DICOM files with pixel data directly in this folder ({others} other files; "
            "subfolders are not searched)",
        )
    if series_uid is None:
        if len(series) > 1:
            listing = ", ".join(
                f"{uid or '<no SeriesInstanceUID>'} ({len(v)} files)" for uid, v in series.items()
            )
            raise InputError(
                folder, f"holds {len(series)} DICOM series: {listing}; pass series_uid= to choose one"
            )
        series_uid = next(iter(series))
    elif series_uid not in series:
        raise InputError(folder, f"no series {series_uid!r} here; found {', '.join(series)}")
    slices = series[series_uid]
    if len(slices) == 1:
        return _read_dataset(slices[0], Path(slices[0].filename))
    _check_stackable(slices, folder)
    slices, spacing, origin = _order_slices(slices, folder)

    volume = np.stack([_pixels(ds, Path(ds.filename)) for ds in slices])
    orientation = _orientation(slices[0])
    row_spacing, col_spacing = _pixel_spacing(slices[0])
    normal = np.cross(orientation[0], orientation[1])
    steps = [normal * spacing, orientation[1] * row_spacing, orientation[0] * col_spacing]
    meta = _meta(
        slices[0],
        folder,
        spacing=(spacing, row_spacing, col_spacing),
        affine=_affine(steps, origin),
        spatial_shape=volume.shape[:3],
        number_of_slices=len(slices),
    )
    return volume, meta


def _check_stackable(slices: list[Dataset], folder: Path) -> None:
    """Refuse series whose files do not form one volume, before any pixel data is decoded."""
    multi = [Path(ds.filename).name for ds in slices if _num_frames(ds) > 1]
    if multi:
        raise InputError(
            folder,
            f"series of multi-frame files cannot be stacked ({', '.join(multi)}); read them one by one",
        )
    sizes = {(int(ds.get("Rows", 0)), int(ds.get("Columns", 0)), _is_colour(ds)) for ds in slices}
    if len(sizes) > 1:
        listing = ", ".join(f"{r}x{c}{' colour' if colour else ''}" for r, c, colour in sorted(sizes))
        raise InputError(folder, f"slices differ in size or colour ({listing}); they do not form one volume")
    first = _orientation(slices[0])
    if any(not np.allclose(_orientation(ds), first, atol=1e-4) for ds in slices[1:]):
        raise InputError(
            folder,
            "slices have different orientations (for example a localizer with several planes); "
            "they do not form one volume, read the files one by one",
        )


def _order_slices(slices: list[Dataset], folder: Path) -> tuple[list[Dataset], float, np.ndarray]:
    """Slices sorted along the volume axis, the slice spacing and the first slice's position."""
    positions = [_position(ds) for ds in slices]
    if all(p is not None for p in positions):
        orientation = _orientation(slices[0])
        normal = np.cross(orientation[0], orientation[1])
        keys = np.array([float(p @ normal) for p in positions])
        sort_by = "ImagePositionPatient"
    elif all("InstanceNumber" in ds for ds in slices):
        keys = np.array([float(ds.InstanceNumber) for ds in slices])
        sort_by = "InstanceNumber"
    else:
        raise InputError(
            folder, "cannot order the slices: ImagePositionPatient and InstanceNumber are missing"
        )
    order = np.argsort(keys, kind="stable")
    gaps = np.diff(keys[order])
    if np.any(np.abs(gaps) < 1e-4):
        raise InputError(
            folder,
            f"{len(slices)} slices but some share the same {sort_by}; the series is not a single volume "
            "(several echoes, phases or duplicate files?)",
        )
    slices = [slices[i] for i in order]
    if sort_by == "ImagePositionPatient":
        spacing = float(np.median(gaps))
        if not np.allclose(gaps, spacing, rtol=0.01, atol=0.01):
            logger.warning(
                "%s: slice spacing is not uniform (%.4g to %.4g mm); the affine uses the median %.4g mm",
                folder,
                gaps.min(),
                gaps.max(),
                spacing,
            )
        origin = positions[order[0]]
    else:
        spacing = _slice_thickness(slices[0])
        origin = _position(slices[0])
    return slices, spacing, np.zeros(3) if origin is None else origin


def _read_dataset(ds: Dataset, path: Path) -> tuple[np.ndarray, dict[str, Any]]:
    """Pixels and meta of one file; a multi-frame file becomes a ``(frames, rows, columns)`` volume."""
    arr = _pixels(ds, path)
    orientation = _orientation(ds)
    row_spacing, col_spacing = _pixel_spacing(ds)
    normal = np.cross(orientation[0], orientation[1])
    in_plane = [orientation[1] * row_spacing, orientation[0] * col_spacing]
    origin = _position(ds)
    origin = np.zeros(3) if origin is None else origin
    frames = _num_frames(ds)
    if frames == 1:
        return arr, _meta(
            ds,
            path,
            spacing=(row_spacing, col_spacing),
            affine=_affine([*in_plane, normal], origin),
            spatial_shape=arr.shape[:2],
            number_of_slices=1,
        )
    step = _frame_step(ds, normal)
    meta = _meta(
        ds,
        path,
        spacing=(float(np.linalg.norm(step)), row_spacing, col_spacing),
        affine=_affine([step, *in_plane], origin),
        spatial_shape=arr.shape[:3],
        number_of_slices=frames,
    )
    return arr, meta


def _pixels(ds: Dataset, path: Path) -> np.ndarray:
    """Decoded pixels in native byte order, palette colour expanded and modality rescale applied."""
    if not _has_pixels(ds):
        sop_class = ds.get("SOPClassUID") or ds.file_meta.get("MediaStorageSOPClassUID")
        if sop_class:
            raise InputError(path, f"no pixel data: a '{UID(sop_class).name}' object is not an image")
        raise InputError(
            path, "no pixel data: not a DICOM image, or a damaged one (no DICOM attributes found)"
        )
    syntax = _transfer_syntax(ds)
    try:
        arr = ds.pixel_array
    except Exception as e:  # decoder plugins raise RuntimeError, ValueError, NotImplementedError, ...
        problem = f"cannot decode the pixel data, transfer syntax '{syntax.name}' ({syntax}): {e}"
        raise InputError(path, problem) from e
    if ds.get("PhotometricInterpretation") == "PALETTE COLOR":
        arr = apply_color_lut(arr, ds)[..., :3]
    arr = arr.astype(arr.dtype.newbyteorder("="), copy=False)
    if _is_colour(ds):
        return arr
    frames = _num_frames(ds)
    slopes = np.array([_number(_attr(ds, "RescaleSlope", i), 1.0) for i in range(frames)], dtype=np.float32)
    intercepts = np.array(
        [_number(_attr(ds, "RescaleIntercept", i), 0.0) for i in range(frames)], dtype=np.float32
    )
    if np.all(slopes == 1.0) and np.all(intercepts == 0.0):
        return arr
    shape = (frames,) + (1,) * (arr.ndim - 1) if frames > 1 else ()
    return arr.astype(np.float32) * slopes.reshape(shape) + intercepts.reshape(shape)


def _transfer_syntax(ds: Dataset) -> UID:
    """The dataset's transfer syntax; for files without a meta header, the encoding pydicom detected."""
    if "TransferSyntaxUID" not in ds.file_meta:
        implicit, little = ds.original_encoding
        if implicit:
            ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
        else:
            ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian if little else ExplicitVRBigEndian
    return ds.file_meta.TransferSyntaxUID


def _meta(
    ds: Dataset,
    path: Path,
    *,
    spacing: tuple[float, ...],
    affine: np.ndarray,
    spatial_shape: tuple[int, ...],
    number_of_slices: int,
) -> dict[str, Any]:
    # Plain str/int/float/tuple values under the same keys for every file, so that MONAI can collate them.
    sop_class = ds.get("SOPClassUID") or ds.file_meta.get("MediaStorageSOPClassUID", "")
    return {
        "filename_or_obj": str(path),
        "spacing": tuple(float(s) for s in spacing),
        "affine": affine,
        "spatial_shape": tuple(int(s) for s in spatial_shape),
        "modality": str(ds.get("Modality", "")),
        "photometric_interpretation": str(ds.get("PhotometricInterpretation", "")),
        "samples_per_pixel": 3 if _is_colour(ds) else 1,
        "patient_id": str(ds.get("PatientID", "")),
        "study_instance_uid": str(ds.get("StudyInstanceUID", "")),
        "series_instance_uid": str(ds.get("SeriesInstanceUID", "")),
        "sop_class_uid": str(sop_class),
        "transfer_syntax_uid": str(_transfer_syntax(ds)),
        "number_of_frames": _num_frames(ds),
        "number_of_slices": int(number_of_slices),
    }


def _affine(steps: list[np.ndarray], origin: np.ndarray) -> np.ndarray:
    """RAS affine whose first columns are the LPS world steps of the array axes, in array order."""
    lps = np.eye(4)
    for i, step in enumerate(steps):
        lps[:3, i] = step
    lps[:3, 3] = origin
    return _LPS_TO_RAS @ lps


def _has_pixels(ds: Dataset) -> bool:
    return any(keyword in ds for keyword in _PIXEL_KEYWORDS)


def _is_colour(ds: Dataset) -> bool:
    return (
        int(ds.get("SamplesPerPixel", 1) or 1) > 1 or ds.get("PhotometricInterpretation") == "PALETTE COLOR"
    )


def _num_frames(ds: Dataset) -> int:
    return int(ds.get("NumberOfFrames", 1) or 1)


def _attr(ds: Dataset, keyword: str, frame: int = 0) -> Any:
    """Value of ``keyword`` at the top level or, for enhanced multi-frame files, in the functional groups."""
    if keyword in ds:
        return ds[keyword].value
    for group_name in ("PerFrameFunctionalGroupsSequence", "SharedFunctionalGroupsSequence"):
        groups = ds.get(group_name)
        if not groups:
            continue
        group = groups[min(frame, len(groups) - 1)]
        for element in group:
            if element.VR == "SQ" and element.value and keyword in element.value[0]:
                return element.value[0][keyword].value
    return None


def _vector(value: Any, size: int) -> np.ndarray | None:
    try:
        vector = np.array([float(v) for v in value], dtype=np.float64)
    except (TypeError, ValueError):
        return None
    return vector if vector.size == size and np.all(np.isfinite(vector)) else None


def _orientation(ds: Dataset, frame: int = 0) -> np.ndarray:
    """Row and column direction cosines (LPS), shape (2, 3); axis-aligned when unknown."""
    orientation = _vector(_attr(ds, "ImageOrientationPatient", frame), 6)
    return _DEFAULT_ORIENTATION if orientation is None else orientation.reshape(2, 3)


def _position(ds: Dataset, frame: int = 0) -> np.ndarray | None:
    return _vector(_attr(ds, "ImagePositionPatient", frame), 3)


def _pixel_spacing(ds: Dataset) -> tuple[float, float]:
    """(between rows, between columns) in mm; 1 mm when the file does not say."""
    spacing = _vector(_attr(ds, "PixelSpacing") or _attr(ds, "ImagerPixelSpacing"), 2)
    return (1.0, 1.0) if spacing is None else (float(spacing[0]), float(spacing[1]))


def _number(value: Any, default: float) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return default
    return number if np.isfinite(number) else default


def _slice_thickness(ds: Dataset) -> float:
    for keyword in ("SpacingBetweenSlices", "SliceThickness"):
        value = _number(_attr(ds, keyword), 0.0)
        if value > 0:
            return value
    return 1.0


def _frame_step(ds: Dataset, normal: np.ndarray) -> np.ndarray:
    """World (LPS) step from one frame to the next in a multi-frame file."""
    first, second = _position(ds, 0), _position(ds, 1)
    if first is not None and second is not None and not np.allclose(first, second):
        return second - first
    offsets = _vector(ds.get("GridFrameOffsetVector") or [], _num_frames(ds))  # RT dose grids
    if offsets is not None and offsets[1] != offsets[0]:
        return normal * float(offsets[1] - offsets[0])
    return normal * _slice_thickness(ds)
