"""The MONAI Deploy application end to end: a DICOM study folder with two studies and a BUSI PNG."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
METADATA = REPO / "bundles" / "abn_classification" / "configs" / "metadata.json"
VERSION = json.loads(METADATA.read_text())["version"]


@pytest.mark.integration
@pytest.mark.slow
def test_app_on_a_dicom_study_and_a_png(deploy_python, shared_data, exported_abn, tmp_path):
    import pydicom
    from PIL import Image

    # links, not copies: an ultrasound study and a CT study (to be left out by the rules), and a PNG
    deid = shared_data / "dicom_samples" / "deid_data"
    png = shared_data / "busi_256" / "malignant" / "malignant_001.png"
    studies = tmp_path / "input" / "studies"
    studies.mkdir(parents=True)
    for name in ("GREYSCALE_IMAGE.dcm", "ctbrain1.dcm"):
        (studies / name).symlink_to(deid / name)
    (tmp_path / "input" / png.name).symlink_to(png)
    rules = tmp_path / "rules.json"
    conditions = {"Modality": "(?i)^US$", "SeriesDescription": "(?i)kidney|breast"}
    rules.write_text(json.dumps({"selections": [{"name": "ultrasound", "conditions": conditions}]}))
    out = tmp_path / "output"
    cmd = [
        deploy_python, "-m", "monai_xai.deploy", "-i", str(tmp_path / "input"), "-o", str(out),
        "-m", str(exported_abn.model), "--rules", str(rules),
    ]  # fmt: skip
    result = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    source = pydicom.dcmread(deid / "GREYSCALE_IMAGE.dcm", stop_before_pixels=True)
    series = str(source.SeriesInstanceUID)
    assert sorted(p.name for p in out.iterdir()) == sorted([series, "malignant_001"])  # no CT output
    for folder, dicom_source in ((out / series, source), (out / "malignant_001", None)):
        record = json.loads((folder / "probabilities.json").read_text())
        assert sum(record["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
        assert record["model"]["version"] == VERSION
        overlay = Image.open(folder / "overlay.png")
        assert overlay.mode == "RGB" and max(overlay.size) >= 512
        sc = pydicom.dcmread(folder / "overlay_sc.dcm")
        assert sc.SOPClassUID == pydicom.uid.SecondaryCaptureImageStorage
        assert sc.pixel_array.shape == (overlay.size[1], overlay.size[0], 3)
        if dicom_source is not None:
            assert sc.PatientID == dicom_source.PatientID
            assert sc.StudyInstanceUID == dicom_source.StudyInstanceUID
            assert record["dicom"]["PatientID"] == dicom_source.PatientID
        else:
            assert sc.PatientID == "" and record["dicom"] == {}
        report = (folder / "report.html").read_text()
        assert f'<span id="prediction">{record["prediction"]}</span>' in report
        assert f'<td id="model-version">{VERSION}</td>' in report
