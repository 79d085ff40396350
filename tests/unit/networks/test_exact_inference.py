"""optimise_for_inference at its exact tolerance (Deletion/Insertion's): a faster float32 copy with the same
outputs, or the network as it is with the reason logged."""

from __future__ import annotations

import logging

import pytest
import torch
from torch import fx

from monai_xai.networks import (
    InferenceTolerance,
    OptimisedNetwork,
    PerceptionLogits,
    get_classifier,
    optimise_for_inference,
)
from monai_xai.networks import inference as inference_module
from monai_xai.networks.nets import MultiScaleAttentionBranchNetwork

#: the graph passes that change the network (the exact tolerance takes no other precision than float32)
GRAPH_PASSES = (inference_module.MKLDNN, inference_module.FOLDING)


def exact_copy(network: torch.nn.Module, example: torch.Tensor) -> OptimisedNetwork:
    return optimise_for_inference(network, example, InferenceTolerance.exact())


def _batch_norms(module: torch.nn.Module) -> int:
    return sum(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in module.modules())


def _images(*shape: int) -> torch.Tensor:
    return torch.rand(*shape, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize(
    ("mode", "architecture", "shape"),
    [
        ("baseline", "abn", (3, 1, 32, 32)),
        ("dynamic", "abn", (3, 1, 32, 32)),
        ("dynamic", "abn_compact", (3, 3, 32, 32)),
        ("dynamic", "abn_gated_midrange", (3, 1, 32, 32)),
        ("baseline", "abn", (2, 1, 16, 16, 16)),
    ],
)
def test_copy_is_optimised_and_reproduces_the_logits(mode: str, architecture: str, shape: tuple) -> None:
    torch.manual_seed(0)
    spatial_dims, channels = len(shape) - 2, shape[1]
    network = get_classifier(mode, spatial_dims=spatial_dims, in_channels=channels, architecture=architecture)
    network.train()  # the caller's mode must survive
    state = {k: v.clone() for k, v in network.state_dict().items()}
    logits = network if mode == "baseline" else PerceptionLogits(network)
    images = _images(*shape)
    optimised = exact_copy(logits, images[:1])
    assert optimised.setting.graph in GRAPH_PASSES and optimised.setting.dtype is None
    assert _batch_norms(optimised) < _batch_norms(logits)  # folded into the convolutions before them
    assert network.training
    assert all(torch.equal(state[k], v) for k, v in network.state_dict().items())
    network.eval()
    with torch.no_grad():
        torch.testing.assert_close(optimised(images), logits(images), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("shape", [(3, 1, 32, 32), (2, 1, 16, 16, 16)])
def test_multiscale_abn_gets_an_optimised_copy(shape: tuple) -> None:
    torch.manual_seed(0)
    network = MultiScaleAttentionBranchNetwork(spatial_dims=len(shape) - 2, num_classes=2).eval()
    logits = PerceptionLogits(network)
    images = _images(*shape)
    optimised = exact_copy(logits, images[:1])
    assert optimised.setting.graph in GRAPH_PASSES
    assert _batch_norms(optimised) < _batch_norms(logits)
    with torch.no_grad():
        torch.testing.assert_close(optimised(images), logits(images), rtol=1e-4, atol=1e-5)
        # The whole network traces too (with its own map), every output as in eager mode.
        traced = fx.symbolic_trace(network, concrete_args={"attention_map": None})
        for got, expected in zip(traced(images), network(images)):
            torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)


class _DataDependent(torch.nn.Module):
    """Branches on a tensor's value, which ``torch.fx`` cannot trace."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 2, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x).mean(dim=(2, 3))
        return y if y.sum() > 0 else -y


def test_untraceable_or_unsupported_networks_run_as_they_are_with_the_reason(caplog) -> None:
    untraceable = _DataDependent().eval()
    images = _images(2, 1, 32, 32)
    with caplog.at_level(logging.INFO, logger="monai_xai.networks.inference"):
        optimised = exact_copy(untraceable, images)
    assert optimised.setting.graph == inference_module.NO_PASS
    assert "not taken: batch-norm folding: TraceError" in caplog.text
    with torch.no_grad():
        torch.testing.assert_close(optimised(images), untraceable(images), rtol=1e-4, atol=1e-5)
    double = get_classifier("baseline").double().eval()
    with caplog.at_level(logging.INFO, logger="monai_xai.networks.inference"):
        optimised = exact_copy(double, images.double())
    assert optimised.setting.rejected == ("every optimised setting: its parameters are not float32",)
    with torch.no_grad():
        out = optimised(images.double())
    assert out.dtype == torch.float64  # only reduced precision is returned as float32
    torch.testing.assert_close(out, double(images.double()))


def test_faithfulness_report_scores_match_the_plain_network(tmp_path) -> None:
    from ignite.engine import Engine

    from monai_xai.handlers import FaithfulnessReportHandler
    from monai_xai.metrics import deletion_insertion
    from monai_xai.networks import split_network_output

    torch.manual_seed(0)
    net = get_classifier("dynamic").eval()
    images = _images(2, 1, 32, 32)
    with torch.no_grad():
        output = {"image": images, **split_network_output(net(images))}
    report = FaithfulnessReportHandler(net, tmp_path, steps=4, baseline="zero")
    engine = Engine(lambda e, b: output)
    report.attach(engine)
    engine.run([0], max_epochs=1)
    assert report._scorer.setting.graph in GRAPH_PASSES
    plain = PerceptionLogits(net)
    for mode in ("deletion", "insertion"):
        expected = deletion_insertion(plain, images, output["attention_map"], mode, steps=4).auc.mean()
        assert report.results["attention"][f"{mode}_auc"] == pytest.approx(float(expected), abs=1e-5)


def test_hooks_on_the_network_stay_out_of_the_copy() -> None:
    network = get_classifier("baseline").eval()
    calls = []
    handle = network.layer4.register_forward_hook(lambda module, args, out: calls.append(out.shape))
    images = _images(2, 1, 32, 32)
    optimised = exact_copy(network, images[:1])
    calls.clear()
    with torch.no_grad():
        optimised(images)
    assert calls == []
    with torch.no_grad():
        network(images)
    assert len(calls) == 1  # the network's own hook still works
    handle.remove()
