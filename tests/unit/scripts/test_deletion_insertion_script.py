"""deletion_insertion.py: the loop, the batched metric and Quantus agree; --quick prints the JSON last and
writes it through --out; monai_xai.experiments.deletion_insertion renders it."""

from __future__ import annotations

import importlib.util
import json

import pytest
import torch

from monai_xai.experiments import deletion_insertion


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


def test_quick_run_prints_table_and_json_last(one_thread, capsys, tmp_path, load_script) -> None:
    bench = load_script("benchmarks/deletion_insertion.py")
    assert bench.main(["--quick", "--threads", "1", "--out", str(tmp_path / "di.json")]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("deletion_insertion: resnet18, 2 images of 32x32")
    result = json.loads(lines[-1])
    assert {"speedup", "speedup_ceiling", "max_abs_diff", "target_speedup", "target_met"} <= set(result)
    assert result["speedup"] > 0 and result["target_speedup_of_ceiling"] == 0.9
    assert result["target_speedup"] == pytest.approx(0.9 * result["speedup_ceiling"], abs=2e-3)
    assert result["max_abs_diff"] <= 1e-5 and result["agreement_met"] and result["targets_agree"]
    met = [key for key in result if key.endswith("_met") and key != "target_met"]
    assert result["target_met"] == all(result[key] for key in met)
    assert result["median_s"]["loop"] / result["median_s"]["batched"] == pytest.approx(
        result["speedup"], rel=1e-2
    )
    assert result["settings"]["threads"] == 1 and result["settings"]["loop_forwards"] == 2 * 2 * 6
    quantus_keys = {"speedup_vs_quantus", "max_abs_diff_vs_quantus", "speedup_vs_quantus_met"}
    if importlib.util.find_spec("quantus") is None:
        assert result["quantus_skipped"].startswith("quantus is not installed")
        assert not quantus_keys & set(result) and "Quantus: skipped" in lines[-3]
    else:
        assert quantus_keys <= set(result) and "quantus_skipped" not in result
        assert result["max_abs_diff_vs_quantus"] <= 1e-4 and result["agreement_vs_quantus_met"]
    assert json.loads((tmp_path / "di.json").read_text()) == result
    table = deletion_insertion.render(result)
    assert f"| `speedup` | {result['speedup']:.2f}x | ≥ 0.9 x `speedup_ceiling`" in table
    assert ("Quantus skipped" in table) == ("quantus_skipped" in result)


def test_the_results_go_to_out_or_with_publish_to_the_docs(load_script) -> None:
    bench = load_script("benchmarks/deletion_insertion.py")
    assert bench.parse_args(["--quick"]).results is None  # printed only
    published = bench.parse_args(["--quick", "--publish"])
    assert published.results == deletion_insertion.BLOCKS["deletion_insertion"].path and published.publish


def test_the_committed_results_file_renders() -> None:
    block = deletion_insertion.BLOCKS["deletion_insertion"]
    report = json.loads(block.path.read_text())
    table = block.render(report)
    batched, loop = report["median_s"]["batched"], report["median_s"]["loop"]
    ours = "| **monai_xai: optimised copy + `deletion_insertion`** |"
    assert f"{ours} {batched:.3f} s | {loop / batched:.2f}x |" in table
    mean, (low, high) = (
        report["intervals"]["speedup_vs_quantus"]["mean"],
        report["intervals"]["speedup_vs_quantus"]["ci95"],
    )
    assert f"| `speedup_vs_quantus` | {mean:.2f} [{low:.2f}, {high:.2f}]x" in table
    assert "a speed-up target is met only where its interval clears it" in table


@pytest.mark.parametrize(("channels", "size", "steps"), [(1, 16, 4), (3, 12, 6)])
def test_quantus_pixel_flipping_gives_our_deletion_curve(
    one_thread, channels: int, size: int, steps: int, load_script
) -> None:
    pytest.importorskip("quantus", reason="quantus is not installed (pip install 'monai-xai[bench]')")
    import torch.nn.functional as F

    from monai_xai.networks.nets import ResNetClassifier

    bench = load_script("benchmarks/deletion_insertion.py")
    torch.manual_seed(0)
    model = ResNetClassifier("resnet18", 2, channels, 3).eval()
    images, _ = bench.make_inputs(2, size, channels, seed=1)
    # Blocks of equal saliency that the steps cut through: Quantus's unstable sort must not reorder them.
    coarse = torch.rand(2, 1, 3, 3, generator=torch.Generator().manual_seed(2))
    saliency = F.interpolate(coarse, size=(size, size), mode="nearest")
    ours = bench.in_quantus_terms(
        bench.loop_deletion_insertion(model, images, saliency, "deletion", steps, "zero")
    )
    quantus_result = bench.quantus_pixel_flipping(model, images, saliency, steps)
    assert quantus_result[1].shape == (2, steps) and torch.equal(quantus_result[2], ours[2])
    assert bench.max_abs_diff({"deletion": ours}, {"deletion": quantus_result}) <= 1e-4
    # Its AUC is the trapezoid with dx=1 over points 1..steps, not ours over 0..steps with x in [0, 1].
    full = bench.loop_deletion_insertion(model, images, saliency, "deletion", steps, "zero")
    assert (quantus_result[0] - full[0]).abs().max() > 1e-2


def test_quantus_settings_it_cannot_reproduce_are_refused(load_script) -> None:
    bench = load_script("benchmarks/deletion_insertion.py")
    assert bench.parse_args(["--quick", "--no-quantus"]).quantus_skipped == "--no-quantus"
    if importlib.util.find_spec("quantus") is not None:
        blur = bench.parse_args(["--quick", "--baseline", "blur"]).quantus_skipped
        rgb = bench.parse_args(["--quick", "--in-channels", "3"]).quantus_skipped  # 4 steps, 3 channels
        assert "only the zero baseline is the same" in blur and "multiple of the channels" in rgb
    with pytest.raises(SystemExit):
        bench.parse_args(["--quick", "--quantus", "--steps", "3"])  # 1024 pixels in 3 steps
