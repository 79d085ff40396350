"""Seeded phantom images with a lesion, its mask and a planted shortcut, for demos and tests. The label is a
property of the lesion: class 0 lesions are smooth ovals, class 1 lesions have lobulated, irregular
margins (three to six lobes). Lesions are hypoechoic, darker than the tissue around them as most breast
lesions are in ultrasound, clear enough at 64x64 for a classifier to learn the margins. A bright marker
in a corner, far from the lesion, stands in for a site- or device-specific mark: in the training and
validation parts it is present exactly when the label is 1 in ``shortcut_agreement`` of the images, in
the test part it is random. Presence rather than position carries the shortcut, so flips and shifts in
augmentation keep it. A classifier that learns the marker instead of the lesion loses accuracy on the
test part; one whose attention is trained toward the lesion mask should not.
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from monai_xai.errors import InputError

__all__ = ["PhantomSet", "check_phantom_seed", "make_phantoms", "marker_region", "write_demo_dataset"]

_MARKER = 5  # marker edge in pixels (voxels)


@dataclass
class PhantomSet:
    """Arrays of one split: images (N, 1, *S) float32 in [0, 1], masks (N, 1, *S) uint8, labels (N,).

    ``marker_agrees`` (N,) says whether the marker told the truth for that image; ``marker_drawn`` is False
    for phantoms made without any marker.
    """

    images: np.ndarray
    masks: np.ndarray
    labels: np.ndarray
    marker_agrees: np.ndarray
    marker_drawn: bool = True

    @property
    def has_marker(self) -> np.ndarray:
        """(N,) bool: the marker is drawn when the label is 1 and it agrees, or the label is 0 and it lies."""
        if not self.marker_drawn:
            return np.zeros(len(self.labels), dtype=bool)
        return self.labels.astype(bool) == self.marker_agrees.astype(bool)


def _smooth_field(rng: np.random.Generator, shape: tuple[int, ...], n_waves: int = 6) -> np.ndarray:
    """A sum of random low-frequency cosines: cheap smooth tissue texture in [0, 1]."""
    grids = np.meshgrid(*[np.linspace(0, 1, s) for s in shape], indexing="ij")
    field = np.zeros(shape)
    for _ in range(n_waves):
        freq = rng.uniform(0.5, 3.0, size=len(shape))
        phase = rng.uniform(0, 2 * np.pi)
        field += np.cos(2 * np.pi * sum(f * g for f, g in zip(freq, grids)) + phase)
    return (field - field.min()) / (np.ptp(field) + 1e-8)


def _lesion_mask(rng: np.random.Generator, shape: tuple[int, ...], label: int) -> np.ndarray:
    """Smooth ellipsoid (label 0) or lobulated blob (label 1) placed in the central region."""
    size = shape[0]
    centre = rng.uniform(0.35 * size, 0.65 * size, size=len(shape))
    radius = rng.uniform(0.10 * size, 0.16 * size)
    coords = np.meshgrid(*[np.arange(s) + 0.5 for s in shape], indexing="ij")
    offsets = [c - m for c, m in zip(coords, centre)]
    axes = rng.uniform(0.8, 1.2, size=len(shape))
    dist = np.sqrt(sum((o / a) ** 2 for o, a in zip(offsets, axes)))
    theta = np.arctan2(offsets[1], offsets[0])
    if label == 1:
        lobes = rng.integers(3, 7)
        wobble = 0.35 * np.cos(lobes * theta + rng.uniform(0, 2 * np.pi))
        if len(shape) == 3:
            phi = np.arctan2(offsets[2], np.hypot(offsets[0], offsets[1]))
            wobble = wobble + 0.25 * np.cos(3 * phi)
        radius_map = radius * (1.0 + wobble)
    else:
        radius_map = radius
    return (dist <= radius_map).astype(np.uint8)


def _marker_slices(shape: tuple[int, ...]) -> tuple[slice, ...]:
    """The marker block in the first corner."""
    return tuple(slice(2, 2 + _MARKER) for _ in shape)


def marker_region(size: int = 64, spatial_dims: int = 2) -> np.ndarray:
    """(1, 1, *spatial) uint8 mask of where the marker sits (when drawn) in phantoms as generated."""
    region = np.zeros((1, 1, *(size,) * spatial_dims), dtype=np.uint8)
    region[(0, 0, *_marker_slices((size,) * spatial_dims))] = 1
    return region


def _spread_labels(n: int, positive_fraction: float) -> np.ndarray:
    """``floor(n * positive_fraction)`` ones spread evenly among zeros (0, 1, 0, 1, ... for one half)."""
    steps = np.floor(np.arange(n + 1) * positive_fraction)
    return np.diff(steps).astype(np.int64)


def make_phantoms(
    n: int,
    size: int = 64,
    spatial_dims: int = 2,
    shortcut_agreement: float = 1.0,
    seed: int = 0,
    positive_fraction: float = 0.5,
    marker: bool = True,
) -> PhantomSet:
    """Generate ``n`` phantoms; ``shortcut_agreement=0.5`` makes the marker random, ``marker=False`` leaves it
    out, ``positive_fraction`` is the share of class 1 (imbalanced data: 1/9 for a 1 : 8 ratio)."""
    if not 0.0 < positive_fraction < 1.0:
        raise ValueError(f"positive_fraction must lie in (0, 1), got {positive_fraction}")
    if spatial_dims not in (2, 3):
        raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims}")
    if size < 24:
        raise ValueError(
            f"size must be at least 24 pixels so that marker and lesion do not touch, got {size}"
        )
    rng = np.random.default_rng(seed)
    shape = (size,) * spatial_dims
    labels = rng.permutation(_spread_labels(n, positive_fraction))
    agrees = rng.random(n) < shortcut_agreement
    images = np.empty((n, 1, *shape), dtype=np.float32)
    masks = np.empty((n, 1, *shape), dtype=np.uint8)
    for i, label in enumerate(labels):
        tissue = 0.45 + 0.2 * _smooth_field(rng, shape)
        lesion = _lesion_mask(rng, shape, int(label))
        image = tissue * (1.0 - lesion * rng.uniform(0.5, 0.7))
        if marker and bool(label) == bool(agrees[i]):  # for label 1 when agreeing, for label 0 otherwise
            image[_marker_slices(shape)] = 0.95
        image *= rng.gamma(16.0, 1 / 16.0, size=shape)  # multiplicative speckle
        images[i, 0] = np.clip(image, 0.0, 1.0)
        masks[i, 0] = lesion
    return PhantomSet(images, masks, labels.astype(np.int64), agrees, marker_drawn=marker)


def _write_image(path: Path, array: np.ndarray) -> None:
    """PNG for 2D (8-bit), NIfTI for 3D (float32, 1 mm isotropic)."""
    if array.ndim == 2:
        from PIL import Image

        Image.fromarray(
            np.round(array * 255).astype(np.uint8) if array.dtype != np.uint8 else array * 255
        ).save(path)
    else:
        import nibabel as nib

        nib.save(nib.Nifti1Image(array.astype(np.float32), np.eye(4)), path)


def write_demo_dataset(
    out_dir: str | os.PathLike,
    n_train: int = 2000,
    n_val: int = 400,
    n_test: int = 600,
    size: int = 64,
    spatial_dims: int = 2,
    shortcut_agreement: float = 1.0,
    seed: int = 0,
    positive_fraction: float = 0.5,
    marker: bool = True,
) -> Path:
    """Write images, masks, ``labels.csv`` and ``splits.json`` in the layout of a user's own dataset.

    ``splits.json`` holds the test list and one validation fold, so the demo runs through exactly
    the loaders a real dataset uses. ``positive_fraction`` and ``marker`` as in :func:`make_phantoms`, the
    same in every part. Returns the path of ``labels.csv``.
    """
    out = Path(out_dir)
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "masks").mkdir(parents=True, exist_ok=True)
    ext = "png" if spatial_dims == 2 else "nii.gz"
    options = {"positive_fraction": positive_fraction, "marker": marker}
    parts = {
        "train": make_phantoms(n_train, size, spatial_dims, shortcut_agreement, seed, **options),
        "val": make_phantoms(n_val, size, spatial_dims, shortcut_agreement, seed + 1, **options),
        "test": make_phantoms(n_test, size, spatial_dims, 0.5, seed + 2, **options),
    }
    rows, split_lists = [], {"train": [], "val": [], "test": []}
    for split, data in parts.items():
        for i in range(len(data.labels)):
            image, mask = f"images/{split}_{i:05d}.{ext}", f"masks/{split}_{i:05d}.{ext}"
            _write_image(out / image, data.images[i, 0])
            _write_image(out / mask, data.masks[i, 0])
            rows.append(
                [image, mask, int(data.labels[i]), split, int(data.marker_agrees[i]), int(data.has_marker[i])]
            )
            split_lists[split].append(image)
    csv_path = out / "labels.csv"
    with open(csv_path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["image", "mask", "label", "split", "marker_agrees", "marker"])
        writer.writerows(rows)
    splits = {"seed": seed, "test": split_lists["test"], "folds": [split_lists["val"]]}
    (out / "splits.json").write_text(json.dumps(splits, indent=1))
    return csv_path


def check_phantom_seed(out_dir: str | os.PathLike, seed: int) -> None:
    """Refuse phantoms of another seed in ``out_dir`` (its ``splits.json`` records the seed it was made with):
    a run that reuses them under ``seed`` would be labelled with data it did not use. Folders made before
    the seed was recorded, and folders with no phantoms yet, pass."""
    path = Path(out_dir) / "splits.json"
    if not path.is_file():
        return
    found = json.loads(path.read_text()).get("seed")
    if found is not None and int(found) != seed:
        raise InputError(
            path, f"phantoms of seed {found}, not {seed}: give another data folder, or seed {found}"
        )
