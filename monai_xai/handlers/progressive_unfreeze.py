"""Backbone freezing policies for fine-tuning a pretrained encoder, as ignite handlers selected by name.

``all`` trains everything; ``frozen`` keeps the whole backbone frozen; ``progressive_epochs`` starts
frozen and gives back one stage every ``interval`` epochs, from the deepest (``layer4``) to the stem;
``progressive_plateau`` gives back the next stage whenever the validation metric has not improved for
``patience`` validations. Deep stages are the most task-specific, so they adapt first, while the generic
early filters of the pretrained encoder are protected until the heads have settled.
"""

from __future__ import annotations

import logging

from ignite.engine import Engine, Events
from torch import nn

from monai_xai.networks.nets.resnet_encoder import ENCODER_STAGES

__all__ = [
    "FREEZE_POLICIES",
    "EpochUnfreeze",
    "FreezePolicy",
    "FrozenBackbone",
    "PlateauUnfreeze",
    "TrainAll",
    "get_freeze_policy",
]

logger = logging.getLogger(__name__)

#: Policy classes by name.
FREEZE_POLICIES: dict[str, type[FreezePolicy]] = {}

_ALL = len(ENCODER_STAGES)


def _encoder(network: nn.Module):
    return getattr(network, "module", network).backbone


class FreezePolicy:
    """Sets how many encoder stages are frozen (``trainer.state.frozen_stages``) before each epoch.

    ``state_dict``/``load_state_dict`` let :class:`~monai_xai.handlers.ResumableCheckpointer` keep the
    policy's progress across a resumed run. In distributed runs rank 0's choice is broadcast.
    """

    name = ""

    def __init__(self, network: nn.Module) -> None:
        self.network = network
        self.frozen = self.initial()

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        FREEZE_POLICIES[cls.name] = cls

    def initial(self) -> int:
        return 0

    def frozen_at(self, epoch: int) -> int:
        """Stages frozen during ``epoch`` (1-based)."""
        return self.frozen

    def attach(self, trainer: Engine) -> None:
        trainer.add_event_handler(Events.EPOCH_STARTED, self.apply)

    def apply(self, trainer: Engine) -> None:
        import ignite.distributed as idist

        frozen = self.frozen_at(trainer.state.epoch)
        if idist.get_world_size() > 1:  # only rank 0 validates: its decision holds for every rank
            frozen = self.frozen = int(idist.broadcast(frozen, src=0))
        encoder = _encoder(self.network)
        if frozen != encoder.frozen_stages:
            trainable = ", ".join(ENCODER_STAGES[frozen:]) or "none"
            logger.info(
                f"epoch {trainer.state.epoch}: {frozen} backbone stages frozen; trainable: {trainable}"
            )
        encoder.freeze(frozen)
        trainer.state.frozen_stages = frozen

    def state_dict(self) -> dict:
        return {"frozen": self.frozen}

    def load_state_dict(self, state: dict) -> None:
        self.frozen = int(state["frozen"])


class TrainAll(FreezePolicy):
    """Every stage trains from the first epoch; works for any network (nothing to freeze)."""

    name = "all"

    def apply(self, trainer: Engine) -> None:
        trainer.state.frozen_stages = 0


class FrozenBackbone(FreezePolicy):
    """The backbone never trains: only neck and heads learn (a linear-probe-like check of the features)."""

    name = "frozen"

    def initial(self) -> int:
        return _ALL


class EpochUnfreeze(FreezePolicy):
    """Backbone frozen for the first ``interval`` epochs, then one more stage trainable every ``interval``."""

    name = "progressive_epochs"

    def __init__(self, network: nn.Module, interval: int = 2) -> None:
        if interval < 1:
            raise ValueError(f"unfreeze interval must be at least 1 epoch, got {interval}")
        self.interval = interval
        super().__init__(network)

    def initial(self) -> int:
        return _ALL

    def frozen_at(self, epoch: int) -> int:
        self.frozen = max(0, _ALL - (epoch - 1) // self.interval)
        return self.frozen


class PlateauUnfreeze(FreezePolicy):
    """Starts frozen; the next stage becomes trainable after ``patience`` validations without a new best.

    Attach it to the trainer (it applies the current state each epoch) and call :meth:`attach_evaluator`
    on the validation evaluator whose ``metric`` it watches (greater is better).
    """

    name = "progressive_plateau"

    def __init__(
        self, network: nn.Module, evaluator: Engine, metric: str = "val_mAP", patience: int = 1
    ) -> None:
        if patience < 1:
            raise ValueError(f"patience must be at least 1 validation, got {patience}")
        self.metric, self.patience = metric, patience
        self.best, self.waited = -float("inf"), 0
        super().__init__(network)
        evaluator.add_event_handler(Events.EPOCH_COMPLETED, self.observe)

    def initial(self) -> int:
        return _ALL

    def observe(self, evaluator: Engine) -> None:
        value = evaluator.state.metrics.get(self.metric)
        if value is None:
            raise KeyError(
                f"progressive_plateau watches {self.metric!r}, which the evaluator does not compute"
            )
        if value > self.best:
            self.best, self.waited = float(value), 0
            return
        self.waited += 1
        if self.waited >= self.patience and self.frozen > 0:
            self.frozen -= 1
            self.best, self.waited = float(value), 0

    def state_dict(self) -> dict:
        return {"frozen": self.frozen, "best": self.best, "waited": self.waited}

    def load_state_dict(self, state: dict) -> None:
        self.frozen, self.best, self.waited = int(state["frozen"]), float(state["best"]), int(state["waited"])


def get_freeze_policy(
    name: str,
    network: nn.Module,
    evaluator: Engine | None = None,
    interval: int = 2,
    metric: str = "val_mAP",
    patience: int = 1,
) -> FreezePolicy:
    """Build the policy ``name`` (see :data:`FREEZE_POLICIES`) for ``network``'s ``backbone``."""
    if name not in FREEZE_POLICIES:
        raise ValueError(f"unknown freeze policy {name!r}; valid policies: {', '.join(FREEZE_POLICIES)}")
    if name == "progressive_epochs":
        return EpochUnfreeze(network, interval)
    if name == "progressive_plateau":
        if evaluator is None:
            raise ValueError("progressive_plateau needs the validation evaluator whose metric it watches")
        return PlateauUnfreeze(network, evaluator, metric, patience)
    return FREEZE_POLICIES[name](network)
