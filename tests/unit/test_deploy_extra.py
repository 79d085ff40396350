"""The optional ``[deploy]`` extra: monai-xai imports without it; with it, the SDK and MONAI import."""

from __future__ import annotations

import importlib
import importlib.metadata
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _sdk_version() -> str | None:
    try:
        return importlib.metadata.version("monai-deploy-app-sdk")
    except importlib.metadata.PackageNotFoundError:
        return None


def test_package_imports_without_the_extra():
    if _sdk_version() is not None:
        pytest.skip("monai-deploy-app-sdk is installed here; this test needs an environment without [deploy]")
    import monai_xai

    assert monai_xai.deploy.DeployedABN.__name__ == "DeployedABN"
    for module in ("monai_xai.deploy.app", "monai_xai.deploy.operators"):
        with pytest.raises(ImportError, match=r'MONAI Deploy App SDK: pip install "monai-xai\[deploy\]"'):
            importlib.import_module(module)


def test_extra_imports_and_keeps_the_torch_pin():
    version = _sdk_version()
    if version is None:
        pytest.skip('monai-deploy-app-sdk not installed (pip install -e ".[deploy]")')
    # a fresh interpreter: with the SDK installed, ``import monai`` imports monai.deploy (and holoscan) itself
    code = (
        "import monai, torch, highdicom\n"
        "from monai.deploy.operators import DICOMDataLoaderOperator, DICOMSeriesSelectorOperator\n"
        "from monai_xai.deploy.app import ABNDeployApp\n"
        "print(torch.__version__)\n"
    )
    cmd = [sys.executable, "-c", code]
    result = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1].startswith("2.13.0")
    assert version.startswith("4.0.")
