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
by RetinaNet images/s, ``{"mean", "ci95", "n"}``: its 95 % interval is a bootstrap over the rounds (each
round's two timings resampled together), and the target (>= 1.5) is met only when the interval clears it.
The last line printed is one JSON object; ``--out`` also writes it to a file, atomically, and ``--publish``
to ``bundles/centernet_detection/docs/results/detector_throughput.json``, from which
``python -m monai_xai.experiments render`` renders the CenterNet bundle's speed table
(:mod:`monai_xai.experiments.detector_throughput`). A ``--quick`` run is a smoke test, so it refuses
``--publish`` and an ``--out`` under ``bundles/``.

Usage::

    python scripts/benchmarks/detector_throughput.py                 # 256x256, batch 1 and 16, CPU
    python scripts/benchmarks/detector_throughput.py --device cuda --repeats 50
    python scripts/benchmarks/detector_throughput.py --quick --out /tmp/throughput.json   # seconds (tests)
    python scripts/benchmarks/detector_throughput.py --publish       # the docs' table
    python -m monai_xai.experiments render
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

from monai_xai.experiments.results import add_output_arguments, fmt_ci, output_path, verdict, write_results

REPO = Path(__file__).resolve().parents[2]
TARGET = 1.5
#: the results file the CenterNet bundle's speed table is rendered from
PUBLISHED = "bundles/centernet_detection/docs/results/detector_throughput.json"
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
        "--n_boot", type=int, default=2000, help="bootstrap resamples of the ratio's interval"
    )
    add_output_arguments(parser, published=PUBLISHED)
    args = parser.parse_args(argv)
    if args.quick and (
        args.publish or (args.out is not None and args.out.resolve().is_relative_to(REPO / "bundles"))
    ):
        parser.error(
            "--publish and an --out under bundles/ write the results files the docs are rendered from; a "
            "--quick run is a smoke test: write it elsewhere (e.g. a temporary folder)"
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


def speed_ratio(centernet_s: Sequence[float], retinanet_s: Sequence[float], n_boot: int = 2000) -> dict:
    """CenterNet images/s over RetinaNet images/s (the ratio of their median times per round), with a 95 %
    interval from resampling the rounds, each round's two timings together: they shared the machine's load."""
    from monai_xai.benchmarking import ratio_interval

    interval = ratio_interval(retinanet_s, centernet_s, n_boot)
    bounds = interval["ci95"]
    return {
        "mean": round(interval["mean"], 3),
        "ci95": None if bounds is None else [round(v, 3) for v in bounds],
        "n": interval["n"],
    }


def main(argv: Sequence[str] | None = None) -> dict:
    args = parse_args(argv)
    load_start = os.getloadavg()[0]
    t0 = time.perf_counter()
    torch.manual_seed(0)
    contenders = build(args)
    result: dict = {}
    rows = [f"{'batch':>5} {'CenterNet img/s':>16} {'RetinaNet img/s':>16} {'ratio [95 % CI]':>19}"]
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
        fastest = {name: batch / min(t) for name, t in times.items()}
        ratio = speed_ratio(times["centernet"], times["retinanet"], args.n_boot)
        result[f"speed_ratio_b{batch}"] = ratio
        result[f"centernet_images_per_s_b{batch}"] = round(speed["centernet"], 2)
        result[f"retinanet_images_per_s_b{batch}"] = round(speed["retinanet"], 2)
        result[f"fastest_ratio_b{batch}"] = round(fastest["centernet"] / fastest["retinanet"], 3)
        rows.append(
            f"{batch:>5} {speed['centernet']:>16.2f} {speed['retinanet']:>16.2f} "
            f"{fmt_ci(ratio, 2):>19} {verdict(ratio, TARGET)}"
        )
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
    if args.out is not None or args.publish:
        write_results(result, output_path(args, PUBLISHED), publish=args.publish)
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
