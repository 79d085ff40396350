"""HEI-MED at 256, 384 and 512 px: how many exudates survive the resize, and what one training epoch costs.

:mod:`.fundus_exudates` needs one image size; the issue asks for it to be chosen by measurement. Two parts:

* survival (no training; under a minute): every image with exudates goes through the dataset fragment's
  fundus preset (field-of-view crop, then its image and mask resize) at each size, and, for comparison,
  through the same preset with nearest-neighbour masks (what the other presets do). Pooled over the images:
  the share of exudate pixels of the staged 768x684 masks (after the crop) whose output pixel is still
  exudate; the share of exudate regions (connected components, diagonal neighbours joined) that keep a pixel,
  and that stay apart from every other region; the regions at least one output pixel large (a smaller
  exudate dims into its neighbourhood in the image whatever its mask says) and at least one cell of a map at
  input/4 and input/16; and how much the exudate area grows (the dilation that keeping every lesion costs).
* epoch time (``--timing``; trains): each arm of :mod:`.fundus_exudates` trained by the bundle's own trainer,
  in this process, for ``--epochs`` epochs on fold 0 at each size; the figure is the last epoch's wall time,
  training and validation together (the first pays for warm-up), beside the caching of the images.

:func:`estimate` turns the epoch times into the wall time of the whole fundus_exudates experiment at each size
(an upper bound: every training runs its ``max_epochs``, every fine-tuning epoch costs a multi-scale training
epoch, Deletion/Insertion from the per-image forward cost), and the largest size whose estimate fits
``--budget_hours`` is recommended (``size_within_budget``).

Usage (results go to ``--out`` or, with ``--publish``, into the docs)::

    python -m monai_xai.experiments heimed_resolution run --out /tmp/heimed_resolution.json   # survival only
    python -m monai_xai.experiments heimed_resolution run --timing --publish                   # both (trains)
    python -m monai_xai.experiments heimed_resolution run --timing --sizes 64 --epochs 1 --max_images 4 \\
        --arms multiscale --out /tmp/heimed_smoke.json --limit 8       # smoke test (--limit: bundle override)

A run keeps the epoch times of sizes and arms it does not time again from the results file it overwrites.
"""

from __future__ import annotations

import json
import math
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from monai_xai.errors import InputError

from .fundus_exudates import ARMS, arm_overrides
from .results import REPO, add_output_arguments, bundle_results, fmt, output_path, study_parser, write_results

__all__ = [
    "BLOCKS",
    "SIZES",
    "choose_size",
    "epoch_seconds",
    "estimate",
    "main",
    "region_survival",
    "render",
    "survival",
]

BUNDLE = "multiscale_abn_correction"
PUBLISHED = f"bundles/{BUNDLE}/docs/results/heimed_resolution.json"
DATASET = REPO / "configs" / "datasets" / "heimed_exudates.json"
SIZES = (256, 384, 512)
#: map grids whose cells a region should fill to be outlined: name -> input pixels per cell side
GRIDS = {"image": 1, "input/4": 4, "input/16": 16}
#: the plan :func:`estimate` times, as fundus_exudates runs it at the issue's budget
PLAN = {
    "folds": 5,
    "max_epochs": 60,
    "seeds": 3,
    "modes": 2,
    "strategies": 3,
    "fractions": 5,
    "ft_epochs": 15,
    "steps": 20,
}


# ------------------------------------------------------------------------------------------ survival


def region_survival(
    source: np.ndarray, resized: np.ndarray, labelled: tuple[np.ndarray, int] | None = None
) -> dict[str, float]:
    """Counts of what a binary source mask ``(H, W)`` keeps in its resized copy ``(h, w)``.

    A source pixel maps to the output pixel whose footprint holds it (``floor(y * h / H)``, likewise for
    columns). Returns the source's exudate pixels and regions, those whose output pixel is exudate, the
    regions that keep a pixel and those still apart (every output region they reach holds no other source
    region), the regions at least one cell of each of :data:`GRIDS` large, and the exudate pixels of both
    masks. ``labelled``: the source's :func:`~monai_xai.metrics.label_lesions`, when already computed.
    """
    from monai_xai.metrics.lesions import label_lesions

    source = np.asarray(source).astype(bool)
    resized = np.asarray(resized).astype(bool)
    (H, W), (h, w) = source.shape, resized.shape
    labels, n_regions = label_lesions(source) if labelled is None else labelled
    rows, cols = (np.arange(H) * h) // H, (np.arange(W) * w) // W
    kept = resized[rows[:, None], cols[None, :]] & source
    out_labels, _ = label_lesions(resized)
    reached = out_labels[rows[:, None], cols[None, :]][kept]
    pairs = np.unique(np.stack([labels[kept], reached]), axis=1) if kept.any() else np.zeros((2, 0), int)
    regions_per_output = np.bincount(pairs[1], minlength=out_labels.max() + 1)
    crowded = set(pairs[0][regions_per_output[pairs[1]] > 1].tolist())
    kept_regions = set(pairs[0].tolist())
    areas = np.bincount(labels.ravel(), minlength=n_regions + 1)[1:] * (h * w) / (H * W)
    counts = {
        "pixels": int(source.sum()),
        "pixels_kept": int(kept.sum()),
        "regions": n_regions,
        "regions_kept": len(kept_regions),
        "regions_apart": len(kept_regions - crowded),
        "resized_pixels": int(resized.sum()),
        "expected_pixels": float(source.sum() * (h * w) / (H * W)),
    }
    for grid, side in GRIDS.items():
        counts[f"regions_at_least_{grid}"] = int((areas >= side * side).sum())
    return counts


def _shares(totals: Mapping[str, float], worst: float) -> dict[str, float]:
    regions = max(totals["regions"], 1)
    shares = {
        "pixel_share": totals["pixels_kept"] / max(totals["pixels"], 1),
        "region_share": totals["regions_kept"] / regions,
        "regions_apart_share": totals["regions_apart"] / regions,
        "area_growth": totals["resized_pixels"] / max(totals["expected_pixels"], 1e-9),
        "worst_image_region_share": worst,
    }
    for grid in GRIDS:
        shares[f"regions_at_least_{grid}_share"] = totals[f"regions_at_least_{grid}"] / regions
    return shares


def _fragment(dataset: Path) -> dict[str, Any]:
    if not Path(dataset).is_file():
        raise InputError(dataset, "dataset fragment not found")
    return json.loads(Path(dataset).read_text())


def _positives(config: Mapping[str, Any], limit: int | None) -> list[dict]:
    """The fragment's items with exudates (label 1), read from its CSV beside the images."""
    from monai_xai.data import csv_datalist

    root = Path(config["dataset_dir"])
    root = root if root.is_absolute() else REPO / root
    csv_path = root / "labels.csv"
    if not csv_path.is_file():
        raise InputError(
            csv_path, "the dataset's labels.csv is not there (../shared/data beside the checkout?)"
        )
    args = config.get("datalist_args", {})
    items = csv_datalist(
        csv_path, label_col=args["label_col"], mask_col=args["mask_col"], class_names=config["class_names"]
    )
    positives = [item for item in items if int(item["label"]) == 1]
    return positives[:limit] if limit else positives


def survival(dataset: Path = DATASET, sizes: Sequence[int] = SIZES, limit: int | None = None) -> dict:
    """Survival of the exudates at each size through the fragment's preset (``chosen``) and with
    nearest-neighbour masks (``nearest``), pooled over the (first ``limit``) images with exudates."""
    from monai.transforms import Compose

    from monai_xai.metrics.lesions import label_lesions
    from monai_xai.transforms import EnsureMaskd, FieldOfViewCropd, LoadImageOrArrayd, fundus_preset

    config = _fragment(dataset)
    if config.get("preset") != "fundus":
        raise InputError(dataset, f"preset {config.get('preset')!r}: the survival is measured for 'fundus'")
    preset_args = dict(config.get("preset_args", {}))
    resize = {k: v for k, v in preset_args.items() if k != "fov_crop"}
    variants = {"chosen": resize, "nearest": {**resize, "mask_resize": "nearest"}}
    read = Compose([LoadImageOrArrayd(keys=["image", "mask"]), EnsureMaskd()])
    # the preset's own crop, once per image; then the rest of the preset at each size
    crop = FieldOfViewCropd(keys=["image"], mask_keys=["mask"])
    cropped = preset_args.get("fov_crop", True)
    pipelines = {
        (size, name): fundus_preset(
            keys=["image"], mask_keys=["mask"], spatial_size=(size, size), fov_crop=False, **args
        )
        for size in sizes
        for name, args in variants.items()
    }
    totals: dict[tuple[int, str], dict[str, float]] = {key: {} for key in pipelines}
    worst = dict.fromkeys(pipelines, 1.0)
    positives = _positives(config, limit)
    start = time.perf_counter()
    for item in positives:
        loaded = read(dict(item))
        loaded = crop(loaded) if cropped else loaded
        source = loaded["mask"][0].numpy() > 0.5
        labelled = label_lesions(source)
        for key, pipeline in pipelines.items():
            resized = pipeline(dict(loaded))["mask"][0].numpy() > 0.5
            counts = region_survival(source, resized, labelled)
            for name, value in counts.items():
                totals[key][name] = totals[key].get(name, 0) + value
            worst[key] = min(worst[key], counts["regions_kept"] / max(counts["regions"], 1))
    first = totals[next(iter(pipelines))]
    return {
        "dataset": str(config.get("dataset")),
        "preset_args": preset_args,
        "images": len(positives),
        "regions": int(first.get("regions", 0)),
        "pixels": int(first.get("pixels", 0)),
        "seconds": round(time.perf_counter() - start, 1),
        "sizes": {
            str(size): {name: _shares(totals[(size, name)], worst[(size, name)]) for name in variants}
            for size in sizes
        },
    }


# ------------------------------------------------------------------------------------------ epoch time


def epoch_seconds(
    arm: str,
    size: int,
    dataset: Path = DATASET,
    epochs: int = 2,
    batch_size: int = 16,
    workdir: Path | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Train ``arm`` of :mod:`.fundus_exudates` on fold 0 at ``size`` px for ``epochs`` epochs with the
    bundle's trainer, in this process; the last epoch's wall time (training and validation), every epoch's,
    and the time to cache the images. Trains: minutes at 512 px on a CPU."""
    from ignite.engine import Events
    from monai.bundle import ConfigParser

    workdir = Path(workdir or tempfile.mkdtemp(prefix="heimed_resolution_"))
    parser = ConfigParser()
    parser.read_config([str(p) for p in ARMS[arm].configs(Path(dataset))])
    parser.update(
        {
            **arm_overrides(arm, size),
            "spatial_size": [size, size],
            "max_epochs": epochs,
            "early_stop_patience": None,
            "batch_size": batch_size,
            "fold": 0,
            "output_dir": str(workdir / f"{arm}-{size}px"),
            "tracking_uri": f"sqlite:///{workdir / 'mlruns.db'}",
            "overwrite": True,
            **dict(extra or {}),
        }
    )
    parser.parse(reset=True)
    for i in range(len(parser["initialize"])):
        parser.get_parsed_content(f"initialize#{i}")
    start = time.perf_counter()
    trainer = parser.get_parsed_content("train#trainer")  # builds the cached datasets
    setup = time.perf_counter() - start
    times: list[float] = []
    began: dict[str, float] = {}
    trainer.add_event_handler(Events.EPOCH_STARTED, lambda _: began.__setitem__("t", time.perf_counter()))
    # attached after the validation handler, so an epoch's time includes its validation
    trainer.add_event_handler(
        Events.EPOCH_COMPLETED, lambda _: times.append(time.perf_counter() - began["t"])
    )
    try:
        trainer.run()
    finally:
        for i in range(len(parser["finalize"])):
            parser.get_parsed_content(f"finalize#{i}")
    splits = parser.get_parsed_content("splits")
    return {
        "seconds": round(times[-1], 1),
        "epochs": [round(t, 1) for t in times],
        "cache_seconds": round(setup, 1),
        "train_images": len(splits["train"]),
        "val_images": len(splits["val"]),
        "test_images": len(splits["test"]),
        "device": str(parser.get_parsed_content("device")),
    }


def estimate(per_arm: Mapping[str, Mapping[str, Any]], plan: Mapping[str, int] = PLAN) -> dict[str, float]:
    """Hours of the whole fundus_exudates experiment from each arm's epoch time at one size (an upper bound):
    every training ``max_epochs`` epochs; every fine-tune ``ft_epochs`` epochs at the multi-scale arm's
    cost; Deletion/Insertion ``2 (steps + 1)`` forwards per test image and map, a forward costing a third of
    a training image's share of the epoch. Missing arms count as the slowest measured one."""
    measured = {arm: record["seconds"] for arm, record in per_arm.items()}
    if not measured:
        return {}
    slowest = max(measured.values())
    training = sum(plan["folds"] * plan["max_epochs"] * measured.get(arm, slowest) for arm in ARMS)
    multiscale = measured.get("multiscale", slowest)
    fine_tunes = plan["folds"] * plan["seeds"] * plan["modes"] * plan["strategies"] * plan["fractions"]
    correction = fine_tunes * plan["ft_epochs"] * multiscale
    faithfulness = 0.0
    for arm, spec in ARMS.items():
        record = per_arm.get(arm) or next(iter(per_arm.values()))
        images = 3 * record["train_images"] + record["val_images"]
        forward = measured.get(arm, slowest) / max(images, 1)
        tested = record.get("test_images", 34) * plan["folds"]
        faithfulness += tested * len(spec.methods) * 2 * (plan["steps"] + 1) * forward
    total = training + correction + faithfulness
    return {
        "training_hours": training / 3600,
        "correction_hours": correction / 3600,
        "deletion_insertion_hours": faithfulness / 3600,
        "total_hours": total / 3600,
    }


def choose_size(estimates: Mapping[str, Mapping[str, float]], budget_hours: float) -> int | None:
    """The largest size whose estimated total fits ``budget_hours``; None without estimates or a fit."""
    fitting = [
        int(size) for size, hours in estimates.items() if hours and hours["total_hours"] <= budget_hours
    ]
    return max(fitting) if fitting else None


# ------------------------------------------------------------------------------------------ main


def main(argv: Sequence[str] | None = None) -> int:
    from monai_xai.cli_args import bundle_overrides

    parser, commands = study_parser("heimed_resolution", __doc__)
    run_parser = commands.add_parser(
        "run", help="measure survival (and with --timing the epoch times); extra --key value pairs override "
        "config ids of the timed trainings",
    )  # fmt: skip
    run_parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    run_parser.add_argument("--dataset", type=Path, default=DATASET, help="the dataset fragment")
    run_parser.add_argument("--max_images", type=int, help="survival: only this many images with exudates")
    run_parser.add_argument(
        "--timing", action="store_true", help="also time epochs (trains every arm briefly)"
    )
    run_parser.add_argument("--arms", nargs="+", default=list(ARMS), choices=list(ARMS), help="arms to time")
    run_parser.add_argument("--epochs", type=int, default=2, help="epochs per timing (the last one counts)")
    run_parser.add_argument("--batch_size", type=int, default=16)
    run_parser.add_argument(
        "--budget_hours", type=float, default=48.0, help="the wall time the full experiment may take"
    )
    add_output_arguments(run_parser, published=PUBLISHED)
    args, unknown = parser.parse_known_args(argv)
    extra = bundle_overrides(unknown)
    destination = output_path(args, PUBLISHED)
    previous = json.loads(destination.read_text()) if destination.is_file() else {}
    report: dict[str, Any] = {"survival": survival(args.dataset, args.sizes, args.max_images)}
    timing: dict[str, dict[str, Any]] = {
        size: dict(arms) for size, arms in previous.get("epoch_seconds", {}).items()
    }
    if args.timing:
        with tempfile.TemporaryDirectory(prefix="heimed_resolution_") as workdir:
            for size in args.sizes:
                for arm in args.arms:
                    record = epoch_seconds(
                        arm, size, args.dataset, args.epochs, args.batch_size, Path(workdir), extra
                    )
                    timing.setdefault(str(size), {})[arm] = record
                    print(
                        f"{size} px {arm}: {record['seconds']:.1f} s an epoch ({record['device']})",
                        flush=True,
                    )
    if timing:
        report["epoch_seconds"] = timing
        report["plan"] = dict(PLAN)
        report["estimate"] = {size: estimate(arms) for size, arms in timing.items()}
        report["budget_hours"] = args.budget_hours
        report["size_within_budget"] = choose_size(report["estimate"], args.budget_hours)
    write_results(report, destination, publish=args.publish)
    print(render(report))
    print(f"written {destination}")
    return 0


# ------------------------------------------------------------------------------------------ renderer


def _percent(value: float | None) -> str:
    return (
        "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{100 * value:.1f} %"
    )


def render(report: dict) -> str:
    """Survival per size with the fragment's masks and with nearest-neighbour ones; epoch times and the
    experiment's estimated wall time where measured."""
    found = report["survival"]
    grids = [f"≥ 1 {'px' if grid == 'image' else f'cell at {grid}'}" for grid in GRIDS]
    heads = [
        "pixels kept",
        "regions kept",
        "regions apart",
        *grids,
        "area growth",
        "nearest: pixels, regions",
    ]
    rows = [f"| size | {' | '.join(heads)} |", "|---" * (len(heads) + 1) + "|"]
    for size, variants in found["sizes"].items():
        chosen, nearest = variants["chosen"], variants["nearest"]
        cells = [_percent(chosen["pixel_share"]), _percent(chosen["region_share"])]
        cells += [_percent(chosen["regions_apart_share"])]
        cells += [_percent(chosen[f"regions_at_least_{grid}_share"]) for grid in GRIDS]
        cells += [f"{chosen['area_growth']:.2f}x"]
        cells += [f"{_percent(nearest['pixel_share'])}, {_percent(nearest['region_share'])}"]
        rows.append(f"| {size} px | {' | '.join(cells)} |")
    args = ", ".join(f"{k}={v}" for k, v in found["preset_args"].items())
    rows += [
        "",
        f"{found['images']} images with exudates, {found['regions']} exudate regions, {found['pixels']} "
        f"exudate pixels in the field-of-view crops of the staged masks; fundus preset ({args}). Kept: the "
        "output pixel holding a source pixel is exudate; apart: no other region reaches the same output "
        "region; ≥ 1 px or cell: the region's area at that size fills one image pixel or one cell of a map "
        "at that stride.",
    ]
    timing = report.get("epoch_seconds")
    if timing:
        arms = sorted({arm for by_arm in timing.values() for arm in by_arm})
        rows += ["", f"| size | {' | '.join(f'{arm} epoch' for arm in arms)} | estimated total |",
                 "|---" * (len(arms) + 2) + "|"]  # fmt: skip
        for size, by_arm in timing.items():
            cells = [f"{by_arm[arm]['seconds']:.0f} s" if arm in by_arm else "–" for arm in arms]
            hours = report.get("estimate", {}).get(size, {}).get("total_hours")
            rows.append(f"| {size} px | {' | '.join(cells)} | {fmt(hours, 1)} h |")
        device = next(iter(next(iter(timing.values())).values()))["device"]
        chosen = report.get("size_within_budget")
        rows += [
            "",
            f"One epoch (training and validation) on {device}; the total is an upper bound (every training "
            "to its maximum epochs). "
            + (
                f"Chosen: {chosen} px, the largest whose estimate fits {report['budget_hours']:g} h."
                if chosen
                else f"No size fits {report.get('budget_hours', 0):g} h."
            ),
        ]
    return "\n".join(rows) + "\n"


BLOCKS = {"heimed_resolution": bundle_results(BUNDLE, "heimed_resolution", render)}
