"""Speed of monai_xai's batched Deletion/Insertion next to a per-image, per-step loop, on the same inputs.

All contenders score the same ResNet18 classifier (``monai_xai.networks.ResNetClassifier``, seeded random
weights, eval mode) on the same ``--images`` random images of ``--size`` x ``--size`` and the same smooth
random saliency maps, with the same ``--steps`` and ``--baseline``, in both modes (deletion and insertion):

* loop: written here as a user would without monai_xai: for each image its predicted class, its pixel
  order, and for each step one perturbed copy and one forward pass of batch 1 through the network;
* batched: what monai_xai does (the faithfulness handler's path): the network through
  :func:`monai_xai.networks.optimise_for_inference` at its exact tolerance (batch norm folded, weights
  pre-packed for MKL-DNN, outputs within rtol 1e-4, atol 1e-5), then
  :func:`monai_xai.metrics.deletion_insertion`, which scores each distinct perturbed image once in forward
  passes of ``--batch-size`` images (the library's default when not given). The copy is built once per
  network, as model loading is, and used by every round; ``optimise_s`` reports what building it costs.

Two more contenders separate the two gains: ``loop_optimised`` (the loop on the optimised copy) and
``batched_plain`` (the batched metric on the plain network).

After warm-up the contenders alternate for ``--repeats`` rounds and the medians are compared. ``speedup`` =
loop time / batched time; ``speedup_batching_plain`` = loop / batched_plain and
``speedup_batching_optimised`` = loop_optimised / batched are what batching alone gives on either network.
``speedup_ceiling`` = loop / ``forwards_only``, the optimised copy's forward passes of random batches of the
shapes the batched metric sends, and nothing else: no exact batched implementation beats it on this machine,
so the target is relative to it in the same run (a fixed factor would hang on the machine's noise):
``speedup`` >= 0.9 x ``speedup_ceiling``. ``max_abs_diff`` is the largest absolute difference between any
contender's curves and AUCs and the loop's (target <= 1e-5).

Quantus (``pip install 'monai-xai[bench]'``), the library users would pick instead, adds three contenders on
deletion alone: ``quantus``, ``quantus.PixelFlipping`` in its batch mode (each step flips and scores every
image of a batch together) on the plain network, as its users run it; ``quantus_optimised``, the same on the
optimised copy; and ``batched_deletion_only``, monai_xai's path on deletion alone. Quantus is given the
same network, images, steps, baseline and classes: ``features_in_step`` = the values of one step's pixels
(it flips channel values, and the one-channel map broadcast over the channels keeps a pixel's values
together; this needs ``steps`` to split the pixels evenly and, as Quantus checks that ``features_in_step``
divides the pixels rather than the values, to be a multiple of the channels),
``perturb_baseline=0.0``, ``softmax=True``, ``normalise=False``, ``abs=False``, ``channel_first=True``,
``batch_size`` = all the images, and ``y_batch`` the network's predicted classes on the unchanged images.
Its curve differs from ours in three ways, so it is compared on what both compute:

* it has no unperturbed point: its curve is our points 1..steps, and its AUC is ``np.trapz(curve, dx=1)``
  (x from 1 to ``steps``, not normalised) where ours is the trapezoid over points 0..steps with x in
  [0, 1]; ``max_abs_diff_vs_quantus`` compares its curves and AUCs with ours recomputed so from our scores.
  (Quantus 0.6 computes that AUC with ``np.trapz``, which NumPy 2.4 removed, so ``return_auc_per_sample``
  fails here: the benchmark takes its curves and applies the same rule with ``np.trapezoid``.)
* it orders pixels with NumPy's unstable ``argsort``, ours in position order among equal saliency, and the
  maps have runs of equal values (bilinear upsampling repeats the border cells); a run cut by a step would
  flip different pixels, so Quantus gets each map as ranks (an order-preserving relabelling with ties
  broken as ours);
* it has no insertion and no blur baseline; its ``"black"`` is each image's minimum and its ``"mean"`` the
  mean over all channels of the image as perturbed so far, recomputed at each step (ours: each channel's
  mean of the unchanged image). Only the zero baseline, given as the value 0.0, is the same.
  (``quantus.RegionPerturbation`` flips square patches and records the drop from the unchanged score: a
  different curve.)

``speedup_vs_quantus`` = quantus / batched_deletion_only (target >= 2, met only where the 95 % interval in
``intervals``, a bootstrap over the interleaved rounds, lies above it) and
``speedup_vs_quantus_same_network`` = quantus_optimised / batched_deletion_only; ``max_abs_diff_vs_quantus``
target <= 1e-4. Without quantus, or with a setting it cannot reproduce (another baseline, steps that do not
split the pixels evenly), the Quantus keys are left out and ``quantus_skipped`` says why; ``--quantus``
turns that into an error, ``--no-quantus`` skips it. Each ``*_met`` key says whether its target is met,
``target_met`` whether all are. The last line printed is one JSON object.

With several threads on a machine that other processes keep busy, OpenMP threads spin-wait at every op and
the loop's many small forwards suffer most; ``--threads 1`` gives the steadier comparison. The JSON records
the thread count and the load average at start and end.

Usage::

    python scripts/benchmarks/deletion_insertion.py                      # 16 images 64x64, 16 steps, CPU
    python scripts/benchmarks/deletion_insertion.py --threads 1 --baseline blur --repeats 5
    python scripts/benchmarks/deletion_insertion.py --quick              # tiny sizes, seconds (for tests)
    python scripts/benchmarks/deletion_insertion.py --quick --out /tmp/di.json   # also write the JSON
    python scripts/benchmarks/deletion_insertion.py --threads 1 --repeats 5 --publish   # the docs' table

``--out FILE`` also writes the JSON object to a file; ``--publish`` writes it into the docs
(``bundles/multiscale_abn_correction/docs/results/deletion_insertion.json``), whose table
``python -m monai_xai.experiments render`` regenerates (``monai_xai.experiments.deletion_insertion``).
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

#: ``speedup`` must reach this fraction of ``speedup_ceiling``, measured in the same run.
SPEEDUP_OF_CEILING_TARGET = 0.9
DIFF_TARGET = 1e-5
SPEEDUP_VS_QUANTUS_TARGET = 2
DIFF_VS_QUANTUS_TARGET = 1e-4
MODES = ("deletion", "insertion")
#: Contenders in the order they run each round (and ``forwards_only``, the ceiling, last).
CONTENDERS = ("loop", "loop_optimised", "batched_plain", "batched")
#: The contenders added with Quantus, on deletion alone.
QUANTUS_CONTENDERS = ("batched_deletion_only", "quantus", "quantus_optimised")

#: The docs' results file (``--publish``), rendered by ``monai_xai.experiments.deletion_insertion``.
PUBLISHED = "bundles/multiscale_abn_correction/docs/results/deletion_insertion.json"
#: Settings of --quick and by default; explicit arguments still win. 16 steps (not 20) split 64x64 pixels
#: evenly, which Quantus's ``features_in_step`` needs.
QUICK = {"images": 2, "size": 32, "steps": 4, "repeats": 1, "warmup": 1}
DEFAULTS = {"images": 16, "size": 64, "steps": 16, "repeats": 3, "warmup": 1}


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--images", type=int, help="number of images (16; 2 with --quick)")
    parser.add_argument("--size", type=int, help="image height = width (64; 32 with --quick)")
    parser.add_argument("--steps", type=int, help="curve steps, the curve has steps + 1 points (16; 4 quick)")
    parser.add_argument("--baseline", default="zero", help="zero, mean or blur")
    parser.add_argument("--blur-sigma", type=float, default=5.0, help="Gaussian sigma of the blur baseline")
    parser.add_argument("--batch-size", type=int, help="images per forward of the batched contender")
    parser.add_argument("--backbone", default="resnet18", help="resnet18, resnet34 or resnet50")
    parser.add_argument("--in-channels", type=int, default=1)
    parser.add_argument("--num-classes", type=int, default=2)
    parser.add_argument("--repeats", type=int, help="timed rounds (3; 1 with --quick)")
    parser.add_argument("--warmup", type=int, help="untimed rounds first (1)")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's own choice)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--quantus",
        action=argparse.BooleanOptionalAction,
        help="compare with Quantus's PixelFlipping (default: when it is installed and can match our curve)",
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes and one round, for smoke tests")
    from monai_xai.experiments.results import add_output_arguments, output_path

    add_output_arguments(parser, published=PUBLISHED)
    args = parser.parse_args(argv)
    # where the JSON goes (None: printed only), settled before the minutes of timing
    args.results = output_path(args, PUBLISHED) if args.out is not None or args.publish else None
    preset = QUICK if args.quick else DEFAULTS
    for key, value in preset.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    from monai_xai.metrics import BASELINES

    if args.baseline not in BASELINES:
        parser.error(f"--baseline: unknown {args.baseline!r}; valid: {', '.join(BASELINES)}")
    if min(args.images, args.size, args.steps, args.repeats) < 1 or args.warmup < 0:
        parser.error("need --images, --size, --steps, --repeats >= 1 and --warmup >= 0")
    if args.batch_size is not None and args.batch_size < 1 or args.threads is not None and args.threads < 1:
        parser.error("--batch-size and --threads must be positive")
    args.quantus_skipped = "--no-quantus" if args.quantus is False else quantus_unsupported(args)
    if args.quantus and args.quantus_skipped:
        parser.error(f"--quantus: {args.quantus_skipped}")
    return args


def quantus_unsupported(args: argparse.Namespace) -> str | None:
    """Why Quantus's PixelFlipping cannot give our deletion curve with these settings, or None."""
    import importlib.util

    if importlib.util.find_spec("quantus") is None:
        return "quantus is not installed (pip install 'monai-xai[bench]')"
    if args.baseline != "zero":
        return (
            f"baseline {args.baseline!r} has no Quantus counterpart (its 'mean' is recomputed from the image "
            "as perturbed so far, and it has no blur): only the zero baseline is the same"
        )
    n_pixels = args.size**2
    if n_pixels % args.steps or args.steps % args.in_channels:
        return (
            f"{args.steps} steps of {args.size}x{args.size} pixels x {args.in_channels} channel(s) have no "
            "Quantus features_in_step: the steps must split the pixels evenly and, as Quantus checks that "
            "the values per step divide the pixels, be a multiple of the channels"
        )
    return None


def make_inputs(n_images: int, size: int, channels: int, seed: int = 0) -> tuple[Any, Any]:
    """Random images in [0, 1] and smooth random saliency maps (an 8x8 grid upsampled to the image)."""
    import torch
    import torch.nn.functional as F

    gen = torch.Generator().manual_seed(seed)
    images = torch.rand(n_images, channels, size, size, generator=gen)
    coarse = torch.rand(n_images, 1, 8, 8, generator=gen)
    saliency = F.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=False)
    return images, saliency


def loop_baseline(image: Any, baseline: str, blur_sigma: float) -> Any:
    """What removed pixels of one (C, *spatial) image are replaced with."""
    import torch

    if baseline == "zero":
        return torch.zeros_like(image)
    if baseline == "mean":
        return image.mean(dim=tuple(range(1, image.ndim)), keepdim=True).expand_as(image)
    from monai.networks.layers import GaussianFilter

    return GaussianFilter(image.ndim - 1, sigma=blur_sigma)(image[None])[0]


def loop_deletion_insertion(
    model: Callable[[Any], Any],
    images: Any,
    saliency: Any,
    mode: str,
    steps: int,
    baseline: str,
    blur_sigma: float = 5.0,
) -> tuple[Any, Any, Any]:
    """(auc, curves, target) of Deletion or Insertion, one image and one step at a time.

    Step k changes the round(k * N / steps) most salient of the N pixels (ties in position order).
    """
    import torch

    aucs, curves, targets = [], [], []
    with torch.no_grad():
        for image, sal in zip(images, saliency):
            target = int(model(image[None]).argmax(dim=1))
            order = torch.argsort(-sal.flatten(), stable=True)
            reference = loop_baseline(image, baseline, blur_sigma)
            n_pixels = order.numel()
            curve = []
            for k in range(steps + 1):
                picked = torch.zeros(n_pixels, dtype=torch.bool)
                picked[order[: round(k * n_pixels / steps)]] = True
                picked = picked.view(1, *image.shape[1:])
                if mode == "deletion":
                    perturbed = torch.where(picked, reference, image)
                else:
                    perturbed = torch.where(picked, image, reference)
                curve.append(float(torch.softmax(model(perturbed[None]).float(), dim=1)[0, target]))
            curve_t = torch.tensor(curve)
            curves.append(curve_t)
            aucs.append(torch.trapezoid(curve_t, dx=1.0 / steps))
            targets.append(target)
    return torch.stack(aucs), torch.stack(curves), torch.tensor(targets)


def batched_deletion_insertion(
    model: Callable[[Any], Any],
    images: Any,
    saliency: Any,
    mode: str,
    steps: int,
    baseline: str,
    blur_sigma: float = 5.0,
    batch_size: int | None = None,
) -> tuple[Any, Any, Any]:
    """(auc, curves, target) from :func:`monai_xai.metrics.deletion_insertion`."""
    from monai_xai.metrics import deletion_insertion

    kwargs = {} if batch_size is None else {"batch_size": batch_size}
    result = deletion_insertion(
        model, images, saliency, mode, steps, baseline, blur_sigma=blur_sigma, **kwargs
    )
    return result.auc, result.curves, result.target


def quantus_pixel_flipping(
    model: Any, images: Any, saliency: Any, steps: int, batch_size: int | None = None
) -> tuple[Any, Any, Any]:
    """(auc, curves, target) of deletion by ``quantus.PixelFlipping``, set up as the module docstring says.

    ``curves`` are (B, steps): our points 1..steps; ``auc`` is Quantus's, the trapezoid over them with dx=1.
    The target is each image's predicted class, from one forward pass of the unchanged images.
    """
    import numpy as np
    import quantus
    import torch

    with torch.no_grad():
        target = model(images).argmax(dim=1)
    flat = saliency.flatten(1).numpy()
    # Ranks, highest for the most salient pixel, ties in position order as ours (NumPy's default sort is not
    # stable).
    ranks = np.argsort(np.argsort(-flat, axis=1, kind="stable"), axis=1, kind="stable")
    values_per_step = images[0].numel() // steps
    metric = quantus.PixelFlipping(
        features_in_step=values_per_step,
        perturb_baseline=0.0,
        normalise=False,
        abs=False,
        disable_warnings=True,
    )
    curves = metric(
        model=model,
        x_batch=images.numpy(),
        y_batch=target.numpy(),
        a_batch=(flat.shape[1] - ranks).astype(np.float32).reshape(saliency.shape),
        channel_first=True,
        softmax=True,
        device="cpu",
        batch_size=len(images) if batch_size is None else batch_size,
    )
    curves = np.asarray(curves)
    # What its return_auc_per_sample=True computes; its calculate_auc calls np.trapz, gone since NumPy 2.4.
    auc = np.trapezoid(curves, dx=1, axis=1)
    return torch.as_tensor(auc), torch.as_tensor(curves), target


def in_quantus_terms(result: tuple) -> tuple[Any, Any, Any]:
    """Our (auc, curves, target) as Quantus reports them: without the unchanged point, AUC with dx=1."""
    import torch

    auc, curves, target = result
    return torch.trapezoid(curves[:, 1:], dx=1.0, dim=1), curves[:, 1:], target


def max_abs_diff(loop: dict[str, tuple], batched: dict[str, tuple]) -> float:
    """Largest absolute difference between the contenders' AUCs and curves over the modes ``batched`` has."""
    diffs = [
        float((a.float() - b.float().cpu()).abs().max())
        for mode in batched
        for a, b in zip(loop[mode][:2], batched[mode][:2])
    ]
    return max(diffs)


def batch_shapes(
    score: Callable[..., tuple], scorer: Callable[[Any], Any], images: Any, saliency: Any, *common: Any
) -> list[Any]:
    """Shapes of the batches ``score`` sends through ``scorer`` in both modes: what the ceiling replays."""
    shapes = []

    def recording(x: Any) -> Any:
        shapes.append(x.shape)
        return scorer(x)

    for mode in MODES:
        score(recording, images, saliency, mode, *common)
    return shapes


def forwards_only(scorer: Callable[[Any], Any], shapes: Sequence[Any]) -> Callable[[], None]:
    """Forward passes of random batches of ``shapes`` alone (no perturbation, softmax or bookkeeping)."""
    import torch

    batches = [torch.rand(shape) for shape in shapes]

    def run() -> None:
        with torch.no_grad():
            for batch in batches:
                scorer(batch)

    return run


def timed_rounds(contenders: dict[str, Callable[[], Any]], repeats: int, warmup: int) -> dict[str, list]:
    """Wall times in s of each contender, run in turn for ``repeats`` rounds after ``warmup`` rounds."""
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for round_index in range(warmup + repeats):
        for name, fn in contenders.items():
            start = time.perf_counter()
            fn()
            if round_index >= warmup:
                times[name].append(time.perf_counter() - start)
    return times


def run_benchmark(args: argparse.Namespace) -> dict[str, Any]:
    """Time the contenders, check they agree, and return the JSON result."""
    import torch

    from monai_xai.benchmarking import environment, load_average, ratio_interval, warn_if_busy
    from monai_xai.experiments.results import verdict
    from monai_xai.networks import InferenceTolerance, optimise_for_inference
    from monai_xai.networks.nets import ResNetClassifier

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    load = load_average()
    warn_if_busy(load, "and slow the loop's many small forwards most (OpenMP threads spin-wait)")
    torch.manual_seed(args.seed)
    model = ResNetClassifier(args.backbone, 2, args.in_channels, args.num_classes).eval()
    images, saliency = make_inputs(args.images, args.size, args.in_channels, args.seed)
    common = (args.steps, args.baseline, args.blur_sigma)
    with_quantus = args.quantus_skipped is None
    names = CONTENDERS + (QUANTUS_CONTENDERS if with_quantus else ())
    results: dict[str, dict[str, tuple]] = {name: {} for name in names}

    build_times = []
    for _ in range(3):
        start = time.perf_counter()
        optimised = optimise_for_inference(model, images[:2], InferenceTolerance.exact())
        build_times.append(time.perf_counter() - start)

    def contender(
        name: str, score: Callable[..., tuple], scorer: Callable[[Any], Any], modes: Sequence[str] = MODES
    ) -> Callable[[], None]:
        def run() -> None:
            for mode in modes:
                results[name][mode] = score(scorer, images, saliency, mode, *common)

        return run

    batched = functools.partial(batched_deletion_insertion, batch_size=args.batch_size)
    shapes = batch_shapes(batched, optimised, images, saliency, *common)
    contenders = {
        "loop": contender("loop", loop_deletion_insertion, model),
        "loop_optimised": contender("loop_optimised", loop_deletion_insertion, optimised),
        "batched_plain": contender("batched_plain", batched, model),
        "batched": contender("batched", batched, optimised),
    }
    if with_quantus:

        def quantus_contender(name: str, scorer: Callable[[Any], Any]) -> Callable[[], None]:
            def run() -> None:
                results[name]["deletion"] = quantus_pixel_flipping(scorer, images, saliency, args.steps)

            return run

        contenders["batched_deletion_only"] = contender(
            "batched_deletion_only", batched, optimised, ("deletion",)
        )
        contenders["quantus"] = quantus_contender("quantus", model)
        contenders["quantus_optimised"] = quantus_contender("quantus_optimised", optimised)
    contenders["forwards_only"] = forwards_only(optimised, shapes)
    t_start = time.perf_counter()
    times = timed_rounds(contenders, args.repeats, args.warmup)
    medians = {name: statistics.median(values) for name, values in times.items()}
    intervals = {"speedup": ratio_interval(times["loop"], times["batched"])}
    speedup = medians["loop"] / medians["batched"]
    ceiling = medians["loop"] / medians["forwards_only"]
    quantus_names = ("quantus", "quantus_optimised")
    others = [name for name in names if name not in ("loop", *quantus_names)]
    diff = max(max_abs_diff(results["loop"], results[name]) for name in others)
    targets_agree = all(
        torch.equal(results["loop"][mode][2], results[name][mode][2].cpu())
        for name in others
        for mode in results[name]
    )
    met = {
        "speedup_met": speedup >= SPEEDUP_OF_CEILING_TARGET * ceiling,
        "agreement_met": diff <= DIFF_TARGET,
    }
    quantus_keys: dict[str, Any] = {"quantus_skipped": args.quantus_skipped}
    if with_quantus:
        import quantus

        ours = {"deletion": in_quantus_terms(results["loop"]["deletion"])}
        diff_quantus = max(max_abs_diff(ours, results[name]) for name in quantus_names)
        targets_agree = targets_agree and all(
            torch.equal(ours["deletion"][2], results[name]["deletion"][2].cpu()) for name in quantus_names
        )
        speedup_quantus = medians["quantus"] / medians["batched_deletion_only"]
        intervals["speedup_vs_quantus"] = ratio_interval(times["quantus"], times["batched_deletion_only"])
        intervals["speedup_vs_quantus_same_network"] = ratio_interval(
            times["quantus_optimised"], times["batched_deletion_only"]
        )
        judged = verdict(intervals["speedup_vs_quantus"], SPEEDUP_VS_QUANTUS_TARGET)
        met["speedup_vs_quantus_met"] = judged == "met"
        met["agreement_vs_quantus_met"] = diff_quantus <= DIFF_VS_QUANTUS_TARGET
        quantus_keys = {
            "speedup_vs_quantus": round(speedup_quantus, 3),
            "max_abs_diff_vs_quantus": diff_quantus,
            "speedup_vs_quantus_same_network": round(
                medians["quantus_optimised"] / medians["batched_deletion_only"], 3
            ),
            "target_speedup_vs_quantus": SPEEDUP_VS_QUANTUS_TARGET,
            "target_max_abs_diff_vs_quantus": DIFF_VS_QUANTUS_TARGET,
            "quantus_version": quantus.__version__,
        }
    load_end = load_average()
    forwards = args.images * len(MODES) * (args.steps + 2)
    return {
        "speedup": round(speedup, 3),
        "max_abs_diff": diff,
        "speedup_ceiling": round(ceiling, 3),
        "speedup_batching_plain": round(medians["loop"] / medians["batched_plain"], 3),
        "speedup_batching_optimised": round(medians["loop_optimised"] / medians["batched"], 3),
        "speedup_optimised_model_loop": round(medians["loop"] / medians["loop_optimised"], 3),
        "target_speedup": round(SPEEDUP_OF_CEILING_TARGET * ceiling, 3),
        "target_speedup_of_ceiling": SPEEDUP_OF_CEILING_TARGET,
        "target_max_abs_diff": DIFF_TARGET,
        **quantus_keys,
        "intervals": intervals,
        "target_met": all(met.values()),
        **met,
        "targets_agree": targets_agree,
        "median_s": {k: round(v, 4) for k, v in medians.items()},
        "optimise_s": round(statistics.median(build_times), 4),
        "inference_setting": optimised.setting.label(),
        "min_s": {k: round(min(v), 4) for k, v in times.items()},
        "mean_auc": {
            f"{name}_{mode}": round(float(auc.mean()), 6)
            for name, res in results.items()
            for mode, (auc, *_) in res.items()
        },
        "settings": {
            "backbone": args.backbone,
            "images": args.images,
            "size": args.size,
            "in_channels": args.in_channels,
            "num_classes": args.num_classes,
            "steps": args.steps,
            "baseline": args.baseline,
            "blur_sigma": args.blur_sigma,
            "batch_size": args.batch_size,
            "loop_forwards": forwards,
            "batched_scored_images": sum(shape[0] for shape in shapes),
            "batched_chunk": max(shape[0] for shape in shapes),
            "repeats": args.repeats,
            "warmup": args.warmup,
            **environment(load, load_end),
            "quick": args.quick,
        },
        "elapsed_s": round(time.perf_counter() - t_start, 1),
    }


#: Row labels of the table.
LABELS = {
    "loop": "loop (batch-1 forward per step)",
    "loop_optimised": "loop on the inference-optimised copy",
    "batched_plain": "deletion_insertion on the plain network",
    "batched": "monai_xai: optimised copy + deletion_insertion",
    "batched_deletion_only": "monai_xai, deletion alone",
    "quantus": "quantus.PixelFlipping (deletion)",
    "quantus_optimised": "quantus.PixelFlipping on the optimised copy",
}


def format_table(result: dict[str, Any]) -> str:
    """A readable summary of :func:`run_benchmark`'s result."""
    s, med = result["settings"], result["median_s"]
    width = max(len(label) for label in LABELS.values())

    def verdict(key: str) -> str:
        return "met" if result[key] else "MISSED"

    if "quantus_skipped" in result:
        quantus_line = f"Quantus: skipped: {result['quantus_skipped']}"
    else:
        quantus_line = (
            f"Quantus {result['quantus_version']} (deletion, its conventions): "
            f"{result['speedup_vs_quantus']:.2f}x faster, 95 % interval "
            f"{result['intervals']['speedup_vs_quantus']['ci95']} (target >= {SPEEDUP_VS_QUANTUS_TARGET}) "
            f"{verdict('speedup_vs_quantus_met')}, {result['speedup_vs_quantus_same_network']:.2f}x with "
            f"Quantus on the optimised copy; max |difference| {result['max_abs_diff_vs_quantus']:.2e} "
            f"(target <= {DIFF_VS_QUANTUS_TARGET:g}) {verdict('agreement_vs_quantus_met')}"
        )
    lines = [
        f"deletion_insertion: {s['backbone']}, {s['images']} images of {s['size']}x{s['size']}, "
        f"{s['in_channels']} channel(s), "
        f"{s['steps']} steps, baseline {s['baseline']}, deletion + insertion, torch {s['torch']} "
        f"({s['threads']} threads), {s['warmup']} warm-up + {s['repeats']} repeats, medians",
        f"{'contender':<{width}} {'median':>10} {'min':>10}",
        *(
            f"{LABELS[name]:<{width}} {med[name]:>9.3f}s {result['min_s'][name]:>9.3f}s"
            for name in LABELS
            if name in med
        ),
        f"batching alone: {result['speedup_batching_plain']:.2f}x on the plain network, "
        f"{result['speedup_batching_optimised']:.2f}x on the optimised copy; the optimised copy alone: "
        f"{result['speedup_optimised_model_loop']:.2f}x",
        f"building the optimised copy (once per network): {result['optimise_s']:.3f}s; "
        f"ceiling: the optimised copy's forward passes alone ({s['batched_scored_images']} images in "
        f"batches of {s['batched_chunk']}) take {med['forwards_only']:.3f}s, "
        f"{result['speedup_ceiling']:.2f}x less than the loop",
        f"speedup {result['speedup']:.2f}x (target >= {SPEEDUP_OF_CEILING_TARGET:g} x ceiling = "
        f"{result['target_speedup']:.2f}x) {verdict('speedup_met')}; "
        f"max |difference| {result['max_abs_diff']:.2e} (target <= {DIFF_TARGET:g}) "
        f"{verdict('agreement_met')}",
        quantus_line,
        f"total {result['elapsed_s']:.1f} s; 1-min load average {s['loadavg_1min_at_start']:.1f} at start, "
        f"{s['loadavg_1min_at_end']:.1f} at end",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    result = run_benchmark(args)
    print(format_table(result))
    print(json.dumps(result))
    if args.results is not None:
        from monai_xai.experiments.results import write_results

        write_results(result, args.results, publish=args.publish)
    return 0


if __name__ == "__main__":
    sys.exit(main())
