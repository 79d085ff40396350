"""TorchScript export of the ABN bundle (``ckpt_export``) and the deploy-side loader of the exported file."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch

from monai_xai.errors import InputError

CONFIGS = Path(__file__).resolve().parents[2] / "bundles" / "abn_classification" / "configs"


@pytest.mark.slow
def test_exported_model_matches_the_eager_network(exported_abn):
    from monai.data import load_net_with_metadata

    from monai_xai.networks import get_classifier, load_weights

    scripted, meta, extra = load_net_with_metadata(
        str(exported_abn.model), more_extra_files=("inference.json", "export.json")
    )
    assert meta["version"] == json.loads((CONFIGS / "metadata.json").read_text())["version"]
    wrapper = json.loads(extra["export.json"])["network_export"]
    assert wrapper["_target_"] == "monai_xai.networks.ExportableABN" and wrapper["fold_batch_norm"]
    assert "bn1" not in {name.split(".")[-1] for name, _ in scripted.named_modules()}  # folded
    eager = load_weights(get_classifier("dynamic"), exported_abn.checkpoint).eval()
    torch.manual_seed(0)
    # traced at the metadata's smallest input (16x16): other sizes and batches must work
    for shape in [(1, 1, 64, 64), (3, 1, 96, 80)]:
        x = torch.rand(shape)
        with torch.no_grad():
            logits, attention = scripted(x)
            expected = eager(x)
        # the export folds batch norm into the convolutions (export.json): equal to float32 rounding
        torch.testing.assert_close(logits, expected.perception_logits, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(attention, expected.attention_map, rtol=1e-5, atol=1e-5)
        assert attention.shape == (shape[0], 1, shape[2] // 16, shape[3] // 16)


@pytest.mark.slow
def test_deployed_model_reads_its_configs_and_predicts(exported_abn):
    from monai_xai.deploy import DeployedABN

    model = DeployedABN(exported_abn.model.parent, device="cpu")  # a folder with one .ts, as in a MAP
    assert model.path == exported_abn.model
    assert model.class_names == ["smooth", "irregular"]
    assert model.series_rules["selections"][0]["conditions"] == {"Modality": "(?i)^US$"}
    version = json.loads((CONFIGS / "metadata.json").read_text())["version"]
    assert model.info["version"] == version and len(model.info["sha256"]) == 64
    image = sorted((exported_abn.data / "images").glob("*.png"))[0]
    prediction = model.predict(image)
    assert prediction.probabilities.shape == (2,)
    assert prediction.probabilities.sum() == pytest.approx(1.0, abs=1e-5)
    assert prediction.network_input.shape == prediction.attention.shape == (64, 64)
    assert 0.0 <= prediction.attention.min() and prediction.attention.max() <= 1.0
    assert prediction.image.shape == (64, 64) and np.ptp(prediction.image) > 0
    assert prediction.prediction in model.class_names
    volume = exported_abn.root / "volume.nii.gz"  # a 2D model's preset cannot take a volume
    array = np.random.default_rng(0).random((32, 32, 4)).astype(np.float32)
    nib.save(nib.Nifti1Image(array, np.eye(4)), volume)
    problem = r"volume.nii.gz: image has 3 spatial dimensions .*\(1, 32, 32, 4\).*expected 2"
    with pytest.raises(InputError, match=problem):
        model.predict(volume)


def test_deployed_model_refuses_files_that_are_not_exports(tmp_path):
    from monai_xai.deploy import DeployedABN

    not_zip = tmp_path / "model.ts"
    not_zip.write_text("not a model")
    with pytest.raises(InputError, match="model.ts: not a TorchScript file"):
        DeployedABN(not_zip)
    plain = tmp_path / "plain" / "plain.ts"
    plain.parent.mkdir()
    torch.jit.save(torch.jit.script(torch.nn.Identity()), str(plain))
    with pytest.raises(InputError, match="plain.ts: holds no bundle configs"):
        DeployedABN(plain)
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="empty: expected one exported .ts model in this folder, found 0"):
        DeployedABN(tmp_path / "empty")
