"""Regenerate the measured-results tables of the READMEs (the repository's and the bundles'), and the
metadata ``eval_metrics`` that restate them, from the results files the experiments wrote.

A table lives in a README between ``<!-- results:NAME -->`` and ``<!-- /results:NAME -->``; NAME is a
block of one experiment module (its ``BLOCKS``). Tables are never typed by hand. A figure a block links
(``figures/*.png``) must exist beside the README, so that no run folder is needed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

from .registry import experiments
from .results import REPO, Block

__all__ = ["blocks", "render_metadata", "render_readme", "update"]

#: a link or image target in rendered markdown that is a file beside the README (not a web address)
LINK = re.compile(r"\]\((?!https?://)([^)\s]+)\)")
BLOCK = re.compile(r"(<!-- results:(?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- /results:(?P=name) -->)", re.S)


def blocks() -> dict[str, Block]:
    """Every README block of every experiment; a name claimed twice is an error."""
    found: dict[str, Block] = {}
    for name, module in experiments().items():
        for block_name, block in getattr(module, "BLOCKS", {}).items():
            if block_name in found:
                raise RuntimeError(f"results block {block_name!r} is defined twice (again by {name})")
            found[block_name] = block
    return found


def render_readme(readme: Path, known: dict[str, Block] | None = None) -> str:
    """``readme``'s text with every results block regenerated from its results file."""
    known = blocks() if known is None else known
    text = readme.read_text()

    def replace(match: re.Match) -> str:
        name = match["name"]
        if name not in known:
            raise SystemExit(f"{readme}: no renderer for results block {name!r} (known: {', '.join(known)})")
        block = known[name]
        if block.results is not None and not block.path.is_file():
            raise SystemExit(f"{readme}: results block {name!r} needs {block.results}, which does not exist")
        table = block.render(block.content())
        missing = [link for link in LINK.findall(table) if not (readme.parent / link).is_file()]
        if missing:
            raise SystemExit(
                f"{block.results or name}: results block {name!r} links {', '.join(missing)}, missing beside "
                f"{readme}"
            )
        return match.group(1) + table + match.group(4)

    return BLOCK.sub(replace, text)


def _eval_metrics() -> dict[str, Callable[[dict], dict[str, dict]]]:
    """Results file (relative to the repository) -> function deriving metadata entries from it."""
    found: dict[str, Callable[[dict], dict[str, dict]]] = {}
    for module in experiments().values():
        found.update(getattr(module, "EVAL_METRICS", {}))
    return found


def render_metadata(metadata: Path) -> str:
    """``metadata``'s text with the ``eval_metrics`` entries derived from its bundle's results files."""
    text = metadata.read_text()
    bundle = metadata.parent.parent.relative_to(REPO).as_posix() + "/"
    derived = {path: fn for path, fn in _eval_metrics().items() if path.startswith(bundle)}
    if not derived:
        return text
    meta = json.loads(text)
    for path, eval_metrics in sorted(derived.items()):
        meta["eval_metrics"].update(eval_metrics(json.loads((REPO / path).read_text())))
    return json.dumps(meta, indent=4, ensure_ascii=False) + "\n"


def update(check: bool = False) -> list[Path]:
    """Regenerate every bundle README and metadata; the stale ones (written unless ``check``)."""
    known = blocks()
    stale = []
    readmes = [REPO / "README.md", *sorted(REPO.glob("bundles/*/docs/README.md"))]
    targets: list[tuple[Path, Callable[[Path], str]]] = [
        (readme, lambda path: render_readme(path, known)) for readme in readmes
    ]
    targets += [(meta, render_metadata) for meta in sorted(REPO.glob("bundles/*/configs/metadata.json"))]
    for path, render in targets:
        new = render(path)
        if new != path.read_text():
            stale.append(path)
            if not check:
                path.write_text(new)
    return stale
