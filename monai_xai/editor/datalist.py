"""The datalist an expert's corrections are written to: the source CSV plus a ``corrected_map`` column.

Every row of the source CSV is kept, in its order and with its columns, so the bundle that trained the model
reads the new CSV exactly like the old one (same labels, same seeded or file-based split) and only gains the
corrected maps. Image and mask paths are written as the project's loader resolved them (absolute), so item
ids match those of ``records.csv`` files collected on the source dataset; corrected maps are written
relative to the CSV, beside which they live. A ``splits.json`` beside the source CSV is carried over with its
paths rewritten for the new folder.

Two editors may save into one folder: each save holds an exclusive lock on a file beside the CSV, re-reads the
CSV and adds its one map to what is there, so neither drops the other's corrections.
"""

from __future__ import annotations

import csv
import fcntl
import io
import json
import logging
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from monai_xai.data.corrections import CORRECTED_MAP_KEY
from monai_xai.errors import InputError
from monai_xai.utils import atomic_write_text

__all__ = ["CorrectionTable"]

logger = logging.getLogger(__name__)


def _resolve(base: Path, value: str) -> str:
    """A path cell as :func:`~monai_xai.data.csv_datalist` resolves it, so that the strings compare equal."""
    return str(Path(value) if os.path.isabs(value) else base / value)


def _read_rows(path: Path) -> tuple[list[str], list[dict]]:
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
        return list(reader.fieldnames or []), rows


class CorrectionTable:
    """Keeps ``<output_dir>/<csv_name>`` up to date with the corrected map of each image.

    Args:
        source_csv: the dataset's CSV (paths relative to it, as the bundles read it).
        output_dir: where the new CSV (and ``splits.json``) are written; corrected maps go under it.
        image_col: column of the image paths; rows are matched to datalist items by the resolved path.
        path_cols: other columns holding paths relative to the source CSV (e.g. the mask column).
        csv_name: file name of the new CSV; ``labels.csv`` makes ``--dataset_dir <output_dir>`` enough for
            the bundles, whose ``dataset_path`` defaults to ``<dataset_dir>/labels.csv``.

    Corrections already listed in the output CSV (a previous session, or another editor on the same folder)
    are loaded, so stopping and restarting the editor loses nothing. An image listed on two rows of the
    source CSV is refused: its corrected map would be written to one of them only.
    """

    def __init__(
        self,
        source_csv: str | os.PathLike,
        output_dir: str | os.PathLike,
        image_col: str = "image",
        path_cols: Sequence[str] = ("mask",),
        csv_name: str = "labels.csv",
    ) -> None:
        self.source_csv = Path(source_csv)
        self.output_dir = Path(output_dir).resolve()
        self.csv_path = self.output_dir / csv_name
        if not self.source_csv.is_file():
            raise InputError(self.source_csv, "CSV file not found")
        if self.csv_path == self.source_csv.resolve():
            raise InputError(
                self.source_csv, "the corrections would overwrite this CSV: choose another output_dir"
            )
        self.columns, self.rows = _read_rows(self.source_csv)
        if image_col not in self.columns:
            raise InputError(self.source_csv, f"missing column {image_col!r} (columns: {self.columns})")
        base = self.source_csv.resolve().parent
        self.image_col = image_col
        for row in self.rows:
            for col in (image_col, CORRECTED_MAP_KEY, *path_cols):
                if row.get(col):
                    row[col] = _resolve(base, row[col])
        if CORRECTED_MAP_KEY not in self.columns:
            self.columns.append(CORRECTED_MAP_KEY)
        self.row_of: dict[str, int] = {}
        for i, row in enumerate(self.rows):
            first = self.row_of.setdefault(row[image_col], i)
            if first != i:  # rows numbered as csv_datalist numbers them: the header is row 1
                where = f"on rows {first + 2} and {i + 2}"
                raise InputError(self.source_csv, f"image {row[image_col]!r} is listed twice, {where}")
        self.lock_path = self.output_dir / f".{csv_name}.lock"
        stale = self._merge_saved()
        if stale:
            logger.warning(
                "%s: %d corrected maps belong to images not in %s", self.csv_path, stale, self.source_csv
            )

    def _merge_saved(self) -> int:
        """Take the corrected maps listed in the output CSV as it is on disk; returns how many name images
        the source CSV does not list."""
        if not self.csv_path.is_file():
            return 0
        _, saved = _read_rows(self.csv_path)
        base, stale = self.csv_path.parent, 0
        for row in saved:
            corrected, image = row.get(CORRECTED_MAP_KEY), row.get(self.image_col)
            if not corrected:
                continue
            if image not in self.row_of:
                stale += 1
                continue
            self.rows[self.row_of[image]][CORRECTED_MAP_KEY] = _resolve(base, corrected)
        return stale

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """Hold the output folder's lock: one writer at a time, across threads and processes."""
        self.output_dir.mkdir(parents=True, exist_ok=True)
        with open(self.lock_path, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file is closed
            yield

    def row_index(self, image: str) -> int:
        """Row of ``image`` (a datalist item's resolved ``image`` path) in the source CSV."""
        if image not in self.row_of:
            raise InputError(self.source_csv, f"no row for image {image!r}")
        return self.row_of[image]

    def corrected_map(self, image: str) -> str | None:
        """Absolute path of the corrected map of ``image``, if one was saved."""
        return self.rows[self.row_index(image)].get(CORRECTED_MAP_KEY) or None

    def record(self, image: str, map_path: str | os.PathLike) -> Path:
        """Reference ``map_path`` as the corrected map of ``image`` and rewrite the CSV atomically.

        Under the folder's lock, the maps other editors saved meanwhile are read back first and kept.
        """
        row = self.row_index(image)
        with self._locked():
            self._merge_saved()
            self.rows[row][CORRECTED_MAP_KEY] = str(Path(map_path).resolve())
            return self._write()

    def _write(self) -> Path:
        """Write the CSV (and ``splits.json`` when the source has one); returns the CSV's path."""
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=self.columns, lineterminator="\n")
        writer.writeheader()
        for row in self.rows:
            corrected = row.get(CORRECTED_MAP_KEY)
            if corrected and Path(corrected).is_relative_to(self.output_dir):
                row = {**row, CORRECTED_MAP_KEY: os.path.relpath(corrected, self.output_dir)}
            writer.writerow(row)
        self._write_splits()
        return atomic_write_text(self.csv_path, buffer.getvalue())

    def _write_splits(self) -> None:
        source = self.source_csv.resolve().parent / "splits.json"
        target = self.output_dir / "splits.json"
        if not source.is_file():
            return
        spec = json.loads(source.read_text())

        def moved(paths: list[str]) -> list[str]:
            return [os.path.relpath(_resolve(source.parent, p), self.output_dir) for p in paths]

        spec["test"] = moved(spec.get("test", []))
        if "folds" in spec:
            spec["folds"] = [moved(fold) for fold in spec["folds"]]
        if "excluded" in spec:
            spec["excluded"] = moved(spec["excluded"])
        atomic_write_text(target, json.dumps(spec, indent=1))
