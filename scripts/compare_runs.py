"""Compare arms (e.g. baseline vs dynamic ABN) over their folds, read back from an MLflow store.

Each finished run is one fold of an arm; runs are grouped into arms by their params and each
metric is reported as mean ± sd (n runs), so a difference between arms can be read against the
spread between folds. ``*_crossval`` runs hold means already and are left out.

    python scripts/compare_runs.py --tracking_uri sqlite:///runs/cv/mlruns.db --out runs/cv/compare.md
    python scripts/compare_runs.py --tracking_uri sqlite:///runs/cv/mlruns.db --out cmp.md \\
        --group-by mode --metrics test_image_auc test_attention_pointing_game
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from pathlib import Path

from monai_xai.crossval import mean_sd

__all__ = [
    "DEFAULT_GROUP_BY",
    "DEFAULT_METRICS",
    "bar_chart",
    "load_runs",
    "main",
    "markdown_table",
    "summarize",
]

DEFAULT_GROUP_BY = ("mode", "network", "dataset")
DEFAULT_METRICS = (
    "test_image_accuracy",
    "test_image_auc",
    "test_image_sensitivity",
    "test_image_specificity",
    "test_attention_pointing_game",
    "test_attention_energy_inside_mask",
    "test_gradcampp_pointing_game",
)

Stats = tuple[float, float, int]


def load_runs(tracking_uri: str, experiment: str, include_unfinished: bool = False) -> list:
    """All runs of ``experiment`` (finished ones unless ``include_unfinished``), without ``*_crossval``."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri)
    found = client.get_experiment_by_name(experiment)
    if found is None:
        raise SystemExit(f"no experiment {experiment!r} in {tracking_uri}")
    status = "" if include_unfinished else "attributes.status = 'FINISHED'"
    runs, token = [], None
    while True:
        page = client.search_runs([found.experiment_id], status, max_results=1000, page_token=token)
        runs += [r for r in page if not (r.info.run_name or "").endswith("_crossval")]
        token = page.token
        if not token:
            return runs


def summarize(
    runs: Sequence, group_by: Sequence[str], metrics: Sequence[str]
) -> dict[tuple[str, ...], dict[str, Stats]]:
    """``{arm: {metric: (mean, sd, n)}}`` with arms (param values, ``-`` when unset) in sorted order."""
    arms: dict[tuple[str, ...], list] = {}
    for run in runs:
        arms.setdefault(tuple(run.data.params.get(p, "-") for p in group_by), []).append(run)
    return {
        arm: {m: mean_sd([r.data.metrics[m] for r in arms[arm] if m in r.data.metrics]) for m in metrics}
        for arm in sorted(arms)
    }


def _cell(stats: Stats) -> str:
    mean, sd, n = stats
    return "-" if n == 0 else f"{mean:.3f} ± {sd:.3f} ({n})"


def markdown_table(summary: Mapping[tuple[str, ...], Mapping[str, Stats]], group_by: Sequence[str]) -> str:
    """One row per arm, one column per metric, cells ``mean ± sd (n)``."""
    metrics = list(next(iter(summary.values()))) if summary else []
    lines = [
        "| " + " | ".join([*group_by, *metrics]) + " |",
        "|" + "---|" * (len(group_by) + len(metrics)),
    ]
    for arm, stats in summary.items():
        lines.append("| " + " | ".join([*arm, *[_cell(stats[m]) for m in metrics]]) + " |")
    return "\n".join(lines) + "\n"


def bar_chart(summary: Mapping[tuple[str, ...], Mapping[str, Stats]], path: str | Path) -> Path:
    """Grouped bars (metrics on x, one colour per arm) with sd error bars, saved as ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    metrics = list(next(iter(summary.values())))
    x = np.arange(len(metrics))
    width = 0.8 / len(summary)
    fig, ax = plt.subplots(figsize=(max(6.0, 1.3 * len(metrics) + 2), 4.5))
    for i, (arm, stats) in enumerate(summary.items()):
        means = [stats[m][0] for m in metrics]
        sds = [stats[m][1] for m in metrics]
        offset = (i - (len(summary) - 1) / 2) * width
        ax.bar(x + offset, means, width, yerr=sds, capsize=3, label=" / ".join(arm))
    ax.set_xticks(x, metrics, rotation=30, ha="right")
    ax.set_ylabel("mean ± sd over runs")
    ax.legend(fontsize="small")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def main(argv: Sequence[str] | None = None) -> str:
    """Command line entry; returns the markdown table it wrote and printed."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tracking_uri", "--tracking-uri", required=True)
    parser.add_argument("--experiment", default="abn_classification")
    parser.add_argument(
        "--group-by", nargs="+", default=list(DEFAULT_GROUP_BY), help="params that define an arm"
    )
    parser.add_argument("--metrics", nargs="+", default=list(DEFAULT_METRICS))
    parser.add_argument("--out", required=True, type=Path, help="markdown file; the PNG chart goes beside it")
    parser.add_argument("--include-unfinished", action="store_true", help="also running, failed, killed runs")
    args = parser.parse_args(argv)

    runs = load_runs(args.tracking_uri, args.experiment, args.include_unfinished)
    if not runs:
        raise SystemExit(f"no {'' if args.include_unfinished else 'finished '}runs in {args.experiment!r}")
    summary = summarize(runs, args.group_by, args.metrics)
    table = markdown_table(summary, args.group_by)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(table)
    png = bar_chart(summary, args.out.with_suffix(".png"))
    print(f"{args.experiment}: {len(runs)} runs in {len(summary)} arms ({args.tracking_uri})\n\n{table}")
    print(f"written to {args.out} and {png}")
    return table


if __name__ == "__main__":
    main()
