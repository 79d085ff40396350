"""Stop training once the validation score has stopped improving ("trained until validation stops improving").

MONAI's :class:`~monai.handlers.EarlyStopHandler` needs the trainer at construction when it sits on the
trainer, or a ``set_trainer`` call when it sits on the validator; in a bundle config either ties the trainer
and the evaluator into a reference cycle. This subclass attaches to the trainer (after its
``ValidationHandler``, so the validator has just run) and reads the score from the validator it is given.
"""

from __future__ import annotations

from ignite.engine import Engine
from monai.handlers import EarlyStopHandler

__all__ = ["ValidationEarlyStopping"]


class ValidationEarlyStopping(EarlyStopHandler):
    """Terminate the trainer after ``patience`` validations without a higher ``metric`` on ``validator``.

    Epochs without a validation (``val_interval`` > 1) are not counted. The count starts again when a run
    is resumed: a resumed run trains at least ``patience`` more validations.

    Args:
        validator: the evaluator the trainer's ``ValidationHandler`` runs.
        metric: name of the validator's metric (higher is better), e.g. ``"val_auc"``.
        patience: validations without improvement before stopping; None builds a handler that must not be
            attached (configs add it only when a patience is set).
        min_delta: an increase of at most this much is not an improvement.
    """

    def __init__(self, validator: Engine, metric: str, patience: int | None, min_delta: float = 0.0) -> None:
        super().__init__(patience=patience, score_function=self._score, min_delta=min_delta)  # type: ignore[arg-type]
        self.validator = validator
        self.metric = metric

    def _score(self, _: Engine) -> float:
        metrics = self.validator.state.metrics
        if self.metric not in metrics:
            raise KeyError(
                f"early stopping reads validation metric {self.metric!r}, the validator has {sorted(metrics)}"
            )
        return float(metrics[self.metric])

    def attach(self, engine: Engine) -> None:
        if not self.patience or self.patience < 1:
            raise ValueError(
                f"early stopping needs a patience of at least 1 validation, got {self.patience!r}"
            )
        self.set_trainer(engine)
        super().attach(engine)

    def __call__(self, engine: Engine) -> None:
        if self.validator.state.epoch != engine.state.epoch:  # no validation this epoch
            return
        super().__call__(engine)
