"""Runs that only resume themselves: run folders, budgets, best scores, MLflow runs and cross-validation."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from monai_xai.errors import InputError
from monai_xai.runs import RunFolder, RunIdentityError, RunLockedError, fingerprint

IDENTITY = {
    "network": {"mode": "dynamic", "backbone": "resnet18"},
    "data": {"fold": 0, "class_names": ["a", "b"]},
}


def _identity(**network) -> dict:
    return {**IDENTITY, "network": {**IDENTITY["network"], **network}}


def test_a_new_folder_is_claimed_and_the_same_settings_resume_it(tmp_path):
    first = RunFolder(tmp_path / "run", IDENTITY).claim()
    record = json.loads((tmp_path / "run" / "run.json").read_text())
    assert record["fingerprint"] == first.fingerprint and record["uid"] == first.uid
    first.release()
    (tmp_path / "run" / "checkpoints").mkdir()
    (tmp_path / "run" / "checkpoints" / "latest.pt").write_bytes(b"x")
    again = RunFolder(tmp_path / "run", IDENTITY).claim()
    assert again.uid == first.uid
    again.release()


def test_other_settings_stop_with_the_settings_that_differ(tmp_path):
    RunFolder(tmp_path, IDENTITY).claim().release()
    with pytest.raises(RunIdentityError) as err:
        RunFolder(tmp_path, _identity(mode="plain")).claim()
    message = str(err.value)
    assert str(tmp_path) in message and 'network.mode: "dynamic" -> "plain"' in message
    assert "--overwrite true" in message and "--output_dir" in message


def test_overwrite_and_resume_false_move_the_old_run_aside(tmp_path):
    run_dir = tmp_path / "run"
    old = RunFolder(run_dir, IDENTITY).claim()
    old.release()
    (run_dir / "checkpoints").mkdir()
    (run_dir / "checkpoints" / "best.json").write_text('{"value": 1.0}')
    new = RunFolder(run_dir, _identity(mode="plain"), overwrite=True).claim()
    new.release()
    aside = [p for p in tmp_path.iterdir() if p.name.startswith("run.replaced-")]
    assert len(aside) == 1 and (aside[0] / "checkpoints" / "best.json").is_file()
    assert not (run_dir / "checkpoints").exists() and new.uid != old.uid
    fresh = RunFolder(run_dir, _identity(mode="plain"), resume=False).claim()
    fresh.release()
    assert fresh.uid != new.uid
    assert len([p for p in tmp_path.iterdir() if p.name.startswith("run.replaced-")]) == 2


def test_checkpoints_without_a_record_are_not_resumed(tmp_path):
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "latest.pt").write_bytes(b"x")
    with pytest.raises(RunIdentityError, match="without a run.json"):
        RunFolder(tmp_path, IDENTITY).claim()


def test_files_count_by_content_not_by_path(tmp_path):
    a, b = tmp_path / "a.csv", tmp_path / "b" / "a.csv"
    b.parent.mkdir()
    a.write_text("image,label\nx.png,0\n")
    b.write_text("image,label\nx.png,0\n")
    assert fingerprint({"path": str(a)}) == fingerprint({"path": str(b)})
    b.write_text("image,label\nx.png,1\n")
    assert fingerprint({"path": str(a)}) != fingerprint({"path": str(b)})


def test_unset_pretrained_weights_keep_the_fingerprint_and_a_weights_file_counts_by_content(tmp_path):
    # the fingerprint IDENTITY had before pretrained_weights existed: runs made then must still be recognised
    assert fingerprint(IDENTITY) == "024d8eb64320"
    assert fingerprint(_identity(pretrained_weights=None)) == "024d8eb64320"
    weights, copy = tmp_path / "resnet18.pth", tmp_path / "copy" / "resnet18.pth"
    copy.parent.mkdir()
    weights.write_bytes(b"imagenet")
    copy.write_bytes(b"imagenet")
    started = fingerprint(_identity(pretrained_weights=str(weights)))
    assert started != "024d8eb64320"
    assert fingerprint(_identity(pretrained_weights=copy)) == started
    copy.write_bytes(b"medicalnet")
    assert fingerprint(_identity(pretrained_weights=copy)) != started
    with pytest.raises(InputError, match="missing.pth: pretrained_weights: file not found"):
        fingerprint(_identity(pretrained_weights=str(tmp_path / "missing.pth")))
    RunFolder(tmp_path / "run", IDENTITY).claim().release()
    with pytest.raises(
        RunIdentityError, match='network.pretrained_weights: "<unset>" -> {"file": "resnet18.pth"'
    ):
        RunFolder(tmp_path / "run", _identity(pretrained_weights=str(weights))).claim()


def test_batch_augmentation_is_another_run_and_per_item_augmentation_keeps_the_old_fingerprint(tmp_path):
    per_item = {**IDENTITY, "data": {**IDENTITY["data"], "batch_augmentation": False}}
    batched = {**IDENTITY, "data": {**IDENTITY["data"], "batch_augmentation": True}}
    assert fingerprint(per_item) == fingerprint(IDENTITY) == "024d8eb64320"
    assert fingerprint(batched) != fingerprint(IDENTITY)
    zero = {**IDENTITY, "data": {**IDENTITY["data"], "batch_augmentation": 0}}
    assert fingerprint(zero) != fingerprint(IDENTITY)
    RunFolder(tmp_path / "run", IDENTITY).claim().release()
    RunFolder(tmp_path / "run", per_item).claim().release()
    with pytest.raises(RunIdentityError, match='data.batch_augmentation: "<unset>" -> true'):
        RunFolder(tmp_path / "run", batched).claim()


def test_evaluation_refuses_a_folder_trained_with_other_settings(tmp_path):
    RunFolder(tmp_path, IDENTITY).claim().release()
    RunFolder(tmp_path, IDENTITY).verify()
    with pytest.raises(RunIdentityError, match="backbone"):
        RunFolder(tmp_path, _identity(backbone="resnet34")).verify()


_HOLD = textwrap.dedent(
    """
    import sys, time
    from monai_xai.runs import RunFolder
    RunFolder(sys.argv[1], {"a": 1}).claim()
    print("claimed", flush=True)
    time.sleep(60)
    """
)


def test_a_second_process_is_refused_until_the_first_dies(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", _HOLD, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "claimed"
        with pytest.raises(RunLockedError, match=f"pid {holder.pid}"):
            RunFolder(tmp_path, {"a": 1}).claim()
    finally:
        holder.kill()
        holder.wait()
    RunFolder(tmp_path, {"a": 1}).claim().release()  # a dead process holds no lock


def _cosine_run(checkpoint_dir: Path, max_epochs: int, lr: float = 1.0) -> tuple[list[float], object]:
    """Train one weight for ``max_epochs`` with a cosine schedule, resuming from ``checkpoint_dir``."""
    from ignite.engine import Engine, Events

    from monai_xai.handlers import ResumableCheckpointer

    model = torch.nn.Linear(1, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max_epochs)
    rates: list[float] = []

    def step(engine, batch):
        optimizer.zero_grad()
        model(batch).sum().backward()
        optimizer.step()

    engine = Engine(step)
    engine.add_event_handler(Events.EPOCH_STARTED, lambda _: rates.append(optimizer.param_groups[0]["lr"]))
    engine.add_event_handler(Events.EPOCH_COMPLETED, lambda _: scheduler.step())
    objects = {"model": model, "optimizer": optimizer, "lr_scheduler": scheduler}
    ResumableCheckpointer(checkpoint_dir, objects).attach(engine)
    engine.run([torch.ones(1, 1)], max_epochs=max_epochs)
    return rates, scheduler


def test_a_longer_budget_rebuilds_the_schedule_for_it(tmp_path):
    import math

    _cosine_run(tmp_path, max_epochs=10)
    rates, scheduler = _cosine_run(tmp_path, max_epochs=20)
    expected = [(1 + math.cos(math.pi * e / 20)) / 2 for e in range(10, 20)]
    assert rates == pytest.approx(expected, abs=1e-6)  # falls on to the end, never climbs back
    assert scheduler.T_max == 20


def test_a_best_score_of_another_run_is_not_kept(tmp_path):
    from ignite.engine import Engine

    from monai_xai.handlers import BestModelSaver

    model = torch.nn.Linear(1, 1)
    (tmp_path / "best.pt").write_bytes(b"old")
    (tmp_path / "best.json").write_text(
        json.dumps({"metric": "val_auc", "value": 0.99, "fingerprint": "old"})
    )
    saver = BestModelSaver(tmp_path, model, "val_auc", fingerprint="new")
    engine = Engine(lambda e, b: None)
    engine.state.metrics, engine.state.epoch = {"val_auc": 0.6}, 1
    saver(engine)
    assert json.loads((tmp_path / "best.json").read_text()) == {
        "metric": "val_auc",
        "value": 0.6,
        "epoch": 1,
        "fingerprint": "new",
    }


def test_early_stopping_does_not_take_back_another_runs_count(tmp_path):
    from ignite.engine import Engine

    from monai_xai.handlers import ValidationEarlyStopping

    state = tmp_path / "early_stopping.json"
    state.write_text(json.dumps({"1": {"counter": 4, "best_score": 0.9}, "fingerprint": "old"}))
    stopper = ValidationEarlyStopping(
        Engine(lambda e, b: None), "val_auc", 5, state_file=state, fingerprint="new"
    )
    assert stopper._read_state() == {}
    same = ValidationEarlyStopping(
        Engine(lambda e, b: None), "val_auc", 5, state_file=state, fingerprint="old"
    )
    assert same._read_state() == {1: {"counter": 4, "best_score": 0.9}}


_MLFLOW_RUN = textwrap.dedent(
    """
    import sys, time
    from ignite.engine import Engine, Events
    from monai_xai.handlers import ResumableMLFlowHandler
    from monai_xai.runs import RunFolder

    uri, run_dir, ending = sys.argv[1:4]
    folder = RunFolder(run_dir, {"a": 1}).claim()

    def step(engine, batch):
        if ending == "error" and engine.state.iteration == 2:
            raise RuntimeError("broken batch")
        if ending == "signal" and engine.state.iteration == 2:
            print("waiting", flush=True)
            time.sleep(60)
        return 0.0

    engine = Engine(step)
    name = folder.run_name("r")
    handler = ResumableMLFlowHandler(uri, experiment_name="e", run_name=name, run_folder=folder)
    handler.iteration_log = handler.epoch_log = False
    handler.attach(engine)
    engine.run([0, 1, 2], max_epochs=1)
    """
)


def _mlflow_runs(uri: str) -> list:
    import mlflow

    client = mlflow.MlflowClient(uri)
    return client.search_runs([e.experiment_id for e in client.search_experiments()])


def test_mlflow_runs_end_failed_or_killed_and_resume_only_their_own_run(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlruns.db'}"
    command = [sys.executable, "-c", _MLFLOW_RUN, uri]
    failed = subprocess.run([*command, str(tmp_path / "a"), "error"], capture_output=True, text=True)
    assert failed.returncode != 0 and "broken batch" in failed.stderr
    assert [r.info.status for r in _mlflow_runs(uri)] == ["FAILED"]

    killed = subprocess.Popen([*command, str(tmp_path / "b"), "signal"], stdout=subprocess.PIPE, text=True)
    assert killed.stdout.readline().strip() == "waiting"
    killed.send_signal(signal.SIGTERM)
    assert killed.wait(timeout=60) != 0
    statuses = {r.info.run_id: r.info.status for r in _mlflow_runs(uri)}
    assert sorted(statuses.values()) == ["FAILED", "KILLED"]

    # folder a resumes: its own run is continued (RUNNING again), folder b's run is not touched
    resumed = subprocess.Popen([*command, str(tmp_path / "a"), "signal"], stdout=subprocess.PIPE, text=True)
    try:
        assert resumed.stdout.readline().strip() == "waiting"
        runs = _mlflow_runs(uri)
        assert len(runs) == 2 and sorted(r.info.status for r in runs) == ["KILLED", "RUNNING"]
        uid = json.loads((tmp_path / "a" / "run.json").read_text())["uid"]
        running = next(r for r in runs if r.info.status == "RUNNING")
        assert running.data.tags["monai_xai.run_uid"] == uid
    finally:
        resumed.send_signal(signal.SIGTERM)
        resumed.wait(timeout=60)


def test_crossval_reuses_a_fold_only_for_the_same_run_weights_and_overrides(tmp_path):
    from monai_xai.crossval import DONE_FILE, _done_record, _is_evaluated

    checkpoint = tmp_path / "checkpoints" / "best.pt"
    checkpoint.parent.mkdir()
    checkpoint.write_bytes(b"weights")
    for split in ("val", "test"):
        (tmp_path / f"eval_{split}").mkdir()
        (tmp_path / f"eval_{split}" / "metrics.json").write_text("{}")
    record = _done_record("abc", checkpoint, {"max_epochs": 10})
    (tmp_path / DONE_FILE).write_text(json.dumps(record))
    # metrics newer than the weights is not enough: what matters is which run and weights they describe
    os.utime(checkpoint, (time.time() - 100, time.time() - 100))
    assert _is_evaluated(tmp_path, _done_record("abc", checkpoint, {"max_epochs": 10}))
    assert not _is_evaluated(tmp_path, _done_record("other", checkpoint, {"max_epochs": 10}))
    assert not _is_evaluated(tmp_path, _done_record("abc", checkpoint, {"max_epochs": 20}))
    # where the fold writes and logs is not what it computes: a moved folder or another store reuses it
    moved = {"max_epochs": 10, "output_dir": "/elsewhere/fold0", "tracking_uri": "sqlite:///other.db"}
    assert _is_evaluated(tmp_path, _done_record("abc", checkpoint, moved))
    checkpoint.write_bytes(b"retrained")
    assert not _is_evaluated(tmp_path, _done_record("abc", checkpoint, {"max_epochs": 10}))
