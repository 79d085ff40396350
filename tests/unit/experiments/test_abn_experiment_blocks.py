"""The ABN bundle's experiment modules render the results files committed today, and the README tables are
what they render (the check `python -m monai_xai.experiments render --check` makes, for these blocks)."""

from __future__ import annotations

import importlib
import json

import pytest

from monai_xai.experiments.readme import BLOCK
from monai_xai.experiments.results import REPO

MODULES = (
    "busi_decisions",
    "imbalanced_demo",
    "demo_shortcut",
    "precision_busi",
    "medmnist",
    "train_throughput",
    "explain_latency",
)
BLOCKS = {
    name: block
    for module in MODULES
    for name, block in importlib.import_module(f"monai_xai.experiments.{module}").BLOCKS.items()
}


@pytest.mark.parametrize("name", sorted(BLOCKS))
def test_block_renders_its_committed_results_file(name):
    block = BLOCKS[name]
    report = json.loads(block.path.read_text())
    table = block.render(report)
    assert table.endswith("\n") and table.count("\n") > 0
    if '"ci95"' not in block.path.read_text():  # a target is met only from an interval
        assert "| met |" not in table and ": met |" not in table


def test_readme_tables_match_their_results_files():
    found, stale = set(), []
    for readme in sorted(REPO.glob("bundles/*/docs/README.md")):
        for match in BLOCK.finditer(readme.read_text()):
            block = BLOCKS.get(match["name"])
            if block is None:
                continue
            found.add(match["name"])
            if block.render(json.loads(block.path.read_text())) != match["body"]:
                stale.append(f"{readme.parent.parent.name}: {match['name']}")
    assert not stale, f"out of date (python -m monai_xai.experiments render): {stale}"
    assert found == set(BLOCKS), f"blocks no README shows: {set(BLOCKS) - found}"
