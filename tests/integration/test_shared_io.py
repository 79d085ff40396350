"""Image I/O on the real files in ../shared/data: DICOM samples, NIfTI volumes and BUSI PNGs."""

from __future__ import annotations

import csv
import logging

import numpy as np
import pydicom
import pytest

from monai_xai.data.dicom import find_dicom_series, read_dicom
from monai_xai.data.nifti import read_nifti
from monai_xai.errors import InputError
from monai_xai.transforms.io import LoadImageOrArrayd
from monai_xai.transforms.validate import ValidateItemd, validate_datalist

pytestmark = pytest.mark.integration

NO_PIXELS = None
# Every single file in dicom_samples outside the series folders, with the array shape read_dicom gives
# (colour on the last axis) or NO_PIXELS when it must raise InputError about missing pixel data.
DICOM_FILES = {
    "deid_data/GREYSCALE_IMAGE.dcm": (768, 1024),
    "deid_data/ctbrain1.dcm": (456, 510, 3),  # JPEG baseline, YBR_FULL_422
    "deid_data/ctbrain2.dcm": (456, 510, 3),
    "nibabel/0.dcm": (256, 256),  # implicit VR
    "nibabel/1.dcm": (256, 256),
    "pydicom/CT_small.dcm": (128, 128),
    "pydicom/MR_small.dcm": (64, 64),
    "pydicom/MR_small_RLE.dcm": (64, 64),
    "pydicom/MR_small_bigendian.dcm": (64, 64),
    "pydicom/MR_small_implicit.dcm": (64, 64),
    "pydicom/examples_jpeg2k.dcm": (480, 640, 3),  # JPEG 2000, decoded through Pillow
    "pydicom/examples_palette.dcm": (350, 800, 3),  # palette expanded to RGB
    "pydicom/examples_rgb_color.dcm": (240, 320, 3),
    "pydicom/examples_ybr_color.dcm": (30, 240, 320, 3),  # multi-frame JPEG baseline
    "pydicom/liver_1frame.dcm": (512, 512),
    "pydicom/rtdose.dcm": (15, 10, 10),
    "pydicom/no_meta.dcm": NO_PIXELS,  # no meta header and a stray leading byte: nothing parses
    "pydicom/rtplan.dcm": NO_PIXELS,
    "pydicom/rtstruct.dcm": NO_PIXELS,
    "pydicom/dicomdirtests/DICOMDIR": NO_PIXELS,
    "pydicom/dicomdirtests/DICOMDIR-bigEnd": NO_PIXELS,
    "pydicom/dicomdirtests/DICOMDIR-empty.dcm": NO_PIXELS,
    "pydicom/dicomdirtests/DICOMDIR-implicit": NO_PIXELS,
    "pydicom/dicomdirtests/DICOMDIR-nooffset": NO_PIXELS,
    "pydicom/dicomdirtests/DICOMDIR-nopatient": NO_PIXELS,
    "pydicom/dicomdirtests/DICOMDIR-reordered": NO_PIXELS,
    "pydicom/dicomdirtests/TINY_ALPHA/DICOMDIR": NO_PIXELS,
    "pydicom_data/693_UNCI.dcm": (512, 512),
    "pydicom_data/JPEG2000_UNC.dcm": (1024, 256),
    "pydicom_data/MR-SIEMENS-DICOM-WithOverlays.dcm": (484, 484),
    "pydicom_data/OBXXXX1A.dcm": (600, 800, 3),
    "pydicom_data/US1_UNCR.dcm": (480, 640, 3),
    "pydicom_data/eCT_Supplemental.dcm": (2, 512, 512),  # enhanced CT, geometry in functional groups
    "pydicom_data/emri_small.dcm": (10, 64, 64),
    "pydicom_data/liver.dcm": (3, 512, 512),  # SEG
}
SERIES_ROOT = "pydicom/dicomdirtests"
# Folders of single-slice files: (folder, shape of the stacked series) or the InputError they raise.
SERIES_FOLDERS = {
    "77654033/CR1": (16, 16),
    "77654033/CR2": (16, 16),
    "77654033/CR3": (16, 16),
    "77654033/CT2": (4, 16, 16),
    "98892001/CT2N": "different orientations",  # two scouts in different planes
    "98892001/CT5N": (5, 16, 16),
    "98892003/MR1": "holds 3 DICOM series",
    "98892003/MR2": "holds 3 DICOM series",
    "98892003/MR700": "different orientations",  # rotated angio projections
}
TINY_ALPHA_SERIES = "TINY_ALPHA/PT000000/ST000000/SE000000"  # 50 CT files, all without pixel data


def test_dicom_tables_cover_every_sample(shared_data):
    root = shared_data / "dicom_samples"
    listed = set(DICOM_FILES) | {f"{SERIES_ROOT}/{folder}" for folder in SERIES_FOLDERS}
    listed.add(f"{SERIES_ROOT}/{TINY_ALPHA_SERIES}")
    for path in root.rglob("*"):
        if path.is_file() and path.name not in ("README", "README.txt", "LICENSE"):
            rel = path.relative_to(root).as_posix()
            assert rel in listed or rel.rsplit("/", 1)[0] in listed, f"{rel} is not covered by the tables"


@pytest.mark.parametrize("rel, shape", DICOM_FILES.items(), ids=list(DICOM_FILES))
def test_dicom_file(shared_data, rel, shape):
    path = shared_data / "dicom_samples" / rel
    if shape is NO_PIXELS:
        with pytest.raises(InputError, match="pixel data") as info:
            read_dicom(path)
        assert str(info.value).startswith(str(path))
        return
    arr, meta = read_dicom(path)
    assert arr.shape == shape and arr.dtype.isnative
    assert np.all(np.isfinite(arr))
    spatial = shape[:-1] if meta["samples_per_pixel"] == 3 else shape
    assert meta["spatial_shape"] == spatial and len(meta["spacing"]) == len(spatial)
    assert all(s > 0 for s in meta["spacing"]) and meta["affine"].shape == (4, 4)
    assert meta["samples_per_pixel"] == (3 if len(shape) > len(spatial) else 1)
    assert meta["series_instance_uid"] and meta["sop_class_uid"] and meta["transfer_syntax_uid"]
    assert meta["number_of_slices"] == (spatial[0] if len(spatial) == 3 else 1)


def test_dicom_encodings_agree(shared_data):
    root = shared_data / "dicom_samples" / "pydicom"
    reference, meta = read_dicom(root / "MR_small.dcm")
    for name in ("MR_small_bigendian.dcm", "MR_small_implicit.dcm", "MR_small_RLE.dcm"):
        arr, other = read_dicom(root / name)
        np.testing.assert_array_equal(arr, reference, err_msg=name)
        np.testing.assert_allclose(other["affine"], meta["affine"], err_msg=name)
    assert meta["modality"] == "MR" and meta["spacing"] == (0.3125, 0.3125)


def test_dicom_rescale_and_geometry(shared_data):
    path = shared_data / "dicom_samples" / "pydicom" / "CT_small.dcm"
    ds = pydicom.dcmread(path)
    arr, meta = read_dicom(path)
    expected = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    np.testing.assert_allclose(arr, expected)
    assert meta["modality"] == "CT" and meta["photometric_interpretation"] == "MONOCHROME2"
    lps = np.array([float(v) for v in ds.ImagePositionPatient])
    np.testing.assert_allclose(meta["affine"][:3, 3], lps * [-1, -1, 1])

    enhanced, meta = read_dicom(shared_data / "dicom_samples" / "pydicom_data" / "eCT_Supplemental.dcm")
    assert meta["number_of_frames"] == 2 and meta["spacing"][0] > 0 and meta["spacing"][1] < 1


@pytest.mark.parametrize("folder, expected", SERIES_FOLDERS.items(), ids=list(SERIES_FOLDERS))
def test_dicom_series_folder(shared_data, folder, expected):
    path = shared_data / "dicom_samples" / SERIES_ROOT / folder
    if isinstance(expected, str):
        with pytest.raises(InputError, match=expected) as info:
            read_dicom(path)
        assert str(info.value).startswith(str(path))
        return
    arr, meta = read_dicom(path)
    assert arr.shape == expected


def test_dicom_series_order_and_spacing(shared_data, caplog):
    folder = shared_data / "dicom_samples" / SERIES_ROOT / "98892001" / "CT5N"
    volume, meta = read_dicom(folder)
    np.testing.assert_allclose(meta["spacing"], (2.5, 0.488281, 0.488281))
    # Ascending along the slice normal (+z): 3353 lies lowest (z = -1.2375), 2062 highest.
    np.testing.assert_array_equal(volume[0], read_dicom(folder / "3353")[0])
    np.testing.assert_array_equal(volume[-1], read_dicom(folder / "2062")[0])
    assert meta["affine"][2, 3] == pytest.approx(-1.2375)
    image = LoadImageOrArrayd("image")({"image": folder})["image"]
    assert image.shape == (1, 5, 16, 16)

    with caplog.at_level(logging.WARNING):
        _, meta = read_dicom(folder.parents[1] / "77654033" / "CT2")
    assert meta["spacing"][0] == pytest.approx(1.25) and "not uniform" in caplog.text

    folder = shared_data / "dicom_samples" / "nibabel"
    volume, meta = read_dicom(folder)
    assert volume.shape == (2, 256, 256)
    np.testing.assert_allclose(meta["spacing"], (3.0, 1.796875, 1.796875), atol=1e-3)
    np.testing.assert_array_equal(volume[0], read_dicom(folder / "0.dcm")[0])


def test_dicom_series_selection_and_bad_folders(shared_data):
    mr2 = shared_data / "dicom_samples" / SERIES_ROOT / "98892003" / "MR2"
    series = find_dicom_series(mr2)
    assert sorted(len(paths) for paths in series.values()) == [1, 3, 3]
    tri_plane = next(uid for uid, paths in series.items() if len(paths) == 3)
    with pytest.raises(InputError, match="different orientations"):
        read_dicom(mr2, series_uid=tri_plane)
    with pytest.raises(InputError) as info:
        read_dicom(mr2)
    assert all(uid in str(info.value) for uid in series)

    with pytest.raises(InputError, match="no DICOM files with pixel data"):
        read_dicom(shared_data / "dicom_samples" / SERIES_ROOT / TINY_ALPHA_SERIES)
    deid = shared_data / "dicom_samples" / "deid_data"
    ctbrain = str(pydicom.dcmread(deid / "ctbrain1.dcm", stop_before_pixels=True).SeriesInstanceUID)
    with pytest.raises(InputError, match="share the same ImagePositionPatient"):
        read_dicom(deid, series_uid=ctbrain)


def test_tiny_alpha_files_have_no_pixel_data(shared_data):
    files = sorted((shared_data / "dicom_samples" / SERIES_ROOT / TINY_ALPHA_SERIES).iterdir())
    assert len(files) == 50
    for path in files:
        with pytest.raises(InputError, match="no pixel data: a 'CT Image Storage' object"):
            read_dicom(path)


def test_ixi_t1(shared_data):
    path = shared_data / "ixi_t1" / "IXI533-Guys-1066-T1.nii.gz"
    arr, meta = read_nifti(path)
    assert arr.shape == (256, 256, 150)
    np.testing.assert_allclose(meta["spacing"], (0.9375, 0.9375, 1.2), atol=1e-4)
    # As stored: voxel axes run posterior, superior, right (a sagittal acquisition), not RAS.
    assert meta["axcodes"] == "PSR"
    image = LoadImageOrArrayd("image")({"image": str(path)})["image"]
    assert image.shape == (1, 256, 256, 150)
    np.testing.assert_allclose(image.pixdim.numpy(), (0.9375, 0.9375, 1.2), atol=1e-4)
    assert image.meta["filename_or_obj"] == str(path)
    assert ValidateItemd()({"image": image}) is not None


@pytest.mark.parametrize(
    "rel, shape, loaded, nifti_format",
    [
        ("nibabel/anatomical.nii", (33, 41, 25), (1, 33, 41, 25), "Nifti1Image"),  # big endian
        ("nibabel/example4d.nii.gz", (128, 96, 24, 2), (2, 128, 96, 24), "Nifti1Image"),
        ("nibabel/example_nifti2.nii.gz", (32, 20, 12, 2), (2, 32, 20, 12), "Nifti2Image"),
        ("nibabel/functional.nii", (17, 21, 3, 20), (20, 17, 21, 3), "Nifti1Image"),
        (
            "nilearn_mni152/mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz",
            (197, 233, 189),
            (1, 197, 233, 189),
            "Nifti1Image",
        ),
    ],
)
def test_nifti_samples(shared_data, rel, shape, loaded, nifti_format):
    path = shared_data / "nifti_samples" / rel
    arr, meta = read_nifti(path)
    assert arr.shape == shape and arr.dtype.isnative and meta["format"] == nifti_format
    assert len(meta["spacing"]) == 3 and len(meta["zooms"]) == len(shape) and len(meta["axcodes"]) == 3
    assert LoadImageOrArrayd("image")({"image": path})["image"].shape == loaded


def test_busi_image_and_mask(shared_data):
    root = shared_data / "busi_256"
    with open(root / "labels.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    # A lesion case and a normal case, whose mask is empty.
    picked = [rows[0], next(r for r in rows if r["label"] == "normal")]
    datalist = [
        {"image": str(root / r["image"]), "mask": str(root / r["mask"]), "label": int(r["label_id"])}
        for r in picked
    ]
    item = LoadImageOrArrayd(["image", "mask"])(datalist[0])
    assert item["image"].shape == item["mask"].shape == (1, 256, 256)
    assert set(item["mask"].unique().tolist()) <= {0.0, 255.0}
    assert ValidateItemd(num_classes=3, expected_channels=1, require_mask=True)(item) is item

    good, counts = validate_datalist(datalist, LoadImageOrArrayd(["image", "mask"]), num_classes=3)
    assert good == datalist and not any(counts.values())
