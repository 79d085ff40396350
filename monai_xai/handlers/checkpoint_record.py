"""What a checkpoint decides with, chosen in one pass over the validation split and stored beside it."""

from __future__ import annotations

import logging
import os
from abc import ABC, abstractmethod
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from ignite.engine import Engine, Events

from monai_xai.networks.weights import checkpoint_record_path, read_checkpoint_record
from monai_xai.utils import atomic_write_json

__all__ = ["CheckpointRecordFitter"]

logger = logging.getLogger(__name__)


class CheckpointRecordFitter(ABC):
    """Base of the handlers that choose a checkpoint's decision rule on the validation split and store it
    beside the checkpoint (:func:`~monai_xai.networks.weights.checkpoint_record_path`).

    Attached to an evaluator of the validation split, it forgets at ``STARTED``, takes what it needs from
    every iteration (:meth:`collect`) and at ``COMPLETED`` writes ``<checkpoint stem>.<kind>.json`` as
    ``{kind: record}`` with the record of :meth:`choose` after :meth:`settings` (the checkpoint's digest and
    whatever else the choice depends on). :meth:`fit` reuses a stored record of the same weights and
    settings and runs the evaluator only otherwise; evaluations, inference and export then apply the record
    unchanged, on any split, so the split they report never chooses anything.

    Args:
        checkpoint: the weights the network holds (``best.pt``).
        split_name: name of the split the evaluator runs on, recorded (``"val"``); ``"test"`` is refused.
    """

    #: the record's name: its file is ``<checkpoint stem>.<kind>.json``
    kind: str = ""

    def __init__(self, checkpoint: str | os.PathLike, split_name: str = "val") -> None:
        if split_name == "test":
            raise ValueError(
                f"{type(self).__name__}: a decision rule is chosen on the validation split, never on the "
                "test split it is reported on"
            )
        self.checkpoint = Path(checkpoint)
        self.path = checkpoint_record_path(checkpoint, self.kind)
        self.split_name = split_name

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.STARTED, self.reset)
        engine.add_event_handler(Events.ITERATION_COMPLETED, self.collect)
        engine.add_event_handler(Events.COMPLETED, self._write)

    def settings(self) -> dict[str, Any]:
        """What the stored record must match to be reused: the checkpoint's digest, and a subclass's own."""
        from monai_xai.runs import file_digest

        return {"checkpoint": file_digest(self.checkpoint)}

    def read(self) -> dict | None:
        """The stored record, or None."""
        return read_checkpoint_record(self.checkpoint, self.kind)

    def is_current(self) -> bool:
        """The stored record belongs to these weights and these settings."""
        try:
            record = self.read()
        except ValueError:
            return False
        return record is not None and all(record.get(k) == v for k, v in self.settings().items())

    def fit(self, evaluator: Engine) -> dict:
        """The checkpoint's record: the stored one when current, else one pass of ``evaluator``."""
        if self.is_current():
            logger.info(f"{self.kind.replace('_', ' ')} of {self.checkpoint} read from {self.path}")
        else:
            evaluator.run()
        record = self.read()
        assert record is not None
        return record

    @abstractmethod
    def reset(self, engine: Engine) -> None:
        """Forget what the previous pass collected."""

    @abstractmethod
    def collect(self, engine: Engine) -> None:
        """Take what the choice needs from ``engine.state.output`` after an iteration."""

    @abstractmethod
    def choose(self) -> dict[str, Any]:
        """The record's figures, chosen from what the pass collected (the split and settings are added)."""

    def summary(self, record: Mapping[str, Any]) -> str:
        """One line for the log."""
        return ", ".join(f"{k} {v}" for k, v in record.items() if isinstance(v, (int, float)))

    def _write(self, _: Engine) -> None:
        record = plain({**self.settings(), "split": self.split_name, **self.choose()})
        atomic_write_json(self.path, {self.kind: record}, indent=2)
        logger.info(f"{self.kind.replace('_', ' ')} chosen on {self.split_name}: {self.summary(record)}")


def plain(record: Mapping[str, Any]) -> dict[str, Any]:
    """JSON types only (numpy scalars to Python numbers)."""
    return {k: (v.item() if isinstance(v, np.generic) else v) for k, v in record.items()}
