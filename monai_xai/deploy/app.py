"""The MONAI Deploy application: DICOM study or image files in; probabilities, overlay, Secondary Capture and
report out, per selected series or file.

Run it with ``python -m monai_xai.deploy -i <input> -o <output> -m <model.ts> [--rules rules.json]
[--overwrite] [--include-identifiers] [--model-sha256 HEX]``; see the "Deploy" section of
``bundles/abn_classification/docs/README.md`` for the export, the packaging and what is written.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

try:
    from holoscan.conditions import CountCondition
    from monai.deploy.core import AppContext, Application
    from monai.deploy.operators import DICOMDataLoaderOperator, DICOMSeriesSelectorOperator
except ImportError as err:  # the SDK is an optional extra
    raise ImportError(
        'monai_xai.deploy.app needs the MONAI Deploy App SDK: pip install "monai-xai[deploy]"'
    ) from err

from monai_xai.deploy.model import DeployedABN, load_selection_rules
from monai_xai.deploy.operators import ABNInferenceOperator, ABNOutputWriterOperator
from monai_xai.deploy.outputs import SUMMARY_FILES
from monai_xai.errors import InputError

__all__ = ["ABNDeployApp", "main"]

logger = logging.getLogger(__name__)


class ABNDeployApp(Application):
    """Classify a DICOM study (the series its rules select) or PNG/JPEG/TIFF/NIfTI files with an exported ABN.

    The graph: ``DICOMDataLoaderOperator`` -> ``DICOMSeriesSelectorOperator`` (both from the SDK) ->
    :class:`~monai_xai.deploy.operators.ABNInferenceOperator` ->
    :class:`~monai_xai.deploy.operators.ABNOutputWriterOperator`. A single file given as input skips the
    DICOM operators.

    Args:
        argv: command line, ``[python, program, -i, ..., -o, ..., -m, ...]`` (the SDK's arguments).
        rules_file: series selection rules (JSON); by default the model's exported ``series_selection``.
        overwrite: replace results of an earlier run in the output folder (else that is an error).
        include_identifiers: show patient identifiers (name, ID, birth date...) in the HTML reports.
        model_sha256: the model file's expected SHA-256; another file is refused.

    After :meth:`run`, :attr:`summary` is what :func:`~monai_xai.deploy.outputs.write_run` returned.
    """

    def __init__(
        self,
        argv: Sequence[str] | None = None,
        rules_file: str | os.PathLike | None = None,
        overwrite: bool = False,
        include_identifiers: bool = False,
        model_sha256: str | None = None,
    ) -> None:
        self.rules_file = None if rules_file is None else Path(rules_file)
        self.overwrite = overwrite
        self.include_identifiers = include_identifiers
        self.model_sha256 = model_sha256
        self.writer: ABNOutputWriterOperator | None = None
        super().__init__(list(argv) if argv is not None else [sys.executable, *sys.argv])

    @property
    def summary(self) -> dict[str, Any] | None:
        """The run's summary (``None`` before the outputs are written), for the exit status."""
        return None if self.writer is None else self.writer.summary

    def compose(self) -> None:
        context: AppContext = Application.init_app_context(self.argv)
        input_path, output_path = Path(context.input_path), Path(context.output_path)
        if not input_path.exists():
            raise InputError(input_path, "input not found (pass a DICOM folder or image files with -i)")
        model = DeployedABN(context.model_path, sha256=self.model_sha256)
        logger.info(f"model {model.info['name']} {model.info['version']} ({model.path}) on {model.device}")
        is_folder = input_path.is_dir()
        # without the DICOM loader, inference starts the graph and must run once
        once = [] if is_folder else [CountCondition(self, 1)]
        infer = ABNInferenceOperator(
            self, *once, model=model, input_path=input_path, receive_series=is_folder, name="abn_inference"
        )
        writer = self.writer = ABNOutputWriterOperator(
            self,
            model_info=model.info,
            output_folder=output_path,
            input_path=input_path,
            include_identifiers=self.include_identifiers,
            overwrite=self.overwrite,
            name="abn_output_writer",
        )
        if is_folder:
            rules = load_selection_rules(self.rules_file) if self.rules_file else model.series_rules
            if rules is None:
                raise InputError(
                    model.path, "no series selection rules exported with the model; pass --rules rules.json"
                )
            loader = DICOMDataLoaderOperator(
                self, CountCondition(self, 1), input_folder=input_path, must_load=False, name="dicom_loader"
            )
            selector = DICOMSeriesSelectorOperator(
                self, rules=json.dumps(rules), all_matched=True, name="series_selector"
            )
            self.add_flow(loader, selector, {("dicom_study_list", "dicom_study_list")})
            self.add_flow(selector, infer, {("study_selected_series_list", "study_selected_series_list")})
        self.add_flow(infer, writer, {("predictions", "predictions")})


def main(argv: Sequence[str] | None = None) -> None:
    """Command line: the SDK's ``-i/-o/-m/-l/-w`` plus ``--rules``, ``--overwrite``, ``--include-identifiers``
    and ``--model-sha256``.

    Exits non-zero when the input cannot be used or when every series and file failed; with some left, the
    failed ones are in the summary and the run counts as done (a study's other series are still worth
    reading, and a script can find the failures in ``summary.json``).
    """
    argv = list(sys.argv if argv is None else argv)
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--rules", type=Path, default=None)
    parser.add_argument("--overwrite", action="store_true")
    parser.add_argument("--include-identifiers", action="store_true")
    parser.add_argument("--model-sha256", default=None)
    known, rest = parser.parse_known_args(argv[1:])
    app = ABNDeployApp(
        [sys.executable, argv[0], *rest],
        rules_file=known.rules,
        overwrite=known.overwrite,
        include_identifiers=known.include_identifiers,
        model_sha256=known.model_sha256,
    )
    try:
        app.run()
        message, fatal = _verdict(app.summary, app.writer.output_folder)
    except InputError as err:  # the problem, not a traceback through Holoscan, is the last line printed
        message, fatal = str(err), True
    del app
    gc.collect()  # its Holoscan context logs its end when the app goes: before the verdict, not after it
    if fatal:
        raise SystemExit(f"error: {message}")
    if message:
        logger.warning(message)


def _verdict(summary: dict[str, Any] | None, output_folder: Path) -> tuple[str | None, bool]:
    """What the end of a run says: the failed inputs, if any, and whether they fail the run (all failed)."""
    if summary is None:
        return f"{output_folder}: nothing was written", True
    inputs = summary["inputs"]
    failed = [entry for entry in inputs if entry["status"] != "ok"]
    if not failed:
        return None, False
    report = output_folder / SUMMARY_FILES["report"]
    causes = "; ".join(f"{entry['source']}: {entry['error']}" for entry in failed)
    fatal = len(failed) == len(inputs)
    return f"{len(failed)} of {len(inputs)} inputs failed (see {report}): {causes}", fatal
