"""Labels follow the configuration's class names, and bad inputs stop at validation, naming their file."""

from __future__ import annotations

import logging
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from monai.transforms import Compose
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

from monai_xai.data import csv_datalist, dataset_splits, medmnist_datalist
from monai_xai.data.make_split import write_split_file
from monai_xai.errors import InputError, input_error_behind
from monai_xai.transforms import (
    EnsureMaskd,
    LoadImageOrArrayd,
    ValidateItemd,
    check_splits,
    get_preset,
    inference_transforms,
)

CLASS_NAMES = ["smooth", "irregular"]  # reverse alphabetical: sorting would swap them
BUNDLES = Path(__file__).resolve().parents[3] / "bundles"
TRAIN_CONFIGS = ["abn_classification/configs/train.json", "agcyclegan_explainer/configs/train.json"]


def _png(path: Path, array: np.ndarray) -> Path:
    Image.fromarray(array).save(path)
    return path


def _image(path: Path, seed: int = 0) -> Path:
    return _png(path, np.random.default_rng(seed).integers(0, 255, (8, 8), dtype=np.uint8))


def _names_csv(tmp_path: Path, labels: list[str]) -> Path:
    lines = ["image,label"]
    for i, label in enumerate(labels):
        _image(tmp_path / f"{label or 'blank'}_{i}.png", seed=i)
        lines.append(f"{label or 'blank'}_{i}.png,{label}")
    csv_path = tmp_path / "labels.csv"
    csv_path.write_text("\n".join(lines) + "\n")
    return csv_path


# --- labels ---------------------------------------------------------------------------------------------


def test_label_names_map_through_class_names_in_every_split(tmp_path):
    csv_path = _names_csv(tmp_path, ["irregular", "smooth"] * 8)
    parts = dataset_splits("csv", csv_path, class_names=CLASS_NAMES, split_file=None)
    items = parts["train"] + parts["val"] + parts["test"]
    assert len(items) == 16
    for item in items:
        assert item["label"] == CLASS_NAMES.index(Path(item["image"]).name.split("_")[0]), item


def _bundle_parser(config: str, overrides: dict):
    from monai.bundle import ConfigParser

    parser = ConfigParser()
    parser.read_config(str(BUNDLES / config))
    parser.update(overrides)
    return parser


@pytest.mark.parametrize("config", TRAIN_CONFIGS)
def test_bundle_configs_map_label_names_through_their_class_names(tmp_path, config):
    csv_path = _names_csv(tmp_path, ["irregular", "smooth"] * 8)
    overrides = {"dataset_source": "csv", "dataset_path": str(csv_path), "datalist_args": {}}
    parts = _bundle_parser(config, overrides | {"class_names": CLASS_NAMES}).get_parsed_content(
        "dataset_splits"
    )
    for item in parts["train"] + parts["val"] + parts["test"]:
        assert item["label"] == CLASS_NAMES.index(Path(item["image"]).name.split("_")[0]), item


@pytest.mark.parametrize("config", TRAIN_CONFIGS)
def test_bundle_configs_check_spatial_dims_and_mask_values_before_training(tmp_path, config):
    image, volume = _image(tmp_path / "img.png"), _volume(tmp_path)
    label_map = np.zeros((8, 8), np.uint8)
    label_map[1:4, 1:4], label_map[5:7, 5:7] = 1, 2
    _png(tmp_path / "label_map.png", label_map)
    (tmp_path / "labels.csv").write_text(
        f"image,mask,label\n{image.name},label_map.png,1\n{volume.name},,0\n" + f"{image.name},,0\n" * 4
    )
    overrides = {
        "dataset_source": "csv",
        "dataset_path": str(tmp_path / "labels.csv"),
        "datalist_args": {},
        "split_file": None,
        "input_check_dir": None,
        "class_names": CLASS_NAMES,
        "num_classes": 2,
    }
    parts = {"train": csv_datalist(tmp_path / "labels.csv"), "val": [], "test": []}
    with pytest.raises(Exception) as info:
        _bundle_parser(config, overrides | {"dataset_splits": parts}).get_parsed_content("splits")
    message = input_error_behind(info.value)
    assert f"{volume}: " in message and "has 3 spatial dimensions" in message
    assert f"{tmp_path / 'label_map.png'}: mask values {{0, 1, 2}} are not binary" in message
    parts["train"] = [item for item in parts["train"] if item["image"] != str(volume)]
    parser = _bundle_parser(config, overrides | {"dataset_splits": parts, "mask_threshold": 1})
    assert parser.get_parsed_content("splits")["input_check"]["skipped"] == 0


def test_class_folders_map_through_class_names(tmp_path, caplog):
    for name in ("irregular", "smooth", "notes"):
        (tmp_path / name).mkdir()
        for i in range(6):
            _image(tmp_path / name / f"{name}_{i}.png", seed=i)
    with caplog.at_level(logging.WARNING, logger="monai_xai.data.tabular"):
        parts = dataset_splits("folder", tmp_path, class_names=CLASS_NAMES, split_file=None)
    assert (
        "subfolders ['notes'] are not among the class names ['smooth', 'irregular']: left out" in caplog.text
    )
    items = parts["train"] + parts["val"] + parts["test"]
    assert len(items) == 12
    for item in items:
        assert item["label"] == CLASS_NAMES.index(Path(item["image"]).parent.name)


def test_unknown_label_name_names_the_csv_row_and_the_valid_names(tmp_path):
    csv_path = _names_csv(tmp_path, ["smooth", "irregullar", "irregular"])
    with pytest.raises(InputError) as info:
        csv_datalist(csv_path, class_names=CLASS_NAMES)
    message = str(info.value)
    assert message.startswith(f"{csv_path}: row 3: label 'irregullar'")
    assert "['smooth', 'irregular']" in message


def test_empty_label_cell_is_an_error_not_a_switch_to_names(tmp_path):
    csv_path = _names_csv(tmp_path, ["0", "", "1"])
    with pytest.raises(InputError, match=r"labels\.csv: row 3: empty 'label' cell"):
        csv_datalist(csv_path)
    with pytest.raises(InputError, match="row 3: empty 'label' cell"):
        dataset_splits("csv", csv_path, class_names=CLASS_NAMES, split_file=None)


def test_integer_labels_stay_integers_within_the_class_names(tmp_path):
    csv_path = _names_csv(tmp_path, ["1", "0", "1"])
    assert [item["label"] for item in csv_datalist(csv_path, class_names=CLASS_NAMES)] == [1, 0, 1]
    csv_path = _names_csv(tmp_path, ["1", "0", "2"])
    with pytest.raises(
        InputError, match=r"row 4: label 2 in column 'label' is not a class index in \[0, 2\)"
    ):
        csv_datalist(csv_path, class_names=CLASS_NAMES)


def test_names_without_class_names_are_numbered_alphabetically_with_a_warning(tmp_path, caplog):
    csv_path = _names_csv(tmp_path, ["smooth", "irregular"])
    with caplog.at_level(logging.WARNING, logger="monai_xai.data.tabular"):
        items = csv_datalist(csv_path)
    assert [item["label"] for item in items] == [1, 0]
    assert "numbered alphabetically: 0=irregular, 1=smooth" in caplog.text


def test_kept_labels_need_integer_ids_and_one_name_each(tmp_path):
    ids_csv = _names_csv(tmp_path, ["0", "1", "2"] * 4)
    parts = dataset_splits(
        "csv", ids_csv, labels=[2, 1], class_names=["malignant", "benign"], split_file=None
    )
    kept = parts["train"] + parts["val"] + parts["test"]
    assert sorted(item["label"] for item in kept) == [0] * 4 + [1] * 4
    with pytest.raises(InputError, match=r"labels \[2, 1\] keeps 2 classes but class_names .* names 3"):
        dataset_splits("csv", ids_csv, labels=[2, 1], class_names=["a", "b", "c"], split_file=None)
    (tmp_path / "names").mkdir()
    names_csv = _names_csv(tmp_path / "names", ["smooth", "irregular"])
    with pytest.raises(InputError, match="labels.csv: column 'label' holds class names"):
        dataset_splits("csv", names_csv, labels=[1], class_names=["smooth"], split_file=None)


def test_medmnist_labels_must_fit_the_class_names(tmp_path):
    path = tmp_path / "toy.npz"
    splits = {f"{s}_images": np.zeros((2, 4, 4), np.uint8) for s in ("train", "val", "test")}
    labels = {f"{s}_labels": np.array([[0], [1]]) for s in ("train", "val", "test")}
    np.savez(path, **splits, **(labels | {"test_labels": np.array([[0], [2]])}))
    assert [item["label"] for item in medmnist_datalist(path, "test")] == [0, 2]
    with pytest.raises(InputError, match=r"toy\.npz: test_labels\[1\] is 2, not a class index in \[0, 2\)"):
        dataset_splits("medmnist", path, class_names=CLASS_NAMES)


def test_make_split_checks_names_against_class_names(tmp_path):
    csv_path = _names_csv(tmp_path, ["smooth", "irregular", "smoth"])
    with pytest.raises(InputError, match="row 4: label 'smoth'"):
        write_split_file(csv_path, tmp_path / "split.json", class_names=CLASS_NAMES)


# --- empty path cells -----------------------------------------------------------------------------------


def test_empty_image_cell_names_the_csv_row_when_read(tmp_path):
    _image(tmp_path / "a.png")
    _image(tmp_path / "a_mask.png")
    csv_path = tmp_path / "labels.csv"
    csv_path.write_text("image,mask,label\na.png,a_mask.png,0\n  ,a_mask.png,1\n")
    with pytest.raises(InputError, match=r"labels\.csv: row 3: the 'image' cell is empty"):
        csv_datalist(csv_path)
    csv_path.write_text("image,mask,label\na.png, ,0\n")
    assert "mask" not in csv_datalist(csv_path)[0], "a blank mask cell is no mask, not the CSV's folder"


# --- masks ----------------------------------------------------------------------------------------------


def _mask_item(tmp_path: Path, mask: np.ndarray) -> dict:
    image = _image(tmp_path / "img.png")
    mask_path = _png(tmp_path / "mask.png", mask)
    return LoadImageOrArrayd(["image", "mask"])({"image": str(image), "mask": str(mask_path), "label": 0})


def test_label_map_mask_is_an_error_unless_a_threshold_is_given(tmp_path):
    mask = np.zeros((8, 8), np.uint8)
    mask[1:4, 1:4], mask[5:7, 5:7] = 1, 2
    item = _mask_item(tmp_path, mask)
    with pytest.raises(InputError) as info:
        EnsureMaskd()(item)
    assert str(info.value).startswith(f"{tmp_path / 'mask.png'}: mask values {{0, 1, 2}} are not binary")
    binary = EnsureMaskd(mask_threshold=1)(item)["mask"]
    assert binary.sum() == 4 and binary[0, 5:7, 5:7].all()


def test_binary_masks_pass_in_both_scales(tmp_path):
    for top in (1, 255):
        mask = np.zeros((8, 8), np.uint8)
        mask[2:5, 2:5] = top
        out = EnsureMaskd()(_mask_item(tmp_path, mask))["mask"]
        assert out.sum() == 9 and set(out.unique().tolist()) == {0.0, 1.0}


def test_nan_in_a_mask_is_an_error_naming_it(tmp_path):
    mask = np.zeros((8, 8), np.float32)
    mask[2, 2], mask[3, 3] = np.nan, 1.0
    image = tmp_path / "img.nii.gz"
    nib.save(nib.Nifti1Image(np.random.default_rng(0).random((8, 8)).astype(np.float32), np.eye(4)), image)
    mask_path = tmp_path / "mask.nii.gz"
    nib.save(nib.Nifti1Image(mask, np.eye(4)), mask_path)
    item = LoadImageOrArrayd(["image", "mask"])({"image": str(image), "mask": str(mask_path)})
    with pytest.raises(InputError, match=r"mask\.nii\.gz: mask has 1 NaN and 0 infinite values"):
        EnsureMaskd()(item)
    with pytest.raises(InputError, match="NaN"):
        EnsureMaskd(mask_threshold=0.5)(item)


def test_mostly_foreground_mask_is_warned_about_as_inverted(tmp_path, caplog):
    mask = np.full((8, 8), 255, np.uint8)
    mask[2:4, 2:4] = 0
    with caplog.at_level(logging.WARNING, logger="monai_xai.transforms.mask"):
        EnsureMaskd()(_mask_item(tmp_path, mask))
    assert "mask.png: 94% of the mask is foreground: is it inverted" in caplog.text


def test_preflight_refuses_a_label_map_and_rechecks_with_a_threshold(tmp_path):
    mask = np.zeros((8, 8), np.uint8)
    mask[1:4, 1:4] = 3
    item = {"image": str(_image(tmp_path / "img.png")), "mask": str(_png(tmp_path / "mask.png", mask))}
    item["label"] = 0
    cache = tmp_path / "cache"

    def loader(threshold):
        return Compose([LoadImageOrArrayd(["image", "mask"]), EnsureMaskd(mask_threshold=threshold)])

    with pytest.raises(InputError, match=r"mask\.png: mask values \{0, 3\} are not binary"):
        check_splits({"train": [item]}, loader(None), cache_dir=cache, num_classes=2)
    checked = check_splits({"train": [item]}, loader(0), cache_dir=cache, num_classes=2)
    assert checked["input_check"]["skipped"] == 0 and not checked["input_check"]["cached"]


# --- spatial dimensions ---------------------------------------------------------------------------------


def _volume(tmp_path: Path) -> Path:
    path = tmp_path / "volume.nii.gz"
    volume = np.random.default_rng(0).random((8, 8, 6)).astype(np.float32)
    nib.save(nib.Nifti1Image(volume, np.eye(4)), path)
    return path


def test_a_volume_among_2d_images_is_refused_before_any_transform(tmp_path):
    volume = _volume(tmp_path)
    image = _image(tmp_path / "img.png")
    splits = {"train": [{"image": str(image), "label": 0}, {"image": str(volume), "label": 1}]}
    loader = Compose([LoadImageOrArrayd(["image", "mask"], allow_missing_keys=True), EnsureMaskd()])
    with pytest.raises(InputError) as info:
        check_splits(splits, loader, num_classes=2, spatial_dims=2)
    assert str(info.value).splitlines()[-1] == (
        f"  train: {volume}: image has 3 spatial dimensions (channel-first shape (1, 8, 8, 6)), "
        "expected 2 (spatial_dims=2)"
    )
    with pytest.raises(InputError, match=r"volume\.nii\.gz: image has 3 spatial dimensions"):
        ValidateItemd(spatial_dims=2)(loader(splits["train"][1]))
    assert ValidateItemd(spatial_dims=3)(loader(splits["train"][1])) is not None


def test_inference_refuses_a_volume_for_a_2d_network(tmp_path):
    volume = _volume(tmp_path)
    with pytest.raises(RuntimeError) as info:
        inference_transforms("ultrasound", (16, 16), 1, spatial_dims=2)({"image": str(volume)})
    assert isinstance(info.value.__cause__, InputError)
    assert "volume.nii.gz: image has 3 spatial dimensions" in str(info.value.__cause__)


# --- 16-bit images --------------------------------------------------------------------------------------


def _ramp_uint16(tmp_path: Path) -> Path:
    """A 16x16 uint16 PNG whose values rise from 0 to 60000 in 256 steps."""
    ramp = (np.arange(256, dtype=np.float64) * 60000 / 255).astype(np.uint16).reshape(16, 16)
    return _png(tmp_path / "ramp16.png", ramp)


def _uint16_dicom(path: Path) -> Path:
    """A MONOCHROME2 secondary-capture file, 16 bits unsigned, no rescale: values up to 4080."""
    pixels = (np.arange(256, dtype=np.uint16) * 16).reshape(16, 16)
    ds = Dataset()
    ds.SOPClassUID, ds.SOPInstanceUID = SecondaryCaptureImageStorage, generate_uid()
    ds.Modality, ds.Rows, ds.Columns, ds.SamplesPerPixel = "OT", 16, 16, 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.PixelData = pixels.astype("<u2").tobytes()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.save_as(path, enforce_file_format=True)
    return path


@pytest.mark.parametrize("name", ["fundus", "photo_rgb", "ultrasound", "xray"])
def test_uint16_images_keep_their_range_through_the_2d_presets(tmp_path, name):
    item = LoadImageOrArrayd("image")({"image": str(_ramp_uint16(tmp_path))})
    assert item["image"].max() > 255 and item["image"].meta["stored_dtype"] == "uint16"
    kwargs = {"max_value": 65535} if name == "photo_rgb" else {}
    out = get_preset(name, spatial_size=None, **kwargs)(item)["image"].as_tensor()[0]
    assert out.min() >= 0 and out.max() <= 1
    assert len(out.unique()) > 200, "the 16-bit levels must not collapse"
    assert float((out >= 0.999).float().mean()) < 0.05, "nor be clipped white"
    row = out[8]
    assert bool((row[1:] >= row[:-1]).all()), "brighter stays brighter"


@pytest.mark.parametrize("name", ["ct", "photo_rgb"])
def test_presets_with_a_fixed_scale_refuse_uint16_naming_file_and_type(tmp_path, name):
    path = _ramp_uint16(tmp_path)
    item = LoadImageOrArrayd("image")({"image": str(path)})
    with pytest.raises(RuntimeError) as info:
        get_preset(name, spatial_size=None)(item)
    error = info.value.__cause__
    assert isinstance(error, InputError) and str(error).startswith(f"{path}: ")
    assert "uint16" in str(error) and name in str(error)


def test_uint16_dicom_keeps_its_range_as_a_radiograph_and_is_refused_as_ct(tmp_path):
    path = _uint16_dicom(tmp_path / "plain.dcm")
    item = LoadImageOrArrayd("image")({"image": str(path)})
    assert item["image"].meta["stored_dtype"] == "uint16" and item["image"].max() == 4080
    out = get_preset("xray", spatial_size=None)(item)["image"].as_tensor()
    assert len(out.unique()) > 200 and out.max() == 1
    with pytest.raises(RuntimeError) as info:
        get_preset("ct", spatial_size=None)(item)
    assert str(info.value.__cause__).startswith(f"{path}: stored as uint16")
