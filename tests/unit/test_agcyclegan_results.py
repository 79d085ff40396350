"""scripts/experiments/agcyclegan_results.py: each arm's figures, the top-level arm, the judge, the paper's
row, targets; the renderer and agcyclegan_summary.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from ignite.engine import Engine
from torch import nn


def _metrics(
    flip=(0.95, 0.92), control=(0.3, 0.1), uniform=(0.2, 0.05), accuracy=0.86, auc=0.95, judge=None
) -> dict:
    """A metrics.json as CounterfactualReport writes it (the figures the results file reads); with
    ``judge`` (its flip rates per direction) as written with a judge classifier."""
    metrics = {"n_images": 10, "classifier": {"accuracy": accuracy, "auc": auc, "sensitivity": 0.8,
               "specificity": 0.9}}  # fmt: skip
    for suffix, i in (("_from_0", 0), ("_from_1", 1), ("", None)):
        pick = (lambda pair: sum(pair) / 2) if i is None else (lambda pair, i=i: pair[i])
        metrics.update({
            f"flip_rate{suffix}": pick(flip), f"control_flip_rate{suffix}": pick(control),
            f"uniform_flip_rate{suffix}": pick(uniform), f"mean_attention{suffix}": 0.1,
            f"mean_abs_difference{suffix}": 0.02,
            f"attention_vs_gradcampp{suffix}": {"correlation": 0.4, "top10pct_iou": 0.25},
        })  # fmt: skip
        if suffix:
            metrics[f"n_images{suffix}"] = 5
        if judge is not None:
            metrics[f"judge_flip_rate{suffix}"] = pick(judge)
    if judge is not None:
        metrics["judge_classifier"] = {"accuracy": 0.84, "auc": 0.93, "sensitivity": 0.7, "specificity": 0.95}
    metrics["control_gaps"] = {  # paired intervals of flip rate - control flip rate, +-0.05 around the gap
        f"{name}_from_{i}": {"mean": flip[i] - rates[i], "ci95": [flip[i] - rates[i] - 0.05,
                             flip[i] - rates[i] + 0.05], "n": 5}
        for name, rates in (("control", control), ("uniform", uniform)) for i in (0, 1)
    }  # fmt: skip
    return metrics


def _write(task_dir: Path, metrics: dict, eval_dir: str = "eval_test") -> Path:
    eval_dir = task_dir / eval_dir
    eval_dir.mkdir(parents=True, exist_ok=True)
    (eval_dir / "metrics.json").write_text(json.dumps(metrics))
    examples = {"best_from_0": {"panel": "panels_best_from_0.png", "examples": []},
                "worst_from_0": {"panel": None, "examples": []}}  # fmt: skip
    (eval_dir / "examples.json").write_text(json.dumps(examples))
    return eval_dir


def test_results_report_figures_reference_and_targets(tmp_path, load_script) -> None:
    script = load_script("experiments/agcyclegan_results.py")
    task_dir = tmp_path / "pneumonia"
    with pytest.raises(SystemExit, match="pneumonia/eval_test: no test evaluation"):
        script.main([str(task_dir), "--task", "pneumoniamnist"])
    old = {k: v for k, v in _metrics().items() if "control" not in k}  # written before the controls
    _write(task_dir, old)
    with pytest.raises(SystemExit, match="no control_flip_rate, .*rerun the evaluate step"):
        script.main([str(task_dir), "--task", "pneumoniamnist"])
    _write(task_dir, _metrics())
    (tmp_path / "runtime.txt").write_text(
        "pneumonia/classifier: 10 s\nbusi/classifier: 5 s\npneumonia/gan: 7 s\n"
    )
    out = tmp_path / "results" / "pneumoniamnist.json"
    report = script.main(
        [
            str(task_dir),
            "--task",
            "pneumoniamnist",
            "--out",
            str(out),
            "--cls_epochs",
            "3",
            "--gan_epochs",
            "2",
        ]
    )
    assert report["classifier"] == {"accuracy": 0.86, "auc": 0.95, "sensitivity": 0.8, "specificity": 0.9}
    assert (report["flip_rate_from_0"], report["flip_rate_from_1"]) == (0.95, 0.92)
    assert (report["control_flip_rate_from_0"], report["uniform_flip_rate_from_1"]) == (0.3, 0.05)
    assert report["mean_attention"] == 0.1 and report["mean_abs_difference_from_1"] == 0.02
    assert report["attention_vs_gradcampp_from_0"] == {"correlation": 0.4, "top10pct_iou": 0.25}
    assert report["reference"] == {"model": "MedMNIST v2, ResNet-18 (28)", "accuracy": 0.854, "auc": 0.944}
    assert report["targets"] == {
        "classifier_accuracy_at_least": 0.854, "classifier_auc_at_least": 0.944, "flip_rate_at_least": 0.9,
        "classifier_met": True, "flip_rate_met": True, "controls_met": True, "all_met": True,
    }  # fmt: skip
    assert report["settings"] == {"cls_epochs": 3, "gan_epochs": 2}
    assert report["training"] == {}  # no checkpoints beside this evaluation
    assert report["wall_time"] == ["pneumonia/classifier: 10 s", "pneumonia/gan: 7 s"]
    assert report["example_panels"] == {
        "best_from_0": "eval_test/panels_best_from_0.png",
        "worst_from_0": None,
    }
    assert report["example_summary"]["worst_from_0"] == {
        "n": 0, "prob_target_before": None, "prob_target_after": None
    }  # fmt: skip
    assert "docs_panels" not in report  # no --figures_dir: the panels stay in the run folder
    assert json.loads(out.read_text()) == json.loads(json.dumps(report))

    study_arm = report["arms"]["agcyclegan"]
    assert report["arm"] == "agcyclegan" and list(report["arms"]) == [
        "agcyclegan"
    ]  # from before the guided arm
    assert study_arm["flip_rate_from_1"] == 0.92 and "classifier" not in study_arm
    assert report["judge"] is None and "judge_flip_rate" not in report

    table = load_script("render_results.py").agcyclegan(report)
    study = "AG-CycleGAN (study's loss)"
    assert (
        f"| normal → pneumonia | {study} | 5 | 0.950 | - | 0.300 | 0.200 | 0.100 | 0.020 | 0.400 | 0.250 |"
        in table
    )
    assert f"| both | {study} | 10 | 0.935 |" in table and "top-10 % IoU" in table
    assert f"Top level of the results file, and the targets below: {study}" in table
    assert "| MedMNIST v2, ResNet-18 (28) | 0.854 | 0.944 | | |" in table
    assert "| flip rate ≥ 0.9 both ways | met |" in table
    assert "Settings: cls_epochs 3, gan_epochs 2." in table
    assert "Example panels" not in table and "](" not in table
    with pytest.raises(FileNotFoundError, match="eval_test/panels_best_from_0.png: no such figure"):
        script.main([str(task_dir), "--task", "pneumoniamnist", "--figures_dir", str(tmp_path / "figures")])


def test_results_targets_not_met_and_busi_without_reference(tmp_path, load_script) -> None:
    script = load_script("experiments/agcyclegan_results.py")
    # AdrenalMNIST3D: AUC below the paper, 1 -> 0 flips 0.7 < 0.8, the uniform control flips 0 -> 1 as often
    _write(tmp_path / "adrenal3d", _metrics(flip=(0.9, 0.7), uniform=(0.9, 0.05), accuracy=0.8, auc=0.8))
    report = script.main([str(tmp_path / "adrenal3d"), "--task", "adrenalmnist3d"])
    assert (tmp_path / "adrenal3d" / "agcyclegan_adrenalmnist3d.json").is_file()
    targets = report["targets"]
    assert targets["flip_rate_at_least"] == 0.8 and report["reference"]["auc"] == 0.827
    assert not targets["classifier_met"] and not targets["flip_rate_met"] and not targets["controls_met"]
    assert not targets["all_met"]
    table = load_script("render_results.py").agcyclegan(report)
    assert (
        "| both controls flip less than the translations, each direction (paired 95 % interval of the "
        "difference above 0) | **not met** |" in table
    )
    metrics = _metrics(flip=(0.5, 0.4))
    agreement = {"energy_inside_mask": 0.3, "pointing_game": 0.5, "map_iou": 0.2, "map_mse": 0.1}
    metrics["mask_agreement"] = {"attention": {**agreement, "num_evaluated": 10, "num_empty_masks": 0}}
    _write(tmp_path / "busi", metrics)
    report = script.main([str(tmp_path / "busi"), "--task", "busi"])
    assert report["reference"] is None and report["classes"] == ["benign", "malignant"]
    assert report["targets"]["classifier_met"] is None and report["targets"]["flip_rate_met"] is None
    assert report["targets"]["all_met"]  # only the controls are a target on BUSI
    table = load_script("render_results.py").agcyclegan(report)
    assert "flip rate ≥" not in table and "MedMNIST" not in table
    assert "| attention A, AG-CycleGAN (study's loss) | 0.300 | 0.500 | 0.200 | 0.100 | 10 |" in table


class _Mean(nn.Module):
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        mean = images.flatten(1).mean(dim=1)
        return torch.stack([0.5 - mean, mean - 0.5], dim=1)


def test_results_read_what_the_report_handler_writes(tmp_path, load_script) -> None:
    from monai_xai.handlers import CounterfactualReport
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
    CounterfactualReport(tmp_path / "busi" / "eval_test", ["benign", "malignant"], n_panels=0).attach(engine)
    engine.run(outputs, max_epochs=1)
    report = load_script("experiments/agcyclegan_results.py").main([str(tmp_path / "busi"), "--task", "busi"])
    assert report["n_images"] == 6 and report["n_images_from_0"] == 3
    assert set(report["example_panels"]) == {f"{k}_from_{c}" for k in ("best", "worst") for c in (0, 1)}
    table = load_script("render_results.py").agcyclegan(report)
    assert "| benign → malignant | AG-CycleGAN (study's loss) | 3 |" in table


def test_results_record_training_and_settings(tmp_path, load_script) -> None:
    """Epochs trained (latest.pt, as ResumableCheckpointer writes it, LR schedule state included) and the
    best validation (best.json) of both workflows, the early-stopping settings and the tested checkpoint."""
    from ignite.handlers.param_scheduler import LinearCyclicalScheduler

    from monai_xai.utils import atomic_save, atomic_write_json

    task_dir = tmp_path / "pneumoniamnist"
    _write(task_dir, _metrics())
    model = nn.Linear(2, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    schedule = LinearCyclicalScheduler(optimizer, "lr", 0.001, 0.01, cycle_size=4)
    checkpoints = task_dir / "classifier" / "checkpoints"
    atomic_save(
        {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
         "lr_schedule": schedule.state_dict(), "engine": {"epoch": 34, "iteration": 3400}},
        checkpoints / "latest.pt",
    )  # fmt: skip
    atomic_write_json(checkpoints / "best.json", {"metric": "val_loss", "value": 0.2125, "epoch": 24})
    atomic_write_json(
        task_dir / "gan" / "checkpoints" / "best.json",
        {"metric": "val_flip_rate_min", "value": 0.9, "epoch": 7},
    )
    args = ["--early_stop_patience", "10", "--gan_early_stop_patience", "5", "--gan_checkpoint", "best"]
    args += ["--base_lr", "0.0025", "--max_lr", "0.01", "--momentum", "0.95", "--weight_decay", "0.0001"]
    report = load_script("experiments/agcyclegan_results.py").main(
        [str(task_dir), "--task", "pneumoniamnist", *args]
    )
    assert report["training"] == {
        "classifier": {"epochs": 34, "metric": "val_loss", "value": 0.2125, "best_epoch": 24},
        "gan": {"metric": "val_flip_rate_min", "value": 0.9, "best_epoch": 7},
    }
    assert report["settings"] == {
        "base_lr": 0.0025, "max_lr": 0.01, "momentum": 0.95, "weight_decay": 0.0001,
        "early_stop_patience": 10, "gan_early_stop_patience": 5, "gan_checkpoint": "best",
    }  # fmt: skip
    table = load_script("render_results.py").agcyclegan(report)
    assert (
        "Trained: classifier 34 epochs, best `val_loss` 0.212 at epoch 24; GAN (study's loss), best "
        "`val_flip_rate_min` 0.900 at epoch 7. Tested: the study's GAN of the best validation." in table
    )


def test_both_arms_with_a_judge_and_the_arm_on_top(tmp_path, load_script) -> None:
    """The guided GAN's weaker direction flips more on validation (0.85 vs 0.45): it is the top level,
    whatever the test set says; both arms keep their figures and judge flip rates; the judge's scores come
    once; the renderer shows both arms."""
    from monai_xai.utils import atomic_write_json

    script = load_script("experiments/agcyclegan_results.py")
    task_dir = tmp_path / "pneumoniamnist"
    _write(task_dir, _metrics(flip=(0.4, 0.97), judge=(0.3, 0.9)))
    _write(task_dir, _metrics(flip=(0.9, 0.95), control=(0.2, 0.3), judge=(0.6, 0.8)), "eval_test_guided")
    for gan, value in (("gan", 0.45), ("gan_guided", 0.85)):
        record = {"metric": "val_flip_rate_min", "value": value, "epoch": 3}
        atomic_write_json(task_dir / gan / "checkpoints" / "best.json", record)
    args = ["--task", "pneumoniamnist", "--gan_checkpoint", "best", "--guided_gan_checkpoint", "latest"]
    report = script.main([str(task_dir), *args, "--lambda_cls", "1.0"])
    assert report["arm"] == "guided" and list(report["arms"]) == ["agcyclegan", "guided"]
    assert (report["flip_rate_from_0"], report["judge_flip_rate_from_0"]) == (0.9, 0.6)
    assert report["control_flip_rate_from_1"] == 0.3 and report["classifier"]["accuracy"] == 0.86
    assert report["arms"]["agcyclegan"]["judge_flip_rate_from_1"] == 0.9
    guided_panels = report["arms"]["guided"]["example_panels"]
    assert guided_panels["best_from_0"] == "eval_test_guided/panels_best_from_0.png"
    assert report["judge"] == {"accuracy": 0.84, "auc": 0.93, "sensitivity": 0.7, "specificity": 0.95}
    assert not any("judge_classifier" in figures for figures in report["arms"].values())
    assert report["targets"]["flip_rate_met"] and report["settings"]["lambda_cls"] == 1.0
    table = load_script("render_results.py").agcyclegan(report)
    assert "| normal → pneumonia | AG-CycleGAN (study's loss) | 5 | 0.400 | 0.300 | 0.300 |" in table
    assert "| normal → pneumonia | classifier-guided | 5 | 0.900 | 0.600 | 0.200 |" in table
    assert "| judge (the same training, seed 1) | 0.840 | 0.930 | 0.700 | 0.950 |" in table
    assert "the targets below: classifier-guided" in table
    # the test set does not pick the arm: the study's GAN validated better, its arm is on top
    atomic_write_json(task_dir / "gan" / "checkpoints" / "best.json", {**record, "value": 0.9})
    assert script.main([str(task_dir), "--task", "pneumoniamnist"])["arm"] == "agcyclegan"
    # a tie keeps the study's arm on top
    atomic_write_json(task_dir / "gan" / "checkpoints" / "best.json", {**record, "value": 0.85})
    assert script.main([str(task_dir), "--task", "pneumoniamnist"])["arm"] == "agcyclegan"


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


def test_full_budget_copies_the_panels_into_the_docs_and_the_readme_shows_them(tmp_path, load_script) -> None:
    """--figures_dir (the driver's, at full budget): each arm's panels copied into the bundle's docs/figures
    and recorded relative to docs/; the rendered block shows the top-level arm's panels with what their
    translations do and links the other arm's; a linked figure missing from the docs is an error."""
    from monai_xai.utils import atomic_write_json

    script, render = load_script("experiments/agcyclegan_results.py"), load_script("render_results.py")
    task_dir = tmp_path / "run" / "pneumoniamnist"
    for eval_dir in ("eval_test", "eval_test_guided"):
        _panels(_write(task_dir, _metrics(), eval_dir))
    for gan, value in (("gan", 0.45), ("gan_guided", 0.85)):  # the guided arm on top
        record = {"metric": "val_flip_rate_min", "value": value, "epoch": 3}
        atomic_write_json(task_dir / gan / "checkpoints" / "best.json", record)
    docs = tmp_path / "bundle" / "docs"
    args = ["--task", "pneumoniamnist", "--out", str(docs / "results" / "pneumoniamnist.json")]
    report = script.main([str(task_dir), *args, "--figures_dir", str(docs / "figures")])
    assert report["arm"] == "guided"
    for arm, eval_dir in (("agcyclegan", "eval_test"), ("guided", "eval_test_guided")):
        panels = report["arms"][arm]["docs_panels"]
        assert panels == {
            key: f"figures/pneumoniamnist_{arm}_{key}.png"
            for key in ("best_from_0", "worst_from_0", "best_from_1")
        }
        for key, path in panels.items():
            assert (docs / path).read_bytes() == str(task_dir / eval_dir / f"panels_{key}.png").encode()
    assert report["docs_panels"] == report["arms"]["guided"]["docs_panels"]
    summary = report["example_summary"]["best_from_0"]
    assert summary["n"] == 2 and summary["prob_target_before"] == pytest.approx(0.15)
    assert summary["prob_target_after"] == pytest.approx(0.85)
    assert not list(docs.rglob(".tmp*"))

    readme = docs / "README.md"
    readme.write_text(
        "# x\n<!-- results:agcyclegan_pneumoniamnist -->\n<!-- /results:agcyclegan_pneumoniamnist -->\n"
    )
    text = render.render(readme)
    assert "Example panels, classifier-guided (the top level)" in text
    best, worst = (
        f"{k}, normal → pneumonia](figures/pneumoniamnist_guided_{k}_from_0.png)" for k in ("best", "worst")
    )
    assert (
        f"| normal → pneumonia | ![{best}<br>2 flipped: mean p(target) 0.15 → 0.85 | "
        f"![{worst}<br>2 not flipped: mean p(target) 0.15 → 0.25 |" in text
    )
    assert "| pneumonia → normal | ![best, pneumonia → normal]" in text
    assert "| - (every translation flipped) |" in text
    assert (
        "The other arm's panels: [best, normal → pneumonia, AG-CycleGAN (study's loss)]"
        "(figures/pneumoniamnist_agcyclegan_best_from_0.png), [worst, normal → pneumonia," in text
    )
    (docs / "figures" / "pneumoniamnist_agcyclegan_best_from_1.png").unlink()
    with pytest.raises(SystemExit, match="links figures/pneumoniamnist_agcyclegan_best_from_1.png, missing"):
        render.render(readme)


def test_summary_has_a_row_per_task_and_arm_with_judge_flip_rates(tmp_path, load_script) -> None:
    _write(tmp_path / "pneumoniamnist", _metrics(judge=(0.3, 0.9)))
    _write(tmp_path / "pneumoniamnist", _metrics(flip=(0.9, 0.95), judge=(0.6, 0.8)), "eval_test_guided")
    _write(tmp_path / "busi", _metrics())
    rows = load_script("experiments/agcyclegan_summary.py").summarize(tmp_path).splitlines()
    assert [row.split(" | ")[:2] for row in rows[2:]] == [
        ["| busi", "agcyclegan"], ["| pneumoniamnist", "agcyclegan"], ["| pneumoniamnist", "guided"]
    ]  # fmt: skip
    assert "| 0.935 | 0.950 | 0.920 | - | - |" in rows[2]  # no judge in that evaluation
    assert "| 0.600 | 0.800 |" in rows[4]
