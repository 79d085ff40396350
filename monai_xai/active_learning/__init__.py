"""Active learning: which samples an expert should correct first.

One small class per strategy over :class:`SelectionStrategy`; :func:`get_strategy` picks one by name.
"""

from __future__ import annotations

from monai_xai.active_learning.base import SampleRecords, SelectionStrategy
from monai_xai.active_learning.largest_map_error import LargestMapError
from monai_xai.active_learning.lowest_confidence import LowestConfidence
from monai_xai.active_learning.random_selection import RandomSelection

__all__ = [
    "STRATEGIES",
    "LargestMapError",
    "LowestConfidence",
    "RandomSelection",
    "SampleRecords",
    "SelectionStrategy",
    "get_strategy",
]

#: Strategy classes by name.
STRATEGIES: dict[str, type[SelectionStrategy]] = {
    cls.name: cls for cls in (LowestConfidence, LargestMapError, RandomSelection)
}


def get_strategy(name: str, **kwargs) -> SelectionStrategy:
    """The strategy called ``name`` (see :data:`STRATEGIES`), built with ``kwargs``."""
    if name not in STRATEGIES:
        raise ValueError(f"unknown strategy {name!r}; valid strategies: {', '.join(STRATEGIES)}")
    return STRATEGIES[name](**kwargs)
