"""docs/architecture.md's layer diagram is the one that the layer table of tests/unit/test_layers.py gives.

The diagram sits between ``<!-- layers -->`` and ``<!-- /layers -->``. After a change of the table,
``python tests/unit/test_architecture_doc.py`` rewrites it.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from test_layers import layer_diagram

DOC = Path(__file__).resolve().parents[2] / "docs" / "architecture.md"
BLOCK = re.compile(r"(<!-- layers -->\n)(.*?)(<!-- /layers -->)", re.S)
REGENERATE = "python tests/unit/test_architecture_doc.py"


def with_current_diagram(text: str, source: str) -> str:
    """``text`` with its layer diagram drawn afresh from the layer table.

    Args:
        text: markdown holding one layer-diagram block.
        source: the file ``text`` came from, for the error.
    """
    if not BLOCK.search(text):
        raise AssertionError(f"{source}: no <!-- layers --> ... <!-- /layers --> block for the layer diagram")
    return BLOCK.sub(lambda match: match[1] + layer_diagram() + match[3], text, count=1)


def check_diagram(text: str, source: str) -> None:
    """Fail, saying how to regenerate it, when the diagram in ``text`` is not the table's.

    Args:
        text: markdown holding one layer-diagram block.
        source: the file ``text`` came from, for the error.
    """
    assert with_current_diagram(text, source) == text, (
        f"{source}: its layer diagram differs from the layer table (LAYERS in tests/unit/test_layers.py); "
        f"regenerate it with `{REGENERATE}`"
    )


def test_doc_diagram_is_current() -> None:
    check_diagram(DOC.read_text(), "docs/architecture.md")


def test_check_catches_stale_and_missing_diagram() -> None:
    current = f"# Doc\n\n<!-- layers -->\n{layer_diagram()}<!-- /layers -->\n"
    check_diagram(current, "doc.md")
    with pytest.raises(AssertionError, match="doc.md: its layer diagram differs .* regenerate it with"):
        check_diagram(current.replace("experiments", "studies"), "doc.md")
    with pytest.raises(AssertionError, match="doc.md: no <!-- layers -->"):
        check_diagram("# Doc\n", "doc.md")


def test_diagram_draws_layers_highest_first() -> None:
    diagram = layer_diagram({"b": 1, "a": 1, "c": 0, "d": 2, "e": 2, "f": 2, "g": 2, "h": 2})
    assert diagram == (
        "```mermaid\ngraph TD\n"
        '    L2["2: d, e, f, g,<br>h"]\n'
        '    L1["1: a, b"]\n'
        '    L0["0: c"]\n'
        "    L2 --> L1 --> L0\n"
        "```\n"
    )


if __name__ == "__main__":
    DOC.write_text(with_current_diagram(DOC.read_text(), str(DOC)))
    print(f"regenerated the layer diagram in {DOC}")
