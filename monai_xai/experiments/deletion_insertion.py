"""Speed of monai_xai's batched Deletion/Insertion against a per-image loop and against Quantus.

``scripts/benchmarks/deletion_insertion.py`` times the contenders on the same network, images, maps and
steps and checks that their curves agree (its docstring has the method); with ``--publish`` it writes
``bundles/multiscale_abn_correction/docs/results/deletion_insertion.json``, which this module renders (block
``deletion_insertion``). The targets are about the machine's timings in one run and the largest curve
difference, not about a sample of images: there is no test set to draw an interval from, so each target is
checked on its measured figure.

Usage::

    python scripts/benchmarks/deletion_insertion.py --threads 1 --repeats 5 --publish
    python -m monai_xai.experiments render
"""

from __future__ import annotations

from .results import bundle_results, fmt_ci

__all__ = ["BLOCKS", "ROWS", "render"]

BUNDLE = "multiscale_abn_correction"
#: Rows of the Deletion/Insertion speed table: contender -> label.
ROWS = {
    "loop": "per-image, per-step loop (batch-1 forwards)",
    "loop_optimised": "the loop on the optimised copy",
    "batched_plain": "`deletion_insertion` on the plain network",
    "batched": "**monai_xai: optimised copy + `deletion_insertion`**",
    "forwards_only": "the optimised copy's forward passes alone (ceiling)",
}


def render(report: dict) -> str:
    """Medians of the contenders, then each speed-up and difference against its target."""
    settings, medians = report["settings"], report["median_s"]
    intervals = report.get("intervals", {})
    loop = medians["loop"]
    rows = ["| deletion + insertion | median | loop / this |", "|---|---|---|"]
    rows += [
        f"| {label} | {medians[name]:.3f} s | {loop / medians[name]:.2f}x |" for name, label in ROWS.items()
    ]
    checks = [
        (
            "`speedup`",
            f"{fmt_ci(intervals.get('speedup', report['speedup']), 2)}x",
            f"≥ {report['target_speedup_of_ceiling']:g} x `speedup_ceiling` {report['speedup_ceiling']:.2f}x "
            f"= {report['target_speedup']:.2f}x",
            report["speedup_met"],
        ),
        ("`max_abs_diff`", f"{report['max_abs_diff']:.1e}", f"≤ {report['target_max_abs_diff']:g}",
         report["agreement_met"]),
    ]  # fmt: skip
    if "quantus_skipped" in report:
        quantus_note = f" Quantus skipped: {report['quantus_skipped']}."
    else:
        ours = medians["batched_deletion_only"]
        vs_quantus = fmt_ci(intervals.get("speedup_vs_quantus", report["speedup_vs_quantus"]), 2)
        rows += ["", "| deletion alone | median | this / monai_xai |", "|---|---|---|"]
        quantus = f"Quantus {report['quantus_version']} `PixelFlipping`"
        for name, label in (
            ("batched_deletion_only", "**monai_xai**"),
            ("quantus", f"{quantus} on the plain network"),
            ("quantus_optimised", f"{quantus} on the optimised copy"),
        ):
            rows.append(f"| {label} | {medians[name]:.3f} s | {medians[name] / ours:.2f}x |")
        checks += [
            ("`speedup_vs_quantus`", f"{vs_quantus}x",
             f"≥ {report['target_speedup_vs_quantus']}", report["speedup_vs_quantus_met"]),
            ("`max_abs_diff_vs_quantus`", f"{report['max_abs_diff_vs_quantus']:.1e}",
             f"≤ {report['target_max_abs_diff_vs_quantus']:g}", report["agreement_vs_quantus_met"]),
        ]  # fmt: skip
        quantus_note = ""
    judged = (
        "Brackets: 95 % bootstrap intervals over the interleaved rounds; a speed-up target is met only where "
        "its interval clears it."
        if intervals
        else "Timings of one run on one machine, no interval: each target is checked on its measured figure."
    )
    rows += ["", "| figure | value | target | met |", "|---|---|---|---|"]
    rows += [
        f"| {name} | {value} | {target} | {'yes' if met else '**no**'} |"
        for name, value, target, met in checks
    ]
    return "\n".join(rows) + (
        f"\n\n{settings['backbone']}, {settings['images']} images of {settings['size']}x{settings['size']}, "
        f"{settings['steps']} steps, baseline {settings['baseline']}, torch {settings['torch']}, "
        f"{settings['threads']} threads, {settings['warmup']} warm-up + {settings['repeats']} interleaved "
        f"rounds, medians; load {settings['loadavg_1min_at_start']} at start, "
        f"{settings['loadavg_1min_at_end']} at end{_machine(settings)}. {judged} All targets met: "
        f"{report['target_met']}.{quantus_note}\n"
    )


def _machine(settings: dict) -> str:
    """``"; <CPU model>, no native bfloat16"`` where the run recorded its machine."""
    if "cpu_model" not in settings:
        return ""
    return f"; {settings['cpu_model']}, {'' if settings['cpu_supports_bf16'] else 'no '}native bfloat16"


BLOCKS = {"deletion_insertion": bundle_results(BUNDLE, "deletion_insertion", render)}
