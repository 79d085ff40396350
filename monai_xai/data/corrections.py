"""Datalists for fine-tuning on expert-corrected attention maps."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import NamedTuple

__all__ = ["CORRECTED_MAP_KEY", "CorrectionDatalist", "correction_datalist", "item_id"]

#: Datalist column holding an expert's corrected map (PNG or NIfTI, one per sample).
CORRECTED_MAP_KEY = "corrected_map"


def item_id(item: dict) -> str:
    """The id an item is known by in records and selections: its ``source``, else its image path."""
    return str(item.get("source") or item["image"])


class CorrectionDatalist(NamedTuple):
    #: items with the reference map under ``key`` where one is used, without it elsewhere.
    items: list[dict]
    #: how many items carry a reference map.
    n_with_map: int
    #: selected items that had no map in ``source`` (they train without L_map).
    n_selected_without_map: int

    def describe(self, source: str) -> str:
        """One line for the fine-tuning log: how many samples train with a ``source`` map."""
        return (
            f"fine-tuning on {self.n_with_map} of {len(self.items)} training samples with a {source} map "
            f"({self.n_selected_without_map} selected without one)"
        )


def correction_datalist(
    datalist: Sequence[dict],
    selected: Collection[str] | None = None,
    source: str = CORRECTED_MAP_KEY,
    key: str = "mask",
) -> CorrectionDatalist:
    """Copy of ``datalist`` whose selected items take their reference map from ``source``.

    Args:
        datalist: training items (``image``, ``label``, optionally ``mask``, ``corrected_map``, ``source``).
        selected: ids (:func:`item_id`) of the samples the expert corrected, e.g. an active-learning
            selection; every item when None.
        source: ``"corrected_map"`` for the expert's maps, or ``"mask"`` to let the dataset's lesion masks
            stand in for an expert.
        key: the key the training transforms read the reference map from.

    Items outside the selection, and selected items without a map in ``source``, lose ``key``: the
    training transforms then give them an empty mask flagged ``has_mask=False``, so they add no L_map.
    """
    chosen = None if selected is None else {str(s) for s in selected}
    if chosen is not None:
        unknown = chosen - {item_id(item) for item in datalist}
        if unknown:
            example = sorted(unknown)[0]
            raise ValueError(f"{len(unknown)} selected ids are not in the datalist, e.g. {example!r}")
    items, with_map, missing = [], 0, 0
    for item in datalist:
        new = {k: v for k, v in item.items() if k not in (key, CORRECTED_MAP_KEY)}
        if chosen is None or item_id(item) in chosen:
            reference = item.get(source)
            if reference is None or reference == "":
                missing += 1
            else:
                new[key] = reference
                with_map += 1
        items.append(new)
    return CorrectionDatalist(items, with_map, missing)
