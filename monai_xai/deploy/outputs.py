"""What the deploy app hands to a clinician: probabilities, an overlay, a DICOM Secondary Capture, a report.

Every output names the model (name, version, SHA-256 of the exported file), so that a result found later
can be traced to the exact weights that produced it. Each input's files are written into a hidden folder
beside their destination and renamed into place when complete, so that a crash never leaves a half-written
result that looks whole, and an earlier run's results are replaced only when asked (``overwrite``).
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import html
import io
import json
import logging
import os
import re
import shutil
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from monai_xai.deploy.model import ABNPrediction
from monai_xai.errors import InputError

__all__ = [
    "OUTPUT_FILES",
    "SUMMARY_FILES",
    "InputOutcome",
    "overlay_rgb",
    "series_folder_name",
    "write_outputs",
    "write_probabilities",
    "write_report",
    "write_run",
    "write_secondary_capture",
]

logger = logging.getLogger(__name__)

#: File names written per input by :func:`write_outputs`.
OUTPUT_FILES = {
    "probabilities": "probabilities.json",
    "overlay": "overlay.png",
    "secondary_capture": "overlay_sc.dcm",
    "report": "report.html",
}
#: Files written once per run by :func:`write_run`: every input's outcome, failures with their error.
SUMMARY_FILES = {"json": "summary.json", "report": "summary.html"}
_DISPLAY_SIZE = 512
_SERIES_DESCRIPTION = "ABN attention overlay (research use only)"
#: DICOM identifiers copied into the JSON so that it can be matched to its study without the DICOM files.
_DICOM_IDS = ("PatientID", "StudyInstanceUID", "SeriesInstanceUID", "AccessionNumber")
#: Patient identifiers a report shows only when asked (``include_identifiers``): reports get mailed, printed.
_PATIENT_IDS = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "AccessionNumber",
    "StudyID",
    "StudyDate",
)
#: What a report always shows of its source: UIDs that trace it to the study, not to the patient.
_REPORT_UIDS = ("StudyInstanceUID", "SeriesInstanceUID")
#: A valid DICOM UID: dot-separated numbers without leading zeros (PS3.5 9.1), at most 64 characters.
_UID = re.compile(r"(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*")
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


def series_folder_name(uid: object) -> str:
    """The folder name of a series: its UID when that is a valid DICOM UID, else ``series-<12 hex>``.

    The UID comes from a header nobody vouches for, and pydicom only warns on invalid ones: joined into a
    path, ``../x`` or ``/abs/path`` would land outside the folder meant for it. The hex digits are the start
    of the UID's SHA-256, so the same series gets the same folder in every run.
    """
    text = str(uid)
    if len(text) <= 64 and _UID.fullmatch(text):
        return text
    return "series-" + hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()[:12]


@dataclass
class InputOutcome:
    """What became of one input of a run (a DICOM series or an image file): its prediction or its error."""

    #: the input's output sub-folder (see :func:`series_folder_name`).
    name: str
    #: the input as the user knows it: the file, or the input folder and the series UID.
    source: str
    prediction: ABNPrediction | None = None
    #: a pydicom header of the classified series, for the identifiers of its outputs.
    reference: Any = None
    #: why the input has no prediction.
    error: str | None = None


def _exists_error(path: Path) -> InputError:
    return InputError(
        path,
        "exists already (results of an earlier run); pass --overwrite to replace them or choose another -o",
    )


def _beside(path: Path, suffix: str) -> Path:
    """A new hidden name beside ``path``: on its file system, so that a rename to ``path`` is one step.

    Not ``tempfile``'s, whose folders and files only their owner may read: the results are for others too.
    """
    return path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.{suffix}")


def _set_aside(path: Path) -> Path:
    """Rename ``path`` to a hidden name beside it: it vanishes from ``path`` in one step."""
    aside = _beside(path, "old")
    os.rename(path, aside)
    return aside


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()


def _move_into_place(finished: Path, dest: Path, overwrite: bool) -> None:
    """Rename the complete ``finished`` to ``dest``; an existing ``dest`` only with ``overwrite``.

    The old ``dest`` is set aside first and removed only once the new one is in place (a folder cannot
    replace a folder in one rename), and it is put back if that fails.
    """
    if not os.path.lexists(dest):
        os.rename(finished, dest)
        return
    if not overwrite:
        raise _exists_error(dest)
    aside = _set_aside(dest)
    try:
        os.rename(finished, dest)
    except OSError:
        os.rename(aside, dest)
        raise
    _remove(aside)


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


def _dicom_ids(reference, keywords: Sequence[str] = _DICOM_IDS) -> dict[str, str]:
    return {k: str(reference.get(k, "")) for k in keywords} if reference is not None else {}


def _burned_in_annotation(reference) -> str:
    """The source's Burned In Annotation, ``YES`` when unknown: the overlay shows the source's pixels, and
    ultrasound frames often carry the patient's name in them."""
    value = str(reference.get("BurnedInAnnotation", "") if reference is not None else "").strip().upper()
    return value if value in ("YES", "NO") else "YES"


def write_probabilities(
    prediction: ABNPrediction, path: str | os.PathLike, model: Mapping[str, str], reference=None
) -> Path:
    """``{"source", "prediction", "probabilities": {class: p}, "model": {...}, "dicom": {...}}`` as JSON."""
    record = {
        "source": prediction.source,
        "prediction": prediction.prediction,
        "decision_rule": prediction.decision_rule,
        "operating_point": prediction.operating_point,
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
    orientation relative to the patient is not known, and a guessed one would mislead. Burned In Annotation
    is the source's (``YES`` when it does not say, and for file inputs).
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
    ds.BurnedInAnnotation = _burned_in_annotation(reference)
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
    include_identifiers: bool = False,
) -> Path:
    """A one-page, self-contained HTML report: image, overlay, prediction and the model that made it.

    Patient identifiers (name, ID, birth date, accession...) only with ``include_identifiers``: a report is
    mailed and printed, and the study and series UIDs already trace it to its source.
    """
    image = _resize(prediction.image, _display_shape(prediction.image.shape[:2]))
    image_uri, overlay_uri = (_data_uri(a) for a in (_to_uint8(image), overlay))
    e = html.escape
    rows = "".join(
        f"<tr><td>{e(c)}</td><td>{p:.3f}</td></tr>"
        for c, p in zip(prediction.class_names, prediction.probabilities)
    )
    shown = (*_PATIENT_IDS, *_REPORT_UIDS) if include_identifiers else _REPORT_UIDS
    ids = "".join(f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in _dicom_ids(reference, shown).items())
    omitted = (
        ""
        if include_identifiers or reference is None
        else "<p>Patient identifiers omitted (run the app with --include-identifiers to show them).</p>"
    )
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
<p>Decision: <span id="decision-rule">{e(prediction.decision_rule)}</span>.</p>
<h2>Source</h2><table><tr><th>input</th><td id="source">{e(prediction.source)}</td></tr>{ids}</table>{omitted}
{_model_table(model, created)}
</body></html>
"""
    path = Path(path)
    path.write_text(page, encoding="utf-8")
    return path


def _model_table(model: Mapping[str, str], created: str) -> str:
    e = html.escape
    return f"""<h2>Model</h2><table><tr><th>name</th><td>{e(model["name"])}</td></tr>
<tr><th>version</th><td id="model-version">{e(model["version"])}</td></tr>
<tr><th>file</th><td>{e(model["file"])}</td></tr><tr><th>SHA-256</th><td>{e(model["sha256"])}</td></tr>
<tr><th>report created</th><td>{e(created)}</td></tr></table>"""


def write_outputs(
    prediction: ABNPrediction,
    output_dir: str | os.PathLike,
    model: Mapping[str, str],
    reference=None,
    *,
    include_identifiers: bool = False,
    overwrite: bool = False,
) -> dict[str, Path]:
    """Write the four outputs of one input into ``output_dir`` (see :data:`OUTPUT_FILES`).

    They are written into a hidden folder beside ``output_dir`` and renamed to it when all four are done.

    Args:
        prediction: what :meth:`~monai_xai.deploy.DeployedABN.predict` returned.
        output_dir: folder for this input's files; its parent is created if needed.
        model: :attr:`~monai_xai.deploy.DeployedABN.info`.
        reference: a pydicom header of the classified DICOM series, or ``None`` for other inputs.
        include_identifiers: show patient identifiers in the report (see :func:`write_report`).
        overwrite: replace an existing ``output_dir``; without it, that is an :class:`InputError`.
    """
    out = Path(output_dir)
    if not overwrite and os.path.lexists(out):
        raise _exists_error(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = _beside(out, "partial")
    tmp.mkdir()
    try:
        overlay = overlay_rgb(prediction.network_input, prediction.attention)
        (tmp / OUTPUT_FILES["overlay"]).write_bytes(_png_bytes(overlay))
        write_probabilities(prediction, tmp / OUTPUT_FILES["probabilities"], model, reference)
        write_secondary_capture(overlay, tmp / OUTPUT_FILES["secondary_capture"], model, reference)
        write_report(prediction, tmp / OUTPUT_FILES["report"], model, overlay, reference, include_identifiers)
        _move_into_place(tmp, out, overwrite)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return {key: out / name for key, name in OUTPUT_FILES.items()}


def write_run(
    outcomes: Sequence[InputOutcome],
    output_folder: str | os.PathLike,
    model: Mapping[str, str],
    input_path: str | os.PathLike,
    *,
    include_identifiers: bool = False,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Write each input's outputs into ``output_folder/<name>`` and the run's summary (:data:`SUMMARY_FILES`).

    Each input succeeds or fails on its own: one unreadable series must not cost the study's others their
    results, so an input without a prediction, or whose outputs cannot be written, is an entry with its
    error in the summary. Before anything is written, results of an earlier run in the way (a folder of
    one of these inputs, the summary) are an :class:`InputError` naming them; with ``overwrite`` they are
    replaced, and a failed input's old folder is removed, so that the folder holds this run's results only.

    Returns:
        the summary: ``{"input", "model", "created", "inputs": [{"name", "source", "status": "ok" |
        "failed", "folder", "prediction", "confidence"} or {..., "error"}]}``.
    """
    folder = Path(output_folder)
    targets = [*(o.name for o in outcomes), *SUMMARY_FILES.values()]
    in_the_way = [folder / name for name in targets if os.path.lexists(folder / name)]
    if in_the_way and not overwrite:
        names = ", ".join(p.name for p in in_the_way)
        raise InputError(
            folder,
            f"holds results of an earlier run ({names}); pass --overwrite to replace them, or another -o",
        )
    entries = []
    for outcome in outcomes:
        entry: dict[str, Any] = {"name": outcome.name, "source": outcome.source, "status": "failed"}
        if outcome.prediction is None:
            entry["error"] = outcome.error or "no prediction"
        else:
            try:
                write_outputs(
                    outcome.prediction,
                    folder / outcome.name,
                    model,
                    outcome.reference,
                    include_identifiers=include_identifiers,
                    overwrite=overwrite,
                )
            except Exception as err:  # any one input's failure, whatever its type, is that input's only
                logger.warning(
                    f"{outcome.source}: its outputs cannot be written: {err}",
                    exc_info=logger.isEnabledFor(logging.DEBUG),
                )
                entry["error"] = f"writing its outputs failed: {type(err).__name__}: {err}"
            else:
                entry.update(
                    status="ok",
                    folder=outcome.name,
                    prediction=outcome.prediction.prediction,
                    confidence=outcome.prediction.confidence,
                )
        if overwrite and entry["status"] != "ok" and os.path.lexists(folder / outcome.name):
            _remove(_set_aside(folder / outcome.name))  # an earlier run's result must not pass for this one's
        entries.append(entry)
    summary = {
        "input": os.fspath(input_path),
        "model": dict(model),
        "created": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "inputs": entries,
    }
    _write_file(folder / SUMMARY_FILES["json"], json.dumps(summary, indent=2), overwrite)
    _write_file(folder / SUMMARY_FILES["report"], _summary_page(summary, model), overwrite)
    return summary


def _write_file(path: Path, text: str, overwrite: bool) -> None:
    """Write ``text`` into a hidden file beside ``path`` and rename it into place when complete."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _beside(path, "partial")
    try:
        with open(tmp, "x", encoding="utf-8") as file:
            file.write(text)
        _move_into_place(tmp, path, overwrite)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _summary_page(summary: Mapping[str, Any], model: Mapping[str, str]) -> str:
    """The run's outcome per input: prediction and a link to its report, or the error that stopped it."""
    e = html.escape
    rows = []
    for entry in summary["inputs"]:
        if entry["status"] == "ok":
            report = f"{entry['folder']}/{OUTPUT_FILES['report']}"
            outcome = f'<a href="{e(report)}">{e(entry["prediction"])}</a> ({entry["confidence"]:.3f})'
        else:
            outcome = f'<span class="warn">failed: {e(entry["error"])}</span>'
        rows.append(f'<tr class="{e(entry["status"])}"><td>{e(entry["source"])}</td><td>{outcome}</td></tr>')
    failed = sum(entry["status"] != "ok" for entry in summary["inputs"])
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>ABN run: {len(rows)} inputs, {failed} failed</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:1em auto}}
table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:2px 8px;text-align:left}}
.warn{{color:#a00}}</style></head><body>
<h1>{len(rows)} inputs, {failed} failed</h1>
<p>Input: <span id="input">{e(summary["input"])}</span></p>
<p class="warn">{e(model.get("intended_use") or "Research use only.")}</p>
<table><tr><th>input</th><th>prediction</th></tr>{"".join(rows)}</table>
{_model_table(model, summary["created"])}
</body></html>
"""
