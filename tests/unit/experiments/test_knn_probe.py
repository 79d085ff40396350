"""monai_xai.experiments.knn_probe: the k-NN probe of frozen encoders, on tiny tensors and a tiny dataset."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from monai_xai.errors import InputError
from monai_xai.experiments import knn_probe as probe
from monai_xai.experiments.centernet_busi import BLOCKS as CENTERNET_BLOCKS
from monai_xai.experiments.results import verdict

CLASSES = ["normal", "benign", "malignant"]


def test_votes_are_weighted_by_similarity() -> None:
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


def test_scores_carry_intervals_and_the_majority_rate() -> None:
    labels, predicted = [0, 0, 1, 2], [0, 1, 1, 1]
    scores = probe.scores(labels, predicted, [*CLASSES, "absent"], n_boot=50)
    assert scores["recall"] == {"normal": 0.5, "benign": 1.0, "malignant": 0.0} and scores["n"] == 4
    for key in ("accuracy", "balanced_accuracy"):
        assert scores[key]["mean"] == 0.5 and scores[key]["n"] == 4
        low, high = scores[key]["ci95"]
        assert low <= 0.5 <= high and low < high
    rates = probe.majority_rates([1, 1, 0], {"val": [1, 0], "test": labels})
    assert rates == {"val": 0.5, "test": 0.25}


def test_the_paired_difference_sees_what_two_intervals_hide() -> None:
    """Encoder a is right on 6 more of 60 images than b: the two accuracy intervals overlap, the paired
    difference's interval lies above zero; the same predictions give a difference of exactly zero."""
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 60)
    b = np.where(np.arange(60) % 2 == 0, labels, (labels + 1) % 3)
    a = np.where(np.arange(60) < 12, labels, b)
    scores_a, scores_b = probe.scores(labels, a, CLASSES, 500), probe.scores(labels, b, CLASSES, 500)
    assert scores_a["accuracy"]["ci95"][0] < scores_b["accuracy"]["ci95"][1]  # unpaired: they overlap
    difference = probe.differences(labels, a, b, n_boot=500)
    assert difference["accuracy"]["mean"] == pytest.approx(6 / 60)
    assert verdict(difference["accuracy"], 0.0) == "met"
    same = probe.differences(labels, b, b, n_boot=50)
    assert same["accuracy"] == {"mean": 0.0, "ci95": [0.0, 0.0], "n": 60}
    assert verdict(same["accuracy"], 0.0) == "not distinguishable at this n"


def test_summary_keeps_the_predictions_and_pairs_only_two_encoders() -> None:
    labels = {"val": [0, 1, 2, 1], "test": [2, 1, 0, 0]}
    predictions = {"random": {"val": [0, 0, 0, 0], "test": [1, 1, 1, 1]}, "simsiam": labels}
    result = probe.summary(labels, predictions, CLASSES, n_boot=20)
    assert set(result) == {"encoders", "difference", "predictions"}
    assert result["encoders"]["simsiam"]["test"]["accuracy"]["mean"] == 1.0
    assert result["difference"]["val"]["accuracy"]["mean"] == pytest.approx(1 - 0.25)
    assert result["predictions"]["test"] == {
        "labels": [2, 1, 0, 0],
        "random": [1, 1, 1, 1],
        "simsiam": labels["test"],
    }
    alone = probe.summary(labels, {"random": predictions["random"]}, CLASSES, n_boot=20)
    assert "difference" not in alone and set(alone["encoders"]) == {"random"}


def test_probe_table_renders_files_with_and_without_intervals() -> None:
    committed = json.loads(CENTERNET_BLOCKS["centernet_busi"].path.read_text())["knn_probe"]
    rows = "\n".join(probe.probe_table(committed, "SimSiam, 200 epochs"))
    assert "| SimSiam, 200 epochs | 0.632 | 0.472 | 0.572 | 0.425 |" in rows
    assert "| random init | 0.642 | 0.505 | 0.546 | 0.402 |" in rows
    assert "| majority class of the training images | 0.564 | 0.333 | 0.559 | 0.333 |" in rows
    assert "paired" not in rows and "No intervals in this file (re-run pending)." in rows

    labels = {"val": [0, 1, 2, 1] * 5, "test": [2, 1, 0, 0] * 5}
    predictions = {"random": {p: [1] * 20 for p in labels}, "simsiam": labels}
    new = {**committed, **probe.summary(labels, predictions, CLASSES, n_boot=20)}
    rows = "\n".join(probe.probe_table(new, "SimSiam, 3 epochs"))
    assert "| SimSiam, 3 epochs | 1.000 [1.000, 1.000] |" in rows
    assert "| SimSiam - random, paired | 0.500 [" in rows and "the last row is the paired difference" in rows


def test_pooled_features_are_unit_vectors_in_eval_mode() -> None:
    from monai_xai.networks import ResNetEncoder

    encoder = ResNetEncoder("resnet18", in_channels=1).train()
    images = torch.rand(3, 1, 32, 32)
    features = probe.pooled_features(encoder, images, batch_size=2)
    assert features.shape == (3, 512) and not encoder.training and not features.requires_grad
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


def test_main_compares_simsiam_with_a_random_encoder(tmp_path) -> None:
    from monai_xai.networks import SimSiam, save_encoder

    csv_path, split = _dataset(tmp_path)
    torch.manual_seed(1)
    simsiam = SimSiam("resnet18", in_channels=1, proj_dim=16, pred_dim=8)
    encoder = save_encoder(simsiam, tmp_path / "encoder.pt")
    out = tmp_path / "probe" / "knn.json"
    assert probe.main([
        "--csv", str(csv_path), "--split_file", str(split), "--encoder", str(encoder), "--spatial_size", "32",
        "--k", "2", "--n_boot", "20", "--out", str(out),
    ]) == 0  # fmt: skip
    report = json.loads(out.read_text())
    # fold 0 validates, fold 1 holds the neighbours
    assert report["images"] == {"train": 3, "val": 3, "test": 3}
    assert report["class_names"] == CLASSES and report["k"] == 2 and report["n_boot"] == 20
    assert report["temperature"] == 0.07 and "limit" not in report
    assert report["majority_class_rate"] == pytest.approx({"val": 1 / 3, "test": 1 / 3})
    assert set(report["encoders"]) == {"random", "simsiam"} and set(report["difference"]) == {"val", "test"}
    for name, by_part in report["encoders"].items():
        assert set(by_part) == {"val", "test"}
        for part, s in by_part.items():
            assert 0.0 <= s["accuracy"]["mean"] <= 1.0 and s["n"] == 3 and len(s["accuracy"]["ci95"]) == 2
            correct = np.mean(
                np.array(report["predictions"][part][name]) == report["predictions"][part]["labels"]
            )
            assert s["accuracy"]["mean"] == pytest.approx(correct)
    loaded = probe.build_encoders(encoder, "resnet18", 1, seed=0)
    for key, value in simsiam.encoder.state_dict().items():
        assert torch.equal(loaded["simsiam"].state_dict()[key], value), key
    again = probe.build_encoders(None, "resnet18", 1, seed=0)
    assert set(again) == {"random"}
    assert torch.equal(again["random"].conv1.weight, loaded["random"].conv1.weight)  # seeded


def test_bad_arguments_are_refused(tmp_path) -> None:
    csv_path, split = _dataset(tmp_path)
    base = ["--csv", str(csv_path), "--split_file", str(split)]
    with pytest.raises(InputError, match="--k must be at least 1"):
        probe.main([*base, "--k", "0", "--out", str(tmp_path / "o.json")])
    with pytest.raises(SystemExit):  # the probe writes into its run folder: --out is required
        probe.main(base)


def test_the_probe_has_no_block_and_imports_no_torch_to_render() -> None:
    import subprocess
    import sys

    code = "import sys, monai_xai.experiments.knn_probe; print(sorted({'torch', 'monai'} & set(sys.modules)))"
    assert probe.BLOCKS == {}
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "[]"
