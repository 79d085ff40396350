"""Where the speed targets stand: one table over the benchmarks' results files, in the repository README.

Each benchmark writes its own results file and renders its own table in a bundle README; this block
(``speed_targets``, in ``README.md``) puts their headline figures beside the targets users feel: the first
run, the explanation's cost against Grad-CAM++, the training pipeline against a bare loop,
Deletion/Insertion against Quantus, and memory and speed on a dataset 100x BUSI. A figure with a 95 %
interval is met only when the interval clears the target; a single run's figure (the quickstart's time, the
peak memory) is compared as it is. Each row names the machine it was measured on, since the ratios depend on
its vector units.

    python -m monai_xai.experiments render
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .results import Block, fmt_ci, verdict_cell

__all__ = ["BLOCKS", "TARGETS", "SpeedTarget", "render"]

_ABN = "bundles/abn_classification/docs/results"
_MULTISCALE = "bundles/multiscale_abn_correction/docs/results"


@dataclass(frozen=True)
class SpeedTarget:
    """One row: a figure of one results file against its target.

    Args:
        label: what is measured.
        results: the results file, relative to the repository root.
        key: the figure's key; looked up in the file's ``intervals`` first, then at its top level.
        target: the bound the figure must clear.
        higher_is_better: whether the figure must lie above ``target`` (else below).
        unit: printed after the figure and the target.
        digits: decimals of the figure.
    """

    label: str
    results: str
    key: str
    target: float
    higher_is_better: bool = True
    unit: str = ""
    digits: int = 2

    def figure(self, report: Mapping[str, Any]) -> Any:
        return (report.get("intervals") or {}).get(self.key, report.get(self.key))


TARGETS: tuple[SpeedTarget, ...] = (
    SpeedTarget(
        "`bash scripts/quickstart.sh`, fresh clone, empty package cache",
        f"{_ABN}/quickstart_time.json",
        "quickstart_s",
        300,
        higher_is_better=False,
        unit=" s",
        digits=0,
    ),
    SpeedTarget(
        "default ABN prediction + map / Grad-CAM++ (frozen weights), 224 px, batch 1",
        f"{_ABN}/explain_latency.json",
        "explain_ratio_b1_vs_headgrad",
        1.0,
        higher_is_better=False,
    ),
    SpeedTarget(
        "the same, batch 16",
        f"{_ABN}/explain_latency.json",
        "explain_ratio_b16_vs_headgrad",
        1.0,
        higher_is_better=False,
    ),
    SpeedTarget(
        "ABN bundle trainer / bare loop, images/s (`pipeline_efficiency`)",
        f"{_ABN}/train_throughput.json",
        "pipeline_efficiency",
        0.9,
    ),
    SpeedTarget(
        "Deletion/Insertion / Quantus `PixelFlipping`, same curves",
        f"{_MULTISCALE}/deletion_insertion.json",
        "speedup_vs_quantus",
        2.0,
    ),
    SpeedTarget(
        "peak memory training on a dataset 100x BUSI",
        f"{_ABN}/dataset_scale.json",
        "scale_peak_memory_gb",
        8.0,
        higher_is_better=False,
        unit=" GB",
        digits=1,
    ),
    SpeedTarget(
        "images/s on it / on a 1,000-image dataset",
        f"{_ABN}/dataset_scale.json",
        "scale_throughput_ratio",
        0.9,
    ),
)


def _single_run_verdict(value: float, target: SpeedTarget) -> str:
    met = value >= target.target if target.higher_is_better else value <= target.target
    return "met (one run)" if met else "missed (one run)"


def _machine(report: Mapping[str, Any]) -> str:
    from monai_xai.benchmarking import machine_description

    return machine_description(report.get("environment") or report.get("settings"))


def _row(target: SpeedTarget, report: Mapping[str, Any] | None) -> str:
    bound = f"{'≥' if target.higher_is_better else '≤'} {target.target:g}{target.unit}"
    if report is None:
        return f"| {target.label} | not measured yet | {bound} | – | – |"
    figure = target.figure(report)
    if figure is None:
        return f"| {target.label} | not in `{target.results.rsplit('/', 1)[-1]}` | {bound} | – | – |"
    if isinstance(figure, Mapping):
        cell = fmt_ci(figure, target.digits)
        judged = verdict_cell(figure, target.target, target.higher_is_better)
    else:
        cell, judged = f"{figure:.{target.digits}f}", _single_run_verdict(float(figure), target)
    return f"| {target.label} | {cell}{target.unit} | {bound} | {judged} | {_machine(report)} |"


def render(reports: Mapping[str, Mapping[str, Any] | None]) -> str:
    """One row per :data:`TARGETS` entry, from ``{results file: its content or None}``."""
    rows = ["| what | measured | target | verdict | machine |", "|---|---|---|---|---|"]
    rows += [_row(target, reports.get(target.results)) for target in TARGETS]
    rows += [
        "",
        "Brackets: 95 % intervals (bootstrap over a benchmark's interleaved rounds); met only where the "
        "interval clears the target. A figure without one is one run's. Each benchmark's own table, with "
        "every contender, is in its bundle's README.",
    ]
    return "\n".join(rows) + "\n"


def _sources() -> tuple[str, ...]:
    return tuple(dict.fromkeys(target.results for target in TARGETS))


BLOCKS: dict[str, Block] = {"speed_targets": Block(None, render, summarises=_sources())}
