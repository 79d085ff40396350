"""Freezing policies (progressive unfreezing by epochs and on a plateau), the SimSiam collapse monitor, and
the score threshold: chosen on the validation detections, stored beside the checkpoint, applied by the
report."""

from __future__ import annotations

import pytest
import torch
from ignite.engine import Engine, Events

from monai_xai.engines.simsiam_trainer import EMBEDDING
from monai_xai.handlers.embedding_std import EmbeddingStdMetric
from monai_xai.handlers.progressive_unfreeze import get_freeze_policy
from monai_xai.networks.nets.centernet import CenterNet


@pytest.fixture(scope="module")
def net():
    return CenterNet(num_classes=1, neck_channels=(8, 8, 8), head_channels=8)


def _trainable(net) -> list[str]:
    stages = ("stem", "layer1", "layer2", "layer3", "layer4")
    return [s for s in stages if all(p.requires_grad for p in net.backbone.stage(s).parameters())]


def test_progressive_epochs_unfreezes_deepest_first(net):
    trainer = Engine(lambda e, b: None)
    policy = get_freeze_policy("progressive_epochs", net, interval=2)
    policy.attach(trainer)
    seen = []
    trainer.add_event_handler(
        Events.EPOCH_COMPLETED, lambda e: seen.append((e.state.frozen_stages, _trainable(net)))
    )
    trainer.run([0], max_epochs=12)
    assert [f for f, _ in seen] == [5, 5, 4, 4, 3, 3, 2, 2, 1, 1, 0, 0]
    assert seen[2][1] == ["layer4"] and seen[4][1] == ["layer3", "layer4"] and len(seen[-1][1]) == 5


def test_plateau_unfreezes_after_patience_and_resumes(net):
    trainer, evaluator = Engine(lambda e, b: None), Engine(lambda e, b: None)
    values = iter([0.1, 0.2, 0.2, 0.15, 0.3, 0.3])
    evaluator.add_event_handler(
        Events.EPOCH_COMPLETED, lambda e: e.state.metrics.update(val_mAP=next(values))
    )
    policy = get_freeze_policy("progressive_plateau", net, evaluator=evaluator, patience=2)
    policy.attach(trainer)
    frozen = []
    trainer.add_event_handler(
        Events.EPOCH_COMPLETED, lambda e: (evaluator.run([0]), frozen.append(policy.frozen))
    )
    trainer.run([0], max_epochs=6)
    assert frozen == [5, 5, 5, 4, 4, 4]  # no gain at epochs 3 and 4: one stage back after the second
    restored = get_freeze_policy("progressive_plateau", net, evaluator=Engine(lambda e, b: None))
    restored.load_state_dict(policy.state_dict())
    assert restored.frozen == 4 and restored.best == policy.best


def test_policies_by_name(net):
    assert get_freeze_policy("frozen", net).frozen == 5 and get_freeze_policy("all", net).frozen == 0
    with pytest.raises(ValueError, match="unknown freeze policy 'gradual'; valid policies: all, frozen"):
        get_freeze_policy("gradual", net)
    with pytest.raises(ValueError, match="needs the validation evaluator"):
        get_freeze_policy("progressive_plateau", net)


def test_collapse_monitor_separates_collapsed_from_spread():
    def run(z):
        engine = Engine(lambda e, b: {EMBEDDING: b})
        EmbeddingStdMetric().attach(engine, "collapse")
        return engine.run([z[:32], z[32:]]).metrics

    spread = torch.nn.functional.normalize(
        torch.randn(64, 128, generator=torch.Generator().manual_seed(0)), dim=1
    )
    healthy = run(spread)
    assert healthy["z_std_ratio"] == pytest.approx(1.0, abs=0.1)
    collapsed = run(spread[:1].expand(64, -1) + 1e-4 * spread)
    assert collapsed["z_std"] < 1e-3 and collapsed["z_std_ratio"] < 0.01


LESION, ELSEWHERE = [10.0, 10.0, 50.0, 50.0], [60.0, 60.0, 100.0, 100.0]


def _detector_pass(scores_on_lesion: list[float], false_scores: list[float]) -> list[dict]:
    """Batches as a CenterNetEvaluator outputs them: one image per batch, one lesion of class 0, a true box
    with the given score and a false one elsewhere."""
    from monai_xai.detection.collate import BOXES, LABELS
    from monai_xai.engines.detection import DETECTIONS

    return [
        {
            DETECTIONS: [{"boxes": torch.tensor([LESION, ELSEWHERE]), "scores": torch.tensor([true, false]),
                          "labels": torch.tensor([0, 0])}],
            BOXES: [torch.tensor([LESION])],
            LABELS: [torch.tensor([0])],
            "image": torch.zeros(1, 1, 8, 8),
        }
        for true, false in zip(scores_on_lesion, false_scores)
    ]  # fmt: skip


class _Evaluator:
    """An evaluator over fixed batches with one handler attached; counts its passes."""

    def __init__(self, batches: list[dict], handler):
        self.batches, self.runs = batches, 0
        self.engine = Engine(lambda e, b: b)
        handler.attach(self.engine)

    def run(self):
        self.runs += 1
        return self.engine.run(self.batches)


def test_score_threshold_is_chosen_on_validation_stored_beside_the_checkpoint_and_reused(tmp_path):
    from monai_xai.handlers import ScoreThresholdFitter
    from monai_xai.networks import read_score_threshold
    from monai_xai.runs import file_digest

    checkpoint = tmp_path / "best.pt"
    checkpoint.write_bytes(b"weights")
    # validation: true boxes at 0.7, false ones at 0.4 -> any threshold in (0.4, 0.7] is perfect; 0.45 first
    val = _detector_pass([0.7, 0.7, 0.7], [0.4, 0.4, 0.4])
    fitter = ScoreThresholdFitter(checkpoint, num_classes=1)
    evaluator = _Evaluator(val, fitter)
    record = fitter.fit(evaluator)
    assert (tmp_path / "best.score_threshold.json").is_file() and evaluator.runs == 1
    assert record == read_score_threshold(checkpoint)
    assert record["threshold"] == 0.45 and record["f1"] == 1.0 and record["split"] == "val"
    assert record["checkpoint"] == file_digest(checkpoint) and record["n_images"] == 3
    assert record["n_lesions"] == 3 and len(record["curve"]) == 21 and record["iou_threshold"] == 0.25
    assert fitter.fit(evaluator) == record and evaluator.runs == 1  # same weights and settings: reused
    other = ScoreThresholdFitter(checkpoint, num_classes=1, iou_threshold=0.5)
    assert not other.is_current()  # another setting chooses again
    checkpoint.write_bytes(b"retrained weights")
    assert not fitter.is_current()
    with pytest.raises(ValueError, match="never on the test split"):
        ScoreThresholdFitter(checkpoint, num_classes=1, split_name="test")


def test_report_applies_the_validation_threshold_unchanged_on_the_test_split(tmp_path):
    import json

    from monai_xai.handlers import DetectionReportHandler
    from monai_xai.metrics.detection import f1_threshold_search

    chosen = {"threshold": 0.45, "split": "val", "f1": 1.0}
    # test images: true boxes at 0.5 and 0.3, false ones at 0.6 and 0.1 -> at 0.45 one lesion found, one
    # missed, one false detection (F1 0.5); the test split's own best (0.15, F1 0.8) is not looked for
    test = _detector_pass([0.5, 0.3], [0.6, 0.1])
    report = DetectionReportHandler(tmp_path / "eval_test", ["lesion"], n_overlays=1, score_threshold=chosen)
    _Evaluator(test, report).run()
    metrics = json.loads((tmp_path / "eval_test" / "metrics.json").read_text())
    assert metrics["threshold_split"] == "val" and metrics["f1_threshold"]["split"] == "val"
    assert metrics["f1_threshold"]["threshold"] == 0.45 and "curve" not in metrics["f1_threshold"]
    assert metrics["confusion_matrix"]["matrix"] == [[1, 1], [1, 0]]
    assert metrics["f1_threshold"]["precision"] == 0.5 and metrics["f1_threshold"]["recall"] == 0.5
    assert metrics["f1_threshold"]["f1"] == 0.5
    predictions = [b["detections"][0] for b in test]
    targets = [{"boxes": b["boxes"][0], "labels": b["labels"][0]} for b in test]
    assert f1_threshold_search(predictions, targets, 1)["threshold"] == 0.15  # what a test search would pick
    assert (tmp_path / "eval_test" / "overlays.png").is_file()
    # each image's ground truth beside its detections: the collector resamples images with both
    records = json.loads((tmp_path / "eval_test" / "predictions.json").read_text())
    assert [r["target_boxes"] for r in records] == [t["boxes"].tolist() for t in targets]
    assert all(r["target_classes"] == ["lesion"] * len(r["target_boxes"]) for r in records)
    with pytest.raises(ValueError, match="chosen on the test split"):
        DetectionReportHandler(tmp_path, ["lesion"], score_threshold={"threshold": 0.3, "split": "test"})
    given = DetectionReportHandler(tmp_path / "given", ["lesion"], n_overlays=0, score_threshold=0.3)
    assert given.threshold_split == "given" and given.score_threshold == 0.3
