"""Inference throughput of the CenterNet detector next to MONAI's RetinaNet, same backbone, side by side.

Both detectors use a ResNet18 (``--backbone``) :class:`~monai_xai.networks.ResNetEncoder` with the stride-2
stem, one grey channel, two classes and ``--size`` square inputs, and run end to end from an image batch to
boxes: CenterNet = network + 3x3 max-pool peak decoding (top 100); RetinaNet (``monai.apps.detection``,
ResNet-FPN on layer2..layer4 plus a pooled level, 3 anchors per location) = network + anchor decoding, score
threshold 0.02, NMS 0.22, 100 boxes per image. Weights are freshly initialised: with RetinaNet's prior bias
few anchors pass the score threshold, so its NMS is cheaper here than after training; the ratio is, if
anything, in RetinaNet's favour.

After warm-up the two alternate (A, B, A, B, ...) for ``--repeats`` rounds at every batch size and the
medians are compared, so machine noise hits both alike. ``speed_ratio_b<N>`` is CenterNet images/s divided
by RetinaNet images/s; the target is >= 1.5. The last line printed is one JSON object; ``--out`` also
writes it to a file, atomically. The CenterNet bundle's speed table is rendered from
``bundles/centernet_detection/docs/results/detector_throughput.json`` by ``scripts/render_results.py``; a
``--quick`` run is a smoke test, so it refuses an ``--out`` under ``bundles/``.

Usage::

    python scripts/benchmarks/detector_throughput.py                 # 256x256, batch 1 and 16, CPU
    python scripts/benchmarks/detector_throughput.py --device cuda --repeats 50
    python scripts/benchmarks/detector_throughput.py --quick         # tiny sizes, seconds (for tests)
    python scripts/benchmarks/detector_throughput.py \
        --out bundles/centernet_detection/docs/results/detector_throughput.json   # the docs' table
    python scripts/render_results.py
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[2]
TARGET = 1.5
QUICK = {"size": 32, "repeats": 1, "warmup": 1}


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch-sizes", default="1,16")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--backbone", default="resnet18")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--quick", action="store_true", help="tiny settings for a smoke test")
    parser.add_argument(
        "--out",
        type=Path,
        help="also write the JSON object to this file, atomically (the docs' table is rendered from it); "
        "not under bundles/ with --quick",
    )
    args = parser.parse_args(argv)
    if args.quick and args.out is not None and args.out.resolve().is_relative_to(REPO / "bundles"):
        parser.error(
            f"--out {args.out} is under bundles/, whose results files the docs are rendered from; a --quick "
            "run is a smoke test: write it elsewhere (e.g. a temporary folder)"
        )
    if args.quick:
        defaults = {a.dest: a.default for a in parser._actions}
        for key, value in QUICK.items():
            if getattr(args, key) == defaults[key]:
                setattr(args, key, value)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("CUDA is not available: running on CPU")
        args.device = "cpu"
    return args


def build(args: argparse.Namespace) -> dict[str, Callable[[torch.Tensor], list]]:
    from monai_xai.detection import decode_centernet
    from monai_xai.networks.nets.centernet import CenterNet
    from monai_xai.networks.nets.retinanet import retinanet_detector

    device = torch.device(args.device)
    centernet = CenterNet(num_classes=2, backbone=args.backbone).to(device).eval()
    retinanet = retinanet_detector(num_classes=2, backbone=args.backbone).to(device).eval()

    @torch.no_grad()
    def run_centernet(x: torch.Tensor) -> list:
        out = centernet(x)
        return decode_centernet(out["heatmap"], out["size"], out["offset"], centernet.stride, top_k=100)

    @torch.no_grad()
    def run_retinanet(x: torch.Tensor) -> list:
        return retinanet(x)

    return {"centernet": run_centernet, "retinanet": run_retinanet}


def timed(fn: Callable[[torch.Tensor], list], x: torch.Tensor) -> float:
    if x.is_cuda:
        torch.cuda.synchronize()
    start = time.perf_counter()
    fn(x)
    if x.is_cuda:
        torch.cuda.synchronize()
    return time.perf_counter() - start


def main(argv: Sequence[str] | None = None) -> dict:
    args = parse_args(argv)
    load_start = os.getloadavg()[0]
    t0 = time.perf_counter()
    torch.manual_seed(0)
    contenders = build(args)
    result: dict = {}
    rows = [f"{'batch':>5} {'CenterNet img/s':>16} {'RetinaNet img/s':>16} {'ratio':>7}"]
    for batch in (int(b) for b in args.batch_sizes.split(",")):
        x = torch.rand(batch, 1, args.size, args.size, device=args.device)
        times: dict[str, list[float]] = {name: [] for name in contenders}
        for _ in range(args.warmup):
            for fn in contenders.values():
                fn(x)
        for _ in range(args.repeats):
            for name, fn in contenders.items():
                times[name].append(timed(fn, x))
        speed = {name: batch / statistics.median(t) for name, t in times.items()}
        best = {name: batch / min(t) for name, t in times.items()}
        ratio = speed["centernet"] / speed["retinanet"]
        result[f"speed_ratio_b{batch}"] = round(ratio, 3)
        result[f"centernet_images_per_s_b{batch}"] = round(speed["centernet"], 2)
        result[f"retinanet_images_per_s_b{batch}"] = round(speed["retinanet"], 2)
        result[f"best_ratio_b{batch}"] = round(best["centernet"] / best["retinanet"], 3)
        result[f"target_met_b{batch}"] = ratio >= TARGET
        rows.append(f"{batch:>5} {speed['centernet']:>16.2f} {speed['retinanet']:>16.2f} {ratio:>7.2f}")
        print(rows[-1], flush=True)
    print("\n".join(rows))
    load_end = os.getloadavg()[0]
    elapsed = time.perf_counter() - t0
    print(f"total {elapsed:.1f} s; 1-min load average {load_start:.1f} at start, {load_end:.1f} at end")
    result.update({
        "target": TARGET, "size": args.size, "backbone": args.backbone, "repeats": args.repeats,
        "warmup": args.warmup, "device": args.device, "threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(),
        "load_average_start": round(load_start, 2), "load_average_end": round(load_end, 2),
        "torch": torch.__version__,
    })  # fmt: skip
    if args.out is not None:
        from monai_xai.utils import atomic_write_text

        atomic_write_text(args.out, json.dumps(result, indent=1) + "\n")
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
