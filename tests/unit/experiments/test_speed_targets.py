"""The repository README's speed table and the quickstart's time block render what the benchmarks wrote."""

from __future__ import annotations

from monai_xai.experiments import quickstart_time, speed_targets
from monai_xai.experiments.readme import BLOCK, blocks
from monai_xai.experiments.results import REPO

MACHINE = {
    "cpu_model": "Test CPU",
    "cpu_flags": ["avx2"],
    "cpu_supports_bf16": False,
    "cpu_count": 2,
    "torch": "2.13.0+cpu",
    "loadavg_1min_at_start": 0.1,
}


def _reports(**files):
    return {target.results: None for target in speed_targets.TARGETS} | files


def test_intervals_decide_and_single_runs_say_so():
    explain = speed_targets.TARGETS[1].results
    throughput = speed_targets.TARGETS[3].results
    table = speed_targets.render(
        _reports(
            **{
                explain: {
                    "intervals": {
                        "explain_ratio_b1_vs_headgrad": {"mean": 0.9, "ci95": [0.85, 0.95], "n": 12},
                        "explain_ratio_b16_vs_headgrad": {"mean": 1.0, "ci95": [0.95, 1.05], "n": 12},
                    },
                    "environment": MACHINE,
                },
                throughput: {"pipeline_efficiency": 0.95, "environment": MACHINE},
            }
        )
    )
    rows = {line.split(" | ")[0].lstrip("| "): line for line in table.splitlines() if line.startswith("| ")}
    assert "| met |" in rows[speed_targets.TARGETS[1].label]
    assert "not distinguishable at this n" in rows[speed_targets.TARGETS[2].label]
    assert "met (one run)" in rows[speed_targets.TARGETS[3].label]
    assert "Test CPU, 2 cores, no native bfloat16" in rows[speed_targets.TARGETS[3].label]
    assert "not measured yet" in rows[speed_targets.TARGETS[0].label]


def test_a_bound_on_the_wrong_side_is_missed():
    scale = speed_targets.TARGETS[5]
    table = speed_targets.render(_reports(**{scale.results: {scale.key: 9.5, "environment": MACHINE}}))
    assert "missed (one run)" in next(line for line in table.splitlines() if scale.label in line)


def test_speed_table_is_a_readme_block_of_the_repository_readme():
    assert "speed_targets" in blocks()
    assert "speed_targets" in {m["name"] for m in BLOCK.finditer((REPO / "README.md").read_text())}


def test_quickstart_time_renders_steps_verdict_and_machine():
    report = {
        "quickstart_s": 280.4,
        "install_s": 60,
        "target_s": 300.0,
        "target_met": True,
        "verdict_kept": True,
        "verdict": {
            "checks": {
                "abn": {"test_accuracy": 0.95, "bound": ">= 0.9", "met": True},
                "baseline": {"test_accuracy": 0.6, "bound": "<= 0.65", "met": True},
            },
            "holds": True,
        },
        "accuracy": {
            "abn": {"mean": 0.95, "ci95": [0.93, 0.97], "n": 400},
            "baseline": {"mean": 0.6, "ci95": [0.55, 0.66], "n": 400},
        },
        "budget": {"name": "quick", "epochs": 6, "images": {"train": 400}},
        "timing": {"data_s": 3.0, "arms": {"abn": {"train_s": 50.0, "evaluate_s": 5.0}}},
        "commit": "0123456789abcdef",
        "environment": MACHINE,
    }
    table = quickstart_time.render(report)
    assert "**280 s** (met)" in table and "train 50 s, evaluate 5 s" in table
    assert "Verdict kept" in table and "abn test accuracy 0.950 [0.930, 0.970] (>= 0.9: met)" in table
    assert "baseline test accuracy 0.600 [0.550, 0.660] (<= 0.65: not distinguishable at this n)" in table
    assert "Test CPU" in table
    assert "**280 s** (missed)" in quickstart_time.render({**report, "target_met": False})
