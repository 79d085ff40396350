"""The AG-CycleGAN bundle end to end through ``monai.bundle.run`` on real data at smoke size, under torchrun
on CPU, and as a model-zoo user gets it: a copy of its folder outside the repository.

MONAI's ``verify_net_in_out`` calls ``network(x)``; the GAN translates with ``translate(x, source)``, so the
same check (network built from the copy's ``inference.json``, fake input from the metadata) is done here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from bundle_support import copy_bundle, inference_parser, tensor_shape

NAME = "agcyclegan_explainer"
REPO = Path(__file__).resolve().parents[2]
CONFIGS = REPO / "bundles" / NAME / "configs"
SMOKE = {
    "max_epochs": 1,
    "gan_epochs": 1,
    "batch_size": 4,
    "gan_batch_size": 4,
    "val_batch_size": 8,
    "num_workers": 0,
    "limit": 8,
    "decoder_widths": [4, 4, 8, 8, 8],
    "disc_channels": [8, 16],
}

TINY = {"decoder_widths": [4, 4, 8, 8, 8], "num_workers": 0}


def run_bundle(*configs: str, **overrides):
    from monai.bundle import run

    return run(
        config_file=[str(CONFIGS / f"{c}.json") for c in configs],
        meta_file=str(CONFIGS / "metadata.json"),
        logging_file=str(CONFIGS / "logging.conf"),
        **{**SMOKE, **overrides},
    )


def mlflow_metrics(out: Path) -> dict:
    from monai_xai.tracking import find_run

    run = find_run(f"sqlite:///{out.resolve() / 'mlruns.db'}", NAME, RUN_NAME)
    return run.data


RUN_NAME = "pneumoniamnist_agcyclegan_lsgan_ndis1_cyc10.0"


def medmnist_run(shared_data: Path, out: Path) -> dict[str, str]:
    """Overrides of a run on the shared MedMNIST files that writes everything below ``out``."""
    return {"dataset_dir": str(shared_data / "medmnist"), "output_dir": str(out), "bundle_root": str(out)}


@pytest.mark.integration
@pytest.mark.slow
def test_pneumonia_classifier_then_gan_with_resume(shared_data, tmp_path):
    common = medmnist_run(shared_data, tmp_path)
    run_bundle("train", "train_classifier", **common)
    assert (tmp_path / "classifier" / "checkpoints" / "best.pt").is_file()
    assert (
        json.loads((tmp_path / "classifier" / "checkpoints" / "best.json").read_text())["metric"]
        == "val_loss"
    )
    run_bundle("train", **common)
    assert (tmp_path / "gan" / "checkpoints" / "latest.pt").is_file()
    assert (tmp_path / "gan" / "figures" / "samples_epoch001.png").is_file()
    run_bundle("train", gan_epochs=2, **common)  # resumes after epoch 1 and trains epoch 2 only
    assert (tmp_path / "gan" / "figures" / "samples_epoch002.png").is_file()
    assert set(torch.load(tmp_path / "models" / "model.pt", weights_only=True)) == {"classifier", "gan"}
    data = mlflow_metrics(tmp_path)
    assert {"train_loss_g", "train_loss_cyc", "train_loss_d"} <= set(data.metrics)
    # validated every epoch; the 8 validation images of this sample are all of class 1, so the rate from
    # class 0 and the minimum are NaN and no gan/checkpoints/best.pt is kept (the synthetic runs keep one)
    assert {"val_flip_rate_from_0", "val_flip_rate_from_1", "val_flip_rate_min"} <= set(data.metrics)
    assert data.params["n_dis"] == "1"


@pytest.mark.integration
@pytest.mark.slow
def test_pneumonia_evaluate_and_infer(shared_data, tmp_path):
    from monai_xai.data import medmnist_datalist
    from monai_xai.networks.nets import AGCycleGAN, LeakyResNetClassifier
    from monai_xai.utils import atomic_save

    # untrained weights in the layout the training workflows save: this test is about the explaining workflows
    classifier = LeakyResNetClassifier()
    atomic_save(classifier.state_dict(), tmp_path / "classifier" / "checkpoints" / "best.pt")
    gan = AGCycleGAN(classifier, decoder_widths=SMOKE["decoder_widths"])
    atomic_save({"gan": gan.state_dict()}, tmp_path / "gan" / "checkpoints" / "latest.pt")
    common = medmnist_run(shared_data, tmp_path)
    run_bundle("train", "evaluate", n_panels=2, **common)
    metrics = json.loads((tmp_path / "eval_test" / "metrics.json").read_text())
    assert metrics["n_images"] == 8 and 0.0 <= metrics["flip_rate"] <= 1.0
    assert sum(map(sum, metrics["confusion_before"])) == sum(map(sum, metrics["confusion_after"])) == 8
    assert set(metrics["attention_vs_gradcampp"]) == {"correlation", "top10pct_iou"}
    assert len(list((tmp_path / "eval_test" / "panels").glob("*.png"))) == 2
    assert "test_flip_rate" in mlflow_metrics(tmp_path).metrics
    # the standalone inference.json: both networks in models/model.pt, as GAN training writes it
    atomic_save(
        {"classifier": classifier.state_dict(), "gan": gan.state_dict()}, tmp_path / "models" / "model.pt"
    )
    test_images = [
        item["image"]
        for item in medmnist_datalist(shared_data / "medmnist" / "pneumoniamnist.npz", "test")[:8]
    ]
    run_bundle("inference", input_files=test_images, **common)
    predictions = json.loads((tmp_path / "inference" / "predictions.json").read_text())
    assert len(predictions) == 8 and all(Path(p["panel"]).is_file() for p in predictions)
    torch.save(
        {"gan": {"decoders.g_x.head.weight": torch.zeros(1)}}, tmp_path / "gan" / "checkpoints" / "latest.pt"
    )
    with pytest.raises(RuntimeError) as info:
        run_bundle("train", "evaluate", **common)
    assert "latest.pt: checkpoint does not fit AGCycleGAN" in " ".join(_messages(info.value))


@pytest.mark.integration
@pytest.mark.slow
def test_pneumonia_guided_gan_then_evaluation_with_a_judge(shared_data, tmp_path):
    """train_guided.json beside train.json: its own folder, model file and MLflow run, with the validity
    term logged; evaluate.json with --judge_checkpoint (a judge as train_judge.json builds it: DenseNet121
    behind its input resize) adds the judge's flip rates to that run's report."""
    from monai.networks.nets import DenseNet121

    from monai_xai.networks.nets import LeakyResNetClassifier
    from monai_xai.tracking import find_run
    from monai_xai.utils import atomic_save

    # untrained weights in the layout train_classifier.json / train_judge.json save: the workflows are tested
    atomic_save(LeakyResNetClassifier().state_dict(), tmp_path / "classifier/checkpoints/best.pt")
    judge = torch.nn.Sequential(torch.nn.Upsample(size=[32, 32]), DenseNet121(2, 1, 2))
    atomic_save(judge.state_dict(), tmp_path / "judge/checkpoints/best.pt")
    common = medmnist_run(shared_data, tmp_path)
    run_bundle("train", "train_guided", **common)
    assert (tmp_path / "gan_guided" / "checkpoints" / "latest.pt").is_file()
    assert (tmp_path / "models" / "model_guided.pt").is_file()
    assert not (tmp_path / "gan").exists() and not (tmp_path / "models" / "model.pt").exists()
    run_bundle(
        "train", "train_guided", "evaluate",
        judge_checkpoint=str(tmp_path / "judge" / "checkpoints" / "best.pt"), n_panels=0, **common,
    )  # fmt: skip
    metrics = json.loads((tmp_path / "eval_test_guided" / "metrics.json").read_text())
    assert all(0.0 <= metrics[f"judge_flip_rate_from_{c}"] <= 1.0 for c in (0, 1))
    assert {"accuracy", "auc"} <= set(metrics["judge_classifier"])
    assert metrics["judge"] == {"architecture": "DenseNet121"}
    store = f"sqlite:///{tmp_path.resolve() / 'mlruns.db'}"
    data = find_run(store, NAME, "pneumoniamnist_agcyclegan_guided_lsgan_ndis1_cyc10.0").data
    assert {"train_loss_cls", "val_flip_rate_min", "test_judge_flip_rate_from_1"} <= set(data.metrics)
    assert data.params["lambda_cls"] == "1.0" and data.params["gan_variant"] == "guided"


@pytest.mark.slow
def test_multi_gpu_classifier_then_gan_two_processes_on_cpu(tmp_path):
    """The classifier, then the GAN, each with the bundle's ``configs/multi_gpu_train.json`` last, under
    torchrun with 2 processes (gloo on CPU) on tiny synthetic data, both with early stopping on (every process
    must stop together), validation and checkpoints on rank 0."""
    from monai_xai.data import write_demo_dataset
    from monai_xai.tracking import find_run

    csv = write_demo_dataset(tmp_path / "demo", n_train=8, n_val=4, n_test=4, size=28)
    out = tmp_path / "out"
    overrides = [
        "--dataset", "demo", "--dataset_source", "csv", "--dataset_path", str(csv),
        "--class_names", "['class0', 'class1']", "--output_dir", str(out), "--model_dir", str(out / "models"),
        "--num_workers", "0", "--batch_size", "2", "--gan_batch_size", "2", "--val_batch_size", "4",
        "--max_epochs", "2", "--gan_epochs", "2",
        "--early_stop_patience", "1", "--gan_early_stop_patience", "1",
        "--decoder_widths", "[4, 4, 8, 8, 8]", "--disc_channels", "[8, 16]",
    ]  # fmt: skip
    multi_gpu = CONFIGS / "multi_gpu_train.json"
    workflows = {
        "classifier": [CONFIGS / "train.json", CONFIGS / "train_classifier.json", multi_gpu],
        "gan": [CONFIGS / "train.json", multi_gpu],
    }
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TQDM_DISABLE": "1"}
    for configs in workflows.values():
        cmd = [
            sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--standalone",
            "-m", "monai.bundle", "run", "--config_file", str([str(c) for c in configs]), *overrides,
        ]  # fmt: skip
        result = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    for workflow in workflows:
        assert all(
            (out / workflow / "checkpoints" / f).is_file() for f in ("latest.pt", "best.pt", "best.json")
        )
    assert (out / "models" / "model.pt").is_file()
    store = f"sqlite:///{out.resolve() / 'mlruns.db'}"
    classifier = find_run(store, NAME, "demo_classifier_resnet18_leakyrelu")
    gan = find_run(store, NAME, "demo_agcyclegan_lsgan_ndis1_cyc10.0")
    assert classifier.info.status == gan.info.status == "FINISHED"
    assert "val_loss" in classifier.data.metrics
    assert {"val_flip_rate_from_0", "val_flip_rate_from_1", "val_flip_rate_min"} <= set(gan.data.metrics)


def _messages(error: BaseException | None) -> list[str]:
    chain = []
    while error is not None:
        chain.append(str(error))
        error = error.__cause__
    return chain


@pytest.mark.integration
def test_volumes_given_to_a_2d_config_name_the_item(shared_data, tmp_path):
    with pytest.raises(RuntimeError) as info:
        run_bundle(
            "train", "train_classifier", dataset_dir=str(shared_data / "medmnist"), output_dir=str(tmp_path),
            dataset_path=str(shared_data / "medmnist" / "adrenalmnist3d.npz"),
        )  # fmt: skip
    assert any(
        "adrenalmnist3d.npz:train[" in m and "3 spatial dimensions" in m for m in _messages(info.value)
    )


@pytest.mark.parametrize("n", [28, 32])
def test_network_def_shapes_match_the_metadata(tmp_path, n):
    parser = inference_parser(copy_bundle(NAME, tmp_path), device_name="cpu", **TINY)
    formats = parser["_meta_"]["network_data_format"]
    network = parser.get_parsed_content("network_def").eval()
    classifier = parser.get_parsed_content("classifier_def").eval()
    x = torch.rand(tensor_shape(formats["inputs"]["image"], n)) * 2 - 1  # the GAN's [-1, 1]
    with torch.no_grad():
        translation = network.translate(x, source=0)
        logits = classifier((x + 1) / 2)
    assert logits.shape == (1, parser["num_classes"])
    for key, spec in formats["outputs"].items():
        out = getattr(translation, key)
        assert out.shape == tensor_shape(spec, n) and out.dtype == torch.float32, key


@pytest.mark.slow
def test_train_then_infer_from_a_copy(tmp_path, monkeypatch):
    """The classifier's learning-rate range test (``--run_id lr_find``), classifier and GAN one step each
    (each validated, with early stopping on), then the standalone inference.json on a folder of images, all
    run from the copy's folder with its default bundle_root ``.``."""
    from monai.bundle import run

    from monai_xai.data import write_demo_dataset

    root = copy_bundle(NAME, tmp_path / "elsewhere")
    csv = write_demo_dataset(tmp_path / "demo", n_train=8, n_val=4, n_test=4, size=28)
    monkeypatch.chdir(root)
    data = {
        "dataset": "demo", "dataset_source": "csv", "dataset_dir": str(csv.parent), "dataset_path": str(csv),
        "class_names": ["class0", "class1"], "limit": 4, "batch_size": 4, "gan_batch_size": 2,
        "val_batch_size": 4, "max_epochs": 1, "gan_epochs": 1,
        "early_stop_patience": 1, "gan_early_stop_patience": 1,
    }  # fmt: skip
    classifier = ["configs/train.json", "configs/train_classifier.json"]
    run(run_id="lr_find", config_file=classifier, lr_test_iters=2, lr_test_momenta=[0.9], **data, **TINY)
    assert (root / "runs" / "demo" / "classifier" / "lr_range_test" / "lr_range_test.json").is_file()
    run(config_file=classifier, **data, **TINY)
    assert (root / "runs" / "demo" / "classifier" / "checkpoints" / "best.pt").is_file()
    run(config_file="configs/train.json", **data, **TINY)
    assert (root / "runs" / "demo" / "gan" / "checkpoints" / "best.pt").is_file()
    model = torch.load(root / "models" / "model.pt", map_location="cpu", weights_only=True)
    assert set(model) == {"classifier", "gan"}
    run(config_file="configs/inference.json", dataset="demo", dataset_dir=str(csv.parent / "images"),
        class_names=["class0", "class1"], **TINY)  # fmt: skip
    predictions = json.loads((root / "runs" / "demo" / "inference" / "predictions.json").read_text())
    assert len(predictions) == 16 and all(Path(p["panel"]).is_file() for p in predictions)
