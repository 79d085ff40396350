"""Peak memory and images/s of the ABN bundle's training on 80,000 generated 224 px phantoms next to 1,000.

A shortcut to ``python -m monai_xai.experiments dataset_scale run`` (the module
:mod:`monai_xai.experiments.dataset_scale` says what it generates, times and samples); the same
arguments. The last line printed is the report as JSON, with ``scale_peak_memory_gb`` and
``scale_throughput_ratio``.

Usage::

    python scripts/benchmarks/dataset_scale.py --publish        # the full size: generates ~3.5 GB once
    python scripts/benchmarks/dataset_scale.py --n_large 300 --n_small 60 --size 64 --batch_size 4 \\
        --iterations 2 --warmup 1 --runs /tmp/scale --out /tmp/scale.json   # a smoke test, seconds
"""

from __future__ import annotations

import sys

from monai_xai.experiments.cli import main

if __name__ == "__main__":
    sys.exit(main(["dataset_scale", "run", *sys.argv[1:]]))
