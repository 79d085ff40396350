"""scripts/benchmarks/train_throughput.py in its quick mode, and the docs tables rendered from its results."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest

from monai_xai.errors import InputError
from monai_xai.experiments import train_throughput


def test_bare_contenders_report_both_precisions(load_script, tmp_path):
    bench = load_script("benchmarks/train_throughput.py")
    out = tmp_path / "throughput.json"
    report = bench.main(
        ["--quick", "--networks", "abn", "agcyclegan", "--data", str(tmp_path / "none"), "--out", str(out)]
    )
    assert json.loads(out.read_text()) == json.loads(json.dumps(report))
    assert set(report["bare_steps"]) == {"abn", "agcyclegan"}
    for name, figures in report["bare_steps"].items():
        assert figures["fp32_images_per_s"] > 0 and figures["fast_images_per_s"] > 0
        assert figures["speedup"] == pytest.approx(
            figures["fast_images_per_s"] / figures["fp32_images_per_s"], 0.02
        )
        stats = report["intervals"][f"precision_speedup_{name}"]
        assert stats["mean"] == pytest.approx(figures["speedup"], abs=1e-3)
    assert "pipeline_efficiency" not in report
    # --quick times one round: no interval, so the target is not judged either way
    assert report["verdicts"] == {"precision_speedup_abn": "no interval"}


def test_speedup_interval_resamples_the_rounds(load_script):
    bench = load_script("benchmarks/train_throughput.py")
    fp32, fast = np.array([2.0, 2.2, 1.8, 2.1, 1.9]), np.array([1.0, 1.0, 1.1, 0.9, 1.0])
    stats = bench.interval(bench._ratio_of_medians, fp32, fast)
    assert stats["mean"] == pytest.approx(2.0) and stats["n"] == 5
    assert stats["ci95"][0] < 2.0 < stats["ci95"][1]
    assert bench.interval(bench._ratio_of_medians, fp32[:1], fast[:1]) == {"mean": 2.0, "ci95": None, "n": 1}


def test_the_docs_are_written_only_with_publish(load_script, tmp_path, monkeypatch):
    bench = load_script("benchmarks/train_throughput.py")
    published = tmp_path / "bundles" / "abn_classification" / "docs" / "results" / "x.json"
    monkeypatch.setattr(bench, "bare_precision", lambda args: ({}, {}))
    with pytest.raises(InputError, match="only with --publish"):
        bench.main(
            ["--quick", "--networks", "abn", "--data", str(tmp_path / "none"), "--out", str(published)]
        )
    assert not published.exists()


@pytest.mark.integration
@pytest.mark.slow
def test_pipeline_efficiency_on_busi(load_script, shared_data, tmp_path):
    bench = load_script("benchmarks/train_throughput.py")
    out = tmp_path / "report.json"
    stages = ["per_item", "batched"]  # the first and the default stage: the others add time, not code paths
    report = bench.main(
        ["--quick", "--networks", "resnet", "--data", str(shared_data / "busi_256"), "--out", str(out)]
        + ["--stages", *stages]
    )
    pipeline = report["pipeline"]
    assert pipeline["iterations_per_epoch"] == 4  # 16 training items, batch 4
    assert report["pipeline_efficiency"] == pytest.approx(
        pipeline["trainer_images_per_s"] / pipeline["bare_images_per_s"], abs=0.01
    )
    stats = report["intervals"]["pipeline_efficiency"]
    assert stats["n"] == 4 and stats["mean"] == pytest.approx(report["pipeline_efficiency"], abs=1e-3)
    assert out.is_file()
    # per-item augmentation in workers, then the default: batched augmentation on cached items, no workers
    assert list(pipeline["stages"]) == stages and stages[-1] == bench.DEFAULT_STAGE
    assert [pipeline["stages"][name]["num_workers"] for name in stages] == [2, 0]
    for figures in pipeline["stages"].values():
        assert report[figures["key"]] == figures["efficiency"] and figures["key"] in report["intervals"]
    assert pipeline["steps"]["per_item -> batched"] == pytest.approx(
        report["pipeline_efficiency"] - report["pipeline_efficiency_per_item"], abs=1e-3
    )


@pytest.fixture
def committed() -> dict:
    return json.loads(train_throughput.BLOCKS["train_throughput"].path.read_text())


def test_committed_file_is_never_met_without_intervals(committed):
    table = train_throughput.render(committed)
    assert "| abn | 32.73 | 79.30 | 2.423 | ≥ 1.7 | no interval (re-run pending) |" in table
    assert "| met |" not in table


def test_a_target_is_met_only_where_the_interval_clears_it(committed):
    report = copy.deepcopy(committed)
    report["intervals"] = {
        "precision_speedup_abn": {"mean": 2.4, "ci95": [2.2, 2.6], "n": 5},
        "precision_speedup_resnet": {"mean": 1.7, "ci95": [1.5, 1.9], "n": 5},
        "pipeline_efficiency": {"mean": 0.77, "ci95": [0.7, 0.85], "n": 20},
    }
    table = train_throughput.render(report)
    assert "| abn | 32.73 | 79.30 | 2.400 [2.200, 2.600] | ≥ 1.7 | met |" in table
    assert "| 1.700 [1.500, 1.900] | ≥ 1.6 | not distinguishable at this n |" in table
    assert "| 0.770 [0.700, 0.850] | ≥ 0.9 | missed |" in table
    lines = train_throughput.BLOCKS["fast_path_speedups_agcyclegan_explainer"].render(report)
    assert lines.splitlines()[0].endswith("channels-last): x1.700 [1.500, 1.900]")
    assert "`agcyclegan`" in lines and "`abn`" not in lines


def test_the_trainer_stages_are_rendered_with_what_each_gained(committed):
    report = copy.deepcopy(committed)
    words = {"per_item": "per-item augmentation in workers", "batched": "batched augmentation (default)"}
    report["pipeline"]["stages"] = {
        name: {
            "pipeline": words[name],
            "key": "pipeline_efficiency" if name == "batched" else f"pipeline_efficiency_{name}",
            "num_workers": workers,
            "trainer_images_per_s": rate,
            "bare_images_per_s": 76.0,
            "efficiency": round(rate / 76.0, 3),
        }
        for name, workers, rate in [("per_item", 2, 57.0), ("batched", 0, 72.2)]
    }
    report["pipeline_efficiency_per_item"] = 0.75
    report["pipeline_efficiency"] = 0.95
    report["intervals"] = {"pipeline_efficiency": {"mean": 0.95, "ci95": [0.92, 0.97], "n": 20}}
    table = train_throughput.render(report)
    assert "| per-item augmentation in workers | 2 | 57.00 | 76.00 | 0.750 | - |" in table
    assert "| batched augmentation (default) | 0 | 72.20 | 76.00 | 0.950 [0.920, 0.970] | +0.200 |" in table
    assert "| 0.950 [0.920, 0.970] | ≥ 0.9 | met |" in table


def test_each_bundle_has_its_own_speedup_block():
    names = {name for name in train_throughput.BLOCKS if name.startswith("fast_path_speedups_")}
    assert names == {f"fast_path_speedups_{b}" for b in train_throughput.BUNDLE_NETWORKS}
