"""``monai-xai-experiments`` (or ``python -m monai_xai.experiments``): collect, publish and render results.

monai-xai-experiments list                    # the experiments and the README blocks they render
monai-xai-experiments render [--check]        # regenerate the README tables and metadata eval_metrics
monai-xai-experiments <experiment> --help     # that experiment's own command line (collect, run)
"""

from __future__ import annotations

import sys

from monai_xai.errors import InputError

from .readme import update
from .registry import EXPERIMENTS, experiment

__all__ = ["main"]


def _render(argv: list[str]) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="monai-xai-experiments render", description=update.__doc__)
    parser.add_argument("--check", action="store_true", help="report out-of-date files instead of writing")
    args = parser.parse_args(argv)
    from .results import REPO

    stale = update(check=args.check)
    for path in stale:
        print(f"{'out of date' if args.check else 'updated'}: {path.relative_to(REPO)}")
    return 1 if stale and args.check else 0


def _list() -> int:
    for name in EXPERIMENTS:
        module = experiment(name)
        blocks = ", ".join(getattr(module, "BLOCKS", {})) or "-"
        summary = (module.__doc__ or "").strip().splitlines()[0] if module.__doc__ else ""
        print(f"{name:24s} blocks: {blocks}\n{'':24s} {summary}")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__.strip())
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    try:
        if command == "render":
            return _render(rest)
        if command == "list":
            return _list()
        module = experiment(command)
        if not hasattr(module, "main"):
            raise InputError(None, f"{command}: this experiment has no command line (it is rendered only)")
        return int(module.main(rest) or 0)
    except InputError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
