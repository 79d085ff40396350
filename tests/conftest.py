"""Shared pytest fixtures: the real data in ../shared/data, the [deploy] interpreter, scripts as modules."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
DEPLOY_VENV_PYTHON = REPO / ".venv-deploy" / "bin" / "python"


@pytest.fixture
def one_thread() -> Iterator[None]:
    """One torch thread for the test, restored after: on two cores the other pytest worker holds the second
    one, and spin-waiting OpenMP threads would slow every op (and every timing)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path to ``../shared/data``; skips the test when the folder is not beside the checkout."""
    if not (SHARED_DATA / "README.md").is_file():
        pytest.skip(f"real data not found at {SHARED_DATA} (expected ../shared/data beside the checkout)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def deploy_python() -> str:
    """A Python with the ``[deploy]`` extra, which the deploy tests run the app and SDK imports with.

    ``MONAI_XAI_DEPLOY_PYTHON`` when set (``.ci/run`` sets it, so that a broken install fails rather than
    skips); else this interpreter when it has the SDK; else ``.venv-deploy`` (``ensure_deploy_venv`` in
    ``scripts/_venv.sh`` makes it: the extra stays out of the test venv). Skips the test when there is none.
    """
    if os.environ.get("MONAI_XAI_DEPLOY_PYTHON"):
        return os.environ["MONAI_XAI_DEPLOY_PYTHON"]
    try:
        importlib.metadata.version("monai-deploy-app-sdk")
        return sys.executable
    except importlib.metadata.PackageNotFoundError:
        pass
    if DEPLOY_VENV_PYTHON.is_file():
        return str(DEPLOY_VENV_PYTHON)
    pytest.skip(
        "no Python with the [deploy] extra: `bash .ci/run` (or `source scripts/_venv.sh; "
        "ensure_deploy_venv`) makes .venv-deploy; or set MONAI_XAI_DEPLOY_PYTHON"
    )


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
