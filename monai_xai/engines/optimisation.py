"""The optimiser step shared by the project's trainers (attention-supervised, self-supervised, detection)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from monai.engines import SupervisedTrainer
from monai.engines.utils import IterationEvents

__all__ = ["optimisation_step"]


def optimisation_step(engine: SupervisedTrainer, forward_and_loss: Callable[[], torch.Tensor]) -> None:
    """Backward and optimiser step after ``forward_and_loss``, with MONAI's iteration events.

    ``forward_and_loss`` runs the network through ``engine.fast_path.forward`` and its loss in float32;
    on CUDA with ``amp`` the loss is scaled by MONAI's gradient scaler.
    """
    engine.optimizer.zero_grad(set_to_none=engine.optim_set_to_none)
    loss = forward_and_loss()
    if engine.amp and engine.scaler is not None:
        engine.scaler.scale(loss).backward()
        engine.fire_event(IterationEvents.BACKWARD_COMPLETED)
        engine.scaler.step(engine.optimizer)
        engine.scaler.update()
    else:
        loss.backward()
        engine.fire_event(IterationEvents.BACKWARD_COMPLETED)
        engine.optimizer.step()
    engine.fire_event(IterationEvents.MODEL_COMPLETED)
