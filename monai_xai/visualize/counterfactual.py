"""Counterfactual explanation panels: input, attention, masked region, translated image and difference.

Every image argument is channel-first, (C, H, W) or (C, H, W, D), in the classifier's [0, 1] range; 3D
volumes are shown by their middle axial slice and can be written in full as NIfTI.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from monai_xai.utils import atomic_path, pyplot
from monai_xai.visualize.figures import middle_slice

__all__ = [
    "EXAMPLE_COLUMNS",
    "PANEL_COLUMNS",
    "counterfactual_examples_figure",
    "counterfactual_figure",
    "counterfactual_parts",
    "save_counterfactual_nifti",
]

#: Column titles of :func:`counterfactual_figure` (plus "Grad-CAM++" when class maps are given).
PANEL_COLUMNS = ("input", "attention A", "masked region A*G", "translated", "difference")
#: Column titles of :func:`counterfactual_examples_figure`.
EXAMPLE_COLUMNS = ("input", "attention A", "translated", "|difference|")


def counterfactual_parts(
    image: torch.Tensor, attention: torch.Tensor, generated: torch.Tensor, fake: torch.Tensor
) -> dict[str, torch.Tensor]:
    """The panel's volumes by name: the masked region is what the attention lets through of G."""
    return {
        "input": image,
        "attention": attention,
        "masked": attention * generated,
        "fake": fake,
        "difference": fake - image,
    }


def _draw_row(axes, shown: Sequence[tuple], columns: Sequence[str] | None, label: str | None) -> None:
    """One figure row: each (volume, colour map, vmin, vmax) of ``shown`` as its middle slice, column titles
    on the first row, the row's label on its left."""
    for ax, (volume, cmap, vmin, vmax) in zip(axes, shown):
        ax.imshow(middle_slice(volume), cmap=cmap, vmin=vmin, vmax=vmax)
        ax.set_xticks([])
        ax.set_yticks([])
    if columns is not None:
        for ax, column in zip(axes, columns):
            ax.set_title(column, fontsize=8)
    if label is not None:
        axes[0].set_ylabel(label, fontsize=7)


def counterfactual_figure(
    images: Sequence,
    attentions: Sequence,
    generated: Sequence,
    fakes: Sequence,
    cams: Sequence | None = None,
    titles: Sequence[str] | None = None,
):
    """One row per image: input, attention, A*G, translation, translation - input [, Grad-CAM++]."""
    plt = pyplot()
    n = len(images)
    columns = list(PANEL_COLUMNS) + (["Grad-CAM++"] if cams is not None else [])
    fig, axes = plt.subplots(n, len(columns), figsize=(1.9 * len(columns), 2.0 * n + 0.3), squeeze=False)
    for i in range(n):
        parts = counterfactual_parts(
            torch.as_tensor(images[i]),
            torch.as_tensor(attentions[i]),
            torch.as_tensor(generated[i]),
            torch.as_tensor(fakes[i]),
        )
        shown = [
            (parts["input"], "gray", 0, 1),
            (parts["attention"], "jet", 0, 1),
            (parts["masked"], "gray", 0, 1),
            (parts["fake"], "gray", 0, 1),
            (parts["difference"], "bwr", -1, 1),
        ]
        if cams is not None:
            shown.append((torch.as_tensor(cams[i]), "jet", 0, 1))
        _draw_row(axes[i], shown, columns if i == 0 else None, None if titles is None else titles[i])
    fig.tight_layout()
    return fig


def counterfactual_examples_figure(
    images: Sequence, attentions: Sequence, fakes: Sequence, titles: Sequence[str] | None = None
):
    """One row per example: input, attention, translation, |translation - input|.

    For the best and worst translations of a direction side by side: |difference| shares one scale over
    the figure (its maximum in the column title), so that a translation that barely changes its image
    looks like one.
    """
    plt = pyplot()
    n = len(images)
    differences = [(torch.as_tensor(f) - torch.as_tensor(i)).abs() for f, i in zip(fakes, images)]
    top = max([float(d.max()) for d in differences] + [1e-6])
    columns = [*EXAMPLE_COLUMNS[:3], f"{EXAMPLE_COLUMNS[3]} (0-{top:.2f})"]
    fig, axes = plt.subplots(n, 4, figsize=(7.6, 2.0 * n + 0.3), squeeze=False)
    for i in range(n):
        shown = [
            (images[i], "gray", 0, 1),
            (attentions[i], "jet", 0, 1),
            (fakes[i], "gray", 0, 1),
            (differences[i], "magma", 0, top),
        ]
        _draw_row(axes[i], shown, columns if i == 0 else None, None if titles is None else titles[i])
    fig.tight_layout()
    return fig


def save_counterfactual_nifti(
    directory: str | os.PathLike,
    name: str,
    image: torch.Tensor,
    attention: torch.Tensor,
    generated: torch.Tensor,
    fake: torch.Tensor,
    affine: np.ndarray | None = None,
) -> list[Path]:
    """Write ``<name>_<part>.nii.gz`` for every panel part of a (C, H, W, D) volume (first channel)."""
    import nibabel as nib

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    affine = np.eye(4) if affine is None else np.asarray(affine, dtype=float)
    paths = []
    for part, volume in counterfactual_parts(image, attention, generated, fake).items():
        array = torch.as_tensor(volume).detach().float().cpu().numpy()[0]
        path = directory / f"{name}_{part}.nii.gz"
        with atomic_path(path) as tmp:
            nib.save(nib.Nifti1Image(array.astype(np.float32), affine), tmp)
        paths.append(path)
    return paths
