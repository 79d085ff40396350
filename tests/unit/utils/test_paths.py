"""join_path and join_name: the folder, file and run names the bundle configs build as components."""

from __future__ import annotations

import os

import pytest
from monai.bundle import ConfigParser

from monai_xai.utils.paths import join_name, join_path

MODULE = "monai_xai.utils.paths"


def test_join_path_joins_folders_and_names() -> None:
    assert join_path(["runs", "demo", "checkpoints"]) == os.path.join("runs", "demo", "checkpoints")
    assert join_path(["/abs", "x.pt"]) == "/abs/x.pt"
    with pytest.raises(ValueError, match="at least one part"):
        join_path([])


@pytest.mark.parametrize(
    ("parts", "kwargs", "expected"),
    [
        (["gan", None], {}, "gan"),
        (["gan", "guided"], {}, "gan_guided"),
        (["gan", ""], {}, "gan"),
        (["model", None], {"suffix": ".pt"}, "model.pt"),
        (["model", "guided"], {"suffix": ".pt"}, "model_guided.pt"),
        (["demo", "lsgan", ["ndis", 5], ["cyc", 10.0]], {}, "demo_lsgan_ndis5_cyc10.0"),
        (["busi", "resnet18", ["fold", 0]], {}, "busi_resnet18_fold0"),
        (["a", "b"], {"sep": "-"}, "a-b"),
    ],
)
def test_join_name_leaves_out_unset_parts_and_keeps_labels(parts, kwargs, expected) -> None:
    assert join_name(parts, **kwargs) == expected


def test_config_components_resolve_references() -> None:
    """As a config uses them: references inside ``parts`` are resolved before the call."""
    parser = ConfigParser(
        {
            "root": "/data",
            "variant": None,
            "name": {"_target_": f"{MODULE}.join_name", "parts": ["gan", "@variant"]},
            "folder": {"_target_": f"{MODULE}.join_path", "parts": ["@root", "@name", "checkpoints"]},
        }
    )
    assert parser.get_parsed_content("folder") == "/data/gan/checkpoints"
    parser["variant"] = "guided"
    assert parser.get_parsed_content("folder", lazy=False) == "/data/gan_guided/checkpoints"
