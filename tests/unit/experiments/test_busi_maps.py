"""monai_xai.experiments.busi_maps reads each method's evaluation into one results file, with intervals from
the per-image files; its renderer lays it out like the study's tables and marks no column's best."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch

from monai_xai.errors import InputError
from monai_xai.experiments import busi_maps


def _write(eval_dir: Path, faithfulness: dict, agreement: dict, accuracy: float) -> None:
    eval_dir.mkdir(parents=True)
    (eval_dir / "faithfulness.json").write_text(json.dumps({"steps": 20, "baseline": "blur", **faithfulness}))
    (eval_dir / "metrics.json").write_text(
        json.dumps({"image": {"accuracy": accuracy, "auc": 0.5}, "attention_agreement": agreement})
    )


def _write_per_image(eval_dir: Path) -> None:
    """8 images: 6 right (accuracy 0.75), probabilities that rank every malignant image above every benign
    one (AUC 1), map MSE 0.05 / 0.15 alternating (mean 0.1; the last image has no mask), and Deletion AUC
    0.2 / 0.3 alternating."""
    labels, preds = [0, 0, 0, 0, 1, 1, 1, 1], [0, 0, 0, 1, 1, 1, 1, 0]
    rows = ["source,patient,label,pred,decision,prob_benign,prob_malignant"]
    rows += [
        f"img{i}.png,,{y},{p},{p},{1 - (0.1 * i):.5f},{0.1 * i:.5f}"
        for i, (y, p) in enumerate(zip(labels, preds))
    ]
    (eval_dir / "predictions.csv").write_text("\n".join(rows) + "\n")
    maps = ["source,method,map_mse,pointing_game,energy_inside_mask,map_iou"]
    maps += [f"img{i}.png,attention,{0.05 if i % 2 else 0.15},1.0,0.5,0.1" for i in range(6)]
    maps += ["img7.png,attention,nan,nan,nan,nan", "img0.png,gradcam,0.9,0.0,0.1,0.0"]
    (eval_dir / "attention_per_image.csv").write_text("\n".join(maps) + "\n")
    faithfulness = ["source,method,deletion_auc,insertion_auc"]  # Deletion 0.2 / 0.3 alternating: mean 0.25
    faithfulness += [f"img{i}.png,attention,{0.3 if i % 2 else 0.2},0.6" for i in range(8)]
    (eval_dir / "faithfulness_per_image.csv").write_text("\n".join(faithfulness) + "\n")


@pytest.fixture
def runs(tmp_path: Path) -> Path:
    net = tmp_path / "resnet18"
    _write(
        net / "gradcam_resnet" / "eval_test",
        {"gradcam": {"deletion_auc": 0.31, "insertion_auc": 0.5}, "gradcampp": {"deletion_auc": 0.32}},
        {"gradcam": {"map_mse": 0.21, "pointing_game": 0.4}, "gradcampp": {"map_mse": 0.22}},
        0.7,
    )
    ms = net / "multiscale"
    _write(
        ms / "eval_test", {"attention": {"deletion_auc": 0.25, "insertion_auc": 0.6}}, {"attention": {}}, 0.75
    )
    _write_per_image(ms / "eval_test")
    (ms / "checkpoints").mkdir()
    (ms / "checkpoints" / "best.json").write_text('{"metric": "val_auc", "epoch": 7}')
    torch.save({"engine": {"epoch": 17, "iteration": 170}}, ms / "checkpoints" / "latest.pt")
    identity = {"network": {"spatial_size": [128, 128]}, "data": {"dataset": "busi_dedup", "fold": 0}}
    (ms / "run.json").write_text(json.dumps({"identity": identity}))
    attempts = [  # the runner's record: a step of the maps twice (interrupted, then done), one of a sweep
        {"step": "resnet18/gradcam_resnet/train", "status": "interrupted", "seconds": 5.0, "resumed": False},
        {"step": "resnet18/gradcam_resnet/train", "status": "done", "seconds": 7.0, "resumed": True},
        {"step": "active_learning/seed0/sweep", "status": "done", "seconds": 99.0, "resumed": False},
    ]
    lines = [json.dumps({**a, "digest": "sha256:1", "finished": "2025-01-01 00:00:00"}) for a in attempts]
    (tmp_path / "runtime.jsonl").write_text("\n".join(lines) + "\n")
    return tmp_path


def test_results_put_each_method_in_its_row_with_intervals_where_per_image_files_exist(runs: Path) -> None:
    out = runs / "busi_maps.json"
    assert busi_maps.main(["collect", "--runs", str(runs), "--out", str(out), "--max_epochs", "60"]) == 0
    report = json.loads(out.read_text())
    methods = report["methods"]
    assert methods["gradcam"]["scores"]["resnet18"] == {
        "deletion_auc": {"mean": 0.31}, "insertion_auc": {"mean": 0.5}, "map_mse": {"mean": 0.21},
        "map_pointing_game": {"mean": 0.4}, "accuracy": {"mean": 0.7}, "auc": {"mean": 0.5},
    }  # fmt: skip
    assert methods["gradcampp"]["scores"]["resnet18"]["deletion_auc"] == {"mean": 0.32}
    multiscale = methods["multiscale"]["scores"]["resnet18"]
    assert multiscale["deletion_auc"]["mean"] == pytest.approx(0.25) and multiscale["deletion_auc"]["n"] == 8
    assert 0.2 <= multiscale["deletion_auc"]["ci95"][0] < 0.25 < multiscale["deletion_auc"]["ci95"][1] <= 0.3
    assert multiscale["insertion_auc"]["ci95"] == pytest.approx([0.6, 0.6])
    assert multiscale["accuracy"]["mean"] == 0.75 and multiscale["accuracy"]["n"] == 8
    assert multiscale["accuracy"]["ci95"][0] < 0.75 < multiscale["accuracy"]["ci95"][1]
    assert multiscale["auc"]["mean"] == 1.0 and multiscale["auc"]["ci95"] == [1.0, 1.0]
    assert multiscale["map_mse"]["mean"] == pytest.approx(0.1) and multiscale["map_mse"]["n"] == 6
    assert multiscale["map_pointing_game"]["ci95"] == [1.0, 1.0]
    assert methods["abn"]["scores"] == {} and methods["multiscale_finetuned"]["scores"] == {}  # not run yet
    assert report["training"]["resnet18"]["multiscale"] == {"best_epoch": 7, "epochs_trained": 17}
    assert report["settings"] == {
        "finetune": "mask_all_1.0", "dataset": "busi_dedup", "fold": 0, "spatial_size": 128,
        "faithfulness_steps": 20, "faithfulness_baseline": "blur", "max_epochs": 60,
    }  # fmt: skip
    wall = report["wall_time"]  # the maps' steps only, not the sweep's in the same folder
    assert wall["seconds"] == 12.0 and list(wall["steps"]) == ["resnet18/gradcam_resnet/train"]
    assert wall["steps"]["resnet18/gradcam_resnet/train"]["attempts"] == 2 and not wall["resumed"]

    table = busi_maps.render(report)
    assert "| Grad-CAM (plain ResNet) | 0.310 | 0.500 | 0.210 |" in table
    assert "| Multi-scale ABN | 0.250 [0.2" in table and "| 0.600 [0.600, 0.600] | 0.100 [" in table
    assert (
        "| Multi-scale ABN | 0.750 [" in table and "| 1.000 [1.000, 1.000] | 1.000 [1.000, 1.000] |" in table
    )
    assert "**" not in table and "no method is marked best" in table  # no column's best marked
    assert "| ABN | – | – | – |" in table
    assert "resnet18 `multiscale` 7/17" in table
    assert "Dataset `busi_dedup`, fold 0, 128x128;" in table and "Brackets: bootstrap 95 % intervals" in table


def test_the_committed_results_file_renders_every_figure_with_its_interval() -> None:
    block = busi_maps.BLOCKS["busi_maps"]
    table = block.render(json.loads(block.path.read_text()))
    grad_cam = next(row for row in table.splitlines() if row.startswith("| Grad-CAM (plain ResNet) | "))
    cells = grad_cam.strip("| ").split(" | ")[1:]
    assert len(cells) == 6 and all(re.fullmatch(r"\d\.\d{3} \[\d\.\d{3}, \d\.\d{3}\]", c) for c in cells)
    assert "**" not in table and "No intervals" not in table


def test_no_runs_and_no_destination_are_errors(runs: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="busi_maps run"):
        busi_maps.main(["collect", "--runs", str(tmp_path / "empty"), "--out", str(tmp_path / "x.json")])
    with pytest.raises(SystemExit):  # argparse: --runs is required
        busi_maps.main(["collect", "--out", str(tmp_path / "x.json")])
    with pytest.raises(SystemExit):  # collect runs nothing: no bundle overrides
        busi_maps.main(["collect", "--runs", str(runs), "--out", str(tmp_path / "x.json"), "--limit", "2"])
    with pytest.raises(InputError, match="give --out <results.json>, or --publish"):
        busi_maps.main(["collect", "--runs", str(runs)])


def test_per_image_readers_leave_out_unlabelled_rows_and_unmasked_images(runs: Path) -> None:
    eval_dir = runs / "resnet18" / "multiscale" / "eval_test"
    rows = (eval_dir / "predictions.csv").read_text() + "unlabelled.png,,-1,1,1,0.2,0.8\n"
    (eval_dir / "predictions.csv").write_text(rows)
    predictions = busi_maps.read_predictions(eval_dir)
    assert predictions.labels.tolist() == [0, 0, 0, 0, 1, 1, 1, 1] and predictions.probs.shape == (8, 2)
    assert busi_maps.read_map_scores(eval_dir, "attention")["map_mse"].size == 6
    assert busi_maps.read_map_scores(eval_dir, "gradcampp") is None
    assert busi_maps.read_predictions(runs) is None


def test_run_trains_each_backbone_s_models_then_fine_tunes_with_the_study_s_settings(tmp_path, monkeypatch):
    from monai_xai.experiments import runner

    steps = []
    monkeypatch.setattr(runner.StepRunner, "run", lambda self, step: steps.append(step))
    monkeypatch.setattr(busi_maps, "collect", lambda runs: {"methods": {}, "settings": {}})
    runs = tmp_path / "study"
    argv = [
        "run",
        "--runs",
        str(runs),
        "--backbones",
        "resnet18",
        "resnet34",
        "--size",
        "64",
        "--limit",
        "24",
    ]
    assert busi_maps.main([*argv, "--max_epochs", "2", "--out", str(tmp_path / "r.json")]) == 0
    names = [s.name for s in steps]
    assert names[:9] == [
        "resnet18/gradcam_resnet/train", "resnet18/gradcam_resnet/evaluate", "resnet18/abn/train",
        "resnet18/abn/evaluate", "resnet18/multiscale/train", "resnet18/multiscale/evaluate",
        "resnet18/multiscale/collect", "resnet18/multiscale/finetune/mask_all_1.0/train",
        "resnet18/multiscale/finetune/mask_all_1.0/evaluate",
    ]  # fmt: skip
    assert len(names) == 18 and names[9] == "resnet34/gradcam_resnet/train"
    base = " ".join(steps[0].argv)
    assert "-m monai.bundle run --config_file" in base and "busi_binary_dedup.json']" in base
    assert "--mode baseline --backbone resnet18 --max_epochs 2 --early_stop_patience 10" in base
    assert steps[0].argv[steps[0].argv.index("--spatial_size") + 1] == "[64, 64]"
    assert f"--tracking_uri sqlite:///{runs}/mlruns.db" in base and "--limit 24" in base
    assert "--cam_layer network.layer3" in base and "--logging_file" in base
    assert steps[0].run_dir == runs / "resnet18" / "gradcam_resnet"
    evaluate = steps[1]
    assert "evaluate.json" in evaluate.argv[evaluate.argv.index("--config_file") + 1]
    assert evaluate.run_dir == runs / "resnet18" / "gradcam_resnet" / "eval_test"
    assert evaluate.inputs == (runs / "resnet18" / "gradcam_resnet" / "checkpoints" / "best.pt",)
    collect, finetune = steps[6], steps[7]
    assert "collect.json']" in collect.argv[collect.argv.index("--config_file") + 1]
    assert (
        "--max_epochs" not in collect.argv
        and collect.run_dir == runs / "resnet18" / "multiscale" / "correction"
    )
    tuned = " ".join(finetune.argv)
    assert "finetune.json']" in tuned and "--max_epochs 15 --map_weights 10.0 --learning_rate 0.001" in tuned
    assert finetune.run_dir == runs / "resnet18" / "multiscale" / "finetune" / "mask_all_1.0"
    assert finetune.inputs == (
        runs / "resnet18" / "multiscale" / "checkpoints" / "best.pt",
        runs / "resnet18" / "multiscale" / "correction" / "records.csv",
    )
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["settings"] == {
        "max_epochs": 2, "patience": 10, "ft_epochs": 15, "map_weights": 10.0, "ft_learning_rate": 0.001
    }  # fmt: skip
    assert report["wall_time"] == {"seconds": 0, "resumed": False, "steps": {}}  # nothing ran
    with pytest.raises(InputError, match=r"issue's budget: size 64 < 128, bundle overrides \{'limit': 24\}"):
        busi_maps.main([*argv, "--publish"])
    with pytest.raises(InputError, match=r"no early stopping"):
        busi_maps.main(["run", "--runs", str(runs), "--patience", "0", "--publish"])
    assert len(steps) == 18  # refused before any step
