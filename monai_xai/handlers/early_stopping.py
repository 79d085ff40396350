"""Stop training once the validation score has stopped improving ("trained until validation stops improving").

MONAI's :class:`~monai.handlers.EarlyStopHandler` needs the trainer at construction when it sits on the
trainer, or a ``set_trainer`` call when it sits on the validator; in a bundle config either ties the trainer
and the evaluator into a reference cycle. This subclass attaches to the trainer (after its
``ValidationHandler``, so the validator has just run) and reads the score from the validator it is given.
"""

from __future__ import annotations

import ignite.distributed as idist
from ignite.engine import Engine
from monai.handlers import EarlyStopHandler

__all__ = ["ValidationEarlyStopping"]


class ValidationEarlyStopping(EarlyStopHandler):
    """Terminate the trainer after ``patience`` validations without a better ``metric`` on ``validator``.

    Epochs without a validation (``val_interval`` > 1) are not counted. The count starts again when a run
    is resumed: a resumed run trains at least ``patience`` more validations.

    Under torchrun the validator runs on rank 0 only (``monai_xai.distributed.rank_handlers``): every process
    attaches this handler, rank 0 decides and every epoch sends its decision to the others, so that all of
    them stop after the same epoch instead of the others waiting for rank 0 in the next one.

    Args:
        validator: the evaluator the trainer's ``ValidationHandler`` runs.
        metric: name of the validator's metric, e.g. ``"val_auc"`` or ``"val_loss"``.
        patience: validations without improvement before stopping; None builds a handler that must not be
            attached (configs add it only when a patience is set).
        min_delta: a change for the better of at most this much is not an improvement.
        higher_is_better: False for metrics to minimise, such as a validation loss.
    """

    def __init__(
        self,
        validator: Engine,
        metric: str,
        patience: int | None,
        min_delta: float = 0.0,
        higher_is_better: bool = True,
    ) -> None:
        super().__init__(patience=patience, score_function=self._score, min_delta=min_delta)  # type: ignore[arg-type]
        self.validator = validator
        self.metric = metric
        self.sign = 1.0 if higher_is_better else -1.0

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

    def __call__(self, engine: Engine) -> None:
        if self.validator.state.epoch == engine.state.epoch:  # the validator ran this epoch
            super().__call__(engine)
        stop = bool(engine.should_terminate)
        if idist.get_world_size() > 1:
            stop = bool(idist.broadcast(int(stop), src=0))
        if stop and not engine.should_terminate:
            engine.terminate()
