"""What an active-learning strategy sees, and the ranking every strategy shares."""

from __future__ import annotations

import csv
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from monai_xai.errors import InputError

__all__ = ["SampleRecords", "SelectionStrategy"]


@dataclass
class SampleRecords:
    """One row per candidate sample: its id, the model's class probabilities and, when known, its map error.

    ``map_error`` is the mean squared error between the model's attention map and the reference map (an
    expert's, or the lesion mask standing in for one); NaN where a sample has no reference.
    """

    ids: list[str]
    probs: np.ndarray
    labels: np.ndarray | None = None
    map_error: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.probs = np.asarray(self.probs, dtype=np.float64)
        n = len(self.ids)
        if self.probs.ndim != 2 or self.probs.shape[0] != n:
            raise ValueError(f"probs must have shape ({n}, num_classes), got {self.probs.shape}")
        for name in ("labels", "map_error"):
            value = getattr(self, name)
            if value is not None:
                value = np.asarray(value, dtype=np.float64 if name == "map_error" else np.int64).reshape(-1)
                if value.shape[0] != n:
                    raise ValueError(f"{name} has {value.shape[0]} entries for {n} samples")
                setattr(self, name, value)

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def from_csv(cls, path: str | os.PathLike) -> SampleRecords:
        """Read a ``records.csv`` written by :class:`~monai_xai.handlers.CorrectionCandidatesHandler`."""
        path = Path(path)
        try:
            with open(path, newline="") as f:
                rows = list(csv.DictReader(f))
        except OSError as err:
            raise InputError(path, f"cannot read records: {err.strerror or err}") from None
        prob_cols = [c for c in (rows[0].keys() if rows else []) if c.startswith("prob_")]
        if not rows or "source" not in rows[0] or not prob_cols:
            raise InputError(path, "expected a CSV with a 'source' column and 'prob_<class>' columns")
        map_error = [float(r["map_mse"]) if r.get("map_mse") not in (None, "") else math.nan for r in rows]
        return cls(
            ids=[r["source"] for r in rows],
            probs=np.array([[float(r[c]) for c in prob_cols] for r in rows]),
            labels=np.array([int(r["label"]) for r in rows]) if "label" in rows[0] else None,
            map_error=np.array(map_error) if "map_mse" in rows[0] else None,
        )


class SelectionStrategy:
    """Ranks samples so that the expert corrects the most useful ones first.

    Subclasses implement :meth:`scores` (higher = ask the expert sooner); ties keep the records' order.
    """

    #: Name the strategy is selected by (``get_strategy``).
    name = ""

    def scores(self, records: SampleRecords) -> np.ndarray:
        raise NotImplementedError

    def rank(self, records: SampleRecords) -> np.ndarray:
        """Indices of ``records``, most useful first."""
        scores = np.asarray(self.scores(records), dtype=np.float64)
        return np.argsort(-scores, kind="stable")

    def select(self, records: SampleRecords, fraction: float) -> list[str]:
        """Ids of the top ``fraction`` (0 < fraction <= 1) of the ranking, at least one sample."""
        if not 0.0 < fraction <= 1.0:
            raise ValueError(f"fraction must lie in (0, 1], got {fraction}")
        count = max(1, math.ceil(round(fraction * len(records), 9)))
        return [records.ids[i] for i in self.rank(records)[:count]]
