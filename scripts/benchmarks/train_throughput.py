"""Training throughput on this machine: float32 next to the device's fast path, and the ABN bundle's real
trainer next to a bare loop, side by side in one run.

Contenders (``--size`` 128, batch 32, AdamW, one training step = forward, loss, backward, optimiser step):

- bare steps on in-memory tensors of every bundle's network (AG-CycleGAN: the generator step, both
  directions and cycles over the frozen classifier encoder), in float32 and on the fast path that
  ``amp=True`` resolves to (:class:`monai_xai.engines.FastPath`: bfloat16 autocast where the CPU's oneDNN
  supports it, float32 elsewhere; channels-last for 2D convolutions). The two alternate for ``--repeats``
  rounds after warm-up and their medians are compared: ``precision_speedup_<network>`` = float32 step time
  / fast-path step time (targets: ABN >= 1.7, plain ResNet18 >= 1.6); its 95 % interval resamples the
  rounds (each round's pair of steps together).
- the ABN bundle's own trainer (``--mode dynamic``) over BUSI benign vs malignant epochs (cache warm, data
  loader and handlers included, no validation), and a bare loop with the same network, loss, batch, fast
  path and optimiser on in-memory tensors for as many steps, timed right after each trainer stage:
  ``pipeline_efficiency`` = trainer images/s / bare images/s of the bundle's default (target >= 0.9); its
  95 % interval resamples the iterations (the trainer's with its data loading and the epoch-end handlers
  counted in the epoch's last iteration). The stages (``--stages``, :data:`STAGES`) go from the old pipeline
  to the default one, so that the differences of their efficiencies (the report's ``pipeline.steps``) say
  which part of the gap each change closes: per-item augmentation in DataLoader workers (before), cached
  items without augmentation with the same workers, the same without workers, and the default: batched
  augmentation in the training process on cached items without workers (``pipeline_efficiency_<stage>``
  for each). The plain tensors the training split now caches (no MONAI metadata) count in every stage.

A target is met only when the whole interval lies above it (``verdicts``). The last line printed is one
JSON object; ``--out`` or ``--publish`` also write it as the results file the docs' tables are rendered from
(``python -m monai_xai.experiments train_throughput``). Usage::

    python scripts/benchmarks/train_throughput.py --publish           # needs ../shared/data
    python scripts/benchmarks/train_throughput.py --quick             # tiny sizes, seconds (for tests)
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from monai_xai.experiments.results import add_output_arguments, output_path, verdict, write_results

REPO = Path(__file__).resolve().parents[2]
PUBLISHED = "bundles/abn_classification/docs/results/train_throughput.json"
TARGETS = {"pipeline_efficiency": 0.9, "precision_speedup_abn": 1.7, "precision_speedup_resnet": 1.6}
N_BOOT = 2000
QUICK = {"size": 32, "batch": 4, "repeats": 1, "warmup": 1, "epochs": 1, "limit": 16}
#: the trainer's stages, from the old pipeline to the bundle's default (last): config overrides, and words
STAGES: dict[str, tuple[dict, str]] = {
    "per_item": ({"batch_augmentation": False}, "per-item augmentation in DataLoader workers (before)"),
    "cached_workers": (
        {"train#trainer#prepare_batch#augmentation": None, "train#dataloader#num_workers": "@num_workers"},
        "cached items, no augmentation, the same workers",
    ),
    "cached": ({"train#trainer#prepare_batch#augmentation": None}, "cached items, no augmentation"),
    "batched": ({}, "cached items, batched augmentation in the training process (default)"),
}
DEFAULT_STAGE = "batched"


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", type=int, default=128, help="square input size of the bare steps and BUSI")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5, help="timed rounds per bare contender")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps per bare contender")
    parser.add_argument("--epochs", type=int, default=2, help="timed trainer epochs after one warm-up epoch")
    parser.add_argument(
        "--num-workers", type=int, default=2, help="the bundle's num_workers (its per-item loader's workers)"
    )
    parser.add_argument("--limit", type=int, default=None, help="BUSI items per split (None: all)")
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "busi_256")
    parser.add_argument("--networks", nargs="+", default=list(NETWORKS), choices=list(NETWORKS))
    parser.add_argument(
        "--stages", nargs="+", default=list(STAGES), choices=list(STAGES), help="trainer stages to time"
    )
    parser.add_argument("--device", default="cpu")
    add_output_arguments(parser, published=PUBLISHED)
    parser.add_argument("--quick", action="store_true", help=f"tiny run for tests: {QUICK}")
    args = parser.parse_args(argv)
    if args.quick:
        for key, value in QUICK.items():
            setattr(args, key, value)
    return args


# ---- bare steps of each bundle's network ---------------------------------------------------------------


def _classifier(mode: str, architecture: str = "abn"):
    from monai_xai.networks import get_classifier

    return get_classifier(mode, "resnet18", 2, 1, 2, stem="standard", architecture=architecture)


def _multiscale():
    from monai_xai.networks import MultiScaleAttentionBranchNetwork

    return MultiScaleAttentionBranchNetwork(backbone="resnet18", spatial_dims=2, in_channels=1, num_classes=2)


def _logits_loss(output, labels):
    """Cross-entropy of a plain classifier; for an ABN both branches' and the map's, so that the backward
    pass runs through the whole network as in training."""
    cross_entropy = torch.nn.functional.cross_entropy
    if isinstance(output, torch.Tensor):
        return cross_entropy(output, labels)
    return (
        cross_entropy(output.perception_logits, labels)
        + cross_entropy(output.attention_logits, labels)
        + output.attention_map.mean()
    )


def _centernet():
    from monai_xai.networks import CenterNet

    return CenterNet(num_classes=2, backbone="resnet18", in_channels=1)


def _dense_loss(output, labels):
    return sum(v.float().square().mean() for v in output.values())


def _simsiam():
    from monai_xai.networks import SimSiam

    return SimSiam(backbone="resnet18", in_channels=1)


def _agcyclegan():
    from monai_xai.networks.nets import RESNET_CLASSIFIERS, AGCycleGAN

    classifier = RESNET_CLASSIFIERS["leakyrelu"](
        backbone="resnet18", spatial_dims=2, in_channels=1, num_classes=2
    )
    return AGCycleGAN(classifier, spatial_dims=2, in_channels=1)


def _cycle_loss(output, labels):
    return output.rec_x.abs().mean() + output.rec_y.abs().mean() + output.x_to_y.attention.mean()


#: name -> (network factory, loss(output, labels), number of image inputs per forward)
NETWORKS: dict[str, tuple[Callable, Callable, int]] = {
    "abn": (lambda: _classifier("dynamic"), _logits_loss, 1),
    "resnet": (lambda: _classifier("baseline"), _logits_loss, 1),
    "multiscale_abn": (_multiscale, _logits_loss, 1),
    "centernet": (_centernet, _dense_loss, 1),
    "simsiam": (_simsiam, lambda output, labels: -output["p1"].mean(), 2),
    "agcyclegan": (_agcyclegan, _cycle_loss, 2),
}


class BareStep:
    """One optimiser step of ``network`` on fixed in-memory tensors, on float32 or on the fast path."""

    def __init__(
        self, network, loss_fn, n_inputs: int, fast: bool, spatial_size, batch: int, device, lr=1e-4
    ):
        from monai_xai.engines import FastPath

        self.path = FastPath.resolve(fast, device, network)
        self.network = network.to(device).train()
        self.path.prepare_network(self.network)
        self.optimizer = torch.optim.AdamW(self.network.parameters(), lr=lr)
        generator = torch.Generator().manual_seed(0)
        images = [torch.rand(batch, 1, *spatial_size, generator=generator) for _ in range(n_inputs)]
        self.inputs = [self.path.prepare_input(x.to(device)) for x in images]
        self.labels = torch.randint(0, 2, (batch,), generator=generator).to(device)
        self.loss_fn = loss_fn

    def __call__(self) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        output = self.path.forward(self.network, *self.inputs)
        self.loss_fn(output, self.labels).backward()
        self.optimizer.step()


def alternate(contenders: dict[str, Callable[[], None]], repeats: int, warmup: int) -> dict[str, np.ndarray]:
    """Seconds of each contender's call in each round, timed in alternation after ``warmup`` calls each."""
    for step in contenders.values():
        for _ in range(warmup):
            step()
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(repeats):
        for name, step in contenders.items():
            start = time.perf_counter()
            step()
            times[name].append(time.perf_counter() - start)
    return {name: np.asarray(t) for name, t in times.items()}


def _ratio_of_medians(slow: np.ndarray, fast: np.ndarray) -> float:
    return float(np.median(slow) / np.median(fast))


def _ratio_of_means(numerator: np.ndarray, denominator: np.ndarray) -> float:
    return float(numerator.mean() / denominator.mean())


def interval(ratio: Callable[[np.ndarray, np.ndarray], float], a: np.ndarray, b: np.ndarray) -> dict:
    """``ratio(a, b)`` with its 95 % bootstrap interval, resampling the rows of ``a`` and ``b`` together; no
    interval from one row (it would have no width, not certainty)."""
    from monai_xai.metrics.uncertainty import bootstrap_ci

    if a.size < 2:
        return {"mean": ratio(a, b), "ci95": None, "n": int(a.size)}
    return bootstrap_ci(ratio, a, b, n_boot=N_BOOT).to_dict()


def bare_precision(args) -> tuple[dict, dict]:
    """float32 vs fast-path step times of each network in ``args.networks``, and each speed-up's interval."""
    results, intervals = {}, {}
    for name in args.networks:
        factory, loss_fn, n_inputs = NETWORKS[name]
        torch.manual_seed(0)
        contenders = {
            precision: BareStep(
                factory(),
                loss_fn,
                n_inputs,
                precision == "fast",
                (args.size, args.size),
                args.batch,
                args.device,
            )
            for precision in ("fp32", "fast")
        }
        times = alternate(contenders, args.repeats, args.warmup)
        seconds = {precision: statistics.median(t) for precision, t in times.items()}
        results[name] = {
            "fast_path": contenders["fast"].path.describe(),
            "fp32_images_per_s": round(args.batch / seconds["fp32"], 2),
            "fast_images_per_s": round(args.batch / seconds["fast"], 2),
            "speedup": round(seconds["fp32"] / seconds["fast"], 3),
        }
        intervals[f"precision_speedup_{name}"] = interval(_ratio_of_medians, times["fp32"], times["fast"])
        print(f"[bare] {name:15s} {json.dumps(results[name])}", file=sys.stderr, flush=True)
    return results, intervals


# ---- the ABN bundle's trainer against a bare loop --------------------------------------------------------


def bundle_parser(args, output_dir: Path, overrides: dict | None = None):
    """The ABN bundle's training config on BUSI at the benchmark's size and batch, with a stage's
    ``overrides``."""
    from monai.bundle import ConfigParser

    configs = REPO / "bundles" / "abn_classification" / "configs"
    parser = ConfigParser()
    parser.read_config([str(configs / "train.json"), str(REPO / "configs" / "datasets" / "busi_binary.json")])
    parser.update({
        "dataset_dir": str(args.data), "output_dir": str(output_dir), "mode": "dynamic",
        "spatial_size": [args.size, args.size], "batch_size": args.batch, "num_workers": args.num_workers,
        "max_epochs": 1 + args.epochs, "val_interval": 10**6, "resume": False, "limit": args.limit,
        "device": f"$torch.device('{args.device}')", "amp": True,
        "input_check_dir": str(output_dir.parent / "input_check"), **(overrides or {}),
    })  # fmt: skip
    return parser


def trainer_epochs(parser) -> tuple[np.ndarray, int, int]:
    """Seconds of each iteration of the bundle's trainer over all epochs after the first (data loading
    included; the epoch-end handlers count in the epoch's last iteration), its iterations per epoch and its
    loader's workers."""
    from ignite.engine import Events

    parser.get_parsed_content("initialize")  # claims the run folder, sets the seed
    trainer = parser.get_parsed_content("train#trainer")
    epochs: list[list[float]] = []
    trainer.add_event_handler(Events.EPOCH_STARTED, lambda: epochs.append([time.perf_counter()]))
    trainer.add_event_handler(Events.ITERATION_COMPLETED, lambda: epochs[-1].append(time.perf_counter()))
    # registered after the bundle's own handlers, so it fires after them: the epoch's end
    trainer.add_event_handler(Events.EPOCH_COMPLETED, lambda: epochs[-1].__setitem__(-1, time.perf_counter()))
    trainer.run()
    seconds = np.concatenate([np.diff(marks) for marks in epochs[1:]])
    return seconds, trainer.state.epoch_length, trainer.data_loader.num_workers


def bare_step(parser, device) -> BareStep:
    """One step of the bundle's network, loss, batch, fast path and optimiser on in-memory tensors, warm."""
    loss = parser.get_parsed_content("loss", instantiate=True)
    batch, size = parser.get_parsed_content("batch_size"), parser.get_parsed_content("spatial_size")
    masks = (torch.rand(batch, 1, *size, generator=torch.Generator().manual_seed(1)) > 0.8).float().to(device)
    has_mask = torch.ones(batch, dtype=torch.bool, device=device)
    step = BareStep(
        parser.get_parsed_content("network_def", instantiate=True),
        lambda output, labels: loss(output, labels, masks, has_mask)[0],
        1, True, size, batch, device, lr=parser.get_parsed_content("learning_rate"),
    )  # fmt: skip
    for _ in range(2):
        step()
    return step


def bare_loop(step: BareStep, steps: int) -> np.ndarray:
    """Seconds of each of ``steps`` calls of ``step``."""
    seconds = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        seconds.append(time.perf_counter() - start)
    return np.asarray(seconds)


def pipeline(args) -> tuple[dict, dict]:
    """Each stage of :data:`STAGES` in ``args.stages`` against the bare loop timed right after it, the
    efficiency gained from one stage to the next, and the intervals of every stage's efficiency
    (``pipeline_efficiency`` for the bundle's default)."""
    stages, intervals, step = {}, {}, None
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.stages:
            overrides, words = STAGES[name]
            parser = bundle_parser(args, Path(tmp) / name, overrides)
            trainer_seconds, iterations, workers = trainer_epochs(parser)
            step = step or bare_step(parser, torch.device(args.device))
            bare_seconds = bare_loop(step, trainer_seconds.size)
            trainer_rate, bare_rate = args.batch / trainer_seconds.mean(), args.batch / bare_seconds.mean()
            key = "pipeline_efficiency" if name == DEFAULT_STAGE else f"pipeline_efficiency_{name}"
            stages[name] = {
                "pipeline": words,
                "key": key,
                "num_workers": workers,
                "iterations_per_epoch": iterations,
                "trainer_images_per_s": round(trainer_rate, 2),
                "bare_images_per_s": round(bare_rate, 2),
                "efficiency": round(trainer_rate / bare_rate, 3),
            }
            intervals[key] = interval(_ratio_of_means, bare_seconds, trainer_seconds)
            print(f"[pipeline] {name:15s} {json.dumps(stages[name])}", file=sys.stderr, flush=True)
    names = list(stages)
    result = {
        "fast_path": step.path.describe(),
        "stages": stages,
        "steps": {
            f"{before} -> {after}": round(stages[after]["efficiency"] - stages[before]["efficiency"], 3)
            for before, after in zip(names, names[1:])
        },
    }
    if DEFAULT_STAGE in stages:
        default = stages[DEFAULT_STAGE]
        result.update({
            key: default[key]
            for key in ("iterations_per_epoch", "num_workers", "trainer_images_per_s", "bare_images_per_s")
        })  # fmt: skip
        result["pipeline_efficiency"] = default["efficiency"]
    return result, intervals


def main(argv=None) -> dict:
    from monai_xai.benchmarking import environment, load_average, warn_if_busy
    from monai_xai.utils import cpu_supports_bf16

    args = parse_args(argv)
    load_start = load_average()
    warn_if_busy(load_start, "and the ratios are unreliable")
    bare, intervals = bare_precision(args)
    report: dict = {"size": args.size, "batch": args.batch, "cpu_supports_bf16": cpu_supports_bf16()}
    if args.data.is_dir():
        flow, stage_intervals = pipeline(args)
        intervals.update(stage_intervals)
        for figures in flow["stages"].values():
            report[figures["key"]] = figures["efficiency"]
        report["pipeline"] = flow
    else:
        print(f"skipping the bundle trainer: BUSI not found at {args.data}", file=sys.stderr)
    for name, figures in bare.items():
        report[f"precision_speedup_{name}"] = figures["speedup"]
    report["bare_steps"] = bare
    report["intervals"] = intervals
    report["targets"] = TARGETS
    report["verdicts"] = {
        key: verdict(intervals[key], target) for key, target in TARGETS.items() if key in intervals
    }
    report["environment"] = environment(load_start, load_average())
    if args.out is not None or args.publish:
        write_results(report, output_path(args, PUBLISHED), publish=args.publish)
    print(json.dumps(report))
    return report


if __name__ == "__main__":
    main()
