"""AG-CycleGAN with one shared frozen encoder vs four separate encoder copies, side by side in one run.

(a) One training step (``AGCycleGANTrainer.train_step``: generator update through both cycles, one
    discriminator update) of the shared-encoder model (its encoder runs twice: on the stacked x/y batch and
    on the stacked translations) vs an otherwise identical model whose G_x, A_x, G_y and A_y each own a copy
    of the frozen classifier encoder and run it on their own inputs (eight runs); same weights, same batch,
    2D and 3D. Timing: after warm-up the variants alternate (A, B, A, B, ...) for ``--repeats`` rounds; the
    medians are compared.
(b) Peak memory of that step. CUDA: ``torch.cuda.max_memory_allocated`` (reset before building the model).
    CPU: each variant runs in a fresh subprocess that resets its peak resident set size (``5`` written to
    ``/proc/self/clear_refs``), builds the model and runs ``--warmup`` + 1 steps; the figure is the peak
    resident size (``VmHWM`` in ``/proc/self/status``) minus the resident size before the model was built,
    i.e. model, optimizer state, activations and workspace, as the operating system saw them.
(c) Per-image explanation latency: ``CounterfactualEvaluator.explain`` (classifier forward, one masked
    translation, classifier forward on the translation) vs Grad-CAM++ of the classifier
    (``monai_xai.visualize.CAMSaliency``), batch ``--explain-batch``, 2D.

Ratios are shared / separate (and explanation / Grad-CAM++), the time ratios with a 95 % bootstrap interval
over the interleaved rounds (each round's two timings kept together); a time target is met only where the
interval clears it, a memory ratio is one measurement. The last line printed is one JSON object; ``--out``
also writes it to a file, ``--publish`` to the bundle's results file that its README table is rendered from
(:mod:`monai_xai.experiments.agcyclegan_shared_encoder`), with the machine it ran on.

Usage::

    python scripts/benchmarks/agcyclegan_shared_encoder.py --publish      # 64x64 batch 8, 32^3 batch 2, CPU
    python scripts/benchmarks/agcyclegan_shared_encoder.py --device cuda  # CPU when CUDA is absent
    python scripts/benchmarks/agcyclegan_shared_encoder.py --quick --out /tmp/shared.json  # tiny, for tests
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from monai_xai.experiments.results import add_output_arguments, output_path, verdict, write_results

REPO = Path(__file__).resolve().parents[2]
#: the results file the AG-CycleGAN bundle's shared-encoder table is rendered from
PUBLISHED = "bundles/agcyclegan_explainer/docs/results/shared_encoder.json"
STEP_TARGET = 0.6
MEMORY_TARGET = 0.6
QUICK = {
    "size2d": 32,
    "batch2d": 2,
    "size3d": 16,
    "batch3d": 1,
    "repeats": 2,
    "warmup": 1,
    "explain_batch": 2,
}
DEFAULTS = {
    "size2d": 64,
    "batch2d": 8,
    "size3d": 32,
    "batch3d": 2,
    "repeats": 7,
    "warmup": 2,
    "explain_batch": 16,
}


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size2d", type=int, help="2D image size (64; 32 with --quick)")
    parser.add_argument("--batch2d", type=int, help="2D batch per domain (8; 2 with --quick)")
    parser.add_argument("--size3d", type=int, help="3D volume size (32; 16 with --quick)")
    parser.add_argument("--batch3d", type=int, help="3D batch per domain (2; 1 with --quick)")
    parser.add_argument("--repeats", type=int, help="timed rounds (7; 2 with --quick)")
    parser.add_argument("--warmup", type=int, help="untimed rounds first (2; 1 with --quick)")
    parser.add_argument("--explain-batch", type=int, help="images per explanation call (16; 2 with --quick)")
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda (used only when available)")
    parser.add_argument(
        "--threads", type=int, default=1, help="CPU threads (1: steady timings on a shared host)"
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes and few repeats, for smoke tests")
    parser.add_argument("--memory-child", nargs=2, metavar=("VARIANT", "DIMS"), help=argparse.SUPPRESS)
    add_output_arguments(parser, published=PUBLISHED)
    args = parser.parse_args(argv)
    if args.quick and (
        args.publish or (args.out is not None and args.out.resolve().is_relative_to(REPO / "bundles"))
    ):
        parser.error("a --quick run is a smoke test: write it elsewhere than the docs' results (--out)")
    for key, value in (QUICK if args.quick else DEFAULTS).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    return args


def separate_encoders_gan():
    """The comparison model: each decoder owns and runs its own copy of the frozen encoder."""
    from torch import nn

    from monai_xai.networks.nets import AGCycleGAN
    from monai_xai.networks.nets.agcyclegan import Translation, to_classifier_range

    class SeparateEncodersAGCycleGAN(AGCycleGAN):
        def __init__(self, classifier, **kwargs):
            super().__init__(classifier, **kwargs)
            encoder = self.encoder
            del self.encoder
            self.encoders = nn.ModuleDict(
                {name: type(encoder)(classifier, len(encoder.stages)) for name in self.decoders}
            )

        def translate(self, images, source):
            suffix = "xy"[source]
            scaled = to_classifier_range(images)
            generated = self.decoders[f"g_{suffix}"](self.encoders[f"g_{suffix}"](scaled), images)
            attention = self.decoders[f"a_{suffix}"](self.encoders[f"a_{suffix}"](scaled), images)
            return Translation(attention * generated + (1.0 - attention) * images, attention, generated)

        def _translate_both(self, x, y):
            return self.translate(x, 0), self.translate(y, 1)

    return SeparateEncodersAGCycleGAN


def build(variant: str, dims: int, device: torch.device):
    """Classifier, GAN of ``variant`` ("shared" or "separate") and its trainer; seeded, so both match."""
    from monai_xai.engines import AGCycleGANTrainer
    from monai_xai.losses import get_gan_loss
    from monai_xai.networks.nets import AGCycleGAN, LeakyResNetClassifier, PatchDiscriminator

    torch.manual_seed(0)
    classifier = LeakyResNetClassifier(spatial_dims=dims)
    gan_type = AGCycleGAN if variant == "shared" else separate_encoders_gan()
    torch.manual_seed(1)
    gan = gan_type(classifier, spatial_dims=dims).to(device)
    d_x, d_y = PatchDiscriminator(dims).to(device), PatchDiscriminator(dims).to(device)
    trainer = AGCycleGANTrainer(
        device,
        1,
        [],
        gan,
        d_x,
        d_y,
        torch.optim.Adam(gan.generator_parameters(), lr=2e-4),
        torch.optim.Adam([*d_x.parameters(), *d_y.parameters()], lr=2e-4),
        get_gan_loss("lsgan"),
    )
    return classifier.to(device), gan, trainer


def batch(dims: int, size: int, n: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(2)
    shape = (n, 1, *([size] * dims))
    return torch.rand(shape, generator=generator).to(device), torch.rand(shape, generator=generator).to(
        device
    )


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def interleaved_medians(
    fns: dict[str, Callable[[], object]], repeats: int, warmup: int, device: torch.device
) -> dict[str, list[float]]:
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            _sync(device)
            start = time.perf_counter()
            fn()
            _sync(device)
            times[name].append(time.perf_counter() - start)
    return times


def _status_bytes(field: str) -> int:
    """A ``/proc/self/status`` memory field (``VmRSS``, ``VmHWM``) in bytes."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"/proc/self/status has no {field}: peak memory needs Linux")


def memory_child(variant: str, dims: int, args: argparse.Namespace) -> None:
    """Fresh process: peak RSS increase of building ``variant`` and running its steps (CPU only)."""
    device = torch.device("cpu")
    size, n = (args.size2d, args.batch2d) if dims == 2 else (args.size3d, args.batch3d)
    x, y = batch(dims, size, n, device)
    import monai_xai.engines  # noqa: F401, E401 (imports are not the model)

    separate_encoders_gan()
    baseline = _status_bytes("VmRSS")
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset the peak (VmHWM) to the current resident size
    _, _, trainer = build(variant, dims, device)
    for _ in range(args.warmup + 1):
        trainer.train_step(x, y)
    print(json.dumps({"peak_bytes": _status_bytes("VmHWM") - baseline}))


def peak_memory(variant: str, dims: int, args: argparse.Namespace, device: torch.device) -> int:
    if device.type == "cuda":
        size, n = (args.size2d, args.batch2d) if dims == 2 else (args.size3d, args.batch3d)
        x, y = batch(dims, size, n, device)
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        _, _, trainer = build(variant, dims, device)
        for _ in range(args.warmup + 1):
            trainer.train_step(x, y)
        peak = torch.cuda.max_memory_allocated() - base
        del trainer
        return peak
    command = [sys.executable, os.path.abspath(__file__), "--memory-child", variant, str(dims)]
    command += [
        f"--{k.replace('_', '-')}={getattr(args, k)}" for k in ("size2d", "batch2d", "size3d", "batch3d")
    ]
    command += [f"--warmup={args.warmup}", f"--threads={args.threads}"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([os.getcwd(), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run(command, capture_output=True, text=True, check=True, env=env)
    return int(json.loads(proc.stdout.strip().splitlines()[-1])["peak_bytes"])


def explanation_latency(args: argparse.Namespace, device: torch.device) -> dict[str, object]:
    from monai_xai.benchmarking import ratio_interval
    from monai_xai.engines import CounterfactualEvaluator
    from monai_xai.visualize import CAMSaliency

    classifier, gan, _ = build("shared", 2, device)
    classifier.eval()
    evaluator = CounterfactualEvaluator(device=device, val_data_loader=[], network=classifier, gan=gan)
    cam = CAMSaliency(classifier, "gradcampp")
    images = batch(2, args.size2d, args.explain_batch, device)[0]
    times = interleaved_medians(
        {"agcyclegan": lambda: evaluator.explain(classifier, images), "gradcampp": lambda: cam(images)},
        args.repeats,
        args.warmup,
        device,
    )
    per_image = {name: statistics.median(t) / args.explain_batch for name, t in times.items()}
    return {
        "latency_per_image_s_agcyclegan": per_image["agcyclegan"],
        "latency_per_image_s_gradcampp": per_image["gradcampp"],
        "latency_ratio_vs_gradcampp": ratio_interval(times["agcyclegan"], times["gradcampp"]),
    }


def main(argv: Sequence[str] | None = None) -> int:
    from monai_xai.benchmarking import environment, load_average, ratio_interval

    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.memory_child:
        memory_child(args.memory_child[0], int(args.memory_child[1]), args)
        return 0
    device = torch.device(args.device if args.device != "cuda" or torch.cuda.is_available() else "cpu")
    memory_method = (
        "torch.cuda.max_memory_allocated"
        if device.type == "cuda"
        else "peak RSS (VmHWM, reset via /proc/self/clear_refs) minus RSS before the model is built, "
        "fresh subprocess per variant"
    )
    print(f"device {device}, threads {args.threads}, memory measured as: {memory_method}", flush=True)
    load_start = load_average()
    result: dict[str, object] = {"device": str(device), "memory_method": memory_method}
    for dims, size, n in ((2, args.size2d, args.batch2d), (3, args.size3d, args.batch3d)):
        models = {variant: build(variant, dims, device)[2] for variant in ("shared", "separate")}
        x, y = batch(dims, size, n, device)
        times = interleaved_medians(
            {name: (lambda t=trainer, x=x, y=y: t.train_step(x, y)) for name, trainer in models.items()},
            args.repeats,
            args.warmup,
            device,
        )
        del models
        medians = {name: statistics.median(t) for name, t in times.items()}
        memory = {variant: peak_memory(variant, dims, args, device) for variant in ("shared", "separate")}
        tag = f"{dims}d"
        step_ratio = ratio_interval(times["shared"], times["separate"])
        result.update(
            {
                f"step_time_ratio_{tag}": step_ratio,
                f"peak_mem_ratio_{tag}": memory["shared"] / memory["separate"],
                f"step_s_shared_{tag}": medians["shared"],
                f"step_s_separate_{tag}": medians["separate"],
                f"peak_mib_shared_{tag}": memory["shared"] / 2**20,
                f"peak_mib_separate_{tag}": memory["separate"] / 2**20,
                f"input_{tag}": [n, 1, *([size] * dims)],
            }
        )
        print(
            f"{tag}: step {medians['shared']:.3f}s shared vs {medians['separate']:.3f}s separate "
            f"(ratio {step_ratio['mean']:.2f}); peak memory "
            f"{memory['shared'] / 2**20:.0f} MiB vs {memory['separate'] / 2**20:.0f} MiB "
            f"(ratio {result[f'peak_mem_ratio_{tag}']:.2f})",
            flush=True,
        )
    result.update(explanation_latency(args, device))
    print(
        f"explanation {result['latency_per_image_s_agcyclegan'] * 1e3:.1f} ms/image vs Grad-CAM++ "
        f"{result['latency_per_image_s_gradcampp'] * 1e3:.1f} ms/image",
        flush=True,
    )
    result["targets"] = {"step_time_ratio": STEP_TARGET, "peak_mem_ratio": MEMORY_TARGET}
    result["verdicts"] = {
        **{
            f"step_time_ratio_{d}": verdict(
                result[f"step_time_ratio_{d}"], STEP_TARGET, higher_is_better=False
            )
            for d in ("2d", "3d")
        },
        **{
            f"peak_mem_ratio_{d}": "met (one run)"
            if result[f"peak_mem_ratio_{d}"] <= MEMORY_TARGET
            else "missed"
            for d in ("2d", "3d")
        },
    }
    result["targets_met"] = all(v.startswith("met") for v in result["verdicts"].values())
    result.update(
        {
            "repeats": args.repeats,
            "warmup": args.warmup,
            "environment": environment(load_start, load_average()),
        }
    )
    if args.out is not None or args.publish:
        write_results(result, output_path(args, PUBLISHED), publish=args.publish)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
