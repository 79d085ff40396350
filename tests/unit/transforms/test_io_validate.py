"""Image I/O and input validation on tiny files written to tmp_path."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from monai.data import MetaTensor
from monai.transforms import Compose
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import (
    CTImageStorage,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    JPEGLSLossless,
    RTPlanStorage,
    generate_uid,
)

from monai_xai.data.dicom import find_dicom_series, read_dicom
from monai_xai.data.nifti import read_nifti
from monai_xai.errors import InputError
from monai_xai.transforms.io import LoadImageOrArrayd
from monai_xai.transforms.validate import PROBLEM_KINDS, ValidateItemd, validate_datalist

SERIES_A = "1.2.826.0.1.3680043.8.498.1"
SERIES_B = "1.2.826.0.1.3680043.8.498.2"


def write_dicom(
    path: Path,
    pixels: np.ndarray | None,
    *,
    series_uid: str = SERIES_A,
    syntax: str = ExplicitVRLittleEndian,
    file_meta: bool = True,
    **attrs,
) -> Path:
    """A minimal CT file; ``pixels`` of shape (frames, rows, cols) make a multi-frame file."""
    ds = Dataset()
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID = "1.2.826.0.1.3680043.8.498.9"
    ds.SeriesInstanceUID = series_uid
    ds.PatientID = "P001"
    ds.Modality = "CT"
    if pixels is not None:
        pixels = np.asarray(pixels, dtype=np.int16)
        ds.Rows, ds.Columns = pixels.shape[-2:]
        if pixels.ndim == 3:
            ds.NumberOfFrames = pixels.shape[0]
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        big_endian = syntax == ExplicitVRBigEndian
        ds.PixelData = pixels.astype(">i2" if big_endian else "<i2").tobytes()
        ds["PixelData"].VR = "OW"
    for keyword, value in attrs.items():
        setattr(ds, keyword, value)
    if file_meta:
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = syntax
        ds.save_as(path, enforce_file_format=True)
    else:
        ds.save_as(path, implicit_vr=True, little_endian=True, enforce_file_format=False)
    return path


def slice_attrs(z: float) -> dict:
    """Geometry of an axial slice at height ``z`` (LPS), 0.5 mm between rows and 0.25 mm between columns."""
    return {
        "ImageOrientationPatient": [1, 0, 0, 0, 1, 0],
        "ImagePositionPatient": [-10.0, -20.0, z],
        "PixelSpacing": [0.5, 0.25],
    }


def write_slice(folder: Path, name: str, z: float, value: int, **attrs) -> Path:
    """A 2x3 axial slice at height ``z`` filled with the stored ``value``."""
    return write_dicom(folder / name, np.full((2, 3), value), **(slice_attrs(z) | attrs))


def write_png(path: Path, arr: np.ndarray, mode: str | None = None) -> str:
    Image.fromarray(arr, mode=mode).save(path) if mode else Image.fromarray(arr).save(path)
    return str(path)


# ---------------------------------------------------------------- 2D images via PIL


def test_grey_png_keeps_rows_first(tmp_path):
    arr = np.arange(24, dtype=np.uint8).reshape(4, 6)
    path = write_png(tmp_path / "grey.png", arr)
    image = LoadImageOrArrayd("image")({"image": path})["image"]
    assert isinstance(image, MetaTensor)
    assert image.shape == (1, 4, 6) and image.dtype == torch.float32
    np.testing.assert_array_equal(image[0].numpy(), arr)
    assert image.meta["filename_or_obj"] == path
    assert image.meta["spatial_shape"] == (4, 6)


def test_colour_png_channels_first_and_alpha_dropped(tmp_path):
    rgba = np.random.default_rng(0).integers(0, 255, (5, 7, 4), dtype=np.uint8)
    rgb_path = write_png(tmp_path / "rgb.png", np.ascontiguousarray(rgba[..., :3]))
    rgba_path = write_png(tmp_path / "rgba.png", rgba)
    loaded = LoadImageOrArrayd(["rgb", "rgba"])({"rgb": rgb_path, "rgba": rgba_path})
    for key in ("rgb", "rgba"):
        assert loaded[key].shape == (3, 5, 7)
        np.testing.assert_array_equal(loaded[key].numpy(), np.moveaxis(rgba[..., :3], -1, 0))


@pytest.mark.parametrize(
    "name, arr, channels",
    [
        ("grey16.png", np.arange(12, dtype=np.uint16).reshape(3, 4) * 1000, 1),
        ("grey.bmp", np.arange(12, dtype=np.uint8).reshape(3, 4), 1),
        ("grey.tif", np.arange(12, dtype=np.uint8).reshape(3, 4), 1),
        ("colour.jpg", np.zeros((3, 4, 3), dtype=np.uint8), 3),
    ],
)
def test_other_2d_formats(tmp_path, name, arr, channels):
    image = LoadImageOrArrayd("image", dtype=None)({"image": write_png(tmp_path / name, arr)})["image"]
    assert image.shape == (channels, 3, 4)
    if channels == 1:
        np.testing.assert_array_equal(image[0].numpy(), arr)


def test_palette_png_is_expanded(tmp_path):
    indices = np.array([[0, 1], [2, 1]], dtype=np.uint8)
    grey, colour = Image.fromarray(indices, mode="P"), Image.fromarray(indices, mode="P")
    grey.putpalette([0, 0, 0, 100, 100, 100, 200, 200, 200])
    colour.putpalette([0, 0, 0, 255, 0, 0, 0, 0, 255])
    grey.save(tmp_path / "grey.png")
    colour.save(tmp_path / "colour.png")
    loaded = LoadImageOrArrayd(["g", "c"])({"g": tmp_path / "grey.png", "c": tmp_path / "colour.png"})
    np.testing.assert_array_equal(loaded["g"][0].numpy(), [[0, 100], [200, 100]])
    assert loaded["c"].shape == (3, 2, 2)
    np.testing.assert_array_equal(loaded["c"][:, 0, 1].numpy(), [255, 0, 0])


def test_unreadable_files_raise_input_error(tmp_path):
    png = write_png(
        tmp_path / "full.png", np.random.default_rng(0).integers(0, 255, (64, 64), dtype=np.uint8)
    )
    (tmp_path / "truncated.png").write_bytes(Path(png).read_bytes()[:200])
    (tmp_path / "text.png").write_text("not an image")
    (tmp_path / "notes.txt").write_text("not an image either")
    loader = LoadImageOrArrayd("image")
    for name, problem in [
        ("truncated.png", "not a readable image"),
        ("text.png", "not a readable image"),
        ("notes.txt", "unsupported file type"),
        ("missing.png", "no such file"),
    ]:
        with pytest.raises(InputError, match=problem) as info:
            loader({"image": str(tmp_path / name)})
        assert str(info.value).startswith(str(tmp_path / name))


# ---------------------------------------------------------------- arrays


@pytest.mark.parametrize(
    "shape, spatial_dims, expected",
    [
        ((5, 6), None, (1, 5, 6)),
        ((3, 5, 6), None, (3, 5, 6)),
        ((16, 5, 6), None, (1, 16, 5, 6)),
        ((2, 4, 5, 6), None, (2, 4, 5, 6)),
        ((3, 5, 6), 3, (1, 3, 5, 6)),
        ((1, 5, 6), 2, (1, 5, 6)),
    ],
)
def test_array_channel_axis(shape, spatial_dims, expected):
    loader = LoadImageOrArrayd("image", spatial_dims=spatial_dims)
    for value in (np.zeros(shape, dtype=np.uint8), torch.zeros(shape)):
        image = loader({"image": value})["image"]
        assert image.shape == expected and image.dtype == torch.float32
        assert image.spatial_ndim == len(expected) - 1


def test_array_source_and_pass_through_options():
    arr = np.arange(6, dtype=np.int16).reshape(2, 3)
    image = LoadImageOrArrayd("image")({"image": arr, "source": "case7.npy"})["image"]
    assert image.meta["filename_or_obj"] == "case7.npy"
    kept = LoadImageOrArrayd("image", ensure_channel_first=False, dtype=None)({"image": arr})["image"]
    assert kept.shape == (2, 3) and kept.dtype == torch.int16
    meta_in = MetaTensor(torch.ones(4, 5), meta={"filename_or_obj": "kept.png"})
    assert LoadImageOrArrayd("image")({"image": meta_in})["image"].meta["filename_or_obj"] == "kept.png"
    assert LoadImageOrArrayd("mask")({"mask": None})["mask"] is None


def test_array_errors():
    with pytest.raises(InputError, match="cannot place the channel axis"):
        LoadImageOrArrayd("image")({"image": np.zeros(5)})
    with pytest.raises(InputError, match="cannot place the channel axis"):
        LoadImageOrArrayd("image", spatial_dims=2)({"image": np.zeros((2, 3, 4, 5))})
    with pytest.raises(InputError, match="must be a file path") as info:
        LoadImageOrArrayd("image")({"image": [1, 2, 3], "source": "row 3"})
    assert str(info.value).startswith("row 3: ")


# ---------------------------------------------------------------- NIfTI


def test_nifti_read_and_load(tmp_path):
    data = np.arange(60, dtype=np.int16).reshape(3, 4, 5)
    affine = np.diag([-2.0, 3.0, 4.0, 1.0])
    nib.save(nib.Nifti1Image(data, affine), tmp_path / "vol.nii.gz")
    arr, meta = read_nifti(tmp_path / "vol.nii.gz")
    np.testing.assert_array_equal(arr, data)
    assert meta["spacing"] == (2.0, 3.0, 4.0) and meta["axcodes"] == "LAS" and meta["shape"] == (3, 4, 5)
    image = LoadImageOrArrayd("image")({"image": tmp_path / "vol.nii.gz"})["image"]
    assert image.shape == (1, 3, 4, 5)
    np.testing.assert_allclose(image.affine.numpy(), affine)

    nib.save(nib.Nifti2Image(np.zeros((3, 4, 5, 2), np.float32), np.eye(4)), tmp_path / "4d.nii")
    image = LoadImageOrArrayd("image")({"image": tmp_path / "4d.nii"})["image"]
    assert image.shape == (2, 3, 4, 5) and image.meta["format"] == "Nifti2Image"


def test_nifti_damaged(tmp_path):
    nib.save(nib.Nifti1Image(np.zeros((8, 8, 8), np.float32), np.eye(4)), tmp_path / "vol.nii")
    (tmp_path / "truncated.nii").write_bytes((tmp_path / "vol.nii").read_bytes()[:-100])
    (tmp_path / "text.nii.gz").write_text("not gzip")
    for name in ("truncated.nii", "text.nii.gz", "missing.nii"):
        with pytest.raises(InputError) as info:
            read_nifti(tmp_path / name)
        assert str(info.value).startswith(str(tmp_path / name))
    with pytest.raises(InputError, match="truncated.nii"):
        LoadImageOrArrayd("image")({"image": tmp_path / "truncated.nii"})


# ---------------------------------------------------------------- DICOM


def test_dicom_single_frame_rescale_and_meta(tmp_path):
    stored = np.arange(6).reshape(2, 3)
    path = write_dicom(
        tmp_path / "ct.dcm", stored, **slice_attrs(7.0), RescaleSlope=2, RescaleIntercept=-1024
    )
    arr, meta = read_dicom(path)
    assert arr.dtype == np.float32
    np.testing.assert_array_equal(arr, stored * 2 - 1024)
    assert meta["spacing"] == (0.5, 0.25) and meta["modality"] == "CT" and meta["patient_id"] == "P001"
    assert meta["series_instance_uid"] == SERIES_A and meta["number_of_frames"] == 1
    assert meta["photometric_interpretation"] == "MONOCHROME2" and meta["samples_per_pixel"] == 1
    # LPS (-10, -20, 7) is RAS (10, 20, 7); rows run along +y (LPS), i.e. -y in RAS.
    np.testing.assert_allclose(meta["affine"][:3, 3], [10.0, 20.0, 7.0])
    np.testing.assert_allclose(meta["affine"][:3, 0], [0.0, -0.5, 0.0])


@pytest.mark.parametrize("variant", ["no_meta_header", "big_endian"])
def test_dicom_encodings(tmp_path, variant):
    stored = np.arange(-3, 3).reshape(2, 3)
    if variant == "no_meta_header":
        path = write_dicom(tmp_path / "x.dcm", stored, file_meta=False)
        assert (tmp_path / "x.dcm").read_bytes()[128:132] != b"DICM"
    else:
        path = write_dicom(tmp_path / "x.dcm", stored, syntax=ExplicitVRBigEndian)
    arr, meta = read_dicom(path)
    np.testing.assert_array_equal(arr, stored)
    assert arr.dtype.isnative
    assert meta["patient_id"] == "P001"


def test_dicom_without_pixel_data(tmp_path):
    path = write_dicom(tmp_path / "plan.dcm", None, SOPClassUID=RTPlanStorage)
    with pytest.raises(InputError, match="no pixel data") as info:
        read_dicom(path)
    assert str(info.value).startswith(str(path)) and "RT Plan" in str(info.value)


def test_dicom_undecodable_transfer_syntax(tmp_path):
    path = write_dicom(
        tmp_path / "jls.dcm",
        None,
        syntax=JPEGLSLossless,
        Rows=2,
        Columns=3,
        SamplesPerPixel=1,
        PhotometricInterpretation="MONOCHROME2",
        BitsAllocated=16,
        BitsStored=16,
        HighBit=15,
        PixelRepresentation=0,
        PixelData=encapsulate([b"\xff\xd8 not a codestream \xff\xd9"]),
    )
    with pytest.raises(InputError, match="JPEG-LS") as info:
        read_dicom(path)
    assert str(JPEGLSLossless) in str(info.value) and str(info.value).startswith(str(path))


def test_dicom_multi_frame(tmp_path):
    frames = np.arange(3 * 2 * 3).reshape(3, 2, 3)
    path = write_dicom(tmp_path / "mf.dcm", frames, PixelSpacing=[0.5, 0.25], SpacingBetweenSlices=2.5)
    arr, meta = read_dicom(path)
    np.testing.assert_array_equal(arr, frames)
    assert meta["number_of_frames"] == 3 and meta["number_of_slices"] == 3
    assert meta["spacing"] == (2.5, 0.5, 0.25)
    image = LoadImageOrArrayd("image")({"image": path})["image"]
    assert image.shape == (1, 3, 2, 3)
    np.testing.assert_allclose(image.pixdim.numpy(), [2.5, 0.5, 0.25])


def test_dicom_series_sorted_by_position_with_per_slice_rescale(tmp_path):
    # File names and instance numbers disagree with the geometry on purpose.
    for name, z, instance in [("a.dcm", 10.0, 1), ("b.dcm", 0.0, 3), ("c.dcm", 5.0, 2)]:
        write_slice(tmp_path, name, z, int(z), InstanceNumber=instance, RescaleIntercept=-z, RescaleSlope=3)
    (tmp_path / "README.txt").write_text("not DICOM")
    arr, meta = read_dicom(tmp_path)
    assert arr.shape == (3, 2, 3) and arr.dtype == np.float32
    np.testing.assert_array_equal(arr[:, 0, 0], [0.0, 10.0, 20.0])  # 3 * z - z, slices ascending in z
    assert meta["spacing"] == (5.0, 0.5, 0.25) and meta["number_of_slices"] == 3
    np.testing.assert_allclose(meta["affine"][:3, 0], [0.0, 0.0, 5.0])
    np.testing.assert_allclose(meta["affine"][:3, 3], [10.0, 20.0, 0.0])
    assert meta["filename_or_obj"] == str(tmp_path)
    image = LoadImageOrArrayd("image")({"image": str(tmp_path)})["image"]
    assert image.shape == (1, 3, 2, 3)


def test_dicom_series_falls_back_to_instance_number(tmp_path):
    for name, instance in [("x1.dcm", 2), ("x2.dcm", 3), ("x3.dcm", 1)]:
        write_dicom(tmp_path / name, np.full((2, 2), instance), InstanceNumber=instance, SliceThickness=1.5)
    arr, meta = read_dicom(tmp_path)
    np.testing.assert_array_equal(arr[:, 0, 0], [1, 2, 3])
    assert meta["spacing"][0] == 1.5


def test_dicom_folder_with_two_series(tmp_path):
    for i, z in enumerate([0.0, 1.0]):
        write_slice(tmp_path, f"a{i}.dcm", z, i, series_uid=SERIES_A)
    write_slice(tmp_path, "b0.dcm", 0.0, 9, series_uid=SERIES_B)
    write_dicom(tmp_path / "plan.dcm", None, series_uid="1.2.3.999", SOPClassUID=RTPlanStorage)
    found = find_dicom_series(tmp_path)
    assert {uid: [p.name for p in paths] for uid, paths in found.items()} == {
        SERIES_A: ["a0.dcm", "a1.dcm"],
        SERIES_B: ["b0.dcm"],
    }
    with pytest.raises(InputError, match="2 DICOM series") as info:
        read_dicom(tmp_path)
    assert SERIES_A in str(info.value) and SERIES_B in str(info.value)
    assert read_dicom(tmp_path, series_uid=SERIES_A)[0].shape == (2, 2, 3)
    assert read_dicom(tmp_path, series_uid=SERIES_B)[0].shape == (2, 3)
    with pytest.raises(InputError, match="no series"):
        read_dicom(tmp_path, series_uid="1.2.3")


@pytest.mark.parametrize("problem", ["orientation", "duplicate", "size", "empty"])
def test_dicom_folder_that_is_not_one_volume(tmp_path, problem):
    write_slice(tmp_path, "s0.dcm", 0.0, 0)
    if problem == "orientation":
        write_slice(tmp_path, "s1.dcm", 1.0, 1, ImageOrientationPatient=[0, 1, 0, 0, 0, -1])
    elif problem == "duplicate":
        write_slice(tmp_path, "s1.dcm", 0.0, 1)
    elif problem == "size":
        write_dicom(tmp_path / "s1.dcm", np.zeros((4, 4)), **slice_attrs(1.0))
    else:
        (tmp_path / "s0.dcm").unlink()
        (tmp_path / "README").write_text("nothing here")
    match = {"orientation": "orientations", "duplicate": "share the same", "size": "differ in size"}
    with pytest.raises(InputError, match=match.get(problem, "no DICOM files with pixel data")) as info:
        read_dicom(tmp_path)
    assert str(info.value).startswith(str(tmp_path))


# ---------------------------------------------------------------- validation


def _item(image=None, mask=None, label=1, name="img.png"):
    image = np.random.default_rng(0).random((1, 8, 8)).astype(np.float32) if image is None else image
    item = {"image": MetaTensor(torch.as_tensor(image), meta={"filename_or_obj": name}), "label": label}
    if mask is not None:
        item["mask"] = MetaTensor(torch.as_tensor(mask), meta={"filename_or_obj": "mask.png"})
    return item


def test_validate_accepts_a_good_item():
    item = _item(mask=np.zeros((1, 8, 8)))
    assert ValidateItemd(num_classes=3, expected_channels=1, require_mask=True)(item) is item


@pytest.mark.parametrize(
    "kind, item, checks, text",
    [
        ("nonfinite", _item(image=np.full((1, 4, 4), np.nan)), {}, "16 NaN"),
        ("nonfinite", _item(image=np.array([[[0.0, np.inf]]])), {}, "1 infinite"),
        ("constant", _item(image=np.zeros((1, 4, 4))), {}, "constant"),
        ("size_mismatch", _item(mask=np.zeros((1, 8, 9))), {}, "mask mask.png has spatial size (8, 9)"),
        ("missing_mask", _item(), {"require_mask": True}, "mask is required"),
        ("label_range", _item(label=3), {"num_classes": 3}, "label 3 is not a class index in [0, 3)"),
        ("label_range", _item(label=-1), {"num_classes": 3}, "label -1"),
        ("label_range", _item(label=1.5), {"num_classes": 3}, "label 1.5"),
        ("label_range", _item(label=torch.tensor([0, 7])), {"num_classes": 3}, "label 7"),
        ("label_range", _item(label="benign"), {"num_classes": 3}, "not a number"),
        ("channels", _item(), {"expected_channels": 3}, "1 channels, expected 3"),
    ],
)
def test_validate_problems(kind, item, checks, text):
    with pytest.raises(InputError) as info:
        ValidateItemd(**checks)(item)
    assert str(info.value).startswith("img.png: ") and text in str(info.value)
    skipper = ValidateItemd(**checks, on_error="skip")
    assert skipper(item) is None
    assert skipper.skipped == {kind: 1}


def test_validate_unsigned_dicom_types():
    image = torch.as_tensor(np.arange(6, dtype=np.uint16).reshape(1, 2, 3))
    assert ValidateItemd()({"image": image}) is not None
    with pytest.raises(InputError, match="constant"):
        ValidateItemd()({"image": torch.zeros(1, 2, 2, dtype=torch.uint16)})


def test_validate_names_the_source_of_plain_arrays_and_rejects_bad_options():
    with pytest.raises(InputError, match=r"^case9: image is constant"):
        ValidateItemd()({"image": torch.zeros(1, 2, 2), "source": "case9"})
    with pytest.raises(ValueError, match="on_error"):
        ValidateItemd(on_error="ignore")


def test_validate_datalist(tmp_path):
    rng = np.random.default_rng(0)
    good = write_png(tmp_path / "good.png", rng.integers(0, 255, (8, 8), dtype=np.uint8))
    mask = write_png(tmp_path / "mask.png", np.zeros((8, 8), dtype=np.uint8))
    small_mask = write_png(tmp_path / "small_mask.png", np.zeros((4, 8), dtype=np.uint8))
    flat = write_png(tmp_path / "flat.png", np.full((8, 8), 7, dtype=np.uint8))
    (tmp_path / "broken.png").write_bytes(Path(good).read_bytes()[:60])
    datalist = [
        {"image": good, "mask": mask, "label": 0},
        {"image": good, "mask": small_mask, "label": 1},
        {"image": flat, "mask": mask, "label": 1},
        {"image": str(tmp_path / "broken.png"), "mask": mask, "label": 1},
        {"image": good, "mask": mask, "label": 5},
    ]
    load = LoadImageOrArrayd(["image", "mask"])
    for loader in (load, Compose([load])):  # Compose wraps InputError in RuntimeError
        kept, counts = validate_datalist(datalist, loader, num_classes=2, progress=True)
        assert kept == datalist[:1]
        assert counts == {"unreadable": 1, "size_mismatch": 1, "constant": 1, "label_range": 1} | {
            kind: 0 for kind in PROBLEM_KINDS if kind not in ("size_mismatch", "constant", "label_range")
        }

    def buggy(item):
        raise TypeError("a bug, not a bad file")

    with pytest.raises(TypeError):
        validate_datalist(datalist, buggy)


def test_monochrome1_dicom_is_inverted_after_loading(tmp_path):
    """The loader's DICOM metadata reaches InvertMonochrome1d, so MONOCHROME1 files come out inverted."""
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    from monai_xai.transforms import InvertMonochrome1d, LoadImageOrArrayd

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.1"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(str(tmp_path / "cr.dcm"), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.Modality = "CR"
    ds.Rows, ds.Columns, ds.SamplesPerPixel, ds.PhotometricInterpretation = 2, 2, 1, "MONOCHROME1"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.PixelData = np.array([[0, 10], [20, 30]], dtype=np.uint16).tobytes()
    ds.save_as(tmp_path / "cr.dcm", enforce_file_format=True)
    item = LoadImageOrArrayd(keys="image")({"image": str(tmp_path / "cr.dcm")})
    out = InvertMonochrome1d(keys="image")(item)["image"]
    assert out.flatten().tolist() == [30, 20, 10, 0]
