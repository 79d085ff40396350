"""ValidationEarlyStopping: stops the trainer on the validator's stalled score, counting validations only,
higher or lower being better, and every process together under torchrun; with a state file, a resumed run
stops after the same epoch as one never interrupted."""

from __future__ import annotations

import json
import re

import pytest
from ignite.engine import Engine, Events, State

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


# A run stopped by a kill and resumed from its checkpoint stops after the same epoch as one never interrupted.
# Scores: best 0.6 at epoch 2, then 0.55 three times (patience 3: stop at 5); a count that started again on
# resume would take 0.55 as its first best and go on to the improvements from epoch 6.
RESUME_SCORES = [0.5, 0.6, 0.55, 0.55, 0.55, 0.9, 0.95, 0.96, 0.97, 0.98]


def _resumable_run(ckpt_dir, max_epochs: int, saved_epochs: int | None = None) -> State:
    """A trainer with early stopping on ``RESUME_SCORES`` (picking up at the epoch it resumes from) and a
    ``ResumableCheckpointer`` attached after it, as in the bundles; ``saved_epochs`` stops the checkpoints
    after that epoch, as a kill between the state file's write and the checkpoint's would."""
    import torch

    from monai_xai.handlers import ResumableCheckpointer

    trainer = Engine(lambda engine, batch: None)
    validator = Engine(lambda engine, batch: None)

    @trainer.on(Events.EPOCH_COMPLETED)
    def validate(engine: Engine) -> None:
        validator.state.epoch = engine.state.epoch
        validator.state.metrics = {"val_auc": RESUME_SCORES[engine.state.epoch - 1]}

    stopping = ValidationEarlyStopping(validator, "val_auc", 3, state_file=ckpt_dir / "early_stopping.json")
    stopping.attach(trainer)  # its STARTED handler runs before the checkpointer's load
    checkpointer = ResumableCheckpointer(ckpt_dir, {"model": torch.nn.Linear(1, 1)})
    trainer.add_event_handler(Events.STARTED, checkpointer.load)
    trainer.add_event_handler(
        Events.EPOCH_COMPLETED(event_filter=lambda _, epoch: saved_epochs is None or epoch <= saved_epochs),
        checkpointer.save,
    )
    return trainer.run([0], max_epochs=max_epochs)


def test_uninterrupted_run_stops_where_the_resume_tests_expect(tmp_path):
    assert _resumable_run(tmp_path, max_epochs=10).epoch == 5
    entries = json.loads((tmp_path / "early_stopping.json").read_text())
    assert list(entries) == ["1", "2", "3", "4", "5"]
    assert entries["4"] == {"counter": 2, "best_score": 0.6}


@pytest.mark.parametrize("killed_after", [1, 2, 3, 4])
def test_resumed_run_stops_after_the_same_epoch(tmp_path, killed_after):
    _resumable_run(tmp_path, max_epochs=killed_after)  # "killed" after this epoch's checkpoint
    state = _resumable_run(tmp_path, max_epochs=10)
    assert state.epoch == 5


@pytest.mark.parametrize("checkpointed", [1, 3])
def test_kill_between_state_and_checkpoint_does_not_count_an_epoch_twice(tmp_path, checkpointed):
    """Killed after the state file recorded the next epoch but before its checkpoint: the resumed run repeats
    that epoch from the entry of the checkpointed one."""
    _resumable_run(tmp_path, max_epochs=checkpointed + 1, saved_epochs=checkpointed)
    assert str(checkpointed + 1) in json.loads((tmp_path / "early_stopping.json").read_text())
    assert _resumable_run(tmp_path, max_epochs=10).epoch == 5


def test_fresh_run_ignores_the_state_of_an_older_run(tmp_path):
    """A run from epoch 1 (no checkpoint) counts from zero and drops the older run's later entries."""
    old = {str(epoch): {"counter": 2, "best_score": 0.99} for epoch in range(1, 9)}
    (tmp_path / "early_stopping.json").write_text(json.dumps(old))
    assert _resumable_run(tmp_path, max_epochs=10).epoch == 5  # a best of 0.99 with count 2 would stop at 1
    entries = json.loads((tmp_path / "early_stopping.json").read_text())
    assert list(entries) == ["1", "2", "3", "4", "5"] and entries["1"] == {"counter": 0, "best_score": 0.5}


def test_state_is_written_every_epoch_and_read_on_rank_0_only(tmp_path, monkeypatch):
    """Epochs without a validation get an entry too; another rank neither reads nor writes the file."""
    from monai_xai.handlers import early_stopping

    trainer, validator = _engines([0.5, 0.4, 0.3], val_interval=2)
    path = tmp_path / "early_stopping.json"
    ValidationEarlyStopping(validator, "val_auc", patience=2, state_file=path).attach(trainer)
    trainer.run([0], max_epochs=10)
    entries = json.loads(path.read_text())
    assert trainer.state.epoch == 6 and list(entries) == [str(epoch) for epoch in range(1, 7)]
    assert entries["1"] == {"counter": 0, "best_score": None} and entries["5"] == entries["4"]
    assert entries["6"] == {"counter": 2, "best_score": 0.5}

    path.write_text("not json")
    monkeypatch.setattr(early_stopping.idist, "get_rank", lambda: 1)
    trainer = Engine(lambda engine, batch: None)
    ValidationEarlyStopping(Engine(lambda e, b: None), "val_auc", 1, state_file=path).attach(trainer)
    trainer.run([0], max_epochs=2)
    assert path.read_text() == "not json"


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("{not json", "cannot read the early-stopping state"),
        ("[1, 2]", "top level is a list"),
        ('{"one": {"counter": 0, "best_score": null}}', "'one' is not an epoch number"),
        ('{"1": {"counter": -1, "best_score": null}}', "epoch 1: counter -1"),
        ('{"1": {"counter": 0, "best_score": "high"}}', "epoch 1: best_score 'high'"),
        ('{"1": {"count": 0}}', "epoch 1:"),
    ],
)
def test_corrupt_state_file_raises_naming_it(tmp_path, content, problem):
    path = tmp_path / "early_stopping.json"
    path.write_text(content)
    trainer, validator = _engines([0.5])
    ValidationEarlyStopping(validator, "val_auc", patience=1, state_file=path).attach(trainer)
    with pytest.raises(ValueError, match=re.escape(str(path)) + ".*" + re.escape(problem)):
        trainer.run([0], max_epochs=1)
