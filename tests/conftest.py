"""Shared pytest fixtures: the location of the real data in ../shared/data, and scripts loaded as modules."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path to ``../shared/data``; skips the test when the folder is not beside the checkout."""
    if not (SHARED_DATA / "README.md").is_file():
        pytest.skip(f"real data not found at {SHARED_DATA} (expected ../shared/data beside the checkout)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def load_script() -> Callable[[str], ModuleType]:
    """Import a file under ``scripts/`` as a module, e.g. ``load_script("benchmarks/deletion_insertion.py")``.

    The scripts are not a package; tests call their functions directly instead of parsing their output.
    """

    def load(relative: str) -> ModuleType:
        path = REPO / "scripts" / relative
        spec = importlib.util.spec_from_file_location(path.stem, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    return load
