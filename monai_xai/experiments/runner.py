"""Run an experiment's steps (trainings, evaluations, cross-validations) once each, one driver at a time.

An experiment's ``run`` subcommand lists its steps, each a command and the folder it writes, and hands them
to a :class:`StepRunner`, which keeps what the shell drivers each did on their own in one place:

* one driver of an experiment at a time: an ``flock`` on ``<root>/.<name>.lock``; a second gets an
  :class:`~monai_xai.errors.InputError` naming the lock and the holder's pid;
* skip-if-done by fingerprint, not by the presence of outputs (a checkpoint is written long before a
  training ends): a step is skipped when ``<run_dir>/step_done.json`` records the digest of the same
  command (argv, env additions, the content of its ``inputs``) and, where the folder has a ``run.json``,
  the same run fingerprint (:mod:`monai_xai.runs`) as when it finished;
* each step's output appended to ``<root>/<step name>.log``; a failed step raises :class:`StepFailedError`
  with the log's last 30 lines, so that they are the last thing on the screen;
* the wall time of every attempt, one JSON line each in ``<root>/runtime.jsonl``, summed per step by
  :func:`wall_time` for the results files (with whether a step continued an attempt that was not timed).

The command builders quote for the parsers that read them: :func:`bundle_run_argv` for
``python -m monai.bundle run`` (Python Fire) and :func:`crossval_argv` for ``python -m monai_xai.crossval``.

.. code-block:: python

    with StepRunner(out, "abn_busi") as runner:
        runner.run(Step("busi_binary_dedup/dynamic", crossval_argv(configs, evaluate, out / "dynamic",
                        {"mode": "dynamic", "max_epochs": 40}), out / "dynamic"))
    report["wall_time"] = wall_time(out)
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import IO, Any

from monai_xai.errors import InputError
from monai_xai.locking import LockHeldError, take_lock

from .results import REPO, write_results

__all__ = [
    "DONE_FILE",
    "RUNTIME_FILE",
    "Step",
    "StepFailedError",
    "StepRunner",
    "bundle_run_argv",
    "command_digest",
    "crossval_argv",
    "sweep_argv",
    "wall_time",
]

#: A step's record in the folder it wrote, once its command exited 0.
DONE_FILE = "step_done.json"
#: One JSON line per attempt of a step, under the runner's root.
RUNTIME_FILE = "runtime.jsonl"
#: How much of a failed step's log its error shows.
TAIL_LINES = 30
#: ``--key`` of a bundle override: a config id, nested ids joined by ``#`` (Fire turns ``-`` into ``_``).
_KEY = re.compile(r"[A-Za-z_][\w#:]*")
#: An interpreter as the first word of a command: the same step whichever virtual environment runs it.
_PYTHON = re.compile(r"python[0-9.]*")


def _now() -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S")


def _text(token: Any, what: str) -> str:
    if isinstance(token, str | os.PathLike):
        return os.fspath(token)
    raise TypeError(f"{what} must be strings or paths, got {type(token).__name__}: {token!r}")


@dataclass(frozen=True)
class Step:
    """One command of an experiment and the folder it writes.

    Args:
        name: the step's name, unique in its experiment (``busi_binary_dedup/dynamic``); its log is
            ``<root>/<name>.log``.
        argv: the whole command, e.g. :func:`bundle_run_argv`'s; no shell is involved.
        run_dir: the folder the step writes (its ``step_done.json`` goes there); two steps never share one.
        env: environment variables added for this step; they count in its digest.
        inputs: files that earlier steps wrote and this one reads (the checkpoint it evaluates): the step is
            redone when one of them changes, though its command has not.
    """

    name: str
    argv: Sequence[str | os.PathLike]
    run_dir: str | os.PathLike
    env: Mapping[str, str] = field(default_factory=dict)
    inputs: Sequence[str | os.PathLike] = ()

    def __post_init__(self) -> None:
        parts = Path(self.name).parts
        if not self.name or Path(self.name).is_absolute() or ".." in parts or self.name.startswith("."):
            raise ValueError(f"step name {self.name!r}: give a relative name such as 'task/arm' (no '..')")
        argv = tuple(_text(token, "argv") for token in self.argv)
        if not argv:
            raise ValueError(f"step {self.name}: empty command")
        if not all(isinstance(v, str) for v in self.env.values()):
            raise TypeError(f"step {self.name}: environment values must be strings, got {dict(self.env)}")
        object.__setattr__(self, "argv", argv)
        object.__setattr__(self, "run_dir", Path(self.run_dir))
        object.__setattr__(self, "env", MappingProxyType(dict(self.env)))
        object.__setattr__(self, "inputs", tuple(Path(_text(p, "inputs")) for p in self.inputs))


class StepFailedError(InputError):
    """A step's command exited non-zero; the message ends with its log's last lines and where the log is."""

    def __init__(self, step: str, log: Path, returncode: int) -> None:
        self.step = step
        self.returncode = returncode
        if returncode < 0:
            how = f"was killed by {signal.Signals(-returncode).name}"
        else:
            how = f"failed (exit status {returncode})"
        super().__init__(
            log,
            f"step {step} {how}; the last {TAIL_LINES} lines of its log:\n{_tail(log, TAIL_LINES)}\n"
            f"--- step {step} {how}; its whole log: {log}",
        )


def _tail(path: Path, lines: int) -> str:
    """The last ``lines`` lines of a possibly large log, read from its end."""
    with path.open("rb") as handle:
        handle.seek(0, os.SEEK_END)
        handle.seek(max(0, handle.tell() - 256 * 1024))
        text = handle.read().decode(errors="replace")
    return "\n".join(text.splitlines()[-lines:])


def _normalized(text: str, cwd: Path) -> str:
    """``text`` with the working folder's absolute prefix dropped: ``/repo/runs/x`` counts as ``runs/x``."""
    prefix = str(cwd).rstrip("/")
    return "." if text == prefix else text.replace(prefix + "/", "")


def command_digest(step: Step, cwd: str | os.PathLike = REPO) -> str:
    """``sha256:<hex>`` of what the step runs, as the folder ``cwd`` sees it.

    The argv and environment additions count with paths under ``cwd`` made relative (absolute or relative,
    the same command), the interpreter as ``python`` (the venv's path does not matter), and each of the
    step's ``inputs`` by its content.
    """
    cwd = Path(cwd).resolve()
    argv = [_normalized(token, cwd) for token in step.argv]
    if _PYTHON.fullmatch(Path(argv[0]).name):
        argv[0] = "python"
    content: dict[str, Any] = {
        "argv": argv,
        "env": {key: _normalized(value, cwd) for key, value in sorted(step.env.items())},
    }
    if step.inputs:
        from monai_xai.runs import file_digest  # imports torch: only for steps that name inputs

        digests = {}
        for path in step.inputs:
            full = path if path.is_absolute() else cwd / path
            digests[_normalized(str(path), cwd)] = file_digest(full) if full.is_file() else None
        content["inputs"] = digests
    text = json.dumps(content, sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def _read_json(path: Path) -> dict | None:
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise InputError(path, f"not valid JSON ({err}); delete it to redo the step") from err


def _run_fingerprint(run_dir: Path) -> str | None:
    """The fingerprint in the folder's ``run.json`` (the run it holds), None without one."""
    record = _read_json(run_dir / "run.json")
    return None if record is None else record.get("fingerprint")


class StepRunner:
    """Runs an experiment's steps under ``root``, one driver of experiment ``name`` at a time.

    Use it as a context manager: entering takes the lock ``<root>/.<name>.lock`` (without waiting) and
    leaving releases it. Relative paths (``root``, a step's ``run_dir`` and ``inputs``, and those in its
    command) are relative to ``cwd``, the repository by default, where the steps run.
    """

    def __init__(self, root: str | os.PathLike, name: str, cwd: str | os.PathLike = REPO) -> None:
        self.cwd = Path(cwd).resolve()
        self.root = self._path(root)
        self.name = name
        self._lock: IO[str] | None = None
        self._folders: dict[Path, str] = {}
        self._names: dict[str, Path] = {}

    @property
    def lock_file(self) -> Path:
        return self.root / f".{self.name}.lock"

    def _path(self, path: str | os.PathLike) -> Path:
        path = Path(path)
        return path if path.is_absolute() else self.cwd / path

    def __enter__(self) -> StepRunner:
        self.root.mkdir(parents=True, exist_ok=True)
        try:
            handle = take_lock(self.lock_file)
        except LockHeldError as held:
            raise InputError(
                self.lock_file,
                f"held by {held.holder}: another {self.name} driver is running in {self.root} "
                "(one at a time: wait for it to end)",
            ) from None
        self._lock = handle
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._lock is not None:
            self._lock.close()  # closing the file releases the flock
            self._lock = None

    def _claim(self, step: Step, run_dir: Path) -> None:
        """One folder per step and one folder per name: their records and logs would overwrite each other."""
        other = self._folders.setdefault(run_dir, step.name)
        if other != step.name:
            raise InputError(run_dir, f"written by steps {other} and {step.name}: give each its own run_dir")
        folder = self._names.setdefault(step.name, run_dir)
        if folder != run_dir:
            raise InputError(run_dir, f"step {step.name} already ran in {folder}: step names must be unique")

    def run(self, step: Step) -> dict[str, Any]:
        """Run ``step`` unless its folder records it done with this command; returns its done record.

        Raises :class:`StepFailedError` when the command exits non-zero.
        """
        if self._lock is None:
            raise RuntimeError("StepRunner.run needs the lock: use `with StepRunner(root, name) as runner:`")
        run_dir = self._path(step.run_dir)
        self._claim(step, run_dir)
        digest = command_digest(step, self.cwd)
        done_file = run_dir / DONE_FILE
        done = _read_json(done_file)
        if done and done.get("digest") == digest and done.get("fingerprint") == _run_fingerprint(run_dir):
            print(f"{_now()} {step.name}: skipped (done {done.get('finished')})", flush=True)
            return done
        done_file.unlink(missing_ok=True)  # a half-run command must not leave the record of an older one

        resumed = run_dir.exists()
        log = self.root / f"{step.name}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "TQDM_DISABLE": "1", **step.env}
        print(f"{_now()} {step.name}: start", flush=True)
        started, start = _now(), time.monotonic()
        status = "interrupted"
        try:
            with log.open("a") as out:
                out.write(f"\n=== {started} {step.name}: {shlex.join(step.argv)}\n")
                out.flush()
                returncode = subprocess.run(
                    step.argv,
                    cwd=self.cwd,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                ).returncode
            status = "done" if returncode == 0 else "failed"
        finally:
            seconds = round(time.monotonic() - start, 1)
            attempt = {"step": step.name, "status": status, "seconds": seconds, "resumed": resumed}
            attempt |= {"started": started, "finished": _now(), "digest": digest, "run_dir": str(run_dir)}
            with (self.root / RUNTIME_FILE).open("a") as lines:
                lines.write(json.dumps(attempt) + "\n")
        if returncode != 0:
            raise StepFailedError(step.name, log, returncode)

        record = {
            "step": step.name,
            "command": list(step.argv),
            "digest": digest,
            "fingerprint": _run_fingerprint(run_dir),
            "seconds": seconds,
            "resumed": resumed,
            "finished": attempt["finished"],
        }
        write_results(record, done_file)
        note = " (continued an earlier attempt, whose time is not counted here)" if resumed else ""
        print(f"{_now()} {step.name}: done in {seconds:.0f} s{note}", flush=True)
        return record


def wall_time(root: str | os.PathLike, keep: Callable[[str], bool] | None = None) -> dict[str, Any]:
    """The wall time of each step from ``<root>/runtime.jsonl``, for a results file.

    A step's time is that of its latest run of attempts with one command: the attempts since it last
    finished or changed its command, summed (a failed or interrupted attempt's time counts, since the next
    one resumes it). ``resumed`` says that the first of them found its folder already there, so that time
    spent before it (a killed attempt, a run from before the runner) is missing. Returns
    ``{"seconds": total, "resumed": any step's, "steps": {name: {"seconds", "attempts", "resumed", "done",
    "finished"}}}``. ``keep`` selects steps by name, for one results file of several sharing ``root``.
    """
    path = Path(root) / RUNTIME_FILE
    groups: dict[str, list[dict]] = {}
    for line in path.read_text().splitlines() if path.is_file() else []:
        try:
            attempt = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut short by a killed driver
        if keep is not None and not keep(attempt["step"]):
            continue
        group = groups.setdefault(attempt["step"], [])
        if group and (group[-1]["status"] == "done" or group[-1]["digest"] != attempt["digest"]):
            group.clear()
        group.append(attempt)
    steps = {
        name: {
            "seconds": round(sum(a["seconds"] for a in group), 1),
            "attempts": len(group),
            "resumed": group[0]["resumed"],
            "done": group[-1]["status"] == "done",
            "finished": group[-1]["finished"],
        }
        for name, group in groups.items()
    }
    return {
        "seconds": round(sum(s["seconds"] for s in steps.values()), 1),
        "resumed": any(s["resumed"] for s in steps.values()),
        "steps": steps,
    }


def _same(parsed: Any, value: Any) -> bool:
    """Equal and of the same kinds all the way down (``1`` is not ``True``; a list may stand for a tuple)."""
    if isinstance(value, list | tuple):
        return (
            isinstance(parsed, list | tuple)
            and len(parsed) == len(value)
            and all(_same(p, v) for p, v in zip(parsed, value, strict=True))
        )
    if isinstance(value, Mapping):
        return (
            isinstance(parsed, Mapping)
            and parsed.keys() == value.keys()
            and all(_same(parsed[k], value[k]) for k in value)
        )
    return type(parsed) is type(value) and parsed == value


def _options(overrides: Mapping[str, Any], parse: Callable[[str], Any], reserved: Sequence[str]) -> list[str]:
    """``--key text`` pairs whose text ``parse`` reads back as the value: a plain string as it is where that
    holds, else JSON, else a Python literal; ``--key=text`` for a text that starts with ``-``."""
    argv: list[str] = []
    for key, value in overrides.items():
        if not isinstance(key, str) or not _KEY.fullmatch(key):
            raise ValueError(
                f"override key {key!r}: a config id (letters, digits, _, nested ids joined by #)"
            )
        if key in reserved:
            raise ValueError(f"override {key!r} is an argument of the command itself; pass it as one")
        value = os.fspath(value) if isinstance(value, os.PathLike) else value
        candidates = [value] if isinstance(value, str) else []
        try:
            candidates.append(json.dumps(value))
        except (TypeError, ValueError):
            pass
        candidates.append(repr(value))
        text = next((t for t in candidates if _same(parse(t), value)), None)
        if text is None:
            raise ValueError(f"--{key}: {value!r} cannot be written so that the command reads it back")
        argv += [f"--{key}={text}"] if text.startswith("-") else [f"--{key}", text]
    return argv


def _config_list(config_files: Sequence[str | os.PathLike] | str | os.PathLike) -> str:
    """``['a.json','b.json']``, each name a Python string literal, as both MONAI and crossval read it."""
    if isinstance(config_files, str | os.PathLike):
        config_files = [config_files]
    names = [_text(f, "config files") for f in config_files]
    if not names:
        raise ValueError("no config files given")
    return "[" + ",".join(repr(name) for name in names) + "]"


def _fire_value(text: str) -> Any:
    from fire.parser import DefaultParseValue

    return DefaultParseValue(text)


def bundle_run_argv(
    config_files: Sequence[str | os.PathLike] | str | os.PathLike, overrides: Mapping[str, Any]
) -> list[str]:
    """``python -m monai.bundle run --config_file "['a','b']" --key value ...``: each value written so that
    Fire, which parses MONAI's command line, reads it back unchanged.

    A plain string goes as it is (``--mode baseline``, ``--tracking_uri sqlite:////abs/mlruns.db``) unless
    Fire would read it as something else (``"1"``, ``"True"``, ``"a,b"``, ``"x#y"``: then quoted); numbers and
    lists as JSON (``--spatial_size "[128, 128]"``, ``--saliency_baselines '["gradcampp"]'``); booleans and
    None as Python literals (``True``, ``None``: Fire reads ``true`` as a string). ``meta_file``,
    ``logging_file`` and ``run_id`` are overrides like any other.
    """
    return [
        sys.executable,
        "-m",
        "monai.bundle",
        "run",
        "--config_file",
        _config_list(config_files),
        *_options(overrides, _fire_value, reserved=("config_file",)),
    ]


def _crossval_value(text: str) -> Any:
    from monai_xai.cli_args import bundle_overrides

    return bundle_overrides(["--key", text])["key"]


def crossval_argv(
    config_files: Sequence[str | os.PathLike] | str | os.PathLike,
    evaluate_file: str | os.PathLike,
    output_dir: str | os.PathLike,
    overrides: Mapping[str, Any] | None = None,
    folds: Sequence[int] | None = None,
) -> list[str]:
    """``python -m monai_xai.crossval --config_file "['a','b']" --evaluate_file e --output_dir d
    [--folds k ...] --key value ...``: the overrides written so that crossval (values as JSON where they
    are JSON, else strings) reads them back unchanged; a plain string goes as it is unless it reads as JSON
    (``"1"``)."""
    argv = [
        sys.executable,
        "-m",
        "monai_xai.crossval",
        "--config_file",
        _config_list(config_files),
        "--evaluate_file",
        _text(evaluate_file, "evaluate_file"),
        "--output_dir",
        _text(output_dir, "output_dir"),
    ]
    if folds is not None:
        argv += ["--folds", *(str(int(k)) for k in folds)]
    reserved = ("config_file", "evaluate_file", "output_dir", "folds", "fold", "eval_split")
    return argv + _options(overrides or {}, _crossval_value, reserved=reserved)


def sweep_argv(
    config_files: Sequence[str | os.PathLike],
    finetune_file: str | os.PathLike,
    evaluate_files: Sequence[str | os.PathLike],
    output_dir: str | os.PathLike,
    fractions: Sequence[float],
    overrides: Mapping[str, Any],
    strategies: Sequence[str] | None = None,
    strategy_args: Mapping[str, Mapping] | None = None,
) -> list[str]:
    """``python -m monai_xai.active_learning.sweep ...``: fine-tune the run in ``output_dir`` on each
    strategy's top ``fractions`` and test each; the overrides written so that the sweep (values as JSON
    where they are JSON, as crossval reads them) reads them back unchanged."""
    argv = [
        sys.executable,
        "-m",
        "monai_xai.active_learning.sweep",
        "--config_file",
        _config_list(config_files),
        "--finetune_file",
        os.fspath(finetune_file),
        "--evaluate_file",
        _config_list(evaluate_files),
        "--output_dir",
        os.fspath(output_dir),
    ]
    if strategies is not None:
        argv += ["--strategies", *strategies]
    argv += ["--fractions", *(str(float(f)) for f in fractions)]
    if strategy_args is not None:
        argv += ["--strategy_args", json.dumps(strategy_args)]
    reserved = ("config_file", "finetune_file", "evaluate_file", "output_dir", "strategies", "fractions",
                "strategy_args")  # fmt: skip
    return argv + _options(overrides, _crossval_value, reserved=reserved)
