"""demo_shortcut runs the quickstart over every arm once per seed through the runner and pools its output
into a results file with worst-group accuracy, intervals over the test images and paired differences."""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import pytest

from monai_xai.errors import InputError
from monai_xai.experiments import demo_shortcut
from monai_xai.experiments.results import REPO

N = 40
LABELS = [0, 1] * (N // 2)
MARKED = [i % 3 == 0 for i in range(N)]
#: the marker agrees with the label on every other pair of images
AGREES = [i % 4 < 2 for i in range(N)]
ENERGY = [0.5 if i % 2 else 0.1 for i in range(N)]
OWN = "gradcampp at network.layer2"


@pytest.fixture(autouse=True)
def few_resamples(monkeypatch):
    monkeypatch.setattr(demo_shortcut, "N_BOOT", 200)


def _predictions(kind: str) -> list[int]:
    """``shortcut``: follows the marker (right where it agrees, wrong where it does not); ``right``: the
    label everywhere but every fifth image, in every group."""
    if kind == "shortcut":
        return [y if a else 1 - y for y, a in zip(LABELS, AGREES)]
    return [y if i % 5 else 1 - y for i, y in enumerate(LABELS)]


def _write_arm(arm_dir: Path, kind: str, hits: dict[str, list[int]], agrees_column: bool = True) -> None:
    (arm_dir / "eval_test").mkdir(parents=True)
    with (arm_dir / "eval_test" / "predictions.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["source", "patient", "label", "pred", "decision", "prob_smooth", "prob_irregular"])
        for i, (y, pred) in enumerate(zip(LABELS, _predictions(kind))):
            writer.writerow([f"/data/test/{i}.png", "", y, pred, pred, 0.7 - 0.4 * pred, 0.3 + 0.4 * pred])
    with (arm_dir / "map_scores.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["source", "label", "marker", *(["marker_agrees"] if agrees_column else [])]
                        + ["method", "pointing_game", "marker_energy"])  # fmt: skip
        for method, found in hits.items():
            for i, (y, m, a, h, e) in enumerate(zip(LABELS, MARKED, AGREES, found, ENERGY)):
                agrees = [int(a)] if agrees_column else []
                writer.writerow([f"{i}.png", y, int(m), *agrees, method, h, f"{e:.4f}" if m else ""])


def _write_quickstart(folder: Path, seed: int, arms: dict[str, str], **arm_options) -> Path:
    summary = {
        "arms": {
            name: {
                "test_accuracy": 0.75, "test_auc": 0.8, "map_pointing_game": 0.5, "marker_energy": 0.3,
                "explanation": OWN, "description": f"{name}, cross-entropy",
                "other_maps": {"input_gradient": {"map_pointing_game": 0.0, "marker_energy": 0.3}},
            }
            for name in arms
        },
        "verdict": {"checks": {}, "holds": None}, "seed": seed,
        "marker_area_share": 0.006103515625, "epochs": 12, "data": "demo_data/phantom2d",
        "torch_threads": 2, "elapsed_s": 100.0,
    }  # fmt: skip
    folder.mkdir(parents=True)
    (folder / "summary.json").write_text(json.dumps(summary))
    hits = {OWN: [int(i % 8 < 4) for i in range(N)], "input_gradient": [0] * N}
    for name, kind in arms.items():
        _write_arm(folder / name, kind, hits, **arm_options)
    return folder


@pytest.fixture
def runs(tmp_path) -> Path:
    """A run folder of ``run``: two seeds of a baseline that takes the shortcut and an ABN that does not."""
    root = tmp_path / "demo"
    for seed in (0, 1):
        _write_quickstart(root / f"seed{seed}" / "quickstart", seed, {"baseline": "shortcut", "abn": "right"})
    return root


def test_every_figure_is_pooled_over_the_seeds_with_its_interval(runs, tmp_path) -> None:
    out = tmp_path / "results" / "demo.json"
    demo_shortcut.main(["collect", "--runs", str(runs), "--out", str(out)])
    report = json.loads(out.read_text())
    assert report["seeds"] == [0, 1] and report["test_images"] == N
    baseline, abn = report["arms"]["baseline"], report["arms"]["abn"]
    # the shortcut: right on every agreeing image, wrong on every disagreeing one
    assert baseline["test_accuracy"]["mean"] == pytest.approx(0.5)
    assert baseline["worst_group_accuracy"]["mean"] == 0.0 and baseline["worst_group_accuracy"]["ci95"] == [
        0,
        0,
    ]
    assert baseline["group_accuracy"]["smooth_agrees"]["mean"] == 1.0
    assert baseline["group_accuracy"]["irregular_disagrees"]["mean"] == 0.0
    assert abn["test_accuracy"]["mean"] == pytest.approx(0.8)
    assert abn["test_accuracy"]["run_estimates"] == [0.8, 0.8]
    assert abn["map_pointing_game"]["mean"] == pytest.approx(0.5)
    low, high = abn["map_pointing_game"]["ci95"]
    assert low < 0.5 < high
    assert abn["marker_energy"]["mean"] == pytest.approx(
        sum(e for e, m in zip(ENERGY, MARKED) if m) / sum(MARKED)  # the marked images only
    )
    assert abn["other_maps"]["input_gradient"]["map_pointing_game"]["ci95"] == [0.0, 0.0]
    difference = report["comparisons"]["abn_minus_baseline"]["worst_group_accuracy"]
    assert difference["mean"] > 0 and difference["verdict"] == "met"
    claims = {t["arm"]: t["verdict"] for t in report["targets"]}
    assert claims["baseline"] == "met" and claims["abn"] != "met"  # 0.5 clears <= 0.65; 0.8 not >= 0.9
    table = demo_shortcut.render(report)
    assert "| `baseline` | baseline, cross-entropy | 0.500 [" in table
    assert "| `baseline` | the same network | | | | 0.000 [0.000, 0.000] |" in table
    assert "| abn minus baseline | " in table and "| `abn` test accuracy ≥ 0.9 | 0.800 [" in table
    assert "| arm | smooth, marker agrees | smooth, marker disagrees |" in table
    assert "Seeds 0, 1; 12 epochs per arm" in table and "Brackets: pooled bootstrap over the seeds" in table


def test_one_quickstart_output_folder_is_collected_as_one_seed(tmp_path) -> None:
    folder = _write_quickstart(tmp_path / "quickstart", 3, {"baseline": "right"})
    report = demo_shortcut.collect(folder)
    assert report["seeds"] == [3] and report["comparisons"] == {}
    assert report["arms"]["baseline"]["test_accuracy"]["mean"] == pytest.approx(0.8)


def test_a_single_quickstart_summary_renders_with_bare_figures(tmp_path) -> None:
    """A quickstart's own summary.json (or a results file written before the seeds): point estimates."""
    summary = json.loads(
        (_write_quickstart(tmp_path / "q", 0, {"baseline": "right"}) / "summary.json").read_text()
    )
    table = demo_shortcut.render(summary)
    assert "| `baseline` | baseline, cross-entropy | 0.750 | – | 0.800 | 0.500 | 0.300 |" in table
    assert "Brackets" not in table and "Seeds" not in table


def test_map_scores_without_the_marker_agreement_name_the_file(tmp_path) -> None:
    folder = _write_quickstart(tmp_path / "q", 0, {"baseline": "right"}, agrees_column=False)
    with pytest.raises(InputError, match=r"baseline/map_scores.csv: no marker_agrees column: rerun"):
        demo_shortcut.collect(folder)
    (folder / "baseline" / "map_scores.csv").unlink()
    with pytest.raises(InputError, match=r"baseline/map_scores.csv: missing: run scripts/quickstart.py"):
        demo_shortcut.collect(folder)
    with pytest.raises(InputError, match=r"no quickstart here"):
        demo_shortcut.collect(tmp_path / "empty")


def test_seeds_that_ran_other_budgets_are_not_pooled(runs) -> None:
    summary = runs / "seed1" / "quickstart" / "summary.json"
    summary.write_text(json.dumps({**json.loads(summary.read_text()), "epochs": 6}))
    with pytest.raises(InputError, match=r"the seeds differ in epochs: 12 vs 6"):
        demo_shortcut.collect(runs)


def test_a_run_folder_is_collected_with_the_runner_wall_time(runs) -> None:
    attempt = {"step": "quickstart_seed0", "status": "done", "seconds": 812.0, "resumed": True, "started": ""}
    attempt |= {"finished": "", "digest": "d", "run_dir": str(runs / "seed0" / "quickstart")}
    (runs / "runtime.jsonl").write_text(json.dumps(attempt) + "\n")
    report = demo_shortcut.collect(runs)
    assert report["wall_time"]["seconds"] == 812.0
    assert "12 epochs per arm, 2 threads; the whole run took at least 812 s." in demo_shortcut.render(report)


def test_run_makes_the_phantoms_then_runs_the_quickstart_once_per_seed(tmp_path, monkeypatch) -> None:
    from monai_xai.experiments import runner

    steps = []
    monkeypatch.setattr(runner.StepRunner, "run", lambda self, step: steps.append(step))
    monkeypatch.setattr(demo_shortcut, "collect", lambda runs: {"runs": str(runs)})
    data, root, out = tmp_path / "data", tmp_path / "demo", tmp_path / "r.json"
    argv = ["run", "--data", str(data), "--runs", str(root), "--out", str(out)]
    assert demo_shortcut.main(argv) == 0
    assert [s.name for s in steps] == ["data", "quickstart_seed0", "quickstart_seed1", "quickstart_seed2"]
    make, quickstart = steps[:2]
    assert make.run_dir == data and make.argv[1:] == (
        "scripts/make_demo_data.py", "--out", str(data),
        "--n-train", "800", "--n-val", "200", "--n-test", "400", "--seed", "0",
    )  # fmt: skip
    seed0 = root / "seed0" / "quickstart"
    assert quickstart.run_dir == seed0 and quickstart.inputs == (data / "labels.csv",)
    assert quickstart.argv[1:] == (
        "scripts/quickstart.py", "--data", str(data), "--out", str(seed0), "--seed", "0", "--epochs", "12",
        "--arms", "baseline,rrr,rrr_strong,abn,abn_study,abn_study_long",
    )  # fmt: skip
    assert json.loads(out.read_text()) == {"runs": str(root)}
    # phantoms already there: only the quickstarts run, with the options passed on
    (data / "labels.csv").parent.mkdir()
    (data / "labels.csv").write_text("image,label,split,marker\n")
    steps.clear()
    demo_shortcut.main(
        [*argv, "--epochs", "1", "--arms", "baseline", "abn", "--batch_size", "16", "--seeds", "4"]
    )
    assert [s.name for s in steps] == ["quickstart_seed4"]
    assert steps[0].argv[-8:] == (
        "--seed",
        "4",
        "--epochs",
        "1",
        "--arms",
        "baseline,abn",
        "--batch-size",
        "16",
    )


def test_publish_needs_the_full_budget(tmp_path, monkeypatch) -> None:
    from monai_xai.experiments import runner

    monkeypatch.setattr(runner.StepRunner, "run", lambda self, step: pytest.fail("no step runs"))
    with pytest.raises(
        InputError, match=r"full budget: epochs 1 < 12, n_test 40 < 400, seeds 1 < 3, data .*, not demo_data"
    ):
        demo_shortcut.main(
            ["run", "--epochs", "1", "--n_test", "40", "--seeds", "0", "--data", str(tmp_path), "--publish"]
        )
    with pytest.raises(
        InputError, match=r"full budget: --arms lacks rrr_strong, abn_study_long, --rrr_lambda 0.5"
    ):
        demo_shortcut.main(
            ["run", "--arms", "baseline", "rrr", "abn", "abn_study", "--rrr_lambda", "0.5", "--publish"]
        )
    with pytest.raises(
        InputError, match=r"full budget: --data_seed 10, --arms has the development arm abn_midrange"
    ):
        demo_shortcut.main(
            ["run", "--arms", *demo_shortcut.ARMS, "abn_midrange", "--data_seed", "10", "--publish"]
        )
    defaults = dict(
        epochs=12, n_train=800, n_val=200, n_test=400, batch_size=None, rrr_lambda=None, data_seed=0
    )
    published = argparse.Namespace(
        **defaults, data=REPO / "demo_data" / "phantom2d", arms=list(demo_shortcut.ARMS), seeds=[0, 1, 2]
    )
    assert demo_shortcut.below_budget(published) == []
    # the repository's phantoms go to the steps as the driver gave them: relative, as the summary records them
    quickstart = demo_shortcut.steps(argparse.Namespace(**published.__dict__, runs=tmp_path / "demo"))[-1]
    assert quickstart.argv[2:4] == ("--data", "demo_data/phantom2d")


def test_the_gate_rule_takes_the_midrange_gate_only_when_it_holds_in_every_seed(tmp_path) -> None:
    root = tmp_path / "gate"
    for seed in (0, 1):
        kinds = {"abn": "shortcut", "abn_midrange": "right"}
        _write_quickstart(root / f"seed{seed}" / "quickstart", seed, kinds)
    report = demo_shortcut.collect(root)
    decision = report["gate_decision"]
    # "right" is wrong on every fifth image, in every group: worst group 0.8 in both seeds, AUC unchanged
    assert decision["midrange_worst_group_by_seed"] == [pytest.approx(0.8)] * 2
    assert decision["soft_worst_group_by_seed"] == [0.0, 0.0]
    assert decision["chosen"] == "abn_midrange"
    assert "midrange_minus_abn" not in report["comparisons"]
    assert report["comparisons"]["abn_midrange_minus_abn"]["worst_group_accuracy"]["mean"] > 0
    assert "**`abn_midrange`**" in demo_shortcut.render(report)
    # one seed below 0.70 keeps the soft gate
    arms = {**report["arms"]}
    arms["abn_midrange"] = json.loads(json.dumps(arms["abn_midrange"]))
    arms["abn_midrange"]["worst_group_accuracy"]["run_estimates"] = [0.8, 0.69]
    assert demo_shortcut.gate_decision(arms)["chosen"] == "abn"


def test_the_declared_development_replicate_publishes_to_its_own_file(tmp_path, monkeypatch) -> None:
    from monai_xai.experiments import runner

    monkeypatch.setattr(runner.StepRunner, "run", lambda self, step: None)
    monkeypatch.setattr(demo_shortcut, "collect", lambda runs: {"runs": str(runs)})
    written = []
    monkeypatch.setattr(demo_shortcut, "write_results", lambda report, path, publish: written.append(path))
    declared = ["run", "--data", str(tmp_path / "d"), "--runs", str(tmp_path / "r"), "--data_seed", "10"]
    declared += ["--arms", "abn", "abn_midrange", "--seeds", "0", "1", "2", "3", "--publish"]
    demo_shortcut.main(declared)
    assert written == [REPO / demo_shortcut.DEVELOPMENT_PUBLISHED]
    # any other seed set is neither the demo nor the declared replicate
    with pytest.raises(InputError, match=r"full budget: .*--data_seed 10, --arms has the development arm"):
        demo_shortcut.main([*declared[:-5], "0", "1", "--publish"])


def test_phantoms_of_another_seed_are_refused_not_reused(tmp_path, monkeypatch) -> None:
    from monai_xai.experiments import runner

    monkeypatch.setattr(runner.StepRunner, "run", lambda self, step: pytest.fail("no step runs"))
    data = tmp_path / "phantoms"
    data.mkdir()
    (data / "labels.csv").write_text("image,label,split,marker\n")
    (data / "splits.json").write_text(json.dumps({"seed": 0, "test": [], "folds": [[]]}))
    argv = ["run", "--data", str(data), "--runs", str(tmp_path / "r"), "--out", str(tmp_path / "o.json")]
    with pytest.raises(InputError, match=r"splits.json: phantoms of seed 0, not 10: give another data"):
        demo_shortcut.main([*argv, "--data_seed", "10"])
