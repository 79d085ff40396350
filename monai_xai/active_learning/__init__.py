"""Active learning: which samples an expert should correct first.

One small class per strategy over :class:`SelectionStrategy`; :func:`get_strategy` picks one by name.
"""

from __future__ import annotations

import os
from typing import Any

from monai.utils import look_up_option

from monai_xai.active_learning.base import SampleRecords, SelectionStrategy
from monai_xai.active_learning.largest_map_error import LargestMapError
from monai_xai.active_learning.lowest_confidence import LowestConfidence
from monai_xai.active_learning.random_selection import RandomSelection
from monai_xai.errors import InputError

__all__ = [
    "STRATEGIES",
    "LargestMapError",
    "LowestConfidence",
    "RandomSelection",
    "SampleRecords",
    "SelectionStrategy",
    "get_strategy",
    "select_for_correction",
]

#: Strategy classes by name.
STRATEGIES: dict[str, type[SelectionStrategy]] = {
    cls.name: cls for cls in (LowestConfidence, LargestMapError, RandomSelection)
}


def get_strategy(name: str, **kwargs) -> SelectionStrategy:
    """The strategy called ``name`` (see :data:`STRATEGIES`), built with ``kwargs``.

    Args:
        name: a key of :data:`STRATEGIES` (the correction bundle's ``strategy`` key).
        kwargs: the strategy's constructor arguments (``strategy_args``).

    Raises:
        InputError: for an unknown ``name``, naming the ``strategy`` key and the valid names.
    """
    strategy_type = look_up_option(name, STRATEGIES, default=None)
    if strategy_type is None:
        raise InputError("strategy", f"unknown strategy {name!r}; valid strategies: {', '.join(STRATEGIES)}")
    return strategy_type(**kwargs)


def select_for_correction(
    strategy: str, records_file: str | os.PathLike, fraction: float, **strategy_args: Any
) -> list[str] | None:
    """Ids of the samples whose corrected map the fine-tuning uses: the top ``fraction`` of ``strategy``'s
    ranking of ``records_file`` (the ``records.csv`` of ``collect.json``), or None (every sample) for the
    strategy ``"all"``, which needs no records."""
    if strategy == "all":
        return None
    return get_strategy(strategy, **strategy_args).select(SampleRecords.from_csv(records_file), fraction)
