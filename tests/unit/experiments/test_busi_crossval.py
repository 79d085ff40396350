"""monai_xai.experiments.busi_crossval pools the BUSI arms over seeds and folds into intervals and paired
differences, reads its settings from the run folders, and renders both its new and its older files."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from monai_xai.errors import InputError
from monai_xai.experiments import busi_crossval
from monai_xai.metrics import auc

N = 40  # test images: 20 benign, 20 malignant
LABELS = np.array([0] * 20 + [1] * 20)


def _scores(arm: str, seed: int, fold: int) -> np.ndarray:
    """dynamic separates the classes well, conventional barely, baseline in between."""
    rng = np.random.default_rng(100 * seed + fold)
    signal = {"dynamic": 3.0, "conventional": 0.3, "baseline": 1.0}[arm]
    return 1 / (1 + np.exp(-(signal * (LABELS - 0.5) * 2 + rng.normal(0, 1, N))))


def _write_fold(root: Path, arm: str, seed: int, fold: int, epochs: int = 40, per_image: bool = True) -> None:
    fold_dir = root / arm / f"fold{fold}"
    (fold_dir / "eval_test").mkdir(parents=True)
    (fold_dir / "eval_val").mkdir()
    identity = {
        "data": {
            "dataset": "busi2_dedup",
            "class_names": ["benign", "malignant"],
            "datalist_args": {"split_file": {"file": "busi_splits_dedup.json", "content": "sha256:ab"}},
            "seed": seed,
        },
        "network": {"spatial_size": [128, 128], "backbone": "resnet18", "mode": arm},
    }
    (fold_dir / "run.json").write_text(json.dumps({"fingerprint": "f", "identity": identity}))
    overrides = {"max_epochs": epochs, "seed": seed, "cam_layer": "network.layer3"}
    (fold_dir / "crossval_done.json").write_text(json.dumps({"overrides": overrides}))
    scores = _scores(arm, seed, fold)
    sources = [f"/data/img{i:02d}.png" for i in range(N)]
    order = np.random.default_rng(fold).permutation(N)  # rows in any order: matched by source
    with open(fold_dir / "eval_test" / "predictions.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["source", "patient", "label", "pred", "decision", "prob_benign", "prob_malignant"])
        for i in order:
            p = scores[i]
            writer.writerow([sources[i], "", LABELS[i], int(p > 0.5), int(p > 0.4), 1 - p, p])
    pointing = (np.arange(N) % (2 if arm == "dynamic" else 4) == 0).astype(float)
    agreement = {"gradcampp": {"pointing_game": float(pointing.mean()), "energy_inside_mask": 0.2}}
    if per_image:
        with open(fold_dir / "eval_test" / "attention_per_image.csv", "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["source", "method", "map_mse", "pointing_game", "energy_inside_mask", "map_iou"])
            for i in range(N):
                writer.writerow([sources[i], "gradcampp", 0.1, pointing[i], 0.2, 0.3])
    (fold_dir / "eval_test" / "metrics.json").write_text(json.dumps({"attention_agreement": agreement}))
    (fold_dir / "eval_val" / "metrics.json").write_text(json.dumps({"image": {"auc": 0.8 + 0.01 * fold}}))
    summary = {"n_folds": 3, "per_fold": [], "experiment_name": "abn_classification", "tracking_uri": ""}
    (root / arm / "crossval_summary.json").write_text(json.dumps(summary))


@pytest.fixture
def roots(tmp_path: Path) -> list[Path]:
    found = []
    for seed in (0, 1):
        root = tmp_path / f"seed{seed}"
        for arm in ("dynamic", "conventional", "baseline"):
            for fold in range(3):
                _write_fold(root, arm, seed, fold)
        found.append(root)
    return found


def test_pools_runs_into_intervals_and_judges_the_declared_claim(roots) -> None:
    report = busi_crossval.collect(roots, ["baseline", "conventional", "dynamic"])
    assert (report["seeds"], report["folds"], report["test_images"], report["epochs"]) == (2, 3, N, 40)
    assert report["split"]["file"] == "busi_splits_dedup.json" and report["task"] == "benign vs malignant"
    dynamic = report["arms"]["dynamic"]["auc"]
    per_run = [auc(LABELS, _scores("dynamic", s, f)) for s in (0, 1) for f in range(3)]
    assert dynamic["run_estimates"] == pytest.approx(per_run, abs=1e-6)
    assert dynamic["mean"] == pytest.approx(np.mean(per_run)) and dynamic["n_runs"] == 6
    assert dynamic["ci95"][0] <= min(per_run) and dynamic["ci95"][1] >= max(per_run) - 1e-9
    claim = report["claim"]
    assert claim["pair"] == "dynamic_minus_conventional" and claim["verdict"] == "met"
    assert claim["difference"]["ci95"][0] > 0
    # map measures pooled from the per-image rows: dynamic points at every other image, others at 1 in 4
    assert report["arms"]["dynamic"]["gradcampp_pointing_game"]["mean"] == pytest.approx(0.5)
    diff = report["paired_differences"]["dynamic_minus_baseline"]["gradcampp_pointing_game"]
    assert diff["mean"] == pytest.approx(0.25)
    assert report["validation_auc"]["dynamic"]["mean"] == pytest.approx(0.81)


def test_identical_arms_are_not_distinguishable(roots, tmp_path) -> None:
    for root in roots:
        for fold in range(3):
            for name in ("predictions.csv", "attention_per_image.csv"):
                source = root / "dynamic" / f"fold{fold}" / "eval_test" / name
                (root / "conventional" / f"fold{fold}" / "eval_test" / name).write_text(source.read_text())
    report = busi_crossval.collect(roots, ["conventional", "dynamic"])
    difference = report["paired_differences"]["dynamic_minus_conventional"]["auc"]
    assert difference["mean"] == 0 and difference["ci95"] == [0, 0]
    assert report["claim"]["verdict"] == "not distinguishable at this n"


def test_runs_of_another_setting_or_unfinished_folds_are_refused(roots) -> None:
    (roots[1] / "dynamic" / "fold2" / "crossval_done.json").write_text(
        json.dumps({"overrides": {"max_epochs": 20}})
    )
    with pytest.raises(InputError, match="runs differ in epochs: 40 vs 20"):
        busi_crossval.collect(roots, ["dynamic"])
    (roots[1] / "dynamic" / "fold2" / "crossval_done.json").unlink()
    with pytest.raises(InputError, match=r"dynamic: fold\(s\) \[2\] of 3 are not done"):
        busi_crossval.collect(roots, ["dynamic"])
    report = busi_crossval.collect(roots, ["baseline"], optional_arms=["dynamic"])
    assert list(report["arms"]) == ["baseline"]
    with pytest.raises(InputError, match="each root must be another seed"):
        busi_crossval.collect([roots[0], roots[0]], ["baseline"])


def test_map_measures_without_per_image_rows_are_mean_and_sd(tmp_path) -> None:
    for fold in range(3):
        _write_fold(tmp_path / "seed0", "baseline", 0, fold, per_image=False)
    report = busi_crossval.collect([tmp_path / "seed0"], ["baseline"])
    pointing = report["arms"]["baseline"]["gradcampp_pointing_game"]
    assert "ci95" not in pointing and pointing["mean"] == pytest.approx(0.25) and pointing["n"] == 3


def test_writes_into_the_docs_only_with_publish(roots, tmp_path, monkeypatch) -> None:
    out = tmp_path / "r.json"
    argv = ["collect", "--runs", *map(str, roots), "--arms", "dynamic", "conventional", "--out", str(out)]
    assert busi_crossval.main(argv) == 0
    report = json.loads(out.read_text())
    table = busi_crossval.render(report)
    assert "ABN, dynamic α" in table and "pooled over 2 seeds x 3 folds" in table
    assert "**met**" in table and "(above 0)" in table
    docs = tmp_path / "bundles" / "abn_classification" / "docs" / "results" / "busi_binary.json"
    with pytest.raises(InputError, match="only with --publish"):
        busi_crossval.main(["collect", "--runs", *map(str, roots), "--arms", "dynamic", "--out", str(docs)])


@pytest.mark.parametrize("name", sorted(busi_crossval.BLOCKS))
def test_renders_the_committed_results(name) -> None:
    block = busi_crossval.BLOCKS[name]
    table = block.render(json.loads(block.path.read_text()))
    assert table.startswith("| arm |") and "met" not in table.replace("mean", "")


def test_run_trains_every_seed_then_arm_with_the_arms_settings(tmp_path, monkeypatch) -> None:
    from monai_xai.experiments import runner

    steps = []
    monkeypatch.setattr(runner.StepRunner, "run", lambda self, step: steps.append(step))
    monkeypatch.setattr(
        busi_crossval, "collect", lambda roots, arms, optional: {"arms": {}, "claim": {"verdict": "-"}}
    )
    prefix = tmp_path / "busi"
    argv = ["run", "--runs_prefix", str(prefix), "--seeds", "0", "1", "--epochs", "2", "--size", "64"]
    busi_crossval.main([*argv, "--arms", "baseline", "dynamic", "--out", str(tmp_path / "r.json")])
    assert [s.name for s in steps] == [
        "seed0/busi_binary_dedup/baseline", "seed0/busi_binary_dedup/dynamic",
        "seed1/busi_binary_dedup/baseline", "seed1/busi_binary_dedup/dynamic",
    ]  # fmt: skip
    dynamic = " ".join(steps[3].argv)
    assert "--alpha_schedule step" in dynamic and "--seed 1" in dynamic and "--max_epochs 2" in dynamic
    assert f"sqlite:///{tmp_path}/busi-64px-2ep-seed1/mlruns.db" in dynamic
    assert steps[3].run_dir == tmp_path / "busi-64px-2ep-seed1" / "busi_binary_dedup" / "dynamic"
    with pytest.raises(InputError, match=r"full budget .*epochs 2 < 40, size 64 < 128, seeds 2 < 3"):
        busi_crossval.main([*argv, "--publish"])


def test_three_classes_get_a_macro_auc_and_publish_from_one_seed() -> None:
    from types import SimpleNamespace

    labels = np.array([0, 0, 1, 1, 2, 2])
    probs = np.eye(3)[labels] * 0.8 + 0.1  # each image's own class highest: every one-vs-rest AUC is 1
    run = SimpleNamespace(labels=labels, probs=probs)
    (arrays, metric) = busi_crossval._multiclass_metrics(3)["auc"](run)
    assert metric(*arrays) == 1.0
    # classes 0 and 1 swapped: each scores below the other's images and ties class 2's (AUC 1/4); class 2: 1
    assert metric(labels, probs[:, [1, 0, 2]]) == pytest.approx((0.25 + 0.25 + 1) / 3)
    args = SimpleNamespace(name="busi_3class", epochs=40, size=128, seeds=[0], limit=None)
    assert busi_crossval._below_budget(args) is None
    assert (
        busi_crossval._below_budget(SimpleNamespace(**{**vars(args), "name": "busi_binary"})) == "seeds 1 < 3"
    )
