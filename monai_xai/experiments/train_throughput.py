"""Training throughput: float32 against the device's fast path for every bundle's network, and the ABN
bundle's trainer against a bare loop (``pipeline_efficiency``), with intervals over the timed rounds.

The measuring script stays a script (it times this machine, nothing to collect from run folders)::

    python scripts/benchmarks/train_throughput.py --publish   # the ABN docs' results/train_throughput.json

This module renders that one results file into the ABN bundle's README (``train_throughput``: with the
trainer's stages from per-item augmentation in workers to the default batched augmentation, each stage's
efficiency and what it gained over the one before) and, for each other bundle, the speed-ups of the networks
it trains (``fast_path_speedups_<bundle>``). A target is met only where the whole 95 % interval lies above it.
"""

from __future__ import annotations

from collections.abc import Callable

from .results import Block, bundle_results, fmt, fmt_ci, verdict_cell

__all__ = ["BLOCKS", "BUNDLE_NETWORKS", "fast_path_speedups", "render"]

#: the networks of the benchmark's bare steps that each bundle (other than the ABN's own table) trains
BUNDLE_NETWORKS = {
    "multiscale_abn_correction": ["multiscale_abn"],
    "agcyclegan_explainer": ["resnet", "agcyclegan"],
    "centernet_detection": ["simsiam", "centernet"],
}
#: a verdict from a figure without an interval: the results file predates intervals


def _stats(report: dict, key: str) -> dict | float:
    """The figure ``key`` with its interval; the bare figure where the results file has none."""
    return report.get("intervals", {}).get(key, report[key])


def _judged(report: dict, key: str) -> str:
    target = report["targets"].get(key)
    if target is None:
        return "-"
    return verdict_cell(_stats(report, key), target)


def _stage_rows(report: dict, stages: dict) -> list[str]:
    """One row per trainer stage: its efficiency and the efficiency it gained over the stage before."""
    rows = [
        "| ABN trainer stage | workers | trainer images/s | bare images/s | efficiency | gained |",
        "|---|---|---|---|---|---|",
    ]
    previous = None
    for figures in stages.values():
        gained = "-" if previous is None else f"{figures['efficiency'] - previous:+.3f}"
        rows.append(
            f"| {figures['pipeline']} | {figures['num_workers']} | "
            f"{fmt(figures['trainer_images_per_s'], 2)} | {fmt(figures['bare_images_per_s'], 2)} | "
            f"{fmt_ci(_stats(report, figures['key']))} | {gained} |"
        )
        previous = figures["efficiency"]
    return [*rows, ""]


def render(report: dict) -> str:
    """Bare-step speed-ups of every network and the trainer's pipeline efficiency, each against its target,
    and the trainer's stages where the results file has them."""
    targets = report["targets"]
    step = f"bare step, {report['size']}x{report['size']}, batch {report['batch']}"
    rows = [
        f"| network ({step}) | float32 images/s | fast path images/s | speed-up | target | verdict |",
        "|---|---|---|---|---|---|",
    ]
    for name, figures in report["bare_steps"].items():
        key = f"precision_speedup_{name}"
        target = targets.get(key)
        rows.append(
            f"| {name} | {fmt(figures['fp32_images_per_s'], 2)} | {fmt(figures['fast_images_per_s'], 2)} | "
            f"{fmt_ci(_stats(report, key))} | {'≥ ' + str(target) if target else '-'} | "
            f"{_judged(report, key)} |"
        )
    lines = [*rows, ""]
    pipeline = report.get("pipeline")
    if pipeline and "pipeline_efficiency" in report:
        lines += [
            "| ABN bundle trainer, BUSI epoch (cache warm) | bare loop, same network/loss/batch/optimiser | "
            "pipeline_efficiency | target | verdict |",
            "|---|---|---|---|---|",
            f"| {fmt(pipeline['trainer_images_per_s'], 2)} images/s ({pipeline['iterations_per_epoch']} "
            f"steps, {pipeline['num_workers']} workers) | {fmt(pipeline['bare_images_per_s'], 2)} images/s | "
            f"{fmt_ci(_stats(report, 'pipeline_efficiency'))} | ≥ {targets['pipeline_efficiency']} | "
            f"{_judged(report, 'pipeline_efficiency')} |",
            "",
        ]
    if pipeline and pipeline.get("stages"):
        lines += _stage_rows(report, pipeline["stages"])
    env = report["environment"]
    fast = next(iter(report["bare_steps"].values()))["fast_path"]
    intervals = (
        " Brackets: 95 % bootstrap intervals (speed-ups: over the timed rounds; pipeline_efficiency: over "
        "the iterations); met only where the whole interval lies above the target."
        if "intervals" in report
        else ""
    )
    lines.append(
        f"Fast path resolved here: {fast}; CPU supports bfloat16: {report['cpu_supports_bf16']}; "
        f"{env['threads']} threads, load {env['loadavg_1min_at_start']} at start and "
        f"{env['loadavg_1min_at_end']} at end; torch {env['torch']}, MONAI {env['monai']}.{intervals}"
    )
    return "\n".join(lines) + "\n"


def fast_path_speedups(bundle: str) -> Callable[[dict], str]:
    """The renderer of one bundle's lines: each network it trains and its fast-path speed-up."""

    def render_bundle(report: dict) -> str:
        steps = report["bare_steps"]
        lines = [
            f"- `{name}`: {fmt(steps[name]['fp32_images_per_s'], 2)} images/s in float32, "
            f"{fmt(steps[name]['fast_images_per_s'], 2)} on the fast path ({steps[name]['fast_path']}): "
            f"x{fmt_ci(_stats(report, f'precision_speedup_{name}'))}"
            for name in BUNDLE_NETWORKS[bundle]
        ]
        return "\n".join(lines) + "\n"

    return render_bundle


BLOCKS: dict[str, Block] = {
    "train_throughput": bundle_results("abn_classification", "train_throughput", render),
    **{
        f"fast_path_speedups_{bundle}": bundle_results(
            "abn_classification", "train_throughput", fast_path_speedups(bundle)
        )
        for bundle in BUNDLE_NETWORKS
    },
}
