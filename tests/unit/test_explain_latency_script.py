"""explain_latency.py: --quick prints the JSON line last; its Grad-CAM++ baselines give exact maps."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "benchmarks" / "explain_latency.py"
REQUIRED = ("explain_ratio_b1", "explain_ratio_b16", "train_step_ratio")


def test_quick_run_prints_json_last(tmp_path, load_script) -> None:
    # One thread: under pytest -n 2 the other worker holds the second core, and spin-waiting OpenMP threads
    # on a shared core make every step many times slower.
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--out", str(tmp_path / "latency.json")],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=SCRIPT.parents[2],
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    for key in REQUIRED:
        assert isinstance(result[key], float) and result[key] > 0, key
    assert all(v > 0 for v in result["medians_ms"].values())
    assert result["targets"] == {"explain_ratio_max": 0.5, "train_step_ratio_max": 1.3}
    assert result["explain_ratio_b1_met"] == (result["explain_ratio_b1"] <= 0.5)
    assert result["train_step_ratio_met"] == (result["train_step_ratio"] <= 1.3)
    # All ABN variants are timed in the same rounds; the others' keys carry their names.
    assert result["settings"]["architectures"] == ["abn", "abn_narrow", "abn_compact"]
    for variant in ("abn_narrow", "abn_compact"):
        for key in REQUIRED:
            assert result[f"{key}_{variant}"] > 0, key
        variant_met = [v for k, v in result.items() if k.endswith(f"_{variant}_met")]
        assert len(variant_met) == 3 and result["all_targets_met"][variant] == all(variant_met)
    assert result["settings"]["batch_sizes"] == [1, 16] and result["settings"]["device"] == "cpu"
    assert json.loads((tmp_path / "latency.json").read_text()) == result
    table = load_script("render_results.py").explain_latency(result)
    b1, ratio = result["medians_ms"]["explain_b1_abn_narrow"], result["explain_ratio_b1_abn_narrow"]
    bold = "**" if ratio <= 0.5 else ""
    assert f"| {b1:.1f} ms | {bold}{ratio:.2f}{bold} |" in table


@pytest.fixture
def one_thread():
    """Run in-process torch work on one thread (restored after): spin-waiting OpenMP threads on a core that
    another pytest worker holds can make each op tens of times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.filterwarnings("ignore:Full backward hook is firing")
def test_batched_and_head_grad_gradcampp_match_monai_batch1(one_thread, load_script) -> None:
    from monai.visualize import GradCAMpp

    from monai_xai.networks.nets import ResNetClassifier

    bench = load_script("benchmarks/explain_latency.py")
    torch.manual_seed(0)
    net = ResNetClassifier("resnet18", in_channels=1, num_classes=2).eval()
    x = torch.randn(3, 1, 64, 64)
    reference = GradCAMpp(ResNetClassifier("resnet18", 2, 1, 2), target_layers="layer4")
    reference.nn_module.model.load_state_dict(net.state_dict())
    expected = torch.cat([reference(x[i : i + 1]) for i in range(3)])

    batched = bench.make_gradcampp(ResNetClassifier("resnet18", 2, 1, 2), batch_size=3)
    batched.nn_module.model.load_state_dict(net.state_dict())
    torch.testing.assert_close(batched(x), expected, atol=1e-4, rtol=1e-4)

    head = ResNetClassifier("resnet18", 2, 1, 2)
    head.load_state_dict(net.state_dict())
    bench.freeze_all_but_head(head)
    trainable = [name for name, p in head.named_parameters() if p.requires_grad]
    assert trainable == ["layer4.1.bn2.weight", "layer4.1.bn2.bias"]
    head_cam = bench.make_gradcampp(head, batch_size=3)
    torch.testing.assert_close(head_cam(x), expected, atol=1e-4, rtol=1e-4)


def test_monai_gradcampp_still_fails_above_batch1(one_thread) -> None:
    """If MONAI fixes batched Grad-CAM++, the script can drop its patched subclass."""
    from monai.visualize import GradCAMpp

    from monai_xai.networks.nets import ResNetClassifier

    cam = GradCAMpp(ResNetClassifier("resnet18", 2, 1, 2), target_layers="layer4")
    with pytest.raises(RuntimeError):
        cam(torch.randn(3, 1, 64, 64))
