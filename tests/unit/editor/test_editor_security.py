"""The attention editor's defences, against its real server (uvicorn on port 0 in a thread, raw HTTP).

A page open in the same browser must not read patient images (DNS rebinding: a foreign ``Host``) nor
overwrite an expert's corrections (a cross-origin ``text/plain`` POST needs no CORS preflight); a request
without the start-up token gets nothing; two editors on one output folder keep each other's corrections;
an image listed twice in the datalist is refused.
"""

from __future__ import annotations

import csv
import http.client
import io
import json
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

pytest.importorskip("fastapi", reason="the editor needs the 'editor' extra (FastAPI)")
uvicorn = pytest.importorskip("uvicorn", reason="the editor needs the 'editor' extra (uvicorn)")

from monai_xai.data import write_demo_dataset  # noqa: E402
from monai_xai.editor import CorrectionTable, create_app, load_session  # noqa: E402
from monai_xai.errors import InputError  # noqa: E402
from monai_xai.networks import get_classifier  # noqa: E402

ABN = Path(__file__).resolve().parents[3] / "bundles" / "abn_classification" / "configs"
IMAGE_SIZE, INPUT_SIZE = 64, 32
TOKEN = "X-Editor-Token"  # the header the page sends, spelled out: it is the protocol under test


def _png(array: np.ndarray, format: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.round(np.clip(array, 0, 1) * 255).astype(np.uint8)).save(buffer, format=format)
    return buffer.getvalue()


MAP = np.zeros((INPUT_SIZE, INPUT_SIZE))
MAP[8:20, 8:24] = 1.0


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> dict:
    """Demo phantoms (4 train, 2 val, 2 test) and a seeded, untrained ABN checkpoint."""
    root = tmp_path_factory.mktemp("editor_security")
    write_demo_dataset(root / "data", n_train=4, n_val=2, n_test=2, size=IMAGE_SIZE)
    torch.manual_seed(0)
    torch.save({"model": get_classifier("dynamic").state_dict()}, root / "abn.pt")
    return {"root": root, "data": root / "data"}


def _session(workdir: dict, output_dir: Path):
    overrides = {"dataset_dir": str(workdir["data"]), "spatial_size": [INPUT_SIZE, INPUT_SIZE]}
    return load_session(
        [str(ABN / "train.json")], workdir["root"] / "abn.pt", output_dir, overrides=overrides
    )


@contextmanager
def _serving(app) -> Iterator[int]:
    """Serve ``app`` on 127.0.0.1 (a free port) in a thread; yields the port."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the editor's server did not start"
        time.sleep(0.02)
    try:
        yield server.servers[0].sockets[0].getsockname()[1]
    finally:
        server.should_exit = True
        thread.join(timeout=30)


class Editor:
    """A running editor: raw requests with exactly the headers given (http.client adds the right Host
    unless one is given)."""

    def __init__(self, port: int, token: str, output_dir: Path) -> None:
        self.port, self.token, self.output_dir = port, token, output_dir
        self.origin = f"http://127.0.0.1:{port}"

    def request(
        self, method: str, path: str, body: bytes | None = None, headers: dict | None = None
    ) -> tuple[int, bytes, http.client.HTTPMessage]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            return response.status, response.read(), response.headers
        finally:
            connection.close()

    def save(self, index: int, body: bytes, **headers: str) -> tuple[int, bytes, http.client.HTTPMessage]:
        """POST ``body`` as the map of sample ``index`` with the token and ``Content-Type: image/png``,
        as the page does, unless ``headers`` say otherwise."""
        headers = {TOKEN: self.token, "Content-Type": "image/png", "Origin": self.origin, **headers}
        return self.request(
            "POST", f"/api/samples/{index}/save", _png(MAP) if body is None else body, headers
        )

    def corrections(self) -> dict[int, str]:
        """Row (0 = first data row) -> corrected map, as written in the output CSV."""
        path = self.output_dir / "labels.csv"
        rows = list(csv.DictReader(open(path))) if path.is_file() else []
        return {i: row["corrected_map"] for i, row in enumerate(rows) if row["corrected_map"]}


@contextmanager
def _editor(session) -> Iterator[Editor]:
    app = create_app(session)
    with _serving(app) as port:
        yield Editor(port, app.state.token, session.table.output_dir)


@pytest.fixture(scope="module")
def editor(workdir) -> Iterator[Editor]:
    with _editor(_session(workdir, workdir["root"] / "corrections")) as running:
        yield running


def _refused(response: tuple[int, bytes, http.client.HTTPMessage], words: str) -> bool:
    status, body, headers = response
    return (
        status == 403 and words in json.loads(body)["detail"] and "Access-Control-Allow-Origin" not in headers
    )


DATA_PATHS = ("/", "/api/info", "/api/samples", "/api/samples/0", "/api/samples/0/image.png")


def test_no_token_gets_nothing(editor: Editor) -> None:
    for path in DATA_PATHS:
        assert _refused(editor.request("GET", path), "no token"), path
    assert _refused(editor.save(1, None, **{TOKEN: ""}), "no token")
    assert editor.corrections() == {}
    # the page's script and style sheet hold no data: the page needs them before it has read its token
    assert editor.request("GET", "/static/editor.js")[0] == 200


def test_a_wrong_token_gets_nothing(editor: Editor) -> None:
    wrong = editor.token[:-1] + ("A" if editor.token[-1] != "A" else "B")
    for path in DATA_PATHS:
        assert _refused(editor.request("GET", path, headers={TOKEN: wrong}), "wrong token"), path
        assert _refused(editor.request("GET", f"{path}?token={wrong}"), "wrong token"), path
    assert _refused(editor.save(1, None, **{TOKEN: wrong}), "wrong token")
    assert editor.corrections() == {}
    # the right one, as a header (fetch) or in the query (<img src>)
    status, body, headers = editor.request("GET", "/api/samples/0/image.png", headers={TOKEN: editor.token})
    assert status == 200 and body[:8] == b"\x89PNG\r\n\x1a\n" and headers["Referrer-Policy"] == "no-referrer"
    assert editor.request("GET", f"/api/samples/0/image.png?token={editor.token}")[0] == 200
    assert editor.request("GET", f"/?token={editor.token}")[0] == 200


def test_a_foreign_host_is_refused_even_with_the_token(editor: Editor) -> None:
    """DNS rebinding: a page of attacker.example, its name now pointing at 127.0.0.1, sends its own Host."""
    for host in ("attacker.example", f"attacker.example:{editor.port}", f"127.0.0.1:{editor.port + 1}", ""):
        for path in DATA_PATHS:
            response = editor.request("GET", path, headers={"Host": host, TOKEN: editor.token})
            assert _refused(response, "is not this editor"), (host, path)
    for host in (f"localhost:{editor.port}", f"[::1]:{editor.port}", f"127.0.0.1:{editor.port}"):
        assert editor.request("GET", "/api/info", headers={"Host": host, TOKEN: editor.token})[0] == 200


def test_a_foreign_origin_is_refused(editor: Editor) -> None:
    for origin in ("http://attacker.example", "null", f"https://127.0.0.1:{editor.port}", "http://127.0.0.1"):
        headers = {"Origin": origin, TOKEN: editor.token}
        assert _refused(editor.request("GET", "/api/samples/0/image.png", headers=headers), "are refused")
        preflight = {**headers, "Access-Control-Request-Method": "POST"}
        assert _refused(editor.request("OPTIONS", "/api/samples/1/save", headers=preflight), "are refused")
        assert _refused(editor.save(1, None, Origin=origin), "are refused"), origin
    assert editor.corrections() == {}


def test_a_save_that_is_not_declared_png_is_refused_and_changes_nothing(editor: Editor) -> None:
    """The content types a cross-origin page may send without a CORS preflight, and none at all."""
    assert editor.save(2, None)[0] == 200
    before = editor.corrections()
    stored = Path(editor.output_dir, before[2]).read_bytes()
    blank = _png(np.zeros((INPUT_SIZE, INPUT_SIZE)))
    for content_type in (
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
    ):
        status, body, _ = editor.save(2, blank, **{"Content-Type": content_type})
        assert status == 415 and "image/png" in json.loads(body)["detail"], body
    status, body, _ = editor.request("POST", "/api/samples/2/save", blank, headers={TOKEN: editor.token})
    assert status == 415 and "not none" in json.loads(body)["detail"]
    assert editor.corrections() == before
    assert Path(editor.output_dir, before[2]).read_bytes() == stored


def test_only_a_png_of_the_sample_size_is_written(editor: Editor) -> None:
    for body, status, words in [
        (_png(MAP, "JPEG"), 400, "not a PNG image"),
        (_png(MAP, "BMP"), 400, "not a PNG image"),
        (_png(MAP)[:-20], 400, "cannot be decoded"),
        (_png(MAP[:16]), 422, f"needs {INPUT_SIZE}x{INPUT_SIZE}"),
    ]:
        response = editor.save(3, body)
        assert response[0] == status and words in json.loads(response[1])["detail"], response[1]
    assert 3 not in editor.corrections()

    status, body, headers = editor.save(3, _png(MAP))
    assert status == 200, body
    assert "Access-Control-Allow-Origin" not in headers
    saved = Path(json.loads(body)["map"])
    assert editor.corrections()[3] == str(saved.relative_to(editor.output_dir))
    stored = np.asarray(Image.open(saved))
    assert stored.shape == (IMAGE_SIZE, IMAGE_SIZE) and stored[16:40, 16:48].min() == 255


def test_two_editors_on_one_folder_keep_each_others_corrections(workdir, tmp_path) -> None:
    out = tmp_path / "shared"
    first, second = _session(workdir, out), _session(workdir, out)  # both opened before anyone saves
    with _editor(first) as one, _editor(second) as other:
        assert one.save(1, None)[0] == 200
        assert other.save(0, None)[0] == 200
        assert one.save(3, None)[0] == 200
        assert sorted(one.corrections()) == [0, 1, 3]
        # each editor's list shows the other's saves once it has written (it re-read the CSV)
        listed = json.loads(one.request("GET", "/api/samples", headers={TOKEN: one.token})[1])
        assert [s["index"] for s in listed if s["corrected"]] == [0, 1, 3]


def test_concurrent_saves_from_two_tables_lose_nothing(workdir, tmp_path) -> None:
    """Many saves at once, from two tables on one folder: the lock serialises them, the re-read merges."""
    source, out = workdir["data"] / "labels.csv", tmp_path / "shared"
    tables = [CorrectionTable(source, out), CorrectionTable(source, out)]
    images = list(tables[0].row_of)
    maps = out / "maps"

    def save(k: int) -> None:
        tables[k % 2].record(images[k], maps / f"{k}.png")

    threads = [threading.Thread(target=save, args=(k,)) for k in range(len(images))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    rows = list(csv.DictReader(open(out / "labels.csv")))
    assert [row["corrected_map"] for row in rows] == [f"maps/{k}.png" for k in range(len(images))]


def test_an_image_listed_twice_is_refused(workdir, tmp_path) -> None:
    lines = (workdir["data"] / "labels.csv").read_text().splitlines()
    duplicated = tmp_path / "labels.csv"
    duplicated.write_text("\n".join([*lines[:4], lines[2], *lines[4:]]) + "\n")  # data row 2 again as row 5
    image = lines[2].split(",")[0]
    message = rf"{re.escape(str(duplicated))}: image '.*{re.escape(image)}' is listed twice, on rows 3 and 5"
    with pytest.raises(InputError, match=message):
        CorrectionTable(duplicated, tmp_path / "out")


def test_only_loopback_binds_count_as_this_machine() -> None:
    """Any other bind is warned of at start-up: the editor speaks plain HTTP."""
    from monai_xai.editor.__main__ import _is_loopback

    assert all(_is_loopback(host) for host in ("127.0.0.1", "127.0.0.2", "localhost", "::1"))
    assert not any(_is_loopback(host) for host in ("0.0.0.0", "::", "192.168.1.5", "example.org"))
