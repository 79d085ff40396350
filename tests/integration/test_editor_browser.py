"""The attention editor end to end: the CLI's server, a headless Chromium painting on the page, files on disk.

The page is opened at the URL the editor prints, token included, as a user would. Needs Playwright for
Python (``pip install playwright``; no browser download: it drives the system's Chromium, ``apt-get install
-y chromium`` on Debian, or the executable named by ``CHROMIUM_PATH``). Skipped when either is missing.
``MONAI_XAI_WRITE_FIGURES=1`` also writes the screenshot to ``docs/figures/attention_editor.png``.
"""

from __future__ import annotations

import csv
import os
import queue
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from monai_xai.data import csv_datalist, write_demo_dataset
from monai_xai.networks import get_classifier

REPO = Path(__file__).resolve().parents[2]
ABN = REPO / "bundles" / "abn_classification" / "configs"
FIGURE = REPO / "docs" / "figures" / "attention_editor.png"
CHROMIUM_CANDIDATES = ("/usr/lib/chromium/chromium", "chromium", "chromium-browser", "google-chrome")


def _chromium() -> str | None:
    if os.environ.get("CHROMIUM_PATH"):
        return os.environ["CHROMIUM_PATH"]
    for candidate in CHROMIUM_CANDIDATES:
        found = shutil.which(candidate)
        if found:
            return found
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start_url(process: subprocess.Popen, timeout: float = 120.0) -> str:
    """The URL (with its token) the editor prints at start-up, once the editor answers at it.

    The editor's output is read by a thread to the end, so that a full pipe never blocks it.
    """
    lines: queue.Queue[str | None] = queue.Queue()
    seen: list[str] = []

    def pump() -> None:
        for line in process.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    deadline = time.monotonic() + timeout
    url = None
    while url is None:
        try:
            line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            raise AssertionError(f"the editor printed no URL within {timeout} s:\n{''.join(seen)}") from None
        if line is None:
            raise AssertionError(f"the editor exited with {process.wait()}:\n{''.join(seen)}")
        seen.append(line)
        found = re.search(r"(http://\S+/\?token=\S+)", line)
        url = found and found.group(1)
    while time.monotonic() < deadline:  # it prints the URL just before it binds the port
        try:
            with urllib.request.urlopen(url, timeout=2):
                return url
        except OSError:
            time.sleep(0.3)
    raise AssertionError(f"the editor did not answer at {url} within {timeout} s")


def _edited_column(page) -> list[str]:
    return page.eval_on_selector_all("#predictions tbody tr", "rows => rows.map(r => r.cells[2].textContent)")


@pytest.mark.slow
def test_paint_predict_save_in_chromium(tmp_path: Path) -> None:
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="Playwright for Python is not installed (pip install playwright)"
    )
    chromium = _chromium()
    if chromium is None:
        pytest.skip("no Chromium found: apt-get install -y chromium, or set CHROMIUM_PATH")

    write_demo_dataset(tmp_path / "data", n_train=4, n_val=2, n_test=2, size=96)
    torch.manual_seed(0)
    torch.save({"model": get_classifier("dynamic").state_dict()}, tmp_path / "abn.pt")
    out, port = tmp_path / "corrections", _free_port()
    command = [sys.executable, "-m", "monai_xai.editor", "--config_file", str(ABN / "train.json")]
    command += ["--checkpoint", str(tmp_path / "abn.pt"), "--output_dir", str(out), "--port", str(port)]
    command += ["--device", "cpu", "--dataset_dir", str(tmp_path / "data"), "--spatial_size", "[48, 48]"]
    server = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        url = _start_url(server)
        assert url.startswith(f"http://127.0.0.1:{port}/?token=")
        with pytest.raises(urllib.error.HTTPError, match="403"):  # nothing without the token
            urllib.request.urlopen(url.split("?")[0], timeout=10)
        with sync_api.sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium, headless=True)
            page = browser.new_page(viewport={"width": 1400, "height": 760})
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.goto(url)
            page.wait_for_function("document.getElementById('edited-pred').textContent.includes('(')")
            assert page.locator("#samples tbody tr").count() == 4
            before = _edited_column(page)

            page.eval_on_selector("#size", "el => { el.value = 14; el.dispatchEvent(new Event('input')); }")
            page.eval_on_selector(
                "#strength", "el => { el.value = 1; el.dispatchEvent(new Event('input')); }"
            )
            box = page.locator("#canvas").bounding_box()
            x0, y0 = box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.35
            page.mouse.move(x0, y0)
            page.mouse.down()
            for step in range(1, 11):
                page.mouse.move(x0 + step * box["width"] * 0.04, y0 + step * box["height"] * 0.03)
            page.mouse.up()
            page.wait_for_function(
                "before => [...document.querySelectorAll('#predictions tbody tr')]"
                ".some((r, k) => r.cells[2].textContent !== before[k])",
                arg=before,
            )
            assert _edited_column(page) != before
            assert page.inner_text("#status") == "edited, not saved"

            page.check("input[name=mode][value=erase]")  # the untrained map is high everywhere: clear a band
            page.mouse.move(box["x"] + 2, box["y"] + box["height"] * 0.85)
            page.mouse.down()
            page.mouse.move(box["x"] + box["width"] - 2, box["y"] + box["height"] * 0.85, steps=12)
            page.mouse.up()
            page.click("#save")
            page.wait_for_function("document.getElementById('status').textContent.startsWith('saved')")
            assert page.inner_text("#samples tr.selected td.saved") == "✓"
            # the brush outline, for the figure
            page.mouse.move(x0 + box["width"] * 0.2, y0 + box["height"] * 0.15)
            page.screenshot(path=tmp_path / "attention_editor.png")
            browser.close()
        assert not errors, errors
    finally:
        server.terminate()
        server.wait(timeout=30)

    # after the server stopped: the map and the datalist entry are on disk, readable by the project's loader
    rows = list(csv.DictReader(open(out / "labels.csv")))
    saved = [row for row in rows if row["corrected_map"]]
    assert len(rows) == 8 and len(saved) == 1
    item = next(item for item in csv_datalist(out / "labels.csv") if "corrected_map" in item)
    stored = np.asarray(Image.open(item["corrected_map"]))
    assert stored.shape == (96, 96) and set(np.unique(stored)) == {0, 255}
    assert stored[80:84].max() == 0 and stored[30:40, 30:50].min() == 255  # erased band, painted stroke
    screenshot = Image.open(tmp_path / "attention_editor.png")
    assert screenshot.size == (1400, 760)
    if os.environ.get("MONAI_XAI_WRITE_FIGURES") == "1":
        FIGURE.parent.mkdir(parents=True, exist_ok=True)
        screenshot.convert("RGB").quantize(colors=96).save(FIGURE, optimize=True)
