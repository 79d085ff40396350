"""MONAI's MLFlowHandler, made safe for resumed runs."""

from __future__ import annotations

import logging
from typing import Any

from monai.handlers import MLFlowHandler

from monai_xai.runs import RunFolder

__all__ = ["ResumableMLFlowHandler"]

logger = logging.getLogger(__name__)

#: MLflow tags that tie a tracking run to the run folder it logs (``run.json``'s ``uid`` and fingerprint).
UID_TAG = "monai_xai.run_uid"
FINGERPRINT_TAG = "monai_xai.fingerprint"


class ResumableMLFlowHandler(MLFlowHandler):
    """Continues the MLflow run of its own run folder only, and never fails on a parameter logged before.

    MONAI's handler appends to the newest unfinished run of the same name, whichever process or settings
    created it. Given the claimed ``run_folder``, this one continues only the MLflow run tagged with that
    folder's ``uid`` (set back to RUNNING if a crash or a signal had ended it) and otherwise creates a new one
    with the tag; without a ``run_folder`` it behaves as MONAI's. While it logs, the run is watched
    (:func:`monai_xai.tracking.watch_run`): an exception or a signal marks it FAILED or KILLED.

    MLflow refuses to change a logged parameter; a run resumed with, say, more epochs would crash at its first
    step. Parameters that already have a value are kept, a changed value is reported in the log and recorded
    as the tag ``changed.<param>`` (``"<old> -> <new>"``).

    Args:
        run_folder: the claimed :class:`~monai_xai.runs.RunFolder` of this training run, or None.
        kwargs: MONAI's ``MLFlowHandler`` arguments.
    """

    def __init__(self, *args: Any, run_folder: RunFolder | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.run_folder = run_folder
        self.tracking_uri = kwargs.get("tracking_uri", args[0] if args else None)

    def start(self, engine) -> None:
        from monai_xai.tracking import watch_run

        if self.cur_run is None and self.run_folder is not None:
            self._set_experiment()
            self.cur_run = self._own_run()
        super().start(engine)
        if self.cur_run is not None:
            watch_run(self.tracking_uri, self.cur_run.info.run_id)

    def _own_run(self):
        """The run tagged with the folder's uid (made RUNNING again), or a new one carrying the tag."""
        folder = self.run_folder
        assert folder is not None and self.experiment is not None
        if folder.uid is None:
            raise RuntimeError(
                f"{folder.run_dir}: the run folder must be claimed before MLflow logging starts"
            )
        found = self.client.search_runs(
            [self.experiment.experiment_id], filter_string=f"tags.`{UID_TAG}` = '{folder.uid}'", max_results=1
        )
        if found:
            run = found[0]
            if run.info.status != "RUNNING":
                self.client.update_run(run.info.run_id, status="RUNNING")
            return self.client.get_run(run.info.run_id)
        tags = {UID_TAG: folder.uid, FINGERPRINT_TAG: folder.fingerprint}
        return self.client.create_run(self.experiment.experiment_id, run_name=self.run_name, tags=tags)

    def _log_params(self, params: dict[str, Any]) -> None:
        if self.cur_run is not None:
            run_id = self.cur_run.info.run_id
            logged = self.client.get_run(run_id).data.params
            changed = {k: v for k, v in params.items() if k in logged and logged[k] != str(v)}
            for key, value in changed.items():
                logger.warning(f"MLflow param {key!r} stays {logged[key]!r}; this resumed run uses {value!r}")
                self.client.set_tag(run_id, f"changed.{key}", f"{logged[key]} -> {value}")
            params = {k: v for k, v in params.items() if k not in logged}
        if params:
            super()._log_params(params)
