"""MLflow helpers: a sqlite store under the run's output folder by default, run look-up by name, and runs that
end as FAILED or KILLED when their process does.

MLflow refuses plain ``file://`` stores, so the default is ``sqlite:///<output_dir>/mlruns.db``
with artifacts in ``<output_dir>/mlruns``; any other tracking URI can be passed instead.
"""

from __future__ import annotations

import atexit
import os
import re
import signal
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from monai_xai.runs import RunFolder

__all__ = [
    "artifact_location",
    "classifier_run_name",
    "config_params",
    "default_tracking_uri",
    "ensure_store",
    "find_run",
    "finish_run",
    "log_to_run",
    "print_outputs",
    "ui_command",
    "watch_run",
]


def default_tracking_uri(output_dir: str | os.PathLike) -> str:
    """``sqlite:///`` URI of ``<output_dir>/mlruns.db`` (absolute, folder created)."""
    out = Path(output_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{out / 'mlruns.db'}"


def classifier_run_name(dataset: str, mode: str, architecture: str, backbone: str, fold: int) -> str:
    """``<dataset>_<mode>[_<architecture>]_<backbone>_fold<k>``: the run folder and MLflow run of one arm.

    The default architecture ``abn`` is left out (``demo_dynamic_resnet18_fold0``); the bundles append the
    run's fingerprint to the MLflow run name (``..._fold0-<12 hex>``), and :func:`find_run` finds it by this
    name with or without it.
    """
    parts = [dataset, mode, *([] if architecture == "abn" else [architecture]), backbone, f"fold{fold}"]
    return "_".join(parts)


#: first characters of a config string that MONAI resolves (expression, reference, macro): not a literal
_RESOLVED_PREFIXES = ("$", "@", "%")


def _is_literal(value: Any) -> bool:
    """A setting as written: no expression, reference, macro or component anywhere in it."""
    if isinstance(value, str):
        return not value.startswith(_RESOLVED_PREFIXES)
    if isinstance(value, Mapping):
        return "_target_" not in value and all(_is_literal(v) for v in value.values())
    if isinstance(value, list | tuple):
        return all(_is_literal(v) for v in value)
    return value is None or isinstance(value, bool | int | float)


def _executing_config() -> Mapping[str, Any]:
    """The raw content (files merged, overrides applied) of the MONAI ``ConfigParser`` that is resolving the
    calling config item: the same content that MONAI's tracking settings save as the executed config.

    A config item cannot reference the whole config it is part of, so the parser is found on the call stack,
    where ``ConfigParser.get_parsed_content`` always is while an item is resolved.
    """
    from monai.bundle import ConfigParser

    frame = sys._getframe(1)
    while frame is not None:
        parser = frame.f_locals.get("self")
        if isinstance(parser, ConfigParser):
            return parser.get()
        frame = frame.f_back
    raise RuntimeError("config_params must be resolved from a bundle config (by monai.bundle.ConfigParser)")


def config_params(**facts: Any) -> dict[str, Any]:
    """The MLflow parameters of the bundle run being parsed: every top-level setting written as a literal
    (files and command-line overrides merged), then ``facts``, the values known only once resolved.

    Used as a handler's ``experiment_param`` (``{"_target_": "monai_xai.tracking.config_params", "fast_path":
    ...}``), so that a config lists no parameter by hand and a new setting is logged without a config edit.
    Expressions, references and components are left out: resolving them here could train or load data.

    Args:
        facts: parameters to log beside (or instead of) the literal settings, e.g. a resolved class balance.
    """
    config = _executing_config()
    params = {key: value for key, value in config.items() if not key.startswith("_") and _is_literal(value)}
    return {**params, **facts}


def ensure_store(tracking_uri: str) -> str:
    """Create the tracking store's tables now (e.g. on rank 0 before the other ranks open it)."""
    _client(tracking_uri).search_experiments(max_results=1)
    return tracking_uri


def artifact_location(tracking_uri: str) -> str | None:
    """``<folder of the database>/mlruns`` for a local sqlite store, where MONAI's ``MLFlowHandler`` puts the
    artifacts too; None (MLflow's default) for other stores.

    Why: MLflow's default artifact root of a sqlite store is ``./mlruns`` in the current directory, so an
    experiment created outside the handler would scatter artifacts wherever the command was started.
    """
    prefix = "sqlite:///"
    if not tracking_uri.startswith(prefix):
        return None
    return (Path(tracking_uri[len(prefix) :]).parent / "mlruns").resolve().as_uri()


def ui_command(tracking_uri: str) -> str:
    """The command a user runs to browse the runs."""
    return f"mlflow ui --backend-store-uri {tracking_uri}"


def _client(tracking_uri: str):
    import mlflow

    return mlflow.MlflowClient(tracking_uri=tracking_uri)


def find_run(tracking_uri: str, experiment_name: str, run_name: str, with_metric: str | None = None):
    """Latest run called ``run_name`` (or ``<run_name>-<fingerprint>``) in ``experiment_name``, or None.

    With ``with_metric``, the latest such run that logged that metric: a re-evaluation creates a newer run
    of the same name that lacks the training history.
    """
    client = _client(tracking_uri)
    experiment = client.get_experiment_by_name(experiment_name)
    if experiment is None:
        return None
    named = re.compile(re.escape(run_name) + r"(-[0-9a-f]{12})?")
    runs = client.search_runs(
        [experiment.experiment_id],
        filter_string=f"attributes.run_name LIKE '{run_name}%'",
        order_by=["attributes.start_time DESC"],
        max_results=1000,
    )
    runs = [run for run in runs if named.fullmatch(run.info.run_name or "")]
    return next((run for run in runs if with_metric is None or with_metric in run.data.metrics), None)


class _ExitWatch:
    """The runs this process logs to and has not finished, and how the process is ending."""

    def __init__(self) -> None:
        self.runs: set[tuple[str | None, str]] = set()
        self.status: str | None = None  # None (ending normally), "FAILED" or "KILLED"
        self.installed = False

    def install(self) -> None:
        """Hook the interpreter's exit once: uncaught exceptions, SIGTERM and atexit."""
        if self.installed:
            return
        self.installed = True
        previous_hook = sys.excepthook

        def excepthook(kind, value, traceback):
            self.status = "KILLED" if issubclass(kind, KeyboardInterrupt) else "FAILED"
            previous_hook(kind, value, traceback)

        sys.excepthook = excepthook
        main_thread = threading.current_thread() is threading.main_thread()
        if main_thread and signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
            signal.signal(signal.SIGTERM, self._on_sigterm)
        atexit.register(self.end_runs)

    def _on_sigterm(self, signum: int, _frame) -> None:
        self.status = "KILLED"
        raise SystemExit(128 + signum)

    def end_runs(self) -> None:
        """At exit: the watched runs that a failure or a signal interrupted get that status."""
        if self.status is None:
            return
        for tracking_uri, run_id in sorted(self.runs, key=str):
            try:
                _client(tracking_uri).set_terminated(run_id, self.status)
            except Exception as err:  # the process is ending: report it, never mask the original error
                print(f"could not mark MLflow run {run_id} {self.status}: {err}", file=sys.stderr)
        self.runs.clear()


_EXIT_WATCH = _ExitWatch()


def watch_run(tracking_uri: str | None, run_id: str) -> None:
    """Mark the run FAILED if this process ends with an exception and KILLED if a signal ends it.

    MLflow leaves a run RUNNING forever when its process dies. A watched run is marked at exit unless
    :func:`log_to_run` has finished it: KILLED after SIGTERM or Ctrl-C (SIGTERM is turned into an exit
    here, unless the program installed a handler of its own), FAILED after an uncaught exception. Only
    SIGKILL leaves it RUNNING; the next resume of the same run folder sets it RUNNING again anyway.
    """
    _EXIT_WATCH.install()
    _EXIT_WATCH.runs.add((tracking_uri, run_id))


def log_to_run(
    tracking_uri: str,
    experiment_name: str,
    run_name: str,
    metrics: Mapping[str, float] | None = None,
    params: Mapping[str, object] | None = None,
    artifacts: list[str | os.PathLike] | None = None,
    artifact_path: str | None = None,
    create: bool = True,
    finish: bool = False,
) -> str:
    """Add metrics, params and files to the named run (created when absent); returns its id.

    Used after an engine finishes, for figures and final figures that no handler logged.
    """
    import math
    import time

    import mlflow

    client = _client(tracking_uri)
    run = find_run(tracking_uri, experiment_name, run_name)
    if run is None:
        if not create:
            raise ValueError(
                f"no MLflow run named {run_name!r} in experiment {experiment_name!r} at {tracking_uri}"
            )
        experiment = client.get_experiment_by_name(experiment_name)
        experiment_id = (
            experiment.experiment_id
            if experiment
            else client.create_experiment(experiment_name, artifact_location=artifact_location(tracking_uri))
        )
        run_id = client.create_run(experiment_id, run_name=run_name).info.run_id
    else:
        run_id = run.info.run_id
    if metrics:
        finite = {k: float(v) for k, v in metrics.items() if isinstance(v, int | float) and math.isfinite(v)}
        client.log_batch(
            run_id,
            metrics=[mlflow.entities.Metric(k, v, int(time.time() * 1000), 0) for k, v in finite.items()],
        )
    if params:
        existing = client.get_run(run_id).data.params
        new = [mlflow.entities.Param(k, str(v)) for k, v in params.items() if k not in existing]
        if new:
            client.log_batch(run_id, params=new)
    for path in artifacts or []:
        path = Path(path)
        if path.is_dir():
            client.log_artifacts(run_id, str(path), artifact_path)
        elif path.is_file():
            client.log_artifact(run_id, str(path), artifact_path)
    if finish:
        client.set_terminated(run_id, "FINISHED")
        _EXIT_WATCH.runs.discard((tracking_uri, run_id))
    return run_id


def finish_run(
    tracking_uri: str,
    experiment_name: str,
    run_name: str,
    output_dir: str | os.PathLike,
    figures_dir: str | os.PathLike,
    run_folder: RunFolder | None = None,
) -> None:
    """End of a training run: on rank 0 only, so that the MLflow run is finished once, log its figures, mark
    the run finished and say what was produced; then release the claimed ``run_folder`` (every rank).

    Args:
        tracking_uri: the MLflow store.
        experiment_name: the MLflow experiment.
        run_name: the MLflow run to finish.
        output_dir: the run's folder, whose outputs are listed.
        figures_dir: the folder of figures logged as artifacts.
        run_folder: the run folder this process claimed, released at the end; None when none was claimed.
    """
    import ignite.distributed as idist

    try:
        if idist.get_rank() == 0:
            log_to_run(
                tracking_uri,
                experiment_name,
                run_name,
                artifacts=[figures_dir],
                artifact_path="figures",
                finish=True,
            )
            print_outputs(output_dir, tracking_uri)
    finally:
        if run_folder is not None:
            run_folder.release()


def print_outputs(output_dir: str | os.PathLike, tracking_uri: str | None = None) -> None:
    """Tell the user what a run produced and where: checkpoints, metrics, figures, the MLflow store; the
    warnings of an evaluation's ``metrics.json`` (e.g. a split predicted as one class) come last."""
    out = Path(output_dir).resolve()
    groups = {
        "checkpoints": sorted(out.rglob("*.pt")),
        "metrics": sorted(out.rglob("metrics.json")) + sorted(out.rglob("predictions.csv")),
        "figures": sorted(p for p in out.rglob("*.png") if "mlruns" not in p.parts),
    }
    print(f"\nOutputs in {out}")
    for name, paths in groups.items():
        shown = [str(p.relative_to(out)) for p in paths]
        more = f" ... (+{len(shown) - 6} more)" if len(shown) > 6 else ""
        print(f"  {name:12s} {', '.join(shown[:6]) or '-'}{more}")
    if tracking_uri:
        print(f"  MLflow store {tracking_uri}\n  browse with  {ui_command(tracking_uri)}")
    report = out / "metrics.json"
    if report.is_file():
        import json

        for warning in json.loads(report.read_text()).get("warnings", []):
            print(f"\nWARNING: {warning}")
