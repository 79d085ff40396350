"""The built-in demo: does a classifier take the planted shortcut, and does its explanation show it?

Trains each arm with the ABN bundle on the phantoms (``scripts/make_demo_data.py``), evaluates it on the
shortcut-free test set, then explains every test image with the arm's own map (Grad-CAM++ for the plain
ResNet, the input gradient for RRR, M(x) for an ABN) and measures where that map points: the pointing game
against the lesion masks and the share of its energy on the marker, over the test images that carry one,
and its accuracy per group of class x (marker agrees / disagrees with the label), whose worst is the standard
score of shortcut robustness.
Writes ``<out>/summary.json``, each arm's per-image map scores (``<out>/<arm>/map_scores.csv``, from which
``python -m monai_xai.experiments demo_shortcut`` takes its intervals), a figure with one row per shown test
image, and the same metrics to each arm's MLflow run; prints a table.

python scripts/quickstart.py --data demo_data/phantom2d --out runs/quickstart --epochs 12
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BUNDLE = Path("bundles/abn_classification/configs")


@dataclass(frozen=True)
class Arm:
    """One classifier of the comparison: bundle overrides and the explanation it is judged by."""

    description: str
    overrides: dict = field(default_factory=dict)
    #: "attention" (the network's own M(x)) or a saliency method of ``monai_xai.visualize.get_saliency``.
    explanation: str = "attention"
    #: layer of a CAM explanation: ``layer2`` has 8x8 cells at 64x64 (``layer4`` only 2x2).
    cam_layer: str | None = None
    #: other explanations of the same network to report and show beside its own.
    also: tuple[str, ...] = ()


ARMS: dict[str, Arm] = {
    "baseline": Arm(
        "ResNet18, cross-entropy",
        {"mode": "baseline"},
        explanation="gradcampp",
        cam_layer="network.layer2",
        also=("input_gradient",),
    ),
    "rrr": Arm(
        "ResNet18, cross-entropy + lambda * |(1 - mask) * d log p(y|x) / dx|^2 (Ross et al. 2017)",
        {"mode": "rrr"},
        explanation="input_gradient",
    ),
    "abn": Arm(
        "gated ABN: perception on layer1 features * M(x), dynamic alpha (abn_gated)",
        {"mode": "dynamic", "architecture": "abn_gated"},
    ),
    "abn_study": Arm(
        "the study's ABN: perception on layer3 features * (1 + M(x)), dynamic alpha (abn)",
        {"mode": "dynamic", "architecture": "abn"},
    ),
    "abn_study_long": Arm(
        "the study's ABN with a longer attention-heavy phase (alpha 0.9 for three quarters of the epochs)",
        {"mode": "dynamic", "architecture": "abn", "alpha_switch_epoch": "$int(0.75 * @max_epochs)"},
    ),
    "rrr_strong": Arm(
        "RRR with a ten times stronger penalty (lambda 1)",
        {"mode": "rrr", "rrr_lambda": 1.0},
        explanation="input_gradient",
    ),
}
DEFAULT_ARMS = ("baseline", "rrr", "abn")


def _bundle_args(overrides: dict) -> list[str]:
    args = []
    for key, value in overrides.items():
        args += [f"--{key}", json.dumps(value) if not isinstance(value, str) else value]
    return args


def run_arm(name: str, arm: Arm, overrides: dict) -> None:
    """Train (resuming from a checkpoint when there is one) and evaluate one arm with the bundle."""
    arm_dir = Path(overrides["output_dir"])
    arm_dir.mkdir(parents=True, exist_ok=True)
    log = arm_dir / "quickstart.log"
    configs = f"['{BUNDLE / 'train.json'}','{BUNDLE / 'evaluate.json'}']"
    eval_overrides = {
        **overrides,
        "saliency_baselines": [] if arm.explanation == "attention" else [arm.explanation],
    }
    if arm.cam_layer:
        eval_overrides["cam_layer"] = arm.cam_layer
    steps = {
        "training": ["--config_file", str(BUNDLE / "train.json"), *_bundle_args(overrides)],
        "evaluating on the test set": ["--config_file", configs, *_bundle_args(eval_overrides)],
    }
    print(f"=== {name}: {arm.description}\n    log: {log}", flush=True)
    with open(log, "w") as f:
        for step, args in steps.items():
            started = time.perf_counter()
            # the bundle's log goes to the file; its progress bars (and any error) to the terminal, and no
            # bars when that "terminal" is a file too (TQDM_DISABLE turns off the ignite and MONAI bars)
            env = None if sys.stderr.isatty() else {**os.environ, "TQDM_DISABLE": "1"}
            done = subprocess.run([sys.executable, "-m", "monai.bundle", "run", *args], stdout=f, env=env)
            if done.returncode != 0:
                raise SystemExit(
                    f"{name}: {step} failed (exit {done.returncode}); see above, and the log {log}"
                )
            print(f"    {step}: {time.perf_counter() - started:.0f} s", flush=True)
    for line in log.read_text().splitlines():
        found = re.search(r"Epoch\[(\d+)\] Metrics -- (val.*)", line)
        if found:
            print(f"    epoch {found.group(1)}: {found.group(2)[:120]}")


def _markers(data_dir: Path) -> dict[str, bool]:
    """Image file name -> whether the phantom carries the shortcut marker (labels.csv's ``marker``)."""
    with open(data_dir / "labels.csv", newline="") as f:
        return {Path(row["image"]).name: row["marker"] == "1" for row in csv.DictReader(f)}


def _agreements(data_dir: Path) -> dict[str, bool]:
    """Image file name -> whether the phantom's marker agrees with its label (``marker_agrees``)."""
    with open(data_dir / "labels.csv", newline="") as f:
        return {Path(row["image"]).name: row["marker_agrees"] == "1" for row in csv.DictReader(f)}


def group_scores(arm_dir: Path, agreements: dict[str, bool], class_names: tuple[str, ...]) -> dict:
    """Test accuracy per group of class x (marker agrees / disagrees) at the argmax, and the worst group's,
    from the arm's ``eval_test/predictions.csv``."""
    from monai_xai.metrics.groups import group_accuracy

    with open(arm_dir / "eval_test" / "predictions.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    labels = [int(r["label"]) for r in rows]
    preds = [int(r["pred"]) for r in rows]
    agrees = [agreements[Path(r["source"]).name] for r in rows]
    groups = group_accuracy(labels, preds, agrees, class_names)
    return {"test_worst_group_accuracy": min(groups.values()), "test_group_accuracy": groups}


def _method_name(method: str, cam_layer: str | None) -> str:
    return method if cam_layer is None or method == "input_gradient" else f"{method} at {cam_layer}"


@dataclass
class TestViews:
    """The test images in loader order, with what the figure shows beside them."""

    images: Any
    maps: dict[str, Any]
    masks: Any
    labels: list[int]
    marked: Any


#: columns of an arm's ``map_scores.csv``: one row per test image and explanation method
MAP_SCORE_COLUMNS = ("source", "label", "marker", "method", "pointing_game", "marker_energy")


def explain_arm(
    arm: Arm, overrides: dict, markers: dict[str, bool]
) -> tuple[dict, TestViews, tuple, list[dict]]:
    """The arm's explanations of every test image and where they point.

    Returns the arm's summary (test metrics; the own explanation's ``map_pointing_game`` and
    ``marker_energy``; each of ``arm.also`` under ``other_maps``), its test views, its MLflow run
    (tracking URI, experiment, run name), and the per-image scores behind the summary's means (rows of
    ``MAP_SCORE_COLUMNS``; marker energy empty for an image without the marker).
    """
    import torch
    from monai.bundle import ConfigParser

    from monai_xai.data.synthetic import marker_region
    from monai_xai.metrics import pointing_game, region_energy
    from monai_xai.visualize import get_saliency

    parser = ConfigParser()
    parser.read_config([str(BUNDLE / "train.json"), str(BUNDLE / "evaluate.json")])
    parser.update({**overrides, "num_workers": 0})
    model = parser.get_parsed_content("model")
    parser.get_parsed_content("load_weights")
    model.eval()
    methods = [arm.explanation, *arm.also]
    explainers = {m: None if m == "attention" else get_saliency(model, m, arm.cam_layer) for m in methods}
    images, masks, labels, marked, sources = [], [], [], [], []
    maps: dict[str, list] = {m: [] for m in methods}
    for batch in parser.get_parsed_content("evaluate#dataloader"):
        x = batch["image"].as_tensor() if hasattr(batch["image"], "as_tensor") else batch["image"]
        for method, explain in explainers.items():
            if explain is None:
                with torch.no_grad():
                    maps[method].append(model(x).attention_map.float())
            else:
                maps[method].append(explain(x).float())
        images.append(x)
        masks.append(torch.as_tensor(batch["mask"]).float())
        labels += [int(y) for y in torch.as_tensor(batch["label"]).view(-1)]
        names = [Path(str(s)).name for s in batch["image"].meta["filename_or_obj"]]
        sources += names
        marked += [markers[name] for name in names]
    images, masks, marked = torch.cat(images), torch.cat(masks), torch.tensor(marked)
    region = torch.as_tensor(marker_region(images.shape[-1], images.ndim - 2)).float()
    scores, per_image = {}, []
    for method in methods:
        stacked = torch.cat(maps[method])
        maps[method] = stacked
        hits = pointing_game(stacked, masks)
        energy = torch.full((len(stacked),), float("nan"))
        energy[marked] = region_energy(stacked[marked], region).float()
        scores[method] = {"map_pointing_game": float(hits.mean()), "marker_energy": float(energy.nanmean())}
        name = _method_name(method, arm.cam_layer)
        for source, label, has_marker, hit, share in zip(
            sources, labels, marked.tolist(), hits.tolist(), energy.tolist()
        ):
            cells = (
                source,
                label,
                int(has_marker),
                name,
                f"{hit:.0f}",
                "" if math.isnan(share) else f"{share:.6f}",
            )
            per_image.append(dict(zip(MAP_SCORE_COLUMNS, cells)))
    metrics = json.loads((Path(overrides["output_dir"]) / "eval_test" / "metrics.json").read_text())
    result = {
        "test_accuracy": metrics["image"]["accuracy"],
        "test_auc": metrics["image"]["auc"],
        **scores[arm.explanation],
        "explanation": _method_name(arm.explanation, arm.cam_layer),
        "description": arm.description,
    }
    if arm.also:
        result["other_maps"] = {_method_name(m, arm.cam_layer): scores[m] for m in arm.also}
    views = TestViews(
        images, {_method_name(m, arm.cam_layer): maps[m] for m in methods}, masks, labels, marked
    )
    run = tuple(parser.get_parsed_content(k) for k in ("tracking_uri", "experiment_name", "run_name"))
    return result, views, run, per_image


def _shown_rows(labels: list[int], marked: list[bool], per_case: int = 2) -> list[int]:
    """Test images to show: ``per_case`` of each (class, marker present) combination, in test order."""
    rows = []
    for label in (0, 1):
        for has_marker in (True, False):
            case = [i for i, (y, m) in enumerate(zip(labels, marked)) if y == label and m == has_marker]
            rows += case[:per_case]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=Path("demo_data/phantom2d"))
    parser.add_argument("--out", type=Path, default=Path("runs/quickstart"))
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument(
        "--batch-size", type=int, default=None, help="training batch (bundle default if unset)"
    )
    parser.add_argument(
        "--arms", default=",".join(DEFAULT_ARMS), help=f"comma-separated, of {', '.join(ARMS)}"
    )
    parser.add_argument(
        "--rrr-lambda", type=float, default=None, help="RRR penalty weight (bundle default if unset)"
    )
    args = parser.parse_args()
    started = float(os.environ.get("QUICKSTART_T0", time.time()))
    names = [a.strip() for a in args.arms.split(",") if a.strip()]
    unknown = [a for a in names if a not in ARMS]
    if unknown:
        raise SystemExit(f"unknown arm(s) {unknown}; valid: {', '.join(ARMS)}")

    import torch

    from monai_xai.data.synthetic import marker_region
    from monai_xai.tracking import log_to_run
    from monai_xai.utils import atomic_write_text
    from monai_xai.visualize import explanation_grid_figure, save_figure

    # one MLflow store for all arms, so that `mlflow ui` compares them side by side
    args.out.mkdir(parents=True, exist_ok=True)
    store = args.out.resolve() / "mlruns.db"
    common = {"dataset_dir": str(args.data), "max_epochs": args.epochs, "tracking_uri": f"sqlite:///{store}"}
    if args.rrr_lambda is not None:
        common["rrr_lambda"] = args.rrr_lambda
    if args.batch_size is not None:
        common["batch_size"] = args.batch_size
    markers, agreements = _markers(args.data), _agreements(args.data)
    class_names = ("smooth", "irregular")
    overrides = {
        name: {**common, **ARMS[name].overrides, "output_dir": str(args.out / name)} for name in names
    }
    results, views, runs = {}, {}, {}
    for name in names:
        run_arm(name, ARMS[name], overrides[name])
        results[name], views[name], runs[name], per_image = explain_arm(ARMS[name], overrides[name], markers)
        results[name].update(group_scores(args.out / name, agreements, class_names))
        with open(args.out / name / "map_scores.csv", "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=MAP_SCORE_COLUMNS)
            writer.writeheader()
            writer.writerows(per_image)

    shown = views[names[0]]
    labels, marked = shown.labels, shown.marked
    rows = _shown_rows(labels, marked.tolist())
    columns = {
        f"{name}: {method}": arm_maps[rows] for name in names for method, arm_maps in views[name].maps.items()
    }
    figure = explanation_grid_figure(
        shown.images[rows],
        columns,
        shown.masks[rows],
        row_titles=[f"{class_names[labels[i]]}, {'marker' if marked[i] else 'no marker'}" for i in rows],
    )
    figure_path = args.out / "explanations.png"
    save_figure(figure, figure_path)
    for name in names:
        log_to_run(
            *runs[name],
            metrics={f"test_{k}": v for k, v in results[name].items() if isinstance(v, float)},
            artifacts=[figure_path],
            artifact_path="quickstart",
        )
    summary = {
        "arms": results,
        "marker_area_share": float(marker_region(shown.images.shape[-1], shown.images.ndim - 2).mean()),
        "epochs": args.epochs,
        "data": str(args.data),
        "torch_threads": torch.get_num_threads(),
        "elapsed_s": round(time.time() - started, 1),
    }
    atomic_write_text(args.out / "summary.json", json.dumps(summary, indent=2))

    print(f"\nShortcut-free test set ({len(labels)} images; the marker is random there)")
    print(
        "| arm | accuracy | worst-group accuracy | AUC | map pointing game | map energy on the marker | map |"
    )
    print("|---|---|---|---|---|---|---|")
    for name, r in results.items():
        print(
            f"| {name} | {r['test_accuracy']:.3f} | {r['test_worst_group_accuracy']:.3f} | "
            f"{r['test_auc']:.3f} | {r['map_pointing_game']:.3f} | {r['marker_energy']:.3f} | "
            f"{r['explanation']} |"
        )
        for method, other in r.get("other_maps", {}).items():
            print(
                f"| {name} | | | | {other['map_pointing_game']:.3f} | {other['marker_energy']:.3f} | "
                f"{method} |"
            )
    print("(worst-group accuracy: the lowest test accuracy over class x marker agrees / disagrees)")
    print(f"(a map spread evenly would put {summary['marker_area_share']:.3f} of its energy on the marker)")
    print(f"\nFigure (a row per test image, a column per arm's explanation): {figure_path}")
    print(f"Summary: {args.out / 'summary.json'}; per arm: checkpoints, eval_test/ (metrics, ROC, overlays),")
    print(f"MLflow, every arm side by side: mlflow ui --backend-store-uri sqlite:///{store}")
    print(f"Elapsed: {summary['elapsed_s']:.0f} s")


if __name__ == "__main__":
    main()
