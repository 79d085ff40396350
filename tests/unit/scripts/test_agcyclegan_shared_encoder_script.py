"""The shared-encoder benchmark: a quick run writes a results file with interval-bearing time ratios, the
verdicts and its machine, which the bundle's README block renders; a smoke run cannot write the docs'."""

from __future__ import annotations

import json

import pytest

from monai_xai.experiments import agcyclegan_shared_encoder


def test_quick_run_writes_ratios_with_intervals_that_the_block_renders(load_script, tmp_path, capsys) -> None:
    bench = load_script("benchmarks/agcyclegan_shared_encoder.py")
    out = tmp_path / "shared.json"
    assert bench.main(["--quick", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1]) == report  # the last line, as written
    for dims in ("2d", "3d"):
        ratio = report[f"step_time_ratio_{dims}"]
        assert ratio["mean"] == pytest.approx(
            report[f"step_s_shared_{dims}"] / report[f"step_s_separate_{dims}"]
        )
        assert ratio["ci95"][0] <= ratio["mean"] <= ratio["ci95"][1]
        assert report[f"peak_mem_ratio_{dims}"] > 0
    assert set(report["verdicts"]) == {"step_time_ratio_2d", "step_time_ratio_3d", "peak_mem_ratio_2d",
                                       "peak_mem_ratio_3d"}  # fmt: skip
    assert report["targets_met"] == all(v.startswith("met") for v in report["verdicts"].values())
    assert report["environment"]["threads"] == 1 and "cpu_supports_bf16" in report["environment"]
    table = agcyclegan_shared_encoder.render(report)
    assert "| 2D | [2, 1, 32, 32] |" in table and "| 3D | [1, 1, 16, 16, 16] |" in table
    assert "time ratio (target ≤ 0.6)" in table and "Brackets: 95 % bootstrap intervals" in table


def test_a_quick_run_cannot_write_the_docs_results(load_script) -> None:
    bench = load_script("benchmarks/agcyclegan_shared_encoder.py")
    with pytest.raises(SystemExit):
        bench.parse_args(["--quick", "--publish"])
