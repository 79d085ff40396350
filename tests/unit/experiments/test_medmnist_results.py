"""medmnist trains the arms seed by seed through the runner, pools the seeds' test runs into intervals,
judges them against the paper on the pooled interval, and renders them."""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import numpy as np
import pytest

from monai_xai.errors import InputError
from monai_xai.experiments import medmnist

SEEDS = (0, 1)


@pytest.fixture(autouse=True)
def few_resamples(monkeypatch):
    monkeypatch.setattr(medmnist, "N_BOOT", 200)


@pytest.fixture(autouse=True)
def logged_params(monkeypatch):
    """The MLflow parameters of each run folder, by its uid (no MLflow store in these tests)."""
    params = {}
    monkeypatch.setattr(medmnist, "_logged_params", lambda store, uid: params.get(uid, {}))
    return params


def _write_run(run: Path, seed: int, labels, preds, scores, params: dict, epochs: int = 60) -> None:
    (run / "eval_test").mkdir(parents=True)
    uid = f"{run.parent.name}-{run.name}-{seed}"
    identity = {
        "network": {"mode": run.name, "stem": "small"},
        "data": {"dataset": "breastmnist", "seed": seed},
    }
    (run / "run.json").write_text(json.dumps({"fingerprint": "f", "uid": uid, "identity": identity}))
    params[uid] = {"max_epochs": str(epochs), "batch_size": "64"}
    (run / "eval_test" / "metrics.json").write_text(json.dumps({"n_images": int(labels.size)}))
    with (run / "eval_test" / "predictions.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["source", "patient", "label", "pred", "decision", "prob_normal", "prob_malignant"])
        for i, (y, p, s) in enumerate(zip(labels, preds, scores)):
            writer.writerow([f"{i}.png", "", y, p, p, 1 - s, s])


@pytest.fixture
def runs(tmp_path, logged_params) -> Path:
    """breastmnist over two seeds: a near-perfect `plain` arm (clears the paper) and a `baseline` at chance
    (misses it)."""
    labels = np.repeat([0, 1], [42, 114])
    rng = np.random.default_rng(0)
    for seed in SEEDS:
        folder = tmp_path / f"seed{seed}" / "breastmnist"
        perfect = labels.astype(float) * 0.8 + 0.1
        _write_run(folder / "plain", seed, labels, labels, perfect, logged_params)
        guess = rng.integers(0, 2, labels.size)
        _write_run(folder / "baseline", seed, labels, guess, rng.random(labels.size), logged_params)
    with (tmp_path / "runtime.jsonl").open("w") as f:  # the runner's record of seed 0's plain arm only
        for step, seconds in (("train", 400.0), ("evaluate_test", 38.0)):
            attempt = {"step": f"seed0/breastmnist/plain/{step}", "status": "done", "seconds": seconds}
            attempt |= {"resumed": False, "started": "", "finished": "", "digest": step, "run_dir": ""}
            f.write(json.dumps(attempt) + "\n")
    return tmp_path


def test_results_pool_the_seeds_beside_the_paper_and_render(runs, tmp_path) -> None:
    out = tmp_path / "medmnist.json"
    medmnist.main(["collect", "--runs", str(runs), "--out", str(out)])  # the seeds and datasets found
    report = json.loads(out.read_text())
    entry = report["datasets"]["breastmnist"]
    assert entry["paper"] == {"accuracy": 0.863, "auc": 0.901}
    plain, baseline = entry["arms"]["plain"], entry["arms"]["baseline"]
    assert plain["accuracy"]["mean"] == 1.0 and plain["accuracy"]["n_runs"] == 2 and plain["n_test"] == 156
    assert (plain["stem"], plain["epochs"], plain["batch_size"], plain["seeds"]) == ("small", 60, 64, [0, 1])
    assert plain["reaches_paper"] == {"accuracy": "met", "auc": "met"}
    assert baseline["reaches_paper"] == {"accuracy": "missed", "auc": "missed"}
    low, high = baseline["auc"]["ci95"]
    assert low < baseline["auc"]["mean"] < high and baseline["auc"]["n"] == 156
    assert len(baseline["auc"]["run_estimates"]) == 2
    assert baseline["auc"]["mean"] == pytest.approx(np.mean(baseline["auc"]["run_estimates"]), abs=1e-6)
    # wall times from the runner's record: none for an arm whose steps it did not time
    assert (plain["seconds"], baseline["seconds"]) == (None, None)
    table = medmnist.render(report)
    assert "| dataset | arm | accuracy | AUC | sensitivity | specificity | epochs, stem, seeds |" in table
    assert "| breastmnist (156 test) | ABN (`plain`) | 1.000 [1.000, 1.000] |" in table
    assert "| 60, `small`, 2 | – |" in table
    assert "| breastmnist | MedMNIST v2, ResNet-18 (28) | 0.863 | 0.901 | | | 100 | |" in table
    assert "| breastmnist | ABN (`plain`) | met | met |" in table
    assert "| breastmnist | plain ResNet18 (`baseline`) | missed | missed |" in table
    assert "95 % interval (pooled over 2 seed(s): each of 200 resamples draws one seed's run" in table


def test_wall_time_comes_from_the_runner_record(runs) -> None:
    report = medmnist.collect(runs, seeds=[0])
    plain = report["datasets"]["breastmnist"]["arms"]["plain"]
    assert plain["seconds"] == 438.0 and plain["seconds_resumed"] is False
    assert "| 60, `small`, 1 | 438 s |" in medmnist.render(report)
    assert report["wall_time"]["seconds"] == 438.0


def test_seeds_of_another_recipe_are_refused(runs, logged_params) -> None:
    run = runs / "seed1" / "breastmnist" / "plain"
    logged_params[json.loads((run / "run.json").read_text())["uid"]]["max_epochs"] = "10"
    with pytest.raises(
        InputError, match=r"seed1/breastmnist/plain: its settings .*'epochs': 10.*not one recipe"
    ):
        medmnist.collect(runs)
    (runs / "seed1").rename(runs / "seed5")  # a folder that holds another seed's run
    with pytest.raises(InputError, match="trained with seed 1, not 5"):
        medmnist.collect(runs)


def test_figures_without_intervals_are_never_met() -> None:
    """A results file from before intervals: a figure above the paper's is not said to reach it."""
    figures = {"accuracy": 0.95, "auc": 0.99, "sensitivity": 0.9, "specificity": 0.9}
    arm = {**figures, "epochs": 10, "stem": "standard", "batch_size": 64, "seconds": 1, "n_test": 624}
    report = {
        "reference": "MedMNIST v2, ResNet-18 (28)",
        "datasets": {"pneumoniamnist": {"paper": {"accuracy": 0.854, "auc": 0.944}, "arms": {"plain": arm}}},
    }
    table = medmnist.render(report)
    assert "| epochs, stem | train + test |" in table and "| 10, `standard` | 1 s |" in table
    assert (
        "| pneumoniamnist | ABN (`plain`) | no interval (re-run pending) | no interval (re-run pending) |"
        in table
    )
    assert "| met |" not in table
    assert "(stratified bootstrap over the test images)" in table


def test_a_missing_run_names_the_file_and_the_command(runs, tmp_path) -> None:
    (runs / "seed1" / "breastmnist" / "plain" / "eval_test" / "predictions.csv").unlink()
    out = tmp_path / "out" / "medmnist.json"
    with pytest.raises(
        InputError, match=r"seed1/breastmnist/plain/eval_test/predictions.csv: missing: run .*medmnist run"
    ):
        medmnist.main(["collect", "--runs", str(runs), "--datasets", "breastmnist", "--out", str(out)])
    assert not out.exists()


def test_run_trains_then_evaluates_every_seed_dataset_and_arm(tmp_path, monkeypatch) -> None:
    from monai_xai.experiments import runner

    steps = []
    monkeypatch.setattr(runner.StepRunner, "run", lambda self, step: steps.append(step))
    collected = {}
    monkeypatch.setattr(
        medmnist, "collect", lambda runs, datasets, seeds: collected.update(runs=runs, seeds=seeds) or {}
    )
    argv = ["run", "--runs", str(tmp_path / "m"), "--seeds", "0", "1", "--out", str(tmp_path / "r.json")]
    assert medmnist.main([*argv, "--epochs", "pneumoniamnist=2"]) == 0
    names = [s.name for s in steps]
    assert names[:4] == [
        "seed0/pneumoniamnist/baseline/train", "seed0/pneumoniamnist/baseline/evaluate_test",
        "seed0/pneumoniamnist/plain/train", "seed0/pneumoniamnist/plain/evaluate_test",
    ]  # fmt: skip
    assert names[4:8] == [
        f"seed0/breastmnist/{arm}/{s}" for arm in medmnist.ARMS for s in ("train", "evaluate_test")
    ]
    assert len(names) == 16 and names[8] == "seed1/pneumoniamnist/baseline/train"
    train, evaluate = steps[14], steps[15]  # seed 1, breastmnist, plain
    out = tmp_path / "m" / "seed1" / "breastmnist" / "plain"
    assert train.run_dir == out and evaluate.run_dir == out / "eval_test"
    assert evaluate.inputs == (out / "checkpoints" / "best.pt",) and train.inputs == ()
    command = " ".join(evaluate.argv)
    assert (
        "breastmnist.json" in command
        and "evaluate.json" in command
        and "evaluate.json" not in " ".join(train.argv)
    )
    store = f"sqlite:///{tmp_path}/m/mlruns.db"
    options = ("--mode plain", "--max_epochs 60", "--stem small", f"--output_dir {out}", "--batch_size 64")
    for option in (*options, f"--tracking_uri {store}", "--seed 1"):
        assert option in " ".join(train.argv) and option in command
    assert "--max_epochs 2" in " ".join(steps[0].argv) and "--limit" not in command
    assert collected == {"runs": tmp_path / "m", "seeds": [0, 1]}


def test_publish_needs_the_full_budget(tmp_path, monkeypatch) -> None:
    from monai_xai.experiments import runner

    monkeypatch.setattr(runner.StepRunner, "run", lambda self, step: pytest.fail("no step runs"))
    with pytest.raises(InputError, match=r"full budget: seeds 2 < 3, breastmnist epochs 10 < 60"):
        medmnist.main(["run", "--seeds", "0", "1", "--epochs", "breastmnist=10", "--publish"])
    with pytest.raises(
        InputError, match=r"--datasets lacks pneumoniamnist.*breastmnist stem standard, not small"
    ):
        medmnist.main(["run", "--datasets", "breastmnist", "--stem", "breastmnist=standard", "--publish"])
    with pytest.raises(InputError, match="full budget: --limit 64"):
        medmnist.main(["run", "--limit", "64", "--publish"])
    with pytest.raises(InputError, match="give --out"):
        medmnist.main(["run"])
    defaults = argparse.Namespace(
        datasets=list(medmnist.BUDGET), seeds=[0, 1, 2], epochs={}, stem={}, limit=None
    )
    assert medmnist.below_budget(defaults) == []
