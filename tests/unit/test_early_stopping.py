"""ValidationEarlyStopping: stops the trainer on the validator's stalled score, counting validations only,
higher or lower being better, and every process together under torchrun."""

from __future__ import annotations

import pytest
from ignite.engine import Engine, Events

from monai_xai.handlers import ValidationEarlyStopping


def _engines(scores: list[float], val_interval: int = 1, metric: str = "val_auc") -> tuple[Engine, Engine]:
    """A trainer whose epochs do nothing and a validator that reports the next scripted score each time the
    trainer validates (every ``val_interval`` epochs), as MONAI's ValidationHandler would run it."""
    trainer = Engine(lambda engine, batch: None)
    validator = Engine(lambda engine, batch: None)
    remaining = iter(scores)

    @trainer.on(Events.EPOCH_COMPLETED(every=val_interval))
    def validate(engine: Engine) -> None:
        validator.state.epoch = engine.state.epoch
        validator.state.metrics = {metric: next(remaining)}

    return trainer, validator


def test_stops_after_patience_validations_without_improvement():
    trainer, validator = _engines([0.5, 0.6, 0.6, 0.55, 0.9, 0.95])
    ValidationEarlyStopping(validator, "val_auc", patience=2).attach(trainer)
    trainer.run([0], max_epochs=6)
    assert trainer.state.epoch == 4  # best at epoch 2; epochs 3 and 4 did not beat it


def test_improvement_resets_the_count():
    trainer, validator = _engines([0.5, 0.4, 0.6, 0.5, 0.7, 0.6])
    ValidationEarlyStopping(validator, "val_auc", patience=2).attach(trainer)
    trainer.run([0], max_epochs=6)
    assert trainer.state.epoch == 6


def test_epochs_without_validation_are_not_counted():
    trainer, validator = _engines([0.5, 0.4, 0.3], val_interval=2)
    ValidationEarlyStopping(validator, "val_auc", patience=2).attach(trainer)
    trainer.run([0], max_epochs=10)
    assert trainer.state.epoch == 6  # validations at 2, 4, 6: the 4th and 6th did not improve


def test_needs_a_patience_and_a_known_metric():
    trainer, validator = _engines([0.5])
    with pytest.raises(ValueError, match="patience"):
        ValidationEarlyStopping(validator, "val_auc", patience=None).attach(trainer)
    ValidationEarlyStopping(validator, "val_accuracy", patience=1).attach(trainer)
    with pytest.raises(KeyError, match="val_accuracy"):
        trainer.run([0], max_epochs=1)


def test_lower_is_better_stops_when_the_loss_stops_falling():
    trainer, validator = _engines([0.9, 0.5, 0.6, 0.4, 0.45, 0.41, 0.3], metric="val_loss")
    ValidationEarlyStopping(validator, "val_loss", patience=2, higher_is_better=False).attach(trainer)
    trainer.run([0], max_epochs=7)
    assert trainer.state.epoch == 6  # best 0.4 at epoch 4; 0.45 and 0.41 did not go below it


def test_lower_is_better_with_min_delta():
    trainer, validator = _engines([0.5, 0.49, 0.48, 0.3], metric="val_loss")
    ValidationEarlyStopping(validator, "val_loss", 2, min_delta=0.05, higher_is_better=False).attach(trainer)
    trainer.run([0], max_epochs=4)
    assert trainer.state.epoch == 3  # falls of 0.01 and 0.02 are within min_delta


def test_other_ranks_stop_with_rank_0(monkeypatch):
    """Under torchrun only rank 0 validates; a rank that did not validate stops when rank 0's decision, sent
    every epoch, says so."""
    from monai_xai.handlers import early_stopping

    decisions = iter([0, 0, 1])
    sent = []
    monkeypatch.setattr(early_stopping.idist, "get_world_size", lambda: 2)

    def broadcast(value, src):
        sent.append((value, src))
        return float(next(decisions))

    monkeypatch.setattr(early_stopping.idist, "broadcast", broadcast)
    trainer, validator = Engine(lambda engine, batch: None), Engine(lambda engine, batch: None)
    ValidationEarlyStopping(validator, "val_auc", patience=1).attach(trainer)  # this rank never validates
    trainer.run([0], max_epochs=10)
    assert trainer.state.epoch == 3 and sent == [(0, 0)] * 3
