"""Library functions the bundle configs call instead of holding conditionals, lambdas or comprehensions."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch


def _old_cam_rule(spatial_size):  # the rule as the configs wrote it before it moved into the library
    smallest = min(spatial_size)
    return "network.layer4" if smallest >= 112 else "network.layer3" if smallest >= 56 else "network.layer2"


def test_resnet_cam_layer_keeps_the_config_rule_and_a_feature_map_at_least_4_wide():
    from monai_xai.networks.nets import LeakyResNetClassifier
    from monai_xai.visualize import resnet_cam_layer

    for size in range(8, 300):
        assert resnet_cam_layer([size, size + 3]) == _old_cam_rule([size, size + 3])
    classifier = LeakyResNetClassifier().eval()
    widths = {}
    hooks = [
        getattr(classifier, name).register_forward_hook(
            lambda module, args, out, name=name: widths.__setitem__(name, out.shape[-1])
        )
        for name in ("layer2", "layer3", "layer4")
    ]
    for size in (28, 64, 112):
        with torch.no_grad():
            classifier(torch.zeros(1, 1, size, size))
        assert widths[resnet_cam_layer([size, size]).removeprefix("network.")] >= 4
    for hook in hooks:
        hook.remove()


def test_get_device_falls_back_to_the_cpu(monkeypatch):
    from monai_xai.bundle import get_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert get_device() == torch.device("cpu") and get_device("cpu") == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert get_device("cuda:1") == torch.device("cuda:1")


def test_lower_is_better_and_loss_part():
    from monai_xai.bundle import lower_is_better
    from monai_xai.engines import loss_part

    assert lower_is_better(0.1, 0.2) and not lower_is_better(0.2, 0.2)
    assert loss_part("loss_g")({"loss": 1.0, "loss_parts": {"loss_g": 0.5, "loss_d": 2.0}}) == 0.5


def test_balanced_dataset_from_items_reads_the_labels():
    from monai_xai.data import ClassBalancedDataset

    items = [{"image": f"{i}.png", "label": int(i < 3)} for i in range(8)]
    dataset = ClassBalancedDataset.from_items(items, items, seed=1)
    assert len(dataset) == 10 and {d["image"] for d in dataset} == {f"{i}.png" for i in range(8)}


def test_image_files_skip_masks_and_datalists_name_their_sources(tmp_path):
    from monai_xai.data import image_files, image_items, inference_datalist
    from monai_xai.errors import InputError

    for name in ("b/two.png", "b/two_mask.png", "one.nii.gz", "notes.txt"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    files = image_files(tmp_path)
    assert files == [str(tmp_path / "b" / "two.png"), str(tmp_path / "one.nii.gz")]
    array = np.zeros((1, 4, 4))
    items = inference_datalist([files[0], array])
    assert items[0] == {"image": files[0], "source": files[0]} and set(items[1]) == {"image"}
    assert image_items([{"image": "a.png", "label": 1, "boxes": []}]) == [{"image": "a.png"}]
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no images"):
        image_files(tmp_path / "empty")


def test_score_threshold_of_reads_the_validation_record_beside_the_checkpoint(tmp_path):
    from monai_xai.errors import InputError
    from monai_xai.networks import score_threshold_of, score_threshold_path
    from monai_xai.runs import file_digest

    checkpoint = tmp_path / "best.pt"
    checkpoint.write_bytes(b"weights")
    assert score_threshold_of(checkpoint, default=0.3) == 0.3  # not evaluated yet
    record = {"threshold": 0.25, "split": "val", "checkpoint": file_digest(checkpoint)}
    score_threshold_path(checkpoint).write_text(json.dumps({"score_threshold": record}))
    assert score_threshold_path(checkpoint).name == "best.score_threshold.json"
    assert score_threshold_of(checkpoint) == 0.25
    checkpoint.write_bytes(b"other weights")
    with pytest.raises(InputError, match="made for other weights"):
        score_threshold_of(checkpoint)


def test_keep_confident_detections():
    from monai_xai.detection import KeepConfidentd

    detections = [
        {"boxes": torch.tensor([[0.0, 0, 4, 4], [1, 1, 5, 5]]), "scores": torch.tensor([0.9, 0.1]),
         "labels": torch.tensor([1, 0])},
        {"boxes": torch.zeros(0, 4), "scores": torch.zeros(0), "labels": torch.zeros(0, dtype=torch.long)},
    ]  # fmt: skip
    kept = KeepConfidentd(threshold=0.3)({"detections": detections, "image": None})["detections"]
    assert kept[0]["scores"].tolist() == [pytest.approx(0.9)] and kept[0]["labels"].tolist() == [1]
    assert kept[0]["boxes"].shape == (1, 4) and kept[1]["boxes"].shape == (0, 4)
