"""Engines, epoch metrics, checkpointing and reports on tiny tensors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from monai.data import DataLoader, Dataset

from monai_xai.engines import AttentionEvaluator, AttentionSupervisedTrainer
from monai_xai.errors import InputError
from monai_xai.handlers import (
    AttentionAgreementEpochMetric,
    BestModelSaver,
    ClassificationEpochMetric,
    EvaluationReportHandler,
    LossAveragesMetric,
    LossEpochMetric,
    ResumableCheckpointer,
)
from monai_xai.losses import get_classifier_loss
from monai_xai.networks import get_classifier, load_weights
from monai_xai.transforms import EnsureMaskd
from monai_xai.utils import atomic_save


def _items(n=8, size=32, with_mask=True):
    rng = np.random.default_rng(0)
    items = []
    for i in range(n):
        image = rng.random((1, size, size), dtype=np.float32)
        mask = np.zeros((1, size, size), np.float32)
        mask[:, 8:16, 8:16] = 1
        item = {"image": torch.as_tensor(image), "label": i % 2, "source": f"toy[{i}]"}
        if with_mask and i % 4:
            item["mask"] = torch.as_tensor(mask)
        items.append(EnsureMaskd()(item))
    return items


def _loader(items, batch_size=4):
    return DataLoader(Dataset(items), batch_size=batch_size, shuffle=False, num_workers=0)


def test_ensure_mask_flags_and_binarises():
    item = EnsureMaskd()({"image": torch.zeros(1, 4, 4), "mask": torch.tensor([[[0, 255], [255, 0]]])})
    assert item["has_mask"] == 1 and item["mask"].tolist() == [[[0.0, 1.0], [1.0, 0.0]]]
    item = EnsureMaskd()({"image": torch.zeros(1, 4, 4)})
    assert item["has_mask"] == 0 and item["mask"].shape == (1, 4, 4) and item["mask"].sum() == 0
    with pytest.raises(InputError, match="toy.png: no 'mask' entry"):
        EnsureMaskd(require_mask=True)({"image": torch.zeros(1, 4, 4), "source": "toy.png"})


@pytest.mark.parametrize("mode", ["baseline", "dynamic"])
def test_trainer_and_evaluator_report_losses_and_metrics(mode):
    torch.manual_seed(0)
    net = get_classifier(mode, spatial_dims=2, in_channels=1, num_classes=2)
    loss = get_classifier_loss(mode)
    trainer = AttentionSupervisedTrainer(
        device="cpu",
        max_epochs=2,
        train_data_loader=_loader(_items()),
        network=net,
        optimizer=torch.optim.SGD(net.parameters(), lr=0.01),
        loss_function=loss,
        key_train_metric={"train_loss": LossAveragesMetric(only="loss")},
        additional_metrics={"train_losses": LossAveragesMetric()},
    )
    trainer.run()
    assert np.isfinite(trainer.state.metrics["train_loss"])
    if mode == "dynamic":
        assert {"train_loss_att", "train_loss_per", "train_loss_map"} <= set(trainer.state.metrics)
    evaluator = AttentionEvaluator(
        device="cpu",
        val_data_loader=_loader(_items()),
        network=net,
        key_val_metric={"val_auc": ClassificationEpochMetric(2, only="auc")},
        additional_metrics={
            "val_cls": ClassificationEpochMetric(2, prefix="val_"),
            "val_att": AttentionAgreementEpochMetric(prefix="att_"),
        },
    )
    evaluator.run()
    metrics = evaluator.state.metrics
    assert 0.0 <= metrics["val_auc"] <= 1.0 and metrics["val_auc"] == metrics["val_auc"]
    assert 0.0 <= metrics["val_accuracy"] <= 1.0
    if mode == "dynamic":  # only the 6 items with a real mask count
        assert metrics["att_num_evaluated"] == 6
    else:
        assert not any(k.startswith("att_") for k in metrics)


def test_classification_epoch_metric_against_hand_counts():
    metric = ClassificationEpochMetric(2)
    metric.reset()
    logits = torch.tensor([[2.0, 0.0], [0.0, 2.0], [0.0, 1.0], [1.0, 0.0]])
    metric.update((logits, torch.tensor([0, 1, 0, 1])))
    result = metric.compute()
    assert result["accuracy"] == 0.5 and result["sensitivity"] == 0.5 and result["specificity"] == 0.5
    # positives score 0.881, 0.269; negatives 0.119, 0.731: 3 of 4 pairs ranked right
    assert result["auc"] == pytest.approx(0.75)


def test_loss_epoch_metric_matches_ignite_loss_without_syncing(monkeypatch):
    """The per-item mean that ignite's ``Loss`` gives, with no sum over processes (the validator runs on
    rank 0 only)."""
    import ignite.distributed as idist
    from ignite.metrics import Loss

    batches = [(torch.tensor([[2.0, 0.0], [0.0, 1.0], [1.0, 0.5]]), torch.tensor([0, 0, 1]))]
    batches.append((torch.tensor([[0.0, 3.0]]), torch.tensor([[1]])))
    ours, theirs = LossEpochMetric(), Loss(torch.nn.CrossEntropyLoss())
    for metric in (ours, theirs):
        metric.reset()
        for logits, labels in batches:
            metric.update((logits, labels.view(-1)))
    expected = theirs.compute()
    assert ours.compute() == pytest.approx(expected)
    monkeypatch.setattr(
        idist, "get_world_size", lambda: 2
    )  # as under torchrun: ignite's Loss would all-reduce
    monkeypatch.setattr(idist, "all_reduce", lambda *args, **kwargs: pytest.fail("a collective on one rank"))
    assert ours.compute() == pytest.approx(expected)


def test_resumable_checkpointer_resumes_epoch_and_weights(tmp_path):
    from ignite.engine import Events

    torch.manual_seed(0)

    def make(max_epochs):
        net = get_classifier("plain")
        opt = torch.optim.SGD(net.parameters(), lr=0.01)
        trainer = AttentionSupervisedTrainer(
            device="cpu",
            max_epochs=max_epochs,
            train_data_loader=_loader(_items(4)),
            network=net,
            optimizer=opt,
            loss_function=get_classifier_loss("plain"),
        )
        ResumableCheckpointer(tmp_path, {"model": net, "optimizer": opt}).attach(trainer)
        loaded = {}
        trainer.add_event_handler(
            Events.STARTED, lambda e: loaded.update({k: v.clone() for k, v in net.state_dict().items()})
        )
        epochs_run: list[int] = []
        trainer.add_event_handler(Events.EPOCH_STARTED, lambda e: epochs_run.append(e.state.epoch))
        return net, trainer, epochs_run, loaded

    net, trainer, epochs_run, _ = make(1)
    trainer.run()  # "killed" after epoch 1
    saved = {k: v.clone() for k, v in net.state_dict().items()}
    assert epochs_run == [1] and (tmp_path / "latest.pt").is_file() and not list(tmp_path.glob(".*tmp"))
    _, trainer2, epochs_run2, loaded = make(3)
    trainer2.run()
    assert epochs_run2 == [2, 3] and trainer2.state.epoch == 3
    assert all(torch.equal(saved[k], v) for k, v in loaded.items())
    assert torch.load(tmp_path / "latest.pt", weights_only=False)["engine"]["epoch"] == 3


def test_resumable_checkpointer_rejects_checkpoints_that_do_not_fit(tmp_path):
    """Loading goes through MONAI's CheckpointLoader: weights only, strict, not past ``max_epochs``."""
    from ignite.engine import Engine

    def run(net: torch.nn.Module, max_epochs: int) -> Engine:
        opt = torch.optim.SGD(net.parameters(), lr=0.1)
        trainer = Engine(lambda engine, batch: None)
        ResumableCheckpointer(tmp_path, {"model": net, "optimizer": opt}).attach(trainer)
        return trainer.run([0, 1], max_epochs=max_epochs)

    run(torch.nn.Linear(2, 1), max_epochs=2)
    assert torch.load(tmp_path / "latest.pt", weights_only=True)["engine"] == {
        "epoch": 2,
        "iteration": 4,
        "max_epochs": 2,
    }
    assert run(torch.nn.Linear(2, 1), max_epochs=3).iteration == 6
    with pytest.raises(ValueError, match="(?s)latest.pt: cannot resume from this checkpoint.*size mismatch"):
        run(torch.nn.Linear(3, 1), max_epochs=4)
    with pytest.raises(ValueError, match="(?s)latest.pt: cannot resume from this checkpoint.*max_epochs"):
        run(torch.nn.Linear(2, 1), max_epochs=2)


def test_best_model_saver_survives_restart(tmp_path):
    net = get_classifier("baseline")

    class State:
        metrics = {"val_auc": 0.8}
        epoch = 1

    class FakeEngine:
        state = State()

    BestModelSaver(tmp_path, net, "val_auc")(FakeEngine())
    assert json.loads((tmp_path / "best.json").read_text())["value"] == 0.8
    before = (tmp_path / "best.pt").stat().st_mtime_ns
    FakeEngine.state.metrics = {"val_auc": 0.7}
    BestModelSaver(tmp_path, net, "val_auc")(
        FakeEngine()
    )  # a restarted run must not overwrite a better model
    assert (tmp_path / "best.pt").stat().st_mtime_ns == before
    # a tie keeps the later, longer-trained model
    FakeEngine.state.metrics, FakeEngine.state.epoch = {"val_auc": 0.8}, 4
    BestModelSaver(tmp_path, net, "val_auc")(FakeEngine())
    assert json.loads((tmp_path / "best.json").read_text())["epoch"] == 4


def test_load_weights_explains_mismatch(tmp_path):
    abn = get_classifier("dynamic", num_classes=3)
    atomic_save({"model": abn.state_dict()}, tmp_path / "latest.pt")
    load_weights(get_classifier("conventional", num_classes=3), tmp_path / "latest.pt")
    with pytest.raises(InputError, match="latest.pt: checkpoint does not fit ResNetClassifier"):
        load_weights(get_classifier("baseline", num_classes=3), tmp_path / "latest.pt")
    with pytest.raises(InputError, match="shape mismatches"):
        load_weights(get_classifier("dynamic", num_classes=2), tmp_path / "latest.pt")
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(InputError, match="junk.pt: cannot read as a PyTorch checkpoint"):
        load_weights(abn, tmp_path / "junk.pt")


def test_evaluation_report_writes_metrics_predictions_figures(tmp_path):
    from monai_xai.visualize import CAMSaliency

    net = get_classifier("dynamic").eval()
    report = EvaluationReportHandler(
        tmp_path / "eval",
        num_classes=2,
        class_names=["a", "b"],
        saliency_fns={"gradcampp": CAMSaliency(net, "gradcampp")},
        n_overlays=3,
        tracking_uri=f"sqlite:///{tmp_path / 'mlruns.db'}",
        experiment_name="unit",
        run_name="report",
    )
    evaluator = AttentionEvaluator(
        device="cpu", val_data_loader=_loader(_items()), network=net, val_handlers=[report]
    )
    evaluator.run()
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert metrics["n_images"] == 8 and set(metrics["attention_agreement"]) == {"attention", "gradcampp"}
    assert metrics["attention_agreement"]["attention"]["num_evaluated"] == 6
    # per-image agreement: what pooling over runs and paired intervals need; its means are the report's
    import csv

    with open(tmp_path / "eval" / "attention_per_image.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["method"] == "gradcampp"]
    pointing = np.array([float(r["pointing_game"]) for r in rows])
    assert np.isclose(np.nanmean(pointing), metrics["attention_agreement"]["gradcampp"]["pointing_game"])
    assert (~np.isnan(pointing)).sum() == 6 and all(r["source"].startswith("toy[") for r in rows)
    energy = np.array([float(r["energy_inside_mask"]) for r in rows])  # NaN also where a map is all zero
    interval = metrics["attention_intervals"]["gradcampp"]["energy_inside_mask"]
    assert interval["n"] == (~np.isnan(energy)).sum() and np.isclose(
        interval["mean"], np.nanmean(energy), atol=1e-4
    )  # CSV: 5 decimals
    assert interval["ci95"][0] <= interval["mean"] <= interval["ci95"][1]
    lines = (tmp_path / "eval" / "predictions.csv").read_text().splitlines()
    assert lines[0] == "source,patient,label,pred,decision,prob_a,prob_b" and lines[1].startswith("toy[0]")
    for name in ("confusion_matrix.png", "roc.png", "overlays_attention.png", "overlays_gradcampp.png"):
        assert (tmp_path / "eval" / name).stat().st_size > 1000
    from monai_xai.tracking import find_run

    run = find_run(f"sqlite:///{tmp_path / 'mlruns.db'}", "unit", "report")
    assert run is not None and "test_image_accuracy" in run.data.metrics


def test_cam_saliency_batch_matches_monai_single_image():
    from monai.visualize import GradCAMpp

    from monai_xai.visualize import CAMSaliency, scale_to_unit

    torch.manual_seed(0)
    net = get_classifier("baseline").eval()
    images = torch.randn(4, 1, 64, 64)
    classes = torch.tensor([0, 1, 1, 0])
    batch_maps = CAMSaliency(net, "gradcampp")(images, classes)
    stock = GradCAMpp(nn_module=net, target_layers="layer4", postprocessing=scale_to_unit)
    inverted = GradCAMpp(
        nn_module=net, target_layers="layer4"
    )  # MONAI's default normaliser: (min, max) -> (1, 0)
    for i in range(4):
        single = stock(images[i : i + 1], class_idx=int(classes[i])).detach()
        assert torch.allclose(batch_maps[i : i + 1], single, atol=1e-5)
        assert torch.allclose(inverted(images[i : i + 1], class_idx=int(classes[i])), 1 - single, atol=1e-5)
