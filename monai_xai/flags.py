"""On/off settings as they arrive from a bundle's command line.

``python -m monai.bundle run ... --amp false`` passes the *string* ``"false"`` (Fire reads only ``False``
as a boolean), which Python takes as true. Settings that switch something on or off go through
:func:`as_bool` so that both spellings mean what they say.
"""

from __future__ import annotations

__all__ = ["as_bool"]

_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off", "none", ""})


def as_bool(value: object, name: str = "value") -> bool:
    """``value`` as a boolean: bools and numbers as Python reads them, strings like ``"false"``/``"true"``."""
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise ValueError(f"{name} must be true or false, got {value!r}")
    return bool(value)
