"""Atomic checkpoints and resume: a killed run continues from its last completed epoch."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path

import torch
from ignite.engine import Engine, Events
from monai.handlers import CheckpointLoader

from monai_xai.flags import as_bool
from monai_xai.utils import atomic_save, atomic_write_json

__all__ = ["ResumableCheckpointer", "BestModelSaver"]

logger = logging.getLogger(__name__)


def _state_dict(obj) -> dict:
    return obj.state_dict() if hasattr(obj, "state_dict") else obj


def _unwrap(module):
    """The module inside a DistributedDataParallel wrapper, so checkpoints load anywhere."""
    return getattr(module, "module", module)


class _Progress:
    """The trainer's epoch, iteration and epoch budget as a checkpoint entry.

    Not ignite's ``Engine.state_dict``: loading that would also restore ``max_epochs`` and ``epoch_length``,
    which a resumed run takes from its own configuration (more epochs, another batch size). The budget is
    stored only to notice that it changed (``saved_max_epochs``); files without it are read as well.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.saved_max_epochs: int | None = None

    def state_dict(self) -> dict[str, int]:
        state = self.engine.state
        return {"epoch": state.epoch, "iteration": state.iteration, "max_epochs": int(state.max_epochs or 0)}

    def load_state_dict(self, state: Mapping[str, int]) -> None:
        self.engine.state.epoch, self.engine.state.iteration = state["epoch"], state["iteration"]
        self.saved_max_epochs = state.get("max_epochs")


def _replay_schedules(objects: Mapping[str, object], fresh: Mapping[str, dict]) -> dict[str, float]:
    """Put each learning-rate scheduler where its new configuration would be after the steps it has taken.

    ``fresh`` holds the schedulers' states as configured for this run (new ``T_max`` and the like); each
    scheduler goes back to that state, its optimizer's rates back to their initial values, and the scheduler
    steps as often as the checkpoint says it had. Returns the resulting first learning rate per scheduler.
    """
    import warnings

    rates = {}
    for name, scheduler in objects.items():
        if name not in fresh:
            continue
        steps = scheduler.last_epoch
        scheduler.load_state_dict(fresh[name])
        for group in scheduler.optimizer.param_groups:
            group["lr"] = group.get("initial_lr", group["lr"])
        with warnings.catch_warnings():  # "scheduler.step() before optimizer.step()": no training step here
            warnings.simplefilter("ignore", UserWarning)
            for _ in range(steps):
                scheduler.step()
        rates[name] = float(scheduler.optimizer.param_groups[0]["lr"])
    return rates


class ResumableCheckpointer:
    """Save ``<dir>/latest.pt`` after every epoch; on start, load it if present.

    ``objects`` maps names to things with ``state_dict``/``load_state_dict`` (network,
    optimizer, scheduler); the trainer's own state (epoch, iteration) is stored too, so ignite
    resumes at the next epoch. Attach it after the logging handlers: an epoch is then logged
    before it is checkpointed, and a kill between the two repeats the epoch instead of losing its
    history. Only rank 0 writes in distributed runs.

    Loading is MONAI's :class:`~monai.handlers.CheckpointLoader` (weights-only, strict, refuses a checkpoint
    past ``max_epochs``). Saving is not MONAI's ``CheckpointSaver``: it names per-epoch checkpoints
    ``checkpoint_epoch=N.pt`` (only the final and key-metric ones take a fixed name), and it writes in place
    (``atomic=False``) after deleting the previous file, so a kill mid-write would leave no checkpoint at all.

    Args:
        checkpoint_dir: folder of ``latest.pt``.
        objects: what is saved and restored, by name.
        resume: whether to load ``latest.pt`` when the engine starts.
    """

    def __init__(
        self, checkpoint_dir: str | os.PathLike, objects: Mapping[str, object], resume: bool = True
    ) -> None:
        self.path = Path(checkpoint_dir) / "latest.pt"
        self.objects = dict(objects)
        self.resume = as_bool(resume, "resume")

    def attach(self, engine: Engine) -> None:
        if self.resume:
            engine.add_event_handler(Events.STARTED, self.load)
        engine.add_event_handler(Events.EPOCH_COMPLETED, self.save)

    def save(self, engine: Engine) -> None:
        import ignite.distributed as idist

        if idist.get_rank() != 0:
            return
        state = {name: _state_dict(_unwrap(obj)) for name, obj in self.objects.items()}
        state["engine"] = _Progress(engine).state_dict()
        atomic_save(state, self.path)

    def load(self, engine: Engine) -> None:
        if not self.path.is_file():
            return
        from torch.optim.lr_scheduler import LRScheduler, ReduceLROnPlateau

        progress = _Progress(engine)
        # the schedules as this run configures them; a plateau schedule does not depend on the budget
        fresh = {
            name: obj.state_dict()
            for name, obj in self.objects.items()
            if isinstance(obj, LRScheduler) and not isinstance(obj, ReduceLROnPlateau)
        }
        loader = CheckpointLoader(
            str(self.path), {**self.objects, "engine": progress}, name=__name__, map_location="cpu"
        )
        try:
            loader(engine)
        except (KeyError, ValueError, RuntimeError) as err:
            raise ValueError(f"{self.path}: cannot resume from this checkpoint ({err})") from err
        logger.info(f"resumed from {self.path} at epoch {engine.state.epoch}")
        budget = engine.state.max_epochs
        if progress.saved_max_epochs not in (None, budget):
            schedulers = {name: obj for name, obj in self.objects.items() if name in fresh}
            rates = _replay_schedules(schedulers, fresh)
            logger.warning(
                f"{self.path}: the run was planned for {progress.saved_max_epochs} epochs and continues for "
                f"{budget}; learning-rate schedules rebuilt for {budget} epochs, now at "
                + (", ".join(f"{name} lr {rate:.3g}" for name, rate in rates.items()) or "no schedule")
            )


class BestModelSaver:
    """Keep ``<dir>/best.pt`` (network weights) for the best value of one evaluator metric.

    The best value so far lives in ``best.json`` beside it, so a resumed run only replaces the
    model when it improves on what was saved before the interruption. With a ``fingerprint`` (the run
    folder's, :class:`~monai_xai.runs.RunFolder`) the record is written with it and only a record of the same
    fingerprint is taken back: a score left by another run never keeps its model as "best". A tie replaces
    it too: on an easy validation set the score saturates (AUC 1.0 from the third epoch of the demo), and of
    equally scored models the later one has trained longer.

    Not MONAI's ``CheckpointSaver(save_key_metric=True, key_metric_filename="best.pt")``: it deletes the old
    best file and then writes the new one in place (``atomic=False``), so a kill in between loses the best
    model, and it remembers the best score only in memory or inside a checkpoint (``key_metric_save_state``)
    that a restarted run must load first, where ``best.json`` is read on construction.

    Args:
        checkpoint_dir: folder of ``best.pt`` and ``best.json``.
        network: the network whose weights are kept.
        metric: name of the evaluator metric (``engine.state.metrics``) that decides.
        greater_is_better: whether a larger value of ``metric`` is better.
        fingerprint: the run's fingerprint, written into and required of ``best.json``.
    """

    def __init__(
        self,
        checkpoint_dir: str | os.PathLike,
        network: torch.nn.Module,
        metric: str,
        greater_is_better: bool = True,
        fingerprint: str | None = None,
    ) -> None:
        self.path = Path(checkpoint_dir) / "best.pt"
        self.record = self.path.with_suffix(".json")
        self.network, self.metric, self.sign = network, metric, 1.0 if greater_is_better else -1.0
        self.fingerprint = fingerprint
        self.best = -float("inf")
        if self.record.is_file() and self.path.is_file():
            saved = json.loads(self.record.read_text())
            if saved.get("metric") == metric and saved.get("fingerprint") == fingerprint:
                self.best = self.sign * float(saved["value"])
            else:
                logger.warning(
                    f"{self.record} belongs to another run or metric: its best.pt will be replaced"
                )

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.EPOCH_COMPLETED, self)

    def __call__(self, engine: Engine) -> None:
        import ignite.distributed as idist

        value = engine.state.metrics.get(self.metric)
        if value is None or idist.get_rank() != 0:
            return
        if self.sign * float(value) >= self.best:
            self.best = self.sign * float(value)
            atomic_save(_unwrap(self.network).state_dict(), self.path)
            record = {"metric": self.metric, "value": float(value), "epoch": engine.state.epoch}
            if self.fingerprint is not None:
                record["fingerprint"] = self.fingerprint
            atomic_write_json(self.record, record)
