"""k-NN probe of frozen encoders: are BUSI's normal, benign and malignant images apart in their features?

Every image of the split (``--split_file``, fold ``--fold``) is preprocessed as for SimSiam pretraining,
without augmentation (one grey channel, coloured annotations removed, resized to ``--spatial_size``), and
passed through the frozen encoder in eval mode; its ``layer4`` features, averaged over space and
L2-normalised, are its embedding. A validation or test image takes the class that wins a vote of its ``--k``
nearest training images by cosine similarity s, each vote weighted by exp(s / ``--temperature``) (the weighted
k-NN of Wu et al., CVPR 2018); the training images are the fold's, the ones SimSiam pretrained on, so neither
encoder has seen a validation or test image. No label touches the encoders: the probe measures what
pretraining put into the features, not what a classifier trained on them could learn.

The SimSiam encoder (``--encoder``, the ``encoder.pt`` of ``pretrain_simsiam.json``) is compared with a
random encoder of the same architecture (seeded); the share of the training set's most frequent class in each
part is the rate of a probe that learned nothing. Accuracy and balanced accuracy carry 95 % intervals
(bootstrap over images, stratified by class), and the SimSiam encoder's lead over the random one is a paired
difference on the same images: on 152 test images a few images decide the sign of an unpaired comparison.
Each image's class and prediction are kept (``predictions``) so that any figure can be recomputed.

The probe is one step of the CenterNet study (``python -m monai_xai.experiments centernet_busi run``, step
``knn_probe``); its file lies in the run folder, and :mod:`.centernet_busi` takes it into the published
``busi.json`` and renders it with :func:`probe_table`. Written to ``--out`` (never into a bundle's docs):

    python -m monai_xai.experiments knn_probe --csv ../shared/data/busi_256/labels.csv \\
        --split_file configs/datasets/busi_splits_dedup.json --encoder runs/x/simsiam/encoder.pt \\
        --spatial_size 128 --out runs/x/knn_probe.json
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from monai_xai.errors import InputError

from .results import Block, fmt, fmt_ci, write_results

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = [
    "BLOCKS",
    "EVAL_PARTS",
    "build_encoders",
    "differences",
    "knn_predict",
    "load_images",
    "main",
    "majority_rates",
    "pooled_features",
    "predict",
    "probe_table",
    "scores",
    "summary",
]

#: the probe has no README block of its own: :mod:`.centernet_busi` renders it inside ``centernet_busi``
BLOCKS: dict[str, Block] = {}
#: the parts the probe scores; the fold's training images are the neighbours
EVAL_PARTS = ("val", "test")
#: the encoder compared against the random one, and the random one
PRETRAINED, RANDOM = "simsiam", "random"


def load_images(
    items: Sequence[dict], spatial_size: Sequence[int], num_workers: int = 0, batch_size: int = 32
) -> torch.Tensor:
    """``(N, 1, H, W)`` images of ``items`` through the detection preprocessing without augmentation."""
    import torch
    from monai.data import Dataset
    from monai.utils import convert_to_tensor

    from monai_xai.data import DataLoader
    from monai_xai.transforms import detection_preset

    transform = detection_preset(spatial_size, augment=False, remove_overlays=True, with_boxes=False)
    dataset = Dataset([{"image": item["image"]} for item in items], transform=transform)
    loader = DataLoader(dataset, num_workers=num_workers, batch_size=batch_size, split="probe")
    return torch.cat([convert_to_tensor(batch["image"], track_meta=False) for batch in loader]).float()


def pooled_features(encoder: nn.Module, images: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
    """``(N, C)`` L2-normalised, spatially averaged last-stage features of ``images``, in eval mode."""
    import torch
    import torch.nn.functional as F

    encoder.eval()
    device = next(encoder.parameters()).device
    with torch.no_grad():
        features = [
            encoder(images[i : i + batch_size].to(device))[-1].mean(dim=(-2, -1)).float().cpu()
            for i in range(0, len(images), batch_size)
        ]
    return F.normalize(torch.cat(features), dim=1)


def knn_predict(
    train_features: torch.Tensor,
    train_labels: torch.Tensor,
    features: torch.Tensor,
    k: int,
    num_classes: int,
    temperature: float = 0.07,
) -> torch.Tensor:
    """Class of each row of ``features``: a vote of its ``k`` most similar training rows (cosine similarity s
    of L2-normalised rows), each weighing exp(s / temperature), so that a close neighbour outweighs several
    distant ones; ``k`` larger than the training set uses all of it."""
    import torch

    similarity = features @ train_features.T
    nearest_similarity, nearest = similarity.topk(min(k, len(train_features)), dim=1)
    votes = torch.zeros(len(features), num_classes, dtype=similarity.dtype)
    votes.scatter_add_(1, train_labels[nearest], (nearest_similarity / temperature).exp())
    return votes.argmax(dim=1)


def scores(
    labels: Sequence[int], predicted: Sequence[int], class_names: Sequence[str], n_boot: int = 2000
) -> dict[str, Any]:
    """Accuracy and balanced accuracy (mean recall over the classes present) with 95 % intervals over
    images, stratified by class so that every resample keeps the class counts; the recall of each class."""
    from monai_xai.metrics.uncertainty import accuracy, balanced_accuracy, bootstrap_ci

    y, p = np.asarray(labels), np.asarray(predicted)
    recall = {name: float(np.mean(p[y == c] == c)) for c, name in enumerate(class_names) if (y == c).any()}
    return {
        "accuracy": bootstrap_ci(accuracy, y, p, n_boot=n_boot, stratify=0).to_dict(),
        "balanced_accuracy": bootstrap_ci(balanced_accuracy, y, p, n_boot=n_boot, stratify=0).to_dict(),
        "recall": recall,
        "n": int(y.size),
    }


def differences(
    labels: Sequence[int], predicted_a: Sequence[int], predicted_b: Sequence[int], n_boot: int = 2000
) -> dict[str, dict]:
    """Accuracy and balanced accuracy of ``a`` minus those of ``b`` on the same images, with paired 95 %
    intervals (both encoders scored on every resample): what the images share cancels out."""
    from monai_xai.metrics.uncertainty import accuracy, balanced_accuracy, paired_bootstrap_diff

    y, a, b = np.asarray(labels), np.asarray(predicted_a), np.asarray(predicted_b)
    return {
        name: paired_bootstrap_diff(metric, (y, a), (y, b), n_boot=n_boot, stratify=0).to_dict()
        for name, metric in (("accuracy", accuracy), ("balanced_accuracy", balanced_accuracy))
    }


def majority_rates(train_labels: Sequence[int], labels: Mapping[str, Sequence[int]]) -> dict[str, float]:
    """Accuracy of always answering the training set's most frequent class, per part."""
    majority = int(np.bincount(np.asarray(train_labels)).argmax())
    return {part: float(np.mean(np.asarray(y) == majority)) for part, y in labels.items()}


def summary(
    labels: Mapping[str, Sequence[int]],
    predictions: Mapping[str, Mapping[str, Sequence[int]]],
    class_names: Sequence[str],
    n_boot: int = 2000,
) -> dict[str, Any]:
    """The results of the probe from each part's labels and each encoder's predictions per part:
    ``encoders`` (scores per encoder and part), ``difference`` (SimSiam minus random per part, paired; only
    with both encoders) and ``predictions`` (per part: the labels and each encoder's predicted classes)."""
    result: dict[str, Any] = {
        "encoders": {
            name: {part: scores(labels[part], by_part[part], class_names, n_boot) for part in EVAL_PARTS}
            for name, by_part in predictions.items()
        }
    }
    if PRETRAINED in predictions and RANDOM in predictions:
        result["difference"] = {
            part: differences(labels[part], predictions[PRETRAINED][part], predictions[RANDOM][part], n_boot)
            for part in EVAL_PARTS
        }
    result["predictions"] = {
        part: {
            "labels": [int(v) for v in labels[part]],
            **{name: [int(v) for v in by_part[part]] for name, by_part in predictions.items()},
        }
        for part in EVAL_PARTS
    }
    return result


def build_encoders(
    encoder_path: str | os.PathLike | None, backbone: str, in_channels: int, seed: int
) -> dict[str, nn.Module]:
    """``{"random": a seeded random encoder, "simsiam": the weights of encoder_path}`` (no path: random)."""
    import torch

    from monai_xai.networks import ResNetEncoder, load_weights

    torch.manual_seed(seed)
    encoders = {RANDOM: ResNetEncoder(backbone, in_channels=in_channels)}
    if encoder_path is not None:
        encoders[PRETRAINED] = load_weights(
            ResNetEncoder(backbone, in_channels=in_channels), encoder_path, "encoder"
        )
    return encoders


def predict(
    images: Mapping[str, torch.Tensor],
    labels: Mapping[str, torch.Tensor],
    encoders: Mapping[str, nn.Module],
    num_classes: int,
    k: int,
    temperature: float,
) -> dict[str, dict[str, list[int]]]:
    """Each encoder's k-NN class of every image of :data:`EVAL_PARTS`, neighbours from ``images["train"]``."""
    predicted: dict[str, dict[str, list[int]]] = {}
    for name, encoder in encoders.items():
        features = {part: pooled_features(encoder, x) for part, x in images.items()}
        predicted[name] = {
            part: knn_predict(
                features["train"], labels["train"], features[part], k, num_classes, temperature
            ).tolist()
            for part in EVAL_PARTS
        }
    return predicted


def probe_table(probe: Mapping[str, Any], pretrained_label: str) -> list[str]:
    """Markdown rows: each encoder's validation and test accuracy and balanced accuracy (with intervals where
    the file has them), the majority-class rate, the paired SimSiam - random difference, and the probe's
    settings in words. Renders probe files with and without intervals."""
    encoders, majority, n_images = probe["encoders"], probe["majority_class_rate"], probe["images"]
    measures = ("accuracy", "balanced_accuracy")

    def row(label: str, by_part: Mapping[str, Any]) -> str:
        cells = [fmt_ci(by_part[part][key]) for part in EVAL_PARTS for key in measures]
        return f"| {label} | {' | '.join(cells)} |"

    chance = fmt(1 / len(probe["class_names"]))
    rows = [
        "| encoder (frozen) | val accuracy | val balanced accuracy | test accuracy | test balanced "
        "accuracy |",
        "|---|---|---|---|---|",
        row(pretrained_label, encoders[PRETRAINED]),
        row("random init", encoders[RANDOM]),
        f"| majority class of the training images | {fmt(majority['val'])} | {chance} | "
        f"{fmt(majority['test'])} | {chance} |",
    ]
    if "difference" in probe:
        cells = [fmt_ci(probe["difference"][part][key]) for part in EVAL_PARTS for key in measures]
        rows.append(f"| SimSiam - random, paired | {' | '.join(cells)} |")
    intervals = (
        " Intervals: 95 %, bootstrap over images stratified by class; the last row is the paired difference."
        if "difference" in probe
        else " No intervals in this file (re-run pending)."
    )
    rows += [
        "",
        f"k-NN probe: each validation or test image takes the class ({', '.join(probe['class_names'])}) "
        f"that wins the vote of its {probe['k']} nearest training images (the fold's {n_images['train']}, "
        "those SimSiam pretrained on) by cosine similarity s, each vote weighing exp(s / "
        f"{probe['temperature']:g}), on L2-normalised, globally pooled `layer4` features at "
        f"{probe['spatial_size'][0]}x{probe['spatial_size'][1]}; {n_images['val']} validation, "
        f"{n_images['test']} test images.{intervals}",
    ]
    return rows


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m monai_xai.experiments knn_probe",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--csv", type=Path, required=True, help="the dataset's labels CSV")
    parser.add_argument(
        "--split_file", type=Path, required=True, help="fixed split (paths relative to the CSV)"
    )
    parser.add_argument(
        "--fold", type=int, default=0, help="validation fold; the other folds are the neighbours"
    )
    parser.add_argument("--label_col", default="label_id")
    parser.add_argument("--class_names", nargs="+", default=["normal", "benign", "malignant"])
    parser.add_argument(
        "--encoder", type=Path, help="SimSiam encoder.pt (without it: the random encoder only)"
    )
    parser.add_argument("--backbone", default="resnet18")
    parser.add_argument("--spatial_size", type=int, default=128, help="side of the square network input")
    parser.add_argument("--k", type=int, default=20, help="neighbours that vote")
    parser.add_argument("--temperature", type=float, default=0.07, help="vote weight exp(cosine / this)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random encoder and of --limit")
    parser.add_argument("--limit", type=int, help="at most this many images per part (smoke runs)")
    parser.add_argument("--num_workers", type=int, default=0)
    parser.add_argument("--n_boot", type=int, default=2000, help="bootstrap resamples of each interval")
    parser.add_argument("--out", type=Path, required=True, help="the JSON to write (a run folder's)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    import torch

    from monai_xai.bundle import get_device
    from monai_xai.data import dataset_splits

    args = parse_args(argv)
    if args.k < 1:
        raise InputError(None, f"--k must be at least 1, got {args.k}")
    parts = dataset_splits(
        "csv", args.csv, fold=args.fold, split_file=args.split_file, seed=args.seed, limit=args.limit,
        label_col=args.label_col, mask_col=None, class_names=args.class_names,
    )  # fmt: skip
    size = (args.spatial_size, args.spatial_size)
    images = {part: load_images(parts[part], size, args.num_workers) for part in ("train", *EVAL_PARTS)}
    labels = {part: torch.tensor([int(item["label"]) for item in parts[part]]) for part in images}
    device = get_device()
    encoders = {
        name: e.to(device) for name, e in build_encoders(args.encoder, args.backbone, 1, args.seed).items()
    }
    predicted = predict(images, labels, encoders, len(args.class_names), args.k, args.temperature)
    eval_labels = {part: labels[part].tolist() for part in EVAL_PARTS}
    report = {
        "split": args.split_file.as_posix(),
        "fold": args.fold,
        "class_names": list(args.class_names),
        "images": {part: len(x) for part, x in images.items()},
        "spatial_size": list(size),
        "k": args.k,
        "temperature": args.temperature,
        "features": "layer4, global average pool, L2-normalised; encoders frozen, eval mode",
        **({"limit": args.limit} if args.limit is not None else {}),
        "n_boot": args.n_boot,
        "majority_class_rate": majority_rates(labels["train"].tolist(), eval_labels),
        **summary(eval_labels, predicted, args.class_names, args.n_boot),
    }
    write_results(report, args.out)
    for name, by_part in report["encoders"].items():
        figures = ", ".join(
            f"{part} accuracy {fmt_ci(s['accuracy'])} (balanced {fmt_ci(s['balanced_accuracy'])})"
            for part, s in by_part.items()
        )
        print(f"{name}: {figures}")
    for part, diff in report.get("difference", {}).items():
        print(f"SimSiam - random, {part} accuracy: {fmt_ci(diff['accuracy'])}")
    print(f"written {args.out}")
    return 0
