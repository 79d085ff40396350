"""ExportableABN with fold_batch_norm: loading a checkpoint folds the batch norms, and the traced file gives
the eager network's outputs to float32 rounding."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from monai_xai.networks import ExportableABN, get_classifier
from monai_xai.networks.nets import MultiScaleAttentionBranchNetwork


def _batch_norms(module: nn.Module) -> int:
    return sum(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in module.modules())


@pytest.mark.parametrize(
    "build",
    [
        lambda: get_classifier("dynamic"),
        lambda: MultiScaleAttentionBranchNetwork(spatial_dims=2, num_classes=2),
    ],
)
def test_folded_export_matches_the_eager_network(build) -> None:
    torch.manual_seed(0)
    network = build()
    for m in network.modules():  # batch-norm statistics as training leaves them
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 2.0)
    network.eval()
    wrapper = ExportableABN(build(), fold_batch_norm=True)
    wrapper.load_state_dict(network.state_dict())  # a training checkpoint, without a prefix
    assert _batch_norms(wrapper) < _batch_norms(network)
    x = torch.rand(2, 1, 64, 64)
    with torch.no_grad():
        traced = torch.jit.trace(wrapper, x[:1])
        logits, attention = traced(x)
        expected = network(x)
    torch.testing.assert_close(logits, expected.perception_logits, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(attention, expected.attention_map, rtol=1e-5, atol=1e-5)
