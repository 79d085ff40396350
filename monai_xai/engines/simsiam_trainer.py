"""Self-supervised SimSiam pretraining as a MONAI trainer: two augmented views per image, no labels."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from monai.engines import SupervisedTrainer
from monai.engines.utils import IterationEvents
from monai.utils import CommonKeys as Keys

from monai_xai.engines.optimisation import optimisation_step
from monai_xai.engines.outputs import LOSS_PARTS
from monai_xai.engines.precision import FastPathEngine

__all__ = ["EMBEDDING", "SECOND_VIEW", "SimSiamTrainer"]

#: Batch key of the second augmented view (the first is ``image``).
SECOND_VIEW = "image_2"
#: Output key of the L2-normalised projections ``z`` of the first view, for the collapse monitor.
EMBEDDING = "embedding"


class SimSiamTrainer(FastPathEngine, SupervisedTrainer):
    """Trains a :class:`~monai_xai.networks.SimSiam` with ``loss_function(output) -> loss``.

    ``state.output`` holds ``loss``, ``loss_parts`` and the detached, normalised ``z`` of the first view
    (``embedding``), whose per-dimension spread :class:`~monai_xai.handlers.EmbeddingStdMetric` tracks.
    """

    def __init__(self, *args, decollate: bool = False, **kwargs):
        super().__init__(*args, decollate=decollate, **kwargs)

    def _iteration(self, engine: SupervisedTrainer, batchdata: dict) -> dict:
        device = engine.state.device
        x1, x2 = (
            engine.fast_path.prepare_input(batchdata[key].to(device, non_blocking=engine.non_blocking))
            for key in (Keys.IMAGE, SECOND_VIEW)
        )
        engine.state.output = {}
        engine.network.train()

        def forward_and_loss() -> torch.Tensor:
            output = engine.fast_path.forward(engine.network, x1, x2)
            engine.fire_event(IterationEvents.FORWARD_COMPLETED)
            loss = engine.loss_function(output)
            engine.state.output.update({
                Keys.LOSS: loss,
                LOSS_PARTS: {"loss": loss.item()},
                EMBEDDING: F.normalize(output["z1"].detach(), dim=1),
            })  # fmt: skip
            engine.fire_event(IterationEvents.LOSS_COMPLETED)
            return loss

        optimisation_step(engine, forward_and_loss)
        return engine.state.output
