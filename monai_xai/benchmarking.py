"""What every benchmark reports about the machine it ran on, so that its ratios can be judged.

Absolute times on a shared CPU are noisy; the load average before and after a run says whether other
processes competed for it. Ratios also depend on the CPU's vector units: the same benchmark on a CPU with
native bfloat16 (AVX-512 BF16, AMX) and on one with AVX2 alone gives different fast paths, so the CPU model
and its SIMD flags are part of the record.
"""

from __future__ import annotations

import os
import platform
import sys
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = [
    "cpu_description",
    "environment",
    "load_average",
    "machine_description",
    "ratio_interval",
    "warn_if_busy",
]


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


#: The CPU flags that decide which kernels torch can use (``/proc/cpuinfo`` names).
SIMD_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")


def cpu_description() -> dict:
    """The CPU's model name and which of :data:`SIMD_FLAGS` it has (none without ``/proc/cpuinfo``)."""
    model, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                key, _, value = line.partition(":")
                if key.strip() == "model name" and value.strip():
                    model = value.strip()
                elif key.strip() == "flags":
                    flags = set(value.split())
                    break
    except OSError:
        pass
    return {"cpu_model": model, "cpu_flags": [flag for flag in SIMD_FLAGS if flag in flags]}


def environment(load_start: float, load_end: float) -> dict:
    """Threads, cores, the CPU and its SIMD flags, whether torch runs bfloat16 natively on it, load at start
    and end, and the torch/MONAI/Python versions."""
    import monai
    import torch

    from monai_xai.utils.device import cpu_supports_bf16

    return {
        **cpu_description(),
        "cpu_supports_bf16": cpu_supports_bf16(),
        "threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count() or 1,
        "loadavg_1min_at_start": round(load_start, 2),
        "loadavg_1min_at_end": round(load_end, 2),
        "torch": torch.__version__,
        "monai": monai.__version__,
        "python": platform.python_version(),
    }


def machine_description(env: Mapping[str, Any] | None) -> str:
    """``"AMD EPYC, 2 cores, no native bfloat16"`` from an :func:`environment` record; "not recorded" for
    results written before benchmarks recorded their machine."""
    model = (env or {}).get("cpu_model")
    if model is None:
        return "not recorded"
    bf16 = "native bfloat16" if env.get("cpu_supports_bf16") else "no native bfloat16"
    return f"{model}, {env.get('cpu_count', '?')} cores, {bf16}"


def ratio_interval(
    slower_s: Sequence[float], faster_s: Sequence[float], n_boot: int = 2000
) -> dict[str, Any]:
    """How many times faster: median ``slower_s`` / median ``faster_s`` over interleaved rounds, with a 95 %
    bootstrap interval that resamples the rounds, each round's two times together (they shared the machine's
    load); no interval from a single round.

    Args:
        slower_s: each round's time of the reference (the numerator).
        faster_s: each round's time of the contender, in the same rounds.
        n_boot: bootstrap resamples.
    """
    import numpy as np

    from monai_xai.metrics.uncertainty import bootstrap_ci

    slower, faster = np.asarray(slower_s, dtype=float), np.asarray(faster_s, dtype=float)

    def ratio(a: np.ndarray, b: np.ndarray) -> float:
        return float(np.median(a) / np.median(b))

    if slower.size < 2:
        return {"mean": ratio(slower, faster), "ci95": None, "n": int(slower.size)}
    return bootstrap_ci(ratio, slower, faster, n_boot=n_boot).to_dict()
