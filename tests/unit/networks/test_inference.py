"""optimise_for_inference and InferenceNetwork: folding changes nothing, a setting beyond tolerance is passed
over for the next weaker one, and what was chosen is reported."""

from __future__ import annotations

import json
import logging

import pytest
import torch
from torch import nn
from torch.utils._pytree import tree_leaves

from monai_xai.networks import (
    CenterNet,
    InferenceNetwork,
    InferenceTolerance,
    fold_batch_norm,
    get_classifier,
    optimise_for_inference,
)
from monai_xai.networks import inference as inference_module
from monai_xai.networks.nets import MultiScaleAttentionBranchNetwork

#: tiny networks: one thread avoids spin-waiting OpenMP threads on a shared core
pytestmark = pytest.mark.usefixtures("one_thread")

EXACT = InferenceTolerance(probability=0.0, map_correlation=1.0)


def _images(*shape: int) -> torch.Tensor:
    return torch.rand(*shape, generator=torch.Generator().manual_seed(0))


def _batch_norms(module: nn.Module) -> int:
    return sum(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in module.modules())


def _trained_statistics(network: nn.Module) -> nn.Module:
    """Non-trivial batch-norm statistics and affine parameters, so that folding has work to do."""
    generator = torch.Generator().manual_seed(1)
    for m in network.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.running_mean.uniform_(-0.2, 0.2, generator=generator)
            m.running_var.uniform_(0.5, 2.0, generator=generator)
            m.weight.data.uniform_(0.5, 1.5, generator=generator)
            m.bias.data.uniform_(-0.2, 0.2, generator=generator)
    return network.eval()


NETWORKS = {
    "abn": lambda: get_classifier("dynamic"),
    "centernet": lambda: CenterNet(),  # a dict of heatmap, size and offset maps
    "resnet": lambda: get_classifier("baseline"),
    "multiscale_abn": lambda: MultiScaleAttentionBranchNetwork(spatial_dims=2, num_classes=2),
}


@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_folding_changes_no_output_beyond_1e5(name: str) -> None:
    torch.manual_seed(0)
    network = _trained_statistics(NETWORKS[name]())
    x = _images(2, 1, 64, 64)
    folded = fold_batch_norm(network)
    assert _batch_norms(folded) < _batch_norms(network)
    with torch.no_grad():
        expected, got = network(x), folded(x)
    assert type(got) is type(expected)
    for e, g in zip(tree_leaves(expected), tree_leaves(got), strict=True):
        torch.testing.assert_close(g, e, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_the_chosen_copy_stays_within_tolerance_and_says_what_it_chose(name: str) -> None:
    torch.manual_seed(0)
    network = _trained_statistics(NETWORKS[name]())
    network.train()  # the caller's mode and weights must survive
    state = {k: v.clone() for k, v in network.state_dict().items()}
    x = _images(3, 1, 64, 64)
    optimised = optimise_for_inference(network, x)
    assert network.training and all(torch.equal(state[k], v) for k, v in network.state_dict().items())
    setting = optimised.setting
    assert setting.graph != inference_module.NO_PASS  # every bundle network folds
    assert setting.probability_deviation <= 0.01
    assert (setting.map_correlation is None) == (name == "resnet")
    json.dumps(setting.to_dict())
    assert setting.label() in setting.describe()
    with torch.no_grad():
        out = optimised(x)
        reference = network.eval()(x)
    assert InferenceTolerance().check(reference, out)[2]


def test_a_tolerance_nothing_meets_falls_back_to_the_network_as_it_is(caplog) -> None:
    torch.manual_seed(0)
    network = _trained_statistics(get_classifier("dynamic"))
    x = _images(2, 1, 64, 64)
    with caplog.at_level(logging.INFO, logger=inference_module.__name__):
        optimised = optimise_for_inference(network, x, EXACT)
    setting = optimised.setting
    assert (setting.graph, setting.dtype, setting.channels_last) == (inference_module.NO_PASS, None, False)
    assert setting.probability_deviation == 0.0 and setting.map_correlation == 1.0
    assert any(line.startswith(f"{inference_module.FOLDING}, float32") for line in setting.rejected)
    assert "beyond InferenceTolerance(probability=0.0" in caplog.text
    with torch.no_grad():
        assert torch.equal(optimised(x).perception_logits, network(x).perception_logits)


@pytest.fixture
def reduced_precision(monkeypatch):
    """Try bfloat16 autocast whatever this CPU supports (emulated, slower, same numbers)."""
    monkeypatch.setattr(inference_module, "reduced_precision", lambda device_type: torch.bfloat16)


def test_reduced_precision_is_taken_within_tolerance(reduced_precision) -> None:
    torch.manual_seed(0)
    network = _trained_statistics(get_classifier("dynamic"))
    x = _images(2, 1, 64, 64)
    optimised = optimise_for_inference(network, x)
    setting = optimised.setting
    assert (setting.graph, setting.dtype, setting.channels_last) == (
        inference_module.FOLDING,
        torch.bfloat16,
        True,
    )
    assert 0 < setting.probability_deviation <= 0.01 and setting.map_correlation >= 0.99
    out = optimised(x)  # float32 outputs, whatever the autocast
    assert out.perception_logits.dtype == out.attention_map.dtype == torch.float32


def test_reduced_precision_beyond_tolerance_gives_the_next_weaker_setting(reduced_precision) -> None:
    torch.manual_seed(0)
    network = _trained_statistics(get_classifier("dynamic"))
    x = _images(2, 1, 64, 64)
    # a probability tolerance float32 rounding meets and bfloat16 does not
    optimised = optimise_for_inference(network, x, InferenceTolerance(probability=1e-5))
    assert optimised.setting.dtype is None
    assert optimised.setting.rejected[0].startswith(f"{inference_module.FOLDING}, bfloat16 autocast")


def test_a_network_fx_cannot_trace_keeps_its_reason() -> None:
    class Untraceable(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(1, 2, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = self.conv(x)
            return y if y.sum() > 0 else -y  # data-dependent control flow

    optimised = optimise_for_inference(Untraceable(), _images(1, 1, 8, 8))
    assert optimised.setting.graph == inference_module.NO_PASS
    assert any(r.startswith(f"{inference_module.FOLDING}: TraceError") for r in optimised.setting.rejected)


def test_select_fastest_times_every_setting_within_tolerance() -> None:
    torch.manual_seed(0)
    optimised = optimise_for_inference(get_classifier("baseline"), _images(2, 1, 32, 32), select="fastest")
    slower = [r for r in optimised.setting.rejected if r.endswith(": slower")]
    assert len(slower) >= 2  # at least folding + channels-last, folding, the network as it is
    with pytest.raises(ValueError):
        optimise_for_inference(get_classifier("baseline"), _images(1, 1, 32, 32), select="quickest")


def test_inference_network_calibrates_lazily_and_rebuilds_when_weights_change() -> None:
    torch.manual_seed(0)
    network = get_classifier("dynamic")
    wrapper = InferenceNetwork(network).eval()
    x = _images(2, 1, 64, 64)
    assert wrapper.setting is None
    with torch.no_grad():
        first = wrapper(x)
        copy_before = wrapper._optimised[1]
        wrapper(x)
        assert wrapper._optimised[1] is copy_before  # same weights: the same copy
        network.load_state_dict(_trained_statistics(get_classifier("dynamic")).state_dict())
        second = wrapper(x)
        expected = network(x)
    assert wrapper.setting is not None and wrapper._optimised[1] is not copy_before
    assert not torch.allclose(first.perception_logits, second.perception_logits)
    assert InferenceTolerance().check(expected, second)[2]
    # the copy is derived state, not weights: the state dict is the network's
    assert set(wrapper.state_dict()) == {f"network.{k}" for k in network.state_dict()}


def test_inference_network_runs_the_network_itself_with_gradients() -> None:
    torch.manual_seed(0)
    network = get_classifier("dynamic").eval()
    wrapper = InferenceNetwork(network)
    x = _images(1, 1, 64, 64).requires_grad_()
    out = wrapper(x)
    out.perception_logits.sum().backward()  # Grad-CAM and input gradients need the real network
    assert x.grad is not None and wrapper.setting is None
