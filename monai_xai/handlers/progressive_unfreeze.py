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
from monai.utils import look_up_option
from torch import nn

from monai_xai.errors import InputError
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

_ALL = len(ENCODER_STAGES)


def _encoder(network: nn.Module):
    return getattr(network, "module", network).backbone


class FreezePolicy:
    """Sets how many encoder stages are frozen (``trainer.state.frozen_stages``) before each epoch.

    ``state_dict``/``load_state_dict`` let :class:`~monai_xai.handlers.ResumableCheckpointer` keep the
    policy's progress across a resumed run. In distributed runs rank 0's choice is broadcast.

    Args:
        network: the detector whose ``backbone`` (a :class:`~monai_xai.networks.nets.ResNetEncoder`, possibly
            under DistributedDataParallel) is frozen stage by stage.
    """

    def __init__(self, network: nn.Module) -> None:
        self.network = network
        self.frozen = self.initial()

    def initial(self) -> int:
        """Stages frozen before the first epoch."""
        return 0

    def frozen_at(self, epoch: int) -> int:
        """Stages frozen during ``epoch`` (1-based)."""
        return self.frozen

    def attach(self, trainer: Engine) -> None:
        """Apply the policy at every epoch start of ``trainer``.

        Args:
            trainer: the engine that trains ``network``.
        """
        trainer.add_event_handler(Events.EPOCH_STARTED, self.apply)

    def apply(self, trainer: Engine) -> None:
        """Freeze the stages of the epoch that starts and record their number in ``trainer.state``."""
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
    """Every stage trains from the first epoch; works for any network (nothing to freeze).

    Args:
        network: the trained network.
    """

    def apply(self, trainer: Engine) -> None:
        trainer.state.frozen_stages = 0


class FrozenBackbone(FreezePolicy):
    """The backbone never trains: only neck and heads learn (a linear-probe-like check of the features).

    Args:
        network: the detector whose ``backbone`` stays frozen.
    """

    def initial(self) -> int:
        return _ALL


class EpochUnfreeze(FreezePolicy):
    """Backbone frozen for the first ``interval`` epochs, then one more stage trainable every ``interval``.

    Args:
        network: the detector whose ``backbone`` is given back stage by stage.
        interval: epochs between two stages given back.
    """

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

    Args:
        network: the detector whose ``backbone`` is given back stage by stage.
        evaluator: the validation evaluator, observed after each of its runs.
        metric: name of the evaluator metric watched (greater is better).
        patience: validations without a new best before the next stage is given back.
    """

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
        """Count a validation without a new best of ``metric``; give a stage back after ``patience``."""
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


#: Policy classes by name (the CenterNet bundle's ``freeze_policy``).
FREEZE_POLICIES: dict[str, type[FreezePolicy]] = {
    "all": TrainAll,
    "frozen": FrozenBackbone,
    "progressive_epochs": EpochUnfreeze,
    "progressive_plateau": PlateauUnfreeze,
}


def get_freeze_policy(
    name: str,
    network: nn.Module,
    evaluator: Engine | None = None,
    interval: int = 2,
    metric: str = "val_mAP",
    patience: int = 1,
) -> FreezePolicy:
    """Build the policy :data:`FREEZE_POLICIES` holds as ``name`` for ``network``'s ``backbone``.

    Args:
        name: one of :data:`FREEZE_POLICIES`.
        network: the detector.
        evaluator: the validation evaluator, required by "progressive_plateau".
        interval: "progressive_epochs"'s epochs between two stages.
        metric: the evaluator metric "progressive_plateau" watches.
        patience: "progressive_plateau"'s validations without a new best before a stage is given back.

    Raises:
        InputError: for an unknown ``name`` (naming the ``freeze_policy`` key and the valid names, in order).
        ValueError: for "progressive_plateau" without an ``evaluator``.
    """
    policy_type = look_up_option(name, FREEZE_POLICIES, default=None)
    if policy_type is None:
        raise InputError(
            "freeze_policy", f"unknown freeze policy {name!r}; valid policies: {', '.join(FREEZE_POLICIES)}"
        )
    if policy_type is EpochUnfreeze:
        return EpochUnfreeze(network, interval)
    if policy_type is PlateauUnfreeze:
        if evaluator is None:
            raise ValueError("progressive_plateau needs the validation evaluator whose metric it watches")
        return PlateauUnfreeze(network, evaluator, metric, patience)
    return policy_type(network)
