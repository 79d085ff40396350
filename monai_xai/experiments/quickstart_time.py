"""The first run's time as a new user meets it: the quickstart on a fresh clone with an empty package cache.

The measuring is a script, ``scripts/benchmarks/quickstart_time.py`` (it clones, empties pip's cache and runs
``bash scripts/quickstart.sh``); this module renders its results file,
``bundles/abn_classification/docs/results/quickstart_time.json`` (block ``quickstart_time``): the total
against the target (at most 300 s), the time of each step, and whether the shortened demo still shows its
verdict (each arm's test accuracy with its 95 % interval, a bound met only where the interval clears it). The
time is one run's (no interval): its target is met when that run's total is under it.

    python scripts/benchmarks/quickstart_time.py --publish
    python -m monai_xai.experiments render
"""

from __future__ import annotations

from typing import Any

from .results import bundle_results, fmt_ci, verdict_cell

__all__ = ["BLOCKS", "PUBLISHED", "render"]

#: the results file the benchmark writes with ``--publish``
PUBLISHED = "bundles/abn_classification/docs/results/quickstart_time.json"


def _seconds(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0f} s"


def _splits(budget: dict[str, Any]) -> str:
    """``"400 / 100 / 400 (train / val / test)"`` from the budget's image counts."""
    images = budget.get("images") or {}
    names = [name for name in ("train", "val", "test") if name in images]
    return f"{' / '.join(str(images[n]) for n in names)} ({' / '.join(names)})"


def _bound(text: str) -> tuple[float, bool]:
    """``">= 0.9"`` -> ``(0.9, True)``: the bound and whether the figure must lie above it."""
    relation, bound = text.split()
    return float(bound), relation == ">="


def render(report: dict[str, Any]) -> str:
    """Total against the target, each step (install, imports, phantoms, arms), the verdict, the machine."""
    timing, env = report.get("timing") or {}, report["environment"]
    met = "met" if report["target_met"] else "missed"
    rows = [
        "| step | time |",
        "|---|---|",
        f"| **total, fresh clone, empty package cache** (target ≤ {report['target_s']:.0f} s) | "
        f"**{_seconds(report['quickstart_s'])}** ({met}) |",
        f"| install (`.venv`, `scripts/_venv.sh`) | {_seconds(report['install_s'])} |",
    ]
    for key, label in (("startup_s", "start-up"), ("imports_s", "imports"), ("data_s", "phantoms")):
        if key in timing:
            rows.append(f"| {label} | {_seconds(timing[key])} |")
    for arm, steps in (timing.get("arms") or {}).items():
        parts = ", ".join(f"{name.removesuffix('_s')} {_seconds(value)}" for name, value in steps.items())
        rows.append(f"| arm `{arm}` | {parts} |")
    if "report_s" in timing:
        rows.append(f"| summary and figure | {_seconds(timing['report_s'])} |")
    checks, accuracy = report["verdict"]["checks"], report.get("accuracy", {})
    verdict = "; ".join(
        f"{arm} test accuracy {fmt_ci(accuracy.get(arm, check['test_accuracy']))} ({check['bound']}: "
        f"{verdict_cell(accuracy.get(arm, check['test_accuracy']), *_bound(check['bound']))})"
        for arm, check in checks.items()
    )
    budget = report.get("budget") or {}
    flags = ", ".join(env.get("cpu_flags", [])) or "none of the listed"
    rows += [
        "",
        f"Verdict {'kept' if report['verdict_kept'] else 'NOT kept'}: {verdict}. "
        f"Budget `{budget.get('name')}`: {budget.get('epochs')} epochs, phantoms {_splits(budget)}. "
        f"Commit {report['commit'][:8]}; "
        f"{env['cpu_model']} ({env['cpu_count']} cores; SIMD {flags}; native bfloat16: "
        f"{'yes' if env['cpu_supports_bf16'] else 'no'}), torch {env['torch']}, 1-minute load average "
        f"{env['loadavg_1min_at_start']} at start.",
    ]
    return "\n".join(rows) + "\n"


BLOCKS = {"quickstart_time": bundle_results("abn_classification", "quickstart_time", render)}
