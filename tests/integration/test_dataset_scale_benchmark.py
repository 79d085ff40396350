"""The dataset-scale benchmark end to end at a tiny size: both datasets generated, a slice of the ABN bundle
trained on each in its own process (the small one cached in memory, the large one on disk), the report."""

from __future__ import annotations

import json

import pytest

from monai_xai.experiments.dataset_scale import main


@pytest.mark.slow
def test_the_benchmark_runs_end_to_end_at_a_tiny_size(tmp_path, capsys) -> None:
    runs, out = tmp_path / "runs", tmp_path / "scale.json"
    # 64 px: an item is ~32 KB cached (image and mask), so 48 training images fit 4 MB and 240 do not
    tiny = ["--n_large", "300", "--n_small", "60", "--size", "64", "--batch_size", "4", "--iterations", "2"]
    tiny += ["--warmup", "1", "--cache_budget_gb", "0.004", "--gen_workers", "1", "--sample_s", "0.1"]
    assert main(["run", *tiny, "--runs", str(runs), "--out", str(out)]) == 0
    last = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert last == json.loads(out.read_text())
    small, large = last["runs"]["small"], last["runs"]["large"]
    assert (small["n_images"], large["n_images"], small["n_train"], large["n_train"]) == (60, 300, 48, 240)
    assert small["train_cache"]["mode"] == "memory" and large["train_cache"]["mode"] == "disk"
    assert "filled" in large["train_cache"]["reason"] and not (runs / "large" / "trainer" / "cache").exists()
    assert small["timed_iterations"] == large["timed_iterations"] == 2
    assert large["generation_s"] > 0 and large["cache_build_s"] > 0 and large["images_per_s"] > 0
    assert 0 < last["scale_peak_memory_gb"] == large["peak_tree_pss_gb"] <= large["peak_tree_rss_gb"]
    assert last["scale_throughput_ratio"]["mean"] > 0 and set(last["verdicts"]) == set(last["targets"])
    assert last["environment"]["threads"] >= 1
