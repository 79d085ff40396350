"""Shared helpers: atomic writes keep the old file on failure and leave no temporary file; a figure copied
into a bundle's docs; batch entries."""

from __future__ import annotations

import json

import pytest
import torch

from monai_xai.utils import (
    atomic_path,
    atomic_save,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    batch_strings,
    copy_docs_figure,
)


def test_atomic_writers_write_and_create_folders(tmp_path) -> None:
    assert atomic_write_text(tmp_path / "a" / "t.csv", "x,y\r\n1,2\r\n").read_bytes() == b"x,y\r\n1,2\r\n"
    assert json.loads(atomic_write_json(tmp_path / "b" / "m.json", {"auc": 0.5}, indent=2).read_text()) == {
        "auc": 0.5
    }
    assert atomic_write_bytes(tmp_path / "c.bin", b"\x00\x01").read_bytes() == b"\x00\x01"
    path = atomic_save({"w": torch.ones(2)}, tmp_path / "d" / "model.pt")
    torch.testing.assert_close(torch.load(path)["w"], torch.ones(2))
    assert not [p for p in tmp_path.rglob(".tmp*")]


def test_failed_write_keeps_the_old_file(tmp_path) -> None:
    path = atomic_write_text(tmp_path / "metrics.json", "old")
    with pytest.raises(RuntimeError), atomic_path(path) as tmp:
        assert tmp.parent == path.parent and tmp.name.endswith(".metrics.json")
        tmp.write_text("half")
        raise RuntimeError("killed mid-write")
    assert path.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json"]


def test_copy_docs_figure_returns_the_docs_relative_path(tmp_path) -> None:
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "overlays.png").write_bytes(b"\x89PNG fake")
    figures = tmp_path / "bundle" / "docs" / "figures"
    assert (
        copy_docs_figure(tmp_path / "run" / "overlays.png", figures, "busi_arm.png") == "figures/busi_arm.png"
    )
    assert (figures / "busi_arm.png").read_bytes() == b"\x89PNG fake"
    assert not [p for p in tmp_path.rglob(".tmp*")]
    with pytest.raises(
        FileNotFoundError, match="run/missing.png: no such figure to copy into .*docs/figures"
    ):
        copy_docs_figure(tmp_path / "run" / "missing.png", figures, "x.png")


def test_batch_strings() -> None:
    assert batch_strings({"source": ["a.png", "b.png"]}, "source", 2) == ["a.png", "b.png"]
    assert batch_strings({"patient": "p1"}, "patient", 2) == ["p1", "p1"]
    assert batch_strings({}, "patient", 2) == ["", ""]
