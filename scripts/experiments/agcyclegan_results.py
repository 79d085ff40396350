"""Results file of one task of scripts/experiments/agcyclegan_explain.sh: does the explanation explain?

Reads each arm's evaluation, ``<task_dir>/eval_test{,_guided}/{metrics.json,examples.json}``
(``monai_xai.handlers.CounterfactualReport``): the study's AG-CycleGAN (``agcyclegan``, always) and the
classifier-guided one (``guided``, when evaluated). Writes, atomically: per arm under ``arms``, per direction
the flip rate of the translations, the same translations judged by the independent judge classifier (when the
evaluation had one), the flip rate of the two controls (each translation let through another image's attention
map, or a uniform map of the same mean), by the classifier and, when the evaluation has them, by the judge
(``judge_control_flip_rate*``, ``judge_uniform_flip_rate*``); mean attention and mean |M(x) - x|; attention vs
Grad-CAM++ (correlation, top-10 % IoU); when the evaluation has them, each flip rate's 95 % bootstrap interval
(``flip_rate_intervals``, ``judge_flip_rate_intervals``) and the realism of the translations in the judge's
penultimate features (``judge_kid_from_<c>``, ``judge_kid_untranslated_from_<c>``: KID against the real images
of the target class); and ``control_gaps`` (``judge_control_gaps`` by the judge): per control and direction
the translations' flip rate minus the control's with its paired bootstrap interval, from metrics.json, or for
an evaluation from before them computed here from its ``predictions.json`` (the classifier's only). The arm
whose weaker direction flips more on the validation set (``val_flip_rate_min`` in its GAN's ``best.json``; the
study's on a tie) is copied to the top level with ``arm`` naming it, beside the classifier's test accuracy and
AUC (and ``architecture`` when recorded), the MedMNIST v2 paper's row and the targets with ``*_met``: the
controls are met only when every paired interval lies above zero (``controls_met``; ``judge_controls_met`` by
the judge), the flip rate target is checked on the classifier's and, with a judge, on the judge's flip rates
(``judge_flip_rate_met``); ``judge`` holds the judge's own test scores and its ``architecture`` when recorded.
Also how many epochs each workflow (classifier, judge, both GANs) trained and the epoch and value of its best
validation (``<workflow>/checkpoints/latest.pt`` and ``best.json``; the judge from ``judge_densenet121/``,
train_judge.json's, or ``judge/`` in a run from before it); the settings given here and the task's wall time
from the experiment's ``runtime.txt``. Each arm's ``example_panels`` (the best and worst translations per
direction, relative to the task folder) and ``example_summary`` (how many each panel shows, their mean target
probability before and after); with ``--figures_dir`` (a bundle's ``docs/figures``, which the driver gives at
full budget only) the panels are copied there atomically as ``<task>_<arm>_<best|worst>_from_<class>.png`` and
``docs_panels`` records their paths relative to the docs folder, which the README links.
``scripts/render_results.py`` renders it (blocks ``agcyclegan_<task>``). An evaluation that predates the
controls is an error naming its file; a run from before the guided arm gives one arm.

    python scripts/experiments/agcyclegan_results.py runs/experiments/agcyclegan/pneumoniamnist \\
        --task pneumoniamnist --out bundles/agcyclegan_explainer/docs/results/pneumoniamnist.json \\
        --figures_dir bundles/agcyclegan_explainer/docs/figures \\
        --cls_epochs 100 --early_stop_patience 10 --gan_epochs 100 --gan_early_stop_patience 10
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Sequence
from pathlib import Path

from monai_xai.metrics.counterfactual import control_gaps, controls_met
from monai_xai.utils import atomic_write_json, copy_docs_figure

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
#: figures of an evaluation with a judge classifier (``--judge_checkpoint``), overall and per direction (its
#: controls only in evaluations since the judge of another architecture)
JUDGE_FIGURES = ("judge_flip_rate", "judge_control_flip_rate", "judge_uniform_flip_rate")
#: figures copied as they are when the evaluation has them: the flip rates' bootstrap intervals, and per
#: direction the realism (KID) of the translations and of the untranslated images in the judge's features
INTERVAL_FIGURES = (
    "flip_rate_intervals",
    "judge_flip_rate_intervals",
    *(f"judge_kid{kind}{d}" for kind in ("", "_untranslated") for d in DIRECTIONS),
)
CONTROLS = ("control", "uniform")
SETTINGS = (
    "limit",
    "cls_epochs",
    "gan_epochs",
    "spatial_size",
    "base_lr",
    "max_lr",
    "momentum",
    "weight_decay",
    "early_stop_patience",
    "gan_early_stop_patience",
    "gan_checkpoint",
    "guided_gan_checkpoint",
    "lambda_cls",
    "gan_loss",
    "n_dis",
    "lambda_cyc",
    "lambda_att",
    "gan_batch_size",
    "cam_layer",
)


def _read(path: Path) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {}


def _directions(names: Sequence[str]) -> list[str]:
    """``names`` overall and per direction (``flip_rate``, ``flip_rate_from_0``, ...)."""
    return [name + suffix for name in names for suffix in ("", *DIRECTIONS) if name + suffix != "n_images"]


def evaluation_figures(eval_dir: Path, classes: Sequence[str]) -> dict:
    """The classifier's scores (and ``architecture``), every figure of :data:`FIGURES` (overall and per
    direction), those of :data:`INTERVAL_FIGURES` that it has, the paired control intervals
    (:func:`control_figures`), and with a judge those of :data:`JUDGE_FIGURES` and its scores with its
    ``architecture`` (``judge_classifier``)."""
    metrics_file = eval_dir / "metrics.json"
    if not metrics_file.is_file():
        raise SystemExit(
            f"{eval_dir}: no test evaluation: run bash scripts/experiments/agcyclegan_explain.sh"
        )
    metrics = json.loads(metrics_file.read_text())
    wanted = _directions(FIGURES)
    missing = [key for key in ["classifier", *wanted] if key not in metrics]
    if missing:
        raise SystemExit(
            f"{metrics_file}: no {', '.join(missing)}: an evaluation from before the controls; delete "
            f"{eval_dir} and rerun the evaluate step of scripts/experiments/agcyclegan_explain.sh"
        )
    scores = ("architecture", "accuracy", "auc", "sensitivity", "specificity")
    figures = {"classifier": {k: metrics["classifier"][k] for k in scores if k in metrics["classifier"]}}
    figures.update({key: metrics[key] for key in ["n_images", *wanted] if key in metrics})
    figures.update({key: metrics[key] for key in _directions(JUDGE_FIGURES) if key in metrics})
    figures.update({key: metrics[key] for key in INTERVAL_FIGURES if key in metrics})
    figures.update(control_figures(eval_dir, metrics, classes))
    if "judge_classifier" in metrics:
        figures["judge_classifier"] = {**metrics.get("judge", {}), **metrics["judge_classifier"]}
    if "mask_agreement" in metrics:
        figures["mask_agreement"] = metrics["mask_agreement"]
    examples = _read(eval_dir / "examples.json")
    figures["example_panels"] = {
        key: f"{eval_dir.name}/{entry['panel']}" if entry["panel"] else None
        for key, entry in examples.items()
    }
    figures["example_summary"] = {key: example_summary(entry["examples"]) for key, entry in examples.items()}
    return figures


def control_figures(eval_dir: Path, metrics: dict, classes: Sequence[str]) -> dict:
    """``control_gaps`` (and ``judge_control_gaps``) of ``metrics``; for an evaluation from before them, the
    classifier's computed from ``predictions.json`` (per image ``flipped`` and ``flipped_<control>``, None
    where a control is undefined) with :func:`~monai_xai.metrics.counterfactual.control_gaps`."""
    figures = {key: metrics[key] for key in ("control_gaps", "judge_control_gaps") if key in metrics}
    if "control_gaps" in figures:
        return figures
    predictions_file = eval_dir / "predictions.json"
    if not predictions_file.is_file():
        raise SystemExit(
            f"{eval_dir}: neither control_gaps in metrics.json nor predictions.json to compute them from; "
            "rerun the evaluate step of scripts/experiments/agcyclegan_explain.sh"
        )
    predictions = json.loads(predictions_file.read_text())
    index = {name: i for i, name in enumerate(classes)}
    unknown = sorted({p["source_class"] for p in predictions} - set(index))
    if unknown:
        raise SystemExit(f"{predictions_file}: source classes {unknown} are not the task's {list(classes)}")

    def flags(key: str) -> list[float]:
        return [math.nan if p.get(key) is None else float(p[key]) for p in predictions]

    source = [index[p["source_class"]] for p in predictions]
    figures["control_gaps"] = control_gaps(
        flags("flipped"), {name: flags(f"flipped_{name}") for name in CONTROLS}, source
    )
    return figures


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
    return {
        key: copy_docs_figure(task_dir / path, figures_dir, f"{task}_{arm}_{key}.png")
        for key, path in panels.items()
        if path
    }


def arm_figures(task_dir: Path, classes: Sequence[str]) -> dict[str, dict]:
    """:func:`evaluation_figures` of each arm evaluated (the study's always), by arm name."""
    arms = {"agcyclegan": evaluation_figures(task_dir / "eval_test", classes)}
    for arm, suffix in ARMS.items():
        if suffix and (task_dir / f"eval_test{suffix}" / "metrics.json").is_file():
            arms[arm] = evaluation_figures(task_dir / f"eval_test{suffix}", classes)
    return arms


def chosen_arm(arms: Sequence[str], training: dict) -> str:
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
    import torch

    record = {}
    for workflow, folders in WORKFLOWS.items():
        folder = next((f for f in folders if (task_dir / f).is_dir()), folders[-1])
        checkpoints, entry = task_dir / folder / "checkpoints", {}
        if (checkpoints / "latest.pt").is_file():
            state = torch.load(checkpoints / "latest.pt", map_location="cpu", weights_only=True)
            entry["epochs"] = int(state["engine"]["epoch"])
        best = _read(checkpoints / "best.json")
        if best:
            entry.update(metric=best["metric"], value=best["value"], best_epoch=best["epoch"])
        if entry:
            record[workflow] = entry
    return record


def targets(figures: dict, task: str) -> dict:
    """The targets and whether they are met: the classifier reaches the paper's row (ACC and AUC), the
    translations flip the classifier often enough both ways, and both controls flip it less than the
    translations in each direction: the paired 95 % interval of the difference lies above zero
    (:func:`~monai_xai.metrics.counterfactual.controls_met`); with a judge, ``judge_flip_rate_met`` and (when
    the evaluation judged the controls) ``judge_controls_met``, the same by the judge; ``None`` where the task
    has no such target."""
    reference, flip_target = REFERENCES.get(task), TASKS[task]["flip_rate_target"]
    clf = figures["classifier"]
    classifier_met = None
    if reference is not None:
        classifier_met = clf["accuracy"] >= reference["accuracy"] and clf["auc"] >= reference["auc"]
    flip_rate_met = None
    if flip_target is not None:
        flip_rate_met = all(figures[f"flip_rate{d}"] >= flip_target for d in DIRECTIONS)
    result: dict = {
        "classifier_accuracy_at_least": None if reference is None else reference["accuracy"],
        "classifier_auc_at_least": None if reference is None else reference["auc"],
        "flip_rate_at_least": flip_target,
        "classifier_met": classifier_met,
        "flip_rate_met": flip_rate_met,
        "controls_met": controls_met(figures["control_gaps"]),
    }
    if flip_target is not None and all(f"judge_flip_rate{d}" in figures for d in DIRECTIONS):
        result["judge_flip_rate_met"] = all(figures[f"judge_flip_rate{d}"] >= flip_target for d in DIRECTIONS)
    if "judge_control_gaps" in figures:
        result["judge_controls_met"] = controls_met(figures["judge_control_gaps"])
    result["all_met"] = all(met for key, met in result.items() if key.endswith("_met") and met is not None)
    return result


def main(argv: Sequence[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "task_dir", type=Path, help="the task's output folder (OUT/<task> of the shell script)"
    )
    parser.add_argument("--task", required=True, choices=sorted(TASKS))
    parser.add_argument(
        "--out", type=Path, help="results JSON to write (default: <task_dir>/agcyclegan_<task>.json)"
    )
    parser.add_argument(
        "--figures_dir",
        type=Path,
        help="copy each arm's example panels into this folder (a bundle's docs/figures) and record their "
        "paths relative to its parent (docs_panels)",
    )
    parser.add_argument("--limit", type=int, help="training items per split (recorded)")
    parser.add_argument("--cls_epochs", type=int, help="classifier epochs (recorded)")
    parser.add_argument("--gan_epochs", type=int, help="GAN epochs (recorded)")
    parser.add_argument("--spatial_size", type=int, help="image side (recorded)")
    parser.add_argument("--base_lr", type=float, help="classifier cyclical LR, low end (recorded)")
    parser.add_argument("--max_lr", type=float, help="classifier cyclical LR, high end (recorded)")
    parser.add_argument("--momentum", type=float, help="classifier SGD momentum (recorded)")
    parser.add_argument("--weight_decay", type=float, help="classifier SGD weight decay (recorded)")
    parser.add_argument(
        "--early_stop_patience", type=int, help="classifier: validations without a lower val_loss (recorded)"
    )
    parser.add_argument(
        "--gan_early_stop_patience",
        type=int,
        help="GAN: validations without a higher val_flip_rate_min (recorded)",
    )
    parser.add_argument(
        "--gan_checkpoint", choices=("best", "latest"), help="the study's GAN checkpoint explained (recorded)"
    )
    parser.add_argument(
        "--guided_gan_checkpoint",
        choices=("best", "latest"),
        help="the classifier-guided GAN checkpoint explained (recorded)",
    )
    parser.add_argument("--lambda_cls", type=float, help="the guided arm's validity-loss weight (recorded)")
    parser.add_argument("--gan_loss", help="lsgan or bce (recorded)")
    parser.add_argument("--n_dis", type=int, help="discriminator steps per generator step (recorded)")
    parser.add_argument("--lambda_cyc", type=float, help="cycle-loss weight (recorded)")
    parser.add_argument("--lambda_att", type=float, help="attention-sparsity weight (recorded)")
    parser.add_argument("--gan_batch_size", type=int, help="GAN batch size (recorded)")
    parser.add_argument("--cam_layer", help="Grad-CAM++ target layer (recorded)")
    args = parser.parse_args(argv)
    arms = arm_figures(args.task_dir, TASKS[args.task]["classes"])
    if args.figures_dir:
        for name, figures in arms.items():
            figures["docs_panels"] = docs_panels(
                args.task_dir, args.task, name, figures["example_panels"], args.figures_dir
            )
    classifier, judge = arms["agcyclegan"]["classifier"], None  # every arm explains that classifier
    for figures in arms.values():
        del figures["classifier"]
        judge = figures.pop("judge_classifier", None) or judge
    training = training_record(args.task_dir)
    arm = chosen_arm(list(arms), training)
    figures = {"classifier": classifier, **arms[arm]}
    report = {
        "task": args.task,
        **{k: TASKS[args.task][k] for k in ("label", "classes")},
        "arm": arm,
        **figures,
        "judge": judge,
        "arms": arms,
        "reference": REFERENCES.get(args.task),
        "targets": targets(figures, args.task),
        "training": training,
        "settings": {k: getattr(args, k) for k in SETTINGS if getattr(args, k) is not None},
    }
    runtime = args.task_dir.parent / "runtime.txt"
    if runtime.is_file():
        prefix = f"{args.task_dir.name}/"
        report["wall_time"] = [line for line in runtime.read_text().splitlines() if line.startswith(prefix)]
    destination = args.out or args.task_dir / f"agcyclegan_{args.task}.json"
    atomic_write_json(destination, report, indent=1)
    for name, figures in arms.items():
        for d in DIRECTIONS:
            judged = figures.get(f"judge_flip_rate{d}", math.nan)
            print(
                f"{name}: flip rate {d[-1]} -> {1 - int(d[-1])}: {figures[f'flip_rate{d}']:.3f} (judge "
                f"{judged:.3f}; controls: shuffled maps {figures[f'control_flip_rate{d}']:.3f}, uniform maps "
                f"{figures[f'uniform_flip_rate{d}']:.3f})"
            )
    print(f"top level: {arm}; targets: {json.dumps(report['targets'])}")
    print(f"written {destination}")
    return report


if __name__ == "__main__":
    main()
