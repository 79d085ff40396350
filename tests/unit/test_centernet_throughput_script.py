"""detector_throughput.py: --quick prints both ratios in a JSON object on its last line, ``--out`` writes the
same object for ``render_results.py``'s table, and a quick run never writes into the docs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "benchmarks" / "detector_throughput.py"
SETTINGS = {"target", "size", "backbone", "repeats", "warmup", "device", "threads", "cpu", "torch"}
LOAD = {"load_average_start", "load_average_end"}


def test_quick_run_prints_json_last_and_writes_out(tmp_path, load_script) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = tmp_path / "x.json"
    cmd = [sys.executable, str(SCRIPT), "--quick", "--out", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180, env=env, cwd=SCRIPT.parents[2])
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    for batch in (1, 16):
        ratio = result[f"speed_ratio_b{batch}"]
        speeds = result[f"centernet_images_per_s_b{batch}"], result[f"retinanet_images_per_s_b{batch}"]
        assert ratio > 0 and abs(ratio - speeds[0] / speeds[1]) < 0.01 * ratio + 0.01
        assert result[f"target_met_b{batch}"] == (ratio >= result["target"])
    assert SETTINGS | LOAD <= set(result) and result["size"] == 32 and result["repeats"] == 1
    written = json.loads(out.read_text())
    assert written == result
    table = load_script("render_results.py").detector_throughput(written)
    row = (
        f"| 16 | {result['centernet_images_per_s_b16']:.2f} | {result['retinanet_images_per_s_b16']:.2f} | "
        f"{result['speed_ratio_b16']:.2f}, "
    )
    assert row in table and "| ratio (target ≥ 1.5) |" in table
    assert "32x32, one grey channel, resnet18 backbone" in table
    assert f"load average {result['load_average_start']} at start" in table


@pytest.mark.parametrize("folder", ["bundles/centernet_detection/docs/results", "bundles"])
def test_quick_run_refuses_out_under_bundles(folder, load_script, capsys) -> None:
    bench = load_script("benchmarks/detector_throughput.py")
    out = SCRIPT.parents[2] / folder / "detector_throughput.json"
    with pytest.raises(SystemExit) as exit_info:
        bench.parse_args(["--quick", "--out", str(out)])
    assert exit_info.value.code == 2 and "--quick run is a smoke test" in capsys.readouterr().err
    assert bench.parse_args(["--out", str(out)]).out == out  # a full run may write the docs' file
