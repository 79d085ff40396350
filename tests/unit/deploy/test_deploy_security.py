"""The deploy app against untrusted inputs and careless reruns: DICOM UIDs as folder names, outputs moved into
place when complete, no silent overwrite, one failed series among good ones, Burned In Annotation, patient
identifiers in reports, and model files whose configs carry code. Runs without the MONAI Deploy App SDK (its
three classes are stood in for where the operators are tested)."""

from __future__ import annotations

import hashlib
import importlib
import json
import sys
import tempfile
import types
from pathlib import Path

import numpy as np
import pydicom
import pytest
import torch
from PIL import Image
from pydicom.dataset import Dataset

import monai_xai.deploy
from monai_xai.deploy import (
    OUTPUT_FILES,
    SUMMARY_FILES,
    ABNPrediction,
    DeployedABN,
    InputOutcome,
    series_folder_name,
    write_outputs,
    write_run,
    write_secondary_capture,
)
from monai_xai.errors import InputError

CONFIGS = Path(__file__).resolve().parents[3] / "bundles" / "abn_classification" / "configs"
MODEL = {"name": "ABN", "version": "1.0", "file": "model.ts", "sha256": "ab" * 32, "intended_use": ""}


def _prediction(source: str = "case.png") -> ABNPrediction:
    return ABNPrediction(
        source=source,
        class_names=["benign", "malignant"],
        probabilities=np.array([0.3, 0.7], dtype=np.float32),
        image=np.linspace(0, 1, 16 * 16).reshape(16, 16),
        network_input=np.linspace(0, 1, 16 * 16).reshape(16, 16),
        attention=np.eye(16),
    )


def _reference(**extra) -> Dataset:
    ref = Dataset()
    ref.PatientName, ref.PatientID, ref.PatientBirthDate = "Doe^Jane", "P-0042", "19700203"
    ref.AccessionNumber, ref.StudyInstanceUID, ref.SeriesInstanceUID = "ACC9", "1.2.3.4", "1.2.3.4.5"
    for keyword, value in extra.items():
        setattr(ref, keyword, value)
    return ref


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


# 1. UIDs as folder names


@pytest.mark.parametrize("uid", ["../x", "/abs/path", "..", "1.2.03", "1.2.", "1" * 65, "1.2.3\n", ""])
def test_an_invalid_uid_becomes_a_hashed_name_inside_the_folder(uid, tmp_path):
    name = series_folder_name(uid)
    assert name == "series-" + hashlib.sha256(uid.encode()).hexdigest()[:12]
    assert (tmp_path / name).resolve().parent == tmp_path.resolve()


@pytest.mark.parametrize("uid", ["1.2.3", "0", "1.2.840.10008.5.1.4.1.1.6.1", "1." + "2" * 62])
def test_a_valid_uid_is_its_own_folder_name(uid):
    assert series_folder_name(uid) == uid


# the operators, with the SDK's Fragment, Operator and OperatorSpec stood in for


@pytest.fixture
def operators(monkeypatch):
    """``monai_xai.deploy.operators`` imported over a stand-in ``monai.deploy.core``, and forgotten after."""
    core = types.ModuleType("monai.deploy.core")
    core.Operator = type("Operator", (), {"__init__": lambda self, fragment, *args, **kwargs: None})
    core.Fragment = core.OperatorSpec = object
    monkeypatch.setitem(sys.modules, "monai.deploy", types.ModuleType("monai.deploy"))
    monkeypatch.setitem(sys.modules, "monai.deploy.core", core)
    monkeypatch.setattr(monai_xai.deploy, "operators", None, raising=False)
    sys.modules.pop("monai_xai.deploy.operators", None)
    yield importlib.import_module("monai_xai.deploy.operators")
    sys.modules.pop("monai_xai.deploy.operators", None)


class _Model:
    """Records what it was asked to classify; a source named ``broken*`` fails as an unreadable file would."""

    def __init__(self) -> None:
        self.seen: list[tuple[Path, bool]] = []

    def predict(self, source) -> ABNPrediction:
        source = Path(source)
        self.seen.append((source, source.is_dir()))
        if source.name.startswith("broken"):
            raise InputError(source, "cannot read the pixel data")
        return _prediction(str(source))


def _series(uid: str, files: list[Path], unreadable: bool = False) -> types.SimpleNamespace:
    def native(file: Path) -> Dataset:
        if unreadable:
            raise pydicom.errors.InvalidDicomError(f"{file}: File is missing DICOM File Meta Information")
        ds = _reference(SeriesInstanceUID=uid)
        ds.filename = str(file)
        return ds

    sops = [types.SimpleNamespace(get_native_sop_instance=lambda f=f: native(f)) for f in files]
    series = types.SimpleNamespace(SeriesInstanceUID=uid, get_sop_instances=lambda: sops)
    return types.SimpleNamespace(series=series, selection_name="ultrasound")


class _Port:
    def __init__(self, received=None) -> None:
        self.received, self.emitted = received, None

    def receive(self, name):
        return self.received

    def emit(self, value, name) -> None:
        self.emitted = value


@pytest.mark.filterwarnings("ignore:Invalid value for VR UI")
def test_series_get_safe_folders_fail_alone_and_name_the_real_input(operators, tmp_path):
    study = tmp_path / "study"
    study.mkdir()
    files = {name: study / f"{name}.dcm" for name in ("a1", "a2", "b", "broken", "c")}
    for file in files.values():
        file.write_bytes(b"")
    selected = [
        _series("../x", [files["a1"], files["a2"]]),  # a multi-file series: linked into a temporary folder
        _series("/abs/path", [files["b"]]),
        _series("1.2.3", [files["broken"]]),  # read, but its pixels cannot be classified
        _series("1.2.4", [files["c"]], unreadable=True),  # its header cannot be read at all
    ]
    model = _Model()
    infer = operators.ABNInferenceOperator(None, model=model, input_path=study, receive_series=True)
    port = _Port([types.SimpleNamespace(selected_series=selected)])
    infer.compute(port, port, None)

    (folder, is_dir), (single, _), _ = model.seen
    assert is_dir and folder.name == series_folder_name("../x")
    assert folder.parent.name.startswith("abn_series_") and folder.parent.parent == Path(
        tempfile.gettempdir()
    )
    assert single == files["b"]
    outcomes = port.emitted
    assert [o.name for o in outcomes] == [
        series_folder_name(u) for u in ("../x", "/abs/path", "1.2.3", "1.2.4")
    ]
    assert [o.source for o in outcomes] == [
        f"{study} (series {u})" for u in ("../x", "/abs/path", "1.2.3", "1.2.4")
    ]
    assert [o.prediction.source for o in outcomes[:2]] == [
        o.source for o in outcomes[:2]
    ]  # not a temp folder
    assert outcomes[0].reference.SeriesInstanceUID == "../x"
    assert outcomes[2].prediction is None and "cannot read the pixel data" in outcomes[2].error
    assert outcomes[3].prediction is None and outcomes[3].error.startswith("InvalidDicomError: ")


# 2, 3. outputs moved into place when complete; no overwrite without asking


def test_outputs_appear_only_when_complete(tmp_path, monkeypatch):
    import monai_xai.deploy.outputs as outputs

    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(outputs, "write_report", fail)
    with pytest.raises(OSError, match="disk full"):
        write_outputs(_prediction(), tmp_path / "case", MODEL)
    assert list(tmp_path.iterdir()) == []  # neither the folder nor a half-written one beside it


def test_an_existing_result_is_replaced_only_with_overwrite(tmp_path):
    first = write_outputs(_prediction(), tmp_path / "case", MODEL)
    before = first["probabilities"].read_text()
    with pytest.raises(InputError, match=r"case: exists already .*pass --overwrite"):
        write_outputs(_prediction("other.png"), tmp_path / "case", MODEL)
    assert first["probabilities"].read_text() == before
    second = write_outputs(_prediction("other.png"), tmp_path / "case", MODEL, overwrite=True)
    assert json.loads(second["probabilities"].read_text())["source"] == "other.png"
    assert sorted(p.name for p in (tmp_path / "case").iterdir()) == sorted(OUTPUT_FILES.values())
    assert _leftovers(tmp_path) == []  # the old folder, set aside, is gone
    (tmp_path / "plain").mkdir()
    assert (tmp_path / "case").stat().st_mode == (tmp_path / "plain").stat().st_mode  # not owner-only


def test_a_rerun_refuses_before_writing_anything(tmp_path):
    outcomes = [InputOutcome("a", "a.png", _prediction("a.png")), InputOutcome("b", "b.png", _prediction())]
    write_run(outcomes[:1], tmp_path, MODEL, tmp_path / "in")
    summary = (tmp_path / SUMMARY_FILES["json"]).read_text()
    with pytest.raises(InputError, match=rf"{tmp_path}: holds results of an earlier run \(a, summary.json, "):
        write_run(outcomes, tmp_path, MODEL, tmp_path / "in")
    assert not (tmp_path / "b").exists() and (tmp_path / SUMMARY_FILES["json"]).read_text() == summary
    write_run(outcomes, tmp_path, MODEL, tmp_path / "in", overwrite=True)
    assert [e["name"] for e in json.loads((tmp_path / "summary.json").read_text())["inputs"]] == ["a", "b"]
    assert _leftovers(tmp_path) == []


# 4. every input succeeds or fails on its own


def test_a_failed_input_is_in_the_summary_and_the_others_are_written(tmp_path, monkeypatch):
    import monai_xai.deploy.outputs as outputs

    write_secondary_capture = outputs.write_secondary_capture

    def fail_for_c(overlay, path, model, reference=None):
        if reference is not None and reference.SeriesInstanceUID == "1.2.9":
            raise ValueError("cannot encode PatientName")
        return write_secondary_capture(overlay, path, model, reference)

    monkeypatch.setattr(outputs, "write_secondary_capture", fail_for_c)
    for name in ("1.2.8", "1.2.9"):  # an earlier run's results of the series that fail now
        (tmp_path / "out" / name).mkdir(parents=True)
    outcomes = [
        InputOutcome("1.2.7", "in (series 1.2.7)", _prediction("in (series 1.2.7)"), _reference()),
        InputOutcome("1.2.8", "in (series 1.2.8)", error="InvalidDicomError: not a DICOM file"),
        InputOutcome("1.2.9", "in (series 1.2.9)", _prediction(), _reference(SeriesInstanceUID="1.2.9")),
    ]
    summary = write_run(outcomes, tmp_path / "out", MODEL, "in", overwrite=True)
    assert summary == json.loads((tmp_path / "out" / SUMMARY_FILES["json"]).read_text())
    ok, unreadable, unwritable = summary["inputs"]
    assert ok["status"] == "ok" and ok["folder"] == "1.2.7" and ok["prediction"] == "malignant"
    assert unreadable == {"name": "1.2.8", "source": "in (series 1.2.8)", "status": "failed"} | {
        "error": "InvalidDicomError: not a DICOM file"
    }
    assert unwritable["status"] == "failed" and "ValueError: cannot encode PatientName" in unwritable["error"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["1.2.7", *sorted(SUMMARY_FILES.values())]
    page = (tmp_path / "out" / SUMMARY_FILES["report"]).read_text()
    assert "3 inputs, 2 failed" in page and "InvalidDicomError: not a DICOM file" in page
    assert 'href="1.2.7/report.html"' in page and '<span id="input">in</span>' in page


# 5. Burned In Annotation


def test_burned_in_annotation_is_the_sources_and_yes_when_unknown(tmp_path):
    overlay = np.zeros((4, 4, 3), dtype=np.uint8)
    for reference, expected in [
        (_reference(BurnedInAnnotation="NO"), "NO"),
        (_reference(BurnedInAnnotation="YES"), "YES"),
        (_reference(), "YES"),
        (_reference(BurnedInAnnotation=""), "YES"),
        (None, "YES"),
    ]:
        sc = pydicom.dcmread(write_secondary_capture(overlay, tmp_path / "sc.dcm", MODEL, reference))
        assert sc.BurnedInAnnotation == expected


# 6. patient identifiers in the report only when asked


def test_report_shows_patient_identifiers_only_when_asked(tmp_path):
    private = ("Doe^Jane", "P-0042", "19700203", "ACC9")
    report = write_outputs(_prediction(), tmp_path / "a", MODEL, _reference())["report"].read_text()
    assert not any(value in report for value in private) and "--include-identifiers" in report
    assert "1.2.3.4.5" in report  # the series UID still traces it to its source
    assert json.loads((tmp_path / "a" / "probabilities.json").read_text())["dicom"]["PatientID"] == "P-0042"
    shown = write_outputs(_prediction(), tmp_path / "b", MODEL, _reference(), include_identifiers=True)
    assert all(value in shown["report"].read_text() for value in private)


# 7. model files: configs read as plain JSON, the file's hash checked


class _TinyABN(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pooled = x.mean(dim=(2, 3))
        return torch.cat([pooled, -pooled], dim=1), torch.sigmoid(x[:, :1, ::8, ::8])


def _export(path: Path, inference: dict | None = None, **files: dict) -> Path:
    """A TorchScript file with the bundle's configs inside, as ``ckpt_export`` writes it."""
    config = json.loads((CONFIGS / "inference.json").read_text()) | (inference or {})
    extra = {
        "metadata.json": (CONFIGS / "metadata.json").read_text(),
        "inference.json": json.dumps(config),
        "export.json": (CONFIGS / "export.json").read_text(),
        **{name: json.dumps(content) for name, content in files.items()},
    }
    torch.jit.save(torch.jit.script(_TinyABN()), str(path), _extra_files=extra)
    return path


def test_a_plain_export_loads_and_predicts_with_the_bundles_preprocessing(tmp_path):
    model = DeployedABN(_export(tmp_path / "model.ts", {"spatial_size": [32, 32]}), device="cpu")
    assert model.class_names == ["smooth", "irregular"] and not hasattr(model, "parser")
    assert model.series_rules["selections"][0]["conditions"] == {"Modality": "(?i)^US$"}
    png = tmp_path / "case.png"
    Image.fromarray((np.random.default_rng(0).random((40, 50)) * 255).astype(np.uint8)).save(png)
    prediction = model.predict(png)
    assert prediction.network_input.shape == prediction.attention.shape == (32, 32)
    assert prediction.probabilities.sum() == pytest.approx(1.0, abs=1e-5)


#: Config expressions that, evaluated, would leave a file behind: code run by loading a model.
RUN = "__import__('pathlib').Path('{marker}').write_text('ran')"


@pytest.mark.parametrize(
    ("inference", "problem"),
    [
        ({"class_names": f"${RUN} and ['a', 'b']"}, "'class_names' is a config expression"),
        ({"preset_args": {"remove_overlays": f"${RUN}"}}, "'preset_args' is a config expression"),
        ({"spatial_size": "%{macro}#x"}, "'spatial_size' is a config expression"),
        ({"preprocessing": f"${RUN}"}, "its 'preprocessing' is not the bundle's"),
        ({"spatial_dims": 3, "intensity_transforms": f"$[{RUN}]"}, "a 3D model's 'intensity_transforms'"),
    ],
)
def test_no_config_expression_of_a_model_file_is_evaluated(tmp_path, inference, problem):
    marker = tmp_path / "ran.txt"
    (tmp_path / "macro.json").write_text('{"x": [64, 64]}')
    text = json.dumps(inference).replace("{macro}", str(tmp_path / "macro.json"))
    path = _export(tmp_path / "evil.ts", json.loads(text.replace("{marker}", str(marker))))
    with pytest.raises(InputError, match=rf"evil.ts: .*{problem}"):
        DeployedABN(path, device="cpu")
    assert not marker.exists()


def test_a_dataset_fragment_with_expressions_elsewhere_is_fine(tmp_path):
    fragment = {"class_names": ["a", "b", "c"], "dataset_path": "$os.path.join(@dataset_dir, 'x.npz')"}
    path = _export(tmp_path / "model.ts", **{"busi.json": fragment})
    assert DeployedABN(path, device="cpu").class_names == ["a", "b", "c"]


def test_model_sha256_refuses_another_file(tmp_path):
    path = _export(tmp_path / "model.ts")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert DeployedABN(path, device="cpu", sha256=digest.upper()).sha256 == digest
    with pytest.raises(
        InputError, match=rf"model.ts: SHA-256 is {digest}, not the expected 0+ \(--model-sha256\)"
    ):
        DeployedABN(path, device="cpu", sha256="0" * 64)
    with pytest.raises(InputError, match="--model-sha256 needs the 64 hex digits of a SHA-256, got 'abc'"):
        DeployedABN(path, device="cpu", sha256="abc")
