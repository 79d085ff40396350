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
    """The trainer's epoch and iteration as a checkpoint entry.

    Not ignite's ``Engine.state_dict``: that also stores ``max_epochs`` and ``epoch_length``, which a resumed
    run takes from its own configuration (more epochs, another batch size); existing ``latest.pt`` files hold
    only these two counters.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.engine.state.epoch, "iteration": self.engine.state.iteration}

    def load_state_dict(self, state: Mapping[str, int]) -> None:
        self.engine.state.epoch, self.engine.state.iteration = state["epoch"], state["iteration"]


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
    """

    def __init__(self, checkpoint_dir: str | os.PathLike, objects: Mapping[str, object], resume: bool = True):
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
        loader = CheckpointLoader(
            str(self.path), {**self.objects, "engine": _Progress(engine)}, name=__name__, map_location="cpu"
        )
        try:
            loader(engine)
        except (KeyError, ValueError, RuntimeError) as err:
            raise ValueError(f"{self.path}: cannot resume from this checkpoint ({err})") from err
        logger.info(f"resumed from {self.path} at epoch {engine.state.epoch}")


class BestModelSaver:
    """Keep ``<dir>/best.pt`` (network weights) for the best value of one evaluator metric.

    The best value so far lives in ``best.json`` beside it, so a resumed run only replaces the
    model when it improves on what was saved before the interruption. A tie replaces it too: on an easy
    validation set the score saturates (AUC 1.0 from the third epoch of the demo), and of equally scored
    models the later one has trained longer.

    Not MONAI's ``CheckpointSaver(save_key_metric=True, key_metric_filename="best.pt")``: it deletes the old
    best file and then writes the new one in place (``atomic=False``), so a kill in between loses the best
    model, and it remembers the best score only in memory or inside a checkpoint (``key_metric_save_state``)
    that a restarted run must load first, where ``best.json`` is read on construction.
    """

    def __init__(
        self,
        checkpoint_dir: str | os.PathLike,
        network: torch.nn.Module,
        metric: str,
        greater_is_better: bool = True,
    ):
        self.path = Path(checkpoint_dir) / "best.pt"
        self.record = self.path.with_suffix(".json")
        self.network, self.metric, self.sign = network, metric, 1.0 if greater_is_better else -1.0
        self.best = -float("inf")
        if self.record.is_file() and self.path.is_file():
            saved = json.loads(self.record.read_text())
            if saved.get("metric") == metric:
                self.best = self.sign * float(saved["value"])

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
            atomic_write_json(self.record, record)
