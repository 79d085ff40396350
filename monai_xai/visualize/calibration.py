"""Reliability diagrams: how often a classifier is right against how sure it says it is."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from monai_xai.utils import pyplot

__all__ = ["reliability_diagram_figure"]


def reliability_diagram_figure(curves: Mapping[str, Mapping[str, Any]], title: str = "Reliability diagram"):
    """Accuracy against confidence per bin for one or more curves, over a bar chart of the bin counts.

    ``curves`` maps a label (e.g. "before" and "after temperature scaling") to a
    :func:`monai_xai.metrics.reliability_curve` result (``bin_centres``, ``confidence``, ``accuracy``,
    ``counts``, optionally ``bin_edges`` and ``ece``). Each curve is drawn at the mean confidence of its
    non-empty bins; the diagonal is perfect calibration. Below, each curve's bin counts as side-by-side bars.
    """
    if not curves:
        raise ValueError("no reliability curves to draw")
    plt = pyplot()
    fig, (ax, ax_counts) = plt.subplots(
        2, 1, figsize=(4.4, 5.4), sharex=True, gridspec_kw={"height_ratios": [3, 1]}
    )
    ax.plot([0, 1], [0, 1], "--", color="gray", linewidth=0.8, label="perfect calibration")
    for k, (name, curve) in enumerate(curves.items()):
        centres = np.asarray(curve["bin_centres"], dtype=float)
        confidence = np.asarray(curve["confidence"], dtype=float)
        accuracy = np.asarray(curve["accuracy"], dtype=float)
        counts = np.asarray(curve["counts"], dtype=float)
        filled = counts > 0
        ece = curve.get("ece")
        label = name if ece is None or math.isnan(float(ece)) else f"{name} (ECE {float(ece):.3f})"
        ax.plot(confidence[filled], accuracy[filled], marker="o", markersize=3.5, label=label)
        edges = curve.get("bin_edges")
        bin_width = float(np.diff(edges).min()) if edges is not None else 1.0 / max(len(centres), 1)
        width_total = bin_width * 0.85
        width = width_total / len(curves)
        offsets = centres - width_total / 2 + width * (k + 0.5)
        ax_counts.bar(offsets, counts, width=width, label=name)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_ylabel("accuracy")
    ax.set_title(title)
    ax.legend(loc="upper left", fontsize=7)
    ax_counts.set_xlabel("confidence")
    ax_counts.set_ylabel("count")
    fig.tight_layout()
    return fig
