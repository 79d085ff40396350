"""Inference throughput of the CenterNet detector next to MONAI's RetinaNet: the speed table of the bundle.

Measures images/s from an image batch to boxes for both detectors on the same backbone, at batch 1 and 16,
and their ratio against the target (CenterNet at least 1.5 times as fast). The measuring stays a script,
``scripts/benchmarks/detector_throughput.py`` (its docstring says what each detector runs); this module
renders its results file, ``bundles/centernet_detection/docs/results/detector_throughput.json`` (block
``detector_throughput``). The ratio carries a 95 % interval (bootstrap over the interleaved rounds), and the
target is met only when the interval clears it; a file without one says so.

    python scripts/benchmarks/detector_throughput.py --publish     # measure, write the docs' file
    python -m monai_xai.experiments render                          # regenerate the README table
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .results import bundle_results, fmt, fmt_ci, verdict_cell

__all__ = ["BLOCKS", "PUBLISHED", "render"]

#: the results file the benchmark writes with ``--publish``
PUBLISHED = "bundles/centernet_detection/docs/results/detector_throughput.json"
#: key prefix of the per-batch speed ratio (CenterNet images/s over RetinaNet images/s)
RATIO = "speed_ratio_b"


def _ratio_cell(ratio: Mapping[str, Any] | float, target: float) -> str:
    """The ratio with its interval and :func:`verdict`; a bare ratio (older files) gets no verdict."""
    return f"{fmt_ci(ratio, 2)}, {verdict_cell(ratio, target)}"


def render(report: dict) -> str:
    """CenterNet and MONAI RetinaNet images/s per batch size and their ratio against the target, then the
    run's settings and load."""
    batches = sorted(int(key.removeprefix(RATIO)) for key in report if key.startswith(RATIO))
    target = report["target"]
    rows = [
        f"| batch | CenterNet images/s | RetinaNet (MONAI) images/s | ratio (target ≥ {target:g}) |",
        "|---|---|---|---|",
    ]
    for batch in batches:
        rows.append(
            f"| {batch} | {fmt(report[f'centernet_images_per_s_b{batch}'], 2)} | "
            f"{fmt(report[f'retinanet_images_per_s_b{batch}'], 2)} | "
            f"{_ratio_cell(report[f'{RATIO}{batch}'], target)} |"
        )
    warmup = f" after {report['warmup']} warm-up rounds" if "warmup" in report else ""
    interval = (
        " The ratio's 95 % interval: bootstrap over the rounds, each round's two timings kept together; the "
        "target is met only when the interval clears it."
        if any(isinstance(report[f"{RATIO}{batch}"], Mapping) for batch in batches)
        else ""
    )
    size = report["size"]
    rows += [
        "",
        f"{size}x{size}, one grey channel, {report['backbone']} backbone for both, freshly initialised; "
        f"{report['repeats']} interleaved rounds{warmup}, medians; device {report['device']} "
        f"({report['cpu']}), {report['threads']} threads; 1-minute load average "
        f"{report['load_average_start']} at start, {report['load_average_end']} at end; "
        f"torch {report['torch']}.{interval}",
    ]
    return "\n".join(rows) + "\n"


BLOCKS = {"detector_throughput": bundle_results("centernet_detection", "detector_throughput", render)}
