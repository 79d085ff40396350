"""Bundle configs stay declarative, as the model zoo's: few ``$`` expressions per file, each short.

Logic belongs in named library functions that a config instantiates as a ``_target_`` component (MONAI calls
functions too), and optional list items are ``_disabled_`` components.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[3]
CONFIGS = sorted((REPO / "bundles").glob("*/configs/*.json"))
#: at most this many ``$`` strings (expressions and imports) in one config file
MAX_EXPRESSIONS = 25
#: at most this many characters in one ``$`` string
MAX_LENGTH = 120


def expressions(node: Any) -> Iterator[str]:
    """Every string of a loaded config that MONAI evaluates (``"$..."``), imports included."""
    if isinstance(node, str):
        if node.startswith("$"):
            yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from expressions(value)
    elif isinstance(node, list):
        for value in node:
            yield from expressions(value)


def _name(path: Path) -> str:
    return str(path.relative_to(REPO))


def test_expressions_are_found_in_nested_configs():
    config = {"imports": ["$import os"], "a": {"b": ["@x", "$@x + 1"]}, "c": "text $ inside", "d": 1}
    assert list(expressions(config)) == ["$import os", "$@x + 1"]


@pytest.mark.parametrize("config", CONFIGS, ids=_name)
def test_few_expressions_per_config(config: Path):
    found = list(expressions(json.loads(config.read_text())))
    assert len(found) <= MAX_EXPRESSIONS, (
        f"{_name(config)}: {len(found)} expressions (at most {MAX_EXPRESSIONS})"
    )


@pytest.mark.parametrize("config", CONFIGS, ids=_name)
def test_expressions_are_short(config: Path):
    long = [e for e in expressions(json.loads(config.read_text())) if len(e) > MAX_LENGTH]
    assert not long, f"{_name(config)}: expressions over {MAX_LENGTH} characters: {long}"


@pytest.mark.parametrize("config", CONFIGS, ids=_name)
def test_no_config_calls_when(config: Path):
    """Optional items are ``_disabled_`` components, which MONAI's resolver drops from their list."""
    called = [e for e in expressions(json.loads(config.read_text())) if "bundle.when(" in e]
    assert not called, f"{_name(config)}: {called}"


def test_disabled_items_drop_out_of_their_list():
    """What the configs rely on: MONAI resolves ``_disabled_`` (a literal, a reference or an expression) and
    leaves a disabled component out of the list that holds it; a reference to one resolves to None."""
    from monai.bundle import ConfigParser

    config = {
        "patience": None,
        "not_rank0": False,
        "handlers": [
            {"_target_": "builtins.dict", "a": 1},
            {"_target_": "builtins.dict", "b": 2, "_disabled_": "$@patience is None"},
            {"_target_": "builtins.dict", "c": 3, "_disabled_": "@not_rank0"},
            {"_target_": "builtins.dict", "d": 4, "_disabled_": True},
        ],
    }
    assert ConfigParser(config).get_parsed_content("handlers") == [{"a": 1}, {"c": 3}]
    parser = ConfigParser(config)
    parser.update({"patience": 3, "not_rank0": True})
    assert parser.get_parsed_content("handlers") == [{"a": 1}, {"b": 2}]
