"""MONAI Deploy App SDK operators that classify with an exported ABN and write what a clinician reads.

Why not the SDK's ``MonaiBundleInferenceOperator``: it keeps only the first network output
(``ensure_tuple(outputs)[0]``), so the attention map would be lost; it turns ``"probabilities"`` outputs into
labels with ``int(value)``, i.e. class 0 for any probability below 1; and it feeds DICOM volumes in its own
(W, H, D) layout and drops every transform named ``LoadImage*``, so the bundle's own loader
(``LoadImageOrArrayd``: rescale slope, colour, MONOCHROME1) would not run. :class:`ABNInferenceOperator` runs
the ``preprocessing`` of the bundle's ``inference.json`` unchanged on the selected series' files instead, so
the deployed model sees the pixels it saw in ``inference.json``.

Each input succeeds or fails on its own: a series that cannot be read or classified is an
:class:`~monai_xai.deploy.outputs.InputOutcome` with its error, and the study's other series are still
classified and written.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import tempfile
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

try:
    from monai.deploy.core import Fragment, Operator, OperatorSpec
except ImportError as err:  # the SDK is an optional extra
    raise ImportError(
        'monai_xai.deploy.operators needs the MONAI Deploy App SDK: pip install "monai-xai[deploy]"'
    ) from err

from monai_xai.deploy.model import ABNPrediction, DeployedABN, is_image_file
from monai_xai.deploy.outputs import InputOutcome, series_folder_name, write_run
from monai_xai.errors import InputError

__all__ = ["ABNInferenceOperator", "ABNOutputWriterOperator"]

logger = logging.getLogger(__name__)


class ABNInferenceOperator(Operator):
    """Classify every selected DICOM series and every image file of the input with an exported ABN.

    Named input (only with ``receive_series=True``):
        study_selected_series_list: the ``DICOMSeriesSelectorOperator``'s selection.

    Named output:
        predictions: a list of :class:`~monai_xai.deploy.outputs.InputOutcome`, one per series and file, in
        that order; the ``reference`` of a series is its first DICOM header.

    Args:
        fragment: the application.
        model: the exported ABN.
        input_path: the app's input; PNG/JPEG/TIFF/NIfTI files directly in it (or the file itself) are
            classified too. A single DICOM file given as input is classified without selection rules.
        receive_series: whether a series selector is connected (the input is a folder).
    """

    def __init__(
        self,
        fragment: Fragment,
        *args,
        model: DeployedABN,
        input_path: str | os.PathLike,
        receive_series: bool,
        **kwargs,
    ) -> None:
        self.model = model
        self.input_path = Path(input_path)
        self.receive_series = receive_series
        self.input_name_series = "study_selected_series_list"
        self.output_name = "predictions"
        super().__init__(fragment, *args, **kwargs)

    def setup(self, spec: OperatorSpec) -> None:
        if self.receive_series:
            spec.input(self.input_name_series)
        spec.output(self.output_name)

    def compute(self, op_input, op_output, context) -> None:
        selected = op_input.receive(self.input_name_series) if self.receive_series else []
        outcomes: list[InputOutcome] = []
        with tempfile.TemporaryDirectory(prefix="abn_series_") as tmp:
            for study in selected or []:
                for chosen in study.selected_series:
                    uid = str(chosen.series.SeriesInstanceUID)
                    name = _unique(series_folder_name(uid), outcomes)
                    logger.info(f"classifying series {uid} ({chosen.selection_name})")
                    shown = f"{self.input_path} (series {uid})"  # the input, not the temporary folder
                    outcomes.append(
                        _attempt(name, shown, partial(self._series, chosen.series, Path(tmp) / name))
                    )
        for path in self._image_files():
            logger.info(f"classifying file {path}")
            name = _unique(path.name.split(".")[0] or "file", outcomes)
            outcomes.append(_attempt(name, str(path), partial(self._file, path)))
        if not outcomes:
            raise InputError(
                self.input_path,
                "nothing to classify: no DICOM series matched the selection rules and there are no "
                "PNG/JPEG/TIFF/NIfTI files directly in this folder",
            )
        op_output.emit(outcomes, self.output_name)

    def _series(self, series, folder: Path) -> tuple[ABNPrediction, Any]:
        datasets = [sop.get_native_sop_instance() for sop in series.get_sop_instances()]
        return self.model.predict(_series_source(datasets, folder)), datasets[0]

    def _file(self, path: Path) -> tuple[ABNPrediction, Any]:
        prediction = self.model.predict(path)  # reads any DICOM file: only then is its header trusted
        return prediction, None if is_image_file(path) else _dicom_header(path)

    def _image_files(self) -> list[Path]:
        if self.input_path.is_file():
            return [self.input_path]
        return sorted(p for p in self.input_path.iterdir() if p.is_file() and is_image_file(p))


def _attempt(name: str, shown: str, classify: Callable[[], tuple[ABNPrediction, Any]]) -> InputOutcome:
    """Run ``classify``; whatever one series or file raises is its outcome, and the others still run."""
    try:
        prediction, reference = classify()
    except Exception as err:  # pydicom, MONAI and the network raise many types; none may stop the study
        logger.warning(f"{shown}: cannot be classified: {err}", exc_info=logger.isEnabledFor(logging.DEBUG))
        return InputOutcome(name, shown, error=f"{type(err).__name__}: {err}")
    return InputOutcome(name, shown, dataclasses.replace(prediction, source=shown), reference)


def _unique(name: str, outcomes: list[InputOutcome]) -> str:
    """``name``, or ``name_2``, ``name_3``... when an earlier input took it (``a.png`` and ``a.nii.gz``)."""
    taken = {o.name for o in outcomes}
    candidate, i = name, 1
    while candidate in taken:
        i += 1
        candidate = f"{name}_{i}"
    return candidate


def _series_source(datasets: list, folder: Path) -> Path:
    """A single-file series as its file; a multi-file series as a folder of links to its files only.

    The bundle's loader reads a folder as one series, and the study folder may hold several.
    """
    files = [Path(ds.filename) for ds in datasets]
    if len(files) == 1:
        return files[0]
    folder.mkdir(parents=True)
    for i, file in enumerate(files):
        (folder / f"{i:05d}_{file.name}").symlink_to(file.resolve())
    return folder


def _dicom_header(path: Path):
    """The header of a DICOM file given directly as input, for the identifiers of its Secondary Capture."""
    import pydicom

    return pydicom.dcmread(path, stop_before_pixels=True, force=True)


class ABNOutputWriterOperator(Operator):
    """Write, per prediction, ``probabilities.json``, ``overlay.png``, ``overlay_sc.dcm`` and ``report.html``,
    and the run's ``summary.json`` and ``summary.html`` (see :func:`~monai_xai.deploy.outputs.write_run`).

    Named input:
        predictions: the output of :class:`ABNInferenceOperator`.

    Args:
        fragment: the application.
        model_info: :attr:`~monai_xai.deploy.DeployedABN.info`, written into every output.
        output_folder: one sub-folder per prediction is created here.
        input_path: the app's input as the user gave it, named in the summary.
        include_identifiers: show patient identifiers in the reports.
        overwrite: replace results of an earlier run in ``output_folder``.

    After the run, :attr:`summary` holds the summary, for the app's exit status.
    """

    def __init__(
        self,
        fragment: Fragment,
        *args,
        model_info: dict[str, str],
        output_folder: str | os.PathLike,
        input_path: str | os.PathLike,
        include_identifiers: bool = False,
        overwrite: bool = False,
        **kwargs,
    ) -> None:
        self.model_info = model_info
        self.output_folder = Path(output_folder)
        self.input_path = Path(input_path)
        self.include_identifiers = include_identifiers
        self.overwrite = overwrite
        self.input_name = "predictions"
        self.summary: dict[str, Any] | None = None
        super().__init__(fragment, *args, **kwargs)

    def setup(self, spec: OperatorSpec) -> None:
        spec.input(self.input_name)

    def compute(self, op_input, op_output, context) -> None:
        self.summary = write_run(
            op_input.receive(self.input_name),
            self.output_folder,
            self.model_info,
            self.input_path,
            include_identifiers=self.include_identifiers,
            overwrite=self.overwrite,
        )
        for entry in self.summary["inputs"]:  # the failed ones end the run's output (see app.main)
            if entry["status"] == "ok":
                logger.info(
                    f"{entry['source']}: {entry['prediction']} ({entry['confidence']:.3f}); "
                    f"outputs in {self.output_folder / entry['folder']}"
                )
