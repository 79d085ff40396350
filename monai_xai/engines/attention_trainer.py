"""A SupervisedTrainer whose loss also sees the teacher mask and whose output keeps the attention map."""

from __future__ import annotations

import dataclasses

import torch
from monai.engines import SupervisedTrainer
from monai.engines.utils import IterationEvents
from monai.utils import CommonKeys as Keys

from monai_xai.engines.optimisation import optimisation_step
from monai_xai.engines.outputs import HAS_MASK, LOSS_PARTS, MASK
from monai_xai.engines.precision import FastPathEngine
from monai_xai.engines.prepare_batch import PrepareBatchWithMasks, WholeBatchEngine
from monai_xai.networks.outputs import split_network_output

__all__ = ["AttentionSupervisedTrainer"]


class AttentionSupervisedTrainer(FastPathEngine, WholeBatchEngine, SupervisedTrainer):
    """Trains a classifier with a loss ``loss_function(output, label, mask, has_mask) -> (loss, parts)``.

    ``output`` is whatever the network returns (logits, or an attention branch network's output),
    ``mask``/``has_mask`` come from the batch (zeros/False where an item had no teacher mask).
    The per-component losses land in ``engine.state.output["loss_parts"]`` for logging. A loss with a true
    ``needs_inputs`` attribute (input-gradient penalties such as
    :class:`~monai_xai.losses.RightForRightReasonsLoss`) also gets the input tensor, made to require
    gradients, as ``inputs``.
    Batches stay collated (``decollate=False``) because every consumer works on whole batches. ``amp``
    picks the device's fast path (see :class:`~monai_xai.engines.precision.FastPath`).

    As in MONAI's ``SupervisedTrainer``, the batch comes from ``prepare_batch`` and the network runs through
    ``inferer`` (``SimpleInferer`` by default).

    Args:
        args: positional arguments of MONAI's ``SupervisedTrainer``.
        prepare_batch: gives the batch on the device as a dict with ``image`` and ``label``, and ``mask`` /
            ``has_mask`` when the batch has teacher masks; default :class:`PrepareBatchWithMasks`.
        decollate: MONAI's option; off, since every consumer works on whole batches.
        kwargs: keyword arguments of MONAI's ``SupervisedTrainer`` (``inferer``, ``amp``, handlers ...).
    """

    default_prepare_batch = PrepareBatchWithMasks

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if getattr(self.loss_function, "needs_inputs", False) and self.fast_path.channels_last:
            # double back-propagation is slower through oneDNN's channels-last convolutions than through
            # contiguous ones: an input-gradient loss trains in the default layout
            self.fast_path = dataclasses.replace(self.fast_path, channels_last=False)
            self.network.to(memory_format=torch.contiguous_format)

    def _iteration(self, engine: SupervisedTrainer, batchdata: dict) -> dict:
        if batchdata is None:
            raise ValueError("Must provide batch data for current iteration.")
        batch = engine.prepare_batch(batchdata, engine.state.device, engine.non_blocking, **engine.to_kwargs)
        inputs, labels = engine.fast_path.prepare_input(batch[Keys.IMAGE]), batch[Keys.LABEL]
        masks, has_mask = batch.get(MASK), batch.get(HAS_MASK)
        engine.state.output = {Keys.IMAGE: inputs, Keys.LABEL: labels}
        engine.network.train()
        extra = {}
        if getattr(engine.loss_function, "needs_inputs", False):
            inputs = inputs.detach().requires_grad_(True)
            extra["inputs"] = inputs

        def forward_and_loss() -> torch.Tensor:
            raw = engine.fast_path.forward(engine.inferer, inputs, engine.network)
            engine.state.output.update(split_network_output(raw))
            engine.fire_event(IterationEvents.FORWARD_COMPLETED)
            loss, parts = engine.loss_function(raw, labels, masks, has_mask, **extra)
            engine.state.output[Keys.LOSS] = loss
            engine.state.output[LOSS_PARTS] = parts
            engine.fire_event(IterationEvents.LOSS_COMPLETED)
            return loss

        optimisation_step(engine, forward_and_loss)
        return engine.state.output
