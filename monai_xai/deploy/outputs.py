"""What the deploy app hands to a clinician: probabilities, an overlay, a DICOM Secondary Capture, a report.

Every output names the model (name, version, SHA-256 of the exported file), so that a result found later
can be traced to the exact weights that produced it.
"""

from __future__ import annotations

import base64
import datetime
import html
import io
import json
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from PIL import Image

from monai_xai.deploy.model import ABNPrediction

__all__ = [
    "OUTPUT_FILES",
    "overlay_rgb",
    "write_outputs",
    "write_probabilities",
    "write_report",
    "write_secondary_capture",
]

#: File names written per input by :func:`write_outputs`.
OUTPUT_FILES = {
    "probabilities": "probabilities.json",
    "overlay": "overlay.png",
    "secondary_capture": "overlay_sc.dcm",
    "report": "report.html",
}
_DISPLAY_SIZE = 512
_SERIES_DESCRIPTION = "ABN attention overlay (research use only)"
#: DICOM identifiers copied into the JSON so that it can be matched to its study without the DICOM files.
_DICOM_IDS = ("PatientID", "StudyInstanceUID", "SeriesInstanceUID", "AccessionNumber")
#: Patient and study attributes a Secondary Capture copies from its source (all type 2: empty if unknown).
_PATIENT_STUDY = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "StudyDate",
    "StudyTime",
    "ReferringPhysicianName",
    "StudyID",
    "AccessionNumber",
)


def _display_shape(shape: tuple[int, int], size: int = _DISPLAY_SIZE) -> tuple[int, int]:
    """(H, W) scaled so that the longer side is at least ``size`` pixels, aspect kept."""
    scale = max(1.0, size / max(shape))
    return round(shape[0] * scale), round(shape[1] * scale)


def _resize(array: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of a float (H, W) or (H, W, 3) array."""
    channels = [array] if array.ndim == 2 else [array[..., c] for c in range(array.shape[-1])]
    resized = [
        np.asarray(Image.fromarray(c.astype(np.float32)).resize(shape[::-1], Image.Resampling.BILINEAR))
        for c in channels
    ]
    return resized[0] if array.ndim == 2 else np.stack(resized, axis=-1)


def _to_uint8(array: np.ndarray) -> np.ndarray:
    return np.round(np.clip(array, 0.0, 1.0) * 255).astype(np.uint8)


def overlay_rgb(image: np.ndarray, attention: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """The attention map in the ``jet`` colours over the image, as (H, W, 3) uint8.

    ``image`` is (H, W) grey or (H, W, 3) colour, kept in colour; it and the (H, W) map, both in [0, 1],
    are resized bilinearly so that the longer side has at least 512 pixels (the network's input is often
    64-256 pixels, too small to read on a screen).
    """
    import matplotlib

    shape = _display_shape(image.shape[:2])
    base = _resize(np.clip(image, 0.0, 1.0), shape)
    base = base[..., None] if base.ndim == 2 else base
    heat = matplotlib.colormaps["jet"](np.clip(_resize(attention, shape), 0.0, 1.0))[..., :3]
    return _to_uint8((1.0 - alpha) * base + alpha * heat)


def _png_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def _data_uri(array: np.ndarray) -> str:
    """A PNG inline in HTML, so that the report is one file that can be mailed or archived."""
    return "data:image/png;base64," + base64.b64encode(_png_bytes(array)).decode()


def _dicom_ids(reference) -> dict[str, str]:
    return {k: str(reference.get(k, "")) for k in _DICOM_IDS} if reference is not None else {}


def write_probabilities(
    prediction: ABNPrediction, path: str | os.PathLike, model: Mapping[str, str], reference=None
) -> Path:
    """``{"source", "prediction", "probabilities": {class: p}, "model": {...}, "dicom": {...}}`` as JSON."""
    record = {
        "source": prediction.source,
        "prediction": prediction.prediction,
        "probabilities": {c: float(p) for c, p in zip(prediction.class_names, prediction.probabilities)},
        "model": dict(model),
        "dicom": _dicom_ids(reference),
    }
    path = Path(path)
    path.write_text(json.dumps(record, indent=2))
    return path


def write_secondary_capture(
    overlay: np.ndarray, path: str | os.PathLike, model: Mapping[str, str], reference=None
) -> Path:
    """Save an RGB overlay as a DICOM Secondary Capture image, in a new series.

    With a ``reference`` dataset (a header of the classified series) the patient and study attributes are
    copied from it and the source image is referenced, so that the overlay lands beside it in the patient's
    study in a PACS; without one (PNG or NIfTI input) it gets a new study and empty patient identifiers.
    Patient Orientation is left empty (allowed, type 2): after the network's preprocessing the overlay's
    orientation relative to the patient is not known, and a guessed one would mislead.
    """
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import (
        PYDICOM_IMPLEMENTATION_UID,
        ExplicitVRLittleEndian,
        SecondaryCaptureImageStorage,
        generate_uid,
    )

    ref = reference if reference is not None else Dataset()
    now = datetime.datetime.now()
    ds = Dataset()
    ds.SpecificCharacterSet = ref.get("SpecificCharacterSet", "ISO_IR 192")
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.SOPInstanceUID = generate_uid()
    for keyword in _PATIENT_STUDY:
        setattr(ds, keyword, ref.get(keyword, ""))
    ds.StudyInstanceUID = ref.get("StudyInstanceUID") or generate_uid()
    ds.Modality = "OT"
    ds.SeriesInstanceUID = generate_uid()
    ds.SeriesNumber = 9901
    ds.SeriesDescription = _SERIES_DESCRIPTION
    ds.Manufacturer = "monai-xai"
    ds.ConversionType = "WSD"
    ds.SecondaryCaptureDeviceManufacturer = "monai-xai"
    ds.SecondaryCaptureDeviceManufacturerModelName = model["name"][:64]
    ds.SecondaryCaptureDeviceSoftwareVersions = model["version"][:64]
    ds.InstanceNumber = 1
    ds.PatientOrientation = ""
    ds.ImageType = ["DERIVED", "SECONDARY"]
    ds.ContentDate = ds.SeriesDate = ds.DateOfSecondaryCapture = now.strftime("%Y%m%d")
    ds.ContentTime = ds.SeriesTime = ds.TimeOfSecondaryCapture = now.strftime("%H%M%S")
    ds.BurnedInAnnotation = "NO"
    ds.DerivationDescription = "attention map M(x) of an Attention Branch Network over the classified image"
    ds.ImageComments = f"model {model['name']} {model['version']}, sha256 {model['sha256'][:16]}"
    if "SOPInstanceUID" in ref and "SOPClassUID" in ref:
        source = Dataset()
        source.ReferencedSOPClassUID = ref.SOPClassUID
        source.ReferencedSOPInstanceUID = ref.SOPInstanceUID
        ds.SourceImageSequence = [source]
    ds.SamplesPerPixel = 3
    ds.PhotometricInterpretation = "RGB"
    ds.PlanarConfiguration = 0
    ds.Rows, ds.Columns = int(overlay.shape[0]), int(overlay.shape[1])
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    ds.PixelData = np.ascontiguousarray(overlay, dtype=np.uint8).tobytes()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    path = Path(path)
    ds.save_as(path, enforce_file_format=True)
    return path


def write_report(
    prediction: ABNPrediction,
    path: str | os.PathLike,
    model: Mapping[str, str],
    overlay: np.ndarray,
    reference=None,
) -> Path:
    """A one-page, self-contained HTML report: image, overlay, prediction and the model that made it."""
    image = _resize(prediction.image, _display_shape(prediction.image.shape[:2]))
    image_uri, overlay_uri = (_data_uri(a) for a in (_to_uint8(image), overlay))
    e = html.escape
    rows = "".join(
        f"<tr><td>{e(c)}</td><td>{p:.3f}</td></tr>"
        for c, p in zip(prediction.class_names, prediction.probabilities)
    )
    ids = "".join(f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in _dicom_ids(reference).items())
    created = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>ABN report: {e(prediction.prediction)}</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:1em auto}}img{{max-width:49%}}
table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:2px 8px;text-align:left}}
.warn{{color:#a00}}</style></head><body>
<h1>Prediction: <span id="prediction">{e(prediction.prediction)}</span> ({prediction.confidence:.3f})</h1>
<p class="warn">{e(model.get("intended_use") or "Research use only.")}</p>
<div><img alt="input image" src="{image_uri}"><img alt="attention overlay" src="{overlay_uri}"></div>
<p>Left: the input. Right: the attention map M(x) over the image the network classified (after its
preprocessing); red marks where the perception branch was weighted most.</p>
<h2>Class probabilities</h2><table><tr><th>class</th><th>probability</th></tr>{rows}</table>
<h2>Source</h2><table><tr><th>input</th><td>{e(prediction.source)}</td></tr>{ids}</table>
<h2>Model</h2><table><tr><th>name</th><td>{e(model["name"])}</td></tr>
<tr><th>version</th><td id="model-version">{e(model["version"])}</td></tr>
<tr><th>file</th><td>{e(model["file"])}</td></tr><tr><th>SHA-256</th><td>{e(model["sha256"])}</td></tr>
<tr><th>report created</th><td>{e(created)}</td></tr></table>
</body></html>
"""
    path = Path(path)
    path.write_text(page, encoding="utf-8")
    return path


def write_outputs(
    prediction: ABNPrediction, output_dir: str | os.PathLike, model: Mapping[str, str], reference=None
) -> dict[str, Path]:
    """Write the four outputs of one input into ``output_dir`` (see :data:`OUTPUT_FILES`).

    Args:
        prediction: what :meth:`~monai_xai.deploy.DeployedABN.predict` returned.
        output_dir: folder for this input's files; created if needed.
        model: :attr:`~monai_xai.deploy.DeployedABN.info`.
        reference: a pydicom header of the classified DICOM series, or ``None`` for other inputs.
    """
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    overlay = overlay_rgb(prediction.network_input, prediction.attention)
    overlay_path = out / OUTPUT_FILES["overlay"]
    overlay_path.write_bytes(_png_bytes(overlay))
    probabilities = write_probabilities(prediction, out / OUTPUT_FILES["probabilities"], model, reference)
    return {
        "probabilities": probabilities,
        "overlay": overlay_path,
        "secondary_capture": write_secondary_capture(
            overlay, out / OUTPUT_FILES["secondary_capture"], model, reference
        ),
        "report": write_report(prediction, out / OUTPUT_FILES["report"], model, overlay, reference),
    }
