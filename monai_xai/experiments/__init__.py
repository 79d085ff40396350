"""Experiments: the studies behind the bundle READMEs, as an importable package with a command line.

One module per experiment holds its results schema, its collector (``main``), its renderers (``BLOCKS``)
and the metadata figures derived from it (``EVAL_METRICS``); :mod:`.runner` runs bundle steps (skip when
done, one process at a time, wall time); :mod:`.readme` regenerates every README table
(``monai-xai-experiments render --check``). Results go into a bundle's ``docs/`` only with ``--publish``.
"""

from .registry import EXPERIMENTS, experiment, experiments
from .results import Block, fmt, fmt_ci, mean_sd, verdict, write_results

__all__ = [
    "EXPERIMENTS",
    "Block",
    "experiment",
    "experiments",
    "fmt",
    "fmt_ci",
    "mean_sd",
    "verdict",
    "write_results",
]
