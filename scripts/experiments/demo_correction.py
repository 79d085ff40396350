"""Corrections fix a shortcut: the multi-scale ABN on the demo phantoms, before and after fine-tuning on the
corrected maps of each active-learning strategy's top fractions of the training images.

The phantoms' label is the lesion's margin, while a bright corner marker agrees with the label in every
training and validation image and is random in the test set (``scripts/make_demo_data.py``). Trained without
map supervision (the bundle's default ``--map_weights 0``), the network can take the marker and fall to
chance on the shortcut-free test set. The trained model's records of the training images
(``collect.json``) are ranked by every strategy of ``monai_xai.active_learning``; the lesion masks of each
top fraction stand in for the expert's corrected maps. Fine-tuning starts from the same checkpoint in two
arms: ``branches`` (feature extractor frozen, as in the study) and ``whole`` (``--freeze_features false``),
one ``monai_xai.active_learning.sweep`` per arm. Each fine-tune is scored at its last epoch by default: the
validation images carry the marker, so a checkpoint chosen on them favours the shortcut.

Every step reuses what a previous run finished (training resumes from its last epoch, the sweep skips
evaluated combinations). Writes ``--results`` atomically: test accuracy and map pointing game before, the
accuracy per strategy and fraction of the better arm (higher mean accuracy at the fractions up to 30 %) as
``after`` and ``arm``, both arms with their pointing games under ``arms``, the issue's target and the
settings. ``scripts/experiments/demo_correction.sh`` is the driver (data, lock, where the results go).

Usage::

    python scripts/experiments/demo_correction.py --data demo_data/phantom2d \\
        --out runs/experiments/demo_correction-64px-12ep --results runs/experiments/demo_correction.json \\
        [--epochs 12 --size 64 --ft_epochs 15 --map_weights 10 --ft_learning_rate 0.001] [--key value ...]

Extra ``--key value`` pairs override config ids of every bundle run (e.g. ``--batch_size 8 --limit 40``).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path

from monai_xai.utils import atomic_write_json

REPO = Path(__file__).resolve().parents[2]
ABN = REPO / "bundles" / "abn_classification" / "configs"
MULTISCALE = REPO / "bundles" / "multiscale_abn_correction" / "configs"
TRAIN = [str(ABN / "train.json"), str(MULTISCALE / "train.json")]
EVALUATE = [str(ABN / "evaluate.json"), str(MULTISCALE / "evaluate.json")]
FINETUNE = str(MULTISCALE / "finetune.json")

#: arm -> (what it fine-tunes, its bundle overrides)
ARMS: dict[str, tuple[str, dict]] = {
    "branches": ("the branches, feature extractor frozen (as in the study)", {"freeze_features": True}),
    "whole": ("the whole network, feature extractor included", {"freeze_features": False}),
}
FRACTIONS = (0.1, 0.2, 0.3, 0.5, 1.0)
#: the issue's target: test accuracy >= after_at_least with at most fraction_at_most of the maps corrected,
#: from at most before_at_most; the arms are compared at those fractions too.
TARGET = {"before_at_most": 0.65, "after_at_least": 0.85, "fraction_at_most": 0.3}
#: which fine-tuning checkpoint each combination is scored by -> its file in the fine-tune's checkpoints/
CHECKPOINTS = {"last": "latest.pt", "best": "best.pt"}
DRIVER = "bash scripts/experiments/demo_correction.sh (it resumes)"


def fraction_key(fraction: float) -> str:
    """A fraction as the results file's key: ``0.1`` -> ``"0.1"``, ``1`` -> ``"1.0"``."""
    return str(float(fraction))


def read_json(path: Path) -> dict:
    """``path``'s JSON, or an error that names the missing file and the command that writes it."""
    if not path.is_file():
        raise SystemExit(f"{path} is missing: run {DRIVER}")
    return json.loads(path.read_text())


def before_scores(trained_dir: Path) -> dict[str, float]:
    """Test accuracy and map pointing game of the trained (uncorrected) model."""
    from monai_xai.handlers.evaluation_report import flatten_report

    flat = flatten_report(read_json(trained_dir / "eval_test" / "metrics.json"))
    return {"test_accuracy": flat["image_accuracy"], "map_pointing_game": flat["attention_pointing_game"]}


def arm_scores(arm_dir: Path, strategies: Sequence[str], fractions: Sequence[float]) -> dict[str, dict]:
    """Test accuracy (``after``) and map pointing game per strategy and fraction from the arm's sweep."""
    sweep_file = arm_dir / "sweep" / "sweep.json"
    rows = {(r["strategy"], fraction_key(r["fraction"])): r for r in read_json(sweep_file)}
    wanted = [(s, fraction_key(f)) for s in strategies for f in fractions]
    missing = [f"{s} {f}" for s, f in wanted if (s, f) not in rows]
    if missing:
        raise SystemExit(f"{sweep_file} lacks {', '.join(missing)}: run {DRIVER}")
    return {
        name: {s: {f: rows[(s, f)][key] for f in map(fraction_key, fractions)} for s in strategies}
        for name, key in (("after", "accuracy"), ("pointing_game", "map_pointing_game"))
    }


def _up_to(after: Mapping[str, Mapping[str, float]], max_fraction: float) -> list[tuple[str, str, float]]:
    """(strategy, fraction, accuracy) of every fraction up to ``max_fraction``."""
    return [(s, f, acc) for s, row in after.items() for f, acc in row.items() if float(f) <= max_fraction]


def mean_accuracy_up_to(after: Mapping[str, Mapping[str, float]], max_fraction: float) -> float:
    """Mean test accuracy over the strategies and fractions up to ``max_fraction``: what ranks the arms."""
    values = [acc for _, _, acc in _up_to(after, max_fraction)]
    return math.fsum(values) / len(values)


def best_up_to(after: Mapping[str, Mapping[str, float]], max_fraction: float) -> dict:
    """The highest test accuracy with at most ``max_fraction`` corrected (the smaller fraction on a tie)."""
    strategy, fraction, accuracy = max(_up_to(after, max_fraction), key=lambda c: (c[2], -float(c[1])))
    return {"strategy": strategy, "fraction": float(fraction), "test_accuracy": accuracy}


def better_arm(arms: Mapping[str, Mapping]) -> str:
    """The arm with the higher mean accuracy at the target's fractions; the first listed on a tie."""
    return max(arms, key=lambda name: arms[name]["mean_accuracy_up_to_target"])


def target_check(before: Mapping[str, float], best: Mapping) -> dict:
    """The issue's target against the before figure and the reported arm's best figure within it."""
    before_met = before["test_accuracy"] <= TARGET["before_at_most"]
    after_met = best["test_accuracy"] >= TARGET["after_at_least"]
    return {**TARGET, "best_after": dict(best), "before_met": before_met, "after_met": after_met,
            "met": before_met and after_met}  # fmt: skip


def results(
    out: Path, strategies: Sequence[str], fractions: Sequence[float], arms: Sequence[str], settings: dict
) -> dict:
    """The results file's content from the finished runs under ``out`` (errors name what is missing)."""
    before = before_scores(out / "trained")
    per_arm = {}
    for name in arms:
        scores = arm_scores(out / name, strategies, fractions)
        per_arm[name] = {
            "description": ARMS[name][0],
            **scores,
            "mean_accuracy_up_to_target": mean_accuracy_up_to(scores["after"], TARGET["fraction_at_most"]),
            "best_up_to_target": best_up_to(scores["after"], TARGET["fraction_at_most"]),
        }
    arm = better_arm(per_arm)
    return {
        "before": before,
        "after": per_arm[arm]["after"],
        "arm": arm,
        "arms": per_arm,
        "target": target_check(before, per_arm[arm]["best_up_to_target"]),
        "settings": settings,
    }


def add_wall_time(path: Path, step: str, seconds: float) -> dict[str, float]:
    """Add ``seconds`` to ``step``'s total in ``path`` and return all totals: the time each step took over
    every invocation, so a resumed run still reports what the whole run cost."""
    totals = json.loads(path.read_text()) if path.is_file() else {}
    totals[step] = round(totals.get(step, 0.0) + seconds, 1)
    atomic_write_json(path, totals, indent=1)
    return totals


def bundle_step(wall_file: Path, step: str, config_file: Sequence[str], **overrides) -> None:
    """``monai.bundle.run`` in this process, its wall time added to ``wall_file``."""
    from monai.bundle import run

    started = time.perf_counter()
    run(config_file=list(config_file), **overrides)
    add_wall_time(wall_file, step, time.perf_counter() - started)


def train_and_collect(trained_dir: Path, wall_file: Path, overrides: Mapping) -> None:
    """Train without map supervision, evaluate on the test set and write the records the strategies rank;
    reuses each step whose output is newer than the checkpoint."""
    from monai_xai.active_learning.sweep import evaluated

    common = {**overrides, "output_dir": str(trained_dir)}
    checkpoint = trained_dir / "checkpoints" / "best.pt"
    if not evaluated(trained_dir / "eval_test", checkpoint):
        bundle_step(wall_file, "train", TRAIN, **common)
        bundle_step(wall_file, "evaluate", [*TRAIN, *EVALUATE], **common)
    records = trained_dir / "correction" / "records.csv"
    if not records.is_file() or records.stat().st_mtime < checkpoint.stat().st_mtime:
        bundle_step(wall_file, "collect", [*TRAIN, str(MULTISCALE / "collect.json")], **common)


def split_sizes(data: Path) -> dict[str, int]:
    """Images per split of the phantoms' ``labels.csv``."""
    with open(data / "labels.csv", newline="") as f:
        return dict(Counter(row["split"] for row in csv.DictReader(f)))


def parse_args(argv: Sequence[str] | None = None) -> tuple[argparse.Namespace, dict]:
    from monai_xai.active_learning import STRATEGIES
    from monai_xai.cli_args import bundle_overrides

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter, allow_abbrev=False
    )
    parser.add_argument("--data", type=Path, required=True, help="the phantoms (scripts/make_demo_data.py)")
    parser.add_argument("--out", type=Path, required=True, help="run folder: trained/, branches/, whole/")
    parser.add_argument("--results", type=Path, required=True, help="the results JSON to write")
    parser.add_argument("--epochs", type=int, default=12, help="training epochs")
    parser.add_argument("--size", type=int, default=64, help="image size the network sees")
    # the fine-tuning defaults: the setting under which L_map converged on BUSI (the bundle's docs)
    parser.add_argument("--ft_epochs", type=int, default=15, help="fine-tuning epochs")
    parser.add_argument("--map_weights", type=float, default=10.0, help="L_map weight while fine-tuning")
    parser.add_argument("--ft_learning_rate", type=float, default=0.001, help="fine-tuning learning rate")
    parser.add_argument(
        "--checkpoint",
        choices=CHECKPOINTS,
        default="last",
        help="the fine-tune's checkpoint scored: its last epoch, or its best validation AUC (marker in view)",
    )
    parser.add_argument("--strategies", nargs="+", choices=STRATEGIES, default=list(STRATEGIES))
    parser.add_argument("--fractions", nargs="+", type=float, default=list(FRACTIONS))
    parser.add_argument("--arms", nargs="+", choices=ARMS, default=list(ARMS))
    args, extra = parser.parse_known_args(argv)
    if not all(0.0 < f <= 1.0 for f in args.fractions):
        parser.error(f"--fractions {args.fractions}: each must lie in (0, 1], a share of the training images")
    if min(args.fractions) > TARGET["fraction_at_most"]:
        limit = TARGET["fraction_at_most"]
        parser.error(f"--fractions needs one of at most {limit}: the arms are compared there")
    return args, bundle_overrides(extra)


def main(argv: Sequence[str] | None = None) -> dict:
    args, extra = parse_args(argv)
    labels = args.data / "labels.csv"
    if not labels.is_file():
        raise SystemExit(f"{labels} is missing: python scripts/make_demo_data.py --out {args.data}")
    import torch

    from monai_xai.active_learning.sweep import run_sweep

    out = args.out.resolve()
    trained, wall_file = out / "trained", out / "wall_s.json"
    common = {**extra, "dataset_dir": str(args.data.resolve()), "spatial_size": [args.size, args.size]}
    train_and_collect(trained, wall_file, {**common, "max_epochs": args.epochs, "faithfulness_methods": []})
    finetune = {
        **common,
        "max_epochs": args.ft_epochs,
        "map_weights": args.map_weights,
        "learning_rate": args.ft_learning_rate,
        "pretrained_checkpoint": str(trained / "checkpoints" / "best.pt"),
        "records_file": str(trained / "correction" / "records.csv"),
        "checkpoint": f"$os.path.join(@ckpt_dir, '{CHECKPOINTS[args.checkpoint]}')",
        "faithfulness_methods": [],
    }
    for arm in args.arms:
        started = time.perf_counter()
        overrides = {**finetune, **ARMS[arm][1]}
        run_sweep(TRAIN, FINETUNE, EVALUATE, out / arm, args.strategies, args.fractions, overrides)
        add_wall_time(wall_file, f"sweep_{arm}", time.perf_counter() - started)
    settings = {
        "data": str(args.data),
        "images": split_sizes(args.data),
        "spatial_size": args.size,
        "epochs": args.epochs,
        "finetune": {
            "epochs": args.ft_epochs,
            "map_weights": args.map_weights,
            "learning_rate": args.ft_learning_rate,
            "checkpoint": args.checkpoint,
        },
        "strategies": list(args.strategies),
        "fractions": [float(f) for f in args.fractions],
        "bundle_overrides": extra,
        "torch_threads": torch.get_num_threads(),
        "wall_s": json.loads(wall_file.read_text()),
    }
    report = results(out, args.strategies, args.fractions, args.arms, settings)
    atomic_write_json(args.results, report, indent=1)
    target = report["target"]
    best = target["best_after"]
    print(
        f"before: test accuracy {report['before']['test_accuracy']:.3f}; after, arm {report['arm']}: "
        f"best {best['test_accuracy']:.3f} ({best['strategy']}, {best['fraction']:.0%}); "
        f"target met: {target['met']}\nwritten {args.results}"
    )
    return report


if __name__ == "__main__":
    main()
