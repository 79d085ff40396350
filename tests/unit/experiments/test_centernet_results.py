"""monai_xai.experiments.centernet_busi: the leak-free BUSI detection results file, intervals and renderer.

The arms' test evaluations are synthetic boxes on twelve images (four normal, four benign, four malignant),
scored by the library's own :func:`detection_report`, so that the collector's recomputation from the per-image
records must agree with ``metrics.json``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from monai_xai.errors import InputError
from monai_xai.experiments import centernet_busi as cn
from monai_xai.experiments.results import verdict
from monai_xai.metrics.detection import coco_detection_metrics, detection_report, detection_scores_at

CLASSES = ["benign", "malignant"]
THRESHOLD, IOU = 0.35, 0.25
N_BOOT = 40
#: per-epoch val mAP of each arm's MLflow run (its length: the epochs trained)
VAL_MAP = {
    "random_init": [0.1, 0.3, 0.2],
    "simsiam_frozen": [0.2, 0.1],
    "simsiam_progressive": [0.3],
    "retinanet": [],
}
COMMITTED = json.loads(cn.BLOCKS["centernet_busi"].path.read_text())


def _images() -> list[dict]:
    """Twelve 64x64 images: four without a lesion, four with a benign one, four with a malignant one."""
    images = []
    for i in range(12):
        cls = [None, 0, 1][i // 4]
        box = [[8.0 + i, 10.0, 30.0 + i, 34.0]] if cls is not None else []
        images.append({"source": f"img{i:02d}.png", "boxes": np.array(box).reshape(-1, 4), "labels": cls})
    return images


def _detections(quality: str, seed: int) -> list[dict]:
    """Per-image predictions: ``perfect`` (each lesion boxed exactly, right class, nothing else), ``mid``
    (half the lesions, a false box elsewhere) or ``poor`` (boxes beside the lesions, false boxes)."""
    rng = np.random.default_rng(seed)
    out = []
    for i, image in enumerate(_images()):
        boxes, scores, labels = [], [], []
        if image["labels"] is not None:
            lesion = image["boxes"][0]
            if quality == "perfect" or (quality == "mid" and i % 2 == 0):
                boxes.append(lesion)
                scores.append(0.9)
                labels.append(image["labels"])
            elif quality == "poor":
                boxes.append(lesion + [20.0, 20.0, 20.0, 20.0])
                scores.append(0.8)
                labels.append(image["labels"])
        if quality != "perfect" and i % 3 == 0:
            boxes.append([40.0, 40.0, 60.0, 60.0])
            scores.append(float(rng.uniform(0.3, 0.95)))
            labels.append(int(rng.integers(0, 2)))
        out.append({
            "boxes": np.array(boxes, dtype=np.float64).reshape(-1, 4),
            "scores": np.array(scores, dtype=np.float64),
            "labels": np.array(labels, dtype=np.int64),
        })  # fmt: skip
    return out


def _targets() -> list[dict]:
    return [
        {
            "boxes": im["boxes"],
            "labels": np.array([] if im["labels"] is None else [im["labels"]], dtype=np.int64),
        }
        for im in _images()
    ]


def _records(predictions: list[dict]) -> list[dict]:
    """``predictions.json`` as the evaluation must write it (:data:`cn.RECORD_KEYS`)."""
    return [
        {
            "source": image["source"],
            "boxes": p["boxes"].tolist(),
            "scores": p["scores"].tolist(),
            "classes": [CLASSES[int(c)] for c in p["labels"]],
            "target_boxes": t["boxes"].tolist(),
            "target_classes": [CLASSES[int(c)] for c in t["labels"]],
        }
        for image, p, t in zip(_images(), predictions, _targets())
    ]


def _evaluate(arm_dir: Path, quality: str, seed: int) -> None:
    """An arm's ``eval_test`` as ``DetectionReportHandler`` writes it (threshold chosen on validation)."""
    predictions = _detections(quality, seed)
    metrics = detection_report(
        predictions, _targets(), CLASSES, IOU, score_threshold=THRESHOLD, threshold_split="val"
    )
    (arm_dir / "eval_test").mkdir(parents=True, exist_ok=True)
    (arm_dir / "eval_test" / "metrics.json").write_text(json.dumps(metrics))
    (arm_dir / "eval_test" / "predictions.json").write_text(json.dumps(_records(predictions)))


def _probe(simsiam_ahead: bool) -> dict:
    """A k-NN probe file as :mod:`knn_probe` writes it: the SimSiam encoder right on 8 more test images than
    the random one (``simsiam_ahead``), or on the same ones."""
    from monai_xai.experiments import knn_probe

    rng = np.random.default_rng(0)
    knn_probe_classes = ["normal", "benign", "malignant"]
    labels = {part: rng.integers(0, 3, 60).tolist() for part in knn_probe.EVAL_PARTS}
    random = {part: [(y + 1) % 3 if i % 2 else y for i, y in enumerate(ys)] for part, ys in labels.items()}
    simsiam = {part: list(ys) for part, ys in random.items()}
    if simsiam_ahead:
        simsiam["test"] = [y if i < 16 else p for i, (y, p) in enumerate(zip(labels["test"], random["test"]))]
    return {
        "split": "configs/datasets/busi_splits_dedup.json", "fold": 0,
        "class_names": ["normal", "benign", "malignant"], "images": {"train": 406, "val": 60, "test": 60},
        "spatial_size": [128, 128], "k": 20, "temperature": 0.07, "features": "layer4",
        "majority_class_rate": {"val": 0.56, "test": 0.55},
        **knn_probe.summary(labels, {"random": random, "simsiam": simsiam}, knn_probe_classes, 200),
    }  # fmt: skip


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> str:
    """The experiment's MLflow store: the SimSiam run's curves, each arm's validation mAP, logged settings."""
    from mlflow.entities import Metric, Param
    from mlflow.tracking import MlflowClient

    store = f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlruns.db'}"
    client = MlflowClient(store)
    experiment = client.create_experiment("centernet_detection")
    simsiam = client.create_run(experiment, run_name="simsiam").info.run_id
    # epoch 2 logged twice (a resumed run repeating it): the later value counts; epoch 3 has no z_std_ratio
    loss = [(1, 0.0, 1), (2, -0.3, 2), (2, -0.5, 5), (3, -0.8, 6)]
    client.log_batch(simsiam, metrics=[Metric("train_loss", v, t, e) for e, v, t in loss])
    client.log_batch(simsiam, metrics=[Metric("z_std_ratio", v, e, e) for e, v in ((1, 0.9), (2, 0.7))])
    client.log_batch(simsiam, params=[Param("max_epochs", "200")])
    for arm, values in VAL_MAP.items():
        run_id = client.create_run(experiment, run_name=arm).info.run_id
        client.log_batch(run_id, metrics=[Metric("val_mAP", v, 0, e) for e, v in enumerate(values, start=1)])
        client.log_batch(run_id, params=[Param("max_epochs", "80"), Param("unfreeze_interval", "2")])
    return store


def _timed(run_dir: Path, step: str, seconds: float, resumed: bool = False) -> None:
    """An attempt of a step as the step runner records it in runtime.jsonl."""
    attempt = {"step": step, "status": "done", "seconds": seconds, "resumed": resumed}
    attempt |= {"started": "2025-01-01 00:00:00", "finished": "2025-01-01 01:00:00", "digest": "sha256:0"}
    with (run_dir / "runtime.jsonl").open("a") as lines:
        lines.write(json.dumps({**attempt, "run_dir": str(run_dir / step)}) + "\n")


def _trained_with(arm_dir: Path, patience: str | None) -> None:
    """The training step's done record, its command with ``--early_stop_patience`` (None: a folder from
    before the step runner, without one)."""
    if patience is None:
        (arm_dir / "step_done.json").unlink(missing_ok=True)
        return
    command = ["python", "-m", "monai.bundle", "run", "--max_epochs", "80", "--early_stop_patience", patience]
    (arm_dir / "step_done.json").write_text(json.dumps({"step": f"{arm_dir.name}/train", "command": command}))


def _run_dir(
    root: Path, quality: dict[str, str], simsiam_ahead: bool = True, limit: int | None = None
) -> Path:
    """A run folder of ``centernet_busi run`` with every step done."""
    run_dir = root / "run"
    for seed, arm in enumerate(cn.ARMS):
        _evaluate(run_dir / arm, quality[arm], seed)
        (run_dir / arm / "checkpoints").mkdir()
        record = {"metric": "val_mAP", "value": 0.4, "epoch": 10 + seed}
        (run_dir / arm / "checkpoints" / "best.json").write_text(json.dumps(record))
        chosen = {"score_threshold": {"threshold": THRESHOLD, "f1": 0.61, "split": "val"}}
        (run_dir / arm / "checkpoints" / "best.score_threshold.json").write_text(json.dumps(chosen))
        identity = {"network": {"spatial_size": [192, 192]}, "data": {"limit": limit}}
        (run_dir / arm / "run.json").write_text(json.dumps({"identity": identity}))
        _trained_with(run_dir / arm, "10")
    _timed(run_dir, "random_init/train", 600.0)
    _timed(run_dir, "random_init/evaluate", 300.0)
    (run_dir / "simsiam").mkdir()
    _timed(run_dir, "simsiam", 1800.0, resumed=True)
    identity = {"network": {"spatial_size": [128, 128]}, "data": {"limit": limit}}
    (run_dir / "simsiam" / "run.json").write_text(json.dumps({"identity": identity}))
    (run_dir / "knn_probe.json").write_text(json.dumps(_probe(simsiam_ahead)))
    return run_dir


GOOD = {"random_init": "mid", "simsiam_frozen": "poor", "simsiam_progressive": "perfect", "retinanet": "mid"}


@pytest.fixture
def out(tmp_path: Path) -> Path:
    return _run_dir(tmp_path, GOOD)


def _args(out: Path, store: str, *extra: str) -> list[str]:
    return ["collect", str(out), "--tracking_uri", store, "--n_boot", str(N_BOOT), *extra]


# ------------------------------------------------------------------------------------------ per image


def test_arm_images_recompute_ap_and_f1_on_any_resample() -> None:
    """AP from per-image matches equals the library's COCO AP on the same (resampled) images, F1 equals
    detection_scores_at: the bootstrap resamples what the evaluation measured."""
    predictions, targets = _detections("mid", 3), _targets()
    arm = cn.ArmImages(_records(predictions), CLASSES, THRESHOLD, IOU)
    assert arm.n == 12 and arm.strata.tolist() == [-1] * 4 + [0] * 4 + [1] * 4
    for idx in (np.arange(12), np.array([0, 4, 4, 5, 8, 9, 9, 9, 11, 2, 6, 10])):
        coco = coco_detection_metrics([predictions[i] for i in idx], [targets[i] for i in idx], CLASSES)
        assert arm.ap(idx) == pytest.approx({"mAP": coco["mAP"], "AP50": coco["AP50"]}, abs=1e-12)
        at = detection_scores_at([predictions[i] for i in idx], [targets[i] for i in idx], 2, THRESHOLD, IOU)
        assert arm.f1(idx) == pytest.approx(at["f1"])
    assert 0.0 < arm.ap(np.arange(12))["AP50"] < 1.0  # a figure that can move
    assert np.isnan(arm.ap(np.arange(4))["mAP"])  # no lesion among the images: undefined, not zero


def test_intervals_and_the_paired_difference() -> None:
    perfect = cn.ArmImages(_records(_detections("perfect", 0)), CLASSES, THRESHOLD, IOU)
    mid = cn.ArmImages(_records(_detections("mid", 1)), CLASSES, THRESHOLD, IOU)
    figures = cn.arm_intervals(mid, n_boot=N_BOOT)
    for key in ("map", "ap50", "f1"):
        low, high = figures[key]["ci95"]
        assert low <= figures[key]["mean"] <= high and low < high and figures[key]["n"] == 12
    assert cn.arm_intervals(perfect, n_boot=N_BOOT)["ap50"] == {"mean": 1.0, "ci95": [1.0, 1.0], "n": 12}
    difference = cn.map_difference(perfect, mid, n_boot=N_BOOT)
    assert difference["mean"] == pytest.approx(1.0 - mid.ap(np.arange(12))["mAP"])
    assert difference["ci95"][0] > 0  # the perfect arm is ahead on every resample
    # the same images in another order pair up by source
    shuffled = _records(_detections("mid", 1))[::-1]
    again = cn.map_difference(perfect, cn.ArmImages(shuffled, CLASSES, THRESHOLD, IOU), n_boot=N_BOOT)
    assert again["mean"] == pytest.approx(difference["mean"])
    other = _records(_detections("mid", 1))
    other[0]["source"] = "elsewhere.png"
    with pytest.raises(ValueError, match="not evaluated on the same images"):
        cn.map_difference(perfect, cn.ArmImages(other, CLASSES, THRESHOLD, IOU), n_boot=N_BOOT)


# ------------------------------------------------------------------------------------------ collector


def test_results_file_has_intervals_the_declared_arm_and_recorded_settings(out, store, tmp_path) -> None:
    figure = tmp_path / "curves.png"
    destination = tmp_path / "busi.json"
    assert cn.main(_args(out, store, "--out", str(destination), "--figure", str(figure))) == 0
    report = json.loads(destination.read_text())
    assert report["split"] == "configs/datasets/busi_splits_dedup.json" and report["fold"] == 0
    assert report["threshold_split"] == "val" and report["n_boot"] == N_BOOT
    assert report["test_lesions"] == 8 and list(report["arms"]) == list(cn.ARMS)
    for name, arm in report["arms"].items():
        metrics = json.loads((out / name / "eval_test" / "metrics.json").read_text())
        for key, recorded in (("map", metrics["coco"]["mAP"]), ("ap50", metrics["coco"]["AP50"])):
            assert arm[key]["mean"] == pytest.approx(recorded) and arm[key]["n"] == 12
        assert arm["f1"]["mean"] == pytest.approx(metrics["f1_threshold"]["f1"])
        assert arm["threshold_split"] == "val" and arm["f1_threshold"] == THRESHOLD
    progressive = report["arms"]["simsiam_progressive"]
    assert progressive["ap50"] == {"mean": 1.0, "ci95": [1.0, 1.0], "n": 12}
    assert progressive["val_f1"] == 0.61 and progressive["best_epoch"] == 12
    assert [report["arms"][a]["epochs_trained"] for a in cn.ARMS] == [3, 2, 1, 0]
    # wall times from the step runner's runtime.jsonl: an arm's training and evaluation together
    assert report["arms"]["random_init"]["wall_s"] == {"seconds": 900, "resumed": False}
    assert "wall_s" not in report["arms"]["retinanet"]
    assert report["wall_time"]["steps"]["simsiam"]["seconds"] == 1800

    target = report["targets"]
    assert target["judged_arm"] == "simsiam_progressive" and target["ap50"] == progressive["ap50"]
    assert target["ap50_verdict"] == "met"
    map_gap = progressive["map"]["mean"] - report["arms"]["random_init"]["map"]["mean"]
    assert target["map_difference"]["mean"] == pytest.approx(map_gap)
    assert target["pretraining_verdict"] == verdict(target["map_difference"], 0.0) == "met"
    assert target["knn_test_accuracy_difference"]["mean"] == pytest.approx(16 / 60 * 0.5, abs=0.1)
    assert target["knn_verdict"] == "met"
    assert "predictions" not in report["knn_probe"]  # per-image rows stay in the run folder

    assert report["curves"]["simsiam"] == {"train_loss": [0.0, -0.5, -0.8], "z_std_ratio": [0.9, 0.7]}
    assert report["simsiam"] == {
        "epochs": 3,
        "train_loss": {"first": 0.0, "last": -0.8, "min": -0.8},
        "z_std_ratio": {"first": 0.9, "last": 0.7, "min": 0.7},
        "wall_s": {"seconds": 1800, "resumed": True},
    }
    assert report["settings"] == {
        "spatial_size": 192, "simsiam_spatial_size": 128, "simsiam_epochs": 200, "max_epochs": 80,
        "unfreeze_interval": 2, "early_stop_patience": 10,
    }  # fmt: skip
    assert figure.stat().st_size > 0


def test_the_target_is_judged_on_the_declared_arm_not_the_best_one(tmp_path, store) -> None:
    """RetinaNet is perfect, the declared arm poor: the AP50 target is missed, whatever the best arm did."""
    quality = {**GOOD, "simsiam_progressive": "poor", "retinanet": "perfect"}
    out = _run_dir(tmp_path, quality, simsiam_ahead=False, limit=40)
    cn.main(_args(out, store, "--out", str(tmp_path / "other.json")))
    report = json.loads((tmp_path / "other.json").read_text())
    target = report["targets"]
    assert report["arms"]["retinanet"]["ap50"]["mean"] == 1.0
    assert target["ap50"]["ci95"][1] < 0.70 and target["ap50_verdict"] == "missed"
    assert target["pretraining_verdict"] == "missed"  # poor is behind mid on every resample
    assert target["knn_test_accuracy_difference"]["mean"] == 0.0
    assert target["knn_verdict"] == "not distinguishable at this n"
    assert report["settings"]["limit"] == 40


def test_missing_steps_and_old_evaluations_are_named(out, store, tmp_path) -> None:
    args = _args(out, store, "--out", str(tmp_path / "x.json"))
    (out / "knn_probe.json").rename(out / "probe.bak")
    with pytest.raises(InputError, match=r"run: no k-NN probe \(knn_probe.json\)"):
        cn.main(args)
    old_probe = {k: v for k, v in _probe(True).items() if k not in ("difference", "predictions")}
    (out / "knn_probe.json").write_text(json.dumps(old_probe))
    with pytest.raises(InputError, match="an older probe"):
        cn.main(args)
    (out / "probe.bak").rename(out / "knn_probe.json")

    records = out / "retinanet" / "eval_test" / "predictions.json"
    old = [
        {k: v for k, v in r.items() if not k.startswith("target_")} for r in json.loads(records.read_text())
    ]
    records.write_text(json.dumps(old))  # what DetectionReportHandler writes today: no ground truth per image
    with pytest.raises(InputError, match="lack target_boxes, target_classes"):
        cn.main(args)
    _evaluate(out / "retinanet", "mid", 3)

    metrics = out / "simsiam_frozen" / "eval_test" / "metrics.json"
    recorded = json.loads(metrics.read_text())
    metrics.write_text(json.dumps({**recorded, "coco": {**recorded["coco"], "AP50": 0.123}}))
    with pytest.raises(InputError, match="predictions.json gives AP50 .* but metrics.json 0.123000"):
        cn.main(args)
    searched_on_test = {k: v for k, v in recorded.items() if k != "threshold_split"}
    metrics.write_text(json.dumps(searched_on_test))
    with pytest.raises(InputError, match=r"simsiam_frozen/eval_test: its score threshold was not chosen on"):
        cn.main(args)


def test_the_patience_is_read_back_from_the_training_steps(out, store, tmp_path) -> None:
    """The runs do not log the early-stopping patience; the training steps' done records hold the command."""
    args = _args(out, store, "--out", str(tmp_path / "x.json"))
    with pytest.raises(InputError, match="trained with early_stop_patience 10, not 5"):
        cn.main([*args, "--early_stop_patience", "5"])
    _trained_with(out / "retinanet", "3")
    with pytest.raises(InputError, match="different early_stop_patience"):
        cn.main(args)
    for arm in cn.ARMS:  # a run folder from before the step runner: the patience must be given
        _trained_with(out / arm, None)
    with pytest.raises(InputError, match="give --early_stop_patience"):
        cn.main(args)
    cn.main([*args, "--early_stop_patience", "0"])
    assert json.loads((tmp_path / "x.json").read_text())["settings"]["early_stop_patience"] == 0


# ------------------------------------------------------------------------------------------ run


def _option(step, key: str) -> str:
    return step.argv[step.argv.index(f"--{key}") + 1]


@pytest.fixture
def recorded(monkeypatch) -> dict[str, list]:
    """``run`` with no step run (the runner's ``run`` records the steps), no collecting and no writing."""
    from monai_xai.experiments import runner

    calls: dict[str, list] = {"steps": [], "results": [], "written": []}
    monkeypatch.setattr(runner.StepRunner, "run", lambda self, step: calls["steps"].append(step))

    def results(out, tracking_uri, early_stop_patience=None, n_boot=2000):
        calls["results"].append((out, tracking_uri, early_stop_patience, n_boot))
        return {"stub": True}

    monkeypatch.setattr(cn, "results", results)
    monkeypatch.setattr(cn, "write_report", lambda report, args: calls["written"].append((report, args)))
    return calls


def test_run_converts_pretrains_probes_then_trains_and_evaluates_each_arm(tmp_path, recorded) -> None:
    out, data = tmp_path / "smoke", tmp_path / "busi"
    smoke = [
        "run", "--run_dir", str(out), "--size", "64", "--simsiam_size", "64", "--simsiam_epochs", "1",
        "--max_epochs", "1", "--early_stop_patience", "1", "--unfreeze_interval", "3", "--limit", "40",
        "--data", str(data), "--extra", "--learning_rate 0.001",
    ]  # fmt: skip
    assert cn.main(smoke) == 0
    steps = {step.name: step for step in recorded["steps"]}
    arm_steps = [f"{arm}/{kind}" for arm in cn.ARMS for kind in ("train", "evaluate")]
    assert list(steps) == ["data", "simsiam", "knn_probe", *arm_steps]
    assert len({step.run_dir for step in steps.values()}) == len(steps)  # a folder each

    data_step = steps["data"]
    assert data_step.argv[1] == "scripts/make_coco_from_masks.py" and data_step.run_dir == out / "data"
    assert _option(data_step, "split_file") == "configs/datasets/busi_splits_dedup.json"
    assert (
        _option(data_step, "csv") == str(data / "labels.csv") and _option(data_step, "dedup_distance") == "-1"
    )
    coco = out / "data" / "boxes_coco.json"
    assert _option(data_step, "out") == str(coco) and "--learning_rate" not in data_step.argv

    store = f"sqlite:///{out}/mlruns.db"
    simsiam = steps["simsiam"]
    assert _option(simsiam, "config_file") == "['bundles/centernet_detection/configs/pretrain_simsiam.json']"
    for key, value in (
        ("spatial_size", "[64, 64]"), ("max_epochs", "1"), ("run_name", "simsiam"), ("limit", "40"),
        ("learning_rate", "0.001"), ("tracking_uri", store), ("fold", "0"), ("num_workers", "2"),
        ("dataset", "busi_dedup"), ("coco_file", str(coco)), ("image_dir", str(data)),
        ("split_file", str(out / "data" / "boxes_coco.splits.json")), ("output_dir", str(out / "simsiam")),
    ):  # fmt: skip
        assert _option(simsiam, key) == value, key
    assert set(simsiam.inputs) == {coco, out / "data" / "boxes_coco.splits.json"}

    probe = steps["knn_probe"]
    encoder = out / "simsiam" / "encoder.pt"
    assert probe.argv[1:4] == ("-m", "monai_xai.experiments", "knn_probe") and encoder in probe.inputs
    for key, value in (
        ("encoder", str(encoder)), ("spatial_size", "64"), ("k", "20"), ("limit", "40"),
        ("out", str(out / "knn_probe.json")), ("fold", "0"),
    ):  # fmt: skip
        assert _option(probe, key) == value, key

    progressive, random_init = steps["simsiam_progressive/train"], steps["random_init/train"]
    assert (
        _option(progressive, "freeze_policy") == "progressive_epochs"
        and _option(progressive, "init") == "simsiam"
    )
    assert _option(progressive, "unfreeze_interval") == "3" and encoder in progressive.inputs
    assert _option(random_init, "init") == "random" and _option(random_init, "freeze_policy") == "all"
    assert "--unfreeze_interval" not in random_init.argv and encoder not in random_init.inputs
    assert _option(steps["simsiam_frozen/train"], "freeze_policy") == "frozen"
    for arm in cn.ARMS:
        train, evaluate = steps[f"{arm}/train"], steps[f"{arm}/evaluate"]
        for key, value in (
            ("spatial_size", "[64, 64]"), ("max_epochs", "1"), ("early_stop_patience", "1"),
            ("run_name", arm), ("output_dir", str(out / arm)), ("model_dir", str(out / arm / "models")),
            ("pretrain_dir", str(out / "simsiam")), ("learning_rate", "0.001"), ("limit", "40"),
        ):  # fmt: skip
            assert _option(train, key) == value, (arm, key)
        configs = _option(train, "config_file")
        assert (
            _option(evaluate, "config_file")
            == configs[:-1] + ",'bundles/centernet_detection/configs/evaluate.json']"
        )
        assert [t for t in train.argv if t != configs] == [
            t for t in evaluate.argv if t != _option(evaluate, "config_file")
        ]
        assert train.run_dir == out / arm and evaluate.run_dir == out / arm / "eval_test"
        assert out / arm / "checkpoints" / "best.pt" in evaluate.inputs  # the checkpoint it evaluates
    assert "retinanet.json" in _option(steps["retinanet/train"], "config_file")
    assert "retinanet.json" not in _option(steps["random_init/train"], "config_file")

    assert recorded["results"] == [(out, store, None, 2000)]  # the patience is read back from the steps
    report, args = recorded["written"][0]
    assert report == {"stub": True} and not args.publish
    assert (args.out, args.figure, args.tables) == (
        out / "busi.json",
        out / "busi_curves.png",
        out / "tables.md",
    )


def test_run_publishes_only_at_the_full_budget(tmp_path, recorded) -> None:
    smoke = ["run", "--run_dir", str(tmp_path / "smoke"), "--size", "64", "--limit", "40", "--publish"]
    with pytest.raises(InputError, match=r"full budget .*--size 64 < 192, --limit 40$"):
        cn.main(smoke)
    with pytest.raises(InputError, match="--early_stop_patience 0"):
        cn.main(["run", "--run_dir", str(tmp_path / "x"), "--early_stop_patience", "0", "--publish"])
    with pytest.raises(InputError, match="--extra"):
        cn.main(["run", "--run_dir", str(tmp_path / "x"), "--extra", "--learning_rate 0.01", "--publish"])
    with pytest.raises(InputError, match="busi_splits.json is not"):
        cn.main(["run", "--split_file", "configs/datasets/busi_splits.json", "--publish"])
    with pytest.raises(InputError, match="--extra sets max_epochs, which the run sets itself"):
        cn.main(["run", "--run_dir", str(tmp_path / "x"), "--extra", "--max_epochs 3"])
    assert recorded["steps"] == []  # refused before any step
    assert cn.main(["run", "--run_dir", str(tmp_path / "full"), "--publish"]) == 0
    report, args = recorded["written"][0]
    assert args.publish and args.out is None and args.figure is None
    assert _option(recorded["steps"][-1], "early_stop_patience") == "10"


def test_a_step_whose_outputs_are_stale_is_done_again(out, tmp_path, recorded) -> None:
    """The runner skips a step by its command; an evaluation whose threshold the test split chose, or whose
    records lack the ground truth, and a probe without its paired differences are done again."""
    (out / "data").mkdir()
    (out / "data" / "boxes_coco.splits.json").write_text("{}")
    (out / "simsiam" / "encoder.pt").write_bytes(b"weights")
    names = [
        "data",
        "simsiam",
        "knn_probe",
        *(f"{arm}/{kind}" for arm in cn.ARMS for kind in ("train", "evaluate")),
    ]
    assert [cn.stale_output(name, out) for name in names] == [None] * len(names)
    metrics = out / "simsiam_frozen" / "eval_test" / "metrics.json"
    metrics.write_text(
        json.dumps({k: v for k, v in json.loads(metrics.read_text()).items() if k != "threshold_split"})
    )
    records = out / "retinanet" / "eval_test" / "predictions.json"
    old = [{k: v for k, v in r.items() if k != "target_boxes"} for r in json.loads(records.read_text())]
    records.write_text(json.dumps(old))
    probe = out / "knn_probe.json"
    probe.write_text(
        json.dumps({k: v for k, v in json.loads(probe.read_text()).items() if k != "difference"})
    )
    assert "validation split" in cn.stale_output("simsiam_frozen/evaluate", out)
    assert "target_boxes" in cn.stale_output("retinanet/evaluate", out)
    assert cn.stale_output("knn_probe", out) == "no paired differences"

    folders = [out / "data", out / "simsiam", out / "knn_probe", *(out / arm for arm in cn.ARMS)]
    folders += [out / arm / "eval_test" for arm in cn.ARMS]
    (out / "knn_probe").mkdir()
    for folder in folders:
        (folder / "step_done.json").write_text("{}")
    cn.main(["run", "--run_dir", str(out), "--out", str(tmp_path / "x.json")])
    redone = {folder for folder in folders if not (folder / "step_done.json").exists()}
    assert redone == {
        out / "knn_probe",
        out / "simsiam_frozen" / "eval_test",
        out / "retinanet" / "eval_test",
    }
    assert len(recorded["steps"]) == 11  # the runner gets every step: it skips those still done


def test_output_goes_into_the_docs_only_with_publish(out, store, tmp_path) -> None:
    with pytest.raises(InputError, match="give --out <results.json>, or --publish"):
        cn.main(_args(out, store))
    docs_figures = cn.REPO / "bundles" / "centernet_detection" / "docs" / "figures"
    with pytest.raises(InputError, match="figures go into a bundle's docs only with --publish"):
        cn.main(_args(out, store, "--out", str(tmp_path / "x.json"), "--figures_dir", str(docs_figures)))
    with pytest.raises(SystemExit):  # one or the other: the curves go into the docs or elsewhere
        cn.parse_args(_args(out, store, "--figure", "c.png", "--figures_dir", str(tmp_path)))


def test_figures_are_copied_and_the_block_shows_the_judged_arms(out, store, tmp_path) -> None:
    for arm in cn.ARMS:
        for name in ("overlays", "confusion_matrix"):
            (out / arm / "eval_test" / f"{name}.png").write_bytes(f"{arm} {name}".encode())
    docs = tmp_path / "bundle" / "docs"
    args = ["--out", str(docs / "results" / "busi.json"), "--figures_dir", str(docs / "figures")]
    cn.main(_args(out, store, *args, "--tables", str(tmp_path / "tables.md")))
    report = json.loads((docs / "results" / "busi.json").read_text())
    assert report["figures"] == {"curves": "figures/busi_curves.png"}
    assert (docs / "figures" / "busi_curves.png").stat().st_size > 0
    for arm in cn.ARMS:
        assert report["arms"][arm]["figures"] == {
            "overlays": f"figures/busi_{arm}_overlays.png", "confusion": f"figures/busi_{arm}_confusion.png"
        }  # fmt: skip
        assert (
            docs / "figures" / f"busi_{arm}_confusion.png"
        ).read_bytes() == f"{arm} confusion_matrix".encode()
    assert not list(docs.rglob(".*.tmp"))
    table = (tmp_path / "tables.md").read_text()
    assert table == cn.render(report)
    for link in re.findall(r"\]\(([^)]+)\)", table):
        assert (docs / link).is_file(), link
    label = "CenterNet, SimSiam + progressive unfreezing"
    assert f"{label} (the judged arm), confusion matrix:" in table
    assert f"![test overlays, {label}](figures/busi_simsiam_progressive_overlays.png)" in table
    assert "CenterNet, random init: [test overlays](figures/busi_random_init_overlays.png)" in table
    (out / "simsiam_frozen" / "eval_test" / "overlays.png").unlink()
    with pytest.raises(FileNotFoundError, match="simsiam_frozen/eval_test/overlays.png: no such figure"):
        cn.main(_args(out, store, *args))


# ------------------------------------------------------------------------------------------ rendering


def test_renderer_prints_intervals_and_verdicts(out, store, tmp_path) -> None:
    cn.main(_args(out, store, "--out", str(tmp_path / "busi.json")))
    report = json.loads((tmp_path / "busi.json").read_text())
    table = cn.render(report)
    assert (
        "| CenterNet, SimSiam + progressive unfreezing | 1.000 [1.000, 1.000] | 1.000 [1.000, 1.000] |"
        in table
    )
    random_init = report["arms"]["random_init"]
    low, high = random_init["map"]["ci95"]
    assert f"| CenterNet, random init | {random_init['map']['mean']:.3f} [{low:.3f}, {high:.3f}] |" in table
    assert "| 3 (10) | 900 s |" in table
    assert "test AP50 ≥ 0.70: 1.000 [1.000, 1.000], met;" in table
    assert "paired difference" in table
    assert "F1-optimal one on the validation split, applied unchanged to the test set" in table
    assert f"bootstrap over the 12 test images stratified by image class ({N_BOOT} resamples)" in table
    assert "| SimSiam - random, paired |" in table
    assert "loss 0.000 → -0.800 (lowest -0.800" in table and "`z_std_ratio` 0.900 → 0.700" in table
    assert "1800 s (resumed: last part only)" in table
    assert "| true \\ predicted | benign | malignant | None |" in table
    assert "Detectors at 192x192, at most 80 epochs, stopped after 10 validations" in table
    assert "Smoke run" not in table and "](" not in table  # no figures in the docs below full budget


def test_the_committed_file_renders_without_saying_met() -> None:
    """busi.json as committed predates the intervals: its figures print bare and no target is met."""
    table = cn.render(COMMITTED)
    assert "| CenterNet, random init | 0.324 | 0.678 | 0.270 |" in table
    targets = next(line for line in table.splitlines() if line.startswith("Targets"))
    assert targets.count("no interval (re-run pending)") == 3 and not re.search(r", met[;.]", targets)
    assert "test AP50 ≥ 0.70: 0.628" in targets  # the declared arm's, not the best arm's 0.678
    assert "searched on the test set" in table and "No intervals in this file" in table
    assert "(the judged arm), test overlays" in table


def test_eval_metrics_of_the_committed_file_match_the_metadata() -> None:
    metadata = json.loads((cn.REPO / "bundles/centernet_detection/configs/metadata.json").read_text())
    derived = cn.EVAL_METRICS[cn.PUBLISHED](COMMITTED)
    assert len(derived) == 4 and all(metadata["eval_metrics"][key] == entry for key, entry in derived.items())
    with_intervals = {**COMMITTED, "arms": {"random_init": {**COMMITTED["arms"]["random_init"]}}}
    with_intervals["arms"]["random_init"]["ap50"] = {"mean": 0.67764, "ci95": [0.61234, 0.74], "n": 152}
    entry = cn.eval_metrics(with_intervals)["busi_leakfree_192px_test_random_init"]
    assert entry["ap50"] == 0.6776 and entry["ap50_ci95"] == [0.6123, 0.74] and "map_ci95" not in entry


def test_blocks_render_their_committed_files() -> None:
    for name, block in cn.BLOCKS.items():
        assert block.render(json.loads(block.path.read_text())), name
