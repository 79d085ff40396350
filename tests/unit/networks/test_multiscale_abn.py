"""Multi-scale ABN: per-stage maps and logits, external maps, frozen extractor, and its loss."""

from __future__ import annotations

import pytest
import torch

from monai_xai.losses import AttentionMapLoss, MultiScaleABNLoss
from monai_xai.networks import (
    AttentionBranchNetwork,
    MultiScaleABNOutput,
    MultiScaleAttentionBranchNetwork,
    split_network_output,
)


@pytest.fixture(scope="module")
def net() -> MultiScaleAttentionBranchNetwork:
    torch.manual_seed(0)
    return MultiScaleAttentionBranchNetwork("resnet18", spatial_dims=2, in_channels=1, num_classes=3)


@pytest.mark.parametrize(
    "backbone, spatial_dims, shape", [("resnet18", 2, (2, 1, 64, 64)), ("resnet50", 3, (2, 1, 32, 32, 32))]
)
def test_stage_maps_at_their_own_resolutions(backbone: str, spatial_dims: int, shape: tuple) -> None:
    torch.manual_seed(0)
    net = MultiScaleAttentionBranchNetwork(backbone, spatial_dims=spatial_dims, num_classes=3)
    out = net(torch.rand(shape))
    assert isinstance(out, MultiScaleABNOutput)
    image = shape[2]
    # standard stem: layer1 at 1/4, layer2 at 1/8, layer3 at 1/16 of the input
    sizes = [m.shape[2:] for m in out.stage_attention_maps]
    assert sizes == [torch.Size([image // s] * spatial_dims) for s in (4, 8, 16)]
    assert out.attention_map.shape == (2, 1, *sizes[0])
    for m in (*out.stage_attention_maps, out.attention_map):
        assert m.min() >= 0 and m.max() <= 1
    assert out.perception_logits.shape == (2, 3) and out.attention_logits.shape == (2, 3)
    assert [t.shape for t in out.stage_perception_logits] == [torch.Size([2, 3])] * 3


def test_output_works_with_the_abn_engines(net: MultiScaleAttentionBranchNetwork) -> None:
    out = net(torch.rand(2, 1, 32, 32))
    parts = split_network_output(out)
    assert parts["pred"] is out.perception_logits and parts["attention_map"] is out.attention_map


def test_combined_map_is_the_mean_of_upsampled_stage_maps(net: MultiScaleAttentionBranchNetwork) -> None:
    net.eval()
    with torch.no_grad():
        out = net(torch.rand(1, 1, 64, 64))
    finest = out.stage_attention_maps[0]
    coarse = torch.nn.functional.interpolate(
        out.stage_attention_maps[2], size=finest.shape[2:], mode="bilinear"
    )
    middle = torch.nn.functional.interpolate(
        out.stage_attention_maps[1], size=finest.shape[2:], mode="bilinear"
    )
    torch.testing.assert_close(out.attention_map, (finest + middle + coarse) / 3)


def test_external_map_changes_only_the_perception_side(net: MultiScaleAttentionBranchNetwork) -> None:
    net.eval()
    x = torch.rand(2, 1, 64, 64)
    with torch.no_grad():
        own = net(x)
        ones = net(x, attention_map=torch.ones(1, 1, 64, 64))
        zeros = net(x, attention_map=torch.zeros(2, 64, 64))
    torch.testing.assert_close(ones.attention_logits, own.attention_logits)
    torch.testing.assert_close(ones.attention_map, own.attention_map)
    assert not torch.allclose(ones.perception_logits, zeros.perception_logits)
    with pytest.raises(ValueError, match="attention_map must have shape"):
        net(x, attention_map=torch.ones(3, 1, 64, 64))


def test_abn_checkpoint_features_load_into_the_multiscale_network() -> None:
    abn = AttentionBranchNetwork("resnet18", num_classes=2)
    multi = MultiScaleAttentionBranchNetwork("resnet18", num_classes=2)
    features = {k: v for k, v in abn.state_dict().items() if k.startswith("features.")}
    missing, unexpected = multi.load_state_dict(features, strict=False)
    assert not unexpected and not any(k.startswith("features.") for k in missing)


def test_frozen_features_get_no_gradient_and_keep_batch_norm_statistics() -> None:
    torch.manual_seed(0)
    net = MultiScaleAttentionBranchNetwork("resnet18", num_classes=2).freeze_features()
    net.train()
    assert not net.features.training and net.attention_branches.training
    stats = net.features.bn1.running_mean.clone()
    out = net(torch.rand(4, 1, 32, 32) * 5)
    loss, _ = MultiScaleABNLoss()(out, torch.tensor([0, 1, 0, 1]), torch.ones(4, 1, 32, 32))
    loss.backward()
    assert all(p.grad is None for p in net.features.parameters())
    assert all(p.grad is not None for p in net.attention_branches.parameters())
    assert all(p.grad is not None for p in net.fusion.parameters())
    torch.testing.assert_close(net.features.bn1.running_mean, stats)
    net.freeze_features(False).train()
    assert net.features.training and all(p.requires_grad for p in net.features.parameters())


def _constant_output(maps: list[torch.Tensor], logits: torch.Tensor) -> MultiScaleABNOutput:
    return MultiScaleABNOutput(logits, logits, maps[0], (logits,) * 3, (logits,) * 3, tuple(maps))


def test_loss_matches_hand_computed_terms() -> None:
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    labels = torch.tensor([0, 0])
    maps = [torch.full((2, 1, s, s), 0.5) for s in (4, 2, 1)]
    mask = torch.zeros(2, 1, 8, 8)
    mask[:, :, :4, :4] = 1.0  # a quarter of the image
    has_mask = torch.tensor([True, False])
    ce = torch.nn.functional.cross_entropy(logits, labels)
    loss, parts = MultiScaleABNLoss(map_weights=[1.0, 2.0, 4.0], fuse_weight=0.5)(
        _constant_output(maps, logits), labels, mask, has_mask
    )
    # Stage maps of 0.5 against the sample with a mask: 4x4 -> a 2x2 block of ones in 16 cells,
    # 2x2 -> one cell of ones in 4, 1x1 -> one cell of 0.25.
    map_terms = [0.25, 0.25, 0.0625]
    expected = 3 * ce + 3 * ce + 0.5 * ce + 1.0 * 0.25 + 2.0 * 0.25 + 4.0 * 0.0625
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    assert parts["loss_map"] == pytest.approx(sum(map_terms))
    assert [parts[f"loss_map_{i}"] for i in range(3)] == pytest.approx(map_terms)
    assert parts["loss_fuse"] == pytest.approx(ce.item())
    assert map_terms[0] == pytest.approx(AttentionMapLoss()(maps[0], mask, has_mask).item())


def test_loss_without_masks_has_no_map_terms_and_rejects_single_scale_outputs(net) -> None:
    out = net(torch.rand(2, 1, 32, 32))
    loss, parts = MultiScaleABNLoss()(out, torch.tensor([0, 2]))
    assert "loss_map" not in parts and loss.requires_grad
    abn_out = AttentionBranchNetwork(num_classes=3)(torch.rand(2, 1, 32, 32))
    with pytest.raises(TypeError, match="needs a MultiScaleABNOutput"):
        MultiScaleABNLoss()(abn_out, torch.tensor([0, 2]))
    with pytest.raises(ValueError, match="map_weights has 2 entries for a network with 3 stages"):
        MultiScaleABNLoss(map_weights=[1.0, 1.0])(out, torch.tensor([0, 2]), torch.ones(2, 1, 32, 32))
