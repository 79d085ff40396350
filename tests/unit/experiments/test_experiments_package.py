"""The experiments package's shared parts: results written only where asked, one summary rule, figures with
their intervals and verdicts, README blocks that all render and are up to date."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from monai_xai.errors import InputError
from monai_xai.experiments import fmt_ci, mean_sd, verdict, write_results
from monai_xai.experiments.readme import BLOCK, blocks, update
from monai_xai.experiments.registry import EXPERIMENTS, experiment
from monai_xai.experiments.results import REPO, finite, rounded


def test_results_go_into_docs_only_when_published(tmp_path: Path) -> None:
    docs = tmp_path / "bundles" / "x" / "docs" / "results" / "r.json"
    with pytest.raises(InputError, match="only with --publish"):
        write_results({"a": 1}, docs)
    assert not docs.exists()
    write_results({"a": 1}, docs, publish=True)
    assert json.loads(docs.read_text()) == {"a": 1}
    elsewhere = write_results({"b": [1.5]}, tmp_path / "runs" / "r.json")
    assert json.loads(elsewhere.read_text()) == {"b": [1.5]} and not list(elsewhere.parent.glob(".*tmp"))
    with pytest.raises(ValueError):  # NaN is not JSON: a missing figure is null
        write_results({"c": math.nan}, tmp_path / "nan.json")
    assert not (tmp_path / "nan.json").exists()


def test_mean_sd_counts_missing_values_instead_of_hiding_them() -> None:
    assert mean_sd([0.5, None, math.nan, 0.7]) == {
        "mean": pytest.approx(0.6),
        "sd": pytest.approx(0.1414, abs=1e-4),
        "n": 2,
        "missing": 2,
    }
    assert mean_sd([0.5]) == {"mean": 0.5, "sd": None, "n": 1, "missing": 0}
    assert mean_sd([]) == {"mean": None, "sd": None, "n": 0, "missing": 0}


def test_undefined_figures_become_null_and_metadata_figures_are_rounded() -> None:
    assert finite({"a": math.nan, "b": [1.0, math.inf], "c": "x"}) == {"a": None, "b": [1.0, None], "c": "x"}
    assert rounded({"auc": 0.123456, "n": 3, "run": "r"}) == {"auc": 0.1235, "n": 3, "run": "r"}


def test_figures_print_with_intervals_and_are_met_only_when_the_interval_clears() -> None:
    stats = {"mean": 0.8123, "ci95": [0.75, 0.86]}
    assert fmt_ci(stats) == "0.812 [0.750, 0.860]" and fmt_ci({"mean": 0.5}) == fmt_ci(0.5) == "0.500"
    assert fmt_ci(None) == "–" and verdict(0.95, 0.9) == "no interval"  # bare figures: files before intervals
    assert verdict(stats, 0.7) == "met"
    assert verdict(stats, 0.8) == "not distinguishable at this n"
    assert verdict(stats, 0.9) == "missed"
    assert verdict({"mean": 0.1, "ci95": [0.05, 0.2]}, 0.3, higher_is_better=False) == "met"
    assert verdict({"mean": 0.95}, 0.9) == verdict({"mean": None, "ci95": [None, None]}, 0.9) == "no interval"


def test_every_readme_block_has_one_renderer_and_the_docs_are_up_to_date() -> None:
    known = blocks()
    readmes = [REPO / "README.md", *REPO.glob("bundles/*/docs/README.md")]
    used = {m["name"] for readme in readmes for m in BLOCK.finditer(readme.read_text())}
    assert used <= set(known), f"blocks without a renderer: {used - set(known)}"
    single = [block for name, block in known.items() if name in used and block.results is not None]
    assert all(block.path.is_file() for block in single)
    stale = update(check=True)
    assert stale == [], f"out of date (run: python -m monai_xai.experiments render): {stale}"


def test_every_experiment_imports_light_and_has_a_docstring() -> None:
    for name in EXPERIMENTS:
        module = experiment(name)
        assert module.__doc__ and hasattr(module, "__all__"), name
    code = "import sys, monai_xai.experiments.readme as r; r.blocks(); print('torch' in sys.modules)"
    found = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert found.stdout.strip() == "False", "rendering the READMEs must not import torch"


def test_command_line_lists_renders_and_names_unknown_experiments() -> None:
    run = [sys.executable, "-m", "monai_xai.experiments"]
    listed = subprocess.run([*run, "list"], capture_output=True, text=True, check=True).stdout
    assert "busi_crossval" in listed and "busi_binary" in listed
    unknown = subprocess.run([*run, "nope"], capture_output=True, text=True)
    assert unknown.returncode == 1 and "nope: no such experiment" in unknown.stderr.strip().splitlines()[-1]
    assert subprocess.run([*run, "render", "--check"], capture_output=True, text=True).returncode == 0
