"""Figures people would rather look at than read: attention overlays, confusion matrices, ROC curves."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from monai_xai.utils import atomic_path, pyplot

__all__ = [
    "middle_slice",
    "display_plane",
    "attention_overlay_figure",
    "confusion_matrix_figure",
    "roc_curve_figure",
    "curves_figure",
    "save_figure",
]


def _as_array(array: np.ndarray | torch.Tensor) -> np.ndarray:
    return (
        array.detach().float().cpu().numpy() if isinstance(array, torch.Tensor) else np.asarray(array, float)
    )


def middle_slice(array: np.ndarray | torch.Tensor) -> np.ndarray:
    """(C, H, W) -> (H, W) first channel; (C, H, W, D) -> its middle axial slice."""
    a = _as_array(array)
    a = a[0] if a.ndim >= 3 else a
    return a[..., a.shape[-1] // 2] if a.ndim == 3 else a


def display_plane(array: np.ndarray | torch.Tensor) -> np.ndarray:
    """What to draw of an input image: (3, H, W) -> (H, W, 3) colour; anything else :func:`middle_slice`.

    Drawing only the first channel of a colour photograph would show its red channel as a grey image.
    """
    a = _as_array(array)
    return np.moveaxis(a, 0, -1) if a.ndim == 3 and a.shape[0] == 3 else middle_slice(a)


def _normalise(a: np.ndarray) -> np.ndarray:
    """1st-99th percentile stretch to [0, 1], all channels together so that colours keep their balance."""
    lo, hi = np.percentile(a, [1, 99])
    return np.clip((a - lo) / (hi - lo + 1e-8), 0, 1)


def attention_overlay_figure(
    images: Sequence,
    maps: Sequence,
    masks: Sequence | None = None,
    titles: Sequence[str] | None = None,
    alpha: float = 0.45,
):
    """Two rows per figure: the images with their mask outline, and the attention map over them.

    Maps may be at feature resolution; they are resized to the image here so that a reader sees
    where on the anatomy the model looked. Colour images are drawn in colour (:func:`display_plane`).
    """
    plt = pyplot()
    n = len(images)
    fig, axes = plt.subplots(2, n, figsize=(2.2 * n, 4.6), squeeze=False)
    for i in range(n):
        image = _normalise(display_plane(images[i]))
        att = middle_slice(maps[i])
        att_t = torch.as_tensor(att)[None, None]
        att = torch.nn.functional.interpolate(
            att_t, size=image.shape[:2], mode="bilinear", align_corners=False
        )[0, 0]
        for row in range(2):
            ax = axes[row, i]
            ax.imshow(image, cmap="gray")
            if masks is not None and np.any(middle_slice(masks[i]) > 0):
                ax.contour(middle_slice(masks[i]) > 0, levels=[0.5], colors="lime", linewidths=0.8)
            ax.axis("off")
        axes[1, i].imshow(att.numpy(), cmap="jet", alpha=alpha, vmin=0, vmax=1)
        if titles is not None:
            axes[0, i].set_title(titles[i], fontsize=8)
    fig.tight_layout()
    return fig


def explanation_grid_figure(
    images: Sequence,
    columns: dict[str, Sequence],
    masks: Sequence | None = None,
    row_titles: Sequence[str] | None = None,
    alpha: float = 0.5,
):
    """One row per image: the image with its mask outline, then each method's map over it (one column each).

    ``columns`` maps a column title (e.g. "baseline: Grad-CAM++") to one map per image, at any resolution;
    maps are resized to the image and shown on a common [0, 1] scale after per-map min-max scaling.
    Colour images are drawn in colour (:func:`display_plane`).
    """
    plt = pyplot()
    n, m = len(images), len(columns)
    fig, axes = plt.subplots(n, m + 1, figsize=(2.0 * (m + 1), 2.0 * n + 0.4), squeeze=False)
    for i in range(n):
        image = _normalise(display_plane(images[i]))
        mask = middle_slice(masks[i]) > 0 if masks is not None else None
        for j, (title, maps) in enumerate([("input", None), *columns.items()]):
            ax = axes[i, j]
            ax.imshow(image, cmap="gray")
            if maps is not None:
                att = torch.as_tensor(middle_slice(maps[i]), dtype=torch.float32)[None, None]
                att = torch.nn.functional.interpolate(
                    att, size=image.shape[:2], mode="bilinear", align_corners=False
                )
                ax.imshow(_normalise(att[0, 0].numpy()), cmap="jet", alpha=alpha, vmin=0, vmax=1)
            if mask is not None and mask.any():
                ax.contour(mask, levels=[0.5], colors="lime", linewidths=0.7)
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(title, fontsize=8)
            if j == 0 and row_titles is not None:
                ax.set_ylabel(row_titles[i], fontsize=7)
    fig.tight_layout()
    return fig


def confusion_matrix_figure(matrix: np.ndarray, class_names: Sequence[str], title: str = "Confusion matrix"):
    """Counts with row-normalised shading: rows are true classes, columns predictions."""
    plt = pyplot()
    matrix = np.asarray(matrix)
    shade = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(1.2 * len(class_names) + 2, 1.1 * len(class_names) + 1.5))
    ax.imshow(shade, cmap="Blues", vmin=0, vmax=1)
    for i in range(matrix.shape[0]):
        for j in range(matrix.shape[1]):
            ax.text(
                j,
                i,
                str(int(matrix[i, j])),
                ha="center",
                va="center",
                color="black" if shade[i, j] < 0.6 else "white",
            )
    ax.set_xticks(range(len(class_names)), class_names, rotation=30)
    ax.set_yticks(range(len(class_names)), class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    fig.tight_layout()
    return fig


def _roc_points(y: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(-score, kind="stable")
    y = y[order]
    tps, fps = np.cumsum(y), np.cumsum(1 - y)
    tpr = np.concatenate([[0], tps / max(tps[-1], 1)])
    fpr = np.concatenate([[0], fps / max(fps[-1], 1)])
    return fpr, tpr


def roc_curve_figure(labels: np.ndarray, probs: np.ndarray, class_names: Sequence[str]):
    """ROC of the positive class (binary) or one-vs-rest curves (multi-class)."""
    plt = pyplot()
    labels, probs = np.asarray(labels), np.asarray(probs)
    fig, ax = plt.subplots(figsize=(4.2, 4))
    classes = [1] if probs.shape[1] == 2 else range(probs.shape[1])
    for c in classes:
        fpr, tpr = _roc_points((labels == c).astype(float), probs[:, c])
        ax.plot(fpr, tpr, label=class_names[c])
    ax.plot([0, 1], [0, 1], "--", color="gray", linewidth=0.8)
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title("ROC")
    fig.tight_layout()
    return fig


def curves_figure(series: dict[str, Sequence[float]], xlabel: str = "epoch", title: str = ""):
    """Several named curves on one axis (losses, alpha, validation metrics)."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5, 3.4))
    for name, values in series.items():
        ax.plot(range(1, len(values) + 1), values, marker=".", label=name)
    ax.set_xlabel(xlabel)
    ax.legend(fontsize=8)
    ax.set_title(title)
    fig.tight_layout()
    return fig


def deletion_insertion_figure(curves: dict[str, dict[str, Sequence[float]]]):
    """Mean Deletion and Insertion curves, one line per method: ``{method: {"deletion": [...], ...}}``."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.2))
    for ax, mode in zip(axes, ("deletion", "insertion")):
        for method, by_mode in curves.items():
            if mode in by_mode:
                values = np.asarray(by_mode[mode], dtype=float)
                x = np.linspace(0.0, 1.0, len(values))
                auc = float(((values[1:] + values[:-1]) / 2 * np.diff(x)).sum())
                ax.plot(x, values, label=f"{method} (AUC {auc:.3f})")
        ax.set_xlabel(f"fraction of pixels {'removed' if mode == 'deletion' else 'inserted'}")
        ax.set_ylabel("probability of the predicted class")
        ax.set_title(mode.capitalize())
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def save_figure(fig, path: str | os.PathLike) -> Path:
    """Write a figure atomically and close it."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110)
    pyplot().close(fig)
    return Path(path)
