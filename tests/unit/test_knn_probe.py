"""scripts/experiments/knn_probe.py: the k-NN probe of frozen encoders, on tiny tensors and a tiny dataset."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image


@pytest.fixture(scope="module")
def probe(load_script):
    return load_script("experiments/knn_probe.py")


def test_votes_are_weighted_by_similarity(probe) -> None:
    # the first query's nearest image is of class 1 (cosine 1.0); the two class-0 images (cosine 0.4 each)
    # outnumber it, but two votes of exp(0.4 / 0.07) weigh far less than one of exp(1 / 0.07)
    train = torch.tensor([[1.0, 0.0], [0.4, 0.9165], [0.4, -0.9165]])
    labels = torch.tensor([1, 0, 0])
    query = torch.tensor([[1.0, 0.0], [0.4, 0.9165]])
    assert probe.knn_predict(train, labels, query, k=3, num_classes=2).tolist() == [1, 0]
    assert probe.knn_predict(train, labels, query, k=1, num_classes=2).tolist() == [1, 0]
    # k beyond the training set uses all of it; a hot temperature makes it a plain majority vote
    assert probe.knn_predict(train, labels, query, k=10, num_classes=3).tolist() == [1, 0]
    assert probe.knn_predict(train, labels, query, k=3, num_classes=2, temperature=100.0).tolist() == [0, 0]


def test_scores_and_majority_rate(probe) -> None:
    labels, predicted = torch.tensor([0, 0, 1, 2]), torch.tensor([0, 1, 1, 1])
    scores = probe.scores(labels, predicted, ["normal", "benign", "malignant", "absent"])
    assert scores == {
        "accuracy": 0.5, "balanced_accuracy": 0.5, "recall": {"normal": 0.5, "benign": 1.0, "malignant": 0.0},
        "n": 4,
    }  # fmt: skip
    rates = probe.majority_rates(torch.tensor([1, 1, 0]), {"val": torch.tensor([1, 0]), "test": labels})
    assert rates == {"val": 0.5, "test": 0.25}


def test_pooled_features_are_unit_vectors_in_eval_mode(probe) -> None:
    from monai_xai.networks import ResNetEncoder

    encoder = ResNetEncoder("resnet18", in_channels=1).train()
    images = torch.rand(3, 1, 32, 32)
    features = probe.pooled_features(encoder, images, batch_size=2)
    assert features.shape == (3, 512) and not encoder.training
    assert torch.allclose(features.norm(dim=1), torch.ones(3), atol=1e-5)
    assert torch.allclose(probe.pooled_features(encoder, images), features, atol=1e-5)  # statistics unchanged


def _dataset(root: Path) -> tuple[Path, Path]:
    """Nine 32x32 grey images, three per class (0 dark, 1 mid, 2 bright), a CSV and a split with one of each
    class in the test set and in each of two folds."""
    rows, parts = [], {"test": [], "fold0": [], "fold1": []}
    rng = np.random.default_rng(0)
    for label in range(3):
        for i, part in enumerate(parts):
            name = f"c{label}_{i}.png"
            pixels = np.clip(60 + 70 * label + rng.normal(0, 10, (32, 32)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(root / name)
            rows.append({"image": name, "label_id": label})
            parts[part].append(name)
    csv_path = root / "labels.csv"
    with open(csv_path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["image", "label_id"])
        writer.writeheader()
        writer.writerows(rows)
    split = root / "split.json"
    split.write_text(json.dumps({"test": parts["test"], "folds": [parts["fold0"], parts["fold1"]]}))
    return csv_path, split


def test_main_compares_simsiam_with_a_random_encoder(probe, tmp_path) -> None:
    from monai_xai.networks import SimSiam, save_encoder

    csv_path, split = _dataset(tmp_path)
    torch.manual_seed(1)
    simsiam = SimSiam("resnet18", in_channels=1, proj_dim=16, pred_dim=8)
    encoder = save_encoder(simsiam, tmp_path / "encoder.pt")
    out = tmp_path / "probe" / "knn.json"
    report = probe.main([
        "--csv", str(csv_path), "--split_file", str(split), "--encoder", str(encoder), "--spatial_size", "32",
        "--k", "2", "--out", str(out),
    ])  # fmt: skip
    assert json.loads(out.read_text()) == report
    # fold 0 validates, fold 1 holds the neighbours
    assert report["images"] == {"train": 3, "val": 3, "test": 3}
    assert report["class_names"] == ["normal", "benign", "malignant"] and report["k"] == 2
    assert report["temperature"] == 0.07
    assert report["majority_class_rate"] == pytest.approx({"val": 1 / 3, "test": 1 / 3})
    assert set(report["encoders"]) == {"random", "simsiam"}
    for by_part in report["encoders"].values():
        assert set(by_part) == {"val", "test"}
        assert all(0.0 <= s["accuracy"] <= 1.0 and s["n"] == 3 for s in by_part.values())
    loaded = probe.build_encoders(encoder, "resnet18", 1, seed=0)
    for key, value in simsiam.encoder.state_dict().items():
        assert torch.equal(loaded["simsiam"].state_dict()[key], value), key
    again = probe.build_encoders(None, "resnet18", 1, seed=0)
    assert set(again) == {"random"}
    assert torch.equal(again["random"].conv1.weight, loaded["random"].conv1.weight)  # seeded


def test_k_below_one_is_refused(probe, tmp_path) -> None:
    csv_path, split = _dataset(tmp_path)
    with pytest.raises(SystemExit, match="--k must be at least 1"):
        probe.main(["--csv", str(csv_path), "--split_file", str(split), "--k", "0", "--out", "o.json"])
