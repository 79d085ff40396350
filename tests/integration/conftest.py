"""A tiny trained and exported ABN bundle, shared by the export and deploy tests."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

REPO = Path(__file__).resolve().parents[2]
ABN_CONFIGS = REPO / "bundles" / "abn_classification" / "configs"
EXPORT_CONFIGS = [str(ABN_CONFIGS / f"{name}.json") for name in ("inference", "export")]


@pytest.fixture(scope="session")
def exported_abn(tmp_path_factory) -> SimpleNamespace:
    """Train the ABN bundle one epoch on 8 phantoms (64x64) and export it as the bundle README says.

    ``ckpt_export`` is called in-process with the arguments of the documented command line, which only
    parses them into the same call.
    """
    from monai.bundle import ckpt_export, run

    from monai_xai.data import write_demo_dataset

    root = tmp_path_factory.mktemp("abn_export")
    data, out = root / "demo", root / "run"
    write_demo_dataset(data, n_train=8, n_val=4, n_test=4, size=64)
    run(
        config_file=str(ABN_CONFIGS / "train.json"),
        meta_file=str(ABN_CONFIGS / "metadata.json"),
        logging_file=str(ABN_CONFIGS / "logging.conf"),
        dataset_dir=str(data),
        output_dir=str(out),
        max_epochs=1,
        batch_size=4,
        val_batch_size=4,
        num_workers=0,
        spatial_size=[64, 64],
    )
    checkpoint = out / "checkpoints" / "best.pt"
    model = root / "model.ts"
    ckpt_export(
        net_id="network_export",
        filepath=str(model),
        ckpt_file=str(checkpoint),
        meta_file=str(ABN_CONFIGS / "metadata.json"),
        config_file=EXPORT_CONFIGS,
        use_trace=True,
    )
    return SimpleNamespace(root=root, data=data, checkpoint=checkpoint, model=model)


@pytest.fixture
def outside(tmp_path, monkeypatch) -> Path:
    """A working folder outside the repository, made the current one: a bundle copied there cannot lean on
    the repository's paths."""
    monkeypatch.chdir(tmp_path)
    return tmp_path
