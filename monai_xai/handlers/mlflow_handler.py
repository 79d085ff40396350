"""MONAI's MLFlowHandler, made safe for resumed runs."""

from __future__ import annotations

import logging
from typing import Any

from monai.handlers import MLFlowHandler

__all__ = ["ResumableMLFlowHandler"]

logger = logging.getLogger(__name__)


class ResumableMLFlowHandler(MLFlowHandler):
    """Continues the unfinished run of the same name, and never fails on a parameter logged before.

    MLflow refuses to change a logged parameter; a run resumed with, say, more epochs would crash
    at its first step. Parameters that already have a value are kept, and a changed value is
    reported in the log instead.
    """

    def _log_params(self, params: dict[str, Any]) -> None:
        if self.cur_run is not None:
            logged = self.client.get_run(self.cur_run.info.run_id).data.params
            changed = {k: v for k, v in params.items() if k in logged and logged[k] != str(v)}
            for key, value in changed.items():
                logger.warning(f"MLflow param {key!r} stays {logged[key]!r}; this resumed run uses {value!r}")
            params = {k: v for k, v in params.items() if k not in logged}
        if params:
            super()._log_params(params)
