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


def _write_predictions(eval_dir: Path, accuracy: float, n: int) -> None:
    """An evaluation's per-image ``predictions.csv`` (half of each class) with the given argmax accuracy."""
    correct = round(accuracy * n)
    labels = [i % 2 for i in range(n)]
    preds = [label if i < correct else 1 - label for i, label in enumerate(labels)]
    rows = ["source,patient,label,pred,decision,prob_smooth,prob_irregular"]
    rows += [f"img{i}.png,,{y},{p},{p},0.5,0.5" for i, (y, p) in enumerate(zip(labels, preds))]
    eval_dir.mkdir(parents=True, exist_ok=True)
    (eval_dir / "predictions.csv").write_text("\n".join(rows) + "\n")


def _write_trained(out: Path, accuracy: float, pointing_game: float, n: int | None = None) -> None:
    """The trained model's test evaluation, as the bundle's EvaluationReport writes it (with its per-image
    predictions when ``n`` is given)."""
    metrics = {
        "image": {"accuracy": accuracy},
        "attention_agreement": {"attention": {"pointing_game": pointing_game}},
    }
    (out / "trained" / "eval_test").mkdir(parents=True)
    (out / "trained" / "eval_test" / "metrics.json").write_text(json.dumps(metrics))
    if n is not None:
        _write_predictions(out / "trained" / "eval_test", accuracy, n)


def _write_sweep(arm_dir: Path, accuracies: dict[str, list[float]], with_predictions: int = 0) -> None:
    """An arm's ``sweep/sweep.json``: per strategy one accuracy per fraction, pointing game half of it; with
    ``with_predictions`` images per cell, each fine-tune's evaluation with its per-image predictions and the
    driver's ``sweep/eval_dirs.json`` that locates them."""
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
    if with_predictions:
        located: dict[str, dict[str, str]] = {}
        for row in rows:
            relative = f"finetune/mask_{row['strategy']}_{row['fraction']}/eval_test"
            _write_predictions(arm_dir / relative, row["accuracy"], with_predictions)
            located.setdefault(row["strategy"], {})[str(float(row["fraction"]))] = relative
        (arm_dir / "sweep" / "eval_dirs.json").write_text(json.dumps(located))


@pytest.fixture
def runs(tmp_path: Path) -> Path:
    """Finished runs: the study's arm (``branches``, the judged one) with per-image predictions of 40 images
    per cell, ``whole`` (higher test figures) with plain figures only."""
    _write_trained(tmp_path, 0.52, 0.1, n=100)
    _write_sweep(
        tmp_path / "branches",
        {"random": [0.5, 0.9, 1.0, 0.95, 0.975], "lowest_confidence": [0.6] * 5},
        with_predictions=40,
    )
    _write_sweep(tmp_path / "whole", {"random": [0.9, 0.95, 0.975, 1.0, 1.0], "lowest_confidence": [0.9] * 5})
    return tmp_path


STRATEGIES = ["random", "lowest_confidence"]


def test_the_declared_arm_is_judged_cell_by_cell_with_intervals_and_every_arm_is_reported(
    runs, load_script
) -> None:
    script = load_script("experiments/demo_correction.py")
    assert script.JUDGED_ARM == "branches"  # declared before any test figure is read
    report = script.results(runs, STRATEGIES, FRACTIONS, ["branches", "whole"], SETTINGS)
    assert report["judged_arm"] == "branches" and list(report["arms"]) == ["branches", "whole"]
    assert not {"arm", "after"} & set(report)  # no arm picked for its test figures
    for arm in report["arms"].values():
        assert not {k for k in arm if k.startswith(("best", "mean_accuracy"))}
    before = report["before"]
    assert before["test_accuracy"] == 0.52 and before["map_pointing_game"] == 0.1
    low, high = before["test_accuracy_ci"]["ci95"]
    assert before["test_accuracy_ci"]["n"] == 100 and low < 0.52 < high < 0.65
    branches, whole = report["arms"]["branches"], report["arms"]["whole"]
    assert branches["after"]["random"] == {"0.1": 0.5, "0.2": 0.9, "0.3": 1.0, "0.5": 0.95, "1.0": 0.975}
    assert branches["pointing_game"]["random"]["0.5"] == pytest.approx(0.475)
    assert branches["after_ci"]["random"]["0.3"] == {"mean": 1.0, "ci95": [1.0, 1.0], "n": 40}
    assert set(branches["after_ci"]["lowest_confidence"]) == {"0.1", "0.2", "0.3", "0.5", "1.0"}
    assert "after_ci" not in whole  # no per-image predictions there: plain figures
    target = report["target"]
    assert target["arm"] == "branches" and target["before_met"] and target["before_verdict"] == "met"
    verdicts = {(c["strategy"], c["fraction"]): c["verdict"] for c in target["cells"]}
    assert verdicts == {
        ("random", 0.1): "missed", ("random", 0.2): "not distinguishable at this n", ("random", 0.3): "met",
        ("lowest_confidence", 0.1): "missed", ("lowest_confidence", 0.2): "missed",
        ("lowest_confidence", 0.3): "missed",
    }  # fmt: skip
    assert target["cells_met"] == 1 and target["after_met"] and target["met"]
    assert report["settings"] is SETTINGS


def test_a_higher_arm_does_not_replace_the_judged_one(runs, load_script) -> None:
    """Without its one clean cell the judged arm misses the target, though ``whole`` reads higher on test."""
    script = load_script("experiments/demo_correction.py")
    rows = json.loads((runs / "branches" / "sweep" / "sweep.json").read_text())
    for row in rows:
        if row["strategy"] == "random" and row["fraction"] == 0.3:
            row["accuracy"] = 0.9
    (runs / "branches" / "sweep" / "sweep.json").write_text(json.dumps(rows))
    _write_predictions(runs / "branches" / "finetune" / "mask_random_0.3" / "eval_test", 0.9, 40)
    report = script.results(runs, STRATEGIES, FRACTIONS, ["branches", "whole"], SETTINGS)
    assert report["target"]["cells_met"] == 0 and report["target"]["after_met"] is False
    assert report["target"]["met"] is False
    assert report["arms"]["whole"]["after"]["random"]["0.3"] == 0.975  # reported, not judged
    only_whole = script.results(runs, STRATEGIES, FRACTIONS, ["whole"], SETTINGS)
    assert only_whole["target"]["after_met"] is None and only_whole["target"]["cells"] == []


def test_predictions_that_do_not_match_the_scored_figure_are_refused(runs, load_script) -> None:
    script = load_script("experiments/demo_correction.py")
    _write_predictions(runs / "branches" / "finetune" / "mask_random_0.2" / "eval_test", 0.8, 40)
    with pytest.raises(SystemExit, match=r"mask_random_0.2/eval_test: accuracy 0.8000 of its predictions"):
        script.results(runs, STRATEGIES, FRACTIONS, ["branches"], SETTINGS)


def test_renderer_shows_intervals_when_present_and_plain_figures_otherwise(runs, load_script) -> None:
    script = load_script("experiments/demo_correction.py")
    report = script.results(runs, STRATEGIES, FRACTIONS, ["branches", "whole"], SETTINGS)
    table = load_script("render_results.py").demo_correction(report)
    assert "| trained without map supervision (before) | 0.520 [" in table
    assert "| strategy | 10% | 20% | 30% | 50% | 100% |" in table
    assert "`branches` (judged), fine-tuning" in table and "`whole`, fine-tuning" in table
    # the judged arm: intervals; bold where the whole interval clears 0.85 within 30 %
    assert "| `random` | 0.500 [" in table and "**1.000 [1.000, 1.000]** / 0.500 |" in table
    # the other arm: plain figures, bold where the figure reaches 0.85 within 30 %
    assert "| `random` | **0.900** / 0.450 | **0.950** / 0.475 | **0.975** / 0.487 | 1.000 / 0.500 |" in table
    assert "judged on arm `branches` (declared in the driver before any test figure was read" in table
    assert "before met (met), after met: 1 of 6 cells with ≤ 30% corrected" in table
    assert "best" not in table and "reported" not in table
    assert "Brackets: stratified (by label) bootstrap 95 % intervals" in table
    assert "800 training, 200 validation" in table and "scored at its last epoch" in table
    assert "110 min in all" in table


def test_an_older_results_file_renders_its_plain_figures_and_judges_no_arm(load_script) -> None:
    """The shape of the results files written before the arm was declared: ``arm``/``after`` of the arm with
    the higher test mean and its best cell; the renderer shows every cell and repeats no pick."""
    arm = {
        "description": "the branches, feature extractor frozen (as in the study)",
        "after": {"random": {"0.1": 0.7, "0.3": 0.86, "1.0": 0.9}},
        "pointing_game": {"random": {"0.1": 0.5, "0.3": 0.6, "1.0": 1.0}},
        "mean_accuracy_up_to_target": 0.78,
        "best_up_to_target": {"strategy": "random", "fraction": 0.3, "test_accuracy": 0.86},
    }
    report = {
        "before": {"test_accuracy": 0.6775, "map_pointing_game": 0.145},
        "after": arm["after"], "arm": "branches", "arms": {"branches": arm},
        "target": {"before_at_most": 0.65, "after_at_least": 0.85, "fraction_at_most": 0.3,
                   "best_after": arm["best_up_to_target"], "before_met": False, "after_met": True,
                   "met": False},
        "settings": {**SETTINGS, "fractions": [0.1, 0.3, 1.0]},
    }  # fmt: skip
    table = load_script("render_results.py").demo_correction(report)
    assert "| trained without map supervision (before) | 0.677 | 0.145 |" in table
    assert "before **not met**; after: this results file predates declaring the judged arm" in table
    assert "(figures alone, no intervals): `branches` 1 of 2." in table
    assert "| `random` | 0.700 / 0.500 | **0.860** / 0.600 | 0.900 / 1.000 |" in table
    assert "(judged)" not in table and "reported" not in table and "best" not in table
    assert "No intervals: this run kept no per-image predictions" in table


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


def test_the_driver_records_where_each_fine_tune_was_evaluated(tmp_path, load_script) -> None:
    """``eval_dirs.json`` names each combination's evaluation folder as the bundle configs do, so that a new
    run's cells get their intervals from the per-image predictions there."""
    script = load_script("experiments/demo_correction.py")
    for arm, suffix in (("branches", ""), ("whole", "_whole")):
        overrides = {"freeze_features": arm == "branches"}
        path = script.record_eval_dirs(tmp_path / arm, ["random"], [0.1, 1.0], overrides)
        assert json.loads(path.read_text()) == {
            "random": {
                "0.1": f"finetune/mask_random_0.1{suffix}/eval_test",
                "1.0": f"finetune/mask_random_1.0{suffix}/eval_test",
            }
        }


def test_arguments_and_data_are_checked_before_any_run(tmp_path, load_script) -> None:
    script = load_script("experiments/demo_correction.py")
    common = ["--data", str(tmp_path / "data"), "--out", str(tmp_path), "--results", str(tmp_path / "r.json")]
    with pytest.raises(SystemExit, match=r"labels.csv is missing: python scripts/make_demo_data.py"):
        script.main(common)
    with pytest.raises(SystemExit):  # argparse: the target is judged at fractions up to 0.3
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
