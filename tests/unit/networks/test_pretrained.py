"""Pretrained weights from a file: torchvision 2D and MedicalNet 3D key layouts onto the networks built here.

The files are written in the sources' own layouts from hand-written key lists (not through the loader's
mapping), and every check names the network tensor a file tensor must land in.
"""

from __future__ import annotations

import logging

import pytest
import torch
from monai.networks.nets import ResNet, ResNetBlock

from monai_xai.errors import InputError
from monai_xai.networks import (
    CenterNet,
    MultiScaleAttentionBranchNetwork,
    get_classifier,
    init_backbone,
    load_pretrained_weights,
)
from monai_xai.networks.nets import FrozenResNetEncoder, GatedAttentionBranchNetwork, LeakyResNetClassifier

#: (stage, input width, width) of torchvision's resnet18; two basic blocks per stage.
_TORCHVISION_STAGES = ((1, 64, 64), (2, 64, 128), (3, 128, 256), (4, 256, 512))


def _batch_norm(state: dict, prefix: str, channels: int, tracked: bool = True) -> None:
    state[f"{prefix}.weight"] = torch.rand(channels) + 0.5
    state[f"{prefix}.bias"] = torch.randn(channels)
    state[f"{prefix}.running_mean"] = torch.randn(channels)
    state[f"{prefix}.running_var"] = torch.rand(channels) + 0.5
    if tracked:
        state[f"{prefix}.num_batches_tracked"] = torch.tensor(7)


def torchvision_resnet18_state() -> dict[str, torch.Tensor]:
    """``torchvision.models.resnet18().state_dict()``'s keys and shapes, random values (ImageNet head)."""
    torch.manual_seed(0)
    state = {"conv1.weight": torch.randn(64, 3, 7, 7)}
    _batch_norm(state, "bn1", 64)
    for stage, in_width, width in _TORCHVISION_STAGES:
        for block in (0, 1):
            prefix = f"layer{stage}.{block}"
            block_in = in_width if block == 0 else width
            state[f"{prefix}.conv1.weight"] = torch.randn(width, block_in, 3, 3)
            _batch_norm(state, f"{prefix}.bn1", width)
            state[f"{prefix}.conv2.weight"] = torch.randn(width, width, 3, 3)
            _batch_norm(state, f"{prefix}.bn2", width)
            if block == 0 and stage > 1:
                state[f"{prefix}.downsample.0.weight"] = torch.randn(width, block_in, 1, 1)
                _batch_norm(state, f"{prefix}.downsample.1", width)
    state["fc.weight"] = torch.randn(1000, 512)
    state["fc.bias"] = torch.randn(1000)
    return state


@pytest.fixture(scope="module")
def torchvision_file(tmp_path_factory) -> tuple:
    path = tmp_path_factory.mktemp("weights") / "resnet18_imagenet.pth"
    state = torchvision_resnet18_state()
    torch.save(state, path)
    return path, state


def _tiny_resnet3d() -> ResNet:
    """A MONAI 3D ResNet with one block per stage at widths 2..16: MedicalNet's layout at toy size."""
    return ResNet(ResNetBlock, [1, 1, 1, 1], [2, 4, 8, 16], spatial_dims=3, n_input_channels=1, num_classes=2)


def medicalnet_state() -> dict[str, torch.Tensor]:
    """A MedicalNet resnet checkpoint's ``state_dict`` for :func:`_tiny_resnet3d`'s widths: ``module.``
    prefixes (DataParallel), shortcut type A (no downsample weights), no ``num_batches_tracked``, and the
    ``conv_seg`` segmentation head instead of ``fc``."""
    torch.manual_seed(1)
    state = {"conv1.weight": torch.randn(2, 1, 7, 7, 7)}
    _batch_norm(state, "bn1", 2, tracked=False)
    for stage, in_width, width in ((1, 2, 2), (2, 2, 4), (3, 4, 8), (4, 8, 16)):
        state[f"layer{stage}.0.conv1.weight"] = torch.randn(width, in_width, 3, 3, 3)
        _batch_norm(state, f"layer{stage}.0.bn1", width, tracked=False)
        state[f"layer{stage}.0.conv2.weight"] = torch.randn(width, width, 3, 3, 3)
        _batch_norm(state, f"layer{stage}.0.bn2", width, tracked=False)
    state["conv_seg.0.weight"] = torch.randn(16, 4, 2, 2, 2)
    state["conv_seg.0.bias"] = torch.randn(4)
    _batch_norm(state, "conv_seg.1", 4, tracked=False)
    state["conv_seg.3.weight"] = torch.randn(2, 4, 1, 1, 1)
    return {f"module.{key}": value for key, value in state.items()}


def test_torchvision_weights_land_in_a_plain_resnet_rgb_summed_head_skipped(torchvision_file, caplog):
    path, state = torchvision_file
    network = get_classifier("baseline", in_channels=1)
    head = network.fc.weight.detach().clone()
    with caplog.at_level(logging.INFO, logger="monai_xai.networks.pretrained"):
        report = load_pretrained_weights(network, path)
    torch.testing.assert_close(network.conv1.weight, state["conv1.weight"].sum(1, keepdim=True))
    torch.testing.assert_close(network.layer4[1].bn2.running_var, state["layer4.1.bn2.running_var"])
    torch.testing.assert_close(network.layer2[0].downsample[0].weight, state["layer2.0.downsample.0.weight"])
    torch.testing.assert_close(network.layer3[0].downsample[1].bias, state["layer3.0.downsample.1.bias"])
    # torchvision's shortcut convolutions have no bias; MONAI's get zero, i.e. the same function
    assert not network.layer2[0].downsample[0].bias.any()
    assert torch.equal(network.fc.weight, head)
    assert report.skipped == {"classifier head (trained for the source's classes)": ["fc.weight", "fc.bias"]}
    assert report.kept == ["fc.weight", "fc.bias"]
    assert len(report.loaded) == len(state) - 2
    assert any("RGB filters summed" in note for note in report.notes)
    logged = caplog.text
    assert "resnet18_imagenet.pth -> ResNetClassifier" in logged and "skipped 2, classifier head" in logged


def test_torchvision_weights_land_in_the_abn_trunk(torchvision_file, caplog):
    path, state = torchvision_file
    with caplog.at_level(logging.INFO, logger="monai_xai.networks.pretrained"):
        abn = get_classifier("dynamic", in_channels=3, pretrained_weights=path)
    expected = {  # network tensor -> torchvision tensor
        "features.conv1.weight": "conv1.weight",  # 3 channels: kept as they are
        "features.bn1.running_mean": "bn1.running_mean",
        "features.layer1.0.conv2.weight": "layer1.0.conv2.weight",
        "features.layer3.1.bn1.weight": "layer3.1.bn1.weight",
        "perception_branch.layer4.0.downsample.0.weight": "layer4.0.downsample.0.weight",
        "perception_branch.layer4.1.conv2.weight": "layer4.1.conv2.weight",
    }
    own = abn.state_dict()
    for network_key, file_key in expected.items():
        torch.testing.assert_close(own[network_key], state[file_key], msg=network_key)
    assert "RGB" not in caplog.text
    assert (
        "kept their initialisation: attention_branch" in caplog.text
        and "perception_branch.fc (2)" in caplog.text
    )


def test_the_gated_abn_perception_branch_starts_at_layer2(torchvision_file):
    path, state = torchvision_file
    gated = GatedAttentionBranchNetwork(pretrained_weights=path)
    torch.testing.assert_close(gated.features.layer1[1].conv1.weight, state["layer1.1.conv1.weight"])
    torch.testing.assert_close(gated.perception_branch.layer2[0].conv1.weight, state["layer2.0.conv1.weight"])


def test_multiscale_abn_and_centernet_take_the_trunk_they_hold(torchvision_file):
    path, state = torchvision_file
    multiscale = MultiScaleAttentionBranchNetwork(in_channels=3, pretrained_weights=path)
    torch.testing.assert_close(multiscale.features.layer3[0].conv1.weight, state["layer3.0.conv1.weight"])
    report = load_pretrained_weights(multiscale, path)
    assert "layer4.1.conv2.weight" in report.skipped["no counterpart in the network"]

    detector = init_backbone(CenterNet(num_classes=2, in_channels=3), "random", pretrained_weights=path)
    torch.testing.assert_close(detector.backbone.layer4[1].conv2.weight, state["layer4.1.conv2.weight"])
    torch.testing.assert_close(detector.backbone.conv1.weight, state["conv1.weight"])
    with pytest.raises(InputError, match="pretrained_weights: init='simsiam' loads its own backbone"):
        init_backbone(CenterNet(num_classes=2), "simsiam", "encoder.pt", pretrained_weights=path)


def test_the_agcyclegan_encoder_freezes_a_pretrained_classifier(torchvision_file):
    path, state = torchvision_file
    classifier = LeakyResNetClassifier(in_channels=1, pretrained_weights=path)
    encoder = FrozenResNetEncoder(classifier)
    torch.testing.assert_close(encoder.stem[0].weight, state["conv1.weight"].sum(1, keepdim=True))
    torch.testing.assert_close(encoder.stages[2][1].conv1.weight, state["layer3.1.conv1.weight"])


def test_other_channel_counts_and_kernel_sizes_are_skipped_with_the_shapes(torchvision_file):
    path, state = torchvision_file
    network = get_classifier("baseline", in_channels=2, stem="small")
    report = load_pretrained_weights(network, path)
    assert report.skipped["shape does not fit"] == ["conv1.weight"]
    assert report.mismatches["conv1.weight"] == "(64, 3, 7, 7) in file, (64, 2, 3, 3) in network"
    assert "conv1.weight" in report.kept
    torch.testing.assert_close(network.layer1[0].conv1.weight, state["layer1.0.conv1.weight"])


def test_medicalnet_3d_weights_load_module_prefix_stripped(tmp_path):
    path = tmp_path / "resnet_18_23dataset.pth"
    state = medicalnet_state()
    torch.save({"state_dict": state}, path)
    network = _tiny_resnet3d()
    downsample = network.layer2[0].downsample[0].weight.detach().clone()
    report = load_pretrained_weights(network, path)
    torch.testing.assert_close(network.conv1.weight, state["module.conv1.weight"])
    torch.testing.assert_close(network.layer3[0].conv2.weight, state["module.layer3.0.conv2.weight"])
    torch.testing.assert_close(network.layer4[0].bn1.running_mean, state["module.layer4.0.bn1.running_mean"])
    # shortcut type A: the file has no projection shortcut; the network's stays as initialised
    assert torch.equal(network.layer2[0].downsample[0].weight, downsample)
    assert "layer2.0.downsample.0.weight" in report.kept and "fc.weight" in report.kept
    assert report.skipped["no counterpart in the network"][0] == "conv_seg.0.weight"


def test_a_training_checkpoint_under_model_loads(tmp_path):
    state = medicalnet_state()
    torch.save({"model": state, "epoch": 3}, tmp_path / "checkpoint.pt")
    network = _tiny_resnet3d()
    load_pretrained_weights(network, tmp_path / "checkpoint.pt")
    torch.testing.assert_close(network.layer1[0].conv1.weight, state["module.layer1.0.conv1.weight"])


def test_a_file_that_fits_nothing_is_named(tmp_path, torchvision_file):
    unrelated = tmp_path / "unet.pt"
    torch.save({"encoder.0.weight": torch.randn(4, 1, 3, 3)}, unrelated)
    with pytest.raises(InputError, match=r"unet\.pt: no convolution fits ResNetClassifier"):
        get_classifier("baseline", pretrained_weights=unrelated)
    # a 2D network given 3D weights: only batch-norm vectors would fit
    medicalnet = tmp_path / "medicalnet.pth"
    torch.save({"state_dict": medicalnet_state()}, medicalnet)
    two_d = ResNet(
        ResNetBlock, [1, 1, 1, 1], [2, 4, 8, 16], spatial_dims=2, n_input_channels=1, num_classes=2
    )
    with pytest.raises(InputError, match=r"medicalnet\.pth: no convolution fits"):
        load_pretrained_weights(two_d, medicalnet)


def test_a_file_that_is_not_a_state_dict_is_named(tmp_path):
    listed = tmp_path / "list.pt"
    torch.save([1, 2, 3], listed)
    with pytest.raises(InputError, match=r"list\.pt: not a state dict"):
        load_pretrained_weights(_tiny_resnet3d(), listed)
    text = tmp_path / "notes.pth"
    text.write_text("not a checkpoint")
    with pytest.raises(InputError, match=r"notes\.pth: cannot read as a PyTorch state dict"):
        load_pretrained_weights(_tiny_resnet3d(), text)
    with pytest.raises(InputError, match="not found"):
        load_pretrained_weights(_tiny_resnet3d(), tmp_path / "missing.pth")
