"""MLflow helpers: a sqlite store under the run's output folder by default, and run look-up by name.

MLflow refuses plain ``file://`` stores, so the default is ``sqlite:///<output_dir>/mlruns.db``
with artifacts in ``<output_dir>/mlruns``; any other tracking URI can be passed instead.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

__all__ = [
    "artifact_location",
    "classifier_run_name",
    "default_tracking_uri",
    "ensure_store",
    "find_run",
    "finish_run",
    "log_to_run",
    "print_outputs",
    "ui_command",
]


def default_tracking_uri(output_dir: str | os.PathLike) -> str:
    """``sqlite:///`` URI of ``<output_dir>/mlruns.db`` (absolute, folder created)."""
    out = Path(output_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{out / 'mlruns.db'}"


def classifier_run_name(dataset: str, mode: str, architecture: str, backbone: str, fold: int) -> str:
    """``<dataset>_<mode>[_<architecture>]_<backbone>_fold<k>``: the MLflow run of one classifier arm.

    The default architecture ``abn`` is left out (``demo_dynamic_resnet18_fold0``); resumed runs and the
    cross-validation summary find runs by this name.
    """
    parts = [dataset, mode, *([] if architecture == "abn" else [architecture]), backbone, f"fold{fold}"]
    return "_".join(parts)


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
    """Latest run called ``run_name`` in ``experiment_name``, or None.

    With ``with_metric``, the latest such run that logged that metric: a re-evaluation creates a newer run
    of the same name that lacks the training history.
    """
    client = _client(tracking_uri)
    experiment = client.get_experiment_by_name(experiment_name)
    if experiment is None:
        return None
    runs = client.search_runs(
        [experiment.experiment_id],
        filter_string=f"attributes.run_name = '{run_name}'",
        order_by=["attributes.start_time DESC"],
        max_results=1 if with_metric is None else 1000,
    )
    return next((run for run in runs if with_metric is None or with_metric in run.data.metrics), None)


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
    return run_id


def finish_run(
    tracking_uri: str,
    experiment_name: str,
    run_name: str,
    output_dir: str | os.PathLike,
    figures_dir: str | os.PathLike,
) -> None:
    """End of a training run: log its figures, mark the MLflow run finished, say what was produced.

    Only rank 0 of a distributed run does this, so the run is finished once.
    """
    import ignite.distributed as idist

    if idist.get_rank() != 0:
        return
    log_to_run(
        tracking_uri, experiment_name, run_name, artifacts=[figures_dir], artifact_path="figures", finish=True
    )
    print_outputs(output_dir, tracking_uri)


def print_outputs(output_dir: str | os.PathLike, tracking_uri: str | None = None) -> None:
    """Tell the user what a run produced and where: checkpoints, metrics, figures, the MLflow store."""
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
