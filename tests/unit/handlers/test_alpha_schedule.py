"""Alpha schedules and the Ignite handler that applies them."""

from __future__ import annotations

import math

import pytest
from ignite.engine import Engine, Events

from monai_xai.handlers.alpha_scheduler import (
    ALPHA_SCHEDULES,
    AlphaScheduleHandler,
    StepAlphaSchedule,
    get_alpha_schedule,
)
from monai_xai.losses import ABNLoss


def _values(name: str, max_epochs: int, **kwargs: float) -> list[float]:
    schedule = get_alpha_schedule(name, max_epochs, **kwargs)
    return [schedule(e) for e in range(max_epochs)]


def test_step_switches_at_half() -> None:
    assert _values("step", 10) == [0.9] * 5 + [0.1] * 5
    assert _values("step", 5) == [0.9] * 3 + [0.1] * 2  # e < 2.5
    assert _values("step", 5, switch_epoch=1) == [0.9] + [0.1] * 4
    assert isinstance(get_alpha_schedule("step", 4), StepAlphaSchedule)


def test_linear_and_cosine_run_from_high_to_low() -> None:
    assert _values("linear", 5) == pytest.approx([0.9, 0.7, 0.5, 0.3, 0.1])
    assert _values("cosine", 3) == pytest.approx([0.9, 0.5, 0.1])
    assert get_alpha_schedule("cosine", 5)(1) == pytest.approx(0.1 + 0.4 * (1 + math.cos(math.pi / 4)))
    assert _values("linear", 1) == [0.9]
    assert get_alpha_schedule("linear", 5)(9) == pytest.approx(0.1)


def test_constant_and_custom_bounds() -> None:
    assert _values("constant", 4) == [0.9] * 4
    assert _values("constant", 3, high=0.5) == [0.5] * 3
    assert _values("linear", 3, high=1.0, low=0.0) == pytest.approx([1.0, 0.5, 0.0])


def test_bad_arguments() -> None:
    assert set(ALPHA_SCHEDULES) == {"step", "linear", "cosine", "constant"}
    with pytest.raises(ValueError, match="step, linear, cosine, constant"):
        get_alpha_schedule("exponential", 10)
    with pytest.raises(ValueError, match="'step' schedule only"):
        get_alpha_schedule("linear", 10, switch_epoch=3)
    with pytest.raises(ValueError, match="max_epochs"):
        get_alpha_schedule("step", 0)
    with pytest.raises(ValueError, match="high"):
        get_alpha_schedule("step", 5, high=1.5)
    with pytest.raises(ValueError, match="switch_epoch"):
        get_alpha_schedule("step", 5, switch_epoch=7)


def test_handler_sets_alpha_every_epoch_on_engine() -> None:
    loss = ABNLoss("dynamic")
    seen_in_iterations: list[float] = []
    seen_at_epoch_end: list[float] = []
    engine = Engine(lambda engine, batch: seen_in_iterations.append(loss.alpha))
    AlphaScheduleHandler(loss, get_alpha_schedule("step", 4)).attach(engine)
    engine.add_event_handler(Events.EPOCH_COMPLETED, lambda e: seen_at_epoch_end.append(e.state.alpha))
    engine.run([0, 1], max_epochs=4)
    assert seen_in_iterations == [0.9, 0.9, 0.9, 0.9, 0.1, 0.1, 0.1, 0.1]
    assert seen_at_epoch_end == [0.9, 0.9, 0.1, 0.1]
    assert "alpha" not in engine.state.metrics


def test_handler_custom_attribute_and_epoch_mismatch_warning() -> None:
    loss = ABNLoss("dynamic")
    engine = Engine(lambda engine, batch: None)
    AlphaScheduleHandler(loss, get_alpha_schedule("linear", 5), state_attribute="abn_alpha").attach(engine)
    with pytest.warns(UserWarning, match="planned for 5 epochs"):
        engine.run([0], max_epochs=3)
    assert engine.state.abn_alpha == pytest.approx(0.5) and loss.alpha == pytest.approx(0.5)
    with pytest.raises(TypeError, match="callable"):
        AlphaScheduleHandler(loss, 0.5)
