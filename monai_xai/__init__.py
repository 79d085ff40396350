"""monai-xai: MONAI classifiers that explain themselves and accept expert-corrected attention.

Submodules load on first attribute access (``monai_xai.data``, ``monai_xai.networks``, ...), so
``import monai_xai`` stays cheap and bundle configs need a single ``$import monai_xai``. Importing the
package also makes an uncaught error end with the bad input behind it (:func:`errors.install_excepthook`).
"""

from __future__ import annotations

import importlib

from monai_xai.errors import install_excepthook

__version__ = "0.1.0"

_SUBMODULES = (
    "active_learning",
    "benchmarking",
    "bundle",
    "crossval",
    "data",
    "deploy",
    "detection",
    "distributed",
    "editor",
    "engines",
    "errors",
    "flags",
    "handlers",
    "losses",
    "lr_finder",
    "metrics",
    "networks",
    "tracking",
    "transforms",
    "utils",
    "visualize",
)

__all__ = ["__version__", *_SUBMODULES]

install_excepthook()


def __getattr__(name: str):
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
