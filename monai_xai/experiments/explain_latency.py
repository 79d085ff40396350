"""Explanation and training cost of the ABN variants against a plain ResNet18 with Grad-CAM++.

The measuring script stays a script (it times this machine, nothing to collect from run folders)::

    python scripts/benchmarks/explain_latency.py --repeats 12 --publish   # docs/results/explain_latency.json

This module renders that results file into the ABN bundle's README (``explain_latency``). The explanation
targets are judged against the fastest exact Grad-CAM++: frozen weights, the gradient taken no further than
``layer4``'s last batch norm or the forward to ``layer4`` on an optimised copy without gradients
("head-grad"), which gives the same maps as a Grad-CAM++ that back-propagates into every weight; the ratios
to that slower one are shown beside them, not judged. A target is met only where the whole 95 % interval
(over the timed rounds) lies below it. Each contender runs at its fastest setting within the same tolerance
of float32 (``tolerance_checks`` of the results file); the table's notes name them.
"""

from __future__ import annotations

from .results import NO_INTERVAL, Block, bundle_results, fmt, fmt_ci, verdict_cell

__all__ = ["BLOCKS", "render"]

#: a verdict from a figure without an interval: the results file predates intervals


def _suffix(report: dict, architecture: str) -> str:
    """The key suffix of an architecture: none for the first (the script's unsuffixed keys)."""
    return "" if architecture == report["settings"]["architectures"][0] else f"_{architecture}"


def _ratio(report: dict, key: str, target: float | None) -> str:
    """A ratio with its interval, and its verdict when it is judged against ``target``."""
    stats = report.get("intervals", {}).get(key, report[key])
    if target is None:
        return fmt_ci(stats, 2)
    return f"{fmt_ci(stats, 2)}: {verdict_cell(stats, target, higher_is_better=False)}"


def _all_met(report: dict, architecture: str) -> str:
    """Whether an architecture meets every target, from its verdicts (none in a file without intervals)."""
    verdicts = report.get("verdicts", {}).get(architecture)
    if not verdicts:
        return NO_INTERVAL
    return "yes" if all(v == "met" for v in verdicts.values()) else "no"


def _settings_note(report: dict, judged: str) -> str:
    """``judged`` (how targets are judged) and which setting each contender ran at, from the tolerance
    checks (a results file from before them describes its one reference)."""
    checks = report.get("tolerance_checks")
    if not checks:
        return (
            "The reference Grad-CAM++ freezes every weight but `layer4`'s last batch norm, so its backward "
            "pass stops there; its maps equal those of the Grad-CAM++ that back-propagates into every "
            f"weight. {judged}"
        )
    tolerance, settings = report["tolerance"], report["settings"]
    names = {"gradcampp_headgrad": "Grad-CAM++ reference", "gradcampp": "Grad-CAM++, every weight"}
    contenders = ["gradcampp_headgrad", "gradcampp", *settings["architectures"]]
    lines = [
        judged,
        "",
        "Each contender ran at its fastest setting whose prediction and map stayed within the same "
        f"tolerance of float32 on the timed batch (class probabilities within {tolerance['probability']}, "
        f"map correlation ≥ {tolerance['map_correlation']} per image; all within: "
        f"{'yes' if report['all_within_tolerance'] else 'no'}):",
    ]
    for b in settings["batch_sizes"]:
        taken = "; ".join(
            f"{names.get(c, f'`{c}`')}: {checks[f'explain_b{b}_{c}']['setting']}" for c in contenders
        )
        lines.append(f"- batch {b}: {taken}")
    return "\n".join(lines)


def render(report: dict) -> str:
    """Median times of every contender, then each ratio against its baseline with the verdicts."""
    settings, medians, targets = report["settings"], report["medians_ms"], report["targets"]
    architectures, batches = settings["architectures"], settings["batch_sizes"]
    names = " | ".join(f"`{a}`" for a in architectures)
    # results files from before the tolerance checks timed one head-grad Grad-CAM++: frozen weights
    reference = "Grad-CAM++, head gradient" if "tolerance_checks" in report else "Grad-CAM++, frozen weights"
    reference += " (reference)"
    rows = [
        f"| median time | {reference} | Grad-CAM++, every weight | {names} |",
        "|---" * (3 + len(architectures)) + "|",
    ]
    for b in batches:
        cells = " | ".join(f"{medians[f'explain_b{b}_{a}']:.1f} ms" for a in architectures)
        rows.append(
            f"| prediction + map, batch {b} | {medians[f'explain_b{b}_gradcampp_headgrad']:.1f} ms | "
            f"{medians[f'explain_b{b}_gradcampp']:.1f} ms | {cells} |"
        )
    train = settings["train_batch"]
    cells = " | ".join(f"{medians[f'train_b{train}_{a}']:.1f} ms" for a in architectures)
    resnet = medians[f"train_b{train}_resnet"]
    rows += [
        f"| one training step, batch {train} (baseline: plain ResNet {resnet:.1f} ms) | | | {cells} |",
        "",
        f"| ratio: ABN / baseline | target | {names} |",
        "|---" * (2 + len(architectures)) + "|",
    ]
    explain, step = targets["explain_ratio_max"], targets["train_step_ratio_max"]
    measurements = []
    for b in batches:
        measurements += [
            (f"prediction + map, batch {b}, against the reference Grad-CAM++",
             f"explain_ratio_b{b}_vs_headgrad", explain),
            (f"prediction + map, batch {b}, against Grad-CAM++ on every weight (not judged)",
             f"explain_ratio_b{b}", None),
        ]  # fmt: skip
    measurements.append(
        (f"one training step, batch {train}, against the plain ResNet", "train_step_ratio", step)
    )
    for label, key, target in measurements:
        cells = " | ".join(_ratio(report, f"{key}{_suffix(report, a)}", target) for a in architectures)
        rows.append(f"| {label} | {'≤ ' + str(target) if target is not None else '-'} | {cells} |")
    rows.append(f"| all targets met | | {' | '.join(_all_met(report, a) for a in architectures)} |")
    judged = (
        "Brackets: 95 % bootstrap intervals over the interleaved rounds; a target is met only where the "
        "whole interval lies below it."
        if "intervals" in report
        else "This results file has no intervals: no target is judged met or missed until the benchmark is "
        "run again."
    )
    return "\n".join(rows) + (
        f"\n\n{settings['backbone']}, {settings['size']}x{settings['size']}, {settings['device']}, "
        f"{settings['threads']} threads, {settings['warmup']} warm-up + {settings['repeats']} interleaved "
        f"repeats, medians; load {fmt(settings['loadavg_1min_at_start'], 2)} at start, "
        f"{fmt(settings['loadavg_1min_at_end'], 2)} at end. {_settings_note(report, judged)}\n"
    )


BLOCKS: dict[str, Block] = {
    "explain_latency": bundle_results("abn_classification", "explain_latency", render)
}
