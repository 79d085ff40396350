"""Detection metrics on constructed cases: the IoU-0.25 confusion matrix, F1 threshold search (a selection,
run on validation), the report at a threshold given to it, COCO AP."""

from __future__ import annotations

import numpy as np
import pytest

from monai_xai.metrics.detection import (
    coco_detection_metrics,
    detection_confusion_matrix,
    detection_report,
    detection_scores_at,
    f1_threshold_search,
    per_class_detection_stats,
)

LESION_A = [10, 10, 50, 50]
LESION_B = [60, 60, 100, 100]


def _pred(boxes, scores, labels):
    return {
        "boxes": np.array(boxes, float).reshape(-1, 4),
        "scores": np.array(scores),
        "labels": np.array(labels),
    }


def _cases():
    targets = [
        {"boxes": np.array([LESION_A, LESION_B]), "labels": np.array([0, 1])},
        {"boxes": np.array([LESION_A]), "labels": np.array([1])},
        {"boxes": np.zeros((0, 4)), "labels": np.zeros(0)},  # a negative image
    ]
    predictions = [
        # lesion A: two boxes, the more confident says class 1 (wrong); lesion B: found as class 1
        _pred([[12, 12, 50, 48], [10, 10, 45, 52], [62, 60, 100, 98]], [0.6, 0.9, 0.8], [0, 1, 1]),
        _pred([[200, 200, 220, 220]], [0.3], [1]),  # misses its lesion and detects nothing real
        _pred([[0, 0, 20, 20]], [0.2], [0]),  # a false detection on a negative image
    ]
    return predictions, targets


def test_confusion_matrix_counts_each_lesion_once():
    predictions, targets = _cases()
    matrix, over = detection_confusion_matrix(predictions, targets, num_classes=2)
    #                 pred: 0  1  None
    expected = np.array([[0, 1, 0],  # true 0: lesion A called 1 by its most confident box
                         [0, 1, 1],  # true 1: lesion B found; the second image's lesion missed
                         [1, 1, 0]])  # None: two false detections  # fmt: skip
    np.testing.assert_array_equal(matrix, expected)
    np.testing.assert_array_equal(over, [1, 0])
    stats = per_class_detection_stats(matrix, over, ["benign", "malignant"])
    assert stats["malignant"] == {
        "precision": pytest.approx(1 / 3), "recall": 0.5, "f1": pytest.approx(0.4),
        "over_detected": 0, "missed": 1, "false_detections": 1, "lesions": 2,
    }  # fmt: skip
    assert stats["benign"]["over_detected"] == 1 and stats["benign"]["recall"] == 0.0


def test_iou_threshold_is_inclusive_at_quarter():
    target = [{"boxes": np.array([[0, 0, 10, 10]]), "labels": np.array([0])}]
    exactly = [_pred([[0, 0, 10, 2.5]], [0.9], [0])]  # IoU 25/100
    below = [_pred([[0, 0, 10, 2.4]], [0.9], [0])]
    assert detection_confusion_matrix(exactly, target, 1)[0][0, 0] == 1
    assert detection_confusion_matrix(below, target, 1)[0].tolist() == [[0, 1], [1, 0]]


def test_f1_threshold_search_finds_the_clean_cut():
    targets = [{"boxes": np.array([LESION_A]), "labels": np.array([0])} for _ in range(3)]
    # every image: a true box at 0.7 and a false one at 0.4 -> any threshold in (0.4, 0.7] is perfect
    predictions = [_pred([LESION_A, LESION_B], [0.7, 0.4], [0, 0]) for _ in range(3)]
    result = f1_threshold_search(predictions, targets, num_classes=1)
    assert result["threshold"] == 0.45 and result["f1"] == 1.0
    assert result["precision"] == 1.0 and result["recall"] == 1.0
    curve = dict(map(tuple, result["curve"]))
    assert len(curve) == 21 and curve[0.0] == pytest.approx(2 * 3 / (2 * 3 + 3)) and curve[0.75] == 0.0


def test_coco_metrics_perfect_and_empty():
    targets = [{"boxes": np.array([LESION_A, [0, 0, 20, 20]]), "labels": np.array([0, 1])}]
    perfect = [_pred([LESION_A, [0, 0, 20, 20]], [0.9, 0.8], [0, 1])]
    m = coco_detection_metrics(perfect, targets, ["a", "b"])
    assert (
        m["mAP"] == pytest.approx(1.0)
        and m["AP50"] == pytest.approx(1.0)
        and m["AP_small"] == pytest.approx(1)
    )
    assert m["AP_medium"] == pytest.approx(1.0) and m["AP_large"] == -1.0
    shifted = [_pred([[10, 10, 50, 70], [0, 0, 20, 20]], [0.9, 0.8], [0, 1])]  # IoU 2/3 for lesion A
    m = coco_detection_metrics(shifted, targets, ["a", "b"])
    assert m["AP50_a"] == pytest.approx(1.0) and m["mAP_a"] == pytest.approx(0.4, abs=1e-6)
    nothing = [_pred([], [], [])]
    assert coco_detection_metrics(nothing, targets, ["a", "b"])["mAP"] == pytest.approx(0.0)


def test_report_applies_the_threshold_it_is_given_and_searches_nothing():
    predictions, targets = _cases()
    report = detection_report(predictions, targets, ["benign", "malignant"], score_threshold=0.5)
    assert report["confusion_matrix"]["labels"] == ["benign", "malignant", "None"]
    assert report["confusion_matrix"]["matrix"] == [[0, 1, 0], [0, 1, 1], [0, 0, 0]]  # 0.3 and 0.2 dropped
    # pooled: 1 lesion called its class, 1 box that counted otherwise, 2 lesions not called their class
    assert report["f1_threshold"] == {
        "threshold": 0.5, "precision": 0.5, "recall": pytest.approx(1 / 3), "f1": pytest.approx(0.4),
        "split": "val",
    }  # fmt: skip
    assert report["threshold_split"] == "val" and report["n_lesions"] == 3
    assert detection_scores_at(predictions, targets, 2, 0.5) == {
        k: v for k, v in report["f1_threshold"].items() if k != "split"
    }
    # a search on these images would pick 0.35 (the lowest of its ties); the report keeps the 0.5 it was given
    assert f1_threshold_search(predictions, targets, 2)["threshold"] == 0.35
    with pytest.raises(ValueError, match="chosen on the test split is refused"):
        detection_report(predictions, targets, ["a", "b"], score_threshold=0.5, threshold_split="test")
    with pytest.raises(TypeError):  # no threshold: the report does not choose one
        detection_report(predictions, targets, ["benign", "malignant"])


def test_mismatched_lengths():
    predictions, targets = _cases()
    with pytest.raises(ValueError, match="2 predictions for 3 targets"):
        detection_confusion_matrix(predictions[:2], targets, 2)
