"""scripts/experiments/busi_active_learning.py gathers the seeds of the BUSI active-learning sweep into one
results file (mean ± sd per strategy and fraction, the fraction reaching 90 % of the map-MSE gain), and
scripts/render_results.py renders it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

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


def _write_seed(runs: Path, k: int) -> Path:
    """``seed<k>``: its sweep and its model before correction (a folder where the driver makes a symlink)."""
    seed = runs / f"seed{k}"
    rows = []
    for strategy, by_fraction in MAP_MSE.items():
        for f, values in by_fraction.items():
            row = {"strategy": strategy, "fraction": f, "accuracy": ACCURACY[strategy][f][k], "kappa": 0.0,
                   "map_mse": values[k], "map_pointing_game": 0.5 + 0.1 * k}  # fmt: skip
            if (strategy, f, k) == NO_POINTING_GAME:
                del row["map_pointing_game"]
            rows.append(row)
    (seed / "sweep").mkdir(parents=True)
    (seed / "sweep" / "sweep.json").write_text(json.dumps(rows))
    metrics = {
        "image": {"accuracy": BEFORE["accuracy"][k], "auc": 0.5},
        "attention_agreement": {
            "attention": {"map_mse": BEFORE["map_mse"][k], "pointing_game": BEFORE["pointing_game"][k]}
        },
    }
    (seed / "pretrained" / "eval_test").mkdir(parents=True)
    (seed / "pretrained" / "eval_test" / "metrics.json").write_text(json.dumps(metrics))
    return seed


@pytest.fixture
def runs(tmp_path: Path) -> Path:
    """Three finished seeds, and a folder that is not a seed."""
    runs = tmp_path / "active_learning"
    for k in range(3):
        _write_seed(runs, k)
    (runs / "logs").mkdir()
    return runs


@pytest.fixture
def script(load_script):
    return load_script("experiments/busi_active_learning.py")


SETTINGS_ARGS = ["--dataset", "busi_binary", "--backbone", "resnet18", "--spatial_size", "128",
                 "--max_epochs", "40", "--patience", "8", "--ft_epochs", "15", "--map_weights", "10",
                 "--ft_learning_rate", "0.001"]  # fmt: skip


def test_means_and_sds_over_the_seeds(script, runs: Path, tmp_path: Path) -> None:
    out = tmp_path / "results" / "busi_active_learning.json"
    report = script.main(["--runs", str(runs), "--out", str(out), *SETTINGS_ARGS])
    assert json.loads(out.read_text()) == report
    assert report["seeds"] == 3 and report["seed_names"] == ["seed0", "seed1", "seed2"]
    assert report["fractions"] == [0.1, 0.3, 1.0]
    assert list(report["strategies"]) == ["largest_map_error", "random"]
    assert list(report["strategies"]["random"]) == ["0.1", "0.3", "1.0"]
    lme = report["strategies"]["largest_map_error"]
    assert lme["0.1"]["map_mse"]["mean"] == pytest.approx(0.16)
    assert lme["0.1"]["map_mse"]["sd"] == pytest.approx(0.01)
    assert lme["0.1"]["map_mse"]["values"] == [0.15, 0.16, 0.17]
    assert lme["1.0"]["map_mse"]["sd"] == 0.0
    assert lme["0.3"]["accuracy"]["mean"] == pytest.approx(0.85)
    assert lme["0.3"]["accuracy"]["sd"] == pytest.approx(0.05)
    assert lme["0.3"]["map_pointing_game"]["mean"] == pytest.approx(0.6)
    assert lme["0.3"]["map_pointing_game"]["sd"] == pytest.approx(0.1)
    # seed1 lacks the figure: it keeps its place as null, the mean and sd are over seeds 0 and 2
    game = report["strategies"]["random"]["0.3"]["map_pointing_game"]
    assert game["values"] == [0.5, None, 0.7]
    assert game["mean"] == pytest.approx(0.6) and game["sd"] == pytest.approx(0.1414214)
    before = report["before"]
    assert before["map_mse"]["mean"] == pytest.approx(0.22) and before["map_mse"]["sd"] == pytest.approx(0.02)
    assert before["accuracy"]["mean"] == pytest.approx(0.8) and before["accuracy"]["sd"] == pytest.approx(0.1)
    assert before["map_pointing_game"]["values"] == [0.3, 0.4, 0.5]
    assert report["best_at_30"] == {"map_mse": "largest_map_error", "accuracy": "random"}
    assert report["settings"] == {
        "dataset": "busi_binary", "backbone": "resnet18", "spatial_size": 128, "max_epochs": 40,
        "patience": 8, "ft_epochs": 15, "map_weights": 10.0, "ft_learning_rate": 0.001,
    }  # fmt: skip
    metrics = script.tracking_metrics(report)
    assert metrics["largest_map_error_map_mse_mean_30"] == pytest.approx(0.12)
    assert metrics["random_accuracy_mean_100"] == pytest.approx(0.9)


def test_one_seed_has_sd_zero_and_no_best_at_30_without_that_fraction(script, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    seed = _write_seed(runs, 0)
    rows = [r for r in json.loads((seed / "sweep" / "sweep.json").read_text()) if r["fraction"] != 0.3]
    (seed / "sweep" / "sweep.json").write_text(json.dumps(rows))
    report = script.results(runs)
    assert report["seeds"] == 1 and report["fractions"] == [0.1, 1.0]
    assert report["strategies"]["largest_map_error"]["0.1"]["map_mse"] == {
        "mean": 0.15, "sd": 0.0, "values": [0.15]
    }  # fmt: skip
    assert "best_at_30" not in report and report["settings"] == {}


def test_fraction_for_gain(script, runs: Path) -> None:
    gain = script.results(runs)["fraction_for_gain"]
    assert gain == {"share": 0.9, "largest_map_error": {"map_mse": 0.3}, "random": {"map_mse": None}}
    # gains 0.09, 0.095, 0.1 of 0.1: the smallest fraction already reaches 90 %
    assert script.fraction_for_gain(0.2, {"0.1": 0.11, "0.5": 0.105, "1.0": 0.1}, 0.9) == 0.1
    # the gain at the largest fraction decides, even when a smaller one gained more
    assert script.fraction_for_gain(0.2, {"0.1": 0.05, "1.0": 0.1}, 0.9) == 0.1
    assert script.fraction_for_gain(0.2, {"0.1": 0.19, "1.0": 0.2}, 0.9) is None  # no gain
    assert script.fraction_for_gain(None, {"0.1": 0.19, "1.0": 0.1}, 0.9) is None  # no figure before


def test_missing_sweep_names_the_file_and_the_driver(script, runs: Path, tmp_path: Path) -> None:
    (runs / "seed1" / "sweep" / "sweep.json").unlink()
    with pytest.raises(SystemExit, match=r"seed1/sweep/sweep\.json is missing.*multiscale_busi\.sh"):
        script.main(["--runs", str(runs), "--out", str(tmp_path / "out.json")])
    assert not (tmp_path / "out.json").exists()
    with pytest.raises(SystemExit, match="no seed<k> folders"):
        script.results(tmp_path / "empty")


def test_seeds_with_other_combinations_are_refused(script, runs: Path) -> None:
    sweep = runs / "seed2" / "sweep" / "sweep.json"
    rows = json.loads(sweep.read_text())
    sweep.write_text(json.dumps([r for r in rows if (r["strategy"], r["fraction"]) != ("random", 1.0)]))
    with pytest.raises(SystemExit, match=r"seed2 lacks random 1\.0"):
        script.results(runs)


def test_renderer(script, runs: Path, load_script) -> None:
    render = load_script("render_results.py")
    report = script.results(runs, {"dataset": "busi_binary", "backbone": "resnet18", "ft_epochs": 15})
    text = render.busi_active_learning(report)
    assert "over 3 seeds (seed0, seed1, seed2)" in text
    assert "| strategy: map MSE | 10 % | 30 % | 100 % |" in text
    assert "| `largest_map_error` | 0.1600 ± 0.0100 | 0.1200 ± 0.0100 | 0.1100 ± 0.0000 |" in text
    assert "| `random` | 0.900 ± 0.000 | 0.900 ± 0.000 | 0.900 ± 0.000 |" in text
    assert "| `largest_map_error` | 0.850 ± 0.050 |" in text
    assert "| strategy: map pointing game | 10 % | 30 % | 100 % |" in text
    before = "map MSE 0.2200 ± 0.0200, map pointing game 0.400 ± 0.100, accuracy 0.800 ± 0.100"
    assert f"Before correction: {before}." in text
    assert "90 % of its full-correction map-MSE gain: `largest_map_error` 30 %, `random` never" in text
    assert "Settings: dataset `busi_binary`; backbone resnet18; fine-tuning 15 epochs." in text
    assert "busi_active_learning" in render.RENDERERS


def test_figure_is_written(script, runs: Path, tmp_path: Path) -> None:
    figure = tmp_path / "curves.png"
    script.main(["--runs", str(runs), "--out", str(tmp_path / "out.json"), "--figure", str(figure)])
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
