"""monai_xai.experiments.demo_correction gathers the demo's correction runs into the multi-scale bundle's
results file with an interval for every cell, judges the target on the declared arm only, and the bundle's
``--freeze_features false`` fine-tunes the whole network."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from monai_xai.errors import InputError
from monai_xai.experiments import demo_correction as dc

REPO = Path(__file__).resolve().parents[3]
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
#: every evaluation's map pointing game: 10 of 40 images
POINTING_GAME = 0.25
STRATEGIES = ["random", "lowest_confidence"]


def _write_per_image(eval_dir: Path, accuracy: float, n: int) -> None:
    """An evaluation's ``predictions.csv`` (half of each class) with the given argmax accuracy, and its
    ``attention_per_image.csv`` with a quarter of the images hit (the pointing game)."""
    correct = round(accuracy * n)
    labels = [i % 2 for i in range(n)]
    preds = [label if i < correct else 1 - label for i, label in enumerate(labels)]
    rows = ["source,patient,label,pred,decision,prob_smooth,prob_irregular"]
    rows += [f"img{i}.png,,{y},{p},{p},0.5,0.5" for i, (y, p) in enumerate(zip(labels, preds))]
    eval_dir.mkdir(parents=True, exist_ok=True)
    (eval_dir / "predictions.csv").write_text("\n".join(rows) + "\n")
    maps = ["source,method,map_mse,pointing_game,energy_inside_mask,map_iou"]
    maps += [f"img{i}.png,attention,0.2,{float(i % 4 == 0)},0.5,0.1" for i in range(n)]
    (eval_dir / "attention_per_image.csv").write_text("\n".join(maps) + "\n")


def _write_trained(out: Path, accuracy: float, n: int | None = None) -> None:
    """The trained model's test evaluation, as the bundle's EvaluationReportHandler writes it (with per-image
    files when ``n`` is given)."""
    metrics = {
        "image": {"accuracy": accuracy},
        "attention_agreement": {"attention": {"pointing_game": POINTING_GAME}},
    }
    (out / "trained" / "eval_test").mkdir(parents=True)
    (out / "trained" / "eval_test" / "metrics.json").write_text(json.dumps(metrics))
    if n is not None:
        _write_per_image(out / "trained" / "eval_test", accuracy, n)


def _write_sweep(arm_dir: Path, accuracies: dict[str, list[float]], with_per_image: int = 0) -> None:
    """An arm's ``sweep/sweep.json``: per strategy one accuracy per fraction; with ``with_per_image`` images
    per cell, each fine-tune's evaluation with its per-image files and the driver's ``sweep/eval_dirs.json``
    that locates them."""
    rows = [
        {"strategy": s, "fraction": f, "accuracy": a, "kappa": 0.0, "map_mse": 0.2,
         "map_pointing_game": POINTING_GAME}
        for s, values in accuracies.items()
        for f, a in zip(FRACTIONS, values)
    ]  # fmt: skip
    (arm_dir / "sweep").mkdir(parents=True)
    (arm_dir / "sweep" / "sweep.json").write_text(json.dumps(rows))
    if with_per_image:
        located: dict[str, dict[str, str]] = {}
        for row in rows:
            relative = f"finetune/mask_{row['strategy']}_{row['fraction']}/eval_test"
            _write_per_image(arm_dir / relative, row["accuracy"], with_per_image)
            located.setdefault(row["strategy"], {})[str(float(row["fraction"]))] = relative
        (arm_dir / "sweep" / "eval_dirs.json").write_text(json.dumps(located))


@pytest.fixture
def runs(tmp_path: Path) -> Path:
    """Finished runs: the study's arm (``branches``, the judged one) with per-image files of 40 images per
    cell, ``whole`` (higher test figures) with recorded figures only."""
    _write_trained(tmp_path, 0.52, n=100)
    _write_sweep(
        tmp_path / "branches",
        {"random": [0.5, 0.9, 1.0, 0.95, 0.975], "lowest_confidence": [0.6] * 5},
        with_per_image=40,
    )
    _write_sweep(tmp_path / "whole", {"random": [0.9, 0.95, 0.975, 1.0, 1.0], "lowest_confidence": [0.9] * 5})
    return tmp_path


def test_every_cell_has_its_interval_and_only_the_declared_arm_is_judged(runs) -> None:
    assert dc.JUDGED_ARM == "branches" and dc.JUDGED_ARM in dc.ARMS  # declared before any test figure
    report = dc.results(runs, STRATEGIES, FRACTIONS, ["branches", "whole"], SETTINGS)
    assert report["judged_arm"] == "branches" and list(report["arms"]) == ["branches", "whole"]
    assert not {"arm", "after"} & set(report)  # no arm picked for its test figures
    for arm in report["arms"].values():
        assert set(arm) == {"description", "after", "pointing_game"}
    before = report["before"]
    low, high = before["test_accuracy"]["ci95"]
    assert before["test_accuracy"]["mean"] == 0.52 and before["test_accuracy"]["n"] == 100
    assert low < 0.52 < high < 0.65
    assert before["map_pointing_game"]["mean"] == POINTING_GAME and before["map_pointing_game"]["n"] == 100
    branches, whole = report["arms"]["branches"], report["arms"]["whole"]
    assert {f: cell["mean"] for f, cell in branches["after"]["random"].items()} == {
        "0.1": 0.5, "0.2": 0.9, "0.3": 1.0, "0.5": 0.95, "1.0": 0.975
    }  # fmt: skip
    assert branches["after"]["random"]["0.3"] == {"mean": 1.0, "ci95": [1.0, 1.0], "n": 40}
    game = branches["pointing_game"]["lowest_confidence"]["1.0"]
    assert (
        game["mean"] == POINTING_GAME
        and game["n"] == 40
        and game["ci95"][0] < POINTING_GAME < game["ci95"][1]
    )
    assert whole["after"]["random"]["0.3"] == {"mean": 0.975}  # no per-image files there: the bare figure
    target = report["target"]
    assert target["arm"] == "branches" and target["before_met"] and target["before_verdict"] == "met"
    verdicts = {(c["strategy"], c["fraction"]): c["verdict"] for c in target["cells"]}
    assert verdicts == {
        ("random", 0.1): "missed", ("random", 0.2): "not distinguishable at this n", ("random", 0.3): "met",
        ("lowest_confidence", 0.1): "missed", ("lowest_confidence", 0.2): "missed",
        ("lowest_confidence", 0.3): "missed",
    }  # fmt: skip
    assert target["verdicts"] == {"missed": 4, "not distinguishable at this n": 1, "met": 1}
    assert target["cells_met"] == 1 and target["after_met"] and target["met"]
    assert report["settings"] is SETTINGS


def test_a_higher_arm_does_not_replace_the_judged_one(runs) -> None:
    """Without its one clean cell the judged arm misses the target, though ``whole`` reads higher on test."""
    rows = json.loads((runs / "branches" / "sweep" / "sweep.json").read_text())
    for row in rows:
        if row["strategy"] == "random" and row["fraction"] == 0.3:
            row["accuracy"] = 0.9
    (runs / "branches" / "sweep" / "sweep.json").write_text(json.dumps(rows))
    _write_per_image(runs / "branches" / "finetune" / "mask_random_0.3" / "eval_test", 0.9, 40)
    report = dc.results(runs, STRATEGIES, FRACTIONS, ["branches", "whole"], SETTINGS)
    assert report["target"]["cells_met"] == 0 and report["target"]["after_met"] is False
    assert report["target"]["met"] is False
    assert report["arms"]["whole"]["after"]["random"]["0.3"]["mean"] == 0.975  # reported, not judged
    only_whole = dc.results(runs, STRATEGIES, FRACTIONS, ["whole"], SETTINGS)
    assert only_whole["target"]["after_met"] is None and only_whole["target"]["cells"] == []


def test_a_figure_without_an_interval_meets_no_target(runs) -> None:
    """The judged arm's cells without per-image files: a bare 1.0 is "no interval", never "met"."""
    (runs / "branches" / "sweep" / "eval_dirs.json").unlink()
    for path in (runs / "trained" / "eval_test").glob("*.csv"):
        path.unlink()
    report = dc.results(runs, STRATEGIES, FRACTIONS, ["branches"], SETTINGS)
    target = report["target"]
    assert target["before_verdict"] == "no interval" and not target["before_met"]
    assert {c["verdict"] for c in target["cells"]} == {"no interval"}
    assert target["cells_met"] == 0 and target["after_met"] is False and target["met"] is False


def test_per_image_files_that_do_not_match_the_scored_figure_are_refused(runs) -> None:
    _write_per_image(runs / "branches" / "finetune" / "mask_random_0.2" / "eval_test", 0.8, 40)
    with pytest.raises(InputError, match=r"mask_random_0.2/eval_test: accuracy 0.8000 of its per-image"):
        dc.results(runs, STRATEGIES, FRACTIONS, ["branches"], SETTINGS)


def test_renderer_prints_intervals_and_judges_only_the_declared_arm(runs) -> None:
    report = json.loads(json.dumps(dc.results(runs, STRATEGIES, FRACTIONS, ["branches", "whole"], SETTINGS)))
    table = dc.render(report)
    assert "| trained without map supervision (before) | 0.520 [" in table
    assert "| strategy | 10% | 20% | 30% | 50% | 100% |" in table
    assert "`branches` (judged), fine-tuning" in table and "`whole`, fine-tuning" in table
    # the judged arm: bold only where the whole interval clears 0.85 within 30 %
    assert "| `random` | 0.500 [" in table and "| **1.000 [1.000, 1.000]** / 0.250 [" in table
    assert table.count("**") == 2
    # the other arm: bare figures, judged nowhere, however high
    assert (
        "| `random` | 0.900 / 0.250 | 0.950 / 0.250 | 0.975 / 0.250 | 1.000 / 0.250 | 1.000 / 0.250 |"
        in table
    )
    assert "judged on arm `branches` (declared before any test figure was read" in table
    assert (
        "before met; after, the 6 cells with ≤ 30% corrected (each strategy and fraction, none picked): "
        "1 met, 4 missed, 1 not distinguishable at this n. Target met." in table
    )
    assert "best" not in table
    assert "Brackets: bootstrap 95 % intervals over each cell's test images" in table
    assert "800 training, 200 validation" in table and "scored at its last epoch" in table
    assert "110 min in all" in table


def test_without_intervals_the_renderer_says_no_interval_not_met(runs) -> None:
    (runs / "branches" / "sweep" / "eval_dirs.json").unlink()
    for path in (runs / "trained" / "eval_test").glob("*.csv"):
        path.unlink()
    table = dc.render(dc.results(runs, STRATEGIES, FRACTIONS, ["branches"], SETTINGS))
    assert (
        "before no interval; after, the 6 cells" in table and ": 6 no interval. Target no interval" in table
    )
    assert "**" not in table and " met" not in table


def test_the_older_results_files_render_without_judging(runs) -> None:
    """The committed file (no declared arm, bare figures, the old pick of an arm and its best cell) renders
    every cell and repeats no pick; a file with the intervals beside the cells (``after_ci``) shows them."""
    block = dc.BLOCKS["demo_correction"]
    table = block.render(json.loads(block.path.read_text()))
    assert "| trained without map supervision (before) | 0.677 | 0.145 |" in table
    assert "not judged from this results file (re-run pending)" in table
    assert (
        "| `random` | 0.710 / 0.995 | 0.802 / 1.000 | 0.715 / 1.000 | 0.820 / 1.000 | 0.870 / 1.000 |"
        in table
    )
    assert "(judged)" not in table and "**" not in table and " met" not in table and "best" not in table
    assert "No intervals" in table
    between = {
        "before": {"test_accuracy": 0.52, "map_pointing_game": 0.25,
                   "test_accuracy_ci": {"mean": 0.52, "ci95": [0.42, 0.62], "n": 100}},
        "judged_arm": "branches",
        "arms": {"branches": {"description": "d", "after": {"random": {"0.1": 0.9}},
                              "after_ci": {"random": {"0.1": {"mean": 0.9, "ci95": [0.86, 0.95], "n": 40}}},
                              "pointing_game": {"random": {"0.1": 0.25}}}},
        "target": {**dc.TARGET, "after_met": True},
        "settings": {**SETTINGS, "fractions": [0.1]},
    }  # fmt: skip
    table = dc.render(between)
    assert "| `random` | **0.900 [0.860, 0.950]** / 0.250 |" in table and "Target met." in table


def test_missing_runs_are_named_with_the_command_that_makes_them(runs) -> None:
    with pytest.raises(
        InputError, match=r"sweep/sweep.json: lacks largest_map_error 0.1, .*demo_correction run"
    ):
        dc.results(runs, ["random", "largest_map_error"], FRACTIONS, ["branches"], SETTINGS)
    (runs / "whole" / "sweep" / "sweep.json").unlink()
    with pytest.raises(InputError, match=r"whole/sweep/sweep.json: missing: run .*demo_correction run"):
        dc.results(runs, ["random"], FRACTIONS, ["branches", "whole"], SETTINGS)
    (runs / "trained" / "eval_test" / "metrics.json").unlink()
    with pytest.raises(InputError, match=r"trained/eval_test/metrics.json: missing"):
        dc.results(runs, ["random"], FRACTIONS, ["branches"], SETTINGS)


def test_the_driver_records_where_each_fine_tune_was_evaluated(tmp_path) -> None:
    """``eval_dirs.json`` names each combination's evaluation folder as the bundle configs do, so that a new
    run's cells get their intervals from the per-image files there."""
    for arm, suffix in (("branches", ""), ("whole", "_whole")):
        overrides = {"freeze_features": arm == "branches"}
        path = dc.record_eval_dirs(tmp_path / arm, ["random"], [0.1, 1.0], overrides)
        assert json.loads(path.read_text()) == {
            "random": {
                "0.1": f"finetune/mask_random_0.1{suffix}/eval_test",
                "1.0": f"finetune/mask_random_1.0{suffix}/eval_test",
            }
        }


def test_arguments_are_checked_before_any_run(tmp_path) -> None:
    common = ["run", "--runs", str(tmp_path), "--out", str(tmp_path / "r.json")]
    with pytest.raises(SystemExit):  # argparse: the target is judged at fractions up to 0.3
        dc.parse_args([*common, "--fractions", "0.5", "1.0"])
    args, overrides = dc.parse_args([*common, "--arms", "whole", "--limit", "40"])
    assert args.strategies == ["lowest_confidence", "largest_map_error", "random"]
    assert args.arms == ["whole"] and overrides == {"limit": 40} and not args.publish
    assert dc.below_budget(args, overrides) == ["--arms ['whole']", "bundle overrides {'limit': 40}"]
    with pytest.raises(InputError, match=r"default budget: --arms \['whole'\], bundle overrides"):
        dc.main(["run", "--runs", str(tmp_path), "--publish", "--arms", "whole", "--limit", "40"])
    assert not (tmp_path / "r.json").exists()


def test_run_makes_the_data_trains_and_sweeps_each_arm_from_the_trained_checkpoint(tmp_path, monkeypatch):
    from monai_xai.experiments import runner

    steps = []
    monkeypatch.setattr(runner.StepRunner, "run", lambda self, step: steps.append(step))
    monkeypatch.setattr(dc, "split_sizes", lambda data: {"train": 48, "val": 16, "test": 32})
    monkeypatch.setattr(dc, "results", lambda runs, strategies, fractions, arms, settings: {
        "before": {"test_accuracy": 0.5}, "settings": settings,
        "target": {"before_verdict": "-", "arm": "branches", "cells_met": 0, "cells": [],
                   "fraction_at_most": 0.3, "after_at_least": 0.85, "met": None},
    })  # fmt: skip
    data, runs = tmp_path / "data", tmp_path / "runs"
    argv = ["run", "--data", str(data), "--n_train", "48", "--n_val", "16", "--n_test", "32", "--epochs", "1"]
    argv += ["--ft_epochs", "1", "--strategies", "random", "--fractions", "0.1", "0.2", "--runs", str(runs)]
    argv += ["--batch_size", "16"]
    assert dc.main([*argv, "--out", str(tmp_path / "r.json")]) == 0
    names = [s.name for s in steps]
    assert names == ["data", "trained/train", "trained/evaluate", "trained/collect", "branches/sweep",
                     "whole/sweep"]  # fmt: skip
    assert list(steps[0].argv[1:]) == [
        str(REPO / "scripts" / "make_demo_data.py"), "--out", str(data), "--n-train", "48", "--n-val", "16",
        "--n-test", "32", "--seed", "0",
    ]  # fmt: skip
    train = " ".join(steps[1].argv)
    assert "-m monai.bundle run" in train and f"--dataset_dir {data}" in train and "--batch_size 16" in train
    assert "--max_epochs 1 --faithfulness_methods [] --output_dir " + str(runs / "trained") in train
    assert "--logging_file" not in train  # as the in-process runs had it
    checkpoint = runs / "trained" / "checkpoints" / "best.pt"
    assert steps[2].run_dir == runs / "trained" / "eval_test" and steps[2].inputs == (checkpoint,)
    assert "collect.json']" in steps[3].argv[steps[3].argv.index("--config_file") + 1]
    branches, whole = (" ".join(s.argv) for s in steps[4:])
    assert (
        "-m monai_xai.active_learning.sweep" in branches
        and "--strategies random --fractions 0.1 0.2" in branches
    )
    assert (
        f"--pretrained_checkpoint {checkpoint}" in branches
        and "--max_epochs 1 --map_weights 10.0" in branches
    )
    assert "--checkpoint $os.path.join(@ckpt_dir, 'latest.pt')" in branches
    assert branches.endswith("--freeze_features true") and whole.endswith("--freeze_features false")
    assert steps[5].run_dir == runs / "whole" and steps[5].inputs == (
        checkpoint,
        checkpoint.parents[1] / "correction" / "records.csv",
    )
    import monai_xai.active_learning.sweep as sweep  # the sweep reads the arm's overrides back unchanged

    monkeypatch.setattr(sweep, "run_sweep", lambda *parsed: parsed)
    parsed = sweep.main(list(steps[5].argv[3:]))
    assert parsed[3:6] == (str(runs / "whole"), ["random"], [0.1, 0.2]) and parsed[7] == {}
    assert parsed[6] == dc.finetune_overrides(dc.parse_args(argv)[0], {"batch_size": 16}, runs, "whole")
    located = json.loads((runs / "whole" / "sweep" / "eval_dirs.json").read_text())
    assert located == {"random": {"0.1": "finetune/mask_random_0.1_whole/eval_test",
                                  "0.2": "finetune/mask_random_0.2_whole/eval_test"}}  # fmt: skip
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["settings"]["images"] == {"train": 48, "val": 16, "test": 32}
    assert report["settings"]["bundle_overrides"] == {"batch_size": 16} and report["wall_time"]["steps"] == {}
    (data / "labels.csv").parent.mkdir(parents=True)
    (data / "labels.csv").write_text("image,label,split\n")
    assert dc.steps(dc.parse_args(argv)[0], {}, runs)[0].name == "trained/train"  # the data are there
    with pytest.raises(InputError, match=r"epochs 1 < 12, ft_epochs 1 < 15, n_train 48 < 800"):
        dc.main([*argv, "--publish"])


def test_the_wall_time_of_the_runner_is_rendered(runs) -> None:
    report = json.loads(json.dumps(dc.results(runs, STRATEGIES, FRACTIONS, ["branches"], SETTINGS)))
    report["wall_time"] = {"seconds": 1800.0, "resumed": False, "steps": {}}
    assert "30 min in all" in dc.render(report)


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
