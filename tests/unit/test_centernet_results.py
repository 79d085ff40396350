"""scripts/experiments/centernet_results.py: the leak-free BUSI detection results file, and its renderer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

#: arm -> (mAP, AP50, AP75, F1, best epoch): simsiam_progressive beats random_init in mAP, retinanet in AP50
FIGURES = {
    "random_init": (0.30, 0.65, 0.25, 0.70, 12),
    "simsiam_frozen": (0.20, 0.55, 0.15, 0.60, 20),
    "simsiam_progressive": (0.32, 0.68, 0.28, 0.72, 15),
    "retinanet": (0.31, 0.72, 0.20, 0.66, 30),
}
#: per-epoch val mAP of each arm's MLflow run (its length: the epochs trained)
VAL_MAP = {
    "random_init": [0.1, 0.3, 0.2],
    "simsiam_frozen": [0.2, 0.1],
    "simsiam_progressive": [0.3],
    "retinanet": [],
}


def _metrics(map_: float, ap50: float, ap75: float, f1: float) -> dict:
    stats = {"precision": 0.8, "recall": 0.7, "f1": 0.75, "over_detected": 2, "missed": 9}
    coco = {"mAP": map_, "AP50": ap50, "AP75": ap75, "AP_small": 0.1, "AP_medium": 0.4, "AP_large": -1.0}
    return {
        "coco": coco,
        "f1_threshold": {"threshold": 0.35, "precision": 0.8, "recall": 0.7, "f1": f1, "split": "val"},
        "threshold_split": "val",
        "confusion_matrix": {
            "labels": ["benign", "malignant", "None"], "matrix": [[60, 3, 20], [4, 30, 9], [11, 5, 0]]
        },
        "per_class": {name: {**stats, "false_detections": 5} for name in ("benign", "malignant")},
        "iou_threshold": 0.25,
        "n_images": 152,
        "n_lesions": 126,
    }  # fmt: skip


def _probe(simsiam_test: float) -> dict:
    def scores(accuracy: float) -> dict:
        return {"accuracy": accuracy, "balanced_accuracy": accuracy - 0.1, "recall": {}, "n": 152}

    return {
        "split": "configs/datasets/busi_splits_dedup.json", "fold": 0,
        "class_names": ["normal", "benign", "malignant"], "images": {"train": 406, "val": 204, "test": 152},
        "spatial_size": [128, 128], "k": 20, "temperature": 0.07, "features": "layer4",
        "majority_class_rate": {"val": 0.56, "test": 0.55},
        "encoders": {"random": {"val": scores(0.5), "test": scores(0.52)},
                     "simsiam": {"val": scores(0.6), "test": scores(simsiam_test)}},
    }  # fmt: skip


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> str:
    """The experiment's MLflow store: the SimSiam run's curves and each arm's validation mAP."""
    from mlflow.entities import Metric
    from mlflow.tracking import MlflowClient

    store = f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlruns.db'}"
    client = MlflowClient(store)
    experiment = client.create_experiment("centernet_detection")
    simsiam = client.create_run(experiment, run_name="simsiam").info.run_id
    # epoch 2 logged twice (a resumed run repeating it): the later value counts; epoch 3 has no z_std_ratio
    loss = [(1, 0.0, 1), (2, -0.3, 2), (2, -0.5, 5), (3, -0.8, 6)]
    client.log_batch(simsiam, metrics=[Metric("train_loss", v, t, e) for e, v, t in loss])
    client.log_batch(simsiam, metrics=[Metric("z_std_ratio", v, e, e) for e, v in ((1, 0.9), (2, 0.7))])
    for arm, values in VAL_MAP.items():
        run_id = client.create_run(experiment, run_name=arm).info.run_id
        client.log_batch(run_id, metrics=[Metric("val_mAP", v, 0, e) for e, v in enumerate(values, start=1)])
    return store


@pytest.fixture
def out(tmp_path: Path) -> Path:
    """A run folder of scripts/experiments/centernet_busi.sh with every step done."""
    run_dir = tmp_path / "run"
    for arm, (map_, ap50, ap75, f1, best) in FIGURES.items():
        (run_dir / arm / "eval_test").mkdir(parents=True)
        (run_dir / arm / "eval_test" / "metrics.json").write_text(json.dumps(_metrics(map_, ap50, ap75, f1)))
        (run_dir / arm / "checkpoints").mkdir()
        record = {"metric": "val_mAP", "value": map_ + 0.05, "epoch": best}
        (run_dir / arm / "checkpoints" / "best.json").write_text(json.dumps(record))
        chosen = {"score_threshold": {"threshold": 0.35, "f1": f1 + 0.01, "split": "val"}}
        (run_dir / arm / "checkpoints" / "best.score_threshold.json").write_text(json.dumps(chosen))
    (run_dir / "random_init" / "wall_s.json").write_text('{"seconds": 900, "resumed": false}')
    (run_dir / "simsiam").mkdir()
    (run_dir / "simsiam" / "wall_s.json").write_text('{"seconds": 1800, "resumed": true}')
    (run_dir / "knn_probe.json").write_text(json.dumps(_probe(0.66)))
    return run_dir


def _args(out: Path, store: str, *extra: str) -> list[str]:
    return [
        str(out), "--split", "configs/datasets/busi_splits_dedup.json", "--tracking_uri", store,
        "--spatial_size", "192",
        "--simsiam_spatial_size", "128", "--simsiam_epochs", "200", "--max_epochs", "80",
        "--early_stop_patience", "10", "--unfreeze_interval", "2", *extra,
    ]  # fmt: skip


def test_results_file_has_the_arms_probe_curves_and_targets(out, store, tmp_path, load_script) -> None:
    script = load_script("experiments/centernet_results.py")
    figure = tmp_path / "curves.png"
    report = script.main(_args(out, store, "--figure", str(figure)))
    assert json.loads((out / "busi.json").read_text()) == json.loads(json.dumps(report))
    assert report["split"] == "configs/datasets/busi_splits_dedup.json" and report["fold"] == 0
    assert report["images"] == {"train": 406, "val": 204, "test": 152} and report["test_lesions"] == 126
    assert list(report["arms"]) == list(FIGURES)
    progressive = report["arms"]["simsiam_progressive"]
    assert {k: progressive[k] for k in ("map", "ap50", "ap75", "f1", "f1_threshold", "threshold_split")} == {
        "map": 0.32, "ap50": 0.68, "ap75": 0.28, "f1": 0.72, "f1_threshold": 0.35, "threshold_split": "val"
    }  # fmt: skip
    assert progressive["precision"] == 0.8 and progressive["recall"] == 0.7
    assert progressive["val_f1"] == pytest.approx(0.73)  # the threshold's F1 on validation, which chose it
    assert progressive["confusion_matrix"]["labels"] == ["benign", "malignant", "None"]
    assert progressive["best_epoch"] == 15 and progressive["best_val_map"] == pytest.approx(0.37)
    assert [report["arms"][a]["epochs_trained"] for a in FIGURES] == [3, 2, 1, 0]
    assert report["arms"]["random_init"]["wall_s"] == {"seconds": 900, "resumed": False}
    assert "wall_s" not in report["arms"]["retinanet"]

    assert report["curves"]["simsiam"] == {"train_loss": [0.0, -0.5, -0.8], "z_std_ratio": [0.9, 0.7]}
    assert report["simsiam"] == {
        "epochs": 3,
        "train_loss": {"first": 0.0, "last": -0.8, "min": -0.8},
        "z_std_ratio": {"first": 0.9, "last": 0.7, "min": 0.7},
        "wall_s": {"seconds": 1800, "resumed": True},
    }
    assert report["curves"]["val_mAP"]["random_init"] == [0.1, 0.3, 0.2]
    assert report["knn_probe"]["encoders"]["simsiam"]["test"]["accuracy"] == 0.66
    assert report["targets"] == {
        "ap50_at_least": 0.7, "best_arm": "retinanet", "best_ap50": 0.72, "ap50_met": True,
        "simsiam_progressive_map": 0.32, "random_init_map": 0.3, "pretraining_met": True,
        "knn_test_accuracy": {"simsiam": 0.66, "random": 0.52}, "knn_met": True,
    }  # fmt: skip
    assert report["settings"] == {
        "spatial_size": 192, "simsiam_spatial_size": 128, "simsiam_epochs": 200, "max_epochs": 80,
        "early_stop_patience": 10, "unfreeze_interval": 2,
    }  # fmt: skip
    assert figure.stat().st_size > 0


def test_targets_not_met(out, store, load_script) -> None:
    script = load_script("experiments/centernet_results.py")
    metrics = out / "simsiam_progressive" / "eval_test" / "metrics.json"
    metrics.write_text(json.dumps(_metrics(0.1, 0.4, 0.05, 0.5)))
    for arm in ("retinanet", "random_init"):
        (out / arm / "eval_test" / "metrics.json").write_text(json.dumps(_metrics(0.3, 0.69, 0.2, 0.6)))
    (out / "knn_probe.json").write_text(json.dumps(_probe(0.52)))
    report = script.main(_args(out, store, "--results", str(out / "other.json"), "--limit", "40"))
    target = report["targets"]
    assert target["best_arm"] == "random_init" and target["best_ap50"] == 0.69  # the first of a tie
    assert not target["ap50_met"] and not target["pretraining_met"]
    assert not target["knn_met"]  # 0.52 is not above 0.52
    assert report["settings"]["limit"] == 40 and (out / "other.json").is_file()
    assert not (out / "busi.json").exists()


def test_missing_steps_are_named(out, store, load_script) -> None:
    script = load_script("experiments/centernet_results.py")
    (out / "knn_probe.json").unlink()
    with pytest.raises(SystemExit, match=r"run: no k-NN probe \(knn_probe.json\)"):
        script.main(_args(out, store))
    (out / "knn_probe.json").write_text(json.dumps(_probe(0.6)))
    (out / "retinanet" / "eval_test" / "metrics.json").unlink()
    with pytest.raises(SystemExit, match=r"retinanet/eval_test: no test evaluation"):
        script.main(_args(out, store))


def test_an_evaluation_whose_threshold_the_test_split_chose_is_refused(out, store, load_script) -> None:
    script = load_script("experiments/centernet_results.py")
    old = _metrics(0.3, 0.69, 0.2, 0.6)
    del old["threshold_split"]
    old["f1_threshold"] = {"threshold": 0.35, "f1": 0.6, "curve": [[0.35, 0.6]]}  # searched on test
    (out / "retinanet" / "eval_test" / "metrics.json").write_text(json.dumps(old))
    with pytest.raises(SystemExit, match=r"retinanet/eval_test: its score threshold was not chosen on the"):
        script.main(_args(out, store))


def test_renderer_tables_come_from_the_results_file(out, store, load_script) -> None:
    report = load_script("experiments/centernet_results.py").main(_args(out, store))
    table = load_script("render_results.py").centernet_busi(report)
    assert (
        "| CenterNet, SimSiam + progressive unfreezing | 0.320 | 0.680 | 0.280 | 0.100 | 0.400 | n/a | "
        "0.720 | 0.35 | 1 (15) | - |" in table
    )
    assert (
        "| CenterNet, random init | 0.300 | 0.650 | 0.250 | 0.100 | 0.400 | n/a | 0.700 | 0.35 | 3 (12) | "
        "900 s |" in table
    )
    assert "RetinaNet (MONAI), random init, 0.720, met" in table
    assert "random init mAP: 0.320 vs 0.300, met" in table
    assert "| SimSiam, 3 epochs | 0.600 | 0.500 | 0.660 | 0.560 |" in table
    assert "| random init | 0.500 | 0.400 | 0.520 | 0.420 |" in table
    assert "| majority class of the training images | 0.560 | 0.333 | 0.550 | 0.333 |" in table
    assert "its 20 nearest training images (the fold's 406, those SimSiam" in table
    assert "each vote weighing exp(s / 0.07)" in table
    assert "loss 0.000 → -0.800 (lowest -0.800" in table and "`z_std_ratio` 0.900 → 0.700" in table
    assert "1800 s (resumed: last part only)" in table
    assert "Confusion matrix, RetinaNet (MONAI), random init (IoU ≥ 0.25, score ≥ 0.35;" in table
    assert "| true \\ predicted | benign | malignant | None |" in table and "| None | 11 | 5 | 0 |" in table
    assert "| CenterNet, random init | malignant | 0.800 | 0.700 | 0.750 | 2 | 9 | 5 |" in table
    assert "Detectors at 192x192, at most 80 epochs, stopped after 10 validations" in table
    assert "Smoke run" not in table
    assert "](" not in table  # no figures in the docs below full budget


def test_full_budget_copies_the_figures_into_the_docs_and_the_readme_shows_them(
    out, store, tmp_path, load_script
) -> None:
    """--figures_dir (the driver's, at full budget): the curves drawn and each arm's overlays and confusion
    matrix copied into the bundle's docs/figures, recorded relative to docs/; the rendered block shows the
    curves and the best arm's figures and links the others'."""
    script, render = load_script("experiments/centernet_results.py"), load_script("render_results.py")
    for arm in FIGURES:
        for name in ("overlays", "confusion_matrix"):
            (out / arm / "eval_test" / f"{name}.png").write_bytes(f"{arm} {name}".encode())
    docs = tmp_path / "bundle" / "docs"
    with pytest.raises(SystemExit):  # one or the other: the curves go into the docs or elsewhere
        script.main(_args(out, store, "--figure", str(tmp_path / "c.png"), "--figures_dir", str(docs)))
    args = ["--results", str(docs / "results" / "busi.json"), "--figures_dir", str(docs / "figures")]
    report = script.main(_args(out, store, *args))
    assert report["figures"] == {"curves": "figures/busi_curves.png"}
    assert (docs / "figures" / "busi_curves.png").stat().st_size > 0
    for arm in FIGURES:
        assert report["arms"][arm]["figures"] == {
            "overlays": f"figures/busi_{arm}_overlays.png", "confusion": f"figures/busi_{arm}_confusion.png"
        }  # fmt: skip
        assert (
            docs / "figures" / f"busi_{arm}_confusion.png"
        ).read_bytes() == f"{arm} confusion_matrix".encode()
    assert json.loads((docs / "results" / "busi.json").read_text())["figures"] == report["figures"]
    assert not list(docs.rglob(".tmp*"))

    readme = docs / "README.md"
    readme.write_text("# x\n<!-- results:centernet_busi -->\n<!-- /results:centernet_busi -->\n")
    text = render.render(readme)
    assert "![SimSiam and validation curves](figures/busi_curves.png)" in text
    assert "RetinaNet (MONAI), random init (the best AP50), confusion matrix:" in text
    assert "![confusion matrix, RetinaNet (MONAI), random init](figures/busi_retinanet_confusion.png)" in text
    assert "![test overlays, RetinaNet (MONAI), random init](figures/busi_retinanet_overlays.png)" in text
    assert (
        "CenterNet, random init: [test overlays](figures/busi_random_init_overlays.png), "
        "[confusion matrix](figures/busi_random_init_confusion.png)" in text
    )
    (out / "simsiam_frozen" / "eval_test" / "overlays.png").unlink()
    with pytest.raises(FileNotFoundError, match="simsiam_frozen/eval_test/overlays.png: no such figure"):
        script.main(_args(out, store, *args))
