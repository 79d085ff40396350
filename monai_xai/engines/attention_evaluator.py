"""A SupervisedEvaluator that keeps the attention map and the teacher mask in its output."""

from __future__ import annotations

from monai.engines import SupervisedEvaluator
from monai.engines.utils import IterationEvents
from monai.utils import CommonKeys as Keys

from monai_xai.engines.precision import FastPathEngine
from monai_xai.engines.prepare_batch import PrepareBatchWithMasks, WholeBatchEngine
from monai_xai.flags import as_bool
from monai_xai.networks.inference import InferenceNetwork
from monai_xai.networks.outputs import split_network_output

__all__ = ["AttentionEvaluator"]


class AttentionEvaluator(FastPathEngine, WholeBatchEngine, SupervisedEvaluator):
    """Evaluates a plain or attention branch classifier on whole batches.

    ``engine.state.output`` holds ``image``, ``label``, ``pred`` (logits), and when present
    ``attention_map``, ``attention_logits``, ``mask`` and ``has_mask``, so that metrics of the
    prediction and of the attention map can be computed from one forward pass. The forward goes through the
    evaluator's ``inferer`` (``SimpleInferer`` by default) on the device's fast path when ``amp`` is on;
    every output is float32.

    With ``optimise_inference`` that forward runs through an
    :class:`~monai_xai.networks.InferenceNetwork` of the network: a copy with batch norm folded,
    channels-last and reduced precision where the outputs stay within its tolerance of float32, calibrated
    on each run's first batch and rebuilt once the weights change (validation during training). Only
    that forward uses the copy: ``engine.network`` stays the network itself, for handlers that need
    gradients through it (Grad-CAM overlays, input gradients).

    Args:
        args: positional arguments of MONAI's ``SupervisedEvaluator``.
        optimise_inference: whether the predictions and maps come from the optimised copy.
        prepare_batch: gives the batch on the device as a dict with ``image``, and ``label`` / ``mask`` /
            ``has_mask`` when the batch has them; default :class:`PrepareBatchWithMasks`.
        decollate: MONAI's option; off, since every consumer works on whole batches.
        kwargs: keyword arguments of MONAI's ``SupervisedEvaluator`` (``inferer``, ``amp``, handlers ...).
    """

    default_prepare_batch = PrepareBatchWithMasks

    def __init__(self, *args, optimise_inference: bool = False, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        optimise = as_bool(optimise_inference, "optimise_inference")
        self.inference_network = InferenceNetwork(self.network) if optimise else self.network

    def _iteration(self, engine: SupervisedEvaluator, batchdata: dict) -> dict:
        if batchdata is None:
            raise ValueError("Must provide batch data for current iteration.")
        engine.state.output = engine.prepare_batch(
            batchdata, engine.state.device, engine.non_blocking, **engine.to_kwargs
        )
        inputs = engine.fast_path.prepare_input(engine.state.output[Keys.IMAGE])
        engine.state.output[Keys.IMAGE] = inputs
        with engine.mode(engine.network):
            raw = engine.fast_path.forward(engine.inferer, inputs, engine.inference_network)
        engine.state.output.update(split_network_output(raw))
        engine.fire_event(IterationEvents.FORWARD_COMPLETED)
        engine.fire_event(IterationEvents.MODEL_COMPLETED)
        return engine.state.output
