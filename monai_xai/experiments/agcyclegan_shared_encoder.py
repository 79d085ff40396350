"""The AG-CycleGAN's one shared frozen encoder against four separate copies: its speed and memory table.

The measuring stays a script, ``scripts/benchmarks/agcyclegan_shared_encoder.py`` (its docstring says what
each variant runs and how memory is read); this module renders its results file,
``bundles/agcyclegan_explainer/docs/results/shared_encoder.json`` (block ``shared_encoder``): one training
step's time and peak memory per variant in 2D and 3D, their ratios against the targets (shared / separate
≤ 0.6), and the explanation's latency beside Grad-CAM++. A time ratio carries a 95 % interval (bootstrap over
the interleaved rounds) and is met only when the interval clears the target; a memory ratio is one
measurement.

    python scripts/benchmarks/agcyclegan_shared_encoder.py --publish   # measure, write the docs' file
    python -m monai_xai.experiments render                             # regenerate the README table
"""

from __future__ import annotations

from .results import bundle_results, fmt, fmt_ci

__all__ = ["BLOCKS", "PUBLISHED", "render"]

#: the results file the benchmark writes with ``--publish``
PUBLISHED = "bundles/agcyclegan_explainer/docs/results/shared_encoder.json"


def render(report: dict) -> str:
    """Step time and peak memory of both variants in 2D and 3D with their ratios and verdicts, then the
    explanation latency, and the run's settings and machine."""
    from monai_xai.benchmarking import machine_description

    targets, verdicts = report["targets"], report["verdicts"]
    rows = [
        "| | input (B, C, *spatial) | step, shared | step, 4 encoders | time ratio "
        f"(target ≤ {targets['step_time_ratio']:g}) | peak memory, shared | peak memory, 4 encoders | "
        f"memory ratio (target ≤ {targets['peak_mem_ratio']:g}) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for dims in ("2d", "3d"):
        step = f"{fmt_ci(report[f'step_time_ratio_{dims}'], 2)}, {verdicts[f'step_time_ratio_{dims}']}"
        memory = f"{fmt(report[f'peak_mem_ratio_{dims}'], 2)}, {verdicts[f'peak_mem_ratio_{dims}']}"
        rows.append(
            f"| {dims.upper()} | {report[f'input_{dims}']} | {fmt(report[f'step_s_shared_{dims}'], 2)} s | "
            f"{fmt(report[f'step_s_separate_{dims}'], 2)} s | {step} | "
            f"{report[f'peak_mib_shared_{dims}']:.0f} MiB | {report[f'peak_mib_separate_{dims}']:.0f} MiB | "
            f"{memory} |"
        )
    env = report["environment"]
    rows += [
        "",
        f"Explanation per image (2D, classifier forward, one masked translation, classifier forward on it): "
        f"{report['latency_per_image_s_agcyclegan'] * 1e3:.1f} ms, Grad-CAM++ of the classifier "
        f"{report['latency_per_image_s_gradcampp'] * 1e3:.1f} ms: ratio "
        f"{fmt_ci(report['latency_ratio_vs_gradcampp'], 2)}.",
        "",
        f"{report['warmup']} warm-up + {report['repeats']} interleaved rounds, medians; device "
        f"{report['device']} ({machine_description(env)}), {env['threads']} threads, torch {env['torch']}; "
        f"load {env['loadavg_1min_at_start']} at start, {env['loadavg_1min_at_end']} at end. Memory: "
        f"{report['memory_method']}. Brackets: 95 % bootstrap intervals over the rounds, each round's two "
        "timings together.",
    ]
    return "\n".join(rows) + "\n"


BLOCKS = {"shared_encoder": bundle_results("agcyclegan_explainer", "shared_encoder", render)}
