"""The library's layers only look down, and no module imports another module's private names.

Layers, lowest first: shared helpers; data; transforms (and detection targets); networks; losses; metrics and
visualize; engines, handlers and tracking; the applications; the experiments that run them. A module may
import from its own layer and the ones below, at module level or inside a function alike.

docs/architecture.md draws :data:`LAYERS` with :func:`layer_diagram`; tests/unit/test_architecture_doc.py
keeps that drawing current.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "monai_xai"

#: Layer of each top-level module or package of ``monai_xai``.
LAYERS = {
    "errors": 0,
    "flags": 0,
    "locking": 0,
    "runs": 0,
    "utils": 0,
    "data": 1,
    "detection": 2,
    "transforms": 2,
    "networks": 3,
    "losses": 4,
    "metrics": 5,
    "visualize": 5,
    "engines": 6,
    "handlers": 6,
    "tracking": 6,
    "active_learning": 7,
    "benchmarking": 7,
    "bundle": 7,
    "cli_args": 7,
    "crossval": 7,
    "deploy": 7,
    "distributed": 7,
    "editor": 7,
    "lr_finder": 7,
    "experiments": 8,
}

#: Module names per line of a layer's box in :func:`layer_diagram`.
_NAMES_PER_LINE = 4


def layer_diagram(layers: Mapping[str, int] = LAYERS) -> str:
    """The layers as a fenced Mermaid graph, highest first, each arrow pointing the way imports go.

    It lives beside the table it draws, so that a module placed in a layer here shows in the docs' diagram
    once it is regenerated (``python tests/unit/test_architecture_doc.py``).

    Args:
        layers: layer of each top-level module, as :data:`LAYERS`.
    """
    levels = sorted(set(layers.values()), reverse=True)
    lines = ["```mermaid", "graph TD"]
    for level in levels:
        names = sorted(name for name, at in layers.items() if at == level)
        rows = [", ".join(names[i : i + _NAMES_PER_LINE]) for i in range(0, len(names), _NAMES_PER_LINE)]
        lines.append(f'    L{level}["{level}: ' + ",<br>".join(rows) + '"]')
    lines.append("    " + " --> ".join(f"L{level}" for level in levels))
    return "\n".join([*lines, "```", ""])


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> list[tuple[str, str | None, int]]:
    """(imported module, imported name or None, line) of every import in the file, relative ones resolved."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, None, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            found += [(base, alias.name, node.lineno) for alias in node.names]
    return found


def _layer_of(module: str) -> int:
    top = module.split(".")[1]
    assert top in LAYERS, f"{module}: place monai_xai.{top} in a layer of tests/unit/test_layers.py"
    return LAYERS[top]


MODULES = sorted(p for p in PACKAGE.rglob("*.py") if p.parent != PACKAGE or p.name != "__init__.py")


@pytest.mark.parametrize("path", MODULES, ids=lambda p: _module_name(p))
def test_imports_look_down(path: Path) -> None:
    module = _module_name(path)
    layer = _layer_of(module)
    upward = [
        f"line {line}: {imported}"
        for imported, _, line in _imports(path)
        if imported.startswith("monai_xai.") and _layer_of(imported) > layer
    ]
    assert not upward, f"{module} (layer {layer}) imports higher layers: {upward}"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: _module_name(p))
def test_no_private_names_from_other_modules(path: Path) -> None:
    module = _module_name(path)
    private = [
        f"line {line}: {name} from {imported}"
        for imported, name, line in _imports(path)
        if imported.startswith("monai_xai")
        and imported != module
        and name is not None
        and name.startswith("_")
        and not name.startswith("__")
    ]
    assert not private, f"{module} imports private names of other modules: {private}"


def test_rules_catch_violations(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The checks see imports inside functions and relative imports."""
    package = tmp_path / "monai_xai"
    (package / "metrics").mkdir(parents=True)
    bad = package / "metrics" / "bad.py"
    bad.write_text(
        "def f():\n    from ..handlers.base import ReportHandler\n    from .other import _hidden\n"
    )
    monkeypatch.setitem(globals(), "PACKAGE", package)
    with pytest.raises(AssertionError, match="imports higher layers"):
        test_imports_look_down(bad)
    with pytest.raises(AssertionError, match="_hidden from monai_xai.metrics.other"):
        test_no_private_names_from_other_modules(bad)
