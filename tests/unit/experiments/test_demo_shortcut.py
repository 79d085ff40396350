"""demo_shortcut runs the quickstart over every arm through the runner and turns its output into a results
file with intervals over the test images."""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import pytest

from monai_xai.errors import InputError
from monai_xai.experiments import demo_shortcut
from monai_xai.experiments.results import REPO


@pytest.fixture(autouse=True)
def few_resamples(monkeypatch):
    monkeypatch.setattr(demo_shortcut, "N_BOOT", 200)


def _write_arm(arm_dir: Path, hits: dict[str, list[int]], labels, marked, energy) -> None:
    (arm_dir / "eval_test").mkdir(parents=True)
    with (arm_dir / "eval_test" / "predictions.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["source", "patient", "label", "pred", "decision", "prob_smooth", "prob_irregular"])
        for i, y in enumerate(labels):
            pred = y if i % 4 else 1 - y  # a quarter wrong
            writer.writerow([f"{i}.png", "", y, pred, pred, 1 - 0.3 - 0.4 * pred, 0.3 + 0.4 * pred])
    with (arm_dir / "map_scores.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["source", "label", "marker", "method", "pointing_game", "marker_energy"])
        for method, found in hits.items():
            for i, (y, m, h, e) in enumerate(zip(labels, marked, found, energy)):
                writer.writerow([f"{i}.png", y, int(m), method, h, f"{e:.4f}" if m else ""])


@pytest.fixture
def runs(tmp_path) -> Path:
    labels = [0, 1] * 20
    marked = [i % 3 == 0 for i in range(40)]
    energy = [0.5 if i % 2 else 0.1 for i in range(40)]
    summary = {
        "arms": {
            "baseline": {
                "test_accuracy": 0.75, "test_auc": 0.8, "map_pointing_game": 0.5, "marker_energy": 0.3,
                "explanation": "gradcampp at network.layer2", "description": "ResNet18, cross-entropy",
                "other_maps": {"input_gradient": {"map_pointing_game": 0.0, "marker_energy": 0.3}},
            },
        },
        "marker_area_share": 0.006103515625, "epochs": 12, "data": "demo_data/phantom2d",
        "torch_threads": 2, "elapsed_s": 100.0,
    }  # fmt: skip
    (tmp_path / "summary.json").write_text(json.dumps(summary))
    hits = {"gradcampp at network.layer2": [int(i % 4 < 2) for i in range(40)], "input_gradient": [0] * 40}
    _write_arm(tmp_path / "baseline", hits, labels, marked, energy)
    return tmp_path


def test_every_figure_gets_its_interval(runs, tmp_path) -> None:
    out = tmp_path / "results" / "demo.json"
    demo_shortcut.main(["collect", "--runs", str(runs), "--out", str(out)])
    arm = json.loads(out.read_text())["arms"]["baseline"]
    assert arm["test_accuracy"]["mean"] == pytest.approx(0.75) and arm["test_accuracy"]["n"] == 40
    assert arm["test_auc"]["mean"] == pytest.approx(0.75)
    assert arm["map_pointing_game"]["mean"] == pytest.approx(0.5)
    assert arm["marker_energy"]["n"] == sum(i % 3 == 0 for i in range(40))  # the marked images only
    low, high = arm["map_pointing_game"]["ci95"]
    assert low < 0.5 < high
    assert arm["other_maps"]["input_gradient"]["map_pointing_game"]["ci95"] == [0.0, 0.0]
    table = demo_shortcut.render(json.loads(out.read_text()))
    assert "| `baseline` | ResNet18, cross-entropy | 0.750 [" in table
    assert "| `baseline` | the same network | | | 0.000 [0.000, 0.000] |" in table
    assert "Brackets: stratified (by label) bootstrap" in table


def test_summary_without_intervals_renders_bare_figures(runs) -> None:
    table = demo_shortcut.render(json.loads((runs / "summary.json").read_text()))
    assert "| 0.750 | 0.800 | 0.500 | 0.300 | gradcampp at network.layer2 |" in table
    assert "Brackets" not in table


def test_an_arm_without_map_scores_names_the_file(runs) -> None:
    (runs / "baseline" / "map_scores.csv").unlink()
    with pytest.raises(InputError, match=r"baseline/map_scores.csv: missing: run scripts/quickstart.py"):
        demo_shortcut.collect(runs)


def test_a_run_folder_is_collected_with_the_runner_wall_time(runs, tmp_path) -> None:
    root = tmp_path / "run"
    root.mkdir()
    (root / "quickstart").symlink_to(runs)
    attempt = {"step": "quickstart", "status": "done", "seconds": 812.0, "resumed": True, "started": ""}
    attempt |= {"finished": "", "digest": "d", "run_dir": str(root / "quickstart")}
    (root / "runtime.jsonl").write_text(json.dumps(attempt) + "\n")
    report = demo_shortcut.collect(root)
    assert report["wall_time"]["seconds"] == 812.0 and "wall_time" not in demo_shortcut.collect(runs)
    assert "12 epochs per arm, 2 threads; the whole run took at least 812 s." in demo_shortcut.render(report)


def test_run_makes_the_phantoms_then_runs_the_quickstart_over_every_arm(tmp_path, monkeypatch) -> None:
    from monai_xai.experiments import runner

    steps = []
    monkeypatch.setattr(runner.StepRunner, "run", lambda self, step: steps.append(step))
    monkeypatch.setattr(demo_shortcut, "collect", lambda runs: {"runs": str(runs)})
    data, root, out = tmp_path / "data", tmp_path / "demo", tmp_path / "r.json"
    argv = ["run", "--data", str(data), "--runs", str(root), "--out", str(out)]
    assert demo_shortcut.main(argv) == 0
    assert [s.name for s in steps] == ["data", "quickstart"]
    make, quickstart = steps
    assert make.run_dir == data and make.argv[1:] == (
        "scripts/make_demo_data.py", "--out", str(data),
        "--n-train", "800", "--n-val", "200", "--n-test", "400",
    )  # fmt: skip
    assert quickstart.run_dir == root / "quickstart" and quickstart.inputs == (data / "labels.csv",)
    assert quickstart.argv[1:] == (
        "scripts/quickstart.py", "--data", str(data), "--out", str(root / "quickstart"), "--epochs", "12",
        "--arms", "baseline,rrr,rrr_strong,abn,abn_study,abn_study_long",
    )  # fmt: skip
    assert json.loads(out.read_text()) == {"runs": str(root)}
    # phantoms already there: only the quickstart runs, with the options passed on
    (data / "labels.csv").parent.mkdir()
    (data / "labels.csv").write_text("image,label,split,marker\n")
    steps.clear()
    demo_shortcut.main([*argv, "--epochs", "1", "--arms", "baseline", "abn", "--batch_size", "16"])
    assert [s.name for s in steps] == ["quickstart"]
    assert steps[0].argv[-6:] == ("--epochs", "1", "--arms", "baseline,abn", "--batch-size", "16")


def test_publish_needs_the_full_budget(tmp_path, monkeypatch) -> None:
    from monai_xai.experiments import runner

    monkeypatch.setattr(runner.StepRunner, "run", lambda self, step: pytest.fail("no step runs"))
    with pytest.raises(
        InputError, match=r"full budget: epochs 1 < 12, n_test 40 < 400, data .*, not demo_data"
    ):
        demo_shortcut.main(["run", "--epochs", "1", "--n_test", "40", "--data", str(tmp_path), "--publish"])
    with pytest.raises(
        InputError, match=r"full budget: --arms lacks rrr_strong, abn_study_long, --rrr_lambda 0.5"
    ):
        demo_shortcut.main(
            ["run", "--arms", "baseline", "rrr", "abn", "abn_study", "--rrr_lambda", "0.5", "--publish"]
        )
    defaults = dict(epochs=12, n_train=800, n_val=200, n_test=400, batch_size=None, rrr_lambda=None)
    published = argparse.Namespace(
        **defaults, data=REPO / "demo_data" / "phantom2d", arms=list(demo_shortcut.ARMS)
    )
    assert demo_shortcut.below_budget(published) == []
    # the repository's phantoms go to the steps as the driver gave them: relative, as the summary records them
    quickstart = demo_shortcut.steps(argparse.Namespace(**published.__dict__, runs=tmp_path / "demo"))[-1]
    assert quickstart.argv[2:4] == ("--data", "demo_data/phantom2d")
