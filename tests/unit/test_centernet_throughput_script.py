"""detector_throughput.py: --quick prints both ratios in a JSON object on its last line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "benchmarks" / "detector_throughput.py"


def test_quick_run_prints_json_last() -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, str(SCRIPT), "--quick"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180, env=env, cwd=SCRIPT.parents[2])
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    for batch in (1, 16):
        ratio = result[f"speed_ratio_b{batch}"]
        speeds = result[f"centernet_images_per_s_b{batch}"], result[f"retinanet_images_per_s_b{batch}"]
        assert ratio > 0 and abs(ratio - speeds[0] / speeds[1]) < 0.01 * ratio + 0.01
