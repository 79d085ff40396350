"""Active learning on BUSI over several seeds: map MSE, pointing game and accuracy after correcting each
strategy's top fractions of the training images.

``run`` trains one multi-scale ABN per seed (seed 0's is :mod:`.busi_maps`' model of the first backbone,
shared with its ``run``: the same steps, skipped once done) and sweeps it
(``monai_xai.active_learning.sweep``, one runner step per seed): each strategy ranks the training images,
the model is fine-tuned on the corrected maps (lesion masks) of the top 10 %, 20 %, ... (fine-tuning seed and
random pick = the seed) and scored on the test set. Each ``<runs>/active_learning/seed<k>`` holds one
repetition: links to the model before any correction (``pretrained``, and its ``checkpoints`` and
``correction`` records, which the sweep starts from), the sweep (``sweep/sweep.json``) and every fine-tune's
test evaluation where the bundle configs put it (``finetune/<name>/eval_test``).

One seed's curve says little: the fine-tunes differ by the seed as much as by the strategy. Per strategy
and fraction, and for the model before correction, each figure is pooled over the seeds with
:func:`~monai_xai.metrics.pooled_bootstrap_ci` on the per-image data (accuracy from ``predictions.csv``,
stratified by label; map MSE and pointing game from ``attention_per_image.csv``): a 95 % interval for what
one run of the recipe achieves, covering the seed-to-seed and the test-sampling variance. Each figure also
keeps the seeds' own values with their mean and sd (:func:`~.results.mean_sd`); a figure some seed has no
per-image data for is reported that way alone. No strategy is named best: they are compared by their
intervals. Also recorded: the smallest fraction at which each strategy's mean map MSE reaches 90 % of the
gain of correcting every map (the study reports about 30 % for choosing by map error), the settings and
(``run``) the wall time of its steps.

Writes ``bundles/multiscale_abn_correction/docs/results/busi_active_learning.json`` and the curves
``docs/figures/busi_active_learning.png`` (``--publish``), or ``--out`` and ``--figure`` (``run``: beside
``--out`` by default); logs both to MLflow (``run``: the study's store, ``<runs>/mlruns.db``; ``collect``:
``--tracking_uri``). Dataset, backbone and image size are read from seed 0's ``pretrained/run.json``; the
training budget, which no run file records, comes from ``run``'s options (``collect`` takes it as options).

Usage (``run`` resumes: finished steps are skipped, a killed training resumes from its last epoch, a sweep
reuses every fine-tune evaluated after its checkpoint; one driver per folder at a time, busi_maps' ``run``
included; ``--publish`` only at the issue's budget, >= 128 px, early stopping, >= 3 seeds, 10 % steps, the
leak-free split and no extra bundle overrides; then ``python -m monai_xai.experiments render``)::

    mkdir -p runs/experiments && nohup python -m monai_xai.experiments busi_active_learning run --publish \\
        >> runs/experiments/multiscale_busi.log 2>&1 &
    python -m monai_xai.experiments busi_active_learning run [--backbone resnet18] [--seeds 0 1 2] \\
        [--fractions 0.1 0.2 ... 1.0] [--size 128] [--max_epochs 60] [--patience 10] [--ft_epochs 15] \\
        [--map_weights 10] [--ft_learning_rate 0.001] [--runs runs/experiments/multiscale_busi-128px] \\
        (--out busi_active_learning.json [--figure curves.png] | --publish) [--key value ...]
    # smoke test (with busi_maps' smoke test, about 6 min; results stay in the run folder):
    python -m monai_xai.experiments busi_active_learning run --seeds 0 1 --size 64 --max_epochs 1 \\
        --ft_epochs 1 --fractions 0.5 1.0 --steps 4 --runs runs/experiments/multiscale_busi_smoke \\
        --out runs/experiments/multiscale_busi_smoke/busi_active_learning.json --limit 24
    # another fine-tuning setting swept from the same trained models, without retraining them (give the
    # options they were trained with; the sweeps link their checkpoints and correction records):
    python -m monai_xai.experiments busi_active_learning run --ft_epochs 30 --out ft30.json \\
        --models runs/experiments/multiscale_busi-128px --runs runs/experiments/multiscale_busi-128px-ft30
    R=runs/experiments/multiscale_busi-128px/active_learning
    python -m monai_xai.experiments busi_active_learning collect --runs $R --out busi_active_learning.json \\
        [--tracking_uri sqlite:///$R/../mlruns.db] \\
        [--max_epochs 60 --patience 10 --ft_epochs 15 --map_weights 10 --ft_learning_rate 0.001]

``python -m monai_xai.experiments selection_profile $R/seed0/correction/records.csv <labels.csv>`` shows
what each strategy picks (class mix, map error, lesion area).

Runtime measured on the 2-core machine (bf16 fast path), 128 px: per seed 30 fine-tunes of about 100 s (3
strategies x 10 fractions), about 55 min, plus 3 min to train the seed's model: about 3 h for three seeds,
over several sessions if need be.
"""

from __future__ import annotations

import argparse
import json
import os
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from monai_xai.errors import InputError

from .busi_maps import (
    ABN_CONFIGS,
    CONFIGS,
    LOCK,
    add_run_arguments,
    below_budget,
    budget,
    multiscale_steps,
    read_map_scores,
    read_predictions,
    study_folder,
)
from .results import (
    REPO,
    add_output_arguments,
    bundle_results,
    finite,
    fmt,
    fmt_ci,
    fraction_key,
    mean_sd,
    output_path,
    parse_study_args,
    read_json,
    refuse_short_publish,
    rounded,
    study_parser,
    write_results,
)
from .runner import Step, StepRunner, sweep_argv, wall_time

__all__ = [
    "BLOCKS",
    "EVAL_METRICS",
    "active_learning_eval_metrics",
    "curves_figure",
    "fraction_for_gain",
    "main",
    "render",
    "results",
    "run",
    "sweep_step",
    "tracking_metrics",
]

BUNDLE = "multiscale_abn_correction"
PUBLISHED = f"bundles/{BUNDLE}/docs/results/busi_active_learning.json"
FIGURE = f"bundles/{BUNDLE}/docs/figures/busi_active_learning.png"
#: sweep row key -> the same figure's name in flatten_report's naming of the pretrained model's metrics.json
METRICS = {
    "map_mse": "attention_map_mse",
    "accuracy": "image_accuracy",
    "map_pointing_game": "attention_pointing_game",
}
#: map metric -> its column in ``attention_per_image.csv``
MAP_COLUMNS = {"map_mse": "map_mse", "map_pointing_game": "pointing_game"}
#: metric -> panel title of the figure
TITLES = {"map_mse": "map MSE", "accuracy": "accuracy", "map_pointing_game": "map pointing game"}
#: share of the full-correction map-MSE gain that ``fraction_for_gain`` asks for
GAIN_SHARE = 0.9
#: bootstrap resamples of each pooled interval (seed 0)
N_BOOT = 2000
#: a per-image figure may differ from the recorded one by the rounding of the per-image files
TOLERANCE = 1e-4
#: the training budget, which no file of the run folders records: option -> type
BUDGET = {
    "max_epochs": int,
    "patience": int,
    "ft_epochs": int,
    "map_weights": float,
    "ft_learning_rate": float,
}
DRIVER = "python -m monai_xai.experiments busi_active_learning run (it resumes)"
#: the issue's budget beyond busi_maps' (``--publish`` is refused below it)
FULL_SEEDS, FULL_FRACTIONS = 3, 10
FRACTIONS = tuple(round(0.1 * k, 1) for k in range(1, 11))
SEED = re.compile(r"seed(\d+)")

#: per-image data of one evaluation: metric -> the arrays its metric function takes
PerImage = dict[str, tuple]


def seed_dirs(runs: Path) -> list[Path]:
    """The ``seed<k>`` folders under ``runs`` in the order of k; at least one."""
    found = [p for p in runs.iterdir() if p.is_dir() and SEED.fullmatch(p.name)] if runs.is_dir() else []
    if not found:
        raise InputError(runs, f"no seed<k> folders: run {DRIVER}")
    return sorted(found, key=lambda p: int(SEED.fullmatch(p.name)[1]))


def seed_sweep(seed_dir: Path) -> dict[tuple[str, str], dict]:
    """The seed's sweep rows by (strategy, fraction key), in the order the sweep wrote them."""
    return {
        (r["strategy"], fraction_key(r["fraction"])): r
        for r in read_json(seed_dir / "sweep" / "sweep.json", f"run {DRIVER}")
    }


def seed_before(seed_dir: Path) -> dict[str, float | None]:
    """The figures of the seed's model before any correction (None for one it lacks)."""
    from monai_xai.handlers.evaluation_report import flatten_report

    flat = flatten_report(read_json(seed_dir / "pretrained" / "eval_test" / "metrics.json", f"run {DRIVER}"))
    return {name: finite(flat.get(key)) for name, key in METRICS.items()}


def per_image(eval_dir: Path | None) -> PerImage:
    """The per-image data of an evaluation, by metric: (labels, predictions) for accuracy, (values,) for the
    map metrics; a metric without its file is left out."""
    if eval_dir is None:
        return {}
    found: PerImage = {}
    predictions = read_predictions(eval_dir)
    if predictions is not None:
        found["accuracy"] = (predictions.labels, predictions.preds)
    maps = read_map_scores(eval_dir, "attention") or {}
    for metric, column in MAP_COLUMNS.items():
        if column in maps and maps[column].size:
            found[metric] = (maps[column],)
    return found


def check_combinations(sweeps: Mapping[str, Mapping[tuple[str, str], dict]]) -> None:
    """Every seed must have swept the same (strategy, fraction) combinations: a mean over the seeds that
    have a combination would compare curves over different seeds."""
    union = set().union(*(set(rows) for rows in sweeps.values()))
    for name, rows in sweeps.items():
        lacking = sorted(union - set(rows), key=lambda c: (c[0], float(c[1])))
        if lacking:
            listed = ", ".join(f"{s} {f}" for s, f in lacking)
            raise InputError(
                None,
                f"{name} lacks {listed} that other seeds swept: run {DRIVER} with the same strategies and "
                "fractions for every seed",
            )


def _metric_function(metric: str) -> Callable[..., float]:
    from monai_xai.metrics.uncertainty import accuracy, mean_of

    return accuracy if metric == "accuracy" else mean_of


def summary(metric: str, values: Sequence[float | None], runs: Sequence[PerImage], where: str) -> dict:
    """One figure over the seeds: ``seeds`` (each seed's recorded value, their mean and sd); and, when every
    seed has per-image data for it, the pooled interval (``mean``, ``ci95``, ``n`` images of the largest
    test set, ``n_runs``, ``between_run_sd``). ``mean`` is the seeds' mean either way (the pooled estimate,
    the mean of the seeds' per-image figures, is checked to equal it)."""
    from monai_xai.metrics.uncertainty import pooled_bootstrap_ci

    seeds = {**mean_sd(values), "values": list(values)}
    arrays = [run.get(metric) for run in runs]
    if any(a is None for a in arrays) or any(v is None for v in values):
        return {"mean": seeds["mean"], "seeds": seeds}
    stratify = 0 if metric == "accuracy" else None
    pooled = pooled_bootstrap_ci(_metric_function(metric), arrays, n_boot=N_BOOT, stratify=stratify, seed=0)
    for recorded, estimate in zip(values, pooled.run_estimates):
        if abs(recorded - estimate) > TOLERANCE:
            raise InputError(
                None,
                f"{where}: {metric} {estimate:.4f} of a seed's per-image files, {recorded:.4f} recorded: the "
                f"evaluation changed after it was scored; run {DRIVER}",
            )
    return {**pooled.to_dict(), "mean": seeds["mean"], "seeds": seeds}


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


def recorded_settings(seed_dir: Path) -> dict[str, Any]:
    """Dataset, backbone and image size of the seed's trained model, from its ``run.json``."""
    path = seed_dir / "pretrained" / "run.json"
    identity = json.loads(path.read_text()).get("identity", {}) if path.is_file() else {}
    data, network = identity.get("data", {}), identity.get("network", {})
    settings: dict[str, Any] = {}
    if "dataset" in data:
        settings["dataset"] = data["dataset"]
    if "backbone" in network:
        settings["backbone"] = network["backbone"]
    if network.get("spatial_size"):
        settings["spatial_size"] = network["spatial_size"][0]
    return settings


def results(runs: Path, budget: Mapping | None = None) -> dict:
    """The results file's content from the finished seeds under ``runs`` (errors name what is missing)."""
    from .demo_correction import finetune_eval_dir

    dirs = seed_dirs(runs)
    sweeps = {d.name: seed_sweep(d) for d in dirs}
    check_combinations(sweeps)
    first = next(iter(sweeps.values()))
    order = list(dict.fromkeys(s for s, _ in first))
    fractions = sorted({float(f) for _, f in first})
    strategies: dict[str, dict[str, dict]] = {}
    for strategy in order:
        strategies[strategy] = {}
        for f in sorted({f for s, f in first if s == strategy}, key=float):
            data = [per_image(finetune_eval_dir(d, strategy, float(f))) for d in dirs]
            strategies[strategy][f] = {
                metric: summary(
                    metric,
                    [finite(sweeps[d.name][(strategy, f)].get(metric)) for d in dirs],
                    data,
                    f"{strategy} {f}",
                )
                for metric in METRICS
            }
    befores = [seed_before(d) for d in dirs]
    data = [per_image(d / "pretrained" / "eval_test") for d in dirs]
    before = {
        metric: summary(metric, [b[metric] for b in befores], data, "before correction") for metric in METRICS
    }
    gain: dict[str, object] = {"share": GAIN_SHARE}
    for strategy, by_fraction in strategies.items():
        means = {f: figures["map_mse"]["mean"] for f, figures in by_fraction.items()}
        gain[strategy] = {"map_mse": fraction_for_gain(before["map_mse"]["mean"], means, GAIN_SHARE)}
    return {
        "seeds": len(dirs),
        "seed_names": [d.name for d in dirs],
        "fractions": fractions,
        "strategies": strategies,
        "before": before,
        "fraction_for_gain": gain,
        "settings": {**recorded_settings(dirs[0]), **dict(budget or {})},
    }


def _band(stats: Mapping) -> tuple[float, float] | None:
    """The interval drawn around a mean: the pooled 95 % interval, or ±sd over the seeds without one."""
    if "ci95" in stats:
        return tuple(stats["ci95"])
    seeds = stats.get("seeds", stats)
    if stats.get("mean") is None or seeds.get("sd") is None:
        return None
    return stats["mean"] - seeds["sd"], stats["mean"] + seeds["sd"]


def curves_figure(report: dict):
    """One panel per metric: per strategy the mean over the seeds with its pooled 95 % interval (±sd where
    a seed lacks per-image data); dashed: before correction."""
    from monai_xai.utils import pyplot

    plt = pyplot()
    fig, axes = plt.subplots(1, len(METRICS), figsize=(4 * len(METRICS), 3.2), squeeze=False)
    for ax, metric in zip(axes[0], METRICS):
        for i, (strategy, by_fraction) in enumerate(report["strategies"].items()):
            points = sorted(
                (float(f), figures[metric]["mean"], _band(figures[metric]))
                for f, figures in by_fraction.items()
                if figures[metric]["mean"] is not None
            )
            if not points:
                continue
            ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=strategy, color=f"C{i}")
            banded = [p for p in points if p[2] is not None]
            ax.fill_between([p[0] for p in banded], [p[2][0] for p in banded], [p[2][1] for p in banded],
                            color=f"C{i}", alpha=0.2)  # fmt: skip
        before = report["before"][metric]["mean"]
        if before is not None:
            ax.axhline(before, color="grey", linestyle="--", label="before correction")
        ax.set_xlabel("fraction of training samples corrected")
        ax.set_title(TITLES[metric])
        ax.legend(fontsize=7)
    fig.suptitle(f"mean over {report['seeds']} seeds, pooled 95 % interval", fontsize=10)
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


def _link(link: Path, target: Path) -> None:
    """``link`` made a symbolic link to ``target`` (absolute), replacing a link to something else."""
    target = target.resolve()
    if link.is_symlink():
        if Path(os.readlink(link)) == target:
            return
        link.unlink()
    elif link.exists():
        raise InputError(link, f"not a link: move it aside, so that it can point to {target}")
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(target, target_is_directory=True)


def sweep_step(
    sweep: Path, pretrained: Path, seed: int, args: argparse.Namespace, extra: Mapping[str, Any], runs: Path
) -> Step:
    """One seed's sweep: fine-tune the seed's model (linked into ``sweep``) on every strategy's top
    fractions, fine-tuning seed and random pick = the seed, and test each; logged to ``runs``' store. Its
    folder is the seed's ``finetune/``, what the sweep fills."""
    overrides = {
        "backbone": args.backbone,
        "spatial_size": [args.size, args.size],
        "max_epochs": args.ft_epochs,
        "map_weights": args.map_weights,
        "learning_rate": args.ft_learning_rate,
        "seed": seed,
        "faithfulness_methods": [],
        "tracking_uri": f"sqlite:///{runs / 'mlruns.db'}",
        **extra,
    }
    argv = sweep_argv(
        [ABN_CONFIGS / "train.json", CONFIGS / "train.json", args.dataset],
        CONFIGS / "finetune.json",
        [ABN_CONFIGS / "evaluate.json", CONFIGS / "evaluate.json"],
        sweep,
        args.fractions,
        overrides,
        strategy_args={"random": {"seed": seed}},
    )
    inputs = [pretrained / "checkpoints" / "best.pt", pretrained / "correction" / "records.csv"]
    return Step(f"active_learning/{sweep.name}/sweep", argv, sweep / "finetune", inputs=inputs)


def run(args: argparse.Namespace, extra: Mapping[str, Any]) -> dict:
    """Per seed, train the seed's model of the first backbone (seed 0: busi_maps') and sweep it
    (resumable: finished steps are skipped), then pool the seeds."""
    runs = study_folder(args)
    models = args.models.resolve() if args.models else runs
    names: set[str] = set()
    with StepRunner(runs, LOCK) as runner:
        for seed in args.seeds:  # seed-major: an interrupted run leaves whole seeds
            pretrained, steps = multiscale_steps(models, args.backbone, args, extra, seed)
            sweep = runs / "active_learning" / f"seed{seed}"
            for step in steps:
                runner.run(step)
                names.add(step.name)
            links = {"pretrained": pretrained}
            links |= {name: pretrained / name for name in ("checkpoints", "correction")}
            for name, target in links.items():
                _link(sweep / name, target)
            step = sweep_step(sweep, pretrained, seed, args, extra, runs)
            runner.run(step)
            names.add(step.name)
    report = results(runs / "active_learning", budget(args))
    report["wall_time"] = wall_time(runs, names.__contains__)
    return report


def _below_budget(args: argparse.Namespace, extra: Mapping[str, Any]) -> list[str]:
    short = below_budget(args, extra)
    if len(args.seeds) < FULL_SEEDS:
        short.append(f"seeds {len(args.seeds)} < {FULL_SEEDS}")
    if len(args.fractions) < FULL_FRACTIONS:
        short.append(f"fractions {len(args.fractions)} < {FULL_FRACTIONS}")
    return short


def main(argv: Sequence[str] | None = None) -> int:
    parser, commands = study_parser("busi_active_learning", __doc__)
    run_parser = commands.add_parser(
        "run",
        help="train every seed's model and sweep it (resumable), then pool the seeds; extra --key value "
        "pairs override config ids of every bundle run",
    )
    add_run_arguments(run_parser)
    run_parser.add_argument("--backbone", default="resnet18", help="the models' backbone")
    run_parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    run_parser.add_argument("--fractions", type=float, nargs="+", default=list(FRACTIONS))
    run_parser.add_argument(
        "--models", type=Path, help="the folder whose trained models the sweeps start from (default --runs)"
    )
    collect_parser = commands.add_parser("collect", help="pool finished seeds into the results file")
    collect_parser.add_argument("--runs", type=Path, required=True, help="the folder of seed<k> folders")
    collect_parser.add_argument(
        "--tracking_uri", help="MLflow store to log the results to, e.g. sqlite:///…/mlruns.db"
    )
    for name, kind in BUDGET.items():
        collect_parser.add_argument(f"--{name}", type=kind, help="training budget, recorded under settings")
    for sub in (run_parser, collect_parser):
        sub.add_argument(
            "--figure", type=Path, help=f"where to draw the curves (PNG; with --publish {FIGURE})"
        )
        add_output_arguments(sub, published=PUBLISHED)
    args, extra = parse_study_args(parser, argv)
    destination = output_path(args, PUBLISHED)
    figure = REPO / FIGURE if args.publish and args.figure is None else args.figure
    if figure is not None and not args.publish and figure.resolve() == (REPO / FIGURE).resolve():
        raise InputError(figure, "the docs' figure is drawn only with --publish")
    if args.command == "run":
        refuse_short_publish(args.publish, _below_budget(args, extra))
        figure = figure or destination.with_suffix(".png")
        tracking_uri = f"sqlite:///{study_folder(args) / 'mlruns.db'}"
        report = run(args, extra)
    else:
        tracking_uri = args.tracking_uri
        given = {name: getattr(args, name) for name in BUDGET if getattr(args, name) is not None}
        report = results(args.runs, given)
    write_results(report, destination, publish=args.publish)
    if figure is not None:
        from monai_xai.visualize import save_figure

        save_figure(curves_figure(report), figure)
    if tracking_uri:
        from monai_xai.tracking import log_to_run

        log_to_run(
            tracking_uri,
            BUNDLE,
            "busi_active_learning",
            metrics=tracking_metrics(report),
            params={"seeds": report["seeds"], **report["settings"]},
            artifacts=[destination, *([figure] if figure else [])],
            finish=True,
        )
    for strategy, by_fraction in report["strategies"].items():
        reached = report["fraction_for_gain"][strategy]["map_mse"]
        cells = ", ".join(
            f"{float(f):.0%} {fmt_ci(figures['map_mse'], 4)}" for f, figures in by_fraction.items()
        )
        print(f"{strategy}: {GAIN_SHARE:.0%} of the map-MSE gain at {_percent(reached)}; map MSE {cells}")
    print(f"written {destination}" + (f" and {figure}" if figure else ""))
    return 0


# -------------------------------------------------------------------------------------------- renderer

#: the tables: metric -> (its words, decimals); map MSE and the pointing game can disagree (a corrected map
#: on the lesion but wider than its mask), so both are shown
TABLES = {
    "map_mse": ("map MSE", 4),
    "map_pointing_game": ("map pointing game", 3),
    "accuracy": ("accuracy", 3),
}


def _percent(fraction: float | str | None) -> str:
    """A share as the docs write it: ``0.3`` -> ``30 %``; None -> ``never``."""
    return "never" if fraction is None else f"{float(fraction) * 100:g} %"


def _figure(stats: Mapping | None, digits: int) -> str:
    """The pooled figure with its interval; mean ± sd over the seeds for a figure without one (files
    written before the intervals, or a seed without per-image data)."""
    if stats is None or stats.get("mean") is None:
        return "–"
    if "ci95" in stats:
        return fmt_ci(stats, digits)
    sd = stats.get("seeds", stats).get("sd")
    return fmt(stats["mean"], digits) + ("" if sd is None else f" ± {fmt(sd, digits)}")


def _settings(settings: Mapping) -> str:
    """The settings the results file records, in one sentence; empty when it records none."""
    parts = []
    if "dataset" in settings:
        parts.append(f"dataset `{settings['dataset']}`")
    if "backbone" in settings:
        parts.append(f"backbone {settings['backbone']}")
    if "spatial_size" in settings:
        parts.append(f"{settings['spatial_size']}x{settings['spatial_size']}")
    if "max_epochs" in settings and "patience" in settings:
        parts.append(f"at most {settings['max_epochs']} training epochs (patience {settings['patience']})")
    elif "max_epochs" in settings:
        parts.append(f"{settings['max_epochs']} training epochs")
    elif "patience" in settings:
        parts.append(f"early-stopping patience {settings['patience']}")
    if "ft_epochs" in settings:
        parts.append(f"fine-tuning {settings['ft_epochs']} epochs")
    if "map_weights" in settings:
        parts.append(f"L_map weight {settings['map_weights']:g}")
    if "ft_learning_rate" in settings:
        parts.append(f"fine-tuning learning rate {settings['ft_learning_rate']:g}")
    return f"Settings: {'; '.join(parts)}." if parts else ""


def render(report: dict) -> str:
    """Map MSE, pointing game and accuracy per strategy and corrected fraction, pooled over the seeds with
    95 % intervals (mean ± sd where the file has none), beside the model before correction, and where each
    strategy's mean reaches most of its map-MSE gain. No strategy is named best."""
    fractions = [fraction_key(f) for f in report["fractions"]]
    seeds = report["seeds"]
    figures = [
        stats
        for by_fraction in report["strategies"].values()
        for cell in by_fraction.values()
        for stats in cell.values()
    ]
    if any("ci95" in stats for stats in figures):
        how = (
            "pooled over the seeds: 95 % intervals for one run of the recipe (seed-to-seed and test-image "
            "variance; mean ± sd over the seeds where a seed kept no per-image scores); strategies are "
            "compared by their intervals"
        )
    else:
        how = "mean ± sd over the seeds (no intervals: these runs kept no per-image scores; re-run pending)"
    rows = [
        "Test set after fine-tuning on the corrected maps of each strategy's top fraction of the training "
        f"images, {seeds} seed{'' if seeds == 1 else 's'} ({', '.join(report['seed_names'])}), {how}. "
        "No strategy is named best."
    ]
    for metric, (words, digits) in TABLES.items():
        rows += [
            "",
            f"| strategy: {words} | {' | '.join(_percent(f) for f in fractions)} |",
            "|---" * (len(fractions) + 1) + "|",
        ]
        for strategy, by_fraction in report["strategies"].items():
            cells = [_figure(by_fraction.get(f, {}).get(metric), digits) for f in fractions]
            rows.append(f"| `{strategy}` | {' | '.join(cells)} |")
    before = report["before"]
    rows += [
        "",
        "Before correction: "
        + ", ".join(
            f"{words} {_figure(before.get(metric), digits)}" for metric, (words, digits) in TABLES.items()
        )
        + ".",
    ]
    gain = report["fraction_for_gain"]
    reached = [f"`{strategy}` {_percent(gain[strategy]['map_mse'])}" for strategy in report["strategies"]]
    rows += [
        "",
        f"Fraction at which each strategy's mean reaches {_percent(gain['share'])} of its full-correction "
        f"map-MSE gain: {', '.join(reached)} (the study: about 30 % for choosing by map error).",
    ]
    settings = _settings(report.get("settings", {}))
    if settings:
        rows += ["", settings]
    return "\n".join(rows) + "\n"


def active_learning_eval_metrics(report: dict) -> dict[str, dict]:
    """The metadata's entry: each strategy's mean map MSE and accuracy at 30 %, with every map corrected and
    before correction (means over the seeds)."""
    strategies = report["strategies"]
    at_30 = {
        f"{name}_30_percent_{measure}": by_fraction["0.3"][measure]["mean"]
        for name, by_fraction in strategies.items()
        for measure in ("map_mse", "accuracy")
    }
    every_map = next(iter(strategies.values()))["1.0"]["map_mse"]["mean"]
    settings = report["settings"]
    return {
        "busi_leakfree_active_learning_test": rounded(
            {
                "run": "docs/results/busi_active_learning.json: python -m monai_xai.experiments "
                "busi_active_learning run; "
                f"leak-free split, {settings['spatial_size']} px, {settings['backbone']}, "
                f"{report['seeds']} seeds "
                "(mean), fine-tuning on 30 % of the training images' corrected maps (lesion masks)",
                **at_30,
                "every_map_map_mse": every_map,
                "before_map_mse": report["before"]["map_mse"]["mean"],
            }
        )
    }


BLOCKS = {"busi_active_learning": bundle_results(BUNDLE, "busi_active_learning", render)}
EVAL_METRICS = {PUBLISHED: active_learning_eval_metrics}
