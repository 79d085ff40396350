"""Self-supervised SimSiam pretraining as a MONAI trainer: two augmented views per image, no labels."""

from __future__ import annotations

from functools import partial

import torch
import torch.nn.functional as F
from monai.engines import SupervisedTrainer
from monai.engines.utils import IterationEvents, PrepareBatchExtraInput
from monai.utils import CommonKeys as Keys

from monai_xai.engines.optimisation import optimisation_step
from monai_xai.engines.outputs import LOSS_PARTS
from monai_xai.engines.precision import FastPathEngine
from monai_xai.engines.prepare_batch import WholeBatchEngine

__all__ = ["EMBEDDING", "SECOND_VIEW", "SimSiamTrainer"]

#: Batch key of the second augmented view (the first is ``image``).
SECOND_VIEW = "image_2"
#: Output key of the L2-normalised projections ``z`` of the first view, for the collapse monitor.
EMBEDDING = "embedding"


class SimSiamTrainer(FastPathEngine, WholeBatchEngine, SupervisedTrainer):
    """Trains a :class:`~monai_xai.networks.SimSiam` with ``loss_function(output) -> loss``.

    ``state.output`` holds ``loss``, ``loss_parts`` and the detached, normalised ``z`` of the first view
    (``embedding``), whose per-dimension spread :class:`~monai_xai.handlers.EmbeddingStdMetric` tracks.
    The network runs through ``inferer`` (MONAI's ``SimpleInferer`` by default) on both views.

    Args:
        args: positional arguments of MONAI's ``SupervisedTrainer``.
        prepare_batch: gives MONAI's ``(inputs, targets, args, kwargs)``, the second view among ``args``;
            default MONAI's ``PrepareBatchExtraInput(SECOND_VIEW)``.
        decollate: MONAI's option; off, since the loss and the collapse monitor work on whole batches.
        kwargs: keyword arguments of MONAI's ``SupervisedTrainer`` (``inferer``, ``amp``, handlers ...).
    """

    default_prepare_batch = partial(PrepareBatchExtraInput, SECOND_VIEW)

    def _iteration(self, engine: SupervisedTrainer, batchdata: dict) -> dict:
        if batchdata is None:
            raise ValueError("Must provide batch data for current iteration.")
        x1, _, args, kwargs = engine.prepare_batch(
            batchdata, engine.state.device, engine.non_blocking, **engine.to_kwargs
        )
        x1 = engine.fast_path.prepare_input(x1)
        args = tuple(engine.fast_path.prepare_input(a) if isinstance(a, torch.Tensor) else a for a in args)
        engine.state.output = {}
        engine.network.train()

        def forward_and_loss() -> torch.Tensor:
            output = engine.fast_path.forward(engine.inferer, x1, engine.network, *args, **kwargs)
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
