"""AG-CycleGAN counterfactuals judged independently (agcyclegan_explainer): does the explanation explain?

Per task (PneumoniaMNIST, AdrenalMNIST3D, BUSI) and arm (the study's AG-CycleGAN, ``agcyclegan``; the
classifier-guided one, ``guided``): how often the translations flip the explained classifier to the target
class, and how often they flip the judge, a classifier of another architecture (train_judge.json's
DenseNet121) trained apart on the training split that no GAN saw; the same for two controls (each translation
let through another image's attention map, or a uniform map of the same mean), which flip less when the
attention picks the region that matters; the realism of the translations (KID in the judge's penultimate
features against the real images of the target class); agreement of the attention with Grad-CAM++ and, on
BUSI, with the lesion masks. Every flip rate carries its 95 % bootstrap interval, the controls the paired
interval of translation minus control, and the classifier's accuracy and AUC theirs (bootstrapped here from
the evaluation's per-image ``predictions.json``, stratified by label); a target is met only when its interval
clears it (:func:`~monai_xai.experiments.results.verdict`).

``run`` trains and evaluates, per task, one runner step each (:class:`~monai_xai.experiments.runner.Step`,
a bundle run of ``bundles/agcyclegan_explainer/configs`` with the task's dataset fragment):

1. ``lr_find``: the classifier's LR range test (``--run_id lr_find``, into ``classifier/lr_range_test/``);
2. ``classifier``: the ResNet18 classifier, cyclical SGD between the suggested ``base_lr`` and ``max_lr``
   (with the momentum and weight decay of the suggested pair, read here from ``lr_range_test.json``) until the
   validation loss has not fallen for ``--patience`` validations (at most ``--cls_epochs``); its checkpoint
   of the lowest validation loss is the classifier explained. BUSI's classifier instead trains the recipe of
   the ABN bundle's plain ResNet on the same split (:data:`ABN_PLAIN_RESNET`, no LR range test): with the
   LR range test's recipe it reached AUC 0.758 where that ResNet reaches 0.847, and a counterfactual of a
   weak classifier explains little. Input size (128 px), augmentation and preset were already the same; what
   differed: the optimizer (the range test suggested cyclical SGD between 3.8e-3 and 1.5e-2 with momentum
   0.95, against AdamW at 1e-3 with a cosine decay to 0), early stopping (the validation loss was lowest at
   epoch 4, so training stopped at epoch 14, while the ResNet's mean validation AUC first passes 0.84 at
   epoch 7 and peaks at epoch 35 of its 40), the checkpoint kept (lowest validation loss against highest
   validation AUC), the batch (64 against 32) and the class balance (oversampling against none:
   ``class_balance auto`` leaves BUSI's 2:1 ratio alone). It trains ``min(--cls_epochs, 40)`` epochs; its
   network stays this bundle's LeakyReLU ResNet18, whose frozen encoder the GANs use;
3. ``judge_densenet121_lr_find``, ``judge_densenet121``: the judge, train_judge.json's ``judge_def``
   (DenseNet121 behind a nearest-neighbour resize to at least 32 px), trained on the training split with the
   LR range test recipe (its own range test) into ``judge_densenet121/``;
4. ``gan``: the AG-CycleGAN with the study's loss on the classifier's frozen encoder, until
   ``val_flip_rate_min`` (the validation flip rate of the weaker direction) has not risen for
   ``--gan_patience`` validations (at most ``--gan_epochs``), into ``gan/``;
5. ``gan_guided``: the same with train_guided.json's classifier-guided loss (+ ``--lambda_cls`` x the frozen
   classifier's cross-entropy of each translation against its target class), into ``gan_guided/``;
6. ``evaluate_judge_densenet121``, ``evaluate_guided_judge_densenet121``: the test set explained with each
   arm's ``checkpoints/best.pt`` (``latest.pt`` where a validation direction had no images), each
   translation and both controls also judged by the judge, into ``eval_test{,_guided}/``;
7. the task's results file, collected in-process (:func:`collect`); at the end ``summary.md`` of all tasks
   and arms in the run folder, and after ``--publish`` the README blocks rendered again.

Tasks: ``pneumoniamnist`` (PneumoniaMNIST 28x28, normal <-> pneumonia, the whole training set),
``adrenalmnist3d`` (AdrenalMNIST3D 28^3, normal <-> hyperplasia; smaller batches), ``busi`` (BUSI benign <->
malignant at ``--size`` px on the leak-free split configs/datasets/busi_binary_dedup.json: fold 0 validates,
the fixed test set tests; the lesion masks only score the attention maps).

Usage (results go to ``--out``, default ``<root>/results/<task>.json``, or with ``--publish`` into the docs,
which is refused below the full budget :data:`FULL_BUDGET`: no ``--limit`` or ``--extra``, BUSI at 128 px or
more)::

    # the full budget, in the background, with a log (a second run on the same folder refuses: its lock)
    mkdir -p runs/experiments && nohup python -m monai_xai.experiments agcyclegan run --publish \\
        >> runs/experiments/agcyclegan_explain.log 2>&1 &
    # smoke test of the whole chain, 64 items per split (an estimate: 15-25 min, mostly start-up, caching and
    # the test panels of both arms; results stay in the run folder)
    python -m monai_xai.experiments agcyclegan run --limit 64 --cls_epochs 2 --patience 1 --gan_epochs 2 \\
        --gan_patience 1 --size 64 --n_panels 4 --extra lr_test_iters=5 \\
        --root runs/experiments/agcyclegan_smoke
    python -m monai_xai.experiments agcyclegan collect OUT/pneumoniamnist --task pneumoniamnist \\
        --out OUT/results/pneumoniamnist.json [--gan_checkpoint best --guided_gan_checkpoint best]
    python -m monai_xai.experiments agcyclegan summary OUT      # a markdown row per task and arm

``--tasks`` picks tasks; ``--workers`` sets every bundle run's ``num_workers``; ``--limit`` caps every split
at a seeded sample of that many items; ``--extra key=value ...`` are bundle overrides given last to every
bundle run (the results file records the settings the runs logged). The run folder (``--root``, default
``runs/experiments/agcyclegan-cls<cls_epochs>p<patience>-gan<gan_epochs>p<gan_patience>-busi<size>px``): per
task ``<task>/`` with the bundle's outputs and a log per step (``<task>/<step>.log``), one MLflow store
``mlruns.db``, the wall times ``runtime.jsonl`` (:func:`~monai_xai.experiments.runner.wall_time`).

Resumable: rerun the same command after an interruption. A step is skipped once its folder records it done
with the same command (and the same checkpoints it reads); a killed training resumes from its
``checkpoints/latest.pt`` (and its early-stopping count from ``checkpoints/early_stopping.json``, so it stops
after the same epoch as an uninterrupted one). To redo a task, delete ``<root>/<task>`` (its earlier MLflow
runs stay in the store). In a task folder of the earlier shell driver BUSI's classifier refuses to resume
(its run identity now names its recipe): move ``<root>/busi`` aside.

Runtime, an estimate scaled from the measured times on the 2-core machine with the bf16 fast path (the first
full-budget run: PneumoniaMNIST 36 min, BUSI 19 min of which its LR range test 7 min, AdrenalMNIST3D 61 min,
early stopping ending every training after 11-34 epochs): the DenseNet121 judge takes 2-3 times the
classifier's time; the guided GAN doubles the GAN time and a bit more; BUSI's classifier now trains its 40
epochs (about 5 s an epoch at 128 px: 3-4 min). About 2-8 h in all; at most about 18 h if every training runs
to its epoch cap. The epoch times in the first step logs give a better figure.

The collector reads a task folder (``<root>/<task>``): each arm's evaluation
``eval_test{,_guided}/{metrics.json,predictions.json,examples.json}``
(:class:`monai_xai.handlers.CounterfactualReportHandler`), the epochs and best validation of every training
(``<workflow>/checkpoints/{latest.pt,best.json}``), the settings the trainings recorded (``run.json``'s
identity and the parameters of the MLflow run tagged with its ``uid``) and the wall time of the task's steps
(``runtime.jsonl`` beside the task folder). The arm whose weaker direction flipped more on the validation set
(``val_flip_rate_min`` of its GAN's ``best.json``; the study's on a tie) is copied to the top level with
``arm`` naming it; the targets are checked on it. ``classifier.architecture`` and ``judge.architecture`` name
both networks: an evaluation without the judge, or with a judge of the classifier's own architecture, is an
error.

Results file: ``bundles/agcyclegan_explainer/docs/results/<task>.json`` (blocks ``agcyclegan_<task>``).
``--publish`` writes it and copies each arm's best and worst panels per direction into
``bundles/agcyclegan_explainer/docs/figures/<task>_<arm>_<best|worst>_from_<class>.png`` (``docs_panels``,
which the README shows); without it the panels stay in the run folder.
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from monai_xai.errors import InputError

from .results import (
    REPO,
    Block,
    add_output_arguments,
    as_stats,
    bundle_results,
    finite,
    fmt,
    fmt_ci,
    output_path,
    read_json_if_present,
    rounded,
    study_parser,
    verdict,
    write_results,
)

__all__ = [
    "ABN_PLAIN_RESNET",
    "BLOCKS",
    "EVAL_METRICS",
    "FULL_BUDGET",
    "REFERENCES",
    "RUN_TASKS",
    "TASKS",
    "arm_figures",
    "check_architectures",
    "arm_chosen_on_validation",
    "classifier_intervals",
    "collect",
    "docs_panels",
    "eval_metrics",
    "evaluation_figures",
    "example_summary",
    "main",
    "recorded_settings",
    "render",
    "run",
    "summary",
    "targets",
    "task_wall_time",
    "training_record",
]

BUNDLE = "agcyclegan_explainer"
#: the docs' figures folder, where ``--publish`` copies the example panels
DOCS_FIGURES = f"bundles/{BUNDLE}/docs/figures"
#: MedMNIST v2 (Yang et al., Scientific Data 2023): test ACC and AUC of the ResNet-18 row of the task's size.
REFERENCES = {
    "pneumoniamnist": {"model": "MedMNIST v2, ResNet-18 (28)", "accuracy": 0.854, "auc": 0.944},
    "adrenalmnist3d": {"model": "MedMNIST v2, ResNet-18 + 3D", "accuracy": 0.721, "auc": 0.827},
}
#: task -> its words, class names (0, 1) and the flip rate both directions must reach (None: no target)
TASKS = {
    "pneumoniamnist": {
        "label": "PneumoniaMNIST",
        "classes": ["normal", "pneumonia"],
        "flip_rate_target": 0.9,
    },
    "adrenalmnist3d": {
        "label": "AdrenalMNIST3D",
        "classes": ["normal", "hyperplasia"],
        "flip_rate_target": 0.8,
    },
    "busi": {"label": "BUSI", "classes": ["benign", "malignant"], "flip_rate_target": None},
}
DIRECTIONS = ("_from_0", "_from_1")
CONTROLS = ("control", "uniform")
#: arm -> the suffix of its folders: the GAN variant's (train.json's gan_variant, null for the study)
ARMS = {"agcyclegan": "", "guided": "_guided"}
#: workflows with checkpoints, by record name: their folders, the first that exists counts (the judge of
#: train_judge.json in judge_densenet121/, the seed-1 copy of the classifier in judge/ in runs from before it)
WORKFLOWS = {
    "classifier": ("classifier",),
    "judge": ("judge_densenet121", "judge"),
    **{f"gan{suffix}": (f"gan{suffix}",) for suffix in ARMS.values()},
}
#: per-direction figures of metrics.json copied into the results file, overall ("") and per direction
FIGURES = (
    "n_images",
    "flip_rate",
    "control_flip_rate",
    "uniform_flip_rate",
    "mean_attention",
    "mean_abs_difference",
    "attention_vs_gradcampp",
)
#: the same translations and controls judged by the judge, overall and per direction
JUDGE_FIGURES = ("judge_flip_rate", "judge_control_flip_rate", "judge_uniform_flip_rate")
#: figures copied as they are: the flip rates' bootstrap intervals and the paired control intervals, by the
#: classifier and by the judge
INTERVALS = ("flip_rate_intervals", "judge_flip_rate_intervals", "control_gaps", "judge_control_gaps")
#: per direction the realism (KID) of the translations and of the untranslated images in the judge's
#: features: only where the judge ends in a linear layer
REALISM = tuple(f"judge_kid{kind}{d}" for kind in ("", "_untranslated") for d in DIRECTIONS)
#: the settings of a results file that the trainings recorded, by workflow folder: results-file name ->
#: MLflow parameter of that folder's run (train_classifier.json's and train.json's ``experiment_param``)
LOGGED = {
    "classifier": {
        "cls_epochs": "max_epochs",
        "base_lr": "base_lr",
        "max_lr": "max_lr",
        "momentum": "momentum",
        "weight_decay": "weight_decay",
        "early_stop_patience": "early_stop_patience",
        "cls_batch_size": "batch_size",
        "optimizer": "optimizer",
        "lr_schedule": "lr_schedule",
    },
    "gan": {
        "gan_epochs": "gan_epochs",
        "gan_early_stop_patience": "gan_early_stop_patience",
        "gan_loss": "gan_loss",
        "n_dis": "n_dis",
        "lambda_cyc": "lambda_cyc",
        "lambda_att": "lambda_att",
        "gan_batch_size": "gan_batch_size",
    },
    "gan_guided": {"lambda_cls": "lambda_cls"},
}
#: the settings of a results file recorded in the classifier's run identity (``run.json``, ``data``)
IDENTITY = ("limit", "spatial_size")
#: the arms' GAN checkpoints the evaluations explained: the driver's choice, which no run folder records
TESTED = {"gan_checkpoint": "the study's GAN", "guided_gan_checkpoint": "the guided GAN"}
#: the classifier scores of metrics.json
SCORES = ("accuracy", "auc", "sensitivity", "specificity")
#: bootstrap resamples of the classifier's intervals (as evaluate.json's ``n_boot``)
N_BOOT = 2000


def _directions(names: Iterable[str]) -> list[str]:
    """``names`` overall and per direction (``flip_rate``, ``flip_rate_from_0``, ...)."""
    return [name + suffix for name in names for suffix in ("", *DIRECTIONS) if name + suffix != "n_images"]


# --------------------------------------------------------------------------------------------- collector


def evaluation_figures(eval_dir: Path) -> dict:
    """One arm's evaluation: the classifier's scores and ``architecture``, every figure of :data:`FIGURES`
    and :data:`JUDGE_FIGURES` (overall and per direction), the intervals of :data:`INTERVALS`, the KID of
    :data:`REALISM` where recorded, the judge (``judge_classifier``: its scores and ``architecture``), the
    agreement with expert masks where recorded, and the example panels (``example_panels``, relative to the
    task folder, and ``example_summary``). An evaluation from before the controls, the intervals or the judge
    is an error that says what to rerun."""
    metrics_file = eval_dir / "metrics.json"
    if not metrics_file.is_file():
        raise InputError(eval_dir, "no test evaluation: run python -m monai_xai.experiments agcyclegan run")
    metrics = json.loads(metrics_file.read_text())
    wanted = ["classifier", "judge", "judge_classifier", *_directions(FIGURES + JUDGE_FIGURES), *INTERVALS]
    missing = [key for key in wanted if key not in metrics]
    missing += [
        f"{key}.architecture" for key in ("classifier", "judge") if "architecture" not in metrics.get(key, {})
    ]
    if missing:
        raise InputError(
            metrics_file,
            f"no {', '.join(missing)}: an evaluation from before the controls, the intervals or the "
            f"independent judge; delete {eval_dir} and rerun the evaluate steps of "
            "python -m monai_xai.experiments agcyclegan run (evaluate.json with --judge_checkpoint)",
        )
    clf = metrics["classifier"]
    figures: dict = {"classifier": {k: clf[k] for k in ("architecture", *SCORES) if k in clf}}
    figures.update({key: metrics[key] for key in ["n_images", *_directions(FIGURES + JUDGE_FIGURES)]})
    figures.update({key: metrics[key] for key in (*INTERVALS, *REALISM, "mask_agreement") if key in metrics})
    figures["judge_classifier"] = {**metrics["judge"], **metrics["judge_classifier"]}
    examples = read_json_if_present(eval_dir / "examples.json")
    figures["example_panels"] = {
        key: f"{eval_dir.name}/{entry['panel']}" if entry["panel"] else None
        for key, entry in examples.items()
    }
    figures["example_summary"] = {key: example_summary(entry["examples"]) for key, entry in examples.items()}
    return figures


def _accuracy(labels: Any, prob_1: Any) -> float:
    """Accuracy of the binary decision ``argmax`` of (1 - p, p): class 1 only where p > 0.5."""
    from monai_xai.metrics.uncertainty import accuracy

    return accuracy(labels, prob_1 > 0.5)


def classifier_intervals(eval_dir: Path, classes: Sequence[str], n_boot: int = N_BOOT) -> dict[str, dict]:
    """The explained classifier's test accuracy and AUC with 95 % bootstrap intervals (stratified by label)
    from the evaluation's per-image ``predictions.json``: each image's label is its ``source_class``
    (evaluate.json translates each image from its label), its probability of class 1 follows from
    ``prob_target_before`` (the target is the other class)."""
    import numpy as np

    from monai_xai.metrics.uncertainty import auc, bootstrap_ci

    predictions_file = eval_dir / "predictions.json"
    if not predictions_file.is_file():
        raise InputError(eval_dir, "no predictions.json: rerun the evaluate step (agcyclegan run)")
    predictions = json.loads(predictions_file.read_text())
    index = {name: i for i, name in enumerate(classes)}
    unknown = sorted({p["source_class"] for p in predictions} - set(index))
    if unknown:
        raise InputError(predictions_file, f"source classes {unknown} are not the task's {list(classes)}")
    labels = np.array([index[p["source_class"]] for p in predictions])
    p_target = np.array([p["prob_target_before"] for p in predictions], dtype=np.float64)
    prob_1 = np.where(labels == 0, p_target, 1.0 - p_target)
    return {
        name: bootstrap_ci(metric, labels, prob_1, n_boot=n_boot, stratify=0).to_dict()
        for name, metric in (("accuracy", _accuracy), ("auc", auc))
    }


def example_summary(examples: Sequence[dict]) -> dict:
    """What a panel's translations do to the classifier, for the docs' caption: how many it shows and their
    mean target probability before and after (``None`` when it shows none)."""
    n = len(examples)

    def mean(key: str) -> float | None:
        return sum(e[key] for e in examples) / n if n else None

    return {
        "n": n,
        "prob_target_before": mean("prob_target_before"),
        "prob_target_after": mean("prob_target_after"),
    }


def docs_panels(task_dir: Path, task: str, arm: str, panels: dict, figures_dir: Path) -> dict[str, str]:
    """Copy an arm's panels (``example_panels``, relative to ``task_dir``) into ``figures_dir`` as
    ``<task>_<arm>_<panel key>.png``, so that the docs show them without the run folder; their paths
    relative to the docs folder, by panel key (a panel that was not drawn is left out)."""
    from monai_xai.utils import copy_docs_figure

    return {
        key: copy_docs_figure(task_dir / path, figures_dir, f"{task}_{arm}_{key}.png")
        for key, path in panels.items()
        if path
    }


def arm_figures(task_dir: Path) -> dict[str, dict]:
    """:func:`evaluation_figures` of each arm evaluated (the study's always), by arm name."""
    arms = {"agcyclegan": evaluation_figures(task_dir / "eval_test")}
    for arm, suffix in ARMS.items():
        if suffix and (task_dir / f"eval_test{suffix}" / "metrics.json").is_file():
            arms[arm] = evaluation_figures(task_dir / f"eval_test{suffix}")
    return arms


def check_architectures(task_dir: Path, arms: Mapping[str, dict]) -> tuple[str, str]:
    """The explained classifier's and the judge's architecture, the same in every arm; an error when an arm
    was judged by a network of the classifier's own architecture (its agreement would say little: it shares
    the classifier's inductive biases, and a flip that fools one such network tends to fool the other)."""
    found = {
        role: {figures[key]["architecture"] for figures in arms.values()}
        for role, key in (("classifier", "classifier"), ("judge", "judge_classifier"))
    }
    for role, names in found.items():
        if len(names) != 1:
            raise InputError(task_dir, f"the arms' evaluations name different {role}s: {sorted(names)}")
    classifier, judge = found["classifier"].pop(), found["judge"].pop()
    if classifier == judge:
        raise InputError(
            task_dir,
            f"the judge has the explained classifier's architecture ({classifier}): judge the translations "
            "with a classifier of another architecture (train_judge.json's judge_architecture, into "
            "judge_densenet121/) and rerun the evaluate steps with its --judge_checkpoint",
        )
    return classifier, judge


def arm_chosen_on_validation(arms: Sequence[str], training: Mapping[str, dict]) -> str:
    """The arm whose GAN reached the higher validation flip rate of its weaker direction (``best.json`` of
    ``gan{suffix}``: ``val_flip_rate_min``), so that the test set does not pick it; the study's on a tie or
    when an arm's validation record is missing."""

    def validated(arm: str) -> float:
        value = training.get(f"gan{ARMS[arm]}", {}).get("value")
        return -math.inf if value is None or math.isnan(value) else float(value)

    return max(arms, key=validated)  # the first (the study's) on a tie


def training_record(task_dir: Path) -> dict:
    """Per workflow of :data:`WORKFLOWS` that has trained: ``epochs`` (the last completed epoch, from
    ``checkpoints/latest.pt``), and from ``checkpoints/best.json`` the ``metric`` of its best validation, its
    ``value`` and ``best_epoch``; a part whose file is absent is left out."""
    record = {}
    for workflow, folders in WORKFLOWS.items():
        folder = next((f for f in folders if (task_dir / f).is_dir()), folders[-1])
        checkpoints, entry = task_dir / folder / "checkpoints", {}
        if (checkpoints / "latest.pt").is_file():
            import torch

            state = torch.load(checkpoints / "latest.pt", map_location="cpu", weights_only=True)
            entry["epochs"] = int(state["engine"]["epoch"])
        best = read_json_if_present(checkpoints / "best.json")
        if best:
            entry.update(metric=best["metric"], value=best["value"], best_epoch=best["epoch"])
        if entry:
            record[workflow] = entry
    return record


def _param(text: str) -> Any:
    """An MLflow parameter (a string) as the value it was logged from: numbers, lists, None, else the text."""
    if text == "None":
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _logged_params(tracking_uri: str, uid: str) -> dict[str, Any]:
    """The parameters of the MLflow run tagged with a run folder's ``uid`` (any experiment of the store);
    a parameter a resumed run changed (tag ``changed.<param>``, ``"<old> -> <new>"``) at its new value."""
    import mlflow

    from monai_xai.handlers.mlflow_handler import UID_TAG

    client = mlflow.MlflowClient(tracking_uri=tracking_uri)
    experiments = [e.experiment_id for e in client.search_experiments()]
    if not experiments:
        return {}
    found = client.search_runs(experiments, filter_string=f"tags.`{UID_TAG}` = '{uid}'", max_results=1)
    if not found:
        return {}
    run = found[0]
    params = dict(run.data.params)
    for tag, value in run.data.tags.items():
        if tag.startswith("changed.") and " -> " in value:
            params[tag.removeprefix("changed.")] = value.split(" -> ", 1)[1]
    return {key: _param(value) for key, value in params.items()}


def _store(task_dir: Path) -> str | None:
    """The MLflow store of a task folder: the driver's ``OUT/mlruns.db`` beside it, else the bundle's
    default ``<task_dir>/mlruns.db``; None when neither exists."""
    for db in (task_dir.parent / "mlruns.db", task_dir / "mlruns.db"):
        if db.is_file():
            return f"sqlite:///{db.resolve()}"
    return None


def recorded_settings(
    task_dir: Path,
    tracking_uri: str | None,
    logged_params: Callable[[str, str], dict[str, Any]] = _logged_params,
) -> dict[str, Any]:
    """The settings the trainings recorded: ``limit`` and ``spatial_size`` from the classifier's ``run.json``
    identity, those of :data:`LOGGED` from the MLflow run of each workflow folder (found by its run.json's
    ``uid`` in ``tracking_uri``; ``logged_params(tracking_uri, uid)``). A setting without a value (None, or
    a folder, record or store that is absent) is left out."""
    settings: dict[str, Any] = {}
    identity = read_json_if_present(task_dir / "classifier" / "run.json").get("identity", {}).get("data", {})
    settings.update({key: identity.get(key) for key in IDENTITY})
    for folder, names in LOGGED.items():
        uid = read_json_if_present(task_dir / folder / "run.json").get("uid")
        params = logged_params(tracking_uri, uid) if uid and tracking_uri else {}
        settings.update({name: params.get(param) for name, param in names.items()})
    return {key: value for key, value in settings.items() if value is not None}


def _verdict(stats: Mapping[str, Any] | float, target: float) -> str:
    """:func:`verdict` of one figure (with its interval, or bare); an interval left undefined (no image in
    that direction: None bounds) cannot be told apart from the target."""
    interval = as_stats(stats).get("ci95")
    if interval is not None and None in interval:
        return "not distinguishable at this n"
    return verdict(stats, target)


def _combined(verdicts: Sequence[str]) -> str:
    """One verdict for a target of several figures: met when every one is met, missed when one is missed."""
    if "missed" in verdicts:
        return "missed"
    if all(v == "met" for v in verdicts):
        return "met"
    return "no interval" if "no interval" in verdicts else "not distinguishable at this n"


def targets(
    figures: Mapping[str, Any], reference: Mapping[str, Any] | None, flip_target: float | None
) -> dict:
    """The targets and their verdicts (``met``, ``missed``, ``not distinguishable at this n``, or ``no
    interval`` for a figure recorded without one), from the 95 % intervals of ``figures`` (the top level of
    a results file): the classifier's accuracy and AUC above the paper's row (``classifier``), the flip rate
    above the task's target both ways (``flip_rate``; ``judge_flip_rate`` by the judge), and each control's
    paired interval of translation minus control above zero, both directions (``controls``;
    ``judge_controls`` by the judge); a target the task or the file does not have is left out. ``all_met``
    only when there is one and every one is met."""
    verdicts: dict[str, str] = {}
    clf = figures["classifier"]
    if reference is not None:
        intervals = clf.get("intervals", {})
        scores = [
            _verdict(intervals[k] if k in intervals else clf[k], reference[k]) for k in ("accuracy", "auc")
        ]
        verdicts["classifier"] = _combined(scores)
    for judge in ("", "judge_"):
        keys = [f"{judge}flip_rate{d}" for d in DIRECTIONS]
        if flip_target is not None and all(key in figures for key in keys):
            intervals = figures.get(f"{judge}flip_rate_intervals", {})
            rates = [_verdict(intervals.get(key, figures[key]), flip_target) for key in keys]
            verdicts[f"{judge}flip_rate"] = _combined(rates)
        gaps = figures.get(f"{judge}control_gaps")
        if gaps:
            verdicts[f"{judge}controls"] = _combined([_verdict(gap, 0.0) for gap in gaps.values()])
        elif f"{judge}control_flip_rate_from_0" in figures:  # point estimates only
            verdicts[f"{judge}controls"] = "no interval"
    return {
        "classifier_accuracy_at_least": None if reference is None else reference["accuracy"],
        "classifier_auc_at_least": None if reference is None else reference["auc"],
        "flip_rate_at_least": flip_target,
        "verdicts": verdicts,
        "all_met": bool(verdicts) and all(v == "met" for v in verdicts.values()),
    }


def task_wall_time(task_dir: Path) -> dict[str, Any]:
    """The wall time of a task's steps: those named ``<task>/<step>`` in ``runtime.jsonl`` beside the task
    folder (:func:`~monai_xai.experiments.runner.wall_time`), keyed by ``<step>``, with their sum in
    ``seconds`` and whether one of them continued an attempt that was not timed (``resumed``)."""
    from .runner import wall_time

    prefix = f"{task_dir.name}/"
    timed = wall_time(task_dir.parent)["steps"]
    steps = {name.removeprefix(prefix): entry for name, entry in timed.items() if name.startswith(prefix)}
    return {
        "seconds": round(sum(entry["seconds"] for entry in steps.values()), 1),
        "resumed": any(entry["resumed"] for entry in steps.values()),
        "steps": steps,
    }


def collect(
    task_dir: Path,
    task: str,
    figures_dir: Path | None = None,
    tracking_uri: str | None = None,
    tested: Mapping[str, str] | None = None,
    logged_params: Callable[[str, str], dict[str, Any]] = _logged_params,
) -> dict:
    """The results file of one task folder (module docstring). ``figures_dir``: copy each arm's panels there
    (:func:`docs_panels`); ``tracking_uri``: the MLflow store of the trainings (default: :func:`_store`);
    ``tested``: the GAN checkpoint each evaluation explained (:data:`TESTED`), as ``run`` chose it."""
    classes = TASKS[task]["classes"]
    arms = arm_figures(task_dir)
    check_architectures(task_dir, arms)
    classifier = arms["agcyclegan"]["classifier"]  # every arm explains that classifier on the same images
    classifier["intervals"] = classifier_intervals(task_dir / "eval_test", classes)
    if figures_dir is not None:
        for name, figures in arms.items():
            figures["docs_panels"] = docs_panels(task_dir, task, name, figures["example_panels"], figures_dir)
    judge = arms["agcyclegan"]["judge_classifier"]
    for figures in arms.values():
        del figures["classifier"], figures["judge_classifier"]
    training = training_record(task_dir)
    arm = arm_chosen_on_validation(list(arms), training)
    figures = {"classifier": classifier, **arms[arm]}
    settings = recorded_settings(task_dir, tracking_uri or _store(task_dir), logged_params)
    settings.update({key: value for key, value in (tested or {}).items() if value is not None})
    report = {
        "task": task,
        **{k: TASKS[task][k] for k in ("label", "classes")},
        "arm": arm,
        **figures,
        "judge": judge,
        "arms": arms,
        "reference": REFERENCES.get(task),
        "targets": targets(finite(figures), REFERENCES.get(task), TASKS[task]["flip_rate_target"]),
        "training": training,
        "settings": settings,
    }
    timed = task_wall_time(task_dir)
    if timed["steps"]:
        report["wall_time"] = timed
    return finite(report)  # strict JSON: an empty direction's flip rate or interval is NaN


# ----------------------------------------------------------------------------------------------- summary


def _cell(value: Any) -> str:
    return fmt(value) if value is None or isinstance(value, float) else str(value)


def _arm_name(eval_dir: Path) -> str:
    """``agcyclegan`` for ``eval_test`` (the study's GAN), ``<variant>`` for ``eval_test_<variant>``."""
    return eval_dir.name.removeprefix("eval_test").removeprefix("_") or "agcyclegan"


def summary(root: Path) -> str:
    """A markdown row per task and arm of an experiment folder (each ``<task>/eval_test*/metrics.json``):
    the classifier's scores, the flip rates (with their intervals where recorded) by the classifier and the
    judge, and the attention's agreement with Grad-CAM++ and the masks; then the wall time of every step
    (``runtime.jsonl``)."""
    rows = [
        "| task | arm | n test | accuracy | sensitivity | specificity | AUC | confusion before "
        "| confusion after | flip rate | flip 0->1 | flip 1->0 | judge flip 0->1 | judge flip 1->0 "
        "| corr(A, Grad-CAM++) | top-10% IoU | A in mask (energy) | Grad-CAM++ in mask (energy) "
        "| A pointing game | Grad-CAM++ pointing game |",
        "|" + "---|" * 20,
    ]
    for metrics_file in sorted(root.glob("*/eval_test*/metrics.json")):
        m = json.loads(metrics_file.read_text())
        clf = m.get("classifier", {})
        intervals = {**m.get("flip_rate_intervals", {}), **m.get("judge_flip_rate_intervals", {})}
        rates = ["flip_rate", *(f"{judge}flip_rate{d}" for judge in ("", "judge_") for d in DIRECTIONS)]
        agree = m.get("attention_vs_gradcampp", {})
        mask = m.get("mask_agreement", {})
        att, cam = mask.get("attention", {}), mask.get("gradcampp", {})
        cells = [
            metrics_file.parts[-3],
            _arm_name(metrics_file.parent),
            m["n_images"],
            *(clf.get(k) for k in ("accuracy", "sensitivity", "specificity", "auc")),
            m.get("confusion_before"),
            m.get("confusion_after"),
        ]
        cells = [_cell(c) for c in cells] + [fmt_ci(intervals.get(key, m.get(key))) for key in rates]
        more = [agree.get("correlation"), agree.get("top10pct_iou")]
        more += [att.get("energy_inside_mask"), cam.get("energy_inside_mask")]
        more += [att.get("pointing_game"), cam.get("pointing_game")]
        rows.append("| " + " | ".join(cells + [_cell(c) for c in more]) + " |")
    from .runner import wall_time

    timed = wall_time(root)["steps"]
    if timed:
        rows += [
            "",
            "| step | wall time (s) | attempts | done | continued an untimed attempt |",
            "|---|---|---|---|---|",
        ]
        rows += [
            f"| {name} | {e['seconds']:.0f} | {e['attempts']} | {e['done']} | {e['resumed']} |"
            for name, e in timed.items()
        ]
    return "\n".join(rows)


# ------------------------------------------------------------------------------------------------- runner

#: the bundle's configs, as the steps name them (relative to the repository, where the steps run)
CONFIGS = f"bundles/{BUNDLE}/configs"
#: train_judge.json's folder (and step names) for its default judge_architecture, DenseNet121
JUDGE = "judge_densenet121"
#: the budget below which results stay in the run folder (``--publish`` refused); BUSI needs ``size`` too
FULL_BUDGET = {"cls_epochs": 100, "patience": 10, "gan_epochs": 100, "gan_patience": 10, "size": 128}
#: the LR range test's suggestion (``lr_range_test.json``'s ``best``) as classifier overrides
LR_KEYS = ("base_lr", "max_lr", "momentum", "weight_decay")

#: The recipe of the ABN bundle's plain ResNet18 on BUSI (abn_classification's train.json with the
#: busi_binary_dedup fragment, busi_crossval's ``baseline`` arm at its full budget), written in this bundle's
#: train_classifier.json ids: AdamW at ``learning_rate`` 1e-3 and weight decay 1e-4, a cosine decay over the
#: epochs (``CosineAnnealingLR`` stepped each epoch), batch 32, no early stopping, 40 epochs, the checkpoint
#: of the highest validation AUC, ``class_balance auto`` (BUSI's 2:1 ratio: neither oversampling nor loss
#: weights). ``base_lr`` carries AdamW's learning rate (``max_lr`` and ``momentum`` belong to the cyclical
#: SGD it replaces), ``optimizer`` and ``lr_schedule`` are logged beside it, and the run identity names the
#: recipe, so that a classifier folder of the other recipe is never resumed with this one.
ABN_PLAIN_RESNET: dict[str, Any] = {
    "max_epochs": 40,
    "early_stop_patience": None,
    "batch_size": 32,
    "base_lr": 0.001,
    "weight_decay": 0.0001,
    "max_lr": None,
    "momentum": None,
    "class_balance": "auto",
    "balance": "$monai_xai.data.resolve_class_balance(@class_balance, @train#cache#data, @num_classes)",
    "train#dataset": "$@balance.wrap(@train#cache, @train#cache#data, seed=@seed)",
    "train#trainer#loss_function": "$monai_xai.losses.get_classifier_loss('baseline', "
    "class_weights=@balance.loss_weights)",
    "train#optimizer": {
        "_target_": "torch.optim.AdamW",
        "params": "$@model.parameters()",
        "lr": "@base_lr",
        "weight_decay": "@weight_decay",
    },
    "train#lr_schedule": {
        "_target_": "torch.optim.lr_scheduler.CosineAnnealingLR",
        "optimizer": "@train#optimizer",
        "T_max": "@max_epochs",
    },
    "train#handlers#0": {
        "_target_": "LrScheduleHandler",
        "lr_scheduler": "@train#lr_schedule",
        "print_lr": False,
    },
    "validate#handlers#1#metric": "val_auc",
    "validate#handlers#1#greater_is_better": True,
    "train#handlers#3#experiment_param#optimizer": "AdamW",
    "train#handlers#3#experiment_param#lr_schedule": "cosine",
    "run_identity#classifier#recipe": "abn_classification plain ResNet18 (AdamW, cosine, best val_auc)",
}

#: task -> how ``run`` trains it: its dataset fragment, the overrides of its every bundle run, whether
#: ``--size`` sets its ``spatial_size``, and a classifier recipe that replaces the LR range test's
#: (``classifier``: overrides; its ``max_epochs`` is capped by ``--cls_epochs``)
RUN_TASKS: dict[str, dict[str, Any]] = {
    "pneumoniamnist": {"fragment": "configs/datasets/pneumoniamnist.json", "overrides": {}},
    "adrenalmnist3d": {  # 3D: smaller batches
        "fragment": "configs/datasets/adrenalmnist3d.json",
        "overrides": {"batch_size": 32, "gan_batch_size": 8, "val_batch_size": 16},
    },
    "busi": {  # the bundle's default dataset_path is the PneumoniaMNIST file
        "fragment": "configs/datasets/busi_binary_dedup.json",
        "overrides": {"dataset_path": "../shared/data/busi_256/labels.csv"},
        "sized": True,
        "classifier": ABN_PLAIN_RESNET,
    },
}


def default_root(args: argparse.Namespace) -> Path:
    """``runs/experiments/agcyclegan-cls100p10-gan100p10-busi128px[-limit64]`` under the repository."""
    name = (
        f"agcyclegan-cls{args.cls_epochs}p{args.patience}-gan{args.gan_epochs}p{args.gan_patience}"
        f"-busi{args.size}px" + (f"-limit{args.limit}" if args.limit else "")
    )
    return REPO / "runs" / "experiments" / name


def below_budget(args: argparse.Namespace) -> str | None:
    """What keeps a run below :data:`FULL_BUDGET` (None at the full budget): each publishes nothing."""
    short = [
        f"--{key} {getattr(args, key)} < {value}"
        for key, value in FULL_BUDGET.items()
        if getattr(args, key) < value and (key != "size" or "busi" in args.tasks)
    ]
    short += [f"--limit {args.limit}"] if args.limit else []
    short += [f"--extra {' '.join(args.extra)}"] if args.extra else []
    return ", ".join(short) or None


def lr_suggestion(path: Path) -> dict[str, float]:
    """The best pair of an LR range test (``lr_range_test.json``) as the overrides :data:`LR_KEYS`."""
    best = read_json_if_present(path).get("best") or {}
    missing = [key for key in LR_KEYS if key not in best]
    if missing:
        raise InputError(
            path, f"no LR range test suggestion ({', '.join(missing)}); delete {path.parent} to redo it"
        )
    return {key: best[key] for key in LR_KEYS}


def tested_checkpoint(gan_dir: Path) -> str:
    """``best`` (the GAN of the highest ``val_flip_rate_min``), or ``latest`` when a validation direction had
    no images and no best.pt was written."""
    if (gan_dir / "checkpoints" / "best.pt").is_file():
        return "best"
    print(
        f"no {gan_dir}/checkpoints/best.pt (no validation flip rate in one direction): explaining latest.pt"
    )
    return "latest"


def run_task(runner: Any, args: argparse.Namespace, task: str, task_dir: Path, store: str) -> dict[str, str]:
    """Run every step of one task (module docstring) through ``runner``; the GAN checkpoint each evaluation
    explained (:data:`TESTED`)."""
    from monai_xai.cli_args import bundle_overrides

    from .runner import Step, bundle_run_argv

    spec = RUN_TASKS[task]
    data = [f"{CONFIGS}/train.json", spec["fragment"]]
    common: dict[str, Any] = {
        "meta_file": f"{CONFIGS}/metadata.json",
        "logging_file": f"{CONFIGS}/logging.conf",
        "output_dir": task_dir,
        "model_dir": task_dir / "models",
        "tracking_uri": store,
        **spec["overrides"],
        **({"spatial_size": [args.size, args.size]} if spec.get("sized") else {}),
        **({"num_workers": args.workers} if args.workers is not None else {}),
        **({"limit": args.limit} if args.limit else {}),
    }
    extra = bundle_overrides([f"--{item}" for item in args.extra])

    def step(
        name: str, configs: list[str], overrides: dict, folder: str, inputs: Sequence[Path] = ()
    ) -> None:
        argv = bundle_run_argv(configs, {**common, **overrides, **extra})
        runner.run(Step(f"{task}/{name}", argv, task_dir / folder, inputs=inputs))

    until_stopped = {"max_epochs": args.cls_epochs, "early_stop_patience": args.patience}
    classifier_configs = [*data, f"{CONFIGS}/train_classifier.json"]
    recipe = spec.get("classifier")
    if recipe is None:
        step("lr_find", classifier_configs, {"run_id": "lr_find"}, "classifier/lr_range_test")
        suggested = lr_suggestion(task_dir / "classifier" / "lr_range_test" / "lr_range_test.json")
        print(f"{task}: LR range test: cyclical SGD {suggested}")
        step("classifier", classifier_configs, {**until_stopped, **suggested}, "classifier")
    else:
        epochs = min(args.cls_epochs, recipe["max_epochs"])
        step("classifier", classifier_configs, {**recipe, "max_epochs": epochs}, "classifier")
    # the judge: its own network (judge_def), folder and MLflow run, its own LR range test
    judge_configs = [*classifier_configs, f"{CONFIGS}/train_judge.json"]
    step(f"{JUDGE}_lr_find", judge_configs, {"run_id": "lr_find"}, f"{JUDGE}/lr_range_test")
    suggested = lr_suggestion(task_dir / JUDGE / "lr_range_test" / "lr_range_test.json")
    print(f"{task}: judge's LR range test: cyclical SGD {suggested}")
    step(JUDGE, judge_configs, {**until_stopped, **suggested}, JUDGE)
    classifier = task_dir / "classifier" / "checkpoints" / "best.pt"  # the classifier the GANs explain
    gan = {"gan_epochs": args.gan_epochs, "gan_early_stop_patience": args.gan_patience}
    guided = f"{CONFIGS}/train_guided.json"
    step("gan", data, gan, "gan", inputs=[classifier])
    step(
        "gan_guided",
        [*data, guided],
        {**gan, "lambda_cls": args.lambda_cls},
        "gan_guided",
        inputs=[classifier],
    )
    judge = task_dir / JUDGE / "checkpoints" / "best.pt"
    tested = {}
    for key, name, configs, folder, eval_dir in (
        ("gan_checkpoint", f"evaluate_{JUDGE}", data, "gan", "eval_test"),
        (
            "guided_gan_checkpoint",
            f"evaluate_guided_{JUDGE}",
            [*data, guided],
            "gan_guided",
            "eval_test_guided",
        ),
    ):
        tested[key] = tested_checkpoint(task_dir / folder)
        checkpoint = task_dir / folder / "checkpoints" / f"{tested[key]}.pt"
        overrides = {"gan_checkpoint": checkpoint, "judge_checkpoint": judge, "n_panels": args.n_panels}
        step(
            name, [*configs, f"{CONFIGS}/evaluate.json"], overrides, eval_dir, [checkpoint, judge, classifier]
        )
    return tested


def run(args: argparse.Namespace) -> list[Path]:
    """Train, evaluate and collect every task of ``args.tasks`` (resumable); the results files written."""
    from .runner import StepRunner

    root = args.root.resolve() if args.root is not None else default_root(args)
    out = args.out or root / "results"
    store = f"sqlite:///{root / 'mlruns.db'}"
    written = []
    with StepRunner(root, "agcyclegan") as runner:
        for task in args.tasks:
            task_dir = root / task
            tested = run_task(runner, args, task, task_dir, store)
            # the settings (epochs, patience, learning rates, image size, ...) from the run folders and MLflow
            figures_dir = REPO / DOCS_FIGURES if args.publish else None
            report = collect(task_dir, task, figures_dir=figures_dir, tracking_uri=store, tested=tested)
            published = BLOCKS[f"agcyclegan_{task}"].path
            written.append(
                write_results(report, published if args.publish else out / f"{task}.json", args.publish)
            )
            _print_figures(report)
            print(f"written {written[-1]}")
    text = summary(root)
    (root / "summary.md").write_text(text + "\n")
    print(text)
    if args.publish:
        from .readme import update

        for path in update():
            print(f"updated {path.relative_to(REPO)}")
    return written


# ----------------------------------------------------------------------------------------- command line


def _print_figures(report: dict) -> None:
    for name, figures in report["arms"].items():
        for d in DIRECTIONS:
            print(
                f"{name}: flip rate {d[-1]} -> {1 - int(d[-1])}: {fmt(figures[f'flip_rate{d}'])} (judge "
                f"{fmt(figures[f'judge_flip_rate{d}'])}; controls: shuffled maps "
                f"{fmt(figures[f'control_flip_rate{d}'])}, uniform maps "
                f"{fmt(figures[f'uniform_flip_rate{d}'])})"
            )
    print(f"top level: {report['arm']}; targets: {json.dumps(report['targets']['verdicts'])}")


def main(argv: list[str] | None = None) -> int:
    parser, commands = study_parser("agcyclegan", __doc__)
    runner = commands.add_parser("run", help="train, evaluate and collect every task (resumable)")
    runner.add_argument("--tasks", nargs="+", default=list(RUN_TASKS), choices=list(RUN_TASKS))
    runner.add_argument("--root", type=Path, help="the run folder (default: runs/experiments/agcyclegan-...)")
    runner.add_argument("--cls_epochs", type=int, default=FULL_BUDGET["cls_epochs"], help="classifier, judge")
    runner.add_argument("--patience", type=int, default=FULL_BUDGET["patience"], help="classifier, judge")
    runner.add_argument("--gan_epochs", type=int, default=FULL_BUDGET["gan_epochs"])
    runner.add_argument("--gan_patience", type=int, default=FULL_BUDGET["gan_patience"])
    runner.add_argument("--lambda_cls", type=float, default=1.0, help="the guided GAN's classifier term")
    runner.add_argument("--size", type=int, default=FULL_BUDGET["size"], help="BUSI's image side (px)")
    runner.add_argument("--n_panels", type=int, default=16, help="images per example panel")
    runner.add_argument("--workers", type=int, help="num_workers of every bundle run (default: the bundle's)")
    runner.add_argument("--limit", type=int, help="items per split, a seeded sample (a smoke test)")
    runner.add_argument(
        "--extra", nargs="+", default=[], metavar="KEY=VALUE", help="bundle overrides given last to every run"
    )
    runner.add_argument("--out", type=Path, help="folder of the results files (default: <root>/results)")
    runner.add_argument(
        "--publish",
        action="store_true",
        help=f"write the results into bundles/{BUNDLE}/docs/results/<task>.json (full budget only)",
    )
    collector = commands.add_parser("collect", help="write the results file of one task folder")
    collector.add_argument("task_dir", type=Path, help="the task's folder (<root>/<task> of run)")
    collector.add_argument("--task", required=True, choices=sorted(TASKS))
    add_output_arguments(collector, published=f"bundles/{BUNDLE}/docs/results/<task>.json")
    collector.add_argument(
        "--tracking_uri",
        help="the trainings' MLflow store (default: <root>/mlruns.db, else <task_dir>/mlruns.db)",
    )
    for key, label in TESTED.items():
        collector.add_argument(
            f"--{key}", choices=("best", "latest"), help=f"the checkpoint of {label} the evaluation explained"
        )
    summarizer = commands.add_parser("summary", help="print a markdown row per task and arm of a run folder")
    summarizer.add_argument("root", type=Path, help="the run folder (--root of run)")
    args = parser.parse_args(argv)
    if args.command == "summary":
        print(summary(args.root))
        return 0
    if args.command == "run":
        short = below_budget(args)
        if args.publish and short:
            raise InputError(None, f"--publish needs the full budget {FULL_BUDGET}: {short}")
        if args.publish and args.out is not None:
            raise InputError(
                args.out, f"--publish writes bundles/{BUNDLE}/docs/results/; give one of the two"
            )
        run(args)
        return 0
    published = f"bundles/{BUNDLE}/docs/results/{args.task}.json"
    destination = output_path(args, published)
    report = collect(
        args.task_dir,
        args.task,
        figures_dir=REPO / DOCS_FIGURES if args.publish else None,
        tracking_uri=args.tracking_uri,
        tested={key: getattr(args, key) for key in TESTED},
    )
    write_results(report, destination, publish=args.publish)
    _print_figures(report)
    print(f"written {destination}")
    return 0


# ---------------------------------------------------------------------------------------------- renderer

#: per-direction columns of the main table before the Grad-CAM++ agreement, by results-file key
TABLE_FIGURES = (
    "flip_rate",
    "judge_flip_rate",
    "control_flip_rate",
    "uniform_flip_rate",
    "mean_attention",
    "mean_abs_difference",
)
#: the arms of a results file, in words
ARM_WORDS = {"agcyclegan": "AG-CycleGAN (study's loss)", "guided": "classifier-guided"}
#: the workflows of a results file's ``training`` record, in words
WORKFLOW_WORDS = {
    "classifier": "classifier",
    "judge": "judge",
    "gan": "GAN (study's loss)",
    "gan_guided": "GAN (classifier-guided)",
}
#: what the ``gan_checkpoint`` / ``guided_gan_checkpoint`` settings say about the tested GAN
TESTED_WORDS = {"best": "of the best validation", "latest": "of the last epoch"}
#: the example panels of an arm: kind -> (column heading, what its translations do, why a panel is missing)
PANELS = {
    "best": ("best: flipped, largest change of p(target)", "flipped", "no translation flipped"),
    "worst": ("worst: not flipped, smallest change of p(target)", "not flipped", "every translation flipped"),
}
#: a verdict as the targets table prints it
VERDICT_WORDS = {
    "met": "met",
    "missed": "**missed**",
    "not distinguishable at this n": "not distinguishable at this n",
    "no interval": "no interval (re-run pending)",
}


def _panel(path: str | None, summary: dict, kind: str, direction: str) -> str:
    """One cell of the panel table: the image and what its translations do to p(target), or why none."""
    _, verb, missing = PANELS[kind]
    if path is None:
        return f"- ({missing})"
    before, after = fmt(summary["prob_target_before"], 2), fmt(summary["prob_target_after"], 2)
    return f"![{kind}, {direction}]({path})<br>{summary['n']} {verb}: mean p(target) {before} → {after}"


def _panels(report: dict, directions: dict[str, str]) -> list[str]:
    """The top-level arm's best and worst example panels per direction as images, each with what its
    translations do to the target probability, and the other arms' as links; nothing when the results file
    records no panels in the docs (``docs_panels``: not published)."""
    arms, top = report["arms"], report["arm"]
    if "docs_panels" not in arms[top]:
        return []
    headings = " | ".join(heading for heading, _, _ in PANELS.values())
    rows = [
        "",
        f"Example panels, {ARM_WORDS[top]} (the top level): each row a test image, its attention A, "
        "translation M(x) and \\|M(x) − x\\|, titled with p(target) before → after.",
        "",
        f"| direction | {headings} |",
        "|---|---|---|",
    ]
    for suffix, direction in directions.items():
        cells = [
            _panel(
                arms[top]["docs_panels"].get(kind + suffix),
                arms[top]["example_summary"][kind + suffix],
                kind,
                direction,
            )
            for kind in PANELS
        ]
        rows.append(f"| {direction} | {' | '.join(cells)} |")
    others = [
        f"[{kind}, {direction}, {ARM_WORDS[arm]}]({figures['docs_panels'][kind + suffix]})"
        for arm, figures in arms.items()
        if arm != top
        for suffix, direction in directions.items()
        for kind in PANELS
        if kind + suffix in figures.get("docs_panels", {})
    ]
    if others:
        rows += ["", f"The other arm's panels: {', '.join(others)}."]
    return rows


def _training(label: str, record: dict) -> str:
    """``classifier 34 epochs, best `val_loss` 0.212 at epoch 24``: one workflow's ``training`` record."""
    text = label + (f" {record['epochs']} epochs" if "epochs" in record else "")
    if "metric" in record:
        text += f", best `{record['metric']}` {fmt(record['value'])} at epoch {record['best_epoch']}"
    return text


def _wall_time(record: list[str] | dict) -> str:
    """``41 min in all (lr_find 433 s; classifier 70 s; ...)`` from the runner's record of a task's steps;
    results files of the earlier shell driver hold its ``runtime.txt`` lines."""
    if isinstance(record, list):
        return "; ".join(record)
    seconds = record["seconds"]
    total = (
        f"{seconds:.0f} s"
        if seconds < 120
        else f"{seconds / 60:.0f} min"
        if seconds < 7200
        else f"{seconds / 3600:.1f} h"
    )
    steps = "; ".join(f"{name} {entry['seconds']:.0f} s" for name, entry in record["steps"].items())
    return f"{total} in all ({steps})"


def _tested(settings: dict) -> str:
    """`` Tested: the study's GAN of the best validation; ...``, from the checkpoint settings given."""
    tested = [f"{label} {TESTED_WORDS[settings[key]]}" for key, label in TESTED.items() if key in settings]
    return f" Tested: {'; '.join(tested)}." if tested else ""


def _scores_row(label: str, scores: dict) -> str:
    """``| label | accuracy | AUC | sensitivity | specificity |``, with intervals where recorded."""
    intervals = scores.get("intervals", {})
    return f"| {label} | {' | '.join(fmt_ci(intervals.get(k, scores.get(k))) for k in SCORES)} |"


def _judge_rows(arms: dict, directions: dict[str, str]) -> list[str]:
    """Per direction and arm, the judge's flip rates of the translations and of both controls, and the KID
    of the translations and of the untranslated images to the real images of the target class in the
    judge's features; nothing for results files whose evaluations did not judge the controls."""
    if not any("judge_control_flip_rate_from_0" in figures for figures in arms.values()):
        return []
    rows = [
        "",
        "| direction | arm | judge's flip rate | judge: shuffled maps | judge: uniform maps "
        "| KID to the real target class: translations | KID: untranslated images |",
        "|---" * 7 + "|",
    ]
    for suffix, label in directions.items():
        for arm, figures in arms.items():
            intervals = figures.get("judge_flip_rate_intervals", {})
            cells = [fmt_ci(intervals.get(key + suffix, figures.get(key + suffix))) for key in JUDGE_FIGURES]
            cells += [fmt_ci(figures.get(f"judge_kid{kind}{suffix}"), 4) for kind in ("", "_untranslated")]
            rows.append(f"| {label} | {ARM_WORDS[arm]} | {' | '.join(cells)} |")
    return rows


def _gap_rows(arms: dict, directions: dict[str, str]) -> list[str]:
    """Per direction and arm, the translations' flip rate minus each control's with its paired bootstrap
    interval, by the classifier and by the judge; nothing for results files without them."""
    if not any("control_gaps" in figures for figures in arms.values()):
        return []
    rows = [
        "",
        "| direction | arm | flips judged by | flip rate − shuffled maps | flip rate − uniform maps |",
        "|---|---|---|---|---|",
    ]
    for suffix, label in directions.items():
        for arm, figures in arms.items():
            for prefix, judged_by in (("", "classifier"), ("judge_", "judge")):
                gaps = figures.get(f"{prefix}control_gaps")
                if gaps:
                    cells = [fmt_ci(gaps[control + suffix]) for control in CONTROLS]
                    rows.append(f"| {label} | {ARM_WORDS[arm]} | {judged_by} | {' | '.join(cells)} |")
    return rows


def _target_rows(report: dict) -> list[str]:
    """The targets table: each target's verdict from the file's intervals (:func:`targets`); a figure
    recorded without an interval (a results file from before them) is not judged."""
    recorded = report["targets"]
    checked = targets(report, report["reference"], recorded["flip_rate_at_least"])["verdicts"]
    flip = recorded["flip_rate_at_least"]
    paired = "(paired 95 % interval of the difference above 0)"
    labels = {
        "classifier": f"classifier accuracy above {recorded['classifier_accuracy_at_least']} and AUC above "
        f"{recorded['classifier_auc_at_least']} (whole 95 % interval)",
        "flip_rate": f"flip rate above {flip} both ways (whole 95 % interval)",
        "controls": f"both controls flip less than the translations, each direction {paired}",
        "judge_flip_rate": f"judge's flip rate above {flip} both ways (whole 95 % interval)",
        "judge_controls": f"both controls flip the judge less than the translations, each direction {paired}",
    }
    rows = ["", "| target | |", "|---|---|"]
    rows += [f"| {labels[key]} | {VERDICT_WORDS[result]} |" for key, result in checked.items()]
    return rows


def _mask_rows(arms: dict) -> list[str]:
    """Agreement of each arm's attention and of Grad-CAM++ with the expert masks, where recorded."""
    masks = {arm: figures["mask_agreement"] for arm, figures in arms.items() if "mask_agreement" in figures}
    if not masks:
        return []
    rows = [
        "",
        "| map vs expert masks | energy inside mask | pointing game | IoU | MSE | images |",
        "|---|---|---|---|---|---|",
    ]
    maps = [(f"attention A, {ARM_WORDS[arm]}", mask.get("attention")) for arm, mask in masks.items()]
    maps.append(("Grad-CAM++", next(iter(masks.values())).get("gradcampp")))  # one classifier for all
    for label, scores in maps:
        if scores:
            cells = " | ".join(
                fmt(scores[k]) for k in ("energy_inside_mask", "pointing_game", "map_iou", "map_mse")
            )
            rows.append(f"| {label} | {cells} | {scores['num_evaluated']} |")
    return rows


def render(report: dict) -> str:
    """Per direction and arm: flip rate of the translations, by the classifier and by the judge, the flip
    rate of both controls, mean attention and change, agreement with Grad-CAM++, with 95 % intervals where
    the file has them; the judge's flip rates of the controls and the KID of the translations in its
    features, and the paired intervals of translation minus control; which arm is the top level; the
    classifier and the judge (with their architectures) beside the paper's row; the targets, met only where
    an interval clears them. Results files from before the intervals and the judge render too: their
    targets read "no interval (re-run pending)"."""
    classes, arms = report["classes"], report["arms"]
    iou = next(key for key in report["attention_vs_gradcampp"] if key.endswith("pct_iou"))
    top = iou.removeprefix("top").removesuffix("pct_iou")
    rows = [
        "| direction | arm | test images | flip rate | judge's flip rate | control: shuffled maps "
        "| control: uniform maps | mean A | mean \\|M(x) − x\\| | corr(A, Grad-CAM++) "
        f"| top-{top} % IoU (A, Grad-CAM++) |",
        "|---" * 11 + "|",
    ]
    directions = {
        "_from_0": f"{classes[0]} → {classes[1]}",
        "_from_1": f"{classes[1]} → {classes[0]}",
        "": "both",
    }
    for suffix, label in directions.items():
        for arm, figures in arms.items():
            agreement = figures[f"attention_vs_gradcampp{suffix}"]
            intervals = {
                **figures.get("flip_rate_intervals", {}),
                **figures.get("judge_flip_rate_intervals", {}),
            }
            cells = [fmt_ci(intervals.get(key + suffix, figures.get(key + suffix))) for key in TABLE_FIGURES]
            cells += [fmt(agreement[key]) for key in ("correlation", iou)]
            rows.append(
                f"| {label} | {ARM_WORDS[arm]} | {figures[f'n_images{suffix}']} | {' | '.join(cells)} |"
            )
    both_ways = {k: v for k, v in directions.items() if k}
    rows += _judge_rows(arms, both_ways) + _gap_rows(arms, both_ways)
    rows += [
        "",
        f"Top level of the results file, and the targets below: {ARM_WORDS[report['arm']]}, the arm "
        "whose weaker direction flipped more on the validation set.",
    ]
    clf, judge, reference = report["classifier"], report.get("judge"), report["reference"]
    rows += [
        "",
        "| classifier | accuracy | AUC | sensitivity | specificity |",
        "|---|---|---|---|---|",
        _scores_row(
            "this run's classifier" + (f" ({clf['architecture']})" if "architecture" in clf else ""), clf
        ),
    ]
    judged_by = "the classifier trained again with another seed"  # the judge of results files before its own
    if judge:
        if "architecture" in judge:
            judged_by = f"a {judge['architecture']} trained apart on the training split"
            rows.append(_scores_row(f"judge ({judge['architecture']}, trained apart)", judge))
        else:
            rows.append(_scores_row("judge (the same training, seed 1)", judge))
    if reference:
        rows.append(f"| {reference['model']} | {fmt(reference['accuracy'])} | {fmt(reference['auc'])} | | |")
    rows += _target_rows(report)
    rows += _mask_rows(arms)
    rows += [
        "",
        "Controls: each translation G(x) let through another test image's attention map (seeded shuffle "
        "over its batch and the one before) or a uniform map of the same mean instead of its own A(x); they "
        "flip less when A picks the region that matters. Flip rate: share of translations the frozen "
        "classifier assigns to the target class; judge's flip rate: the same for the judge, "
        f"{judged_by}, which neither GAN saw (a flip that fools only the explained "
        "classifier is adversarial, not an explanation); mean \\|M(x) − x\\| in the classifier's [0, 1] "
        "input range. Classifier-guided: the study's loss plus the classifier's cross-entropy of each "
        "translation against its target class.",
    ]
    notes = [
        "A target is met only when the whole 95 % interval clears it (not distinguishable at this n when "
        "the interval straddles it); a figure recorded without an interval is not judged."
    ]
    if "control_gaps" in report:
        notes.append(
            "In brackets: 95 % bootstrap intervals over the test images (stratified by label for the "
            "classifier's scores); a control counts as flipping less only when the paired interval (the same "
            "resampled images for both) of the translations' flip rate minus the control's lies above 0."
        )
    if any("judge_kid_from_0" in figures for figures in arms.values()):
        notes.append(
            "KID: kernel inception distance (unbiased MMD², cubic polynomial kernel) in the judge's "
            "penultimate features between the translations (or the untranslated images) of a direction and "
            "the real test images of its target class, with the interval of the same estimate on random "
            "halves of both sets; translations that look like the target class to the judge lie below the "
            "untranslated images."
        )
    rows += ["", " ".join(notes)]
    rows += _panels(report, both_ways)
    trained = [
        _training(label, report["training"][workflow])
        for workflow, label in WORKFLOW_WORDS.items()
        if workflow in report.get("training", {})
    ]
    settings = report.get("settings", {})
    if trained:
        rows += ["", f"Trained: {'; '.join(trained)}.{_tested(settings)}"]
    if settings:
        rows += ["", "Settings: " + ", ".join(f"{k} {v}" for k, v in settings.items()) + "."]
    if report.get("wall_time"):
        rows += ["", f"Wall time: {_wall_time(report['wall_time'])}."]
    return "\n".join(rows) + "\n"


BLOCKS: dict[str, Block] = {f"agcyclegan_{task}": bundle_results(BUNDLE, task, render) for task in TASKS}

# ---------------------------------------------------------------------------------------------- metadata

#: the per-arm figures of a results file that the bundle metadata restates
EVAL_KEYS = (
    "flip_rate_from_0",
    "flip_rate_from_1",
    "judge_flip_rate_from_0",
    "judge_flip_rate_from_1",
    "control_flip_rate_from_0",
    "control_flip_rate_from_1",
    "uniform_flip_rate_from_0",
    "uniform_flip_rate_from_1",
    "mean_attention",
    "mean_abs_difference",
)


def _side(size: int | Sequence[int]) -> str:
    """``28`` for 28 or a square or cube of side 28; ``64x32`` otherwise."""
    sides = [size] if isinstance(size, int) else list(size)
    return str(sides[0]) if len(set(sides)) == 1 else "x".join(map(str, sides))


def eval_metrics(report: dict) -> dict[str, dict]:
    """The metadata's ``<task>_test_<arm>`` entries: per arm the classifier's scores and the flip rates, and
    the command that wrote the results file (the shell driver ``run`` replaced, where its wall times are the
    driver's ``runtime.txt`` lines)."""
    task = report["task"]
    driver = "python -m monai_xai.experiments agcyclegan run"
    if isinstance(report.get("wall_time"), list):
        driver = f"scripts/experiments/agcyclegan_explain.sh, since replaced by {driver}"
    else:
        driver += " --publish"
    return {
        f"{task}_test_{arm}": rounded(
            {
                "run": f"docs/results/{task}.json, arm '{arm}': {driver} (full budget); "
                f"{report['label']} at {_side(report['settings']['spatial_size'])} px, "
                f"{report['n_images']} test images",
                "classifier_accuracy": report["classifier"]["accuracy"],
                "classifier_auc": report["classifier"]["auc"],
                **{key: figures[key] for key in EVAL_KEYS},
            }
        )
        for arm, figures in report["arms"].items()
    }


EVAL_METRICS: dict[str, Callable[[dict], dict[str, dict]]] = {
    block.results: eval_metrics for block in BLOCKS.values()
}
