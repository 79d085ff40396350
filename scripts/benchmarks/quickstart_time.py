"""The first run as a new user meets it: ``bash scripts/quickstart.sh`` in a fresh clone, empty package cache.

Clones the repository's committed ``HEAD`` into a temporary folder, points pip at an empty cache
(``PIP_CACHE_DIR``; the machine's own package indexes stay as they are, as on a user's machine the public
index does), runs the quickstart there with a clean environment (no active venv, no ``PYTHONPATH``) and times
it from start to summary. The time of every step (the install, data, each arm's training, evaluation and
explanation) comes from the quickstart's ``summary.json`` (the install's from ``scripts/_venv.sh``'s
``[setup] installed in N s`` line when the summary has none), whose verdict (gated ABN test accuracy >= 0.90,
plain ResNet18 <= 0.65) says whether the shortened first run still shows what the demo is for.

The last line printed is one JSON object with at least ``quickstart_s``, ``install_s``, ``target_s`` and
``verdict_kept``; ``--out`` writes the whole record, ``--publish`` writes
``bundles/abn_classification/docs/results/quickstart_time.json``, rendered by
:mod:`monai_xai.experiments.quickstart_time`. Uncommitted changes are not in the clone: commit first.

    python scripts/benchmarks/quickstart_time.py --out /tmp/quickstart_time.json
    python scripts/benchmarks/quickstart_time.py --publish
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from monai_xai.benchmarking import environment, load_average, warn_if_busy
from monai_xai.experiments.results import add_output_arguments, output_path, write_results

REPO = Path(__file__).resolve().parents[2]
PUBLISHED = "bundles/abn_classification/docs/results/quickstart_time.json"
TARGET_S = 300.0
#: the line ``scripts/_venv.sh`` prints when it has installed the project
INSTALLED = re.compile(r"\[setup\] installed in (\d+) s")
#: the caller's settings (its Python, the quickstart's own variables) that a new user's shell lacks
CALLER_ONLY = (
    "VIRTUAL_ENV",
    "PYTHONPATH",
    "PYTHONHOME",
    "PIP_CACHE_DIR",
    "TQDM_DISABLE",
    "BUDGET",
    "EPOCHS",
    "DATA",
    "OUT",
    "QUICKSTART_T0",
    "QUICKSTART_T1",
)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--keep", action="store_true", help="keep the clone (its path is printed)")
    parser.add_argument(
        "--quickstart-args", default="", help="extra arguments for scripts/quickstart.sh (a smoke run's)"
    )
    add_output_arguments(parser, PUBLISHED)
    return parser.parse_args(argv)


def clean_environment(pip_cache: Path) -> dict[str, str]:
    """This process's environment as a new user's shell has it: no venv on PATH, an empty pip cache."""
    env = {key: value for key, value in os.environ.items() if key not in CALLER_ONLY}
    venv = os.environ.get("VIRTUAL_ENV")
    paths = [p for p in env.get("PATH", "").split(os.pathsep) if not (venv and p.startswith(venv))]
    paths = [p for p in paths if not p.startswith(str(REPO))]
    env["PATH"] = os.pathsep.join(paths)
    env["PIP_CACHE_DIR"] = str(pip_cache)
    return env


def dirty_files() -> list[str]:
    """Tracked files with uncommitted changes (they are not in the clone)."""
    out = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO, capture_output=True, text=True
    )
    return [line[3:] for line in out.stdout.splitlines()]


def arm_accuracy(clone: Path, arm: str) -> dict:
    """An arm's test accuracy with its stratified bootstrap 95 % interval, from its ``predictions.csv``."""
    import csv

    import numpy as np

    from monai_xai.metrics import accuracy, bootstrap_ci

    with open(clone / "runs" / "quickstart" / arm / "eval_test" / "predictions.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    labels = np.array([int(row["label"]) for row in rows])
    preds = np.array([int(row["pred"]) for row in rows])
    return bootstrap_ci(accuracy, labels, preds, stratify=0).to_dict()


def verdict_by_interval(verdict: dict, accuracy: dict) -> bool | None:
    """Whether every bound of the verdict is cleared by the whole interval of the arm's test accuracy
    (the summary's verdict compares the point estimates); None where an interval is undefined."""
    kept = True
    for arm, check in verdict["checks"].items():
        interval = accuracy[arm]["ci95"]
        if interval is None or None in interval:
            return None
        relation, bound = check["bound"].split()
        kept &= interval[0] >= float(bound) if relation == ">=" else interval[1] <= float(bound)
    return kept


def run_quickstart(workdir: Path, extra: str) -> dict:
    """Clone, run the quickstart with an empty package cache, and return what it took and showed."""
    clone = workdir / "monai-xai"
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=clone, capture_output=True, text=True).stdout
    pip_cache = workdir / "pip-cache"
    pip_cache.mkdir()
    log = workdir / "quickstart.log"
    command = ["bash", "scripts/quickstart.sh", *extra.split()]
    start = time.perf_counter()
    with open(log, "w") as handle:
        proc = subprocess.run(
            command, cwd=clone, env=clean_environment(pip_cache), stdout=handle, stderr=subprocess.STDOUT
        )
    elapsed = time.perf_counter() - start
    text = log.read_text()
    if proc.returncode != 0:
        raise SystemExit(
            f"{log}: the quickstart failed (exit {proc.returncode}); its last lines:\n{text[-3000:]}"
        )
    summary = json.loads((clone / "runs" / "quickstart" / "summary.json").read_text())
    timing = summary.get("timing", {})
    install_s = timing.get("install_s")
    if install_s is None:
        installed = INSTALLED.search(text)
        install_s = int(installed.group(1)) if installed else None
    verdict = summary["verdict"]
    accuracy = {arm: arm_accuracy(clone, arm) for arm in summary["arms"]}
    return {
        "quickstart_s": round(elapsed, 1),
        "install_s": install_s,
        "after_install_s": None if install_s is None else round(elapsed - install_s, 1),
        "target_s": TARGET_S,
        "target_met": elapsed <= TARGET_S,
        "verdict_kept": bool(verdict["holds"]),
        "verdict_kept_by_interval": verdict_by_interval(verdict, accuracy),
        "verdict": verdict,
        "accuracy": accuracy,
        "budget": summary.get("budget"),
        "timing": timing,
        "commit": commit.strip(),
        "command": " ".join(command),
    }


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    path = output_path(args, PUBLISHED)
    dirty = dirty_files()
    if dirty:
        print(f"warning: uncommitted changes are not measured: {', '.join(dirty[:8])}", file=sys.stderr)
    load_start = load_average()
    warn_if_busy(load_start, "and make the quickstart slower than on an idle machine")
    workdir = Path(tempfile.mkdtemp(prefix="quickstart_time."))
    try:
        record = run_quickstart(workdir, args.quickstart_args)
    finally:
        if args.keep:
            print(f"kept {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    record["environment"] = environment(load_start, load_average())
    write_results(record, path, args.publish)
    print(
        f"quickstart on a fresh clone with an empty package cache: {record['quickstart_s']:.0f} s "
        f"(install {record['install_s']} s; target <= {TARGET_S:.0f} s: "
        f"{'met' if record['target_met'] else 'missed'}); verdict "
        f"{'kept' if record['verdict_kept'] else 'NOT kept'} (accuracy {record['accuracy']})"
    )
    headline = (
        "quickstart_s",
        "install_s",
        "after_install_s",
        "target_s",
        "target_met",
        "verdict_kept",
        "verdict_kept_by_interval",
    )
    print(json.dumps({key: record[key] for key in headline}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
