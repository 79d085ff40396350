"""Bad inputs to the expert-correction workflow fail with errors that name the file and the problem."""

from __future__ import annotations

import csv
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from PIL import Image

from monai_xai.errors import InputError
from monai_xai.transforms import LoadCorrectedMapd

REPO = Path(__file__).resolve().parents[3]
ABN = REPO / "bundles" / "abn_classification" / "configs"
MS = REPO / "bundles" / "multiscale_abn_correction" / "configs"


def _png(path: Path, array: np.ndarray) -> str:
    Image.fromarray(array).save(path)
    return str(path)


def _nifti(path: Path, array: np.ndarray) -> str:
    nib.save(nib.Nifti1Image(array.astype(np.float32), np.eye(4)), path)
    return str(path)


def _error_chain(error: BaseException) -> str:
    """Every message of an exception and its causes: MONAI re-raises transform errors."""
    messages = []
    while error is not None:
        messages.append(str(error))
        error = error.__cause__ or error.__context__
    return "\n".join(messages)


def test_8bit_maps_are_binarised_at_half_intensity(tmp_path) -> None:
    soft = np.tile(np.arange(0, 256, 16, dtype=np.uint8), (4, 1))  # 0, 16, ..., 240 along each row
    item = LoadCorrectedMapd("mask")({"mask": _png(tmp_path / "soft.png", soft), "label": 1})
    assert item["mask"].shape == (1, 4, 16) and item["label"] == 1
    # 128 of 255 and above is lesion: the last eight columns (128..240).
    assert item["mask"][0, 0].tolist() == [0.0] * 8 + [1.0] * 8
    assert item["mask"].meta["filename_or_obj"].endswith("soft.png")
    soft_float = np.linspace(0.0, 1.0, 11).reshape(1, 11, 1)
    item = LoadCorrectedMapd("mask")({"mask": _nifti(tmp_path / "soft.nii.gz", soft_float)})
    assert item["mask"].sum() == 6  # 0.5, 0.6, ..., 1.0
    assert LoadCorrectedMapd("mask")({"mask": None}) == {"mask": None}


RAMP = np.linspace(-0.5, 0.5, 64).reshape(1, 8, 8)
SIXTEEN_BIT = (16 * np.arange(64)).astype(np.uint16).reshape(8, 8)  # 0..1008


@pytest.mark.parametrize(
    "writer, name, array, problem",
    [
        (_nifti, "scaled.nii.gz", 255.0 * np.eye(8)[None], r"values lie in \[0, 255\], outside \[0, 1\]"),
        (_nifti, "signed.nii.gz", RAMP, r"values lie in \[-0.5, 0.5\], outside \[0, 1\]"),
        (_nifti, "nan.nii.gz", np.full((1, 8, 8), np.nan), "has 64 NaN and 0 infinite values"),
        (_png, "deep.png", SIXTEEN_BIT, r"values lie in \[0, 1008\], outside \[0, 255\] .*8-bit grey PNG"),
    ],
)
def test_maps_outside_their_range_are_refused(tmp_path, writer, name, array, problem) -> None:
    path = writer(tmp_path / name, array)
    with pytest.raises(InputError, match=f"{name}: corrected map {problem}"):
        LoadCorrectedMapd("mask")({"mask": path})


def test_missing_map_file_is_named(tmp_path) -> None:
    with pytest.raises(InputError, match="gone.png: no such file"):
        LoadCorrectedMapd("mask")({"mask": str(tmp_path / "gone.png")})
    with pytest.raises(ValueError, match="threshold must lie in"):
        LoadCorrectedMapd("mask", threshold=0.0)


@pytest.fixture
def demo_with_maps(tmp_path) -> Path:
    """The demo phantoms with a ``corrected_map`` column: for the first three training images a map that is
    200 of 255 in a square, one of 32x32 pixels for a 64x64 image, and one that is 100 of 255 in a square."""
    from monai_xai.data import write_demo_dataset

    labels = write_demo_dataset(tmp_path / "demo", n_train=4, n_val=2, n_test=2, size=64)
    (tmp_path / "demo" / "maps").mkdir()
    good = np.zeros((64, 64), dtype=np.uint8)
    good[16:48, 16:48] = 200
    _png(tmp_path / "demo" / "maps" / "good.png", good)
    _png(tmp_path / "demo" / "maps" / "small.png", np.full((32, 32), 255, dtype=np.uint8))
    _png(tmp_path / "demo" / "maps" / "faint.png", good // 2)
    rows = list(csv.DictReader(open(labels)))
    for row, corrected in zip(rows, ["maps/good.png", "maps/small.png", "maps/faint.png"] + [""] * len(rows)):
        row["corrected_map"] = corrected
    with open(labels, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return tmp_path / "demo"


def _finetune_parser(dataset_dir: Path, **overrides):
    from monai.bundle import ConfigParser

    parser = ConfigParser()
    parser.read_config([str(ABN / "train.json"), str(MS / "train.json"), str(MS / "finetune.json")])
    settings = {"dataset_dir": str(dataset_dir), "num_workers": 0, "map_source": "corrected_map"}
    parser.update({**settings, **overrides})
    return parser


def test_finetune_reads_corrected_maps_and_names_one_of_the_wrong_size(demo_with_maps) -> None:
    # The training dataset caches its deterministic transforms, so a bad map fails while it is built.
    with pytest.raises(Exception) as info:
        _finetune_parser(demo_with_maps).get_parsed_content("train#dataset")
    assert "train_00001.png: mask " in _error_chain(info.value)
    assert "small.png has spatial size (32, 32), the image (64, 64)" in _error_chain(info.value)
    # With the dataset's masks standing in, the corrected maps are not read at all.
    masks = _finetune_parser(demo_with_maps, map_source="mask").get_parsed_content("train#dataset")
    assert masks[1]["has_mask"] == 1
    _png(demo_with_maps / "maps" / "small.png", np.zeros((64, 64), dtype=np.uint8))
    parser = _finetune_parser(demo_with_maps)
    dataset = parser.get_parsed_content("train#dataset")
    assert parser.get_parsed_content("correction").n_with_map == 3
    # 200 of 255 reaches half intensity, 100 does not (the training augmentation moves the square about).
    assert dataset[0]["has_mask"] == 1 and dataset[0]["mask"].sum() > 16 * 16
    assert dataset[2]["has_mask"] == 1 and dataset[2]["mask"].sum() == 0
    assert dataset[3]["has_mask"] == 0


def test_finetune_datalist_naming_a_missing_map_fails_before_training(demo_with_maps) -> None:
    (demo_with_maps / "maps" / "small.png").unlink()
    with pytest.raises(Exception) as info:  # MONAI wraps the InputError of the expression
        _finetune_parser(demo_with_maps).get_parsed_content("correction")
    missing = str(demo_with_maps / "maps" / "small.png")
    assert f"labels.csv: row 3: corrected_map file {missing!r} does not exist" in _error_chain(info.value)


@pytest.mark.parametrize("fraction", [0.0, -0.1, 1.5, float("nan")])
def test_fractions_outside_0_1_are_refused_by_strategies_and_sweep(fraction, capsys) -> None:
    from monai_xai.active_learning import SampleRecords, get_strategy
    from monai_xai.active_learning.sweep import main, run_sweep

    records = SampleRecords(ids=["a", "b"], probs=[[0.9, 0.1], [0.4, 0.6]])
    with pytest.raises(ValueError, match=f"fraction must lie in \\(0, 1\\], got {fraction}"):
        get_strategy("lowest_confidence").select(records, fraction)
    with pytest.raises(ValueError, match="fractions must lie in \\(0, 1\\]"):
        run_sweep(["train.json"], "finetune.json", ["evaluate.json"], "out", fractions=[0.5, fraction])
    args = ["--config_file", "t.json", "--finetune_file", "f.json", "--evaluate_file", "e.json"]
    with pytest.raises(SystemExit) as exit_info:
        main([*args, "--output_dir", "out", "--fractions", "0.5", str(fraction)])
    assert exit_info.value.code == 2
    assert f"argument --fractions: {fraction} is not in (0, 1]" in capsys.readouterr().err


def test_checkpoint_of_another_backbone_is_named(tmp_path) -> None:
    from monai_xai.networks import MultiScaleAttentionBranchNetwork, get_classifier, load_weights

    torch.save({"model": MultiScaleAttentionBranchNetwork("resnet34").state_dict()}, tmp_path / "ms34.pt")
    with pytest.raises(InputError, match="ms34.pt: .*it holds a resnet34 backbone, the network a resnet18"):
        load_weights(MultiScaleAttentionBranchNetwork("resnet18"), tmp_path / "ms34.pt")
    torch.save(get_classifier("dynamic", backbone="resnet50").state_dict(), tmp_path / "abn50.pt")
    with pytest.raises(InputError, match="abn50.pt: .*it holds a resnet50 backbone, the network a resnet34"):
        load_weights(MultiScaleAttentionBranchNetwork("resnet34"), tmp_path / "abn50.pt")
    # Same depth, other head: no backbone claim, the mismatch is listed as before.
    torch.save(MultiScaleAttentionBranchNetwork("resnet18", num_classes=3).state_dict(), tmp_path / "ms18.pt")
    with pytest.raises(InputError, match="shape mismatches") as info:
        load_weights(MultiScaleAttentionBranchNetwork("resnet18"), tmp_path / "ms18.pt")
    assert "it holds a" not in str(info.value)


def test_sweep_strategy_arguments_name_known_strategies() -> None:
    from monai_xai.active_learning.sweep import run_sweep

    with pytest.raises(ValueError, match="unknown strategies \\['randm'\\]"):
        run_sweep(["t.json"], "f.json", ["e.json"], "out", strategies=["random"], strategy_args={"randm": {}})
