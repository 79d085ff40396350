"""The AG-CycleGAN and CenterNet bundles are self-contained: a copy of the bundle folder alone (nothing else
from the repository, only the installed package) parses every config, names no file outside itself, trains
one tiny epoch of every workflow, evaluates and infers, all from inside the copy (``bundle_root`` ``.``)."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest
from bundle_support import copy_bundle

BUNDLES = ("agcyclegan_explainer", "centernet_detection")


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
    "agcyclegan_explainer": [
        ["train"], ["train", "train_classifier"], ["train", "train_classifier", "train_judge"],
        ["train", "train_guided"], ["train", "evaluate"], ["train", "train_guided", "evaluate"],
        ["train", "multi_gpu_train"], ["train", "train_classifier", "multi_gpu_train"], ["inference"],
    ],
    "centernet_detection": [
        ["train"], ["train", "retinanet"], ["train", "evaluate"], ["train", "retinanet", "evaluate"],
        ["train", "multi_gpu_train"], ["pretrain_simsiam"], ["inference"], ["inference", "retinanet"],
    ],
}  # fmt: skip


@pytest.mark.parametrize("name", BUNDLES)
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
        "classifier/checkpoints/best.pt": "train_classifier.json",
        "gan/checkpoints/latest.pt": "train.json",
        "eval_test/metrics.json": "evaluate.json",
        "inference/predictions.json": "inference.json",
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
        "../simsiam/encoder.pt": "pretrain_simsiam.json",
        "checkpoints/best.pt": "train.json",
        "eval_test/metrics.json": "evaluate.json",
        "inference/detections.json": "inference.json",
    }
    return [(configs, {**common, **extra}) for configs, extra in steps], outputs


@pytest.mark.slow
@pytest.mark.parametrize(("name", "steps"), [(BUNDLES[0], _gan_steps), (BUNDLES[1], _detection_steps)])
def test_every_workflow_runs_from_a_copy(tmp_path, monkeypatch, name, steps):
    from monai.bundle import run

    root = copy_bundle(name, tmp_path / "elsewhere")
    runs, outputs = steps(tmp_path / "data")
    monkeypatch.chdir(root)
    for configs, overrides in runs:
        run(config_file=configs, **overrides)
    dataset = runs[0][1].get("dataset", "busi")
    for output, config in outputs.items():
        assert (root / "runs" / dataset / output).is_file(), f"{config} wrote no {output}"
    assert (root / "models" / "model.pt").is_file()
