"""scripts/experiments/demo_correction.py gathers the demo's correction runs into the multi-scale bundle's
results file, and the bundle's ``--freeze_features false`` fine-tunes the whole network."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ABN = REPO / "bundles" / "abn_classification" / "configs"
MULTISCALE = REPO / "bundles" / "multiscale_abn_correction" / "configs"
FRACTIONS = (0.1, 0.2, 0.3, 0.5, 1.0)
SETTINGS = {
    "images": {"train": 800, "val": 200, "test": 400},
    "spatial_size": 64,
    "epochs": 12,
    "finetune": {"epochs": 15, "map_weights": 10.0, "learning_rate": 0.001, "checkpoint": "last"},
    "fractions": list(FRACTIONS),
    "torch_threads": 2,
    "wall_s": {"train": 300.0, "sweep_branches": 3000.0, "sweep_whole": 3300.0},
}


def _write_trained(out: Path, accuracy: float, pointing_game: float) -> None:
    """The trained model's test evaluation, as the bundle's EvaluationReport writes it."""
    metrics = {
        "image": {"accuracy": accuracy},
        "attention_agreement": {"attention": {"pointing_game": pointing_game}},
    }
    (out / "trained" / "eval_test").mkdir(parents=True)
    (out / "trained" / "eval_test" / "metrics.json").write_text(json.dumps(metrics))


def _write_sweep(arm_dir: Path, accuracies: dict[str, list[float]]) -> None:
    """An arm's ``sweep/sweep.json``: per strategy one accuracy per fraction, pointing game half of it."""
    rows = [
        {
            "strategy": s,
            "fraction": f,
            "accuracy": a,
            "kappa": 0.0,
            "map_mse": 0.2,
            "map_pointing_game": a / 2,
        }
        for s, values in accuracies.items()
        for f, a in zip(FRACTIONS, values)
    ]
    (arm_dir / "sweep").mkdir(parents=True)
    (arm_dir / "sweep" / "sweep.json").write_text(json.dumps(rows))


@pytest.fixture
def runs(tmp_path: Path) -> Path:
    """Finished runs: the whole network wins at <= 30 % (mean 0.8 against 0.6), the branches at 50-100 %."""
    _write_trained(tmp_path, 0.52, 0.1)
    _write_sweep(
        tmp_path / "branches", {"random": [0.5, 0.6, 0.7, 0.95, 0.97], "lowest_confidence": [0.6] * 5}
    )
    _write_sweep(tmp_path / "whole", {"random": [0.7, 0.8, 0.9, 0.9, 0.9], "lowest_confidence": [0.8] * 5})
    return tmp_path


def test_results_report_the_better_arm_at_the_target_fractions_and_both_arms(runs, load_script) -> None:
    script = load_script("experiments/demo_correction.py")
    report = script.results(runs, ["random", "lowest_confidence"], FRACTIONS, ["branches", "whole"], SETTINGS)
    assert report["before"] == {"test_accuracy": 0.52, "map_pointing_game": 0.1}
    assert report["arm"] == "whole"
    assert report["after"] == report["arms"]["whole"]["after"]
    assert report["after"]["random"] == {"0.1": 0.7, "0.2": 0.8, "0.3": 0.9, "0.5": 0.9, "1.0": 0.9}
    branches = report["arms"]["branches"]
    assert branches["pointing_game"]["random"]["0.5"] == pytest.approx(0.475)
    assert branches["mean_accuracy_up_to_target"] == pytest.approx(0.6)
    assert branches["best_up_to_target"] == {"strategy": "random", "fraction": 0.3, "test_accuracy": 0.7}
    assert report["target"] == {
        "before_at_most": 0.65, "after_at_least": 0.85, "fraction_at_most": 0.3,
        "best_after": {"strategy": "random", "fraction": 0.3, "test_accuracy": 0.9},
        "before_met": True, "after_met": True, "met": True,
    }  # fmt: skip
    assert report["settings"] is SETTINGS


def test_on_a_tie_the_study_arm_is_reported_and_the_smaller_fraction_is_best(load_script) -> None:
    script = load_script("experiments/demo_correction.py")
    arms = {"branches": {"mean_accuracy_up_to_target": 0.7}, "whole": {"mean_accuracy_up_to_target": 0.7}}
    assert script.better_arm(arms) == "branches"
    after = {"random": {"0.1": 0.9, "0.3": 0.9, "0.5": 1.0}}
    assert script.best_up_to(after, 0.3) == {"strategy": "random", "fraction": 0.1, "test_accuracy": 0.9}
    assert [script.fraction_key(f) for f in (0.1, 1, 1.0)] == ["0.1", "1.0", "1.0"]


def test_renderer_tables_each_arm_with_the_before_row_and_the_target(runs, load_script) -> None:
    script = load_script("experiments/demo_correction.py")
    report = script.results(runs, ["random", "lowest_confidence"], FRACTIONS, ["branches", "whole"], SETTINGS)
    table = load_script("render_results.py").demo_correction(report)
    assert "| trained without map supervision (before) | 0.520 | 0.100 |" in table
    assert "| `whole` (reported), best with ≤ 30% corrected: `random`, 30% | 0.900 | 0.450 |" in table
    assert "| strategy | 10% | 20% | 30% | 50% | 100% |" in table
    # bold: the target met within 30 %; 0.95 at 50 % is past the target's fractions
    assert (
        "| `random` | 0.500 / 0.250 | 0.600 / 0.300 | 0.700 / 0.350 | 0.950 / 0.475 | 0.970 / 0.485 |"
        in table
    )
    assert (
        "| `random` | 0.700 / 0.350 | 0.800 / 0.400 | **0.900** / 0.450 | 0.900 / 0.450 | 0.900 / 0.450 |"
        in table
    )
    assert "before met, after met (arm `whole`" in table and "`branches` 0.600, `whole` 0.800" in table
    assert "800 training, 200 validation" in table and "scored at its last epoch" in table
    assert "110 min in all" in table


def test_missing_runs_are_named_with_the_command_that_makes_them(runs, load_script) -> None:
    script = load_script("experiments/demo_correction.py")
    with pytest.raises(
        SystemExit, match=r"sweep/sweep.json lacks largest_map_error 0.1, .*demo_correction.sh"
    ):
        script.results(runs, ["random", "largest_map_error"], FRACTIONS, ["branches"], SETTINGS)
    (runs / "whole" / "sweep" / "sweep.json").unlink()
    with pytest.raises(SystemExit, match=r"whole/sweep/sweep.json is missing: run .*demo_correction.sh"):
        script.results(runs, ["random"], FRACTIONS, ["branches", "whole"], SETTINGS)
    (runs / "trained" / "eval_test" / "metrics.json").unlink()
    with pytest.raises(SystemExit, match=r"trained/eval_test/metrics.json is missing"):
        script.results(runs, ["random"], FRACTIONS, ["branches"], SETTINGS)


def test_arguments_and_data_are_checked_before_any_run(tmp_path, load_script) -> None:
    script = load_script("experiments/demo_correction.py")
    common = ["--data", str(tmp_path / "data"), "--out", str(tmp_path), "--results", str(tmp_path / "r.json")]
    with pytest.raises(SystemExit, match=r"labels.csv is missing: python scripts/make_demo_data.py"):
        script.main(common)
    with pytest.raises(SystemExit):  # argparse: the arms are compared at fractions up to 0.3
        script.parse_args([*common, "--fractions", "0.5", "1.0"])
    args, overrides = script.parse_args([*common, "--arms", "whole", "--limit", "40"])
    assert args.strategies == ["lowest_confidence", "largest_map_error", "random"]
    assert args.arms == ["whole"] and overrides == {"limit": 40}


def test_wall_time_adds_up_over_resumed_invocations(tmp_path, load_script) -> None:
    script = load_script("experiments/demo_correction.py")
    script.add_wall_time(tmp_path / "wall_s.json", "train", 10.04)
    assert script.add_wall_time(tmp_path / "wall_s.json", "train", 5.0) == {"train": 15.0}


@pytest.mark.parametrize("freeze, suffix, all_trainable", [(True, "", False), (False, "_whole", True)])
def test_finetune_freezes_the_extractor_unless_told_not_to(tmp_path, freeze, suffix, all_trainable) -> None:
    import torch
    from monai.bundle import ConfigParser

    from monai_xai.networks import MultiScaleAttentionBranchNetwork

    (tmp_path / "checkpoints").mkdir()
    torch.save(MultiScaleAttentionBranchNetwork().state_dict(), tmp_path / "checkpoints" / "best.pt")
    parser = ConfigParser()
    parser.read_config(
        [str(ABN / "train.json"), *(str(MULTISCALE / f) for f in ("train.json", "finetune.json"))]
    )
    parser.update(
        {"output_dir": str(tmp_path), "strategy": "random", "fraction": 0.3, "freeze_features": freeze}
    )
    name = f"mask_random_0.3{suffix}"
    assert parser.get_parsed_content("finetune_dir") == str(tmp_path / "finetune" / name)
    run_name = parser.get_parsed_content("run_name")
    expected = rf"demo_multiscale_finetune_{re.escape(name)}_resnet18_fold0-[0-9a-f]{{12}}"
    assert re.fullmatch(expected, run_name)
    network = parser.get_parsed_content("network")
    trainable = parser.get_parsed_content("optimizer#params")
    assert (len(trainable) == len(list(network.parameters()))) == all_trainable
    assert network.features.training == all_trainable  # a frozen extractor keeps its batch-norm statistics
