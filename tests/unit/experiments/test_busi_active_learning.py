"""monai_xai.experiments.busi_active_learning pools the seeds of the BUSI active-learning sweep into one
results file (pooled 95 % intervals from the per-image files, every seed's value with mean ± sd, the fraction
reaching 90 % of the map-MSE gain, no strategy named best) and renders it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from monai_xai.errors import InputError
from monai_xai.experiments import busi_active_learning as al

FRACTIONS = (0.1, 0.3, 1.0)
#: strategy -> fraction -> one value per seed; largest_map_error gains 0.06, 0.10, 0.11 on the mean map MSE
#: of 0.22 before (90 % of 0.11 first reached at 30 %), random makes the maps worse (no gain).
MAP_MSE = {
    "largest_map_error": {0.1: [0.15, 0.16, 0.17], 0.3: [0.11, 0.12, 0.13], 1.0: [0.11, 0.11, 0.11]},
    "random": {f: [0.25, 0.26, 0.27] for f in FRACTIONS},
}
ACCURACY = {
    "largest_map_error": {f: [0.8, 0.85, 0.9] for f in FRACTIONS},
    "random": {f: [0.9, 0.9, 0.9] for f in FRACTIONS},
}
BEFORE = {"map_mse": [0.20, 0.22, 0.24], "accuracy": [0.7, 0.8, 0.9], "pointing_game": [0.3, 0.4, 0.5]}
#: the one combination whose map pointing game seed1 lacks
NO_POINTING_GAME = ("random", 0.3, 1)
#: test images of every evaluation
N = 20


def _write_per_image(eval_dir: Path, accuracy: float, map_mse: float, pointing_game: float) -> None:
    """``predictions.csv`` with the given accuracy (half of each class) and ``attention_per_image.csv`` whose
    means are ``map_mse`` (alternating ± 0.05) and ``pointing_game``."""
    correct = round(accuracy * N)
    labels = [i % 2 for i in range(N)]
    preds = [label if i < correct else 1 - label for i, label in enumerate(labels)]
    rows = ["source,patient,label,pred,decision,prob_benign,prob_malignant"]
    rows += [f"img{i}.png,,{y},{p},{p},0.5,0.5" for i, (y, p) in enumerate(zip(labels, preds))]
    eval_dir.mkdir(parents=True, exist_ok=True)
    (eval_dir / "predictions.csv").write_text("\n".join(rows) + "\n")
    hits = round(pointing_game * N)
    maps = ["source,method,map_mse,pointing_game,energy_inside_mask,map_iou"]
    maps += [
        f"img{i}.png,attention,{map_mse + (0.05 if i % 2 else -0.05):.5f},{float(i < hits)},0.5,0.1"
        for i in range(N)
    ]
    (eval_dir / "attention_per_image.csv").write_text("\n".join(maps) + "\n")


def _write_seed(runs: Path, k: int, per_image: bool = True) -> Path:
    """``seed<k>``: its sweep, its model before correction, and (``per_image``) the per-image files of that
    model and of every ``largest_map_error`` fine-tune where the bundle configs put them."""
    seed = runs / f"seed{k}"
    rows = []
    for strategy, by_fraction in MAP_MSE.items():
        for f, values in by_fraction.items():
            row = {"strategy": strategy, "fraction": f, "accuracy": ACCURACY[strategy][f][k], "kappa": 0.0,
                   "map_mse": values[k], "map_pointing_game": 0.5 + 0.1 * k}  # fmt: skip
            if (strategy, f, k) == NO_POINTING_GAME:
                del row["map_pointing_game"]
            rows.append(row)
            if per_image and strategy == "largest_map_error":
                eval_dir = seed / "finetune" / f"mask_{strategy}_{f}" / "eval_test"
                _write_per_image(eval_dir, row["accuracy"], row["map_mse"], row["map_pointing_game"])
    (seed / "sweep").mkdir(parents=True)
    (seed / "sweep" / "sweep.json").write_text(json.dumps(rows))
    metrics = {
        "image": {"accuracy": BEFORE["accuracy"][k], "auc": 0.5},
        "attention_agreement": {
            "attention": {"map_mse": BEFORE["map_mse"][k], "pointing_game": BEFORE["pointing_game"][k]}
        },
    }
    before = seed / "pretrained" / "eval_test"
    before.mkdir(parents=True)
    (before / "metrics.json").write_text(json.dumps(metrics))
    if per_image:
        _write_per_image(before, BEFORE["accuracy"][k], BEFORE["map_mse"][k], BEFORE["pointing_game"][k])
    identity = {"network": {"backbone": "resnet18", "spatial_size": [128, 128]}, "data": {"dataset": "busi"}}
    (seed / "pretrained" / "run.json").write_text(json.dumps({"identity": identity}))
    return seed


@pytest.fixture
def runs(tmp_path: Path) -> Path:
    """Three finished seeds, and a folder that is not a seed."""
    runs = tmp_path / "active_learning"
    for k in range(3):
        _write_seed(runs, k)
    (runs / "logs").mkdir()
    return runs


BUDGET = ["--max_epochs", "40", "--patience", "8", "--ft_epochs", "15", "--map_weights", "10",
          "--ft_learning_rate", "0.001"]  # fmt: skip


def test_figures_are_pooled_over_the_seeds_with_intervals(runs: Path, tmp_path: Path) -> None:
    out = tmp_path / "results" / "busi_active_learning.json"
    assert al.main(["collect", "--runs", str(runs), "--out", str(out), *BUDGET]) == 0
    report = json.loads(out.read_text())
    assert report["seeds"] == 3 and report["seed_names"] == ["seed0", "seed1", "seed2"]
    assert report["fractions"] == [0.1, 0.3, 1.0]
    assert list(report["strategies"]) == ["largest_map_error", "random"]
    assert list(report["strategies"]["random"]) == ["0.1", "0.3", "1.0"]
    mse = report["strategies"]["largest_map_error"]["0.1"]["map_mse"]
    assert mse["mean"] == pytest.approx(0.16) and mse["n_runs"] == 3 and mse["n"] == N
    assert mse["ci95"][0] < 0.15 and mse["ci95"][1] > 0.17  # covers the seeds' spread and the images'
    assert mse["seeds"]["values"] == [0.15, 0.16, 0.17]
    assert mse["seeds"]["sd"] == pytest.approx(0.01) and mse["seeds"]["n"] == 3
    accuracy = report["strategies"]["largest_map_error"]["0.3"]["accuracy"]
    assert accuracy["mean"] == pytest.approx(0.85) and accuracy["ci95"][0] < 0.8 < 0.9 < accuracy["ci95"][1]
    # random kept no per-image files: its seeds' mean and sd alone
    random = report["strategies"]["random"]["0.1"]["map_mse"]
    assert "ci95" not in random and random["mean"] == pytest.approx(0.26)
    assert random["seeds"]["sd"] == pytest.approx(0.01)
    # seed1 lacks the figure: it keeps its place as null and is counted missing, no interval
    game = report["strategies"]["random"]["0.3"]["map_pointing_game"]
    assert game["seeds"]["values"] == [0.5, None, 0.7] and game["seeds"]["missing"] == 1
    assert game["mean"] == pytest.approx(0.6) and game["seeds"]["sd"] == pytest.approx(0.1414214)
    before = report["before"]
    assert before["map_mse"]["mean"] == pytest.approx(0.22) and "ci95" in before["map_mse"]
    assert before["accuracy"]["seeds"]["sd"] == pytest.approx(0.1)
    assert before["map_pointing_game"]["seeds"]["values"] == [0.3, 0.4, 0.5]
    assert not [key for key in json.dumps(report).split('"') if key.startswith("best")]  # no strategy picked
    assert report["settings"] == {
        "dataset": "busi", "backbone": "resnet18", "spatial_size": 128, "max_epochs": 40, "patience": 8,
        "ft_epochs": 15, "map_weights": 10.0, "ft_learning_rate": 0.001,
    }  # fmt: skip
    metrics = al.tracking_metrics(report)
    assert metrics["largest_map_error_map_mse_mean_30"] == pytest.approx(0.12)
    assert metrics["random_accuracy_mean_100"] == pytest.approx(0.9)


def test_one_seed_has_no_sd(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    seed = _write_seed(runs, 0, per_image=False)
    rows = [r for r in json.loads((seed / "sweep" / "sweep.json").read_text()) if r["fraction"] != 0.3]
    (seed / "sweep" / "sweep.json").write_text(json.dumps(rows))
    report = al.results(runs)
    assert report["seeds"] == 1 and report["fractions"] == [0.1, 1.0]
    assert report["strategies"]["largest_map_error"]["0.1"]["map_mse"] == {
        "mean": 0.15, "seeds": {"mean": 0.15, "sd": None, "n": 1, "missing": 0, "values": [0.15]}
    }  # fmt: skip
    assert report["settings"] == {"dataset": "busi", "backbone": "resnet18", "spatial_size": 128}
    assert "| `largest_map_error` | 0.1500 | 0.1100 |" in al.render(report)


def test_fraction_for_gain(runs: Path) -> None:
    gain = al.results(runs)["fraction_for_gain"]
    assert gain == {"share": 0.9, "largest_map_error": {"map_mse": 0.3}, "random": {"map_mse": None}}
    # gains 0.09, 0.095, 0.1 of 0.1: the smallest fraction already reaches 90 %
    assert al.fraction_for_gain(0.2, {"0.1": 0.11, "0.5": 0.105, "1.0": 0.1}, 0.9) == 0.1
    # the gain at the largest fraction decides, even when a smaller one gained more
    assert al.fraction_for_gain(0.2, {"0.1": 0.05, "1.0": 0.1}, 0.9) == 0.1
    assert al.fraction_for_gain(0.2, {"0.1": 0.19, "1.0": 0.2}, 0.9) is None  # no gain
    assert al.fraction_for_gain(None, {"0.1": 0.19, "1.0": 0.1}, 0.9) is None  # no figure before


def test_per_image_files_that_do_not_match_the_sweep_are_refused(runs: Path) -> None:
    _write_per_image(runs / "seed2" / "finetune" / "mask_largest_map_error_0.3" / "eval_test", 0.5, 0.13, 0.7)
    with pytest.raises(InputError, match=r"largest_map_error 0.3: accuracy 0.5000 of a seed's per-image"):
        al.results(runs)


def test_missing_sweep_names_the_file_and_the_driver(runs: Path, tmp_path: Path) -> None:
    (runs / "seed1" / "sweep" / "sweep.json").unlink()
    with pytest.raises(InputError, match=r"seed1/sweep/sweep\.json: missing: run .*busi_active_learning run"):
        al.main(["collect", "--runs", str(runs), "--out", str(tmp_path / "out.json")])
    assert not (tmp_path / "out.json").exists()
    with pytest.raises(InputError, match="no seed<k> folders"):
        al.results(tmp_path / "empty")


def test_seeds_with_other_combinations_are_refused(runs: Path) -> None:
    sweep = runs / "seed2" / "sweep" / "sweep.json"
    rows = json.loads(sweep.read_text())
    sweep.write_text(json.dumps([r for r in rows if (r["strategy"], r["fraction"]) != ("random", 1.0)]))
    with pytest.raises(InputError, match=r"seed2 lacks random 1\.0"):
        al.results(runs)


def test_renderer(runs: Path) -> None:
    text = al.render(json.loads(json.dumps(al.results(runs, {"ft_epochs": 15}))))
    assert "3 seeds (seed0, seed1, seed2), pooled over the seeds: 95 % intervals" in text
    assert "| strategy: map MSE | 10 % | 30 % | 100 % |" in text
    assert "| `largest_map_error` | 0.1600 [" in text
    assert "| `random` | 0.2600 ± 0.0100 | 0.2600 ± 0.0100 | 0.2600 ± 0.0100 |" in text
    assert "| `random` | 0.900 ± 0.000 | 0.900 ± 0.000 | 0.900 ± 0.000 |" in text
    assert "| strategy: map pointing game | 10 % | 30 % | 100 % |" in text
    assert "Before correction: map MSE 0.2200 [" in text and "accuracy 0.800 [" in text
    assert "90 % of its full-correction map-MSE gain: `largest_map_error` 30 %, `random` never" in text
    assert "Settings: dataset `busi`; backbone resnet18; 128x128; fine-tuning 15 epochs." in text
    assert "No strategy is named best." in text and "**" not in text


def test_the_committed_results_file_renders_and_restates_the_metadata() -> None:
    block = al.BLOCKS["busi_active_learning"]
    report = json.loads(block.path.read_text())
    text = block.render(report)
    assert (
        "mean ± sd over the seeds (no intervals: these runs kept no per-image scores; re-run pending)" in text
    )
    assert "| `lowest_confidence` | 0.2266 ± 0.0268 |" in text
    metadata = json.loads((block.path.parents[2] / "configs" / "metadata.json").read_text())
    derived = al.EVAL_METRICS[block.results](report)
    assert derived == {k: metadata["eval_metrics"][k] for k in derived}


def test_figure_is_written_and_the_docs_figure_needs_publish(runs: Path, tmp_path: Path) -> None:
    figure = tmp_path / "curves.png"
    al.main(["collect", "--runs", str(runs), "--out", str(tmp_path / "out.json"), "--figure", str(figure)])
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    docs_figure = al.REPO / al.FIGURE
    with pytest.raises(InputError, match="only with --publish"):
        al.main(
            ["collect", "--runs", str(runs), "--out", str(tmp_path / "o.json"), "--figure", str(docs_figure)]
        )


def test_run_trains_each_seed_s_model_then_sweeps_it_with_the_seed(tmp_path, monkeypatch) -> None:
    from monai_xai.experiments import runner

    steps = []
    monkeypatch.setattr(runner.StepRunner, "run", lambda self, step: steps.append(step))
    monkeypatch.setattr(
        al, "results", lambda runs, budget: {"strategies": {}, "seeds": 2, "settings": budget}
    )
    monkeypatch.setattr(al, "curves_figure", lambda report: None)
    monkeypatch.setattr(al, "tracking_metrics", lambda report: {})
    monkeypatch.setattr("monai_xai.visualize.save_figure", lambda figure, path: path)
    monkeypatch.setattr("monai_xai.tracking.log_to_run", lambda *args, **kwargs: None)
    runs, models = tmp_path / "ft30", tmp_path / "study"
    argv = ["run", "--runs", str(runs), "--models", str(models), "--seeds", "0", "1", "--size", "64"]
    argv += ["--fractions", "0.5", "1.0", "--ft_epochs", "30", "--limit", "24"]
    assert al.main([*argv, "--out", str(tmp_path / "r.json")]) == 0
    assert [s.name for s in steps] == [
        "resnet18/multiscale/train", "resnet18/multiscale/evaluate", "resnet18/multiscale/collect",
        "active_learning/seed0/sweep",
        "resnet18/multiscale_seed1/train", "resnet18/multiscale_seed1/evaluate",
        "resnet18/multiscale_seed1/collect", "active_learning/seed1/sweep",
    ]  # fmt: skip
    # the models are trained (or found done) where --models says, logging to that folder's store
    seed1 = " ".join(steps[4].argv)
    assert steps[4].run_dir == models / "resnet18" / "multiscale_seed1"
    assert (
        "--seed 1" in seed1 and "--faithfulness_methods []" in seed1 and "--early_stop_patience 10" in seed1
    )
    assert f"sqlite:///{models}/mlruns.db" in seed1 and "--seed" not in steps[0].argv
    assert "--seed 1" in " ".join(steps[6].argv) and "--max_epochs" not in steps[6].argv
    sweep = steps[7]
    text = " ".join(sweep.argv)
    assert "-m monai_xai.active_learning.sweep" in text and "--fractions 0.5 1.0" in text
    assert "--max_epochs 30 --map_weights 10.0 --learning_rate 0.001 --seed 1" in text
    assert sweep.argv[sweep.argv.index("--strategy_args") + 1] == '{"random": {"seed": 1}}'
    assert f"sqlite:///{runs}/mlruns.db" in text and "--limit 24" in text
    assert "--output_dir " + str(runs / "active_learning" / "seed1") in text
    assert sweep.run_dir == runs / "active_learning" / "seed1" / "finetune"
    import monai_xai.active_learning.sweep as sweeper  # it reads the settings back unchanged

    monkeypatch.setattr(sweeper, "run_sweep", lambda *parsed: parsed)
    parsed = sweeper.main(list(sweep.argv[3:]))
    assert parsed[5] == [0.5, 1.0] and parsed[7] == {"random": {"seed": 1}}
    assert parsed[6] == {
        "backbone": "resnet18", "spatial_size": [64, 64], "max_epochs": 30, "map_weights": 10.0,
        "learning_rate": 0.001, "seed": 1, "faithfulness_methods": [], "tracking_uri": f"sqlite:///{runs}/mlruns.db",
        "limit": 24,
    }  # fmt: skip
    pretrained = models / "resnet18" / "multiscale_seed1"
    assert sweep.inputs == (pretrained / "checkpoints" / "best.pt", pretrained / "correction" / "records.csv")
    for name, target in (("pretrained", pretrained), ("checkpoints", pretrained / "checkpoints")):
        assert (runs / "active_learning" / "seed1" / name).readlink() == target
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["settings"]["ft_epochs"] == 30 and report["wall_time"]["steps"] == {}
    with pytest.raises(InputError, match=r"size 64 < 128, bundle overrides .*seeds 2 < 3, fractions 2 < 10"):
        al.main([*argv, "--publish"])
    assert len(steps) == 8
