"""The optimiser step shared by the project's trainers (attention-supervised, self-supervised, detection),
and the mixed-precision context their evaluators share."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import torch
from monai.engines import SupervisedTrainer
from monai.engines.utils import IterationEvents

__all__ = ["amp_context", "optimisation_step"]


def amp_context(engine) -> contextlib.AbstractContextManager:
    """CUDA autocast with the engine's AMP settings when ``engine.amp`` is on, else a no-op context."""
    return torch.autocast("cuda", **engine.amp_kwargs) if engine.amp else contextlib.nullcontext()


def optimisation_step(engine: SupervisedTrainer, forward_and_loss: Callable[[], torch.Tensor]) -> None:
    """Backward and optimiser step around ``forward_and_loss``, with CUDA AMP and MONAI's iteration events."""
    engine.optimizer.zero_grad(set_to_none=engine.optim_set_to_none)
    if engine.amp and engine.scaler is not None:
        with torch.autocast("cuda", **engine.amp_kwargs):
            loss = forward_and_loss()
        engine.scaler.scale(loss).backward()
        engine.fire_event(IterationEvents.BACKWARD_COMPLETED)
        engine.scaler.step(engine.optimizer)
        engine.scaler.update()
    else:
        loss = forward_and_loss()
        loss.backward()
        engine.fire_event(IterationEvents.BACKWARD_COMPLETED)
        engine.optimizer.step()
    engine.fire_event(IterationEvents.MODEL_COMPLETED)
