"""ResNet backbones and the Attention Branch Network: shapes, map range, external maps, gradients."""

from __future__ import annotations

import pytest
import torch
from monai.networks.nets import ResNet

from monai_xai.networks import (
    ABNOutput,
    AttentionBranchNetwork,
    CompactAttentionBranchNetwork,
    NarrowAttentionBranchNetwork,
    ResNetClassifier,
    get_classifier,
    get_resnet_spec,
    resize_attention,
    resnet_backbone,
    resnet_feature_stages,
    upsample_attention,
)

SHAPES = {2: (2, 1, 32, 32), 3: (2, 1, 16, 16, 16)}


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.fixture(scope="module")
def abn() -> AttentionBranchNetwork:
    """One 2D resnet18 ABN shared by the tests that only run it (building networks dominates test time)."""
    torch.manual_seed(0)
    return AttentionBranchNetwork("resnet18", spatial_dims=2, in_channels=1, num_classes=2)


def test_resnet_backbone_is_monai_resnet_with_standard_stem() -> None:
    net = resnet_backbone("resnet18", spatial_dims=2, in_channels=3, num_classes=4)
    assert isinstance(net, ResNet)
    assert net.conv1.stride == (2, 2) and not net.no_max_pool
    assert net(torch.rand(2, 3, 32, 32)).shape == (2, 4)


def test_monai_stem_keeps_stride_one() -> None:
    assert resnet_backbone("resnet18", stem="monai").conv1.stride == (1, 1)


def test_small_stem_keeps_a_28_pixel_image_at_full_size_through_layer1() -> None:
    net = resnet_backbone("resnet18", stem="small")
    assert net.conv1.kernel_size == (3, 3) and net.conv1.stride == (1, 1) and net.no_max_pool
    features, _ = resnet_feature_stages(net, 1)
    assert features(torch.zeros(1, 1, 28, 28)).shape[-2:] == (28, 28)
    abn = AttentionBranchNetwork(stem="small")
    assert abn(torch.zeros(2, 1, 28, 28))[0].shape == (2, 2)


def test_unknown_backbone_and_stem_are_named() -> None:
    with pytest.raises(ValueError, match="resnet18, resnet34, resnet50"):
        resnet_backbone("resnet101")
    with pytest.raises(ValueError, match="standard, monai"):
        ResNetClassifier(stem="fast")
    with pytest.raises(ValueError, match="valid names"):
        AttentionBranchNetwork("vgg16")


@pytest.mark.parametrize("spatial_dims", [2, 3])
def test_resnet_classifier_returns_logits(spatial_dims: int) -> None:
    net = ResNetClassifier("resnet18", spatial_dims=spatial_dims, num_classes=3)
    assert isinstance(net, ResNet)
    assert net(torch.rand(SHAPES[spatial_dims])).shape == (2, 3)


def test_feature_stages_share_modules_and_channels() -> None:
    net = resnet_backbone("resnet50")
    features, later = resnet_feature_stages(net)
    assert features.layer3 is net.layer3 and later.layer4 is net.layer4 and len(later) == 1
    out = features(torch.rand(2, 1, 32, 32))
    assert out.shape == (2, get_resnet_spec("resnet50").feature_channels, 2, 2)
    assert later(out).shape[1] == get_resnet_spec("resnet50").out_channels


def test_feature_stages_split_after_layer1() -> None:
    net = resnet_backbone("resnet18")
    features, later = resnet_feature_stages(net, stage=1)
    assert list(dict(later.named_children())) == ["layer2", "layer3", "layer4"]
    assert features(torch.rand(2, 1, 32, 32)).shape == (2, 64, 8, 8)
    with pytest.raises(ValueError, match="stage must be 1, 2 or 3"):
        resnet_feature_stages(net, stage=4)


@pytest.mark.parametrize(
    "backbone, spatial_dims",
    [("resnet18", 2), ("resnet34", 2), ("resnet50", 2), ("resnet18", 3), ("resnet50", 3)],
)
def test_abn_shapes_and_map_range(backbone: str, spatial_dims: int) -> None:
    net = AttentionBranchNetwork(backbone, spatial_dims=spatial_dims, in_channels=1, num_classes=3)
    x = torch.rand(SHAPES[spatial_dims])
    out = net(x)
    assert isinstance(out, ABNOutput)
    assert out.attention_logits.shape == (2, 3) and out.perception_logits.shape == (2, 3)
    feature_size = net.features(x).shape[2:]
    assert out.attention_map.shape == (2, 1, *feature_size)
    assert out.attention_map.min() >= 0 and out.attention_map.max() <= 1


@pytest.mark.parametrize("backbone, spatial_dims", [("resnet18", 2), ("resnet50", 3)])
def test_compact_abn_keeps_map_resolution_with_a_smaller_branch(backbone: str, spatial_dims: int) -> None:
    full = AttentionBranchNetwork(backbone, spatial_dims=spatial_dims, num_classes=3)
    compact = CompactAttentionBranchNetwork(backbone, spatial_dims=spatial_dims, num_classes=3)
    x = torch.rand(SHAPES[spatial_dims])
    full_out, compact_out = full(x), compact(x)
    assert compact_out.attention_map.shape == full_out.attention_map.shape
    assert compact_out.perception_logits.shape == (2, 3)
    # One block at layer3's width instead of layer4's blocks: the branch is much smaller, the rest identical.
    spec = get_resnet_spec(backbone)
    assert len(compact.attention_branch.layer) == 1 and len(full.attention_branch.layer) == spec.layers[3]
    assert compact.attention_branch.norm.num_features == spec.feature_channels

    def size(m: torch.nn.Module) -> int:
        return sum(p.numel() for p in m.parameters())

    assert size(compact.attention_branch) < size(full.attention_branch) / 4
    assert size(compact.features) == size(full.features)
    assert size(compact.perception_branch) == size(full.perception_branch)


def test_narrow_abn_keeps_layer4_depth_at_layer3_width() -> None:
    full = AttentionBranchNetwork("resnet18", spatial_dims=2, num_classes=3)
    narrow = NarrowAttentionBranchNetwork("resnet18", spatial_dims=2, num_classes=3)
    x = torch.rand(SHAPES[2])
    assert narrow(x).attention_map.shape == full(x).attention_map.shape
    spec = get_resnet_spec("resnet18")
    assert len(narrow.attention_branch.layer) == spec.layers[3]
    assert narrow.attention_branch.norm.num_features == spec.feature_channels

    def size(m: torch.nn.Module) -> int:
        return sum(p.numel() for p in m.parameters())

    # Half the width: about a quarter of the full branch's weights.
    assert size(narrow.attention_branch) < size(full.attention_branch) / 3


def test_get_classifier_picks_architecture_by_name() -> None:
    assert type(get_classifier("dynamic")) is AttentionBranchNetwork
    assert type(get_classifier("plain", architecture="abn_compact")) is CompactAttentionBranchNetwork
    assert type(get_classifier("dynamic", architecture="abn_narrow")) is NarrowAttentionBranchNetwork
    assert type(get_classifier("baseline", architecture="abn_compact")) is ResNetClassifier
    with pytest.raises(ValueError, match="unknown architecture 'abn_tiny'.*abn, abn_narrow, abn_compact"):
        get_classifier("dynamic", architecture="abn_tiny")
    with pytest.raises(ValueError, match="unknown mode 'static'"):
        get_classifier("static")


def test_abn_accepts_any_in_channels() -> None:
    out = AttentionBranchNetwork(in_channels=3, num_classes=2)(torch.rand(2, 3, 32, 32))
    assert out.perception_logits.shape == (2, 2)


def test_external_map_replaces_attention_in_perception_only(abn: AttentionBranchNetwork) -> None:
    net = abn.eval()
    x = torch.rand(2, 1, 32, 32)
    with torch.no_grad():
        own = net(x)
        zeros = net(x, attention_map=torch.zeros(2, 1, 32, 32))
        ones = net(x, attention_map=torch.ones(2, 1, 32, 32))
        over = net(x, attention_map=torch.full((2, 1, 32, 32), 5.0))
        own_again = net(x, attention_map=own.attention_map)
    assert not torch.allclose(zeros.perception_logits, ones.perception_logits)
    assert not torch.allclose(zeros.perception_logits, own.perception_logits)
    torch.testing.assert_close(over.perception_logits, ones.perception_logits)
    torch.testing.assert_close(own_again.perception_logits, own.perception_logits)
    torch.testing.assert_close(ones.attention_logits, own.attention_logits)
    torch.testing.assert_close(ones.attention_map, own.attention_map)


def test_external_map_shapes(abn: AttentionBranchNetwork) -> None:
    net = abn.eval()
    x = torch.rand(2, 1, 32, 32)
    with torch.no_grad():
        full = net(x, attention_map=torch.ones(2, 1, 7, 9)).perception_logits
        no_channel = net(x, attention_map=torch.ones(2, 7, 9)).perception_logits
        broadcast = net(x, attention_map=torch.ones(1, 1, 2, 2)).perception_logits
    torch.testing.assert_close(full, no_channel)
    torch.testing.assert_close(full, broadcast)
    with pytest.raises(ValueError, match="attention_map must have shape"):
        net(x, attention_map=torch.ones(3, 1, 32, 32))
    with pytest.raises(ValueError, match="attention_map must have shape"):
        net(x, attention_map=torch.ones(2, 2, 32, 32))


def test_gradient_reaches_every_part(abn: AttentionBranchNetwork) -> None:
    net = abn.train()
    net.zero_grad()
    out = net(torch.rand(2, 1, 32, 32))
    (out.attention_logits.sum() + out.perception_logits.sum() + out.attention_map.sum()).backward()
    for module in (net.features.conv1, net.attention_branch.map_conv, net.perception_branch.fc):
        assert module.weight.grad is not None and module.weight.grad.abs().sum() > 0


def test_gradient_flows_into_external_map(abn: AttentionBranchNetwork) -> None:
    net = abn.train()
    amap = torch.full((2, 1, 32, 32), 0.5, requires_grad=True)
    net(torch.rand(2, 1, 32, 32), attention_map=amap).perception_logits.sum().backward()
    assert amap.grad is not None and amap.grad.abs().sum() > 0


def test_upsample_and_resize_attention() -> None:
    amap = torch.tensor([[[[0.0, 1.0], [1.0, 0.0]]]])
    up = upsample_attention(amap, (4, 4))
    assert up.shape == (1, 1, 4, 4)
    assert up[0, 0, 0, 0] == 0.0 and up[0, 0, 0, 3] == 1.0
    assert upsample_attention(torch.ones(1, 1, 2, 2, 2), 4).shape == (1, 1, 4, 4, 4)
    mask = torch.zeros(1, 1, 4, 4)
    mask[0, 0, :2, :1] = 1.0
    torch.testing.assert_close(resize_attention(mask, (2, 2)), torch.tensor([[[[0.5, 0.0], [0.0, 0.0]]]]))
    assert resize_attention(amap, (4, 4)).shape == (1, 1, 4, 4)
