"""Base of the handlers that write files from what an engine produced, and log them to an MLflow run."""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ignite.engine import Engine, Events

from monai_xai.tracking import log_to_run
from monai_xai.utils import atomic_write_json, atomic_write_text

__all__ = ["ReportHandler"]


class ReportHandler:
    """Collects what an engine produces over a pass and writes files from it into ``output_dir``.

    :meth:`attach` registers :meth:`reset` at ``reset_event``, :meth:`collect` after every iteration and
    :meth:`write` at ``write_event``: by default once per run (``STARTED``/``COMPLETED``), as an evaluation
    report needs; handlers that draw every validation epoch of a training set the epoch events instead.
    Files are written atomically (:meth:`save_json`, :meth:`save_csv`, or the ``monai_xai.utils`` writers), so
    a killed run never leaves a truncated one.

    Args:
        output_dir: folder of the written files, created on the first write.
        tracking_uri: MLflow tracking URI that :meth:`log` writes to.
        experiment_name: MLflow experiment of the run.
        run_name: MLflow run that :meth:`log` adds metrics and files to; nothing is logged unless both
            ``tracking_uri`` and ``run_name`` are given.
    """

    reset_event: Events = Events.STARTED
    write_event: Events = Events.COMPLETED

    def __init__(
        self,
        output_dir: str | os.PathLike,
        tracking_uri: str | None = None,
        experiment_name: str | None = None,
        run_name: str | None = None,
    ) -> None:
        self.output_dir = Path(output_dir)
        self.tracking_uri, self.experiment_name, self.run_name = tracking_uri, experiment_name, run_name

    def attach(self, engine: Engine) -> None:
        """Register :meth:`reset`, :meth:`collect` and :meth:`write` on ``engine``."""
        engine.add_event_handler(self.reset_event, self.reset)
        engine.add_event_handler(Events.ITERATION_COMPLETED, self.collect)
        engine.add_event_handler(self.write_event, self.write)

    def reset(self, engine: Engine) -> None:
        """Forget what the previous pass collected."""

    def collect(self, engine: Engine) -> None:
        """Take what is needed from ``engine.state`` after an iteration."""

    def write(self, engine: Engine) -> Any:
        """Write the files of the pass that ended."""
        raise NotImplementedError(f"{type(self).__name__} must implement write")

    def save_json(self, name: str, obj: Any) -> Path:
        """Write ``obj`` as indented JSON to ``<output_dir>/<name>``."""
        return atomic_write_json(self.output_dir / name, obj, indent=2)

    def save_csv(self, name: str, fieldnames: Sequence[str], rows: Iterable[Mapping[str, Any]]) -> Path:
        """Write ``rows`` under a ``fieldnames`` header to ``<output_dir>/<name>``."""
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(fieldnames))
        writer.writeheader()
        writer.writerows(rows)
        return atomic_write_text(self.output_dir / name, buffer.getvalue())

    def log(
        self,
        metrics: Mapping[str, float] | None = None,
        artifacts: Sequence[str | os.PathLike] | None = None,
        artifact_path: str | None = None,
    ) -> None:
        """Add ``metrics`` and the files or folders ``artifacts`` (under ``artifact_path``) to the MLflow run
        ``run_name``, when there is one."""
        if not (self.tracking_uri and self.run_name):
            return
        log_to_run(
            self.tracking_uri,
            self.experiment_name,
            self.run_name,
            metrics=metrics,
            artifacts=list(artifacts or []),
            artifact_path=artifact_path,
        )
