"""scripts/benchmarks/detector_throughput.py and its renderer, monai_xai.experiments.detector_throughput:
--quick prints both ratios with intervals in a JSON object on its last line, ``--out`` writes the same object
for the bundle's speed table, a quick run never writes into the docs, and "met" comes only from an
interval."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from monai_xai.experiments import detector_throughput as throughput

SCRIPT = Path(__file__).resolve().parents[3] / "scripts" / "benchmarks" / "detector_throughput.py"
SETTINGS = {"target", "size", "backbone", "repeats", "warmup", "device", "threads", "cpu", "torch"}
LOAD = {"load_average_start", "load_average_end"}
COMMITTED = json.loads(throughput.BLOCKS["detector_throughput"].path.read_text())


def test_quick_run_prints_json_last_and_writes_out(tmp_path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = tmp_path / "x.json"
    cmd = [sys.executable, str(SCRIPT), "--quick", "--repeats", "3", "--n_boot", "50", "--out", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180, env=env, cwd=SCRIPT.parents[2])
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    for batch in (1, 16):
        ratio = result[f"speed_ratio_b{batch}"]
        speeds = result[f"centernet_images_per_s_b{batch}"], result[f"retinanet_images_per_s_b{batch}"]
        assert ratio["n"] == 3 and ratio["ci95"][0] <= ratio["mean"] <= ratio["ci95"][1]
        assert abs(ratio["mean"] - speeds[0] / speeds[1]) < 0.01 * ratio["mean"] + 0.01
        assert f"target_met_b{batch}" not in result  # a verdict comes from the interval, when rendered
    assert SETTINGS | LOAD <= set(result) and result["size"] == 32 and result["repeats"] == 3
    written = json.loads(out.read_text())
    assert written == result
    table = throughput.render(written)
    ratio = result["speed_ratio_b16"]
    row = (
        f"| 16 | {result['centernet_images_per_s_b16']:.2f} | {result['retinanet_images_per_s_b16']:.2f} | "
        f"{ratio['mean']:.2f} [{ratio['ci95'][0]:.2f}, {ratio['ci95'][1]:.2f}], "
    )
    assert row in table and "| ratio (target ≥ 1.5) |" in table
    assert "32x32, one grey channel, resnet18 backbone" in table and "bootstrap over the rounds" in table
    assert f"load average {result['load_average_start']} at start" in table


def test_speed_ratio_resamples_rounds_together(load_script) -> None:
    bench = load_script("benchmarks/detector_throughput.py")
    steady = bench.speed_ratio([0.1, 0.1, 0.1, 0.1], [0.3, 0.3, 0.3, 0.3], n_boot=50)
    assert steady == {"mean": 3.0, "ci95": [3.0, 3.0], "n": 4}
    noisy = bench.speed_ratio([0.1, 0.2, 0.1, 0.3, 0.1], [0.15, 0.2, 0.6, 0.3, 0.12], n_boot=200)
    assert noisy["mean"] == pytest.approx(0.2 / 0.1) and noisy["ci95"][0] < 2.0 < noisy["ci95"][1]


@pytest.mark.parametrize(
    "args",
    [
        ["--publish"],
        ["--out", "bundles/centernet_detection/docs/results/detector_throughput.json"],
        ["--out", "bundles/detector_throughput.json"],
    ],
)
def test_quick_run_refuses_to_write_under_bundles(args, load_script, capsys) -> None:
    bench = load_script("benchmarks/detector_throughput.py")
    with pytest.raises(SystemExit) as exit_info:
        bench.parse_args(["--quick", *args])
    assert exit_info.value.code == 2 and "--quick run is a smoke test" in capsys.readouterr().err
    assert bench.parse_args(args).quick is False  # a full run may write the docs' file


#: a results file as written before the intervals: bare ratios
BEFORE_INTERVALS = {
    **COMMITTED,
    **{"speed_ratio_b1": 2.85, "centernet_images_per_s_b1": 33.62, "retinanet_images_per_s_b1": 11.79},
    **{"speed_ratio_b16": 3.11, "centernet_images_per_s_b16": 43.17, "retinanet_images_per_s_b16": 13.88},
}


def test_renderer_says_met_only_from_an_interval() -> None:
    table = throughput.render(BEFORE_INTERVALS)
    assert "| 1 | 33.62 | 11.79 | 2.85, no interval (re-run pending) |" in table
    assert not re.search(r", met\b", table) and "bootstrap" not in table
    report = {**BEFORE_INTERVALS, "speed_ratio_b1": {"mean": 2.85, "ci95": [2.7, 3.0], "n": 10}}
    report["speed_ratio_b16"] = {"mean": 1.6, "ci95": [1.4, 1.9], "n": 10}
    table = throughput.render(report)
    assert "| 1 | 33.62 | 11.79 | 2.85 [2.70, 3.00], met |" in table
    assert "| 16 | 43.17 | 13.88 | 1.60 [1.40, 1.90], not distinguishable at this n |" in table
