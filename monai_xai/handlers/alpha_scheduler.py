"""Epoch schedules of the ``alpha`` weight of the dynamic ABN loss, and the handler that applies them (MONAI's
``ParamSchedulerHandler`` at every epoch start).

Funatsu et al. switch alpha from 0.9 to 0.1 halfway through training (``step``), so the network first learns
where to look and then what to decide; ``linear`` and ``cosine`` make the same move gradually and ``constant``
is the ablation without a move. Epochs are counted from 0: a schedule is evaluated at e in [0, max_epochs).
"""

from __future__ import annotations

import math
import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

from ignite.engine import Engine, Events
from monai.handlers import ParamSchedulerHandler
from monai.utils import look_up_option

from monai_xai.errors import InputError

__all__ = [
    "ALPHA_SCHEDULES",
    "AlphaSchedule",
    "AlphaScheduleHandler",
    "ConstantAlphaSchedule",
    "CosineAlphaSchedule",
    "LinearAlphaSchedule",
    "StepAlphaSchedule",
    "get_alpha_schedule",
]


class AlphaSchedule(ABC):
    """alpha as a function of the 0-based epoch, between ``high`` (start) and ``low`` (end).

    Args:
        max_epochs: epochs of the planned training.
        high: alpha at the start, in [0, 1].
        low: alpha at the end, in [0, 1].
    """

    def __init__(self, max_epochs: int, high: float = 0.9, low: float = 0.1) -> None:
        if int(max_epochs) != max_epochs or max_epochs < 1:
            raise ValueError(f"max_epochs must be a positive integer, got {max_epochs}")
        for label, value in (("high", high), ("low", low)):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{label} must lie in [0, 1], got {value}")
        self.max_epochs = int(max_epochs)
        self.high = float(high)
        self.low = float(low)

    def progress(self, epoch: int) -> float:
        """Fraction of training done at ``epoch``: 0 at the first epoch, 1 at the last (and after)."""
        if self.max_epochs == 1:
            return 0.0
        return min(max(epoch, 0) / (self.max_epochs - 1), 1.0)

    @abstractmethod
    def __call__(self, epoch: int) -> float:
        """alpha for the 0-based ``epoch``."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(max_epochs={self.max_epochs}, high={self.high}, low={self.low})"


class StepAlphaSchedule(AlphaSchedule):
    """``high`` for epochs e < ``switch_epoch``, ``low`` after.

    Args:
        max_epochs: epochs of the planned training.
        high: alpha before the switch.
        low: alpha from the switch on.
        switch_epoch: 0-based epochs e < switch_epoch (which may be fractional) get ``high``; max_epochs / 2,
            as in the paper, when None.
    """

    def __init__(
        self, max_epochs: int, high: float = 0.9, low: float = 0.1, switch_epoch: float | None = None
    ) -> None:
        super().__init__(max_epochs, high, low)
        self.switch_epoch = self.max_epochs / 2 if switch_epoch is None else float(switch_epoch)
        if not 0.0 <= self.switch_epoch <= self.max_epochs:
            raise ValueError(f"switch_epoch must lie in [0, {self.max_epochs}], got {switch_epoch}")

    def __call__(self, epoch: int) -> float:
        return self.high if epoch < self.switch_epoch else self.low


class LinearAlphaSchedule(AlphaSchedule):
    """Straight line from ``high`` at the first epoch to ``low`` at the last.

    Args:
        max_epochs: epochs of the planned training.
        high: alpha at the first epoch.
        low: alpha at the last epoch.
    """

    def __call__(self, epoch: int) -> float:
        return self.high + (self.low - self.high) * self.progress(epoch)


class CosineAlphaSchedule(AlphaSchedule):
    """Half cosine from ``high`` at the first epoch to ``low`` at the last: flat at both ends.

    Args:
        max_epochs: epochs of the planned training.
        high: alpha at the first epoch.
        low: alpha at the last epoch.
    """

    def __call__(self, epoch: int) -> float:
        return self.low + (self.high - self.low) * 0.5 * (1.0 + math.cos(math.pi * self.progress(epoch)))


class ConstantAlphaSchedule(AlphaSchedule):
    """``high`` at every epoch: the ablation without a move.

    Args:
        max_epochs: epochs of the planned training.
        high: alpha at every epoch.
        low: unused; accepted so that every schedule is built alike.
    """

    def __call__(self, epoch: int) -> float:
        return self.high


#: Schedule classes by name (the bundles' ``alpha_schedule``).
ALPHA_SCHEDULES: dict[str, type[AlphaSchedule]] = {
    "step": StepAlphaSchedule,
    "linear": LinearAlphaSchedule,
    "cosine": CosineAlphaSchedule,
    "constant": ConstantAlphaSchedule,
}


def get_alpha_schedule(
    name: str, max_epochs: int, high: float = 0.9, low: float = 0.1, switch_epoch: float | None = None
) -> AlphaSchedule:
    """Build the schedule :data:`ALPHA_SCHEDULES` holds as ``name``.

    Args:
        name: one of :data:`ALPHA_SCHEDULES`.
        max_epochs: epochs of the planned training.
        high: alpha at the start.
        low: alpha at the end.
        switch_epoch: the "step" schedule's switch (see :class:`StepAlphaSchedule`); refused by the others.

    Raises:
        InputError: for an unknown ``name`` (naming the ``alpha_schedule`` key and the valid names, in
            order), or a ``switch_epoch`` given to another schedule than "step".
    """
    schedule_type = look_up_option(name, ALPHA_SCHEDULES, default=None)
    if schedule_type is None:
        raise InputError(
            "alpha_schedule",
            f"unknown alpha schedule {name!r}; valid schedules: {', '.join(ALPHA_SCHEDULES)}",
        )
    if switch_epoch is None:
        return schedule_type(max_epochs, high, low)
    if not issubclass(schedule_type, StepAlphaSchedule):
        raise InputError(
            "alpha_switch_epoch", f"switch_epoch applies to the 'step' schedule only, not to {name!r}"
        )
    return schedule_type(max_epochs, high, low, switch_epoch=switch_epoch)


class AlphaScheduleHandler(ParamSchedulerHandler):
    """MONAI's ``ParamSchedulerHandler`` at every epoch start, setting ``loss.alpha`` from ``schedule``.

    The value is also stored as ``engine.state.<state_attribute>`` (default ``engine.state.alpha``) so MONAI's
    epoch loggers record it: pass ``state_attributes=["alpha"]`` to ``StatsHandler``, ``MLFlowHandler`` or
    ``TensorBoardStatsHandler``, which read it at EPOCH_COMPLETED, i.e. the value used during that epoch.
    ``engine.state.metrics`` is left alone so that ``alpha`` can never become the key metric.

    Args:
        loss: object with an ``alpha`` attribute, typically :class:`~monai_xai.losses.ABNLoss`.
        schedule: callable of the 0-based epoch, typically from :func:`get_alpha_schedule`.
        state_attribute: name of the ``engine.state`` attribute that receives alpha.
        print_alpha: whether to log alpha at every epoch start.
        name: identifier of the ``logging.logger`` to use; ``engine.logger`` when None.
    """

    def __init__(
        self,
        loss: Any,
        schedule: Callable[[int], float],
        state_attribute: str = "alpha",
        print_alpha: bool = True,
        name: str | None = None,
    ) -> None:
        if not callable(schedule):
            raise TypeError(f"schedule must be callable, got {type(schedule).__name__}")
        super().__init__(
            parameter_setter=self._set_alpha,
            value_calculator=self._alpha_at,
            vc_kwargs={},
            epoch_level=True,
            name=name,
            event=Events.EPOCH_STARTED,
        )
        self.loss = loss
        self.schedule = schedule
        self.state_attribute = state_attribute
        self.print_alpha = print_alpha

    def _alpha_at(self, current_step: int) -> float:
        """alpha for ignite's 1-based ``current_step`` epoch: the schedule counts epochs from 0."""
        return float(self.schedule(current_step - 1))

    def _set_alpha(self, alpha: float) -> None:
        self.loss.alpha = alpha

    def attach(self, engine: Engine) -> None:
        """Register the handler on ``engine`` (a trainer), and a check of its epoch budget at the start.

        Args:
            engine: the trainer whose loss the schedule drives.
        """
        super().attach(engine)
        engine.add_event_handler(Events.STARTED, self._check_max_epochs)

    def _check_max_epochs(self, engine: Engine) -> None:
        planned = getattr(self.schedule, "max_epochs", None)
        if planned is not None and planned != engine.state.max_epochs:
            warnings.warn(
                f"alpha schedule planned for {planned} epochs but the engine runs {engine.state.max_epochs}",
                stacklevel=2,
            )

    def __call__(self, engine: Engine) -> None:
        """Set alpha for the epoch that starts, on the loss and on ``engine.state``."""
        super().__call__(engine)
        alpha = self.loss.alpha
        setattr(engine.state, self.state_attribute, alpha)
        if self.print_alpha:
            self.logger.info(f"Epoch {engine.state.epoch}: alpha = {alpha:.4g}")
