"""AttentionEvaluator with optimise_inference: predictions and maps from the optimised copy, within its
tolerance of the network's own; engine.network stays the network, with gradients for the handlers."""

from __future__ import annotations

import torch
from ignite.engine import Events

from monai_xai.engines import AttentionEvaluator
from monai_xai.networks import InferenceNetwork, InferenceTolerance, get_classifier


def _batches() -> list[dict]:
    generator = torch.Generator().manual_seed(0)
    return [{"image": torch.rand(2, 1, 64, 64, generator=generator), "label": torch.tensor([[0], [1]])}]


def _outputs(optimise_inference: bool, network: torch.nn.Module) -> tuple[AttentionEvaluator, list[dict]]:
    engine = AttentionEvaluator(
        device="cpu", val_data_loader=_batches(), network=network, optimise_inference=optimise_inference
    )
    outputs = []
    engine.add_event_handler(Events.ITERATION_COMPLETED, lambda e: outputs.append(dict(e.state.output)))
    engine.run()
    return engine, outputs


def test_predictions_and_maps_come_from_the_optimised_copy(one_thread) -> None:
    torch.manual_seed(0)
    network = get_classifier("dynamic")
    plain, expected = _outputs(False, network)
    optimised, got = _outputs(True, network)
    assert plain.inference_network is plain.network
    assert isinstance(optimised.inference_network, InferenceNetwork) and optimised.network is network
    assert optimised.inference_network.setting is not None  # calibrated on the first batch
    reference = (expected[0]["pred"], expected[0]["attention_map"])
    assert InferenceTolerance().check(reference, (got[0]["pred"], got[0]["attention_map"]))[2]
    x = _batches()[0]["image"].requires_grad_()
    optimised.network(x).perception_logits.sum().backward()  # handlers' gradients: the network itself
    assert x.grad is not None
