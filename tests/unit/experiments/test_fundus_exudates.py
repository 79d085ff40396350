"""monai_xai.experiments.fundus_exudates: pooled out-of-fold figures of every arm, paired comparisons, the
declared target and claim, the correction sweeps over seeds; its renderer, figures and the steps ``run``
takes."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from monai_xai.errors import InputError
from monai_xai.experiments import fundus_exudates as fe

FOLDS, PER_FOLD, POSITIVES = 3, 12, 5  # images per fold, of which the first 5 have exudates
#: each arm's map: lesion hit rate and pointing game on the images with exudates; its class separation
HIT = {"multiscale": 0.6, "abn": 0.3, "abn_gated": 0.4, "baseline": 0.2}
SIGNAL = {"multiscale": 3.0, "abn": 2.5, "abn_gated": 2.5, "baseline": 2.0}
#: a correction's gain in lesion hit rate over the model before it, by strategy and fraction
GAIN = {("largest_map_error", 0.1): 0.1, ("largest_map_error", 0.3): 0.25, ("random", 0.1): 0.0,
        ("random", 0.3): 0.02}  # fmt: skip


def _sources(fold: int) -> list[str]:
    return [f"/data/images/f{fold}_{i:02d}.jpg" for i in range(PER_FOLD)]


def _write_eval(eval_dir: Path, fold: int, methods: dict[str, float], signal: float, seed: int) -> None:
    """``predictions.csv``, ``attention_per_image.csv`` (hit rates around each method's level, NaN for the
    images without exudates) and ``faithfulness_per_image.csv`` of one fold's test images."""
    rng = np.random.default_rng(seed)
    eval_dir.mkdir(parents=True, exist_ok=True)
    labels = [int(i < POSITIVES) for i in range(PER_FOLD)]
    with open(eval_dir / "predictions.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["source", "patient", "label", "pred", "decision", "prob_no_exudate", "prob_exudate"])
        for source, y in zip(_sources(fold), labels):
            p = 1 / (1 + np.exp(-(signal * (y - 0.5) * 2 + rng.normal(0, 1))))
            writer.writerow([source, "", y, int(p > 0.5), int(p > 0.5), f"{1 - p:.5f}", f"{p:.5f}"])
    with open(eval_dir / "attention_per_image.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["source", "method", "map_mse", "pointing_game", "energy_inside_mask", "map_iou",
                         "lesion_hit_rate"])  # fmt: skip
        for method, level in methods.items():
            for i, (source, y) in enumerate(zip(_sources(fold), labels)):
                if y:
                    hit = float(np.clip(level + (0.05 if i % 2 else -0.05), 0, 1))
                    writer.writerow([source, method, 0.1, float(i < 3), 0.2 + level / 4, 0.1, f"{hit:.5f}"])
                else:
                    writer.writerow([source, method, 0.1, "nan", "nan", "nan", "nan"])
    with open(eval_dir / "faithfulness_per_image.csv", "w", newline="") as handle:
        writer = csv.writer(handle)  # Deletion 0.2 + 0.01 * fold -/+ 0.05, Insertion 0.6
        writer.writerow(["source", "method", "deletion_auc", "insertion_auc"])
        for method in methods:
            for i, source in enumerate(_sources(fold)):
                writer.writerow([source, method, 0.2 + 0.01 * fold + (0.05 if i % 2 else -0.05), 0.6])


def _write_runs(runs: Path, seeds: tuple[int, ...] = (0, 1)) -> None:
    for arm, spec in fe.ARMS.items():
        for fold in range(FOLDS):
            run_dir = runs / arm / f"fold{fold}"
            _write_eval(run_dir / "eval_test", fold, dict.fromkeys(spec.methods, HIT[arm]), SIGNAL[arm], fold)
            split = {"file": "configs/datasets/heimed_splits_oof.json"}
            identity = {
                "data": {"dataset": "heimed_exudates", "datalist_args": {"split_file": split}},
                "network": {"spatial_size": [384, 384], "backbone": "resnet18"},
            }
            (run_dir / "run.json").write_text(json.dumps({"fingerprint": "f", "identity": identity}))
    for seed in seeds:
        for fold in range(FOLDS):
            sweep = runs / "correction" / f"branches_fold{fold}_seed{seed}"
            rows = [{"strategy": s, "fraction": f, "accuracy": 0.8} for s, f in GAIN]
            (sweep / "sweep").mkdir(parents=True)
            (sweep / "sweep" / "sweep.json").write_text(json.dumps(rows))
            for (strategy, fraction), gain in GAIN.items():
                eval_dir = sweep / "finetune" / f"mask_{strategy}_{fraction}" / "eval_test"
                _write_eval(eval_dir, fold, {"attention": HIT["multiscale"] + gain}, 3.0, 10 * seed + fold)


@pytest.fixture(autouse=True)
def fewer_resamples(monkeypatch) -> None:
    monkeypatch.setattr(fe, "N_BOOT", 200)  # the figures' intervals, fast enough for unit tests


@pytest.fixture
def runs(tmp_path: Path) -> Path:
    _write_runs(tmp_path / "study")
    return tmp_path / "study"


@pytest.fixture(scope="module")
def collected(tmp_path_factory) -> tuple[Path, dict]:
    """One study's runs and their results file, shared by the tests that only read them."""
    study = tmp_path_factory.mktemp("collected") / "study"
    _write_runs(study)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(fe, "N_BOOT", 200)
        return study, fe.collect(study)


def test_collect_pools_the_folds_and_pairs_the_arms_image_by_image(collected) -> None:
    _, report = collected
    assert (report["images"], report["positives"], report["folds"]) == (36, 15, 3)
    assert report["settings"]["spatial_size"] == 384 and report["settings"]["cam_layer"] == "network.layer3"
    multiscale = report["arms"]["multiscale"]
    assert multiscale["maps"]["attention"]["lesion_hit_rate"]["mean"] == pytest.approx(0.6, abs=0.01)
    assert multiscale["maps"]["attention"]["lesion_hit_rate"]["n"] == 15  # the images with exudates only
    assert len(multiscale["fold_auc"]) == 3 and multiscale["auc"]["n"] == 36
    deletion = multiscale["maps"]["attention"]["deletion_auc"]
    assert deletion["mean"] == pytest.approx(0.21) and deletion["n"] == 36 and deletion["ci95"][0] < 0.21
    assert set(report["arms"]["baseline"]["maps"]) == {"gradcampp", "gradcam"}
    versus_abn = report["paired"]["multiscale_minus_abn"]["lesion_hit_rate"]
    assert versus_abn["mean"] == pytest.approx(0.3, abs=0.01) and versus_abn["vs_zero"] == "above 0"
    assert report["paired"]["multiscale_minus_gradcampp"]["lesion_hit_rate"]["ci95"][0] > 0
    assert report["claim"]["verdict"] == "met"  # more regions, AUC not below
    assert report["target"]["verdict"] in ("met", "missed", "not distinguishable at this n")
    assert "0.88-0.94" in report["target"]["paper"]


def test_correction_is_pooled_over_seeds_and_compared_with_the_model_before(collected) -> None:
    branches = collected[1]["correction"]["branches"]
    assert branches["seeds"] == [0, 1] and branches["fractions"] == [0.1, 0.3]
    at_30 = branches["strategies"]["largest_map_error"]["0.3"]
    assert at_30["lesion_hit_rate"]["mean"] == pytest.approx(0.85, abs=0.01) and at_30["auc"]["n_runs"] == 2
    change = at_30["change"]["lesion_hit_rate"]
    assert change["mean"] == pytest.approx(0.25, abs=0.01) and change["vs_zero"] == "above 0"
    versus = branches["map_error_minus_random"]["0.3"]["lesion_hit_rate"]
    assert versus["mean"] == pytest.approx(0.23, abs=0.01) and versus["vs_zero"] == "above 0"
    claim = branches["claim"]["lesion_hit_rate"]
    # the declared cell, not the best one: the study's strategy at 30 %
    assert (claim["strategy"], claim["fraction"], claim["verdict"]) == ("largest_map_error", 0.3, "met")
    assert claim["change"] == change


def test_unfinished_or_inconsistent_runs_are_named(runs) -> None:
    (runs / "abn" / "fold1" / "eval_test" / "predictions.csv").unlink()
    with pytest.raises(InputError, match="predictions.csv: missing"):
        fe.collect(runs)
    report = fe.collect(runs, ["multiscale", "baseline"])
    assert "multiscale_minus_abn" not in report["paired"] and report["claim"]["verdict"] == "not run"
    twice = runs / "baseline" / "fold1" / "eval_test" / "predictions.csv"
    twice.write_text((runs / "baseline" / "fold0" / "eval_test" / "predictions.csv").read_text())
    with pytest.raises(InputError, match="tested by two folds"):
        fe.collect(runs, ["baseline"])
    sweep = runs / "correction" / "branches_fold2_seed1" / "sweep" / "sweep.json"
    sweep.unlink()
    with pytest.raises(InputError, match="the sweep has not finished"):
        fe.collect(runs, ["multiscale"])
    old_evaluation = runs / "baseline" / "fold0" / "eval_test"
    (old_evaluation / "faithfulness.json").write_text("{}")
    (old_evaluation / "faithfulness_per_image.csv").unlink()
    with pytest.raises(InputError, match="faithfulness_per_image.csv: missing: an evaluation from before"):
        fe.read_evaluation(old_evaluation)


def test_render_reports_every_arm_the_claim_the_target_and_the_correction(collected, tmp_path) -> None:
    runs, report = collected
    table = fe.render(report)
    assert table.startswith("| arm | map | AUC | accuracy | pointing game")
    assert (
        "| ResNet18 | Grad-CAM++ |" in table
        and "| multi-scale ABN, maps at input/4, /8, /16 | M(x) |" in table
    )
    assert "multiscale − abn" in table and "(above 0)" in table
    assert "**Target**: `multiscale` AUC ≥ 0.90" in table and "Giancardo" in table
    assert "**The study's claim**" in table and "**met**" in table
    assert "Correction, branches only" in table and "`largest_map_error` at 30 %" in table
    out = tmp_path / "heimed.json"
    assert fe.main(["collect", "--runs", str(runs), "--out", str(out), "--ft_epochs", "15"]) == 0
    written = json.loads(out.read_text())
    assert written["settings"]["ft_epochs"] == 15 and "max_epochs" not in written["settings"]
    docs = tmp_path / "bundles" / "b" / "docs" / "results" / "heimed.json"
    with pytest.raises(InputError, match="only with --publish"):
        fe.main(["collect", "--runs", str(runs), "--out", str(docs)])


def test_figures_draw_the_correction_curves_and_a_row_per_image(collected, tmp_path, monkeypatch) -> None:
    import torch

    runs, report = collected
    before = {**report["arms"]["multiscale"]["maps"]["attention"], "auc": report["arms"]["multiscale"]["auc"]}
    figure = fe.correction_figure(report["correction"]["branches"], before, "test")
    assert len(figure.axes) == 4
    images = [torch.rand(3, 32, 32) for _ in range(2)]
    masks = [torch.zeros(1, 32, 32) for _ in range(2)]
    masks[0][0, 10, 10] = 1.0
    columns = {
        "multiscale: M(x)": [torch.rand(1, 8, 8)] * 2,
        "baseline: Grad-CAM++": [torch.rand(1, 2, 2)] * 2,
    }
    assert len(fe.maps_figure(["a.jpg", "b.jpg"], images, masks, columns).axes) == 8  # input, mask, 2 maps

    def explain(runs_, fold, arms, settings, dataset, extra):
        return (["a.jpg", "b.jpg"], images, masks, columns) if fold == 0 else ([], [], [], {})

    monkeypatch.setattr(fe, "explain_fold", explain)
    written = fe.draw_figures(report, runs, tmp_path / "figures", fe.DATASET, {})
    assert [p.name for p in written] == ["heimed_correction_branches.png", "heimed_maps_fold0.png"]
    assert all(p.stat().st_size > 1000 for p in written)


def test_cam_layer_is_the_deepest_stage_with_a_16x16_grid() -> None:
    assert [fe.cam_layer(s) for s in (128, 256, 384, 511, 512)] == [
        "network.layer2", "network.layer3", "network.layer3", "network.layer3", "network.layer4",
    ]  # fmt: skip
    assert fe.arm_overrides("baseline", 512)["cam_layer"] == "network.layer4"
    assert fe.arm_overrides("multiscale", 384, 2.0) == {"map_weights": 2.0}
    assert fe.arm_overrides("abn_gated", 384)["architecture"] == "abn_gated"


def test_run_trains_every_arm_and_fold_then_sweeps_each_mode_seed_and_fold(tmp_path, monkeypatch) -> None:
    from monai_xai.experiments import runner

    steps = []
    monkeypatch.setattr(runner.StepRunner, "run", lambda self, step: steps.append(step))
    monkeypatch.setattr(fe, "collect", lambda runs, arms, settings: {
        "target": {"verdict": "-"}, "claim": {"verdict": "-"}, "settings": settings})  # fmt: skip
    study = tmp_path / "study"
    argv = ["run", "--runs", str(study), "--size", "384", "--folds", "2", "--seeds", "0", "1"]
    argv += ["--arms", "baseline", "multiscale", "--fractions", "0.5", "--out", str(tmp_path / "r.json")]
    assert fe.main([*argv, "--limit", "8"]) == 0
    names = [s.name for s in steps]
    assert names[:4] == ["baseline/fold0/train", "baseline/fold0/evaluate", "baseline/fold1/train",
                         "baseline/fold1/evaluate"]  # fmt: skip
    assert names[4:10] == [
        f"multiscale/fold{k}/{part}" for k in (0, 1) for part in ("train", "evaluate", "collect")
    ]
    assert names[10:] == [
        f"active_learning/{mode}_fold{k}_seed{s}/sweep"
        for mode in ("branches", "whole")
        for s in (0, 1)
        for k in (0, 1)
    ]
    baseline = " ".join(map(str, steps[0].argv))
    assert "--cam_layer network.layer3" in baseline and "--fold 0" in baseline and "--limit 8" in baseline
    assert '--saliency_baselines ["gradcampp", "gradcam"]' in baseline
    assert f"sqlite:///{study}/mlruns.db" in baseline and "--early_stop_patience 10" in baseline
    multiscale = " ".join(map(str, steps[4].argv))
    assert "multiscale_abn_correction/configs/train.json" in multiscale and "--map_weights 0.0" in multiscale
    collect = " ".join(map(str, steps[6].argv))
    assert "collect.json" in collect and "--fold 1" not in collect and steps[6].run_dir.name == "correction"
    whole = steps[-1]
    text = " ".join(map(str, whole.argv))
    assert "--freeze_features false" in text and "--fold 1" in text and "--seed 1" in text
    assert "--max_epochs 15 --map_weights 10.0" in text and "--fractions 0.5" in text
    assert whole.run_dir == study / "correction" / "whole_fold1_seed1" / "finetune"
    assert "--freeze_features" not in " ".join(map(str, steps[10].argv))
    link = study / "correction" / "whole_fold1_seed1" / "checkpoints"
    assert link.is_symlink() and link.resolve() == (study / "multiscale" / "fold1" / "checkpoints").resolve()
    with pytest.raises(InputError, match=r"--publish needs the issue's budget: .*seeds 2 < 3"):
        fe.main([*argv[:-2], "--publish"])
