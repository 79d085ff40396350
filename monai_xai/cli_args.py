"""Command-line arguments of the runners that drive bundles (cross-validation, active-learning sweeps)."""

from __future__ import annotations

import ast
import json
from collections.abc import Sequence

__all__ = ["bundle_overrides", "config_file_list"]


def _value(text: str):
    try:
        return json.loads(text)
    except ValueError:
        return text


def config_file_list(tokens: Sequence[str]) -> list[str]:
    """``a.json b.json`` or the MONAI-style ``"['a.json','b.json']"``."""
    files: list[str] = []
    for token in tokens:
        files += ast.literal_eval(token) if token.lstrip().startswith("[") else [token]
    return files


def bundle_overrides(extra: Sequence[str]) -> dict:
    """``--key value`` / ``--key=value`` pairs, values parsed as JSON when they are JSON."""
    pairs, i = {}, 0
    while i < len(extra):
        token = extra[i]
        if not token.startswith("--"):
            raise SystemExit(f"expected --key value, got {token!r}")
        if "=" in token:
            key, value = token[2:].split("=", 1)
            i += 1
        elif i + 1 < len(extra):
            key, value = token[2:], extra[i + 1]
            i += 2
        else:
            raise SystemExit(f"{token} has no value")
        pairs[key] = _value(value)
    return pairs
