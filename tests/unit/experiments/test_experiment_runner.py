"""The experiments' step runner: skip-if-done by command digest, one driver at a time, logs, wall times, and
command builders that MONAI's and crossval's own parsers read back unchanged."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from monai_xai.errors import InputError
from monai_xai.experiments.runner import (
    DONE_FILE,
    RUNTIME_FILE,
    Step,
    StepFailedError,
    StepRunner,
    bundle_run_argv,
    command_digest,
    crossval_argv,
    wall_time,
)

#: appends an "x" to <argv[1]>/count (creating the folder), so a test can count how often a step ran
COUNT = (
    "import os, pathlib, sys; d = pathlib.Path(sys.argv[1]); d.mkdir(parents=True, exist_ok=True); "
    "(d / 'count').open('a').write('x'); (d / 'env').write_text(os.environ.get('X', '') + "
    "os.environ['TQDM_DISABLE'])"
)


def counting(name: str, run_dir: Path | str, *extra: str, **kwargs) -> Step:
    return Step(name, [sys.executable, "-c", COUNT, str(run_dir), *extra], run_dir, **kwargs)


def count(run_dir: Path) -> int:
    return len((run_dir / "count").read_text())


def attempts(root: Path) -> list[dict]:
    return [json.loads(line) for line in (root / RUNTIME_FILE).read_text().splitlines()]


def test_a_step_runs_once_then_is_skipped(tmp_path, capsys):
    root, run_dir = tmp_path / "out", tmp_path / "out" / "task" / "arm"
    step = counting("task/arm", run_dir)
    with StepRunner(root, "exp", cwd=tmp_path) as runner:
        first = runner.run(step)
        again = runner.run(step)
    with StepRunner(root, "exp", cwd=tmp_path) as runner:  # a later session skips it too
        later = runner.run(step)
    assert count(run_dir) == 1
    assert first == again == later == json.loads((run_dir / DONE_FILE).read_text())
    assert first["command"] == list(step.argv) and first["step"] == "task/arm"
    assert (
        first["digest"].startswith("sha256:") and first["fingerprint"] is None and first["resumed"] is False
    )
    out = capsys.readouterr().out.splitlines()
    assert out[0].endswith("task/arm: start") and " task/arm: done in " in out[1]
    assert out[2].endswith(f"task/arm: skipped (done {first['finished']})") and len(out) == 4
    assert (root / "task" / "arm.log").is_file()
    assert (run_dir / "env").read_text() == "1"  # TQDM_DISABLE=1 for every step


def test_a_changed_command_or_environment_runs_again(tmp_path):
    run_dir = tmp_path / "a"
    with StepRunner(tmp_path, "exp", cwd=tmp_path) as runner:
        runner.run(counting("a", run_dir))
    with StepRunner(tmp_path, "exp", cwd=tmp_path) as runner:
        runner.run(counting("a", run_dir, "--max_epochs", "2"))
    assert count(run_dir) == 2
    with StepRunner(tmp_path, "exp", cwd=tmp_path) as runner:
        runner.run(counting("a", run_dir, "--max_epochs", "2", env={"X": "y"}))
        runner.run(counting("a", run_dir, "--max_epochs", "2", env={"X": "y"}))
    assert count(run_dir) == 3
    assert (run_dir / "env").read_text() == "y1"


def test_an_attempt_with_another_command_voids_the_done_record(tmp_path):
    run_dir = tmp_path / "a"
    with StepRunner(tmp_path, "exp", cwd=tmp_path) as runner:
        runner.run(counting("a", run_dir))
    failing = Step("a", [sys.executable, "-c", COUNT + "; sys.exit(1)", str(run_dir)], run_dir)
    with StepRunner(tmp_path, "exp", cwd=tmp_path) as runner, pytest.raises(StepFailedError):
        runner.run(
            failing
        )  # wrote into the folder before failing: it no longer holds the first command's run
    assert not (run_dir / DONE_FILE).exists()
    with StepRunner(tmp_path, "exp", cwd=tmp_path) as runner:
        runner.run(counting("a", run_dir))
    assert count(run_dir) == 3


def test_relative_and_absolute_paths_are_the_same_command(tmp_path):
    with StepRunner(tmp_path, "exp", cwd=tmp_path) as runner:
        runner.run(counting("a", "runs/a"))
    with StepRunner(tmp_path, "exp", cwd=tmp_path) as runner:
        runner.run(counting("a", tmp_path / "runs" / "a"))
    assert count(tmp_path / "runs" / "a") == 1
    assert command_digest(counting("a", "runs/a"), tmp_path) == command_digest(
        counting("a", tmp_path / "runs/a"), tmp_path
    )
    assert command_digest(counting("a", "runs/a"), tmp_path) != command_digest(
        counting("a", "runs/b"), tmp_path
    )


def test_a_run_with_another_fingerprint_is_run_again(tmp_path):
    run_dir = tmp_path / "run"
    code = (
        "import pathlib, sys; d = pathlib.Path(sys.argv[1]); d.mkdir(exist_ok=True); "
        "(d / 'count').open('a').write('x'); (d / 'run.json').write_text('{\"fingerprint\": \"aaa\"}')"
    )
    step = Step("run", [sys.executable, "-c", code, str(run_dir)], run_dir)
    with StepRunner(tmp_path, "exp", cwd=tmp_path) as runner:
        assert runner.run(step)["fingerprint"] == "aaa"
    (run_dir / "run.json").write_text('{"fingerprint": "bbb"}')  # another run took the folder
    with StepRunner(tmp_path, "exp", cwd=tmp_path) as runner:
        runner.run(step)
        runner.run(step)
    assert count(run_dir) == 2


def test_a_changed_input_runs_the_step_again(tmp_path):
    checkpoint = tmp_path / "best.pt"
    checkpoint.write_text("weights 1")
    step = counting("eval", tmp_path / "eval", inputs=[checkpoint])
    with StepRunner(tmp_path, "exp", cwd=tmp_path) as runner:
        runner.run(step)
    with StepRunner(tmp_path, "exp", cwd=tmp_path) as runner:
        runner.run(step)
        checkpoint.write_text("weights 2")
    with StepRunner(tmp_path, "exp", cwd=tmp_path) as runner:
        runner.run(step)
    assert count(tmp_path / "eval") == 2


def test_a_failed_step_raises_with_the_end_of_its_log(tmp_path):
    flag = tmp_path / "fixed"
    code = (
        "import pathlib, sys\nfor i in range(40): print('line', i)\n"
        "sys.exit(0 if pathlib.Path(sys.argv[1]).exists() else 3)"
    )
    step = Step("task/fail", [sys.executable, "-c", code, str(flag)], tmp_path / "fail")
    with StepRunner(tmp_path, "exp", cwd=tmp_path) as runner:
        with pytest.raises(StepFailedError) as caught:
            runner.run(step)
    error = caught.value
    log = tmp_path / "task" / "fail.log"
    lines = str(error).splitlines()
    assert isinstance(error, InputError) and error.returncode == 3 and error.step == "task/fail"
    assert lines[0] == f"{log}: step task/fail failed (exit status 3); the last 30 lines of its log:"
    assert lines[1:-1] == [f"line {i}" for i in range(10, 40)]
    assert lines[-1] == f"--- step task/fail failed (exit status 3); its whole log: {log}"
    assert not (tmp_path / "fail" / DONE_FILE).exists()
    assert [a["status"] for a in attempts(tmp_path)] == ["failed"]

    flag.touch()  # fixed: the same command now succeeds, and its failed attempt's time counts
    with StepRunner(tmp_path, "exp", cwd=tmp_path) as runner:
        runner.run(step)
    timing = wall_time(tmp_path)["steps"]["task/fail"]
    assert timing["attempts"] == 2 and timing["done"] is True
    assert timing["seconds"] == pytest.approx(sum(a["seconds"] for a in attempts(tmp_path)), abs=0.11)


def test_a_killed_step_says_so(tmp_path):
    code = "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"
    with StepRunner(tmp_path, "exp", cwd=tmp_path) as runner:
        with pytest.raises(StepFailedError, match="step k was killed by SIGKILL"):
            runner.run(Step("k", [sys.executable, "-c", code], tmp_path / "k"))


def test_resumed_says_whether_the_folder_was_there_before(tmp_path):
    (tmp_path / "old").mkdir()  # an interrupted attempt from before
    with StepRunner(tmp_path, "exp", cwd=tmp_path) as runner:
        assert runner.run(counting("old", tmp_path / "old"))["resumed"] is True
        assert runner.run(counting("new", tmp_path / "new"))["resumed"] is False
    assert [(a["step"], a["resumed"], a["status"]) for a in attempts(tmp_path)] == [
        ("old", True, "done"),
        ("new", False, "done"),
    ]
    timing = wall_time(tmp_path)
    assert timing["resumed"] is True
    assert timing["steps"]["old"]["resumed"] is True and timing["steps"]["new"]["resumed"] is False


def test_wall_time_counts_the_latest_command_only(tmp_path):
    with StepRunner(tmp_path, "exp", cwd=tmp_path) as runner:
        runner.run(counting("a", tmp_path / "a"))
        runner.run(counting("b", tmp_path / "b"))
    with StepRunner(tmp_path, "exp", cwd=tmp_path) as runner:
        runner.run(counting("a", tmp_path / "a", "--changed"))
    with (tmp_path / RUNTIME_FILE).open("a") as lines:
        lines.write('{"step": "a", "stat')  # cut short by a killed driver
    recorded = [json.loads(x) for x in (tmp_path / RUNTIME_FILE).read_text().splitlines()[:-1]]
    assert [a["step"] for a in recorded] == ["a", "b", "a"]
    assert {"step", "status", "seconds", "resumed", "started", "finished", "digest", "run_dir"} <= set(
        recorded[0]
    )
    timing = wall_time(tmp_path)
    assert timing["steps"]["a"]["attempts"] == 1 and timing["steps"]["a"]["resumed"] is True
    assert timing["steps"]["a"]["seconds"] == recorded[2]["seconds"]
    assert timing["seconds"] == pytest.approx(recorded[1]["seconds"] + recorded[2]["seconds"])
    assert wall_time(tmp_path / "nothing") == {"seconds": 0, "resumed": False, "steps": {}}
    only_b = wall_time(tmp_path, keep=lambda name: name == "b")  # one results file's steps of a shared root
    assert list(only_b["steps"]) == ["b"] and only_b["seconds"] == pytest.approx(recorded[1]["seconds"])


def test_a_second_driver_is_refused_while_the_first_holds_the_lock(tmp_path):
    with StepRunner(tmp_path, "exp"):
        with pytest.raises(InputError, match=rf"\.exp\.lock: held by pid {os.getpid()}: another exp driver"):
            StepRunner(tmp_path, "exp").__enter__()
        with StepRunner(tmp_path, "other"):  # another experiment may run beside it
            pass
    with StepRunner(tmp_path, "exp"):  # released on leaving
        pass

    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from monai_xai.experiments.runner import StepRunner; "
            "r = StepRunner(sys.argv[1], 'exp').__enter__(); print('locked', flush=True); sys.stdin.read()",
            str(tmp_path),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(InputError, match=f"held by pid {holder.pid}"):
            StepRunner(tmp_path, "exp").__enter__()
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    with StepRunner(tmp_path, "exp"):  # the holder ended: free again
        pass


def test_steps_run_only_under_the_lock_and_in_folders_of_their_own(tmp_path):
    with pytest.raises(RuntimeError, match="needs the lock"):
        StepRunner(tmp_path, "exp").run(counting("a", tmp_path / "a"))
    with StepRunner(tmp_path, "exp", cwd=tmp_path) as runner:
        runner.run(counting("a", tmp_path / "a"))
        with pytest.raises(InputError, match="written by steps a and b"):
            runner.run(counting("b", tmp_path / "a"))
        with pytest.raises(InputError, match="step a already ran in"):
            runner.run(counting("a", tmp_path / "elsewhere"))
    with pytest.raises(ValueError, match="relative name"):
        Step("../x", ["true"], tmp_path)
    with pytest.raises(TypeError, match="argv must be strings"):
        Step("x", ["echo", 1], tmp_path)


def test_bundle_run_argv_writes_the_drivers_forms(tmp_path):
    argv = bundle_run_argv(
        ["bundles/abn_classification/configs/train.json", Path("configs/datasets/busi_dedup.json")],
        {
            "mode": "dynamic",
            "cam_layer": "network.features.layer3",
            "saliency_baselines": ["gradcampp"],
            "max_epochs": 40,
            "spatial_size": [128, 128],
            "alpha_high": 0.9,
            "tracking_uri": "sqlite:////abs/runs/mlruns.db",
            "logging_file": Path("bundles/abn_classification/configs/logging.conf"),
        },
    )
    assert argv == [
        sys.executable,
        "-m",
        "monai.bundle",
        "run",
        "--config_file",
        "['bundles/abn_classification/configs/train.json','configs/datasets/busi_dedup.json']",
        "--mode",
        "dynamic",
        "--cam_layer",
        "network.features.layer3",
        "--saliency_baselines",
        '["gradcampp"]',
        "--max_epochs",
        "40",
        "--spatial_size",
        "[128, 128]",
        "--alpha_high",
        "0.9",
        "--tracking_uri",
        "sqlite:////abs/runs/mlruns.db",
        "--logging_file",
        "bundles/abn_classification/configs/logging.conf",
    ]


#: values that a naive ``str(value)`` would pass wrongly on a command line
TRICKY = {
    "digits": "1",
    "hash": "a#b",
    "comma": "a,b",
    "true_text": "true",
    "capital_true": "True",
    "flag": True,
    "none": None,
    "mixed": [True, None, "x", 1.5],
    "strategy_args": {"random": {"seed": 1}},
    "negative": -1,
    "dash": "-foo",
    "lr": 0.001,
    "space": "x y",
    "empty": "",
    "quote": 'it\'s "q"',
    "network_def#spatial_dims": 2,
}


def test_bundle_run_argv_round_trips_through_fire():
    fire = pytest.importorskip("fire")
    got: dict = {}

    def run(config_file=None, **override):  # how monai.bundle's __main__ hands `run` its arguments
        got.update(config_file=config_file, **override)

    overrides = {**TRICKY, "path": Path("runs/x y/z"), "pair": (1, 2)}
    argv = bundle_run_argv(["it's.json", "b#1.json"], overrides)
    assert argv[1:4] == ["-m", "monai.bundle", "run"]
    fire.Fire({"run": run}, command=argv[3:])
    assert got == {"config_file": ["it's.json", "b#1.json"], **TRICKY, "path": "runs/x y/z", "pair": [1, 2]}
    assert "--dash=-foo" in argv and "--negative=-1" in argv


def test_crossval_argv_round_trips_through_its_command_line(monkeypatch):
    import monai_xai.crossval as crossval

    called = []
    monkeypatch.setattr(crossval, "run_crossval", lambda *args: called.append(args))
    overrides = {**TRICKY, "alpha_schedule": "step", "saliency_baselines": ["gradcampp"], "pair": (1, 2)}
    argv = crossval_argv(
        ["a/train.json", "configs/datasets/busi.json"], "a/evaluate.json", "out/x", overrides, [0, 2]
    )
    assert argv[:11] == [
        sys.executable,
        "-m",
        "monai_xai.crossval",
        "--config_file",
        "['a/train.json','configs/datasets/busi.json']",
        "--evaluate_file",
        "a/evaluate.json",
        "--output_dir",
        "out/x",
        "--folds",
        "0",
    ]
    assert ["--alpha_schedule", "step", "--saliency_baselines", '["gradcampp"]'] == argv[-6:-2]
    crossval.main(argv[3:])
    expected = {**TRICKY, "alpha_schedule": "step", "saliency_baselines": ["gradcampp"], "pair": [1, 2]}
    assert called == [
        (["a/train.json", "configs/datasets/busi.json"], "a/evaluate.json", "out/x", [0, 2], expected)
    ]


def test_values_and_keys_that_cannot_be_passed_are_refused():
    with pytest.raises(ValueError, match="cannot be written"):
        bundle_run_argv(["a.json"], {"x": float("nan")})
    with pytest.raises(ValueError, match="override key 'a-b'"):
        bundle_run_argv(["a.json"], {"a-b": 1})
    with pytest.raises(ValueError, match="argument of the command itself"):
        bundle_run_argv(["a.json"], {"config_file": "b.json"})
    with pytest.raises(ValueError, match="argument of the command itself"):
        crossval_argv(["a.json"], "e.json", "out", {"fold": 1})
    with pytest.raises(ValueError, match="no config files"):
        bundle_run_argv([], {})
