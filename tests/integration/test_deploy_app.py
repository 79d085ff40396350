"""The MONAI Deploy application end to end: a DICOM study folder with two studies and a BUSI PNG, with a
series whose UID would escape the output folder and one whose pixels cannot be read; then reruns."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
METADATA = REPO / "bundles" / "abn_classification" / "configs" / "metadata.json"
VERSION = json.loads(METADATA.read_text())["version"]


def _run(deploy_python: str, *args: str) -> subprocess.CompletedProcess:
    """The app's command line, with stdout and stderr in one stream as a terminal shows them."""
    cmd = [deploy_python, "-m", "monai_xai.deploy", *args]
    return subprocess.run(
        cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300
    )


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:Invalid value for VR UI")
def test_app_on_a_dicom_study_and_a_png(deploy_python, shared_data, exported_abn, tmp_path):
    import pydicom
    from PIL import Image
    from pydicom.uid import generate_uid

    from monai_xai.deploy import series_folder_name

    # links, not copies: an ultrasound study and a CT study (to be left out by the rules), and a PNG
    deid = shared_data / "dicom_samples" / "deid_data"
    png = shared_data / "busi_256" / "malignant" / "malignant_001.png"
    studies = tmp_path / "input" / "studies"
    studies.mkdir(parents=True)
    for name in ("GREYSCALE_IMAGE.dcm", "ctbrain1.dcm"):
        (studies / name).symlink_to(deid / name)
    (tmp_path / "input" / png.name).symlink_to(png)
    # two more series of the ultrasound study: one named to escape the output folder, one truncated
    crafted = pydicom.dcmread(deid / "GREYSCALE_IMAGE.dcm")
    crafted.SeriesInstanceUID, crafted.SOPInstanceUID = "../escape", generate_uid()
    crafted.save_as(studies / "escape.dcm")
    broken_uid = generate_uid()
    crafted.SeriesInstanceUID, crafted.SOPInstanceUID = broken_uid, generate_uid()
    crafted.PixelData = crafted.PixelData[:100]
    crafted.save_as(tmp_path / "broken.dcm")
    (studies / "broken.dcm").symlink_to(tmp_path / "broken.dcm")
    rules = tmp_path / "rules.json"
    conditions = {"Modality": "(?i)^US$", "SeriesDescription": "(?i)kidney|breast"}
    rules.write_text(json.dumps({"selections": [{"name": "ultrasound", "conditions": conditions}]}))
    out = tmp_path / "output"
    args = [
        "-i",
        str(tmp_path / "input"),
        "-o",
        str(out),
        "-m",
        str(exported_abn.model),
        "--rules",
        str(rules),
    ]
    result = _run(deploy_python, *args)
    assert result.returncode == 0, result.stdout[-6000:]  # one failed series does not fail the study

    source = pydicom.dcmread(deid / "GREYSCALE_IMAGE.dcm", stop_before_pixels=True)
    series, escape = str(source.SeriesInstanceUID), series_folder_name("../escape")
    results = sorted([series, escape, "malignant_001"])
    assert sorted(p.name for p in out.iterdir()) == sorted([*results, "summary.json", "summary.html"])
    assert not (tmp_path / "escape").exists()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["input"] == str(tmp_path / "input")
    outcomes = {entry["name"]: entry for entry in summary["inputs"]}
    assert sorted(outcomes) == sorted([*results, broken_uid])  # no CT output
    assert {name: outcomes[name]["status"] for name in results} == dict.fromkeys(results, "ok")
    assert outcomes[broken_uid]["status"] == "failed"
    assert "number of bytes of pixel data is less than expected" in outcomes[broken_uid]["error"]
    assert "pixel data is less than expected" in (out / "summary.html").read_text()
    for folder, dicom_source in ((out / series, source), (out / "malignant_001", None)):
        record = json.loads((folder / "probabilities.json").read_text())
        assert sum(record["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
        assert record["model"]["version"] == VERSION
        overlay = Image.open(folder / "overlay.png")
        assert overlay.mode == "RGB" and max(overlay.size) >= 512
        sc = pydicom.dcmread(folder / "overlay_sc.dcm")
        assert sc.SOPClassUID == pydicom.uid.SecondaryCaptureImageStorage
        assert sc.pixel_array.shape == (overlay.size[1], overlay.size[0], 3)
        assert sc.BurnedInAnnotation == "YES"  # the source's; and unknown for the PNG
        report = (folder / "report.html").read_text()
        if dicom_source is not None:
            assert sc.PatientID == dicom_source.PatientID
            assert sc.StudyInstanceUID == dicom_source.StudyInstanceUID
            assert record["dicom"]["PatientID"] == dicom_source.PatientID
            assert record["source"] == f"{tmp_path / 'input'} (series {series})"  # not a temporary folder
            assert dicom_source.PatientID not in report and "PATIENTFIVE" not in report
        else:
            assert sc.PatientID == "" and record["dicom"] == {}
            assert record["source"] == str(tmp_path / "input" / png.name)
        assert f'<span id="prediction">{record["prediction"]}</span>' in report
        assert f'<td id="model-version">{VERSION}</td>' in report

    # a rerun into the same folder: refused, nothing touched, unless --overwrite
    written = (out / series / "report.html").stat().st_mtime_ns
    again = _run(deploy_python, *args)
    assert again.returncode != 0
    last = again.stdout.strip().splitlines()[-1]
    assert last.startswith(f"error: {out}: holds results of an earlier run") and "--overwrite" in last
    assert (out / series / "report.html").stat().st_mtime_ns == written
    again = _run(deploy_python, *args, "--overwrite", "--include-identifiers")
    assert again.returncode == 0, again.stdout[-6000:]
    assert source.PatientID in (out / series / "report.html").read_text()
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]

    # every input failed: a non-zero exit naming it, also with the model's hash checked
    digest = hashlib.sha256(exported_abn.model.read_bytes()).hexdigest()
    model = ["-m", str(exported_abn.model), "--model-sha256", digest]
    failing = _run(deploy_python, "-i", str(tmp_path / "broken.dcm"), "-o", str(tmp_path / "failing"), *model)
    assert failing.returncode != 0
    last = failing.stdout.strip().splitlines()[-1]
    assert last.startswith(f"error: 1 of 1 inputs failed (see {tmp_path / 'failing' / 'summary.html'}): ")
    assert "broken.dcm" in last and "pixel data" in last
    wrong = _run(deploy_python, *args, "--overwrite", "--model-sha256", "0" * 64)
    assert wrong.returncode != 0
    last = wrong.stdout.strip().splitlines()[-1]
    assert last.startswith(f"error: {exported_abn.model}: SHA-256 is {digest}, not the expected 000")
    assert last.endswith("(--model-sha256): refusing to load it")
