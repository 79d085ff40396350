"""The AG-CycleGAN bundle end to end through ``monai.bundle.run`` on real data, at smoke size."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CONFIGS = REPO / "bundles" / "agcyclegan_explainer" / "configs"
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

    run = find_run(f"sqlite:///{out.resolve() / 'mlruns.db'}", "agcyclegan_explainer", RUN_NAME)
    return run.data


RUN_NAME = "pneumoniamnist_agcyclegan_lsgan_ndis1_cyc10.0"


@pytest.mark.integration
@pytest.mark.slow
def test_pneumonia_classifier_then_gan_with_resume(shared_data, tmp_path):
    import torch

    common = {
        "dataset_dir": str(shared_data / "medmnist"),
        "output_dir": str(tmp_path),
        "bundle_root": str(tmp_path),
    }
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
    assert data.params["n_dis"] == "1"


@pytest.mark.integration
@pytest.mark.slow
def test_pneumonia_evaluate_and_infer(shared_data, tmp_path):
    import torch

    from monai_xai.data import medmnist_datalist
    from monai_xai.networks.nets import AGCycleGAN, LeakyResNetClassifier
    from monai_xai.utils import atomic_save

    # untrained weights in the layout the training workflows save: this test is about the explaining workflows
    classifier = LeakyResNetClassifier()
    atomic_save(classifier.state_dict(), tmp_path / "classifier" / "checkpoints" / "best.pt")
    gan = AGCycleGAN(classifier, decoder_widths=SMOKE["decoder_widths"])
    atomic_save({"gan": gan.state_dict()}, tmp_path / "gan" / "checkpoints" / "latest.pt")
    common = {
        "dataset_dir": str(shared_data / "medmnist"),
        "output_dir": str(tmp_path),
        "bundle_root": str(tmp_path),
    }
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
