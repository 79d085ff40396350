"""scripts/benchmarks/train_throughput.py in its quick mode, and the docs tables rendered from results."""

from __future__ import annotations

import pytest


def test_bare_contenders_report_both_precisions(load_script, tmp_path):
    bench = load_script("benchmarks/train_throughput.py")
    report = bench.main(["--quick", "--networks", "abn", "agcyclegan", "--data", str(tmp_path / "none")])
    assert set(report["bare_steps"]) == {"abn", "agcyclegan"}
    for figures in report["bare_steps"].values():
        assert figures["fp32_images_per_s"] > 0 and figures["fast_images_per_s"] > 0
        assert figures["speedup"] == pytest.approx(
            figures["fast_images_per_s"] / figures["fp32_images_per_s"], 0.02
        )
    assert "pipeline_efficiency" not in report and set(report["met"]) == {"precision_speedup_abn"}


@pytest.mark.integration
@pytest.mark.slow
def test_pipeline_efficiency_on_busi(load_script, shared_data, tmp_path):
    bench = load_script("benchmarks/train_throughput.py")
    out = tmp_path / "report.json"
    report = bench.main(
        ["--quick", "--networks", "resnet", "--data", str(shared_data / "busi_256"), "--out", str(out)]
    )
    pipeline = report["pipeline"]
    assert pipeline["iterations_per_epoch"] == 4  # 16 training items, batch 4
    assert report["pipeline_efficiency"] == pytest.approx(
        pipeline["trainer_images_per_s"] / pipeline["bare_images_per_s"], abs=0.01
    )
    assert out.is_file()


def test_bundle_docs_tables_match_their_results_files(load_script):
    assert load_script("render_results.py").main(["--check"]) == 0
