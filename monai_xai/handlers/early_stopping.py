"""Stop training once the validation score has stopped improving ("trained until validation stops improving").

MONAI's :class:`~monai.handlers.EarlyStopHandler` needs the trainer at construction when it sits on the
trainer, or a ``set_trainer`` call when it sits on the validator; in a bundle config either ties the trainer
and the evaluator into a reference cycle. This subclass attaches to the trainer (after its
``ValidationHandler``, so the validator has just run) and reads the score from the validator it is given.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import ignite.distributed as idist
from ignite.engine import Engine, Events
from monai.handlers import EarlyStopHandler

from monai_xai.utils import atomic_write_json

__all__ = ["ValidationEarlyStopping"]

logger = logging.getLogger(__name__)


class ValidationEarlyStopping(EarlyStopHandler):
    """Terminate the trainer after ``patience`` validations without a better ``metric`` on ``validator``.

    Epochs without a validation (``val_interval`` > 1) are not counted.

    With a ``state_file`` the count survives a resume: after every epoch, validated or not, the count and
    the best score so far are written to it under that epoch's number, and the first epoch of a run takes
    them back from the entry of the epoch before it, the one the trainer resumed from (a fresh run starts at
    epoch 1, finds no entry for epoch 0 and counts from zero). A resumed run thus stops after the same epoch
    as one that was never interrupted. The entries are per epoch, not a single count, because this handler
    writes before the checkpointer (``ResumableCheckpointer``, attached after it) saves the epoch: a run
    killed between the two writes resumes from the epoch before, and reading the newest entry would count
    the repeated epoch twice. Entries of later epochs, left by an older or a killed run, are dropped at the
    next write. Without a ``state_file`` a resumed run counts from zero again.

    Under torchrun the validator runs on rank 0 only (``monai_xai.bundle.is_not_rank0``): every process
    attaches this handler, rank 0 decides and every epoch sends its decision to the others, so that all of
    them stop after the same epoch instead of the others waiting for rank 0 in the next one. Only rank 0
    reads and writes the ``state_file``.

    Args:
        validator: the evaluator the trainer's ``ValidationHandler`` runs.
        metric: name of the validator's metric, e.g. ``"val_auc"`` or ``"val_loss"``.
        patience: validations without improvement before stopping; None builds a handler that must not be
            attached (configs add it only when a patience is set).
        min_delta: a change for the better of at most this much is not an improvement.
        higher_is_better: False for metrics to minimise, such as a validation loss.
        state_file: JSON file of the count and the best score after each epoch (``{"<epoch>": {"counter":
            int, "best_score": float or null}}``, the score as maximised: a loss negated; the bundles use
            ``early_stopping.json`` beside the checkpoints' ``latest.pt``); None keeps them in memory only.
        fingerprint: the run folder's fingerprint (:class:`~monai_xai.runs.RunFolder`), stored in the state
            file; a file of another fingerprint is not taken back (the count starts from zero).
    """

    def __init__(
        self,
        validator: Engine,
        metric: str,
        patience: int | None,
        min_delta: float = 0.0,
        higher_is_better: bool = True,
        state_file: str | os.PathLike | None = None,
        fingerprint: str | None = None,
    ) -> None:
        super().__init__(patience=patience, score_function=self._score, min_delta=min_delta)  # type: ignore[arg-type]
        self.validator = validator
        self.metric = metric
        self.sign = 1.0 if higher_is_better else -1.0
        self.state_file = None if state_file is None else Path(state_file)
        self.fingerprint = fingerprint
        self._entries: dict[int, dict[str, Any]] | None = None  # None until the first epoch of a run

    def _score(self, _: Engine) -> float:
        """The metric turned into a score to maximise (ignite's ``EarlyStopping`` only maximises)."""
        metrics = self.validator.state.metrics
        if self.metric not in metrics:
            raise KeyError(
                f"early stopping reads validation metric {self.metric!r}, the validator has {sorted(metrics)}"
            )
        return self.sign * float(metrics[self.metric])

    def attach(self, engine: Engine) -> None:
        if not self.patience or self.patience < 1:
            raise ValueError(
                f"early stopping needs a patience of at least 1 validation, got {self.patience!r}"
            )
        self.set_trainer(engine)
        super().attach(engine)
        if self.state_file is not None:
            # only marks a new run: the state is restored in the first EPOCH_COMPLETED, when the checkpointer
            # has surely loaded the trainer's epoch, whatever the order of the STARTED handlers
            engine.add_event_handler(Events.STARTED, self._new_run)

    def _new_run(self, _: Engine) -> None:
        self._entries = None

    def _read_state(self) -> dict[int, dict[str, Any]]:
        """The entries of ``state_file`` by epoch; none when it does not exist; ValueError when unusable."""
        path = self.state_file
        assert path is not None
        if not path.exists():
            return {}
        try:
            data = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise ValueError(f"{path}: cannot read the early-stopping state ({err})") from err

        def bad(problem: str) -> ValueError:
            return ValueError(
                f"{path}: not an early-stopping state file: {problem} (expected an object of epoch numbers "
                'to {"counter": int, "best_score": float or null}; delete it to count from zero)'
            )

        if not isinstance(data, dict):
            raise bad(f"the top level is a {type(data).__name__}")
        saved_fingerprint = data.pop("fingerprint", None)
        if saved_fingerprint != self.fingerprint:
            logger.warning(
                f"{path} belongs to another run (fingerprint {saved_fingerprint}): counting from zero"
            )
            return {}
        entries = {}
        for key, entry in data.items():
            if not (isinstance(key, str) and key.isascii() and key.isdigit()):
                raise bad(f"key {key!r} is not an epoch number")
            if not isinstance(entry, dict) or set(entry) != {"counter", "best_score"}:
                raise bad(f"epoch {key}: {entry!r}")
            counter, best = entry["counter"], entry["best_score"]
            if isinstance(counter, bool) or not isinstance(counter, int) or counter < 0:
                raise bad(f"epoch {key}: counter {counter!r}")
            if best is not None and (isinstance(best, bool) or not isinstance(best, (int, float))):
                raise bad(f"epoch {key}: best_score {best!r}")
            entries[int(key)] = {"counter": counter, "best_score": None if best is None else float(best)}
        return entries

    def _restore(self, engine: Engine) -> None:
        """Take the count and best score back from the entry of the epoch this run resumed from."""
        self._entries = self._read_state()
        resumed_from = engine.state.epoch - 1
        entry = self._entries.get(resumed_from)
        handler = self._handler
        assert handler is not None  # set_trainer ran in attach
        if entry is None:
            if resumed_from > 0:
                logger.warning(
                    f"{self.state_file} has no entry for epoch {resumed_from}, the one this run resumed "
                    "from: early stopping counts from zero again"
                )
            handler.counter, handler.best_score = 0, None
            return
        handler.counter, handler.best_score = entry["counter"], entry["best_score"]
        logger.info(
            f"early stopping resumed from {self.state_file} at epoch {resumed_from}: {handler.counter}/"
            f"{self.patience} validations without improvement, best score {handler.best_score}"
        )

    def _record(self, epoch: int) -> None:
        assert self._entries is not None and self.state_file is not None and self._handler is not None
        best = self._handler.best_score
        self._entries = {e: entry for e, entry in self._entries.items() if e < epoch}
        self._entries[epoch] = {
            "counter": int(self._handler.counter),
            "best_score": None if best is None else float(best),
        }
        state: dict[str, Any] = {str(e): self._entries[e] for e in sorted(self._entries)}
        if self.fingerprint is not None:
            state["fingerprint"] = self.fingerprint
        atomic_write_json(self.state_file, state, indent=2)

    def __call__(self, engine: Engine) -> None:
        persist = self.state_file is not None and idist.get_rank() == 0
        if persist and self._entries is None:
            self._restore(engine)  # before this epoch's update
        if self.validator.state.epoch == engine.state.epoch:  # the validator ran this epoch
            super().__call__(engine)
        if persist:
            self._record(engine.state.epoch)
        stop = bool(engine.should_terminate)
        if idist.get_world_size() > 1:
            stop = bool(idist.broadcast(int(stop), src=0))
        if stop and not engine.should_terminate:
            engine.terminate()
