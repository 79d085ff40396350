"""Detection metrics: COCO-style AP through MONAI, and the study's lesion-level confusion matrix.

Predictions are per image ``{"boxes" (P, 4) xyxy, "scores" (P,), "labels" (P,)}`` and targets
``{"boxes" (G, 4), "labels" (G,)}``, as tensors or arrays, with class indices ``0..C-1``. The
confusion matrix has a ``None`` row (false detections: a box on no lesion) and a ``None`` column
(missed lesions); several boxes on one lesion count once, with the class of the most confident one,
and the extra boxes are reported as over-detections.

The confidence threshold of those counts is chosen on the validation split (:func:`f1_threshold_search` over
the validation detections, :class:`~monai_xai.handlers.ScoreThresholdFitter`) and applied unchanged to the
split a :func:`detection_report` evaluates: the test split chooses nothing.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

__all__ = [
    "AREA_RANGES",
    "F1_THRESHOLDS",
    "coco_detection_metrics",
    "detection_confusion_matrix",
    "detection_report",
    "detection_scores_at",
    "f1_threshold_search",
    "per_class_detection_stats",
]

#: COCO's object-size ranges (box area in pixels of the evaluated image).
AREA_RANGES = {"small": (0.0, 32.0**2), "medium": (32.0**2, 96.0**2), "large": (96.0**2, float("inf"))}
#: Confidence thresholds searched (on the validation split) for the best F1: 0.00 to 1.00 in steps of 0.05.
F1_THRESHOLDS = tuple(round(0.05 * i, 2) for i in range(21))


def _np(x, dtype, shape=None) -> np.ndarray:
    arr = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    arr = arr.astype(dtype)
    return arr.reshape(shape) if shape is not None else arr.reshape(-1)


def _unpack(predictions: Sequence[dict], targets: Sequence[dict]) -> tuple[list, list, list, list, list]:
    if len(predictions) != len(targets):
        raise ValueError(f"{len(predictions)} predictions for {len(targets)} targets: one of each per image")
    pb = [_np(p["boxes"], np.float64, (-1, 4)) for p in predictions]
    ps = [_np(p["scores"], np.float64) for p in predictions]
    pl = [_np(p["labels"], np.int64) for p in predictions]
    gb = [_np(t["boxes"], np.float64, (-1, 4)) for t in targets]
    gl = [_np(t["labels"], np.int64) for t in targets]
    return pb, ps, pl, gb, gl


def _area(boxes: np.ndarray) -> np.ndarray:
    return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    from monai.data.box_utils import box_iou

    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    return np.asarray(box_iou(a, b), dtype=np.float64)


def coco_detection_metrics(
    predictions: Sequence[dict],
    targets: Sequence[dict],
    class_names: Sequence[str],
    max_detections: int = 100,
) -> dict[str, float]:
    """``mAP`` (IoU 0.50:0.95), ``AP50``, ``AP75``, ``AP_small/medium/large`` and per-class ``mAP_<name>``.

    Computed with :class:`monai.apps.detection.metrics.coco.COCOMetric`. For a size range, lesions outside
    it are ignored and so are predicted boxes outside it (pycocotools instead keeps a predicted box of
    another size that matches a lesion in range; the two differ only for such boxes). A value of -1 means
    no lesion of that kind exists in the targets.
    """
    from monai.apps.detection.metrics.coco import COCOMetric
    from monai.apps.detection.metrics.matching import matching_batch

    pb, ps, pl, gb, gl = _unpack(predictions, targets)
    metric = COCOMetric(
        list(class_names), iou_list=(0.5, 0.75), iou_range=(0.5, 0.95, 0.05),
        max_detection=(max_detections,), verbose=False,
    )  # fmt: skip
    suffix = f"IoU_0.50_0.95_0.05_MaxDet_{max_detections}"

    def compute(keep_pred, ignore_gt) -> dict[str, float]:
        matches = matching_batch(
            _iou, metric.iou_thresholds, [b[k] for b, k in zip(pb, keep_pred)],
            [c[k] for c, k in zip(pl, keep_pred)], [s[k] for s, k in zip(ps, keep_pred)], gb, gl,
            gt_ignore=ignore_gt, max_detections=max_detections,
        )  # fmt: skip
        return metric(matches)[0]

    def summary(result: dict[str, float]) -> dict[str, float]:
        # MONAI averages absent classes in as -1; pycocotools (and this) averages the present classes only.
        per_class = {
            "mAP": [result[f"{n}_mAP_{suffix}"] for n in class_names],
            "AP50": [result[f"{n}_AP_IoU_0.50_MaxDet_{max_detections}"] for n in class_names],
            "AP75": [result[f"{n}_AP_IoU_0.75_MaxDet_{max_detections}"] for n in class_names],
        }
        out = {k: float(np.mean([v for v in vals if v > -1])) if max(vals) > -1 else -1.0
               for k, vals in per_class.items()}  # fmt: skip
        for name, m, ap50 in zip(class_names, per_class["mAP"], per_class["AP50"]):
            out[f"mAP_{name}"], out[f"AP50_{name}"] = m, ap50
        return out

    out = summary(compute([np.ones(len(s), bool) for s in ps], None))
    for size, (low, high) in AREA_RANGES.items():
        ignore = [~((_area(b) >= low) & (_area(b) < high)) for b in gb]
        keep = [(_area(b) >= low) & (_area(b) < high) for b in pb]
        out[f"AP_{size}"] = summary(compute(keep, ignore))["mAP"]
    return {k: float(v) for k, v in out.items()}


def detection_confusion_matrix(
    predictions: Sequence[dict],
    targets: Sequence[dict],
    num_classes: int,
    score_threshold: float = 0.0,
    iou_threshold: float = 0.25,
) -> tuple[np.ndarray, np.ndarray]:
    """Lesion-level ``(C + 1, C + 1)`` matrix (rows true, columns predicted; index ``C`` is None).

    Boxes scoring below ``score_threshold`` are dropped. A lesion with boxes at IoU >= ``iou_threshold``
    counts once, as the class of its most confident box; without one it is missed (column None). A box on
    no lesion is a false detection (row None). Also returns the over-detections per true class: boxes on a
    lesion beyond the one that counted.
    """
    pb, ps, pl, gb, gl = _unpack(predictions, targets)
    none = num_classes
    matrix = np.zeros((num_classes + 1, num_classes + 1), dtype=np.int64)
    over = np.zeros(num_classes, dtype=np.int64)
    for boxes, scores, labels, gt_boxes, gt_labels in zip(pb, ps, pl, gb, gl):
        keep = scores >= score_threshold
        boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
        hits = _iou(gt_boxes, boxes) >= iou_threshold
        for g, cls in enumerate(gt_labels):
            on_lesion = np.flatnonzero(hits[g])
            if len(on_lesion):
                best = on_lesion[np.argmax(scores[on_lesion])]
                matrix[cls, labels[best]] += 1
                over[cls] += len(on_lesion) - 1
            else:
                matrix[cls, none] += 1
        for p in np.flatnonzero(~hits.any(axis=0)):
            matrix[none, labels[p]] += 1
    return matrix, over


def _f1(tp: float, fp: float, fn: float) -> float:
    return 2 * tp / (2 * tp + fp + fn) if tp + fp + fn > 0 else 0.0


def per_class_detection_stats(
    matrix: np.ndarray, over_detections: np.ndarray, class_names: Sequence[str]
) -> dict[str, dict[str, float]]:
    """Precision, recall, F1, over-detected and missed counts per class from a detection confusion matrix.

    Precision counts every box called class c (wrong class or no lesion included); recall every lesion of c.
    """
    stats = {}
    for c, name in enumerate(class_names):
        tp, called, actual = matrix[c, c], matrix[:, c].sum(), matrix[c, :].sum()
        stats[name] = {
            "precision": float(tp / called) if called else 0.0,
            "recall": float(tp / actual) if actual else 0.0,
            "f1": _f1(tp, called - tp, actual - tp),
            "over_detected": int(over_detections[c]),
            "missed": int(matrix[c, -1]),
            "false_detections": int(matrix[-1, c]),
            "lesions": int(actual),
        }
    return stats


def _pooled_counts(matrix: np.ndarray, num_classes: int) -> tuple[int, int, int]:
    """True positives (lesions called their own class), false positives (any other box that counted: wrong
    class or no lesion) and false negatives (lesions not called their class), pooled over the classes."""
    tp = int(np.trace(matrix[:num_classes, :num_classes]))
    return tp, int(matrix[:, :num_classes].sum()) - tp, int(matrix[:num_classes, :].sum()) - tp


def detection_scores_at(
    predictions: Sequence[dict],
    targets: Sequence[dict],
    num_classes: int,
    score_threshold: float,
    iou_threshold: float = 0.25,
) -> dict[str, float]:
    """Lesion-level precision, recall and F1 pooled over the classes (class must match) of the boxes scoring
    at least ``score_threshold``: ``{"threshold", "precision", "recall", "f1"}``."""
    matrix, _ = detection_confusion_matrix(predictions, targets, num_classes, score_threshold, iou_threshold)
    tp, fp, fn = _pooled_counts(matrix, num_classes)
    return {
        "threshold": float(score_threshold),
        "precision": tp / (tp + fp) if tp + fp else 0.0,
        "recall": tp / (tp + fn) if tp + fn else 0.0,
        "f1": _f1(tp, fp, fn),
    }


def f1_threshold_search(
    predictions: Sequence[dict],
    targets: Sequence[dict],
    num_classes: int,
    thresholds: Sequence[float] = F1_THRESHOLDS,
    iou_threshold: float = 0.25,
) -> dict[str, object]:
    """The confidence threshold with the best lesion-level F1 (class must match; the lowest wins ties).

    F1 pools all classes: a true positive is a lesion called its own class, a false positive any other
    box that counted (wrong class or no lesion), a false negative any lesion not called its class.
    Returns ``{"threshold", "f1", "precision", "recall", "curve": [[threshold, f1], ...]}``. A selection:
    run it on the validation detections only (:class:`~monai_xai.handlers.ScoreThresholdFitter`), never on
    the split that is reported.
    """
    curve = []
    for t in thresholds:
        matrix, _ = detection_confusion_matrix(predictions, targets, num_classes, t, iou_threshold)
        curve.append([float(t), _f1(*_pooled_counts(matrix, num_classes))])
    best = max(range(len(curve)), key=lambda i: (curve[i][1], -i))
    at_best = detection_scores_at(predictions, targets, num_classes, curve[best][0], iou_threshold)
    return {**at_best, "curve": curve}


def detection_report(
    predictions: Sequence[dict],
    targets: Sequence[dict],
    class_names: Sequence[str],
    iou_threshold: float = 0.25,
    *,
    score_threshold: float,
    threshold_split: str = "val",
) -> dict[str, object]:
    """Everything the study reports: COCO AP, then the confusion matrix and per-class figures at
    ``score_threshold``, a confidence threshold chosen on ``threshold_split`` (the validation split's
    F1-optimal one, :class:`~monai_xai.handlers.ScoreThresholdFitter`) and applied here unchanged.

    ``f1_threshold`` holds that threshold, the split it was chosen on and the precision, recall and F1 pooled
    over the classes on these predictions; ``threshold_split`` repeats the split. The threshold-free figures
    (``coco``: mAP, AP50, AP75, ...) do not depend on it. The confusion matrix comes with its row/column
    names (``class_names + ["None"]``).
    """
    if threshold_split == "test":
        raise ValueError("a score threshold chosen on the test split is refused: choose it on validation")
    num_classes = len(class_names)
    at_threshold = detection_scores_at(predictions, targets, num_classes, score_threshold, iou_threshold)
    matrix, over = detection_confusion_matrix(
        predictions, targets, num_classes, score_threshold, iou_threshold
    )
    return {
        "coco": coco_detection_metrics(predictions, targets, class_names),
        "f1_threshold": {**at_threshold, "split": threshold_split},
        "threshold_split": threshold_split,
        "confusion_matrix": {"labels": [*class_names, "None"], "matrix": matrix.tolist()},
        "per_class": per_class_detection_stats(matrix, over, class_names),
        "iou_threshold": iou_threshold,
        "n_images": len(targets),
        "n_lesions": int(sum(len(_np(t["labels"], np.int64)) for t in targets)),
    }
