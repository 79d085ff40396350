"""Shortcut robustness on hand-computed cases: group and worst-group accuracy, the marker's share of a map,
RRR's summed-log-probability penalty, and the evaluation report's ``shortcut`` section."""

from __future__ import annotations

import csv
import json
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from monai_xai.handlers import EvaluationReportHandler
from monai_xai.handlers.evaluation_report import flatten_report
from monai_xai.losses import RightForRightReasonsLoss, get_classifier_loss
from monai_xai.metrics import (
    box_coverage,
    group_accuracy,
    group_ids,
    marker_energy,
    parse_box,
    worst_group_accuracy,
)

#: 8 images, two per group: benign agrees, benign disagrees, malignant agrees, malignant disagrees
LABELS = np.array([0, 0, 0, 0, 1, 1, 1, 1])
AGREES = np.array([1, 1, 0, 0, 1, 1, 0, 0], dtype=bool)
#: the marker is drawn where it says malignant: agreeing malignant and lying benign images
MARKED = LABELS.astype(bool) == AGREES
#: a classifier that mostly reads the marker, and reads the lesion on image 3
PREDS = np.array([0, 0, 1, 0, 1, 1, 0, 0])


def test_group_accuracy_and_worst_group_by_hand() -> None:
    assert group_ids(LABELS, AGREES).tolist() == [1, 1, 0, 0, 3, 3, 2, 2]
    found = group_accuracy(LABELS, PREDS, AGREES, ["benign", "malignant"])
    assert found == {
        "benign_agrees": 1.0,
        "benign_disagrees": 0.5,
        "malignant_agrees": 1.0,
        "malignant_disagrees": 0.0,
    }
    assert list(found) == ["benign_agrees", "benign_disagrees", "malignant_agrees", "malignant_disagrees"]
    assert worst_group_accuracy(LABELS, PREDS, AGREES) == 0.0
    # average accuracy 5/8 hides the failure that the worst group shows
    assert (PREDS == LABELS).mean() == 0.625
    # an empty group is left out, not scored 0; no image at all: NaN
    assert worst_group_accuracy([0, 0, 1], [0, 0, 1], [1, 1, 1]) == 1.0
    assert math.isnan(worst_group_accuracy([], [], []))
    with pytest.raises(ValueError, match="one entry per image"):
        group_accuracy([0, 1], [0], [1, 1])


def test_box_coverage_is_exact_at_any_resolution() -> None:
    assert parse_box("0 0 0.25 0.5") == (0.0, 0.0, 0.25, 0.5)
    for bad in ("0 0 0.25", "0.5 0 0.25 1", "a b c d", "0 0 1.5 1"):
        with pytest.raises(ValueError, match="marker box"):
            parse_box(bad)
    # x along the columns, y along the rows: 2 of 4 rows, 1 of 4 columns
    cover = box_coverage((4, 4), "0 0 0.25 0.5")
    assert cover.tolist() == [[1, 0, 0, 0], [1, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]
    # a box over half a cell covers it by half; the covered area is the box's at every resolution
    half = box_coverage((2, 2), "0 0 0.25 0.5")
    assert half.tolist() == [[0.5, 0.0], [0.0, 0.0]]
    for shape in ((2, 2), (3, 5), (16, 16)):
        assert box_coverage(shape, "0.1 0.2 0.4 0.3").mean() == pytest.approx(0.3 * 0.1)


def test_marker_energy_by_hand() -> None:
    maps = np.zeros((3, 1, 4, 4))
    maps[0, 0, 0, 0] = 2.0  # all energy in the marker's cell
    maps[1] = 1.0  # flat: the box's area share
    maps[1, 0, 3, 3] = -5.0  # negative values count as 0
    boxes = ["0 0 0.25 0.25"] * 3
    found = marker_energy(maps, boxes)
    assert found[0] == 1.0 and found[1] == pytest.approx(1 / 15) and math.isnan(found[2])
    with pytest.raises(ValueError, match="one box per map"):
        marker_energy(maps, boxes[:2])


def _linear_model() -> nn.Module:
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 3, bias=False))
    with torch.no_grad():
        model[1].weight.copy_(
            torch.tensor([[1.0, -2.0, 0.5, 3.0], [0.0, 1.0, -1.0, 2.0], [0.5, 0.5, 1.0, -1.0]])
        )
    return model


def test_summed_penalty_matches_the_closed_form_of_a_linear_model() -> None:
    model = _linear_model()
    x = torch.tensor([[[[0.2, -0.4], [1.0, 0.3]]]], requires_grad=True)
    mask = torch.tensor([[[[1.0, 0.0], [0.0, 1.0]]]])  # right reasons at pixels 0 and 3
    target = torch.tensor([1])
    loss, parts = RightForRightReasonsLoss(lam=2.0, penalty="summed")(model(x), target, mask, inputs=x)

    weight = model[1].weight.detach()
    p = torch.softmax(weight @ x.detach().flatten(), dim=0)
    # log p_k = w_k.x - logsumexp(Wx): d/dx sum_k log p_k = sum_k w_k - K * sum_j p_j w_j
    grad = weight.sum(0) - 3 * (p @ weight)
    penalty = grad[1] ** 2 + grad[2] ** 2  # the two pixels outside the mask
    assert parts["loss_rrr"] == pytest.approx(float(penalty), rel=1e-5)
    assert parts["loss_ce"] == pytest.approx(float(-torch.log(p[1])), rel=1e-5)
    assert float(loss.detach()) == pytest.approx(parts["loss_ce"] + 2.0 * parts["loss_rrr"], rel=1e-5)
    # the label penalty on the same case: d log p_y / dx = w_y - sum_j p_j w_j
    _, label = RightForRightReasonsLoss(lam=2.0)(model(x), target, mask, inputs=x)
    label_grad = weight[1] - p @ weight
    assert label["loss_rrr"] == pytest.approx(float(label_grad[1] ** 2 + label_grad[2] ** 2), rel=1e-5)
    loss.backward()  # double back-propagation reaches the weights
    assert model[1].weight.grad.abs().sum() > 0


def test_summed_penalty_of_two_classes_ignores_the_label() -> None:
    # two classes: d/dx (log p0 + log p1) = (p1 - p0)(w0 - w1), whatever the label; zero where p0 = p1
    model = nn.Sequential(nn.Flatten(), nn.Linear(2, 2, bias=False))
    with torch.no_grad():
        model[1].weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
    x = torch.tensor([[[[2.0, 1.0]]]], requires_grad=True)
    nowhere = torch.zeros(1, 1, 1, 2)
    p1 = 1 / (1 + math.e)  # softmax of logits (2, 1)
    expected = 2 * (p1 - (1 - p1)) ** 2  # (p1 - p0)^2 * |w0 - w1|^2, |w0 - w1|^2 = 2
    for target in (0, 1):
        _, parts = RightForRightReasonsLoss(penalty="summed")(
            model(x), torch.tensor([target]), nowhere, inputs=x
        )
        assert parts["loss_rrr"] == pytest.approx(expected, rel=1e-5)
    tie = torch.tensor([[[[1.0, 1.0]]]], requires_grad=True)
    _, parts = RightForRightReasonsLoss(penalty="summed")(model(tie), torch.tensor([0]), nowhere, inputs=tie)
    assert parts["loss_rrr"] == pytest.approx(0.0, abs=1e-12)


def test_the_penalty_is_chosen_by_config() -> None:
    loss = get_classifier_loss("rrr", rrr_lambda=3.0, rrr_penalty="summed")
    assert isinstance(loss, RightForRightReasonsLoss) and (loss.lam, loss.penalty) == (3.0, "summed")
    assert get_classifier_loss("rrr").penalty == "label"  # what the bundle always used
    with pytest.raises(ValueError, match="penalty must be one of label, summed"):
        RightForRightReasonsLoss(penalty="sum")
    bundle = json.loads(open("bundles/abn_classification/configs/train.json").read())
    assert bundle["rrr_penalty"] == "label" and bundle["loss"]["rrr_penalty"] == "@rrr_penalty"


def _engine(batch: dict, output: dict) -> SimpleNamespace:
    return SimpleNamespace(state=SimpleNamespace(batch=batch, output=output))


def test_evaluation_report_writes_group_accuracies_and_marker_energy(tmp_path) -> None:
    report = EvaluationReportHandler(
        tmp_path, num_classes=2, class_names=["benign", "malignant"], n_overlays=0
    )
    report.reset(None)
    maps = torch.full((8, 1, 4, 4), 1.0)
    maps[MARKED, 0, 0, 0] = 100.0  # the map sits on the marker wherever it is drawn ...
    maps[4] = 1.0  # ... but on image 4
    logits = torch.tensor([[2.0, -2.0] if p == 0 else [-2.0, 2.0] for p in PREDS])
    for part in (slice(0, 5), slice(5, 8)):  # two batches
        n = len(LABELS[part])
        batch = {
            "source": [f"img{i}" for i in range(8)][part],
            "marker": ["caliper" if m else "" for m in MARKED[part]],
            "marker_agrees": [str(int(a)) for a in AGREES[part]],
            "marker_box": ["0 0 0.25 0.25"] * n,
        }
        output = {
            "pred": logits[part],
            "label": torch.as_tensor(LABELS[part]),
            "image": torch.rand(n, 1, 8, 8),
            "attention_map": maps[part],
            "mask": torch.ones(n, 1, 8, 8),
            "has_mask": torch.ones(n, dtype=torch.bool),
        }
        report.collect(_engine(batch, output))
    report.write(_engine({}, {}))
    shortcut = json.loads((tmp_path / "metrics.json").read_text())["shortcut"]
    assert shortcut["group_accuracy"] == {
        "benign_agrees": 1.0,
        "benign_disagrees": 0.5,
        "malignant_agrees": 1.0,
        "malignant_disagrees": 0.0,
    }
    assert shortcut["group_counts"] == dict.fromkeys(shortcut["group_accuracy"], 2)
    assert (shortcut["worst_group"], shortcut["worst_group_accuracy"]) == ("malignant_disagrees", 0.0)
    on_marker = 100 / (100 + 15)
    expected = (3 * on_marker + 1 / 16) / 4  # the four marked images; image 4's flat map gives the area share
    assert shortcut["marker_energy"]["attention"] == pytest.approx(expected, rel=1e-5)
    assert shortcut["marker_images"] == 4 and shortcut["marker_area_share"] == pytest.approx(1 / 16)
    with open(tmp_path / "marker_per_image.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    # every image with a region gets a row, drawn or not: a clean twin is scored on its decoy's marked images
    assert (
        len(rows) == 8
        and rows[0]["marker"] == ""
        and float(rows[0]["marker_energy"]) == pytest.approx(1 / 16)
    )
    flat = flatten_report(json.loads((tmp_path / "metrics.json").read_text()), prefix="test_")
    assert flat["test_worst_group_accuracy"] == 0.0 and flat["test_group_accuracy_benign_disagrees"] == 0.5
    assert flat["test_attention_marker_energy"] == pytest.approx(expected, rel=1e-5)


def test_evaluation_without_marker_columns_has_no_shortcut_section(tmp_path) -> None:
    report = EvaluationReportHandler(tmp_path, num_classes=2, n_overlays=0)
    report.reset(None)
    output = {
        "pred": torch.tensor([[1.0, 0.0], [0.0, 1.0]]),
        "label": torch.tensor([0, 1]),
        "image": torch.rand(2, 1, 8, 8),
    }
    report.collect(_engine({"source": ["a", "b"]}, output))
    report.write(_engine({}, {}))
    assert "shortcut" not in json.loads((tmp_path / "metrics.json").read_text())
    assert not (tmp_path / "marker_per_image.csv").exists()


def test_quickstart_reports_the_worst_group_of_each_arm(tmp_path, monkeypatch) -> None:
    import importlib.util
    import sys

    from monai_xai.experiments.results import REPO

    spec = importlib.util.spec_from_file_location("quickstart", REPO / "scripts" / "quickstart.py")
    quickstart = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "quickstart", quickstart)  # its dataclasses look their module up
    spec.loader.exec_module(quickstart)
    (tmp_path / "arm" / "eval_test").mkdir(parents=True)
    with open(tmp_path / "arm" / "eval_test" / "predictions.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["source", "label", "pred"])
        writer.writerows([f"/d/images/test_{i}.png", y, p] for i, (y, p) in enumerate(zip(LABELS, PREDS)))
    agreements = {f"test_{i}.png": bool(a) for i, a in enumerate(AGREES)}
    found = quickstart.group_scores(tmp_path / "arm", agreements, ("smooth", "irregular"))
    assert found["test_worst_group_accuracy"] == 0.0
    assert found["test_group_accuracy"]["smooth_disagrees"] == 0.5
