"""monai_xai.experiments.decoy_busi: the declared λ rule, the steps it runs, and a results file collected
from synthetic run folders whose figures are known by hand (a shortcut baseline, a half-fooled RRR, an ABN
on the lesion), judged against the issue's targets and rendered."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from monai_xai.errors import InputError
from monai_xai.experiments import decoy_busi

N = 24  # test images: 12 benign, 12 malignant, the marker agreeing with half of each class
LABELS = np.array([0] * 12 + [1] * 12)
AGREES = np.array(([1] * 6 + [0] * 6) * 2, dtype=bool)
MARKED = LABELS.astype(bool) == AGREES
KEYS = [
    f"{'benign' if y == 0 else 'malignant'}/{'b' if y == 0 else 'm'}_{i:03d}.png"
    for i, y in enumerate(LABELS)
]
LAMBDAS = {"label": 10.0, "summed": 1.0}
AREA = 0.02


@pytest.fixture(autouse=True)
def _fewer_resamples(monkeypatch) -> None:
    monkeypatch.setattr(decoy_busi, "N_BOOT", 300)


def _preds(behaviour: str, data: str) -> np.ndarray:
    if behaviour == "shortcut" and data == "decoy":
        return MARKED.astype(int)  # reads the marker: wrong wherever it lies
    preds = LABELS.copy()
    if behaviour == "fooled":  # five of the six malignant images with a lying marker called benign
        preds[np.flatnonzero((LABELS == 1) & ~AGREES)[:5]] = 0
    return preds


def _write_run(
    arm_dir: Path,
    data: str,
    seed: int,
    behaviour: str,
    method: str,
    lam: float | None = None,
    penalty: str | None = None,
) -> None:
    fold = decoy_busi.fold_of(seed)
    fold_dir = arm_dir / f"fold{fold}"
    for part in ("eval_test", "eval_val"):
        (fold_dir / part).mkdir(parents=True)
    (arm_dir / "crossval_summary.json").write_text(json.dumps({"folds": [fold], "n_folds": 3}))
    identity = {
        "data": {"dataset": f"decoy_busi_{data}", "seed": seed, "limit": None},
        "network": {"spatial_size": [128, 128], "backbone": "resnet18"},
    }
    (fold_dir / "run.json").write_text(json.dumps({"identity": identity}))
    overrides = {"max_epochs": 40, "rrr_lambda": lam, "rrr_penalty": penalty}
    (fold_dir / "crossval_done.json").write_text(json.dumps({"overrides": overrides}))
    preds = _preds(behaviour, data)
    sources = [f"/data/{data}/{key}" for key in KEYS]
    header = ["source", "patient", "label", "pred", "decision", "prob_benign", "prob_malignant"]
    for part in ("eval_test", "eval_val"):
        with open(fold_dir / part / "predictions.csv", "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(header)
            for i in np.random.default_rng(seed).permutation(N):  # rows in any order: matched by image
                p = 0.8 if preds[i] else 0.2
                writer.writerow([sources[i], "", LABELS[i], preds[i], preds[i], 1 - p, p])
    energy = {"shortcut": 0.5, "fooled": 0.1, "lesion": 0.001}[behaviour] if data == "decoy" else 0.03
    with open(fold_dir / "eval_test" / "marker_per_image.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["source", "marker", "marker_agrees", "method", "marker_energy"])
        for i in range(N):
            marker = "caliper" if MARKED[i] and data == "decoy" else ""
            writer.writerow([sources[i], marker, int(AGREES[i]), method, energy])
    with open(fold_dir / "eval_test" / "attention_per_image.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["source", "method", "map_mse", "pointing_game", "energy_inside_mask", "map_iou"])
        for i in range(N):
            writer.writerow([sources[i], method, 0.1, float(behaviour == "lesion" or i % 2), 0.2, 0.3])
    metrics = {"shortcut": {"marker_area_share": AREA}}
    (fold_dir / "eval_test" / "metrics.json").write_text(json.dumps(metrics))


ARMS = {
    "baseline": ("shortcut", "gradcampp"),
    "rrr": ("fooled", "input_gradient"),
    "rrr_label": ("fooled", "input_gradient"),
    "abn_gated": ("lesion", "attention"),
}


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / "decoy_busi-128px-40ep"
    probe = {
        "rule": decoy_busi.SELECTION,
        "cross_entropy": 0.7,
        "penalty": {"label": 0.07, "summed": 0.7},
        "lambda": LAMBDAS,
    }
    (root / "probe").mkdir(parents=True)
    (root / "probe" / "magnitudes.json").write_text(json.dumps(probe))
    for seed in (0, 1):
        for data in ("decoy", "clean"):
            for name, (behaviour, method) in ARMS.items():
                arm = decoy_busi.ARMS[name]
                if data == "clean" and not arm.clean:
                    continue
                lam = LAMBDAS[arm.penalty] if arm.penalty else None
                _write_run(
                    root / f"seed{seed}" / data / name, data, seed, behaviour, method, lam, arm.penalty
                )
    for lam, behaviour in ((0.1, "shortcut"), (10.0, "lesion")):  # the sweep's other points, seed 0
        folder = root / "seed0" / "decoy" / "sweep" / "summed" / f"lambda_{lam:.0e}"
        _write_run(folder, "decoy", 0, behaviour, "input_gradient", lam, "summed")
    return root


def test_the_declared_lambda_is_the_power_of_ten_nearest_the_ratio() -> None:
    assert decoy_busi.declared_lambda(0.7, 0.0035) == 100.0  # ratio 200: log10 2.3
    assert decoy_busi.declared_lambda(0.69, 0.0021) == 1000.0  # ratio 329: log10 2.52
    assert decoy_busi.declared_lambda(0.7, 70.0) == 0.01
    assert decoy_busi.sweep_lambda(100.0, -2) == 1.0 and decoy_busi.sweep_lambda(0.01, 1) == 0.1
    with pytest.raises(InputError, match="positive figures"):
        decoy_busi.declared_lambda(0.7, 0.0)
    assert [decoy_busi.fold_of(s) for s in (0, 1, 2, 3)] == [0, 1, 2, 0]


def test_collects_the_arms_the_comparisons_and_the_targets(root) -> None:
    report = decoy_busi.collect(root)
    assert list(report["arms"]) == ["baseline", "rrr", "rrr_label", "abn_gated"]
    assert report["seeds"] == [0, 1] and report["folds"] == {"0": 0, "1": 1} and report["test_images"] == N
    assert report["marker_area_share"] == AREA and report["rrr_selection"]["declared_penalty"] == "summed"
    baseline = report["arms"]["baseline"]
    assert baseline["worst_group_accuracy"]["mean"] == 0.0 and baseline["worst_group_accuracy"]["ci95"] == [
        0,
        0,
    ]
    assert baseline["accuracy"]["mean"] == 0.5 and baseline["seeds"] == [0, 1]
    assert {g: v["mean"] for g, v in baseline["group_accuracy"].items()} == {
        "benign_agrees": 1.0,
        "benign_disagrees": 0.0,
        "malignant_agrees": 1.0,
        "malignant_disagrees": 0.0,
    }
    assert baseline["group_counts"] == dict.fromkeys(baseline["group_accuracy"], 6)
    assert baseline["marker_energy"]["mean"] == pytest.approx(0.5)
    # the clean twin: no shortcut to take; its energy over the decoy copy's marked images
    assert baseline["clean"]["worst_group_accuracy"]["mean"] == 1.0
    assert baseline["clean"]["marker_energy"]["mean"] == pytest.approx(0.03)
    assert baseline["clean_minus_decoy_auc"]["mean"] > 0
    rrr = report["arms"]["rrr"]
    assert rrr["rrr_lambda"] == 1.0 and rrr["rrr_penalty"] == "summed"
    assert rrr["worst_group_accuracy"]["mean"] == pytest.approx(1 / 6)
    assert "clean" not in report["arms"]["rrr_label"] and report["arms"]["rrr_label"]["rrr_lambda"] == 10.0
    gated = report["arms"]["abn_gated"]
    assert gated["worst_group_accuracy"]["mean"] == 1.0 and gated["map_pointing_game"]["mean"] == 1.0
    difference = report["comparisons"]["abn_gated_minus_rrr"]["worst_group_accuracy"]
    assert difference["mean"] == pytest.approx(5 / 6) and difference["verdict"] == "met"
    assert "abn_minus_rrr" not in report["comparisons"]  # abn did not run here
    verdicts = {t["what"]: t["verdict"] for t in report["targets"]}
    assert list(verdicts.values()) == ["met"] * 5, verdicts
    marker = next(t for t in report["targets"] if t["figure"] == "marker_energy")
    assert marker["target"] == AREA
    # the sweep: every point of seed 0, sorted by λ, the declared one flagged; test figures for transparency
    points = report["sweep"]["points"]["summed"]
    assert [(p["lambda"], p["decade"], p["declared"]) for p in points] == [
        (0.1, -1, False),
        (1.0, 0, True),
        (10.0, 1, False),
    ]
    assert [p["worst_group_accuracy"] for p in points] == pytest.approx([0.0, 1 / 6, 1.0])
    assert points[0]["validation"]["auc"] == pytest.approx(0.5)
    assert [p["lambda"] for p in report["sweep"]["points"]["label"]] == [10.0]
    json.dumps(report, allow_nan=False)  # strict JSON: undefined figures are null


def test_missing_or_mismatched_runs_are_refused(root) -> None:
    with pytest.raises(InputError, match="abn has no decoy run"):
        decoy_busi.collect(root, ["baseline", "abn"])
    done = root / "seed1" / "clean" / "baseline" / "fold1" / "crossval_done.json"
    done.write_text(json.dumps({"overrides": {"max_epochs": 20}}))
    with pytest.raises(InputError, match="runs differ in epochs: 40 vs 20"):
        decoy_busi.collect(root)
    (root / "probe" / "magnitudes.json").unlink()
    with pytest.raises(InputError, match="probe writes it"):
        decoy_busi.collect(root)


def test_renders_the_tables_and_writes_into_the_docs_only_with_publish(root, tmp_path) -> None:
    out = tmp_path / "decoy.json"
    assert decoy_busi.main(["collect", "--runs", str(root), "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    table = decoy_busi.render(report)
    assert table.startswith("| arm | what it is | AUC | AUC, clean |")
    assert "| `baseline` | ResNet18, cross-entropy | " in table and "(λ 1)" in table
    assert "benign, marker agrees (6)" in table and table.count("**met**") == 5
    assert "| summed | **1** (declared) |" in table and "2 seeds (0, 1, seed k validating on fold k)" in table
    docs = tmp_path / "bundles" / "abn_classification" / "docs" / "results" / "decoy_busi.json"
    with pytest.raises(InputError, match="only with --publish"):
        decoy_busi.main(["collect", "--runs", str(root), "--out", str(docs)])
    assert decoy_busi.BLOCKS["decoy_busi"].results == decoy_busi.PUBLISHED


def test_the_sweep_figure_and_the_shown_images(root) -> None:
    report = decoy_busi.collect(root, ["baseline", "rrr", "abn_gated"])
    figure = decoy_busi.sweep_figure(report)
    assert len(figure.axes) == 3 and figure.axes[0].get_xscale() == "log"
    rows = decoy_busi.shown_rows(KEYS, LABELS, AGREES, per_group=2)
    # malignant agreeing, malignant lying, benign agreeing, benign lying: two of each
    assert rows == [12, 13, 18, 19, 0, 1, 6, 7]


def test_run_writes_the_copies_probes_then_trains_seed_by_seed(tmp_path, monkeypatch) -> None:
    from monai_xai.experiments import runner

    steps = []
    monkeypatch.setattr(runner.StepRunner, "run", lambda self, step: steps.append(step))
    monkeypatch.setattr(decoy_busi, "collect", lambda root, arms=None: {"arms": {}, "targets": []})
    data, root, out = tmp_path / "data", tmp_path / "runs", tmp_path / "r.json"
    (root / "probe").mkdir(parents=True)
    (root / "probe" / "magnitudes.json").write_text(json.dumps({"lambda": {"label": 10.0, "summed": 100.0}}))
    argv = [
        "run",
        "--data",
        str(data),
        "--runs",
        str(root),
        "--seeds",
        "0",
        "1",
        "--epochs",
        "2",
        "--size",
        "64",
        "--arms",
        "baseline",
        "rrr",
        "abn_gated",
        "--sweep_decades",
        "-1",
        "0",
        "1",
    ]
    assert decoy_busi.main([*argv, "--out", str(out)]) == 0
    trained = [
        f"seed{s}/{d}/{a}"
        for s in (0, 1)
        for d in ("decoy", "clean")
        for a in ("baseline", "rrr", "abn_gated")
    ]
    assert [s.name for s in steps] == [
        "data/decoy",
        "data/clean",
        "probe",
        *trained,
        "seed0/decoy/sweep/summed/lambda_1e+01",
        "seed0/decoy/sweep/summed/lambda_1e+03",
    ]
    decoy, clean = steps[:2]
    assert (
        decoy.run_dir == data.resolve() / "decoy"
        and "--overwrite" in decoy.argv
        and "--clean" not in decoy.argv
    )
    assert clean.argv[-1] == "--clean" and decoy.argv[1:3] == ("-m", "monai_xai.data.decoy")
    probe = steps[2]
    assert (
        probe.argv[1:5] == ("-m", "monai_xai.experiments", "decoy_busi", "probe")
        and probe.run_dir == root / "probe"
    )
    rrr = next(s for s in steps if s.name == "seed1/decoy/rrr")
    command = " ".join(rrr.argv)
    for option in (
        "--folds 1",
        "--mode rrr",
        "--rrr_penalty summed",
        "--rrr_lambda 100.0",
        "--seed 1",
        "--max_epochs 2",
        "--calibrate true",
        f"--dataset_dir {data.resolve() / 'decoy'}",
        "decoy_busi.json']",
        '--saliency_baselines ["input_gradient"]',
    ):
        assert option in command, option
    assert rrr.run_dir == root / "seed1" / "decoy" / "rrr" and rrr.inputs == (
        data.resolve() / "decoy" / "labels.csv",
    )
    gated = " ".join(next(s for s in steps if s.name == "seed0/clean/abn_gated").argv)
    assert (
        "--architecture abn_gated" in gated
        and "decoy_busi_clean.json']" in gated
        and "rrr_lambda" not in gated
    )
    assert json.loads((root / "datasets.json").read_text()) == {}
    with pytest.raises(
        InputError,
        match=r"full budget: epochs 2 < 40, size 64 < 128, seeds 2 < 3, --arms lacks "
        r"rrr_label, abn, --sweep_decades -1 0 1",
    ):
        decoy_busi.main([*argv, "--publish"])
