"""monai_xai.experiments.agcyclegan: each arm's figures with their intervals, the two architectures, the
top-level arm, the classifier's intervals, the targets' verdicts, the recorded settings, the renderer (of
new and of the committed results files), the summary, and the steps of ``run`` (order, settings, folders,
the checkpoints they read, the budget --publish needs, BUSI's classifier recipe)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
import torch
from ignite.engine import Engine
from torch import nn

from monai_xai.errors import InputError
from monai_xai.experiments import agcyclegan
from monai_xai.experiments.results import Block, write_results

STUDY = "AG-CycleGAN (study's loss)"


def _interval(value: float, width: float) -> dict:
    return {"mean": value, "ci95": [value - width, value + width], "n": 5}


def _metrics(
    flip=(0.95, 0.94),
    control=(0.3, 0.1),
    uniform=(0.2, 0.05),
    judge=(0.94, 0.96),
    width=0.03,
    architectures=("LeakyResNetClassifier", "DenseNet121"),
) -> dict:
    """A metrics.json as CounterfactualReportHandler writes it with a judge: each flip rate ``value`` with the
    interval ``value ± width``, the paired control gaps ``flip - control ± width``."""
    classifier, judge_architecture = architectures
    metrics = {
        "n_images": 10,
        "classifier": {"architecture": classifier, "accuracy": 0.86, "auc": 0.95, "sensitivity": 0.8,
                       "specificity": 0.9},
        "judge": {"architecture": judge_architecture},
        "judge_classifier": {"accuracy": 0.84, "auc": 0.93, "sensitivity": 0.7, "specificity": 0.95},
    }  # fmt: skip
    metrics.update({key: {} for key in agcyclegan.INTERVALS})
    rates = {"flip_rate": flip, "control_flip_rate": control, "uniform_flip_rate": uniform}
    rates.update({f"judge_{name}": values for name, values in rates.items()})
    rates["judge_flip_rate"] = judge
    for suffix, i in (("_from_0", 0), ("_from_1", 1), ("", None)):
        pick = (lambda pair: sum(pair) / 2) if i is None else (lambda pair, i=i: pair[i])
        metrics.update({
            f"mean_attention{suffix}": 0.1, f"mean_abs_difference{suffix}": 0.02,
            f"attention_vs_gradcampp{suffix}": {"correlation": 0.4, "top10pct_iou": 0.25},
        })  # fmt: skip
        if suffix:
            metrics[f"n_images{suffix}"] = 5
        for name, values in rates.items():
            metrics[name + suffix] = pick(values)
            group = "judge_flip_rate_intervals" if name.startswith("judge_") else "flip_rate_intervals"
            metrics[group][name + suffix] = _interval(pick(values), width)
    for i in (0, 1):
        for name, values in (("control", control), ("uniform", uniform)):
            metrics["control_gaps"][f"{name}_from_{i}"] = _interval(flip[i] - values[i], width)
            metrics["judge_control_gaps"][f"{name}_from_{i}"] = _interval(judge[i] - values[i], width)
    return metrics


def _predictions(eval_dir: Path, prob_1: list[float], classes=("normal", "pneumonia")) -> None:
    """A predictions.json of images labelled 0 then 1 (half each) with these probabilities of class 1."""
    half = len(prob_1) // 2
    records = [
        {"source_class": classes[label], "prob_target_before": p if label == 0 else 1 - p}
        for label, p in zip([0] * half + [1] * half, prob_1)
    ]
    (eval_dir / "predictions.json").write_text(json.dumps(records))


def _write(
    task_dir: Path, metrics: dict, eval_dir: str = "eval_test", classes=("normal", "pneumonia")
) -> Path:
    """An evaluation folder; its classifier separates 20 images perfectly (accuracy and AUC interval 1)."""
    eval_dir = task_dir / eval_dir
    eval_dir.mkdir(parents=True, exist_ok=True)
    (eval_dir / "metrics.json").write_text(json.dumps(metrics))
    examples = {"best_from_0": {"panel": "panels_best_from_0.png", "examples": []},
                "worst_from_0": {"panel": None, "examples": []}}  # fmt: skip
    (eval_dir / "examples.json").write_text(json.dumps(examples))
    _predictions(eval_dir, [0.1] * 10 + [0.9] * 10, classes)
    return eval_dir


def test_collect_figures_intervals_reference_and_targets(tmp_path) -> None:
    task_dir = tmp_path / "pneumonia"
    with pytest.raises(InputError, match="pneumonia/eval_test: no test evaluation"):
        agcyclegan.collect(task_dir, "pneumoniamnist")
    old = {k: v for k, v in _metrics().items() if "control" not in k}  # written before the controls
    _write(task_dir, old)
    with pytest.raises(InputError, match="no control_flip_rate, .*control_gaps.*rerun the evaluate steps"):
        agcyclegan.collect(task_dir, "pneumoniamnist")
    _write(task_dir, _metrics())
    attempts = [("pneumonia/classifier", 10.0, "done"), ("busi/classifier", 5.0, "done"),
                ("pneumonia/gan", 3.0, "interrupted"), ("pneumonia/gan", 4.0, "done")]  # fmt: skip
    (tmp_path / "runtime.jsonl").write_text(
        "".join(
            json.dumps({"step": step, "status": status, "seconds": seconds, "resumed": status == "done"
                        and step == "pneumonia/gan", "finished": "t", "digest": "d"}) + "\n"
            for step, seconds, status in attempts
        )
    )  # fmt: skip
    report = agcyclegan.collect(task_dir, "pneumoniamnist", tested={"gan_checkpoint": "best"})
    classifier = report["classifier"]
    assert classifier["architecture"] == "LeakyResNetClassifier" and classifier["accuracy"] == 0.86
    assert classifier["intervals"]["accuracy"] == {"mean": 1.0, "ci95": [1.0, 1.0], "n": 20}
    assert classifier["intervals"]["auc"]["ci95"] == [1.0, 1.0]
    assert report["judge"] == {
        "architecture": "DenseNet121", "accuracy": 0.84, "auc": 0.93, "sensitivity": 0.7, "specificity": 0.95
    }  # fmt: skip
    assert (report["flip_rate_from_0"], report["judge_flip_rate_from_1"]) == (0.95, 0.96)
    assert report["flip_rate_intervals"]["flip_rate_from_0"] == _interval(0.95, 0.03)
    assert report["judge_control_gaps"]["uniform_from_1"]["mean"] == pytest.approx(0.91)
    assert report["attention_vs_gradcampp_from_0"] == {"correlation": 0.4, "top10pct_iou": 0.25}
    assert report["reference"] == {"model": "MedMNIST v2, ResNet-18 (28)", "accuracy": 0.854, "auc": 0.944}
    assert report["targets"] == {
        "classifier_accuracy_at_least": 0.854, "classifier_auc_at_least": 0.944, "flip_rate_at_least": 0.9,
        "verdicts": {"classifier": "met", "flip_rate": "met", "controls": "met", "judge_flip_rate": "met",
                     "judge_controls": "met"},
        "all_met": True,
    }  # fmt: skip
    assert report["settings"] == {"gan_checkpoint": "best"}  # no run.json nor MLflow store here
    assert report["training"] == {}  # no checkpoints beside this evaluation
    assert report["wall_time"]["seconds"] == 17.0 and not report["wall_time"]["resumed"]
    assert {name: s["seconds"] for name, s in report["wall_time"]["steps"].items()} == {
        "classifier": 10,
        "gan": 7,
    }
    assert report["example_panels"] == {
        "best_from_0": "eval_test/panels_best_from_0.png",
        "worst_from_0": None,
    }
    assert report["example_summary"]["worst_from_0"] == {
        "n": 0, "prob_target_before": None, "prob_target_after": None
    }  # fmt: skip
    assert "docs_panels" not in report  # not published: the panels stay in the run folder
    assert report["arm"] == "agcyclegan" and list(report["arms"]) == ["agcyclegan"]  # no guided arm
    assert "classifier" not in report["arms"]["agcyclegan"] and "judge_classifier" not in report

    table = agcyclegan.render(report)
    row = (
        f"| normal → pneumonia | {STUDY} | 5 | 0.950 [0.920, 0.980] | 0.940 [0.910, 0.970] "
        "| 0.300 [0.270, 0.330] | 0.200 [0.170, 0.230] | 0.100 | 0.020 | 0.400 | 0.250 |"
    )
    assert row in table and f"| both | {STUDY} | 10 | 0.945 [0.915, 0.975] |" in table
    assert (
        "| this run's classifier (LeakyResNetClassifier) | 1.000 [1.000, 1.000] | 1.000 [1.000, 1.000] |"
        in table
    )
    assert "| judge (DenseNet121, trained apart) | 0.840 | 0.930 | 0.700 | 0.950 |" in table
    assert "| MedMNIST v2, ResNet-18 (28) | 0.854 | 0.944 | | |" in table
    assert "| flip rate above 0.9 both ways (whole 95 % interval) | met |" in table
    assert "| judge's flip rate above 0.9 both ways (whole 95 % interval) | met |" in table
    assert f"| pneumonia → normal | {STUDY} | judge | 0.860 [0.830, 0.890] | 0.910 [0.880, 0.940] |" in table
    assert "a DenseNet121 trained apart on the training split, which neither GAN saw" in table
    assert "Settings: gan_checkpoint best." in table and "Tested: the study's GAN of the best" not in table
    assert "Example panels" not in table and "](" not in table
    assert "Wall time: 17 s in all (classifier 10 s; gan 7 s)." in table


def test_a_judge_of_the_classifiers_architecture_or_none_is_refused(tmp_path) -> None:
    _write(
        tmp_path / "busi",
        _metrics(architectures=("DenseNet121", "DenseNet121")),
        classes=("benign", "malignant"),
    )
    with pytest.raises(
        InputError, match="judge has the explained classifier's architecture \\(DenseNet121\\)"
    ):
        agcyclegan.collect(tmp_path / "busi", "busi")
    metrics = _metrics()
    del metrics["judge"]
    _write(tmp_path / "busi", metrics, classes=("benign", "malignant"))
    with pytest.raises(InputError, match="no judge, judge.architecture: an evaluation from before"):
        agcyclegan.collect(tmp_path / "busi", "busi")
    _write(tmp_path / "busi", _metrics(), classes=("benign", "malignant"))
    _write(tmp_path / "busi", _metrics(architectures=("ResNet", "DenseNet121")), "eval_test_guided")
    with pytest.raises(InputError, match="evaluations name different classifiers"):
        agcyclegan.collect(tmp_path / "busi", "busi")


def test_targets_are_met_only_where_the_interval_clears_them() -> None:
    reference, clf = {"accuracy": 0.85, "auc": 0.9}, {"accuracy": 0.9, "auc": 0.95}
    figures = {"classifier": clf, "flip_rate_from_0": 0.95, "flip_rate_from_1": 0.92}
    # point estimates above every target, but no interval: nothing is met
    result = agcyclegan.targets(figures, reference, 0.9)
    assert result["verdicts"] == {"classifier": "no interval", "flip_rate": "no interval"}
    assert not result["all_met"]
    clf["intervals"] = {"accuracy": _interval(0.9, 0.04), "auc": _interval(0.95, 0.01)}
    figures["flip_rate_intervals"] = {
        "flip_rate_from_0": _interval(0.95, 0.01),
        "flip_rate_from_1": _interval(0.92, 0.05),
    }
    result = agcyclegan.targets(
        figures, reference, 0.9
    )  # accuracy 0.86-0.94 clears 0.85; 0.87-0.97 straddles 0.9
    assert result["verdicts"] == {"classifier": "met", "flip_rate": "not distinguishable at this n"}
    figures["flip_rate_intervals"]["flip_rate_from_0"] = _interval(0.8, 0.05)  # wholly below: missed
    assert agcyclegan.targets(figures, reference, 0.9)["verdicts"]["flip_rate"] == "missed"
    # the controls by the paired intervals: a gap straddling zero is not met; an undefined one undecided
    figures["control_gaps"] = {"control_from_0": _interval(0.05, 0.1), "uniform_from_0": _interval(0.5, 0.1)}
    assert agcyclegan.targets(figures, None, None)["verdicts"] == {
        "controls": "not distinguishable at this n"
    }
    figures["control_gaps"]["control_from_0"] = _interval(0.3, 0.1)
    result = agcyclegan.targets(figures, None, None)
    assert result["verdicts"] == {"controls": "met"} and result["all_met"]
    assert result["classifier_accuracy_at_least"] is None and result["flip_rate_at_least"] is None
    figures["control_gaps"]["control_from_1"] = {"mean": None, "ci95": [None, None], "n": 0}
    assert agcyclegan.targets(figures, None, None)["verdicts"]["controls"] == "not distinguishable at this n"
    # controls recorded as point estimates only (a results file from before the gaps)
    old = {"classifier": {}, "control_flip_rate_from_0": 0.1, "judge_control_flip_rate_from_0": 0.2}
    assert agcyclegan.targets(old, None, None)["verdicts"] == {
        "controls": "no interval",
        "judge_controls": "no interval",
    }


def test_classifier_intervals_from_the_per_image_predictions(tmp_path) -> None:
    """Ten images, one of class 0 called 1: accuracy 0.9, its interval (stratified by label) too wide to clear
    the paper's 0.854; the classes are ranked perfectly: AUC 1."""
    _predictions(tmp_path, [0.1, 0.2, 0.3, 0.4, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99])
    intervals = agcyclegan.classifier_intervals(tmp_path, ["normal", "pneumonia"], n_boot=300)
    accuracy = intervals["accuracy"]
    assert accuracy["mean"] == pytest.approx(0.9) and accuracy["n"] == 10
    assert accuracy["ci95"][0] < 0.854 < accuracy["ci95"][1] <= 1.0
    assert intervals["auc"] == {"mean": 1.0, "ci95": [1.0, 1.0], "n": 10}
    figures = {"classifier": {"intervals": intervals}}
    assert agcyclegan.targets(figures, {"accuracy": 0.854, "auc": 0.944}, None)["verdicts"] == {
        "classifier": "not distinguishable at this n"
    }
    with pytest.raises(InputError, match="source classes \\['benign'\\] are not the task's"):
        _predictions(tmp_path, [0.1, 0.9], classes=("benign", "pneumonia"))
        agcyclegan.classifier_intervals(tmp_path, ["normal", "pneumonia"])


def test_recorded_settings_from_run_json_and_the_mlflow_runs(tmp_path) -> None:
    """limit and spatial_size from the classifier's run identity; each workflow's settings from the MLflow
    run of its folder's uid (values parsed, None left out); the driver's tested checkpoints beside them."""
    from monai_xai.utils import atomic_write_json

    task_dir = tmp_path / "pneumoniamnist"
    _write(task_dir, _metrics())
    identity = {"data": {"limit": None, "spatial_size": [28, 28], "dataset": "pneumoniamnist"}}
    atomic_write_json(task_dir / "classifier" / "run.json", {"uid": "c1", "identity": identity})
    atomic_write_json(task_dir / "gan" / "run.json", {"uid": "g1", "identity": {}})
    logged = {
        "c1": {"max_epochs": 100, "base_lr": 0.0025, "early_stop_patience": 10, "network": "resnet18"},
        "g1": {"gan_epochs": 100, "gan_early_stop_patience": None, "gan_loss": "lsgan", "n_dis": 1},
    }
    calls = []

    def params(uri: str, uid: str) -> dict:
        calls.append((uri, uid))
        return logged[uid]

    assert agcyclegan.recorded_settings(task_dir, None, params) == {"spatial_size": [28, 28]}  # no store
    settings = agcyclegan.recorded_settings(task_dir, "sqlite:///store.db", params)
    assert settings == {
        "spatial_size": [28, 28], "cls_epochs": 100, "base_lr": 0.0025, "early_stop_patience": 10,
        "gan_epochs": 100, "gan_loss": "lsgan", "n_dis": 1,
    }  # fmt: skip
    assert calls == [("sqlite:///store.db", "c1"), ("sqlite:///store.db", "g1")]  # no gan_guided/run.json
    assert [agcyclegan._param(text) for text in ("100", "0.5", "None", "lsgan", "[28, 28]")] == [
        100, 0.5, None, "lsgan", [28, 28]
    ]  # fmt: skip
    (tmp_path / "mlruns.db").write_bytes(b"")  # the driver's store beside the task folder
    report = agcyclegan.collect(
        task_dir, "pneumoniamnist", tested={"guided_gan_checkpoint": None}, logged_params=params
    )
    assert calls[-1] == (f"sqlite:///{(tmp_path / 'mlruns.db').resolve()}", "g1")
    assert report["settings"] == settings
    assert "Settings: spatial_size [28, 28], cls_epochs 100," in agcyclegan.render(report)
    run = agcyclegan.eval_metrics(report)["pneumoniamnist_test_agcyclegan"]["run"]
    assert run.endswith(
        "arm 'agcyclegan': python -m monai_xai.experiments agcyclegan run --publish (full budget); "
        "PneumoniaMNIST at 28 px, 10 test images"
    )


class _Mean(nn.Module):
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        mean = images.flatten(1).mean(dim=1)
        return torch.stack([0.5 - mean, mean - 0.5], dim=1)


def test_collect_reads_what_the_report_handler_writes_and_wants_its_judge(tmp_path) -> None:
    from monai_xai.handlers import CounterfactualReportHandler
    from monai_xai.metrics import masked_translation

    torch.manual_seed(0)
    outputs = []
    for b in range(2):
        images, generated, attention = torch.rand(3, 1, 8, 8), torch.rand(3, 1, 8, 8), torch.rand(3, 1, 8, 8)
        fake, labels = masked_translation(images, generated, attention), torch.tensor([0, 1, b])
        outputs.append({
            "image": images, "attention": attention, "generated": generated, "fake": fake,
            "pred": _Mean()(images), "pred_after": _Mean()(fake), "label": labels, "source_class": labels,
            "target_class": 1 - labels, "cam": torch.rand(3, 1, 4, 4), "name": [f"b{b}{i}" for i in range(3)],
        })  # fmt: skip
    engine = Engine(lambda engine, output: output)
    engine.network = _Mean()
    CounterfactualReportHandler(
        tmp_path / "busi" / "eval_test", ["benign", "malignant"], n_panels=0, n_boot=50
    ).attach(engine)
    engine.run(outputs, max_epochs=1)
    with pytest.raises(InputError, match="no judge, judge_classifier, judge_flip_rate, .*judge.architecture"):
        agcyclegan.collect(tmp_path / "busi", "busi")
    metrics_file = tmp_path / "busi" / "eval_test" / "metrics.json"
    metrics = json.loads(metrics_file.read_text())
    assert metrics["classifier"]["architecture"] == "_Mean"
    judged = {f"judge_{key}": v for key, v in metrics.items() if "flip_rate" in key or key == "control_gaps"}
    judged["judge_flip_rate_intervals"] = {f"judge_{k}": v for k, v in metrics["flip_rate_intervals"].items()}
    scores = {k: v for k, v in metrics["classifier"].items() if k != "architecture"}
    metrics.update(judged, judge={"architecture": "Judge"}, judge_classifier=scores)
    metrics_file.write_text(json.dumps(metrics))  # as if a judge had agreed with the classifier everywhere
    report = agcyclegan.collect(tmp_path / "busi", "busi")
    assert report["n_images"] == 6 and report["n_images_from_0"] == 3
    assert report["classifier"]["intervals"]["accuracy"]["mean"] == pytest.approx(
        metrics["classifier"]["accuracy"]
    )
    assert set(report["example_panels"]) == {f"{k}_from_{c}" for k in ("best", "worst") for c in (0, 1)}
    assert set(report["targets"]["verdicts"]) == {
        "controls",
        "judge_controls",
    }  # BUSI: no paper, no flip target
    json.dumps(report, allow_nan=False)  # strict JSON
    assert "| benign → malignant | AG-CycleGAN (study's loss) | 3 |" in agcyclegan.render(report)


def test_training_record(tmp_path) -> None:
    """Epochs trained (latest.pt, as ResumableCheckpointer writes it) and the best validation (best.json)."""
    from monai_xai.utils import atomic_save, atomic_write_json

    task_dir = tmp_path / "pneumoniamnist"
    _write(task_dir, _metrics())
    model = nn.Linear(2, 2)
    checkpoints = task_dir / "classifier" / "checkpoints"
    atomic_save(
        {"model": model.state_dict(), "engine": {"epoch": 34, "iteration": 3400}}, checkpoints / "latest.pt"
    )
    atomic_write_json(checkpoints / "best.json", {"metric": "val_loss", "value": 0.2125, "epoch": 24})
    atomic_write_json(
        task_dir / "gan" / "checkpoints" / "best.json",
        {"metric": "val_flip_rate_min", "value": 0.9, "epoch": 7},
    )
    report = agcyclegan.collect(task_dir, "pneumoniamnist", tested={"gan_checkpoint": "best"})
    assert report["training"] == {
        "classifier": {"epochs": 34, "metric": "val_loss", "value": 0.2125, "best_epoch": 24},
        "gan": {"metric": "val_flip_rate_min", "value": 0.9, "best_epoch": 7},
    }
    assert (
        "Trained: classifier 34 epochs, best `val_loss` 0.212 at epoch 24; GAN (study's loss), best "
        "`val_flip_rate_min` 0.900 at epoch 7. Tested: the study's GAN of the best validation."
        in agcyclegan.render(report)
    )


def test_both_arms_and_the_arm_on_top(tmp_path) -> None:
    """The guided GAN's weaker direction flips more on validation (0.85 vs 0.45): it is the top level,
    whatever the test set says; both arms keep their figures; the targets are checked on the top level."""
    from monai_xai.utils import atomic_write_json

    task_dir = tmp_path / "pneumoniamnist"
    _write(task_dir, _metrics(flip=(0.4, 0.97), judge=(0.3, 0.9)))
    _write(task_dir, _metrics(flip=(0.9, 0.95), control=(0.2, 0.3), judge=(0.6, 0.8)), "eval_test_guided")
    for gan, value in (("gan", 0.45), ("gan_guided", 0.85)):
        record = {"metric": "val_flip_rate_min", "value": value, "epoch": 3}
        atomic_write_json(task_dir / gan / "checkpoints" / "best.json", record)
    report = agcyclegan.collect(task_dir, "pneumoniamnist")
    assert report["arm"] == "guided" and list(report["arms"]) == ["agcyclegan", "guided"]
    assert (report["flip_rate_from_0"], report["judge_flip_rate_from_0"]) == (0.9, 0.6)
    assert report["arms"]["agcyclegan"]["judge_flip_rate_from_1"] == 0.9
    assert (
        report["arms"]["guided"]["example_panels"]["best_from_0"] == "eval_test_guided/panels_best_from_0.png"
    )
    # the guided arm's 0 -> 1 flip rate 0.87-0.93 straddles 0.9; the judge's 0.57-0.63 lies below
    verdicts = report["targets"]["verdicts"]
    assert (
        verdicts["flip_rate"] == "not distinguishable at this n" and verdicts["judge_flip_rate"] == "missed"
    )
    table = agcyclegan.render(report)
    assert f"| normal → pneumonia | {STUDY} | 5 | 0.400 [0.370, 0.430] | 0.300 [0.270, 0.330] |" in table
    assert (
        "| normal → pneumonia | classifier-guided | 5 | 0.900 [0.870, 0.930] | 0.600 [0.570, 0.630] |"
        in table
    )
    assert "| flip rate above 0.9 both ways (whole 95 % interval) | not distinguishable at this n |" in table
    assert "| judge's flip rate above 0.9 both ways (whole 95 % interval) | **missed** |" in table
    assert "the targets below: classifier-guided" in table
    # the test set does not pick the arm: the study's GAN validated better, its arm is on top; a tie too
    for value in (0.9, 0.85):
        atomic_write_json(task_dir / "gan" / "checkpoints" / "best.json", {**record, "value": value})
        assert agcyclegan.collect(task_dir, "pneumoniamnist")["arm"] == "agcyclegan"


def _panels(eval_dir: Path) -> None:
    """An examples.json with both directions' panels, but no failed translation from class 1 (no
    worst_from_1 panel), and the panel files it names, each holding its own path's bytes."""
    examples = {}
    for key in ("best_from_0", "worst_from_0", "best_from_1", "worst_from_1"):
        flipped = key.startswith("best")
        shown = [] if key == "worst_from_1" else [
            {"name": f"{key}{i}", "prob_target_before": 0.1 * (i + 1), "prob_target_after": after,
             "flipped": flipped} for i, after in enumerate((0.9, 0.8) if flipped else (0.2, 0.3))
        ]  # fmt: skip
        panel = f"panels_{key}.png" if shown else None
        if panel:
            (eval_dir / panel).write_bytes(str(eval_dir / panel).encode())
        examples[key] = {"panel": panel, "examples": shown}
    (eval_dir / "examples.json").write_text(json.dumps(examples))


def test_published_panels_are_copied_into_the_docs_and_the_readme_shows_them(tmp_path) -> None:
    """The figures folder (docs/figures with --publish): each arm's panels copied and recorded relative to
    docs/; the rendered block shows the top-level arm's panels and links the other arm's; a linked figure
    missing from the docs is an error."""
    from monai_xai.experiments.readme import render_readme
    from monai_xai.utils import atomic_write_json

    task_dir = tmp_path / "run" / "pneumoniamnist"
    for eval_dir in ("eval_test", "eval_test_guided"):
        _panels(_write(task_dir, _metrics(), eval_dir))
    for gan, value in (("gan", 0.45), ("gan_guided", 0.85)):  # the guided arm on top
        atomic_write_json(
            task_dir / gan / "checkpoints" / "best.json", {"metric": "m", "value": value, "epoch": 3}
        )
    docs = tmp_path / "bundle" / "docs"
    report = agcyclegan.collect(task_dir, "pneumoniamnist", figures_dir=docs / "figures")
    with pytest.raises(FileNotFoundError, match="eval_test/panels_best_from_0.png: no such figure"):
        (task_dir / "eval_test" / "panels_best_from_0.png").rename(tmp_path / "moved.png")
        agcyclegan.collect(task_dir, "pneumoniamnist", figures_dir=docs / "figures")
    for arm, eval_dir in (("agcyclegan", "eval_test"), ("guided", "eval_test_guided")):
        panels = report["arms"][arm]["docs_panels"]
        assert panels == {
            key: f"figures/pneumoniamnist_{arm}_{key}.png"
            for key in ("best_from_0", "worst_from_0", "best_from_1")
        }
        for key, path in panels.items():
            assert (docs / path).read_bytes() == str(task_dir / eval_dir / f"panels_{key}.png").encode()
    summary = report["example_summary"]["best_from_0"]
    assert summary["n"] == 2 and summary["prob_target_before"] == pytest.approx(0.15)
    results = docs / "results" / "pneumoniamnist.json"
    write_results(report, results)
    readme = docs / "README.md"
    readme.write_text(
        "# x\n<!-- results:agcyclegan_pneumoniamnist -->\n<!-- /results:agcyclegan_pneumoniamnist -->\n"
    )
    known = {"agcyclegan_pneumoniamnist": Block(str(results), agcyclegan.render)}
    text = render_readme(readme, known)
    assert "Example panels, classifier-guided (the top level)" in text
    best, worst = (
        f"{k}, normal → pneumonia](figures/pneumoniamnist_guided_{k}_from_0.png)" for k in ("best", "worst")
    )
    assert (
        f"| normal → pneumonia | ![{best}<br>2 flipped: mean p(target) 0.15 → 0.85 | "
        f"![{worst}<br>2 not flipped: mean p(target) 0.15 → 0.25 |" in text
    )
    assert "| - (every translation flipped) |" in text
    assert "The other arm's panels: [best, normal → pneumonia, AG-CycleGAN (study's loss)]" in text
    (docs / "figures" / "pneumoniamnist_agcyclegan_best_from_1.png").unlink()
    with pytest.raises(SystemExit, match="links figures/pneumoniamnist_agcyclegan_best_from_1.png, missing"):
        render_readme(readme, known)


def test_command_line_writes_out_and_the_docs_only_with_publish(tmp_path, capsys) -> None:
    task_dir = tmp_path / "pneumoniamnist"
    _write(task_dir, _metrics())
    out = tmp_path / "results" / "pneumoniamnist.json"
    assert agcyclegan.main(["collect", str(task_dir), "--task", "pneumoniamnist", "--out", str(out)]) == 0
    written = json.loads(out.read_text())
    assert written["judge"]["architecture"] == "DenseNet121" and written["targets"]["all_met"]
    assert "top level: agcyclegan" in capsys.readouterr().out
    with pytest.raises(InputError, match="give --out <results.json>, or --publish"):
        agcyclegan.main(["collect", str(task_dir), "--task", "pneumoniamnist"])
    docs = tmp_path / "bundles" / "x" / "docs" / "results.json"
    with pytest.raises(InputError, match="results go into a bundle's docs only with --publish"):
        agcyclegan.main(["collect", str(task_dir), "--task", "pneumoniamnist", "--out", str(docs)])
    assert not docs.exists()


def test_summary_has_a_row_per_task_and_arm_with_judge_flip_rates(tmp_path, capsys) -> None:
    _write(tmp_path / "pneumoniamnist", _metrics(judge=(0.3, 0.9)))
    _write(tmp_path / "pneumoniamnist", _metrics(flip=(0.9, 0.95), judge=(0.6, 0.8)), "eval_test_guided")
    without_judge = {k: v for k, v in _metrics().items() if not k.startswith("judge")}
    _write(tmp_path / "busi", without_judge)
    attempt = {
        "step": "busi/gan",
        "status": "done",
        "seconds": 7.0,
        "resumed": False,
        "finished": "t",
        "digest": "d",
    }
    (tmp_path / "runtime.jsonl").write_text(json.dumps(attempt) + "\n")
    assert agcyclegan.main(["summary", str(tmp_path)]) == 0
    rows = capsys.readouterr().out.splitlines()
    assert [row.split(" | ")[:2] for row in rows[2:5]] == [
        ["| busi", "agcyclegan"], ["| pneumoniamnist", "agcyclegan"], ["| pneumoniamnist", "guided"]
    ]  # fmt: skip
    assert "| 0.945 [0.915, 0.975] | 0.950 [0.920, 0.980] | 0.940 [0.910, 0.970] | – | – |" in rows[2]
    assert "| 0.600 [0.570, 0.630] | 0.800 [0.770, 0.830] |" in rows[4]
    assert rows[-1] == "| busi/gan | 7 | 1 | True | False |"


@pytest.mark.parametrize("name", sorted(agcyclegan.BLOCKS))
def test_the_committed_results_files_render_without_an_unproven_met(name) -> None:
    """The docs' results files predate the intervals and the judge of another architecture: they render,
    and no target reads met without an interval."""
    block = agcyclegan.BLOCKS[name]
    report = json.loads(block.path.read_text())
    table = agcyclegan.render(report)
    assert table.startswith("| direction | arm | test images | flip rate |")
    targets = table.split("| target | |\n|---|---|\n")[1].split("\n\n")[0].splitlines()
    assert targets and all(row.endswith("| no interval (re-run pending) |") for row in targets)
    assert "| met |" not in table
    entries = agcyclegan.EVAL_METRICS[block.results](report)
    assert set(entries) == {f"{report['task']}_test_{arm}" for arm in report["arms"]}
    driver = "agcyclegan_explain.sh, since replaced by python -m monai_xai.experiments agcyclegan run"
    assert all(driver in entry["run"] for entry in entries.values())  # written by the shell driver


# ---------------------------------------------------------------------------------------------------- run


def _flags(argv) -> dict[str, str]:
    """A bundle run's ``--key value`` pairs (after ``python -m monai.bundle run --config_file [...]``)."""
    return dict(zip(argv[6::2], argv[7::2]))


def test_run_steps_read_the_lr_suggestion_name_their_inputs_and_collect(tmp_path, monkeypatch) -> None:
    from monai_xai.experiments import runner

    steps = []
    suggestion = {"base_lr": 0.002, "max_lr": 0.008, "momentum": 0.9, "weight_decay": 0.0005}

    def fake_run(self, step):  # writes what later steps read: the LR suggestion, the study's GAN's best.pt
        steps.append(step)
        if step.name.endswith("lr_find"):
            step.run_dir.mkdir(parents=True)
            best = {**suggestion, "base_lr": 0.003 if "judge" in step.name else 0.002}
            (step.run_dir / "lr_range_test.json").write_text(json.dumps({"best": best, "curves": []}))
        if step.name.endswith("/gan"):
            (step.run_dir / "checkpoints").mkdir(parents=True)
            (step.run_dir / "checkpoints" / "best.pt").write_bytes(b"")
        return {}

    collected = []

    def fake_collect(task_dir, task, **kwargs):
        collected.append((task_dir, task, kwargs))
        return {"task": task, "arms": {}, "arm": "agcyclegan", "targets": {"verdicts": {}}}

    monkeypatch.setattr(runner.StepRunner, "run", fake_run)
    monkeypatch.setattr(agcyclegan, "collect", fake_collect)
    root = tmp_path / "run"
    budget = [
        "--cls_epochs",
        "2",
        "--patience",
        "1",
        "--gan_epochs",
        "3",
        "--gan_patience",
        "1",
        "--size",
        "64",
    ]
    argv = ["run", "--root", str(root), "--tasks", "pneumoniamnist", "busi", *budget, "--limit", "8"]
    assert agcyclegan.main([*argv, "--extra", "lr_test_iters=5"]) == 0

    per_task = ["judge_densenet121_lr_find", "judge_densenet121", "gan", "gan_guided",
                "evaluate_judge_densenet121", "evaluate_guided_judge_densenet121"]  # fmt: skip
    assert [s.name for s in steps] == [
        "pneumoniamnist/lr_find", "pneumoniamnist/classifier", *(f"pneumoniamnist/{s}" for s in per_task),
        "busi/classifier", *(f"busi/{s}" for s in per_task),  # BUSI's classifier: no LR range test
    ]  # fmt: skip
    by_name = {s.name: s for s in steps}
    task_dir = root / "pneumoniamnist"
    folders = {
        name.split("/")[1]: s.run_dir for name, s in by_name.items() if name.startswith("pneumoniamnist")
    }
    assert folders == {
        "lr_find": task_dir / "classifier" / "lr_range_test", "classifier": task_dir / "classifier",
        "judge_densenet121_lr_find": task_dir / "judge_densenet121" / "lr_range_test",
        "judge_densenet121": task_dir / "judge_densenet121", "gan": task_dir / "gan",
        "gan_guided": task_dir / "gan_guided", "evaluate_judge_densenet121": task_dir / "eval_test",
        "evaluate_guided_judge_densenet121": task_dir / "eval_test_guided",
    }  # fmt: skip
    configs = "bundles/agcyclegan_explainer/configs"
    lr_find = by_name["pneumoniamnist/lr_find"].argv
    assert lr_find[3:6] == (
        "run", "--config_file",
        f"['{configs}/train.json','configs/datasets/pneumoniamnist.json','{configs}/train_classifier.json']",
    )  # fmt: skip
    flags = _flags(lr_find)
    assert flags["--run_id"] == "lr_find" and flags["--limit"] == "8" and flags["--lr_test_iters"] == "5"
    assert flags["--tracking_uri"] == f"sqlite:///{root / 'mlruns.db'}"
    assert flags["--output_dir"] == str(task_dir) and flags["--meta_file"] == f"{configs}/metadata.json"
    assert "--spatial_size" not in flags  # PneumoniaMNIST keeps its fragment's 28 px
    classifier = _flags(by_name["pneumoniamnist/classifier"].argv)
    assert {k: classifier[f"--{k}"] for k in ("max_epochs", "early_stop_patience", "base_lr", "max_lr")} == {
        "max_epochs": "2", "early_stop_patience": "1", "base_lr": "0.002", "max_lr": "0.008"
    }  # fmt: skip
    judge = by_name["pneumoniamnist/judge_densenet121"]
    assert judge.argv[5].endswith(f"'{configs}/train_classifier.json','{configs}/train_judge.json']")
    assert _flags(judge.argv)["--base_lr"] == "0.003"  # the judge's own LR range test
    best = task_dir / "classifier" / "checkpoints" / "best.pt"
    assert by_name["pneumoniamnist/gan"].inputs == (best,) == by_name["pneumoniamnist/gan_guided"].inputs
    guided = _flags(by_name["pneumoniamnist/gan_guided"].argv)
    assert guided["--gan_epochs"] == "3" and guided["--gan_early_stop_patience"] == "1"
    assert (
        guided["--lambda_cls"] == "1.0"
        and "train_guided.json" in by_name["pneumoniamnist/gan_guided"].argv[5]
    )
    judge_best = task_dir / "judge_densenet121" / "checkpoints" / "best.pt"
    for name, gan in (
        ("evaluate_judge_densenet121", "gan/checkpoints/best.pt"),
        ("evaluate_guided_judge_densenet121", "gan_guided/checkpoints/latest.pt"),
    ):  # no best.pt
        evaluation = by_name[f"pneumoniamnist/{name}"]
        assert evaluation.inputs == (task_dir / gan, judge_best, best)
        flags = _flags(evaluation.argv)
        assert flags["--gan_checkpoint"] == str(task_dir / gan) and flags["--judge_checkpoint"] == str(
            judge_best
        )
        assert flags["--n_panels"] == "16" and evaluation.argv[5].endswith(f"'{configs}/evaluate.json']")
    # BUSI: its dataset file and size on every step; its classifier the ABN plain ResNet's recipe
    busi = _flags(by_name["busi/gan"].argv)
    assert (
        busi["--dataset_path"] == "../shared/data/busi_256/labels.csv"
        and busi["--spatial_size"] == "[64, 64]"
    )
    busi_classifier = _flags(by_name["busi/classifier"].argv)
    assert busi_classifier["--max_epochs"] == "2" and busi_classifier["--early_stop_patience"] == "None"
    assert busi_classifier["--base_lr"] == "0.001" and busi_classifier["--batch_size"] == "32"
    assert "torch.optim.AdamW" in busi_classifier["--train#optimizer"]
    assert busi_classifier["--validate#handlers#1#metric"] == "val_auc"
    assert _flags(by_name["busi/judge_densenet121"].argv)["--base_lr"] == "0.003"  # the judge: unchanged

    assert [(task, kwargs["tested"]) for _, task, kwargs in collected] == [
        (task, {"gan_checkpoint": "best", "guided_gan_checkpoint": "latest"})
        for task in ("pneumoniamnist", "busi")
    ]  # fmt: skip
    assert all(kwargs["tracking_uri"] == f"sqlite:///{root / 'mlruns.db'}" for *_, kwargs in collected)
    assert all(kwargs["figures_dir"] is None for *_, kwargs in collected)  # not published
    assert json.loads((root / "results" / "busi.json").read_text())["task"] == "busi"
    assert (root / "summary.md").read_text().startswith("| task | arm |")

    with pytest.raises(
        InputError, match=r"full budget .*--cls_epochs 2 < 100, --patience 1 < 10, .*--limit 8"
    ):
        agcyclegan.main([*argv, "--publish"])
    with pytest.raises(InputError, match=r"full budget .*: --size 64 < 128$"):
        agcyclegan.main(["run", "--tasks", "busi", "--size", "64", "--publish"])
    with pytest.raises(InputError, match=r"full budget .*: --extra lr_test_iters=5$"):
        agcyclegan.main(["run", "--publish", "--extra", "lr_test_iters=5"])
    full = argparse.Namespace(tasks=["pneumoniamnist"], size=64, limit=None, extra=[], **{
        k: v for k, v in agcyclegan.FULL_BUDGET.items() if k != "size"})  # fmt: skip
    assert agcyclegan.below_budget(full) is None  # BUSI's size counts only where BUSI runs


def test_busi_classifier_recipe_is_the_abn_plain_resnets_and_parses(tmp_path) -> None:
    """ABN_PLAIN_RESNET restates abn_classification's train.json (with the BUSI fragment) and busi_crossval's
    budget; written as bundle_run_argv writes it, Fire reads it back and MONAI's parser builds AdamW, the
    cosine schedule, its handler, the class balance and the loss from it."""
    import fire
    from monai.bundle import ConfigParser

    from monai_xai.experiments import busi_crossval
    from monai_xai.experiments.runner import bundle_run_argv

    recipe = agcyclegan.ABN_PLAIN_RESNET
    abn = json.loads(
        (agcyclegan.REPO / "bundles" / "abn_classification" / "configs" / "train.json").read_text()
    )
    assert recipe["max_epochs"] == busi_crossval.FULL_BUDGET["epochs"]
    assert (recipe["base_lr"], recipe["weight_decay"]) == (abn["learning_rate"], abn["weight_decay"])
    assert (recipe["batch_size"], recipe["class_balance"]) == (abn["batch_size"], abn["class_balance"])
    assert recipe["train#optimizer"]["_target_"] == abn["optimizer"]["_target_"]
    assert recipe["train#lr_schedule"]["_target_"] == abn["lr_scheduler"]["_target_"]
    assert abn["early_stop_patience"] is recipe["early_stop_patience"] is None

    configs = [f"{agcyclegan.CONFIGS}/train.json", "configs/datasets/busi_binary_dedup.json",
               f"{agcyclegan.CONFIGS}/train_classifier.json"]  # fmt: skip
    overrides = {"output_dir": str(tmp_path), "spatial_size": [32, 32], "device_name": "cpu", **recipe}
    argv = bundle_run_argv(configs, overrides)
    assert fire.Fire(lambda **kwargs: kwargs, command=argv[6:]) == overrides
    parser = ConfigParser()
    parser.read_config([agcyclegan.REPO / name for name in configs])
    parser.update(overrides)
    schedule = parser.get_parsed_content("train#lr_schedule")
    assert type(schedule).__name__ == "CosineAnnealingLR" and schedule.T_max == 40
    assert type(schedule.optimizer).__name__ == "AdamW" and schedule.optimizer.defaults["lr"] == 0.001
    assert type(parser.get_parsed_content("train#handlers#0")).__name__ == "LrScheduleHandler"
    assert parser["validate#handlers#1#greater_is_better"] is True
    assert parser["run_identity#classifier#recipe"].startswith("abn_classification plain ResNet18")
    items = [{"label": 0}] * 4 + [{"label": 1}]
    parser["train#cache"] = {"data": items}  # no images: the class balance of 4:1 labels
    assert parser.get_parsed_content("balance").policy == "loss"  # auto: above 3:1, weights, no oversampling
    loss = parser.get_parsed_content("train#trainer#loss_function")
    assert type(loss).__name__ == "ClassifierLoss"
    assert parser.get_parsed_content("train#dataset") == {"data": items}  # not oversampled
