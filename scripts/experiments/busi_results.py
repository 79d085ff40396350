"""The BUSI cross-validation of ``scripts/experiments/abn_busi.sh`` as the results file of the docs' tables.

Reads each arm's per-fold test evaluation (``<runs>/<arm>/fold<k>/eval_test/metrics.json``, written by
``python -m monai_xai.crossval``) and the arm's wall time (``<runs>/<arm>/wall_s.json``, written by the
driver), and writes atomically: mean ± sd over the folds per arm, the paired per-fold differences that
say whether dynamic α beats conventional γ and the plain ResNet beyond the fold-to-fold noise, the
runtimes, and the learning curves (per-epoch validation metrics of each fold's MLflow run, averaged over the
folds). ``scripts/render_results.py`` renders the file into the bundle README; ``--figure`` draws the curves.

Usage::

    R=runs/experiments/abn_busi-128px-40ep
    python scripts/experiments/busi_results.py --runs $R/busi_binary_dedup \\
        --dataset_config configs/datasets/busi_binary_dedup.json --arms baseline plain conventional dynamic \\
        --epochs 40 --spatial_size 128 128 --gradcampp_layer layer3 \\
        --out bundles/abn_classification/docs/results/busi_binary.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
from collections.abc import Sequence
from pathlib import Path

from monai_xai.crossval import mean_sd
from monai_xai.handlers.evaluation_report import flatten_report
from monai_xai.utils import atomic_write_text

REPO = Path(__file__).resolve().parents[2]

#: results name -> name of the test metric in flatten_report's naming; ``map_*`` is the ABN's own M(x).
METRICS = {
    "auc": "image_auc",
    "accuracy": "image_accuracy",
    "sensitivity": "image_sensitivity",
    "specificity": "image_specificity",
    "map_pointing_game": "attention_pointing_game",
    "map_energy_inside_mask": "attention_energy_inside_mask",
    "map_iou": "attention_map_iou",
    "gradcampp_pointing_game": "gradcampp_pointing_game",
    "gradcampp_energy_inside_mask": "gradcampp_energy_inside_mask",
    "gradcampp_iou": "gradcampp_map_iou",
}

#: per-epoch metrics of the training runs drawn as learning curves -> their axis label.
CURVES = {
    "val_auc": "validation AUC",
    "val_att_pointing_game": "validation pointing game of M(x)",
    "alpha": "α (weight of the attention losses)",
}

#: (arm, reference) pairs whose per-fold differences arm - reference the results report.
PAIRS = (("dynamic", "conventional"), ("dynamic", "baseline"))


def _json_number(value: float) -> float | None:
    """NaN (an undefined metric) as null: JSON has no NaN."""
    return value if math.isfinite(value) else None


def stats(values: Sequence[float]) -> dict:
    """Mean, sd and count over the folds with a finite value, and every fold's value."""
    mean, sd, n = mean_sd(values)
    return {
        "mean": _json_number(mean),
        "sd": _json_number(sd),
        "n": n,
        "values": [_json_number(v) for v in values],
    }


def missing_folds(arm_dir: Path, n_folds: int) -> list[int]:
    """Folds without a test evaluation: an arm that did not run, or did not finish."""
    return [k for k in range(n_folds) if not (arm_dir / f"fold{k}" / "eval_test" / "metrics.json").is_file()]


def fold_metrics(arm_dir: Path, n_folds: int) -> list[dict[str, float]]:
    """Each fold's test metrics under the results names (only those the fold has: a ResNet has no M(x))."""
    folds = []
    for k in range(n_folds):
        flat = flatten_report(json.loads((arm_dir / f"fold{k}" / "eval_test" / "metrics.json").read_text()))
        folds.append({name: flat[key] for name, key in METRICS.items() if key in flat})
    return folds


def arm_summary(folds: Sequence[dict[str, float]]) -> dict[str, dict]:
    """:func:`stats` of every metric some fold has; a fold lacking it counts as undefined."""
    names = [name for name in METRICS if any(name in fold for fold in folds)]
    return {name: stats([fold.get(name, math.nan) for fold in folds]) for name in names}


def paired_differences(per_arm: dict[str, list[dict[str, float]]]) -> dict[str, dict[str, dict]]:
    """Per :data:`PAIRS` entry whose arms both ran: :func:`stats` of the fold-by-fold differences.

    Both arms train and test on the same folds, so the difference per fold removes the share of the spread
    that comes from the fold itself; its sd is the noise a difference between the two arms must exceed.
    """
    differences = {}
    for arm, reference in PAIRS:
        if arm not in per_arm or reference not in per_arm:
            continue
        folds = list(zip(per_arm[arm], per_arm[reference]))
        names = [name for name in METRICS if any(name in a and name in r for a, r in folds)]
        differences[f"{arm}_minus_{reference}"] = {
            name: stats([a.get(name, math.nan) - r.get(name, math.nan) for a, r in folds]) for name in names
        }
    return differences


def runtime(arm_dir: Path, n_folds: int) -> dict | None:
    """The driver's wall time of the arm (all folds: training and both evaluations), None if not recorded.

    ``resumed``: the arm continued an interrupted run, so the seconds cover only the last invocation.
    """
    path = arm_dir / "wall_s.json"
    if not path.is_file():
        return None
    record = json.loads(path.read_text())
    seconds = float(record["seconds"])
    return {"seconds": seconds, "per_fold": seconds / n_folds, "resumed": bool(record["resumed"])}


def learning_curves(arm_dir: Path, tracking_uri: str) -> dict[str, list[float | None]]:
    """Each :data:`CURVES` metric the arm's fold runs logged, per epoch, averaged over the folds.

    The fold runs are the latest runs of the names ``crossval_summary.json`` gives that hold a ``val_auc``
    history (a re-evaluation adds a newer run of the same name without one); an epoch's mean covers the folds
    that logged it.
    """
    from mlflow.tracking import MlflowClient

    from monai_xai.tracking import find_run

    summary = json.loads((arm_dir / "crossval_summary.json").read_text())
    client = MlflowClient(tracking_uri)
    per_metric: dict[str, list[dict[int, float]]] = {name: [] for name in CURVES}
    for fold in summary["per_fold"]:
        run = find_run(tracking_uri, summary["experiment_name"], fold["run_name"], with_metric="val_auc")
        if run is None:
            raise SystemExit(
                f"{arm_dir}: no MLflow run {fold['run_name']!r} with a val_auc history at {tracking_uri}"
            )
        for name, by_fold in per_metric.items():
            history = client.get_metric_history(run.info.run_id, name)
            if history:
                by_fold.append({m.step: m.value for m in history})
    curves = {}
    for name, by_fold in per_metric.items():
        if by_fold:
            epochs = range(1, max(max(fold) for fold in by_fold) + 1)
            curves[name] = [
                _json_number(math.fsum(v) / len(v)) if (v := [f[e] for f in by_fold if e in f]) else None
                for e in epochs
            ]
    return curves


def curves_figure(report: dict):
    """One panel per :data:`CURVES` metric, one line per arm that logged it."""
    from monai_xai.utils import pyplot

    plt = pyplot()
    names = [name for name in CURVES if any(name in arm for arm in report["learning_curves"].values())]
    fig, axes = plt.subplots(1, len(names), figsize=(4.2 * len(names), 3.4), squeeze=False)
    colours = {arm: f"C{i}" for i, arm in enumerate(report["learning_curves"])}  # one colour per arm
    for ax, name in zip(axes[0], names):
        for arm, curves in report["learning_curves"].items():
            if name in curves:
                values = [math.nan if v is None else v for v in curves[name]]
                ax.plot(range(1, len(values) + 1), values, label=arm, color=colours[arm])
        ax.set_xlabel("epoch")
        ax.set_title(CURVES[name], fontsize=9)
        ax.legend(fontsize=7)
    fig.suptitle(f"{report['task']}: mean over {report['folds']} folds", fontsize=10)
    fig.tight_layout()
    return fig


def split_file(fragment: dict, dataset_config: Path) -> Path:
    """The fixed split file the dataset fragment reads (relative paths are relative to the repo root)."""
    name = fragment.get("datalist_args", {}).get("split_file")
    if not name:
        raise SystemExit(f"{dataset_config} names no datalist_args.split_file: its folds would not be fixed")
    path = Path(name)
    return path if path.is_absolute() else REPO / path


def results(
    runs: Path,
    dataset_config: Path,
    arms: Sequence[str],
    optional_arms: Sequence[str],
    epochs: int,
    spatial_size: Sequence[int],
    gradcampp_layer: str,
    tracking_uri: str | None = None,
) -> dict:
    """The results of ``arms`` (each must have all folds) and of the ``optional_arms`` that have them all."""
    fragment = json.loads(dataset_config.read_text())
    split = split_file(fragment, dataset_config)
    n_folds = len(json.loads(split.read_text())["folds"])
    for arm in arms:
        missing = missing_folds(runs / arm, n_folds)
        if missing:
            raise SystemExit(
                f"arm {arm!r}: fold(s) {missing} of {n_folds} have no test evaluation under {runs / arm}; "
                f"run the driver with ARMS={arm} (it resumes what exists), then this script again"
            )
    present = list(arms)
    for arm in optional_arms:
        missing = missing_folds(runs / arm, n_folds)
        if missing and len(missing) < n_folds:
            print(f"optional arm {arm!r} left out: fold(s) {missing} of {n_folds} have no test evaluation")
        if not missing:
            present.append(arm)
    per_arm = {arm: fold_metrics(runs / arm, n_folds) for arm in present}
    class_names = fragment["class_names"]
    times = {arm: runtime(runs / arm, n_folds) for arm in present}
    return {
        "task": " vs ".join(class_names),
        "dataset": fragment["dataset"],
        "split": os.path.relpath(split.resolve(), REPO),
        "spatial_size": [int(s) for s in spatial_size],
        "epochs": epochs,
        "folds": n_folds,
        "class_metrics": (
            f"{class_names[1]} vs {class_names[0]}"
            if len(class_names) == 2
            else "macro averages over the classes (AUC one-vs-rest)"
        ),
        "gradcampp_layer": gradcampp_layer,
        "arms": {arm: arm_summary(folds) for arm, folds in per_arm.items()},
        "paired_differences": paired_differences(per_arm),
        "runtime_s": {arm: t for arm, t in times.items() if t is not None},
        "learning_curves": (
            {arm: learning_curves(runs / arm, tracking_uri) for arm in present} if tracking_uri else {}
        ),
    }


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=Path, required=True, help="the task's folder of arm folders")
    parser.add_argument("--dataset_config", type=Path, required=True, help="the dataset fragment trained on")
    parser.add_argument("--arms", nargs="+", required=True, help="arms that must have every fold")
    parser.add_argument(
        "--optional_arms", nargs="*", default=[], help="arms included when they have every fold"
    )
    parser.add_argument("--epochs", type=int, required=True)
    parser.add_argument("--spatial_size", type=int, nargs="+", required=True)
    parser.add_argument("--gradcampp_layer", required=True, help="the ResNet stage Grad-CAM++ read")
    parser.add_argument(
        "--tracking_uri", help="MLflow store of the fold runs; without it the results hold no learning curves"
    )
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--figure", type=Path, help="where to draw the learning curves (PNG)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> dict:
    args = parse_args(argv)
    report = results(
        args.runs,
        args.dataset_config,
        args.arms,
        args.optional_arms,
        args.epochs,
        args.spatial_size,
        args.gradcampp_layer,
        args.tracking_uri,
    )
    atomic_write_text(args.out, json.dumps(report, indent=1) + "\n")
    if args.figure and report["learning_curves"]:
        from monai_xai.visualize.figures import save_figure

        save_figure(curves_figure(report), args.figure)
        print(f"written {args.figure}")
    print(f"written {args.out}: arms {', '.join(report['arms'])}")
    return report


if __name__ == "__main__":
    main()
