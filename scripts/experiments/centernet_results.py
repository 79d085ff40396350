"""Results file of scripts/experiments/centernet_busi.sh: four detectors on the leak-free BUSI split.

Reads, below the experiment's folder: each arm's test evaluation (``<arm>/eval_test/metrics.json``: COCO AP,
the IoU-0.25 confusion matrix and precision, recall and F1 at the score threshold chosen on the validation
split, per class; an evaluation whose threshold another split chose is an error), its best validation epoch
(``<arm>/checkpoints/best.json``), the threshold's validation record
(``<arm>/checkpoints/best.score_threshold.json``) and wall time (``<arm>/wall_s.json``, written by the
driver); the k-NN probe
(``knn_probe.json``, ``scripts/experiments/knn_probe.py``); and, from the experiment's MLflow store, the
per-epoch SimSiam loss and collapse monitor (``z_std_ratio``) and each arm's validation mAP. Writes
atomically the figures, the targets (best arm AP50 >= 0.70; SimSiam + progressive unfreezing at least as
good as random initialisation in mAP; the SimSiam encoder above the random one in k-NN test accuracy) and
the settings; ``scripts/render_results.py`` renders the file (block ``centernet_busi``). ``--figure`` draws
the curves; ``--figures_dir`` (a bundle's ``docs/figures``, which the driver gives at full budget only) draws
them there as ``busi_curves.png`` and copies each arm's ``eval_test/{overlays,confusion_matrix}.png`` there
atomically as ``busi_<arm>_{overlays,confusion}.png``, recording their paths relative to the docs folder
(``figures``, at the top and per arm), which the README shows. An arm or a probe not there yet is an error
naming its folder.

    python scripts/experiments/centernet_results.py runs/experiments/centernet_busi-192px \\
        --split configs/datasets/busi_splits_dedup.json \\
        --tracking_uri sqlite:///$PWD/runs/experiments/centernet_busi-192px/mlruns.db \\
        --results bundles/centernet_detection/docs/results/busi.json \\
        --figures_dir bundles/centernet_detection/docs/figures
"""

from __future__ import annotations

import argparse
import json
import math
import os
from collections.abc import Sequence
from pathlib import Path

from monai_xai.utils import atomic_write_json, copy_docs_figure

REPO = Path(__file__).resolve().parents[2]

#: arm (run folder and MLflow run name below the experiment folder) -> row label
ARMS = {
    "random_init": "CenterNet, random init",
    "simsiam_frozen": "CenterNet, SimSiam + frozen backbone",
    "simsiam_progressive": "CenterNet, SimSiam + progressive unfreezing",
    "retinanet": "RetinaNet (MONAI), random init",
}
#: MLflow experiment and run name of the SimSiam pretraining (the driver's --run_name)
EXPERIMENT, SIMSIAM_RUN = "centernet_detection", "simsiam"
#: per-epoch metrics of the SimSiam run drawn as curves
SIMSIAM_CURVES = ("train_loss", "z_std_ratio")
#: the issue's detection target: the best arm's test AP50
AP50_TARGET = 0.70
#: figures of an arm's test evaluation the docs show: name in the docs -> file in ``<arm>/eval_test``
ARM_FIGURES = {"overlays": "overlays.png", "confusion": "confusion_matrix.png"}
#: the curves' file name in ``--figures_dir``
CURVES_FIGURE = "busi_curves.png"


def _number(value: float) -> float | None:
    """NaN as null: JSON has no NaN."""
    return None if math.isnan(value) else value


def _read_json(path: Path, what: str) -> dict:
    if not path.is_file():
        raise SystemExit(
            f"{path.parent}: no {what} ({path.name}): run bash scripts/experiments/centernet_busi.sh"
        )
    return json.loads(path.read_text())


def arm_results(arm_dir: Path) -> dict:
    """Test figures, confusion matrix and per-class statistics of one arm at its score threshold (chosen on
    validation), that threshold's validation F1, the arm's best epoch and wall time."""
    metrics = _read_json(arm_dir / "eval_test" / "metrics.json", "test evaluation")
    if metrics.get("threshold_split") != "val":
        raise SystemExit(
            f"{arm_dir / 'eval_test'}: its score threshold was not chosen on the validation split (an older "
            "evaluation searched it on the test set): delete eval_test and rerun "
            "bash scripts/experiments/centernet_busi.sh"
        )
    coco = metrics["coco"]
    result = {
        "map": coco["mAP"],
        "ap50": coco["AP50"],
        "ap75": coco["AP75"],
        "ap_small": coco["AP_small"],
        "ap_medium": coco["AP_medium"],
        "ap_large": coco["AP_large"],
        "f1": metrics["f1_threshold"]["f1"],
        "precision": metrics["f1_threshold"]["precision"],
        "recall": metrics["f1_threshold"]["recall"],
        "f1_threshold": metrics["f1_threshold"]["threshold"],
        "threshold_split": metrics["threshold_split"],
        "iou_threshold": metrics["iou_threshold"],
        "confusion_matrix": metrics["confusion_matrix"],
        "per_class": metrics["per_class"],
        "n_images": metrics["n_images"],
        "n_lesions": metrics["n_lesions"],
    }
    best = arm_dir / "checkpoints" / "best.json"
    if best.is_file():
        record = json.loads(best.read_text())
        result["best_epoch"], result["best_val_map"] = record["epoch"], record["value"]
    chosen = arm_dir / "checkpoints" / "best.score_threshold.json"
    if chosen.is_file():
        result["val_f1"] = json.loads(chosen.read_text())["score_threshold"]["f1"]
    wall = arm_dir / "wall_s.json"
    if wall.is_file():
        result["wall_s"] = json.loads(wall.read_text())
    return result


def metric_curves(tracking_uri: str, run_name: str, names: Sequence[str]) -> dict[str, list[float | None]]:
    """Per-epoch values (step = epoch, from 1; null where an epoch was not logged) of the named run's
    metrics; a metric logged twice for one epoch (a resumed run repeating it) keeps its last value."""
    from mlflow.tracking import MlflowClient

    from monai_xai.tracking import find_run

    run = find_run(tracking_uri, EXPERIMENT, run_name)
    if run is None:
        raise SystemExit(f"no MLflow run {run_name!r} in experiment {EXPERIMENT!r} at {tracking_uri}")
    client = MlflowClient(tracking_uri)
    curves = {}
    for name in names:
        history = sorted(client.get_metric_history(run.info.run_id, name), key=lambda m: m.timestamp)
        by_epoch = {m.step: m.value for m in history}
        if by_epoch:
            curves[name] = [
                _number(by_epoch[e]) if e in by_epoch else None for e in range(1, max(by_epoch) + 1)
            ]
    return curves


def curve_summary(values: Sequence[float | None]) -> dict[str, float]:
    """First, last and smallest logged value of a curve."""
    logged = [v for v in values if v is not None]
    return {"first": logged[0], "last": logged[-1], "min": min(logged)}


def simsiam_results(out: Path, tracking_uri: str) -> tuple[dict, dict[str, list[float | None]]]:
    """Summary of the SimSiam pretraining (epochs, loss and ``z_std_ratio`` first/last/min, wall time) and
    its curves."""
    curves = metric_curves(tracking_uri, SIMSIAM_RUN, SIMSIAM_CURVES)
    missing = [name for name in SIMSIAM_CURVES if name not in curves]
    if missing:
        raise SystemExit(f"the MLflow run {SIMSIAM_RUN!r} at {tracking_uri} logged no {', '.join(missing)}")
    summary: dict = {"epochs": len(curves["train_loss"])}
    summary.update({name: curve_summary(values) for name, values in curves.items()})
    wall = out / "simsiam" / "wall_s.json"
    if wall.is_file():
        summary["wall_s"] = json.loads(wall.read_text())
    return summary, curves


def targets(arms: dict[str, dict], probe: dict) -> dict:
    """The study's targets and whether each is met."""
    best = max(arms, key=lambda name: arms[name]["ap50"])
    knn = {name: probe["encoders"][name]["test"]["accuracy"] for name in ("simsiam", "random")}
    return {
        "ap50_at_least": AP50_TARGET,
        "best_arm": best,
        "best_ap50": arms[best]["ap50"],
        "ap50_met": arms[best]["ap50"] >= AP50_TARGET,
        "simsiam_progressive_map": arms["simsiam_progressive"]["map"],
        "random_init_map": arms["random_init"]["map"],
        "pretraining_met": arms["simsiam_progressive"]["map"] >= arms["random_init"]["map"],
        "knn_test_accuracy": knn,
        "knn_met": knn["simsiam"] > knn["random"],
    }


def results(out: Path, split: Path, tracking_uri: str, settings: dict) -> dict:
    """The results file's content (see the module docstring)."""
    arms = {name: {"label": label, **arm_results(out / name)} for name, label in ARMS.items()}
    probe = _read_json(out / "knn_probe.json", "k-NN probe")
    if "simsiam" not in probe["encoders"]:
        raise SystemExit(f"{out / 'knn_probe.json'} has no SimSiam encoder: rerun the probe with --encoder")
    simsiam, simsiam_curves = simsiam_results(out, tracking_uri)
    val_map = {name: metric_curves(tracking_uri, name, ["val_mAP"]).get("val_mAP", []) for name in ARMS}
    for name, curve in val_map.items():
        arms[name]["epochs_trained"] = len(curve)
    split_path = split if split.is_absolute() else REPO / split
    return {
        "split": os.path.relpath(split_path.resolve(), REPO),
        "fold": probe["fold"],
        "images": probe["images"],
        "test_lesions": arms["random_init"]["n_lesions"],
        "arms": arms,
        "knn_probe": probe,
        "simsiam": simsiam,
        "curves": {"simsiam": simsiam_curves, "val_mAP": val_map},
        "settings": settings,
        "targets": targets(arms, probe),
    }


def curves_figure(report: dict):
    """SimSiam loss, its collapse monitor, and each arm's validation mAP, per epoch."""
    from monai_xai.utils import pyplot

    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.4))
    simsiam = report["curves"]["simsiam"]
    panels = (
        ("train_loss", "SimSiam loss (negative cosine)"),
        ("z_std_ratio", "SimSiam z_std_ratio (1 healthy, 0 collapsed)"),
    )
    for ax, (name, title) in zip(axes, panels):
        values = [math.nan if v is None else v for v in simsiam[name]]
        ax.plot(range(1, len(values) + 1), values, color="C0")
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("epoch")
    axes[1].axhline(0.1, color="grey", linestyle="--", linewidth=0.8)  # the monitor's warning level
    for i, (name, curve) in enumerate(report["curves"]["val_mAP"].items()):
        values = [math.nan if v is None else v for v in curve]
        axes[2].plot(range(1, len(values) + 1), values, label=report["arms"][name]["label"], color=f"C{i}")
    axes[2].set_title("validation mAP@[.50:.95]", fontsize=9)
    axes[2].set_xlabel("epoch")
    axes[2].legend(fontsize=7)
    fig.tight_layout()
    return fig


def docs_figures(report: dict, out: Path, figures_dir: Path) -> None:
    """Copy each arm's test figures (:data:`ARM_FIGURES`) into ``figures_dir`` as ``busi_<arm>_<name>.png``,
    so that the docs show them without the run folder; their paths relative to the docs folder go to
    ``figures`` of each arm, and that of the curves (:data:`CURVES_FIGURE`, drawn by :func:`main`) to the
    report's."""
    for name, arm in report["arms"].items():
        arm["figures"] = {
            kind: copy_docs_figure(out / name / "eval_test" / file, figures_dir, f"busi_{name}_{kind}.png")
            for kind, file in ARM_FIGURES.items()
        }
    report["figures"] = {"curves": f"{figures_dir.name}/{CURVES_FIGURE}"}


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("out", type=Path, help="the experiment's output folder (OUT of the shell script)")
    parser.add_argument("--split", type=Path, required=True, help="the split file the detection data follow")
    parser.add_argument("--tracking_uri", required=True, help="the experiment's MLflow store")
    parser.add_argument("--results", type=Path, help="results JSON to write (default: <out>/busi.json)")
    figures = parser.add_mutually_exclusive_group()
    figures.add_argument("--figure", type=Path, help="where to draw the curves (PNG)")
    figures.add_argument(
        "--figures_dir",
        type=Path,
        help=f"a bundle's docs/figures: draw the curves there ({CURVES_FIGURE}), copy each arm's overlays "
        "and confusion matrix there, and record their paths relative to its parent",
    )
    parser.add_argument("--spatial_size", type=int, help="CenterNet/RetinaNet input side (recorded)")
    parser.add_argument("--simsiam_spatial_size", type=int, help="SimSiam input side (recorded)")
    parser.add_argument("--simsiam_epochs", type=int, help="SimSiam epochs asked for (recorded)")
    parser.add_argument("--max_epochs", type=int, help="detector epochs at most (recorded)")
    parser.add_argument("--early_stop_patience", type=int, help="validations without a better mAP (recorded)")
    parser.add_argument("--unfreeze_interval", type=int, help="epochs per unfrozen stage (recorded)")
    parser.add_argument("--limit", type=int, help="images per part of a smoke run (recorded)")
    return parser.parse_args(argv)


#: arguments recorded as the report's settings when given
SETTINGS = (
    "spatial_size",
    "simsiam_spatial_size",
    "simsiam_epochs",
    "max_epochs",
    "early_stop_patience",
    "unfreeze_interval",
    "limit",
)


def main(argv: Sequence[str] | None = None) -> dict:
    args = parse_args(argv)
    settings = {name: getattr(args, name) for name in SETTINGS if getattr(args, name) is not None}
    report = results(args.out, args.split, args.tracking_uri, settings)
    curves = args.figure
    if args.figures_dir:
        docs_figures(report, args.out, args.figures_dir)
        print(f"copied each arm's overlays and confusion matrix into {args.figures_dir}")
        curves = args.figures_dir / CURVES_FIGURE
    if curves:
        from monai_xai.visualize.figures import save_figure

        save_figure(curves_figure(report), curves)
        print(f"written {curves}")
    destination = args.results or args.out / "busi.json"
    atomic_write_json(destination, report, indent=1)
    for name, arm in report["arms"].items():
        figures = ", ".join(f"{key} {arm[key]:.3f}" for key in ("map", "ap50", "ap75", "f1"))
        print(f"{name}: {figures}")
    met = {k: v for k, v in report["targets"].items() if k.endswith("_met")}
    print(f"targets: {met}; written {destination}")
    return report


if __name__ == "__main__":
    main()
