"""deletion_insertion.py: its per-image loop agrees with the batched metric; --quick prints the JSON last."""

from __future__ import annotations

import json

import pytest
import torch


@pytest.fixture
def one_thread():
    """One torch thread (restored after): the other pytest worker may hold the second core."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("baseline", ["zero", "mean", "blur"])
def test_loop_and_batched_give_the_same_curves(one_thread, baseline: str, load_script) -> None:
    from monai_xai.networks.nets import ResNetClassifier

    bench = load_script("benchmarks/deletion_insertion.py")
    torch.manual_seed(0)
    model = ResNetClassifier("resnet18", 2, 3, 3).eval()
    images, saliency = bench.make_inputs(2, 16, 3, seed=1)
    loop, batched = {}, {}
    for mode in bench.MODES:
        loop[mode] = bench.loop_deletion_insertion(model, images, saliency, mode, 5, baseline, 2.0)
        # Chunks of 4 split the 12 perturbed images across images and steps.
        batched[mode] = bench.batched_deletion_insertion(
            model, images, saliency, mode, 5, baseline, 2.0, batch_size=4
        )
        assert loop[mode][1].shape == (2, 6) and torch.equal(loop[mode][2], batched[mode][2])
    assert bench.max_abs_diff(loop, batched) <= 1e-5
    # The two modes differ, so the comparison would notice swapped or shifted curves.
    assert bench.max_abs_diff({"deletion": loop["deletion"]}, {"deletion": batched["insertion"]}) > 1e-3


def test_quick_run_prints_table_and_json_last(one_thread, capsys, load_script) -> None:
    bench = load_script("benchmarks/deletion_insertion.py")
    assert bench.main(["--quick", "--threads", "1"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("deletion_insertion: resnet18, 2 images of 32x32")
    result = json.loads(lines[-1])
    assert {"speedup", "max_abs_diff", "target_speedup", "target_met"} <= set(result)
    assert result["target_speedup"] == 10 and result["speedup"] > 0
    assert result["max_abs_diff"] <= 1e-5 and result["targets_agree"]
    assert result["target_met"] == (result["speedup"] >= 10 and result["max_abs_diff"] <= 1e-5)
    assert result["median_s"]["loop"] / result["median_s"]["batched"] == pytest.approx(
        result["speedup"], rel=1e-2
    )
    assert result["settings"]["threads"] == 1 and result["settings"]["loop_forwards"] == 2 * 2 * 6
