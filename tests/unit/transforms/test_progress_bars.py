"""Progress bars are drawn on a terminal and left out of log files (stderr redirected to a file or pipe)."""

from __future__ import annotations

import io
import sys
from collections.abc import Callable

import numpy as np
import pytest
import torch

from monai_xai.data.dedup import find_near_duplicates
from monai_xai.transforms.preflight import check_splits
from monai_xai.transforms.validate import validate_datalist


class _Terminal(io.StringIO):
    """A stderr that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def _load(item: dict) -> dict:
    return {"image": torch.as_tensor(item["image"])[None], "label": item["label"]}


def _items() -> list[dict]:
    rng = np.random.default_rng(0)
    return [{"image": rng.random((8, 8), dtype=np.float32), "label": k % 2} for k in range(3)]


RUNS: dict[str, Callable[[], object]] = {
    "validating": lambda: validate_datalist(_items(), _load, progress=True, num_classes=2),
    "checking inputs": lambda: check_splits({"train": _items()}, _load, progress=True, num_classes=2),
    "phash": lambda: find_near_duplicates([item["image"] for item in _items()], progress=True),
}


@pytest.mark.parametrize("desc", RUNS)
def test_bar_only_on_a_terminal(desc: str, monkeypatch: pytest.MonkeyPatch) -> None:
    log = io.StringIO()
    monkeypatch.setattr(sys, "stderr", log)
    RUNS[desc]()
    assert desc not in log.getvalue() and "\r" not in log.getvalue()

    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    RUNS[desc]()
    assert f"{desc}: 100%" in terminal.getvalue()
