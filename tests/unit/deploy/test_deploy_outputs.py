"""The deploy outputs (probabilities JSON, overlay PNG, DICOM Secondary Capture, HTML report) and the wrapper
that makes an ABN exportable, without the MONAI Deploy App SDK."""

from __future__ import annotations

import json

import numpy as np
import pydicom
import pytest
import torch
from PIL import Image
from pydicom.dataset import Dataset

from monai_xai.deploy import (
    OUTPUT_FILES,
    ABNPrediction,
    load_selection_rules,
    overlay_rgb,
    write_outputs,
    write_secondary_capture,
)
from monai_xai.errors import InputError

MODEL = {
    "name": "ABN <test>",
    "version": "1.2.3",
    "file": "model.ts",
    "sha256": "ab" * 32,
    "intended_use": "Research only",
}


def _prediction(image_shape=(40, 60)) -> ABNPrediction:
    attention = np.zeros((32, 32), dtype=np.float32)
    attention[4:8, 20:28] = 1.0
    return ABNPrediction(
        source="case<1>.png",
        class_names=["benign", "malignant"],
        probabilities=np.array([0.2, 0.8], dtype=np.float32),
        image=np.random.default_rng(0).random(image_shape),
        network_input=np.linspace(0, 1, 32 * 32).reshape(32, 32),
        attention=attention,
    )


def _reference() -> Dataset:
    ref = Dataset()
    ref.PatientID, ref.PatientName, ref.PatientSex = "P-0042", "Doe^Jane", "F"
    ref.StudyInstanceUID, ref.SeriesInstanceUID = "1.2.3.4.5", "1.2.3.4.5.6"
    ref.SOPClassUID, ref.SOPInstanceUID = "1.2.840.10008.5.1.4.1.1.6.1", "1.2.3.4.5.6.7"
    ref.AccessionNumber, ref.StudyDate = "ACC9", "20240101"
    return ref


def test_overlay_is_readable_and_red_where_the_map_is_high():
    prediction = _prediction()
    overlay = overlay_rgb(prediction.network_input, prediction.attention)
    assert overlay.shape == (512, 512, 3) and overlay.dtype == np.uint8
    hot = overlay[6 * 16, 24 * 16].astype(int)  # inside the attended block, at 16x display scale
    cold = overlay[24 * 16, 8 * 16].astype(int)
    assert hot[0] > hot[2] and cold[2] > cold[0]  # jet: red for 1, blue for 0


def test_outputs_of_a_dicom_input_carry_its_identifiers(tmp_path):
    prediction, ref = _prediction(), _reference()
    paths = write_outputs(prediction, tmp_path / "case", MODEL, ref)
    assert {k: p.name for k, p in paths.items()} == OUTPUT_FILES
    record = json.loads(paths["probabilities"].read_text())
    assert record["prediction"] == "malignant" and sum(record["probabilities"].values()) == pytest.approx(1.0)
    assert record["dicom"]["PatientID"] == "P-0042" and record["model"]["version"] == "1.2.3"
    sc = pydicom.dcmread(paths["secondary_capture"])
    assert sc.SOPClassUID == pydicom.uid.SecondaryCaptureImageStorage
    assert (sc.PatientID, sc.PatientName, sc.StudyInstanceUID, sc.AccessionNumber) == (
        "P-0042",
        "Doe^Jane",
        "1.2.3.4.5",
        "ACC9",
    )
    assert sc.SeriesInstanceUID != ref.SeriesInstanceUID and sc.SOPInstanceUID != ref.SOPInstanceUID
    assert sc.SourceImageSequence[0].ReferencedSOPInstanceUID == ref.SOPInstanceUID
    assert "1.2.3" in sc.ImageComments and sc.PatientOrientation == ""
    png = np.asarray(Image.open(paths["overlay"]))
    assert np.array_equal(sc.pixel_array, png)  # the Secondary Capture shows exactly the PNG
    report = paths["report"].read_text()
    assert '<span id="prediction">malignant</span>' in report and "0.800" in report
    assert "ABN &lt;test&gt;" in report and "case&lt;1&gt;.png" in report  # escaped, not markup
    assert report.count("data:image/png;base64,") == 2


def test_secondary_capture_of_a_file_input_starts_a_new_study(tmp_path):
    overlay = np.zeros((8, 10, 3), dtype=np.uint8)
    overlay[..., 0] = 255
    first = pydicom.dcmread(write_secondary_capture(overlay, tmp_path / "a.dcm", MODEL))
    second = pydicom.dcmread(write_secondary_capture(overlay, tmp_path / "b.dcm", MODEL))
    assert first.PatientID == "" and first.StudyInstanceUID != second.StudyInstanceUID
    assert "SourceImageSequence" not in first
    assert first.pixel_array.shape == (8, 10, 3) and (first.pixel_array[..., 0] == 255).all()


def test_selection_rules_errors_name_the_file(tmp_path):
    good = tmp_path / "rules.json"
    good.write_text(json.dumps({"selections": [{"name": "us", "conditions": {"Modality": "US"}}]}))
    assert load_selection_rules(good)["selections"][0]["name"] == "us"
    for content, problem in [
        ("{not json", "cannot read the series selection rules as JSON"),
        ('{"rules": []}', 'series selection rules need a non-empty "selections" list'),
        ('{"selections": [{"name": "x"}]}', 'selection 0 needs a "conditions" object'),
    ]:
        bad = tmp_path / "bad.json"
        bad.write_text(content)
        with pytest.raises(InputError, match=f"bad.json: {problem}"):
            load_selection_rules(bad)


def test_exportable_abn_loads_network_checkpoints_and_traces():
    from monai_xai.networks import ExportableABN, get_classifier

    network = get_classifier("dynamic").eval()
    wrapper = ExportableABN(get_classifier("dynamic")).eval()
    wrapper.load_state_dict(network.state_dict())  # a training checkpoint, without a prefix
    assert wrapper.state_dict().keys() == network.state_dict().keys()
    x = torch.rand(2, 1, 64, 64)
    with torch.no_grad():
        logits, attention = wrapper(x)
        expected = network(x)
        traced = torch.jit.trace(wrapper, x[:1])
        traced_logits, traced_attention = traced(x)
    assert torch.equal(logits, expected.perception_logits) and torch.equal(attention, expected.attention_map)
    assert torch.allclose(traced_logits, logits, atol=1e-5) and torch.allclose(traced_attention, attention)
    with pytest.raises(RuntimeError, match="Missing key"):
        ExportableABN(get_classifier("dynamic")).load_state_dict({})
