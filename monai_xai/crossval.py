"""k-fold cross-validation of a bundle: train and evaluate each fold, then report mean ± sd over folds.

One fold's validation score says little on small medical datasets; the spread over folds says how
much of a difference between two arms is noise. Works for any bundle whose ``train.json`` follows
the ABN bundle's conventions (ids ``fold``, ``output_dir``, ``tracking_uri``, ``run_name``, ``run_folder``,
``splits`` returning ``n_folds``) and whose evaluate config reads ``eval_split``, names its weights
``checkpoint`` and writes ``<output_dir>/eval_<split>/metrics.json``.

.. code-block:: bash

    B=bundles/abn_classification/configs
    python -m monai_xai.crossval --config_file "['$B/train.json']" --evaluate_file $B/evaluate.json \\
        --output_dir runs/cv/dynamic --mode dynamic --max_epochs 20
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path

from tqdm import tqdm

from monai_xai.cli_args import bundle_overrides, config_file_list
from monai_xai.utils import atomic_write_json

__all__ = ["main", "mean_sd", "run_crossval", "summary_markdown"]

SPLITS = ("val", "test")
_CONTROLLED = ("fold", "output_dir", "eval_split")


def mean_sd(values: Sequence[float]) -> tuple[float, float, int]:
    """Mean, sample sd (ddof=1; 0 for a single value) and count of the finite ``values``.

    Non-finite values (e.g. an AUC undefined on a one-class fold) are left out rather than turning
    the whole mean into NaN; the count tells how many folds it rests on.
    """
    finite = [float(v) for v in values if math.isfinite(v)]
    if not finite:
        return math.nan, math.nan, 0
    return statistics.fmean(finite), statistics.stdev(finite) if len(finite) > 1 else 0.0, len(finite)


def _parser(config_files: Sequence[str], overrides: Mapping):
    from monai.bundle import ConfigParser

    parser = ConfigParser()
    parser.read_config(list(config_files))
    parser.update(dict(overrides))
    return parser


#: A fold's record that it was trained and evaluated: by which run (fingerprint), of which weights, with what.
DONE_FILE = "crossval_done.json"


def _done_record(run_fingerprint: str, checkpoint: Path, overrides: Mapping) -> dict:
    from monai_xai.runs import canonical_identity, file_digest

    return {
        "fingerprint": run_fingerprint,
        "checkpoint": file_digest(checkpoint) if checkpoint.is_file() else None,
        "overrides": canonical_identity(dict(overrides)),
    }


def _is_evaluated(fold_dir: Path, expected: Mapping) -> bool:
    """The fold's done record matches this run's fingerprint, weights and overrides, and its metrics exist.

    Not file times: a fold trained with other settings, or evaluated before its weights changed, is redone.
    """
    done = fold_dir / DONE_FILE
    if not done.is_file() or not all((fold_dir / f"eval_{s}" / "metrics.json").is_file() for s in SPLITS):
        return False
    return _comparable(json.loads(done.read_text())) == _comparable(expected)


#: Overrides that say where a fold writes and logs, not what it computes: a moved run folder or another
#: MLflow store does not make a finished fold stale.
_LOCATION = ("output_dir", "tracking_uri")


def _comparable(record: Mapping) -> dict:
    overrides = {k: v for k, v in record.get("overrides", {}).items() if k not in _LOCATION}
    return {**record, "overrides": overrides}


def _crossval_run_name(run_names: Mapping[int, str]) -> str:
    """``<run_name without its fold suffix>_crossval``; refuses run names that do not depend on the fold."""
    if len(set(run_names.values())) < len(run_names):
        raise ValueError(f"run_name must differ between folds (it should use @fold), got {dict(run_names)}")
    fold, name = next(iter(run_names.items()))
    return re.sub(rf"[_-]?fold{fold}(-[0-9a-f]{{12}})?$", "", name) + "_crossval"


def _summarize(per_fold: list[dict]) -> dict[str, dict[str, dict]]:
    from monai_xai.handlers.evaluation_report import flatten_report

    summary: dict[str, dict[str, dict]] = {}
    for split in SPLITS:
        flats = [flatten_report(fold[split]) for fold in per_fold]
        names = list(dict.fromkeys(name for flat in flats for name in flat))
        summary[split] = {}
        for name in names:
            values = [flat[name] for flat in flats if name in flat]
            mean, sd, n = mean_sd(values)
            summary[split][name] = {"mean": mean, "sd": sd, "n": n, "values": values}
    return summary


def _cell(stats: Mapping | None) -> str:
    return "-" if stats is None else f"{stats['mean']:.3f} ± {stats['sd']:.3f}"


def summary_markdown(summary: Mapping) -> str:
    """The summary as a markdown table: metric | val mean ± sd | test mean ± sd."""
    names = list(dict.fromkeys([*summary["val"], *summary["test"]]))
    folds = ", ".join(str(k) for k in summary["folds"])
    lines = [
        f"## {summary['run_name']}: folds {folds} of {summary['n_folds']}",
        "",
        "| metric | val mean ± sd | test mean ± sd |",
        "|---|---|---|",
    ]
    lines += [f"| {n} | {_cell(summary['val'].get(n))} | {_cell(summary['test'].get(n))} |" for n in names]
    return "\n".join(lines) + "\n"


def run_crossval(
    config_files: Sequence[str] | str,
    evaluate_file: str,
    output_dir: str | os.PathLike,
    folds: Sequence[int] | None = None,
    overrides: Mapping | None = None,
) -> dict:
    """Train and evaluate ``folds`` (default: all folds of the dataset) and summarize them.

    Fold ``k`` trains in ``<output_dir>/fold<k>`` and is evaluated on its validation part and on
    the fixed test set. All folds log to one MLflow store (``sqlite:///<output_dir>/mlruns.db``
    unless ``overrides`` holds a ``tracking_uri``), so the runs can be compared side by side; the
    mean ± sd goes to a run named ``<run_name prefix>_crossval`` there and to
    ``crossval_summary.{json,md}``. A fold whose ``crossval_done.json`` names this fold's run fingerprint,
    the digest of its evaluated weights and the same overrides is reused, so a killed cross-validation
    continues where it stopped and a changed one redoes what changed. Returns the summary.
    """
    from monai.bundle import run

    from monai_xai.tracking import default_tracking_uri, log_to_run

    config_files = [str(config_files)] if isinstance(config_files, str | os.PathLike) else list(config_files)
    overrides = dict(overrides or {})
    clash = sorted(set(overrides) & set(_CONTROLLED))
    if clash:
        raise ValueError(f"overrides {clash} are set per fold by run_crossval; remove them")
    out = Path(output_dir).resolve()
    overrides["tracking_uri"] = overrides.get("tracking_uri") or default_tracking_uri(out)
    eval_files = [*config_files, str(evaluate_file)]

    n_folds = int(_parser(config_files, overrides).get_parsed_content("splits").get("n_folds", 3))
    folds = list(range(n_folds)) if folds is None else [int(k) for k in dict.fromkeys(folds)]
    if not folds or not all(0 <= k < n_folds for k in folds):
        raise ValueError(f"folds must be a non-empty subset of 0..{n_folds - 1}, got {folds}")
    fold_args = {k: {**overrides, "fold": k, "output_dir": str(out / f"fold{k}")} for k in folds}
    parsers = {k: _parser(eval_files, args) for k, args in fold_args.items()}
    cv_run_name = _crossval_run_name({k: p.get_parsed_content("run_name") for k, p in parsers.items()})
    experiment_name = parsers[folds[0]].get_parsed_content("experiment_name")

    per_fold = []
    for k in tqdm(folds, desc="cross-validation", unit="fold", disable=None):
        fold_dir = out / f"fold{k}"
        checkpoint = Path(parsers[k].get_parsed_content("checkpoint"))
        run_fingerprint = parsers[k].get_parsed_content("run_folder").fingerprint
        reused = _is_evaluated(fold_dir, _done_record(run_fingerprint, checkpoint, fold_args[k]))
        if reused:
            tqdm.write(f"fold {k}: reusing the evaluation in {fold_dir}")
        else:
            (fold_dir / DONE_FILE).unlink(missing_ok=True)
            run(config_file=config_files, **fold_args[k])
            for split in SPLITS:
                run(config_file=eval_files, eval_split=split, **fold_args[k])
            atomic_write_json(fold_dir / DONE_FILE, _done_record(run_fingerprint, checkpoint, fold_args[k]))
        metrics = {s: json.loads((fold_dir / f"eval_{s}" / "metrics.json").read_text()) for s in SPLITS}
        per_fold.append(
            {"fold": k, "run_name": parsers[k].get_parsed_content("run_name"), "reused": reused, **metrics}
        )

    summary = {
        "run_name": cv_run_name,
        "experiment_name": experiment_name,
        "tracking_uri": overrides["tracking_uri"],
        "folds": folds,
        "n_folds": n_folds,
        **_summarize(per_fold),
        "per_fold": per_fold,
    }
    json_path, md_path = out / "crossval_summary.json", out / "crossval_summary.md"
    json_path.write_text(json.dumps(summary, indent=2))
    markdown = summary_markdown(summary)
    md_path.write_text(markdown)
    print(f"\n{markdown}\nwritten to {md_path} and {json_path}")

    means = {f"{split}_{name}": s["mean"] for split in SPLITS for name, s in summary[split].items()}
    sds = {f"{split}_{name}_sd": s["sd"] for split in SPLITS for name, s in summary[split].items()}
    params = {"folds": folds, "n_folds": n_folds, "config_file": config_files, "evaluate_file": evaluate_file}
    log_to_run(
        summary["tracking_uri"],
        experiment_name,
        summary["run_name"],
        metrics={**means, **sds},
        params={**params, **overrides},
        artifacts=[json_path, md_path],
        finish=True,
    )
    return summary


def main(argv: Sequence[str] | None = None) -> dict:
    """``python -m monai_xai.crossval``: run :func:`run_crossval` from the command line."""
    parser = argparse.ArgumentParser(
        prog="python -m monai_xai.crossval",
        allow_abbrev=False,  # so a bundle override such as --fold is not taken for --folds
        description="k-fold cross-validation of a bundle; extra --key value pairs override its config ids.",
    )
    parser.add_argument("--config_file", nargs="+", required=True, help="train config(s), merged in order")
    parser.add_argument("--evaluate_file", required=True, help="evaluate config merged on top of them")
    parser.add_argument("--output_dir", required=True, help="fold<k>/ folders, mlruns.db, summaries")
    parser.add_argument(
        "--folds", type=int, nargs="+", default=None, help="default: all folds of the dataset"
    )
    args, extra = parser.parse_known_args(argv)
    return run_crossval(
        config_file_list(args.config_file),
        args.evaluate_file,
        args.output_dir,
        args.folds,
        bundle_overrides(extra),
    )


if __name__ == "__main__":
    main()
