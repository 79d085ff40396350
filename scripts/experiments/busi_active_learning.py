"""The multi-seed active-learning sweep of ``scripts/experiments/multiscale_busi.sh`` as one results file.

Each ``<runs>/seed<k>`` holds one repetition: the model before any correction
(``pretrained/eval_test/metrics.json``) and its sweep (``sweep/sweep.json``: test map MSE, accuracy and map
pointing game after fine-tuning on the corrected maps of each strategy's top fraction of the training
images). One seed's curve says little: the fine-tunes differ by the seed as much as by the strategy. Writes
atomically, per strategy and fraction, the mean ± sd over the seeds and every seed's value; the same for the
model before correction; the smallest fraction at which each strategy reaches 90 % of the map-MSE gain of
correcting every map (the study reports about 30 % for choosing by map error); the best strategy at 30 %; and
the settings given. ``scripts/render_results.py`` renders the file into the bundle README; ``--figure`` draws
the curves and ``--tracking_uri`` logs the figures to MLflow.

Usage::

    R=runs/experiments/multiscale_busi-128px/active_learning
    python scripts/experiments/busi_active_learning.py --runs $R \\
        --out bundles/multiscale_abn_correction/docs/results/busi_active_learning.json \\
        [--figure $R/active_learning.png] [--tracking_uri sqlite:///$R/mlruns.db] \\
        [--dataset busi_binary --backbone resnet18 --spatial_size 128 --max_epochs 40 --patience 8 \\
         --ft_epochs 15 --map_weights 10 --ft_learning_rate 0.001]
"""

from __future__ import annotations

import argparse
import json
import math
import re
import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path

from monai_xai.utils import atomic_write_json

#: sweep row key -> the same figure's name in flatten_report's naming of the pretrained model's metrics.json
METRICS = {
    "map_mse": "attention_map_mse",
    "accuracy": "image_accuracy",
    "map_pointing_game": "attention_pointing_game",
}
#: metric -> panel title of the figure
TITLES = {"map_mse": "map MSE", "accuracy": "accuracy", "map_pointing_game": "map pointing game"}
#: share of the full-correction map-MSE gain that ``fraction_for_gain`` asks for
GAIN_SHARE = 0.9
#: the fraction ``best_at_30`` compares the strategies at (the study's figure)
COMPARE_AT = 0.3
#: metric -> whether higher is better, for ``best_at_30``
HIGHER_IS_BETTER = {"map_mse": False, "accuracy": True}
#: CLI options recorded under ``settings`` when given -> their type
SETTINGS = {
    "dataset": str,
    "backbone": str,
    "spatial_size": int,
    "max_epochs": int,
    "patience": int,
    "ft_epochs": int,
    "map_weights": float,
    "ft_learning_rate": float,
}
DRIVER = "bash scripts/experiments/multiscale_busi.sh (it resumes)"
SEED = re.compile(r"seed(\d+)")


def fraction_key(fraction: float) -> str:
    """A fraction as the results file's key: ``0.1`` -> ``"0.1"``, ``1`` -> ``"1.0"``."""
    return str(float(fraction))


def _finite(value: object) -> float | None:
    """A figure as a float, or None when absent or not finite (JSON has no NaN; a NaN score is undefined)."""
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def stats(values: Sequence[float | None]) -> dict:
    """Mean and sample sd over the seeds that have the figure (sd 0 for one seed), and every seed's value.

    A seed without the figure keeps its place in ``values`` as None; with none at all mean and sd are None.
    """
    present = [v for v in values if v is not None]
    mean = math.fsum(present) / len(present) if present else None
    sd = statistics.stdev(present) if len(present) >= 2 else (0.0 if present else None)
    return {"mean": mean, "sd": sd, "values": list(values)}


def read_json(path: Path) -> object:
    """``path``'s JSON, or an error that names the missing file and the command that writes it."""
    if not path.is_file():
        raise SystemExit(f"{path} is missing: run {DRIVER}")
    return json.loads(path.read_text())


def seed_dirs(runs: Path) -> list[Path]:
    """The ``seed<k>`` folders under ``runs`` in the order of k; at least one."""
    found = [p for p in runs.iterdir() if p.is_dir() and SEED.fullmatch(p.name)] if runs.is_dir() else []
    if not found:
        raise SystemExit(f"no seed<k> folders under {runs}: run {DRIVER}")
    return sorted(found, key=lambda p: int(SEED.fullmatch(p.name)[1]))


def seed_sweep(seed_dir: Path) -> dict[tuple[str, str], dict]:
    """The seed's sweep rows by (strategy, fraction key), in the order the sweep wrote them."""
    return {
        (r["strategy"], fraction_key(r["fraction"])): r for r in read_json(seed_dir / "sweep" / "sweep.json")
    }


def seed_before(seed_dir: Path) -> dict[str, float | None]:
    """The figures of the seed's model before any correction (None for one it lacks)."""
    from monai_xai.handlers.evaluation_report import flatten_report

    flat = flatten_report(read_json(seed_dir / "pretrained" / "eval_test" / "metrics.json"))
    return {name: _finite(flat.get(key)) for name, key in METRICS.items()}


def check_combinations(sweeps: Mapping[str, Mapping[tuple[str, str], dict]]) -> None:
    """Every seed must have swept the same (strategy, fraction) combinations: a mean over the seeds that
    have a combination would compare curves over different seeds."""
    union = set().union(*(set(rows) for rows in sweeps.values()))
    for name, rows in sweeps.items():
        lacking = sorted(union - set(rows), key=lambda c: (c[0], float(c[1])))
        if lacking:
            listed = ", ".join(f"{s} {f}" for s, f in lacking)
            raise SystemExit(
                f"{name} lacks {listed} that other seeds swept: run {DRIVER} with the same strategies and "
                "fractions for every seed"
            )


def fraction_for_gain(
    before_mean: float | None, means: Mapping[str, float | None], share: float
) -> float | None:
    """The smallest fraction whose mean gain ``before - after`` reaches ``share`` x the gain at the largest
    fraction; None when that gain is absent or not positive (correcting made nothing better)."""
    fractions = sorted(means, key=float)
    full = means[fractions[-1]]
    if before_mean is None or full is None or before_mean - full <= 0:
        return None
    target = share * (before_mean - full)
    for f in fractions:
        if means[f] is not None and before_mean - means[f] >= target:
            return float(f)
    return float(fractions[-1])  # not reached: the largest fraction meets its own share


def best_at(strategies: Mapping[str, Mapping[str, Mapping[str, dict]]], key: str, metric: str) -> str | None:
    """The strategy with the best mean ``metric`` at fraction ``key``; the first listed on a tie."""
    sign = 1.0 if HIGHER_IS_BETTER[metric] else -1.0
    candidates = [(s, f[key][metric]["mean"]) for s, f in strategies.items() if key in f]
    candidates = [(s, m) for s, m in candidates if m is not None]
    if not candidates:
        return None
    return max(candidates, key=lambda c: sign * c[1])[0]


def results(runs: Path, settings: Mapping | None = None) -> dict:
    """The results file's content from the finished seeds under ``runs`` (errors name what is missing)."""
    dirs = seed_dirs(runs)
    sweeps = {d.name: seed_sweep(d) for d in dirs}
    check_combinations(sweeps)
    befores = [seed_before(d) for d in dirs]
    first = next(iter(sweeps.values()))
    order = list(dict.fromkeys(s for s, _ in first))
    fractions = sorted({float(f) for _, f in first})
    strategies: dict[str, dict[str, dict]] = {}
    for strategy in order:
        strategies[strategy] = {}
        for f in sorted({f for s, f in first if s == strategy}, key=float):
            strategies[strategy][f] = {
                metric: stats([_finite(rows[(strategy, f)].get(metric)) for rows in sweeps.values()])
                for metric in METRICS
            }
    before = {metric: stats([b[metric] for b in befores]) for metric in METRICS}
    gain: dict[str, object] = {"share": GAIN_SHARE}
    for strategy, by_fraction in strategies.items():
        means = {f: figures["map_mse"]["mean"] for f, figures in by_fraction.items()}
        gain[strategy] = {"map_mse": fraction_for_gain(before["map_mse"]["mean"], means, GAIN_SHARE)}
    report = {
        "seeds": len(dirs),
        "seed_names": [d.name for d in dirs],
        "fractions": fractions,
        "strategies": strategies,
        "before": before,
        "fraction_for_gain": gain,
    }
    key = fraction_key(COMPARE_AT)
    if key in map(fraction_key, fractions):
        report["best_at_30"] = {metric: best_at(strategies, key, metric) for metric in HIGHER_IS_BETTER}
    report["settings"] = dict(settings or {})
    return report


def curves_figure(report: dict):
    """One panel per metric: per strategy the mean over the seeds with ±sd; dashed: before correction."""
    from monai_xai.utils import pyplot

    plt = pyplot()
    fig, axes = plt.subplots(1, len(METRICS), figsize=(4 * len(METRICS), 3.2), squeeze=False)
    for ax, metric in zip(axes[0], METRICS):
        for i, (strategy, by_fraction) in enumerate(report["strategies"].items()):
            points = sorted(
                (float(f), figures[metric]["mean"], figures[metric]["sd"])
                for f, figures in by_fraction.items()
                if figures[metric]["mean"] is not None
            )
            if not points:
                continue
            x, mean, sd = ([p[k] for p in points] for k in range(3))
            ax.plot(x, mean, marker="o", label=strategy, color=f"C{i}")
            ax.fill_between(x, [m - s for m, s in zip(mean, sd)], [m + s for m, s in zip(mean, sd)],
                            color=f"C{i}", alpha=0.2)  # fmt: skip
        before = report["before"][metric]["mean"]
        if before is not None:
            ax.axhline(before, color="grey", linestyle="--", label="before correction")
        ax.set_xlabel("fraction of training samples corrected")
        ax.set_title(TITLES[metric])
        ax.legend(fontsize=7)
    fig.suptitle(f"mean ± sd over {report['seeds']} seeds", fontsize=10)
    fig.tight_layout()
    return fig


def tracking_metrics(report: dict) -> dict[str, float]:
    """MLflow metrics: each mean as ``<strategy>_<metric>_mean_<percent>``; the means before correction."""
    metrics = {
        f"{strategy}_{metric}_mean_{round(float(f) * 100)}": figures[metric]["mean"]
        for strategy, by_fraction in report["strategies"].items()
        for f, figures in by_fraction.items()
        for metric in METRICS
    }
    metrics.update({f"before_{metric}_mean": report["before"][metric]["mean"] for metric in METRICS})
    return metrics  # log_to_run leaves out the None means


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter, allow_abbrev=False
    )
    parser.add_argument("--runs", type=Path, required=True, help="the folder of seed<k> folders")
    parser.add_argument("--out", type=Path, required=True, help="the results JSON to write")
    parser.add_argument("--figure", type=Path, help="where to draw the curves (PNG)")
    parser.add_argument(
        "--tracking_uri", help="MLflow store to log the results to, e.g. sqlite:///…/mlruns.db"
    )
    for name, kind in SETTINGS.items():
        parser.add_argument(f"--{name}", type=kind, help="recorded under settings")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> dict:
    args = parse_args(argv)
    settings = {name: getattr(args, name) for name in SETTINGS if getattr(args, name) is not None}
    report = results(args.runs, settings)
    atomic_write_json(args.out, report, indent=1)
    if args.figure:
        from monai_xai.visualize import save_figure

        save_figure(curves_figure(report), args.figure)
    if args.tracking_uri:
        from monai_xai.tracking import log_to_run

        log_to_run(
            args.tracking_uri,
            "multiscale_abn_correction",
            "busi_active_learning",
            metrics=tracking_metrics(report),
            params={"seeds": report["seeds"], **settings},
            artifacts=[args.out, *([args.figure] if args.figure else [])],
            finish=True,
        )
    key = fraction_key(COMPARE_AT)
    for strategy, by_fraction in report["strategies"].items():
        reached = report["fraction_for_gain"][strategy]["map_mse"]
        at = by_fraction.get(key, {}).get("map_mse", {}).get("mean")
        print(
            f"{strategy}: {GAIN_SHARE:.0%} of the map-MSE gain at "
            f"{'never' if reached is None else f'{reached:.0%}'}; mean map MSE at {COMPARE_AT:.0%} "
            f"{'-' if at is None else f'{at:.4f}'}"
        )
    print(f"written {args.out}" + (f" and {args.figure}" if args.figure else ""))
    return report


if __name__ == "__main__":
    main()
