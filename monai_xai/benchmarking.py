"""What every benchmark reports about the machine it ran on, so that its ratios can be judged.

Absolute times on a shared CPU are noisy; the load average before and after a run says whether other
processes competed for it.
"""

from __future__ import annotations

import os
import platform
import sys

__all__ = ["environment", "load_average", "warn_if_busy"]


def load_average() -> float:
    """The 1-minute load average (0.0 where the platform has none)."""
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0


def warn_if_busy(load: float, consequence: str) -> None:
    """Warn on stderr when more than half the cores were busy before the benchmark started."""
    cores = os.cpu_count() or 1
    if load > 0.5 * cores:
        print(
            f"warning: 1-min load average {load:.1f} on {cores} cores before start: other processes compete "
            f"for the CPU {consequence}",
            file=sys.stderr,
        )


def environment(load_start: float, load_end: float) -> dict:
    """Threads, cores, load at start and end, and the torch/MONAI/Python versions."""
    import monai
    import torch

    return {
        "threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count() or 1,
        "loadavg_1min_at_start": round(load_start, 2),
        "loadavg_1min_at_end": round(load_end, 2),
        "torch": torch.__version__,
        "monai": monai.__version__,
        "python": platform.python_version(),
    }
