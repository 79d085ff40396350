"""What every experiment module shares: its README blocks, the results file it writes, and how figures print.

An experiment module (``monai_xai.experiments.<name>``) collects a results file from its run folders and
renders that file into a bundle README. It defines:

* ``BLOCKS``: README block name -> :class:`Block` (the results file and the function that renders it);
* ``EVAL_METRICS`` (optional): results file -> function deriving the bundle metadata's ``eval_metrics``
  entries from it;
* ``main(argv)`` (optional): its command line, usually the collector; it writes through
  :func:`write_results`, which refuses to write into a bundle's ``docs/`` without ``--publish``.

Figures in a results file are ``{"mean": .., "ci95": [low, high], "n": ..}`` (:meth:`Interval.to_dict`);
:func:`fmt_ci` prints them and :func:`verdict` says "met" only where the interval clears the target.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import os
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from monai_xai.errors import InputError

__all__ = [
    "refuse_short_publish",
    "NO_INTERVAL",
    "REPO",
    "Block",
    "add_output_arguments",
    "as_stats",
    "bundle_results",
    "finite",
    "fmt",
    "fmt_ci",
    "fraction_key",
    "mean_sd",
    "output_path",
    "parse_study_args",
    "read_json",
    "read_json_if_present",
    "rounded",
    "study_parser",
    "verdict",
    "verdict_cell",
    "vs_zero",
    "write_results",
]

#: the repository root (the package is installed in editable mode from it)
REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Block:
    """A README block ``<!-- results:NAME -->``: the results file it is rendered from and its renderer.

    ``results`` is relative to the repository root (``bundles/<bundle>/docs/results/<file>.json``), and
    ``render`` gets that file's content. A summary over several experiments gives :attr:`summarises`
    instead: their results files, which ``render`` gets as ``{file: content, or None where it is missing}``.
    """

    results: str | None
    render: Callable[[dict], str]
    summarises: tuple[str, ...] = ()

    @property
    def path(self) -> Path:
        if self.results is None:
            raise ValueError(f"a summary block has no single results file: it reads {self.summarises}")
        return REPO / self.results

    def content(self) -> dict:
        """What :attr:`render` takes: the results file, or every summarised file (None where missing)."""
        if self.results is None:
            return {name: read_json_if_present(REPO / name) or None for name in self.summarises}
        return json.loads(self.path.read_text())


def bundle_results(bundle: str, name: str, render: Callable[[dict], str]) -> Block:
    """The block of ``bundles/<bundle>/docs/results/<name>.json``."""
    return Block(f"bundles/{bundle}/docs/results/{name}.json", render)


def _in_docs(path: Path) -> bool:
    parts = path.resolve().parts
    return "bundles" in parts and "docs" in parts[parts.index("bundles") :]


def add_output_arguments(parser: argparse.ArgumentParser, published: str) -> None:
    """``--out`` and ``--publish``: results go to ``--out``, or with ``--publish`` to ``published`` (docs)."""
    parser.add_argument("--out", type=Path, help="where to write the results file (not into a bundle's docs)")
    parser.add_argument(
        "--publish",
        action="store_true",
        help=f"write the results into the docs ({published}) that the README tables are rendered from",
    )


def output_path(args: argparse.Namespace, published: str) -> Path:
    """The results file ``args`` asks for: ``--out``, or the docs file with ``--publish`` (one of the two)."""
    if args.publish:
        if args.out is not None and args.out.resolve() != (REPO / published).resolve():
            raise InputError(args.out, f"--publish writes {published}; give one of the two")
        return REPO / published
    if args.out is None:
        raise InputError(None, f"give --out <results.json>, or --publish to write {published}")
    return args.out


def read_json(path: Path, hint: str) -> Any:
    """``path``'s JSON, or an error naming the missing file and ``hint`` (the command that writes it)."""
    if not path.is_file():
        raise InputError(path, f"missing: {hint}")
    return json.loads(path.read_text())


def read_json_if_present(path: Path) -> dict:
    """``path``'s JSON, or an empty dict for an optional record that was not written."""
    return json.loads(path.read_text()) if path.is_file() else {}


def fraction_key(fraction: float) -> str:
    """A fraction as a results file's key: ``0.1`` -> ``"0.1"``, ``1`` -> ``"1.0"``."""
    return str(float(fraction))


def parse_study_args(
    parser: argparse.ArgumentParser, argv: Sequence[str] | None
) -> tuple[argparse.Namespace, dict[str, Any]]:
    """A study's arguments, and a ``run``'s unknown ``--key value`` pairs as the bundle overrides of every
    run it starts (read as the bundle's command line reads them); unknown arguments elsewhere are an error."""
    from monai_xai.cli_args import bundle_overrides

    args, unknown = parser.parse_known_args(argv)
    if args.command != "run":
        if unknown:
            parser.error(f"unrecognized arguments: {' '.join(unknown)}")
        return args, {}
    return args, bundle_overrides(unknown)


def study_parser(name: str, description: str | None) -> tuple[argparse.ArgumentParser, Any]:
    """Experiment ``name``'s command line and the subcommands (``run``, ``collect``) to add to it.

    Abbreviations are off in the parser and every subcommand: a ``run``'s unknown ``--key value`` pairs are
    bundle overrides, which a prefix of one of its own options must never swallow.
    """
    parser_class = functools.partial(
        argparse.ArgumentParser, formatter_class=argparse.RawDescriptionHelpFormatter, allow_abbrev=False
    )
    parser = parser_class(prog=f"python -m monai_xai.experiments {name}", description=description)
    return parser, parser.add_subparsers(dest="command", required=True, parser_class=parser_class)


def write_results(report: Mapping[str, Any], path: Path, publish: bool = False) -> Path:
    """Write ``report`` to ``path`` atomically; into a bundle's ``docs/`` only when ``publish`` is set."""
    path = Path(path)
    if _in_docs(path) and not publish:
        raise InputError(path, "results go into a bundle's docs only with --publish")
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(report, indent=2, sort_keys=False, allow_nan=False) + "\n"
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def mean_sd(values: Iterable[float | None]) -> dict[str, Any]:
    """Mean and sample sd (ddof=1) of the values given, with ``n`` and how many were missing (None or NaN).

    The one summary of repeated runs: missing values are counted, never silently dropped or zeroed; ``sd`` is
    None with fewer than two values, ``mean`` None with none.
    """
    values = list(values)
    present = [float(v) for v in values if v is not None and not math.isnan(float(v))]
    n = len(present)
    mean = sum(present) / n if n else None
    sd = math.sqrt(sum((v - mean) ** 2 for v in present) / (n - 1)) if n > 1 else None
    return {"mean": mean, "sd": sd, "n": n, "missing": len(values) - n}


def as_stats(value: float | Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A results-file figure as ``{"mean", ...}``: a bare number (files written before intervals) becomes
    ``{"mean": value}``, which :func:`fmt_ci` prints bare and :func:`verdict` calls "no interval"."""
    if value is None:
        return None
    return dict(value) if isinstance(value, Mapping) else {"mean": float(value)}


def finite(value: Any) -> Any:
    """``value`` with every non-finite float replaced by None, through mappings and lists: results files
    are strict JSON, and an undefined figure (an AUC on one class) is null there."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    return value


def rounded(figures: Mapping[str, Any], digits: int = 4) -> dict[str, Any]:
    """The floats of ``figures`` rounded (metadata ``eval_metrics`` restate results at 4 decimals)."""
    return {k: round(v, digits) if isinstance(v, float) else v for k, v in figures.items()}


def fmt(value: float | None, digits: int = 3) -> str:
    """A figure at ``digits`` decimals; an en dash for a missing one."""
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def fmt_ci(stats: Mapping[str, Any] | float | None, digits: int = 3) -> str:
    """``0.812 [0.771, 0.850]``: a figure with its 95 % interval; the bare figure when it has none."""
    stats = as_stats(stats)
    if stats is None:
        return "–"
    interval = stats.get("ci95")
    if interval is None or None in interval:
        return fmt(stats.get("mean"), digits)
    return f"{fmt(stats['mean'], digits)} [{fmt(interval[0], digits)}, {fmt(interval[1], digits)}]"


def verdict(stats: Mapping[str, Any] | float, target: float, higher_is_better: bool = True) -> str:
    """ "met" only when the 95 % interval clears ``target``, "missed" when it lies wholly on the wrong side,
    "not distinguishable at this n" otherwise, and "no interval" for a figure recorded without one (or with
    an undefined one, ``[null, null]``)."""
    interval = as_stats(stats).get("ci95")
    if interval is None or None in interval:
        return "no interval"
    low, high = interval
    if (low > target) if higher_is_better else (high < target):
        return "met"
    if (high < target) if higher_is_better else (low > target):
        return "missed"
    return "not distinguishable at this n"


#: a verdict cell for a figure recorded without an interval (a results file from before intervals)
NO_INTERVAL = "no interval (re-run pending)"


def verdict_cell(stats: Mapping[str, Any] | float, target: float, higher_is_better: bool = True) -> str:
    """:func:`verdict` for a table cell: :data:`NO_INTERVAL` where the figure was recorded without one."""
    found = verdict(stats, target, higher_is_better)
    return NO_INTERVAL if found == "no interval" else found


def vs_zero(stats: Mapping[str, Any] | float) -> str:
    """Where a paired difference lies against 0: "above 0", "below 0", "not distinguishable at this n", or
    "no interval"."""
    found = verdict(stats, 0.0)
    return {"met": "above 0", "missed": "below 0"}.get(found, found)


def refuse_short_publish(publish: bool, short: list[str]) -> None:
    """``--publish`` writes into the docs, so a run below the study's declared budget is refused.

    Args:
        publish: whether ``--publish`` was given.
        short: the budget settings the run falls short of (empty when it meets the budget).
    """
    if publish and short:
        raise InputError(None, f"--publish needs the issue's budget: {', '.join(short)}")
