"""The optional ``[deploy]`` extra: monai-xai imports without it; with it, the SDK and MONAI import."""

from __future__ import annotations

import importlib
import importlib.metadata
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]


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


def test_extra_imports_and_keeps_the_torch_pin(deploy_python):
    import torch

    # a fresh interpreter: with the SDK installed, ``import monai`` imports monai.deploy (and holoscan) itself
    code = (
        "import importlib.metadata, monai, torch, highdicom\n"
        "from monai.deploy.operators import DICOMDataLoaderOperator, DICOMSeriesSelectorOperator\n"
        "from monai_xai.deploy.app import ABNDeployApp\n"
        "print(torch.__version__, importlib.metadata.version('monai-deploy-app-sdk'))\n"
    )
    cmd = [deploy_python, "-c", code]
    result = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    torch_version, sdk_version = result.stdout.strip().splitlines()[-1].split()
    assert torch_version == torch.__version__ and torch_version.startswith("2.13.0")  # the extra's venv too
    assert sdk_version.startswith("4.0.")
