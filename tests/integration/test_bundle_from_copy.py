"""Each bundle folder is self-contained: a copy of that folder alone, outside the repository, runs with the
installed package only, the way a user runs a bundle downloaded from a model zoo. Every config, alone or
stacked as the bundle's README runs it, defines every id its workflow (``initialize``, ``run``, ``finalize``,
``lr_find``, ``network_def``) refers to and names no file outside the folder; every workflow trains one tiny
epoch, evaluates and infers from inside the copy (``bundle_root`` ``.``).

Another bundle joins by an entry in :data:`STACKS` and one in :data:`WORKFLOWS`.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from bundle_support import copy_bundle

#: a training step on a few demo images, on the CPU, without worker processes
SMOKE = {"max_epochs": 1, "batch_size": 4, "val_batch_size": 4, "num_workers": 0, "limit": 4}


def bundle_run(root: Path, configs: list[str], **overrides: Any) -> None:
    """``python -m monai.bundle run`` in the copy's root, with only the installed packages importable."""
    command = [sys.executable, "-m", "monai.bundle", "run", "--config_file", json.dumps(configs)]
    for key, value in overrides.items():
        command += [f"--{key}", json.dumps(value) if not isinstance(value, str) else value]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


def _strings(node: Any) -> list[str]:
    """Every string value of a parsed JSON config."""
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        return [s for value in node.values() for s in _strings(value)]
    if isinstance(node, list):
        return [s for value in node for s in _strings(value)]
    return []


#: how each bundle's configs are run: alone or stacked, every config of the bundle at least once
STACKS = {
    "abn_classification": [
        ["train"], ["train", "evaluate"], ["train", "multi_gpu_train"],
        ["inference"], ["inference", "export"],
    ],
    "agcyclegan_explainer": [
        ["train"], ["train", "train_classifier"], ["train", "train_classifier", "train_judge"],
        ["train", "train_guided"], ["train", "evaluate"], ["train", "train_guided", "evaluate"],
        ["train", "multi_gpu_train"], ["train", "train_classifier", "multi_gpu_train"], ["inference"],
    ],
    "centernet_detection": [
        ["train"], ["train", "retinanet"], ["train", "evaluate"], ["train", "retinanet", "evaluate"],
        ["train", "multi_gpu_train"], ["pretrain_simsiam"], ["inference"], ["inference", "retinanet"],
    ],
    "multiscale_abn_correction": [
        ["train"], ["train", "collect"], ["train", "finetune"], ["train", "finetune", "evaluate"],
        ["train", "multi_gpu_train"], ["inference"],
    ],
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(STACKS))
def test_configs_name_nothing_outside_the_bundle(tmp_path, name):
    """Every config of the copy, alone or stacked as the README runs it, defines every id its workflow
    (``initialize``, ``run``, ``finalize``, ``lr_find``, ``network_def``) refers to, and none reaches outside
    the folder: no parent or absolute path, no repository fragment, no ``%`` macro."""
    from monai.bundle import ConfigParser

    root = copy_bundle(name, tmp_path)
    configs = {p.stem: p for p in (root / "configs").glob("*.json") if p.stem != "metadata"}
    assert "multi_gpu_train" in configs
    assert {stem for stack in STACKS[name] for stem in stack} == set(configs)
    for config in configs.values():
        outside = [
            s
            for s in _strings(json.loads(config.read_text()))
            if "../" in s or s.startswith(("/", "%")) or "configs/datasets" in s
        ]
        assert not outside, f"{config.name} names files outside the bundle: {outside}"
    for stack in STACKS[name]:
        parser = ConfigParser()
        parser.read_config([str(configs[stem]) for stem in stack])
        parser.parse()
        items, missing = parser.ref_resolver.items, []
        todo = [id for id in ("initialize", "run", "finalize", "lr_find", "network_def") if id in items]
        seen = set(todo)
        while todo:
            id = todo.pop()
            for ref in parser.ref_resolver.find_refs_in_config(items[id].get_config(), id):
                if ref not in items:
                    missing.append((id, ref))
                elif ref not in seen:
                    seen.add(ref)
                    todo.append(ref)
        assert not missing, f"{stack}: references to undefined ids {missing}"


def _gan_steps(data: Path) -> tuple[list[tuple[list[str], dict]], dict]:
    """The AG-CycleGAN's workflows on the demo phantoms: classifier, GAN, evaluation, inference."""
    from monai_xai.data import write_demo_dataset

    labels = write_demo_dataset(data, n_train=8, n_val=4, n_test=4, size=28)
    common = {
        "dataset": "demo", "dataset_source": "csv", "dataset_dir": str(labels.parent),
        "dataset_path": str(labels), "class_names": ["class0", "class1"], "limit": 4, "num_workers": 0,
        "decoder_widths": [4, 4, 8, 8, 8], "device_name": "cpu", "val_batch_size": 4,
    }  # fmt: skip
    train = {"max_epochs": 1, "gan_epochs": 1, "batch_size": 4, "gan_batch_size": 2}
    steps = [
        (["configs/train.json", "configs/train_classifier.json"], train),
        (["configs/train.json"], train),
        (["configs/train.json", "configs/evaluate.json"], {"n_panels": 2, "n_boot": 10}),
        (["configs/inference.json"], {"dataset_dir": str(labels.parent / "images")}),
    ]
    outputs = {
        "runs/demo/classifier/checkpoints/best.pt": "train_classifier.json",
        "runs/demo/gan/checkpoints/latest.pt": "train.json",
        "runs/demo/eval_test/metrics.json": "evaluate.json",
        "runs/demo/inference/predictions.json": "inference.json",
        "models/model.pt": "train.json",
    }
    return [(configs, {**common, **extra}) for configs, extra in steps], outputs


def _detection_steps(data: Path) -> tuple[list[tuple[list[str], dict]], dict]:
    """CenterNet on the demo phantoms, their marker masks as COCO boxes: SimSiam pretraining, CenterNet from
    its encoder, evaluation, inference."""
    from monai_xai.data import masks_to_coco, write_demo_dataset

    labels = write_demo_dataset(data, n_train=8, n_val=4, n_test=4, size=64)
    with open(labels, newline="") as f:
        rows = list(csv.DictReader(f))
    items = [{**row, "class_name": ("benign", "malignant")[int(row["label"])]} for row in rows]
    (data / "boxes_coco.json").write_text(json.dumps(masks_to_coco(items, ["benign", "malignant"], data)))
    common = {"dataset_dir": str(data), "spatial_size": [64, 64], "num_workers": 0, "limit": 4}
    train = {"max_epochs": 1, "batch_size": 4, "val_batch_size": 4}
    images = [str(p) for p in sorted((data / "images").glob("test_*.png"))]
    steps = [
        (["configs/pretrain_simsiam.json"], train),
        (["configs/train.json"], {**train, "init": "simsiam"}),
        (["configs/train.json", "configs/evaluate.json"], {"init": "simsiam", "val_batch_size": 4}),
        (["configs/inference.json"], {"input_files": images}),
    ]
    outputs = {
        "runs/simsiam/encoder.pt": "pretrain_simsiam.json",
        "runs/busi/checkpoints/best.pt": "train.json",
        "runs/busi/eval_test/metrics.json": "evaluate.json",
        "runs/busi/inference/detections.json": "inference.json",
        "models/model.pt": "train.json",
    }
    return [(configs, {**common, **extra}) for configs, extra in steps], outputs


def _classifier_steps(name: str, run: str) -> Callable[[Path], tuple[list[tuple[list[str], dict]], dict]]:
    """A classifier bundle on the demo phantoms: training, then inference with the trained weights."""

    def steps(data: Path) -> tuple[list[tuple[list[str], dict]], dict]:
        from monai_xai.data import write_demo_dataset

        write_demo_dataset(data, n_train=4, n_val=2, n_test=2, size=64)
        checkpoint = f"runs/{name}/{run}/checkpoints/best.pt"
        inference = {"dataset_dir": str(data / "images"), "num_workers": 0, "ckpt_path": checkpoint}
        runs = [
            (["configs/train.json"], {"dataset_dir": str(data), **SMOKE}),
            (["configs/inference.json"], inference),
        ]
        return runs, {checkpoint: "train.json", "eval/predictions.json": "inference.json"}

    return steps


#: each bundle's workflows on the demo phantoms: the runs in order, and what each writes in the copy
WORKFLOWS = {
    "abn_classification": _classifier_steps("abn_classification", "demo_dynamic_resnet18_fold0"),
    "agcyclegan_explainer": _gan_steps,
    "centernet_detection": _detection_steps,
    "multiscale_abn_correction": _classifier_steps(
        "multiscale_abn_correction", "demo_multiscale_resnet18_fold0"
    ),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(WORKFLOWS))
def test_every_workflow_runs_from_a_copy(outside, name):
    root = copy_bundle(name, outside / "downloaded")
    runs, outputs = WORKFLOWS[name](outside / "data")
    for configs, overrides in runs:
        bundle_run(root, configs, **overrides)
    for output, config in outputs.items():
        assert (root / output).is_file(), f"{config} wrote no {output}"
