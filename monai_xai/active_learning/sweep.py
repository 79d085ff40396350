"""Active-learning sweep: fine-tune on the top 10 %, 20 %, ... of each strategy's ranking and score each.

For every strategy and fraction, the fine-tuning config is run with ``strategy`` and ``fraction`` set (so the
expert's corrected maps, or the masks standing in for them, are used for that selection only), then the
evaluate config on the test split. Accuracy (and quadratic weighted kappa, for ordinal grades) and the
map's error and pointing game against the reference masks are collected into ``sweep.json``/``sweep.md``,
curves into ``sweep_curves.png``, and all of it into an MLflow run ``<dataset>_sweep``. A combination
already evaluated after its last checkpoint is reused, so a killed sweep continues where it stopped.

.. code-block:: bash

    A=bundles/abn_classification/configs; M=bundles/multiscale_abn_correction/configs
    python -m monai_xai.active_learning.sweep --config_file "['$A/train.json','$M/train.json']" \\
        --finetune_file $M/finetune.json --evaluate_file "['$A/evaluate.json','$M/evaluate.json']" \\
        --strategies lowest_confidence largest_map_error random --fractions 0.1 0.5 1.0 \\
        --output_dir runs/multiscale/busi
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from tqdm import tqdm

from monai_xai.cli_args import bundle_overrides, config_file_list
from monai_xai.errors import InputError

__all__ = ["DEFAULT_FRACTIONS", "SCORES", "evaluated", "main", "run_sweep"]

DEFAULT_FRACTIONS = tuple(round(0.1 * k, 1) for k in range(1, 11))
#: What each combination is scored by: the prediction, and its map against the reference masks.
SCORES = ("accuracy", "kappa", "map_mse", "map_pointing_game")


def evaluated(eval_dir: Path, checkpoint: Path) -> bool:
    """Whether ``eval_dir`` holds an evaluation of ``checkpoint`` as it is now (written after it), so a
    rerun can reuse it; a checkpoint that no longer exists leaves the evaluation valid."""
    metrics = eval_dir / "metrics.json"
    return metrics.is_file() and (
        not checkpoint.is_file() or metrics.stat().st_mtime > checkpoint.stat().st_mtime
    )


def _fraction(text: str) -> float:
    """An argparse type: a share of the training samples in (0, 1], refused with the value named."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 < value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text} is not in (0, 1]: fractions are shares of the training set")
    return value


def _scores(eval_dir: Path) -> dict[str, float]:
    from monai_xai.metrics import predictions_kappa

    metrics = json.loads((eval_dir / "metrics.json").read_text())
    kappa = predictions_kappa(eval_dir / "predictions.csv")
    scores = {"accuracy": metrics["image"]["accuracy"], "kappa": kappa}
    agreement = metrics.get("attention_agreement", {}).get("attention")
    if agreement:
        scores["map_mse"] = agreement["map_mse"]
        scores["map_pointing_game"] = agreement["pointing_game"]
    return scores


def _curves_figure(results: Sequence[dict], path: Path) -> Path:
    from monai_xai.utils import pyplot
    from monai_xai.visualize import save_figure

    plt = pyplot()
    keys = [k for k in SCORES if any(k in r for r in results)]
    fig, axes = plt.subplots(1, len(keys), figsize=(4 * len(keys), 3.2), squeeze=False)
    for ax, key in zip(axes[0], keys):
        for strategy in dict.fromkeys(r["strategy"] for r in results):
            points = sorted(
                (r["fraction"], r[key]) for r in results if r["strategy"] == strategy and key in r
            )
            ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=strategy)
        ax.set_xlabel("fraction of training samples corrected")
        ax.set_title(key)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return save_figure(fig, path)


def run_sweep(
    config_files: Sequence[str],
    finetune_file: str,
    evaluate_files: Sequence[str],
    output_dir: str | os.PathLike,
    strategies: Sequence[str] = ("lowest_confidence", "largest_map_error", "random"),
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    overrides: Mapping | None = None,
    strategy_args: Mapping[str, Mapping] | None = None,
) -> list[dict]:
    """Fine-tune and evaluate every (strategy, fraction); returns one dict of scores per combination.

    ``output_dir`` is the pretrained run's output dir (its ``checkpoints/best.pt`` and, for the ranking
    strategies, ``correction/records.csv`` from the collect config must exist). ``strategy_args`` gives a
    strategy its constructor arguments by name, e.g. ``{"random": {"seed": 1}}`` for another random pick.
    """
    from monai.bundle import ConfigParser, run
    from monai.utils import look_up_option

    from monai_xai.active_learning import STRATEGIES
    from monai_xai.tracking import log_to_run

    names = [*strategies, *(strategy_args or {})]
    unknown = [s for s in names if look_up_option(s, STRATEGIES, default=None) is None]
    if unknown:
        raise InputError(
            "strategies", f"unknown strategies {unknown}; valid strategies: {', '.join(STRATEGIES)}"
        )
    if not fractions or not all(0.0 < float(f) <= 1.0 for f in fractions):
        raise ValueError(f"fractions must lie in (0, 1], got {list(fractions)}")
    out = Path(output_dir).resolve()
    base = {**dict(overrides or {}), "output_dir": str(out)}
    finetune = [*config_files, finetune_file]
    evaluate = [*finetune, *evaluate_files]
    results = []
    combos = [(s, float(f)) for s in strategies for f in fractions]
    for strategy, fraction in tqdm(combos, desc="active-learning sweep", unit="fine-tune", disable=None):
        args = {**base, "strategy": strategy, "fraction": fraction}
        if strategy in (strategy_args or {}):
            args["strategy_args"] = dict(strategy_args[strategy])
        parser = ConfigParser()
        parser.read_config(evaluate)
        parser.update({**args, "eval_split": "test"})
        eval_dir = Path(parser.get_parsed_content("eval_dir"))
        if not evaluated(eval_dir, Path(parser.get_parsed_content("checkpoint"))):
            run(config_file=finetune, **args)
            run(config_file=evaluate, eval_split="test", **args)
        results.append({"strategy": strategy, "fraction": fraction, **_scores(eval_dir)})
        tqdm.write(
            f"{strategy} {fraction:.0%}: "
            + ", ".join(
                f"{k} {v:.4f}" for k, v in results[-1].items() if isinstance(v, float) and k != "fraction"
            )
        )
    dataset = parser.get_parsed_content("dataset")
    sweep_dir = out / "sweep"
    sweep_dir.mkdir(parents=True, exist_ok=True)
    (sweep_dir / "sweep.json").write_text(json.dumps(results, indent=2))
    keys = [k for k in SCORES if any(k in r for r in results)]
    lines = ["| strategy | fraction | " + " | ".join(keys) + " |", "|---|---|" + "---|" * len(keys)]
    lines += [
        f"| {r['strategy']} | {r['fraction']:.0%} | " + " | ".join(f"{r[k]:.4f}" for k in keys) + " |"
        for r in results
    ]
    (sweep_dir / "sweep.md").write_text("\n".join(lines) + "\n")
    _curves_figure(results, sweep_dir / "sweep_curves.png")
    print("\n".join(lines))
    log_to_run(
        parser.get_parsed_content("tracking_uri"),
        parser.get_parsed_content("experiment_name"),
        f"{dataset}_sweep",
        metrics={f"{r['strategy']}_{k}_{round(r['fraction'] * 100)}": r[k] for r in results for k in keys},
        params={
            "strategies": list(strategies),
            "fractions": [float(f) for f in fractions],
            "strategy_args": dict(strategy_args or {}),
        },
        artifacts=[sweep_dir],
        finish=True,
    )
    return results


def main(argv: Sequence[str] | None = None) -> list[dict]:
    """``python -m monai_xai.active_learning.sweep``: run :func:`run_sweep` from the command line."""
    parser = argparse.ArgumentParser(
        prog="python -m monai_xai.active_learning.sweep",
        allow_abbrev=False,
        description="Fine-tune on the top fractions of each active-learning ranking; extra --key value pairs "
        "override config ids.",
    )
    parser.add_argument("--config_file", nargs="+", required=True, help="train configs, merged in order")
    parser.add_argument("--finetune_file", required=True, help="fine-tuning config merged on top")
    parser.add_argument("--evaluate_file", nargs="+", required=True, help="evaluate config(s) merged last")
    parser.add_argument("--output_dir", required=True, help="the pretrained run's output dir")
    parser.add_argument(
        "--strategies", nargs="+", default=["lowest_confidence", "largest_map_error", "random"]
    )
    parser.add_argument("--fractions", type=_fraction, nargs="+", default=list(DEFAULT_FRACTIONS))
    parser.add_argument(
        "--strategy_args",
        type=json.loads,
        default={},
        help='JSON: constructor arguments per strategy, e.g. \'{"random": {"seed": 1}}\'',
    )
    args, extra = parser.parse_known_args(argv)
    return run_sweep(
        config_file_list(args.config_file),
        args.finetune_file,
        config_file_list(args.evaluate_file),
        args.output_dir,
        args.strategies,
        args.fractions,
        bundle_overrides(extra),
        args.strategy_args,
    )


if __name__ == "__main__":
    main()
