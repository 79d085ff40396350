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
part is the rate of a probe that learned nothing. Written to ``--out``:

    python scripts/experiments/knn_probe.py --csv ../shared/data/busi_256/labels.csv \\
        --split_file configs/datasets/busi_splits_dedup.json --encoder runs/x/simsiam/encoder.pt \\
        --spatial_size 128 --out runs/x/knn_probe.json
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from monai_xai.utils import atomic_write_json

#: the parts the probe scores; the fold's training images are the neighbours
EVAL_PARTS = ("val", "test")


def load_images(
    items: Sequence[dict], spatial_size: Sequence[int], num_workers: int = 0, batch_size: int = 32
) -> torch.Tensor:
    """``(N, 1, H, W)`` images of ``items`` through the detection preprocessing without augmentation."""
    from monai.data import Dataset
    from monai.utils import convert_to_tensor

    from monai_xai.data import DataLoader
    from monai_xai.transforms import detection_preset

    transform = detection_preset(spatial_size, augment=False, remove_overlays=True, with_boxes=False)
    dataset = Dataset([{"image": item["image"]} for item in items], transform=transform)
    loader = DataLoader(dataset, num_workers=num_workers, batch_size=batch_size, split="probe")
    return torch.cat([convert_to_tensor(batch["image"], track_meta=False) for batch in loader]).float()


@torch.no_grad()
def pooled_features(encoder: nn.Module, images: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
    """``(N, C)`` L2-normalised, spatially averaged last-stage features of ``images``, in eval mode."""
    encoder.eval()
    device = next(encoder.parameters()).device
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
    similarity = features @ train_features.T
    nearest_similarity, nearest = similarity.topk(min(k, len(train_features)), dim=1)
    votes = torch.zeros(len(features), num_classes, dtype=similarity.dtype)
    votes.scatter_add_(1, train_labels[nearest], (nearest_similarity / temperature).exp())
    return votes.argmax(dim=1)


def scores(labels: torch.Tensor, predicted: torch.Tensor, class_names: Sequence[str]) -> dict:
    """Accuracy, balanced accuracy (mean recall over the classes present) and the recall of each class."""
    recall = {
        name: float((predicted[labels == c] == c).float().mean())
        for c, name in enumerate(class_names)
        if (labels == c).any()
    }
    return {
        "accuracy": float((predicted == labels).float().mean()),
        "balanced_accuracy": sum(recall.values()) / len(recall),
        "recall": recall,
        "n": len(labels),
    }


def majority_rates(train_labels: torch.Tensor, labels: dict[str, torch.Tensor]) -> dict[str, float]:
    """Accuracy of always answering the training set's most frequent class, per part."""
    majority = int(train_labels.mode().values)
    return {part: float((y == majority).float().mean()) for part, y in labels.items()}


def build_encoders(
    encoder_path: str | os.PathLike | None, backbone: str, in_channels: int, seed: int
) -> dict[str, nn.Module]:
    """``{"random": a seeded random encoder, "simsiam": the weights of encoder_path}`` (no path: random)."""
    from monai_xai.networks import ResNetEncoder, load_weights

    torch.manual_seed(seed)
    encoders = {"random": ResNetEncoder(backbone, in_channels=in_channels)}
    if encoder_path is not None:
        encoders["simsiam"] = load_weights(
            ResNetEncoder(backbone, in_channels=in_channels), encoder_path, "encoder"
        )
    return encoders


def probe(
    images: dict[str, torch.Tensor],
    labels: dict[str, torch.Tensor],
    encoders: dict[str, nn.Module],
    class_names: Sequence[str],
    k: int,
    temperature: float,
) -> dict:
    """Scores of each encoder's k-NN on :data:`EVAL_PARTS`, neighbours from ``images["train"]``."""
    results = {}
    for name, encoder in encoders.items():
        features = {part: pooled_features(encoder, x) for part, x in images.items()}
        results[name] = {}
        for part in EVAL_PARTS:
            predicted = knn_predict(
                features["train"], labels["train"], features[part], k, len(class_names), temperature
            )
            results[name][part] = scores(labels[part], predicted, class_names)
    return results


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
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
    parser.add_argument("--out", type=Path, required=True, help="the JSON to write")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> dict:
    from monai_xai.bundle import get_device
    from monai_xai.data import dataset_splits

    args = parse_args(argv)
    if args.k < 1:
        raise SystemExit(f"--k must be at least 1, got {args.k}")
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
    report = {
        "split": args.split_file.as_posix(),
        "fold": args.fold,
        "class_names": list(args.class_names),
        "images": {part: len(x) for part, x in images.items()},
        "spatial_size": list(size),
        "k": args.k,
        "temperature": args.temperature,
        "features": "layer4, global average pool, L2-normalised; encoders frozen, eval mode",
        "majority_class_rate": majority_rates(labels["train"], {p: labels[p] for p in EVAL_PARTS}),
        "encoders": probe(images, labels, encoders, args.class_names, args.k, args.temperature),
    }
    atomic_write_json(args.out, report, indent=1)
    for name, by_part in report["encoders"].items():
        print(
            f"{name}: "
            + ", ".join(
                f"{part} accuracy {s['accuracy']:.3f} (balanced {s['balanced_accuracy']:.3f})"
                for part, s in by_part.items()
            )
        )
    print(f"written {args.out}")
    return report


if __name__ == "__main__":
    main()
