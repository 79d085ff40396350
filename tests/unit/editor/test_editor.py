"""The attention editor's server: listing, prediction under an edited map, saving, restarts, bad uploads.

The server's own defences (token, Host, Origin, upload type, two editors on one folder) are in
``test_editor_security.py``.
"""

from __future__ import annotations

import csv
import io
import logging
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

pytest.importorskip("fastapi", reason="the editor needs the 'editor' extra (FastAPI)")
pytest.importorskip("httpx", reason="FastAPI's test client needs httpx (in the 'test' extra)")

with warnings.catch_warnings():  # recent starlette prefers httpx2 and warns on httpx, which it still runs on
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from monai_xai.data import csv_datalist, dataset_splits, write_demo_dataset  # noqa: E402
from monai_xai.editor import CorrectionTable, create_app, load_session  # noqa: E402
from monai_xai.editor.app import TOKEN_HEADER  # noqa: E402
from monai_xai.errors import InputError  # noqa: E402
from monai_xai.networks import get_classifier  # noqa: E402

REPO = Path(__file__).resolve().parents[3]
ABN = REPO / "bundles" / "abn_classification" / "configs"
MS = REPO / "bundles" / "multiscale_abn_correction" / "configs"
IMAGE_SIZE, INPUT_SIZE = 64, 32  # the network sees half the image size, so saving must resize back
PNG = {"Content-Type": "image/png"}  # what the page declares its uploads as


def _png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.round(np.clip(array, 0, 1) * 255).astype(np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def _client(app) -> TestClient:
    """A client sending the app's token, as the editor's page does."""
    return TestClient(app, headers={TOKEN_HEADER: app.state.token})


def _decode(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("L"), dtype=np.float32) / 255


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> dict:
    """Demo phantoms (6 train, 2 val, 2 test) and a seeded, untrained ABN checkpoint."""
    root = tmp_path_factory.mktemp("editor")
    write_demo_dataset(root / "data", n_train=6, n_val=2, n_test=2, size=IMAGE_SIZE)
    torch.manual_seed(0)
    torch.save({"model": get_classifier("dynamic").state_dict()}, root / "abn.pt")
    torch.save(get_classifier("baseline").state_dict(), root / "resnet.pt")
    overrides = {"dataset_dir": str(root / "data"), "spatial_size": [INPUT_SIZE, INPUT_SIZE]}
    return {"root": root, "overrides": overrides}


def _session(workdir: dict, output_dir: Path, checkpoint: str = "abn.pt", **overrides):
    return load_session(
        [str(ABN / "train.json")],
        workdir["root"] / checkpoint,
        output_dir,
        overrides={**workdir["overrides"], **overrides},
        device="cpu",
    )


@pytest.fixture(scope="module")
def reader(workdir) -> TestClient:
    """A client shared by the tests that save nothing (building a session dominates the test time)."""
    return _client(create_app(_session(workdir, workdir["root"] / "never_written")))


@pytest.fixture
def client(workdir, tmp_path) -> TestClient:
    return _client(create_app(_session(workdir, tmp_path / "corrections")))


def test_lists_the_training_split_in_each_order(reader: TestClient) -> None:
    client = reader
    info = client.get("/api/info").json()
    assert info["class_names"] == ["smooth", "irregular"]
    assert info["orders"] == ["datalist", "lowest_confidence", "largest_map_error", "random"]
    listed = client.get("/api/samples").json()
    assert [s["index"] for s in listed] == list(range(6)) and info["n_samples"] == 6
    assert all(s["height"] == s["width"] == INPUT_SIZE and not s["corrected"] for s in listed)
    confidences = [s["confidence"] for s in client.get("/api/samples?order=lowest_confidence").json()]
    assert confidences == sorted(confidences)
    errors = [s["map_error"] for s in client.get("/api/samples?order=largest_map_error").json()]
    assert errors == sorted(errors, reverse=True) and all(e is not None for e in errors)
    assert sorted(s["index"] for s in client.get("/api/samples?order=random").json()) == list(range(6))
    response = client.get("/api/samples?order=newest")
    assert response.status_code == 400 and "valid orders" in response.json()["detail"]
    assert client.get("/api/samples/6").status_code == 404


def test_serves_the_page_and_the_images(reader: TestClient) -> None:
    client = reader
    page = client.get("/")
    assert page.status_code == 200 and '<canvas id="canvas"' in page.text
    for asset in ("/", "/static/editor.js", "/static/editor.css"):
        response = client.get(asset)
        assert response.status_code == 200 and "://" not in response.text  # everything is served locally
    image = _decode(client.get("/api/samples/0/image.png").content)
    own_map = _decode(client.get("/api/samples/0/map.png").content)
    assert image.shape == own_map.shape == (INPUT_SIZE, INPUT_SIZE) and image.std() > 0
    assert client.get("/api/samples/0/corrected.png").status_code == 404


def test_prediction_follows_the_edited_map(reader: TestClient) -> None:
    client = reader
    summary = client.get("/api/samples/0").json()
    own_map = client.get("/api/samples/0/map.png").content
    under_own = client.post("/api/samples/0/predict", content=own_map, headers=PNG).json()
    # the model's own map sent back (8-bit, resized twice) gives the model's own prediction
    assert np.allclose(under_own["probs"], summary["probs"], atol=0.01)
    empty = client.post(
        "/api/samples/0/predict", content=_png(np.zeros((INPUT_SIZE, INPUT_SIZE))), headers=PNG
    ).json()
    full = client.post(
        "/api/samples/0/predict", content=_png(np.ones((INPUT_SIZE, INPUT_SIZE))), headers=PNG
    ).json()
    assert abs(empty["probs"][0] - full["probs"][0]) > 0.005
    assert sum(full["probs"]) == pytest.approx(1.0, abs=1e-3)


def test_save_writes_a_map_and_a_datalist_the_finetuning_reads(client: TestClient, workdir, tmp_path) -> None:
    from monai.bundle import ConfigParser

    edited = np.zeros((INPUT_SIZE, INPUT_SIZE))
    edited[4:12, 16:28] = 0.9  # kept (>= 0.5)
    edited[20:28, 4:12] = 0.3  # dropped
    response = client.post("/api/samples/2/save", content=_png(edited), headers=PNG)
    assert response.status_code == 200, response.text
    saved = response.json()
    assert saved["sample"]["corrected"] and "probs" in saved["prediction"]
    out = tmp_path / "corrections"
    map_path = Path(saved["map"])
    assert map_path.parent == out / "maps" and map_path.suffix == ".png"
    stored = np.asarray(Image.open(map_path))
    assert stored.shape == (IMAGE_SIZE, IMAGE_SIZE) and set(np.unique(stored)) == {0, 255}
    assert stored[8:24, 32:56].min() == 255 and stored[40:56, 8:24].max() == 0
    assert not list(out.rglob(".*tmp*"))  # no temporary file left behind

    # the project's loader reads it back, and the datalist keeps the source dataset's split
    items = csv_datalist(out / "labels.csv")
    corrected = [item for item in items if "corrected_map" in item]
    assert [item["corrected_map"] for item in corrected] == [str(map_path)]
    source = dataset_splits("csv", Path(workdir["overrides"]["dataset_dir"]) / "labels.csv")
    copied = dataset_splits("csv", out / "labels.csv")
    for split in ("train", "val", "test"):
        assert [i["image"] for i in copied[split]] == [i["image"] for i in source[split]]
    assert corrected[0]["image"] == source["train"][2]["image"]

    # exactly what the multi-scale fine-tuning reads with --map_source corrected_map
    parser = ConfigParser()
    parser.read_config([str(ABN / "train.json"), str(MS / "train.json"), str(MS / "finetune.json")])
    parser.update({**workdir["overrides"], "dataset_dir": str(out), "map_source": "corrected_map"})
    correction = parser.get_parsed_content("correction")
    assert correction.n_with_map == 1 and correction.items[2]["mask"] == str(map_path)
    item = parser.get_parsed_content("validate#preprocessing")(correction.items[2])
    assert item["has_mask"] == 1 and item["mask"].shape == (1, INPUT_SIZE, INPUT_SIZE)
    assert item["mask"][0, 4:12, 16:28].min() == 1 and item["mask"].sum() == 8 * 12

    assert np.array_equal(_decode(client.get("/api/samples/2/corrected.png").content) > 0.5, edited >= 0.5)


def test_saved_maps_survive_a_restart(workdir, tmp_path) -> None:
    out = tmp_path / "corrections"
    first = _client(create_app(_session(workdir, out)))
    edited = np.zeros((INPUT_SIZE, INPUT_SIZE))
    edited[8:16, 8:16] = 1.0
    assert first.post("/api/samples/1/save", content=_png(edited), headers=PNG).status_code == 200
    del first

    restarted = _client(create_app(_session(workdir, out)))
    assert [s["index"] for s in restarted.get("/api/samples").json() if s["corrected"]] == [1]
    assert np.array_equal(_decode(restarted.get("/api/samples/1/corrected.png").content) > 0.5, edited > 0.5)
    assert restarted.post("/api/samples/4/save", content=_png(edited), headers=PNG).status_code == 200
    rows = list(csv.DictReader(open(out / "labels.csv")))
    assert [i for i, row in enumerate(rows) if row["corrected_map"]] == [1, 4]


def test_bad_uploads_get_a_clear_4xx_and_write_nothing(reader: TestClient, workdir) -> None:
    client = reader
    noise = _png(np.random.default_rng(0).random((INPUT_SIZE, INPUT_SIZE)))
    cases = [
        (b"", 400, "empty upload"),
        (b"<html>not a map</html>", 400, "not a PNG image"),
        (noise[: len(noise) // 2], 400, "cannot be decoded"),
        (_png(np.zeros((INPUT_SIZE // 2, INPUT_SIZE))), 422, f"needs {INPUT_SIZE}x{INPUT_SIZE}"),
    ]
    for payload, status, message in cases:
        for endpoint in ("predict", "save"):
            response = client.post(f"/api/samples/0/{endpoint}", content=payload, headers=PNG)
            assert response.status_code == status and message in response.json()["detail"], response.text
    response = client.post(
        "/api/samples/0/save", content=b"x", headers={**PNG, "content-length": str(64 << 20)}
    )
    assert response.status_code == 413
    assert client.post("/api/samples/99/save", content=_png(np.zeros((2, 2))), headers=PNG).status_code == 404
    assert not (workdir["root"] / "never_written").exists()


def test_an_interrupted_datalist_write_leaves_the_previous_one(
    client: TestClient, tmp_path, monkeypatch
) -> None:
    edited = _png(np.ones((INPUT_SIZE, INPUT_SIZE)))
    assert client.post("/api/samples/0/save", content=edited, headers=PNG).status_code == 200
    datalist = tmp_path / "corrections" / "labels.csv"
    before = datalist.read_text()

    def crash(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr("monai_xai.editor.datalist.os.replace", crash)
    with pytest.raises(OSError, match="disk full"):
        client.post("/api/samples/3/save", content=edited, headers=PNG)
    assert datalist.read_text() == before


def test_edits_the_multiscale_abn_too(workdir, tmp_path) -> None:
    from monai_xai.networks import MultiScaleAttentionBranchNetwork

    torch.manual_seed(0)
    torch.save(MultiScaleAttentionBranchNetwork().state_dict(), tmp_path / "multiscale.pt")
    session = load_session(
        [str(ABN / "train.json"), str(MS / "train.json")],
        tmp_path / "multiscale.pt",
        tmp_path / "corrections",
        overrides=workdir["overrides"],
        device="cpu",
    )
    assert session.own_maps[0].shape[-1] == INPUT_SIZE // 4  # the finest stage's map
    empty, full = (session.predict(0, torch.full((INPUT_SIZE, INPUT_SIZE), v)) for v in (0.0, 1.0))
    assert empty["probs"] != full["probs"]
    assert Path(session.save(0, torch.ones(INPUT_SIZE, INPUT_SIZE))["map"]).is_file()


def test_refuses_to_overwrite_the_source_csv(workdir) -> None:
    data = Path(workdir["overrides"]["dataset_dir"])
    with pytest.raises(InputError, match="would overwrite"):
        CorrectionTable(data / "labels.csv", data)


def test_rejects_a_network_without_attention_map(workdir, tmp_path) -> None:
    with pytest.raises(InputError, match="has no attention map"):
        _session(workdir, tmp_path, checkpoint="resnet.pt", mode="baseline")


def test_cli_binds_localhost_by_default(workdir, tmp_path, monkeypatch, caplog) -> None:
    import uvicorn

    from monai_xai.editor.__main__ import main

    calls = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: calls.append((app, kwargs)))
    caplog.set_level(logging.INFO, logger="monai_xai.editor")
    main(
        [
            "--config_file",
            f"['{ABN / 'train.json'}']",
            "--checkpoint",
            str(workdir["root"] / "abn.pt"),
            "--output_dir",
            str(tmp_path),
            "--split",
            "val",
            "--device",
            "cpu",
            "--dataset_dir",
            workdir["overrides"]["dataset_dir"],
            "--spatial_size",
            f"[{INPUT_SIZE}, {INPUT_SIZE}]",
        ]
    )
    ((app, kwargs),) = calls
    assert kwargs["host"] == "127.0.0.1"
    assert f"http://127.0.0.1:8765/?token={app.state.token}" in caplog.text  # the URL to open
    assert len(_client(app).get("/api/samples").json()) == 2  # the validation split
