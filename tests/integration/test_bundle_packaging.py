"""Every bundle as a model-zoo bundle, from a copy of its folder outside the repository: the specification's
metadata keys, measured ``eval_metrics`` naming their runs, the licences, and configs without repository
paths or inline logic. The classifier bundles' outputs are also checked with MONAI's ``verify_net_in_out``;
the GAN's and the detector's dict outputs are checked in their own files."""

from __future__ import annotations

import pytest
from bundle_support import BUNDLES, copy_bundle, packaging_problems, verify_network_io

CLASSIFIERS = ("abn_classification", "multiscale_abn_correction")


@pytest.mark.parametrize("name", sorted(p.name for p in BUNDLES.iterdir() if (p / "configs").is_dir()))
def test_packaging(name, outside):
    bundle = copy_bundle(name, outside / "elsewhere")
    assert packaging_problems(bundle) == []
    if name in CLASSIFIERS:
        verify_network_io(bundle)
