"""The operating point chosen on validation travels: evaluation -> checkpoint record -> inference.json ->
exported model -> the Deploy app's decision and report."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

CONFIGS = Path(__file__).resolve().parents[2] / "bundles" / "abn_classification" / "configs"
TINY = {"batch_size": 4, "val_batch_size": 8, "num_workers": 0, "spatial_size": [64, 64], "max_epochs": 1}


@pytest.mark.integration
@pytest.mark.slow
def test_the_validation_threshold_reaches_inference_and_deploy(tmp_path):
    from monai.bundle import ckpt_export, run

    from monai_xai.data import write_demo_dataset
    from monai_xai.deploy.model import DeployedABN
    from monai_xai.networks import operating_point_path, read_operating_point

    data, out = tmp_path / "data", tmp_path / "run"
    write_demo_dataset(data, n_train=18, n_val=18, n_test=9, size=64, positive_fraction=1 / 3, marker=False)
    common = {"dataset_dir": str(data), "output_dir": str(out), **TINY}
    run(config_file=str(CONFIGS / "train.json"), **common)
    evaluate = [str(CONFIGS / "train.json"), str(CONFIGS / "evaluate.json")]
    run(config_file=evaluate, calibrate=True, **common)

    checkpoint = out / "checkpoints" / "best.pt"
    point = read_operating_point(checkpoint)
    assert point["split"] == "val" and point["n"] == 18 and point["calibrated"] is True
    assert point["method"] == "youden" and 0.0 <= point["threshold"] <= 1.0 and point["temperature"] > 0
    metrics = json.loads((out / "eval_test" / "metrics.json").read_text())
    assert metrics["operating_point"]["threshold"] == point["threshold"]
    assert {"sensitivity", "specificity", "balanced_accuracy"} <= set(metrics["image_at_threshold"])
    assert {"auc", "balanced_accuracy_at_threshold"} <= set(metrics["intervals"])
    assert (
        "ece_temperature_scaled" in metrics["calibration"]
        and (out / "eval_test" / "reliability.png").is_file()
    )

    # inference.json finds the record beside the checkpoint and decides with it
    images = sorted((data / "images").glob("test_*.png"))
    inference = {**common, "ckpt_path": str(checkpoint), "output_dir": str(tmp_path / "inference")}
    run(config_file=str(CONFIGS / "inference.json"), input_files=[str(p) for p in images], **inference)
    predictions = json.loads((tmp_path / "inference" / "predictions.json").read_text())
    names = ["smooth", "irregular"]
    for p in predictions:
        decided = names[int(p["probabilities"]["irregular"] >= point["threshold"])]
        assert p["prediction"] == decided

    # exported with its record, the model decides in the Deploy app as inference.json does
    model_file = tmp_path / "model.ts"
    ckpt_export(
        net_id="network_export",
        filepath=str(model_file),
        ckpt_file=str(checkpoint),
        meta_file=str(CONFIGS / "metadata.json"),
        config_file=[
            str(CONFIGS / "inference.json"),
            str(CONFIGS / "export.json"),
            str(operating_point_path(checkpoint)),
        ],
        use_trace=True,
    )
    deployed = DeployedABN(model_file, device="cpu")
    assert deployed.operating_point == point
    by_source = {Path(p["source"]).name: p for p in predictions}
    for image in images[:3]:
        prediction = deployed.predict(image)
        expected = by_source[image.name]
        assert prediction.prediction == expected["prediction"]
        probabilities = [expected["probabilities"][n] for n in names]
        assert np.allclose(prediction.probabilities, probabilities, atol=1e-3)
        assert f"{point['threshold']:.4g}" in prediction.decision_rule
