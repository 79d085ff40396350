"""What each active-learning strategy picks: class mix, map error and lesion size of its top fractions.

Reads the candidates of a collect run (``correction/records.csv``) and a dataset table with the lesion's
share of each image (BUSI's ``labels.csv``: ``image`` relative to the table, ``mask_fraction``), ranks the
candidates with the library's strategies and prints, per strategy and fraction, how many samples are
picked, the share of class 1 among them, their mean map error and their mean lesion area, beside all
candidates. A strategy that prefers large lesions teaches the maps large blobs. It describes the training
images a strategy would send to the expert, reads no evaluation and writes no results file (no README block).

Usage::

    python -m monai_xai.experiments selection_profile \\
        runs/experiments/multiscale_busi-128px/resnet18/multiscale/correction/records.csv \\
        ../shared/data/busi_256/labels.csv --fractions 0.1 0.3 0.5
"""

from __future__ import annotations

import argparse
import csv
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from monai_xai.errors import InputError

__all__ = ["lesion_areas", "main", "profile"]


def lesion_areas(labels_csv: Path) -> dict[str, float]:
    """Absolute image path -> lesion area fraction, from a table with ``image`` and ``mask_fraction``."""
    with open(labels_csv, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows or not {"image", "mask_fraction"} <= set(rows[0]):
        raise InputError(labels_csv, "expected 'image' and 'mask_fraction' columns")
    root = labels_csv.resolve().parent
    return {str((root / r["image"]).resolve()): float(r["mask_fraction"]) for r in rows}


def profile(records_csv: Path, labels_csv: Path, fractions: Sequence[float]) -> list[dict]:
    """One row per (strategy, fraction), plus the row of all candidates first."""
    from monai_xai.active_learning import STRATEGIES, SampleRecords, get_strategy

    records = SampleRecords.from_csv(records_csv)
    areas = lesion_areas(labels_csv)
    missing = [i for i in records.ids if str(Path(i).resolve()) not in areas]
    if missing:
        raise InputError(labels_csv, f"no mask_fraction for {len(missing)} candidates, e.g. {missing[0]}")
    area = np.array([areas[str(Path(i).resolve())] for i in records.ids])
    position = {sample: k for k, sample in enumerate(records.ids)}

    def summary(strategy: str, fraction: float, picked: Sequence[int]) -> dict:
        idx = np.asarray(picked)
        return {
            "strategy": strategy,
            "fraction": fraction,
            "n": len(idx),
            "class_1": float(np.mean(records.labels[idx] == 1)) if records.labels is not None else np.nan,
            "map_error": float(np.nanmean(records.map_error[idx]))
            if records.map_error is not None
            else np.nan,
            "lesion_area": float(area[idx].mean()),
        }

    rows = [summary("all candidates", 1.0, range(len(records)))]
    for name in STRATEGIES:
        strategy = get_strategy(name)
        for fraction in fractions:
            rows.append(summary(name, fraction, [position[s] for s in strategy.select(records, fraction)]))
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m monai_xai.experiments selection_profile", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("records", type=Path, help="correction/records.csv of a collect run")
    parser.add_argument("labels", type=Path, help="dataset table with image and mask_fraction columns")
    parser.add_argument("--fractions", type=float, nargs="+", default=[0.1, 0.3, 0.5])
    args = parser.parse_args(argv)
    print("| strategy | fraction | picked | class 1 | mean map error | mean lesion area |")
    print("|---|---|---|---|---|---|")
    for row in profile(args.records, args.labels, args.fractions):
        print(
            f"| {row['strategy']} | {row['fraction']:.0%} | {row['n']} | {row['class_1']:.2f} | "
            f"{row['map_error']:.3f} | {row['lesion_area']:.3f} |"
        )
    return 0
