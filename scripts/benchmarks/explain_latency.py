"""Latency of ABN's built-in explanation and training step next to a plain ResNet with Grad-CAM++.

Two side-by-side measurements in one run, on the same backbone and input size:

(a) explain: ABN prediction + attention map (one eval-mode forward without gradients plus
    ``upsample_attention`` to the input size) vs ``monai.visualize.GradCAMpp`` calls on a plain
    ``ResNetClassifier`` (target layer "layer4", ``class_idx=None``; its forward gives the prediction too),
    at each batch size of ``--batch-sizes``. Two Grad-CAM++ baselines: the reference, "head-grad", whose
    backward pass goes no further than the output of ``layer4`` (the fastest exact Grad-CAM++), and one that
    back-propagates into every weight, as a trained model loaded for explanation does unless frozen. The
    explain targets are judged against the reference (``explain_ratio_b<batch>_vs_headgrad``); the ratios to
    the other (``explain_ratio_b<batch>``) are reported beside them.

    Each contender runs at its own fastest setting whose prediction and map stay within the same tolerance
    of float32 (``monai_xai.networks.InferenceTolerance``: probabilities within 0.01, map correlation
    >= 0.99 per image), chosen on the timed batch before the rounds: the ABNs through
    ``monai_xai.networks.optimise_for_inference`` (batch norm folded, channels-last, reduced precision
    where it holds) against their own float32 outputs; the Grad-CAM++ contenders against the float32
    Grad-CAM++ map and prediction, the one on every weight under the device's autocast and channels-last
    or in float32, the head-grad one either with the forward up to ``layer4`` on an optimised copy without
    gradients and only the head (average pool, fc) under autograd, or with every weight frozen but
    ``layer4``'s last batch norm, in float32. ``tolerance_checks`` in the JSON gives, per contender and
    batch, the setting taken, its deviation and the settings not taken;
(b) one training step (forward, loss, backward, AdamW step) of ABN in "dynamic" mode with a teacher mask vs a
    plain ResNet with cross-entropy, batch ``--train-batch``.

Each ABN architecture of ``--architectures`` (default: the full ``abn``; ``abn_narrow``, whose attention
branch has layer4's depth at layer3's width; ``abn_compact``, one block at layer3's width) is a contender in
the same interleaved rounds. The keys without a suffix (``explain_ratio_b1``, ``train_step_ratio``, ...) are
the first architecture's; the others' carry its name as a suffix (``train_step_ratio_abn_narrow``).

After warm-up the contenders alternate (A, B, C, A, B, C, ...) for ``--repeats`` rounds and the medians are
compared, so machine noise hits all alike. Ratios are ABN time / baseline time; each has a 95 % bootstrap
interval over the rounds (a round's times resampled together), and a target is met only where the whole
interval lies below it (``verdicts``). The last line printed is one JSON object (ratios, intervals, medians,
settings, targets and verdicts); ``--out`` or ``--publish`` also write it as the results file the docs' table
is rendered from (``python -m monai_xai.experiments explain_latency``).

Grad-CAM++ notes:

* MONAI 1.6's ``GradCAMpp`` only works at batch 1: it scales the (B, C, *spatial) gradients by the class
  score without reshaping it (and with ``class_idx=None`` the score is a (B, B) matrix), so any batch > 1
  raises a shape error. Batch 1 uses MONAI's class unchanged; larger batches use ``GradCAMpp`` over
  ``monai_xai.visualize.batch_score_hooks`` (each sample scored by its own predicted class), which
  gives, per sample, the same map as a batch-1 call (tests/unit/scripts/test_explain_latency_script.py
  checks it).
* Freezing the weights changes no map (tests/unit/scripts/test_explain_latency_script.py checks it): the
  gradient Grad-CAM++ reads at the output of ``layer4`` does not depend on which weights take gradients.

Run it on an idle machine: with default threads, another busy process makes OpenMP threads spin-wait and
slows each step many times over, unevenly. The JSON records the load average at start and end, and the
minimum times next to the medians.

Usage::

    python scripts/benchmarks/explain_latency.py                   # 224x224 resnet18, batch 1 and 16, CPU
    python scripts/benchmarks/explain_latency.py --repeats 30 --warmup 5 --batch-sizes 1,8,16
    python scripts/benchmarks/explain_latency.py --device cuda     # falls back to CPU when CUDA is absent
    python scripts/benchmarks/explain_latency.py --quick           # tiny sizes, seconds (for tests)
    python scripts/benchmarks/explain_latency.py --repeats 12 --publish   # the docs' results file
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from monai_xai.experiments.results import add_output_arguments, output_path, verdict, write_results

PUBLISHED = "bundles/abn_classification/docs/results/explain_latency.json"
EXPLAIN_TARGET = 1.0
TRAIN_TARGET = 1.3
#: the Grad-CAM++ the explain targets are judged against: frozen weights, gradient to layer4's last norm only
REFERENCE = "gradcampp_headgrad"
N_BOOT = 2000

#: Settings of --quick; explicit arguments still win.
QUICK = {"size": 32, "repeats": 2, "warmup": 1, "batch_sizes": "1,16", "train_batch": 2}
DEFAULTS = {"size": 224, "repeats": 20, "warmup": 2, "batch_sizes": "1,16", "train_batch": 16}


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", type=int, help="input height = width (default 224; 32 with --quick)")
    parser.add_argument("--backbone", default="resnet18", help="resnet18, resnet34 or resnet50")
    parser.add_argument(
        "--architectures",
        default="abn,abn_narrow,abn_compact",
        help="ABN variants to time, comma separated; the first one gives the unsuffixed keys",
    )
    parser.add_argument("--in-channels", type=int, default=1)
    parser.add_argument("--num-classes", type=int, default=2)
    parser.add_argument("--repeats", type=int, help="timed rounds per comparison (20; 2 with --quick)")
    parser.add_argument("--warmup", type=int, help="untimed rounds first (2; 1 with --quick)")
    parser.add_argument("--batch-sizes", help="explain batch sizes, comma separated (1,16)")
    parser.add_argument("--train-batch", type=int, help="training-step batch size (16; 2 with --quick)")
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda (used only when available)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="tiny sizes and few repeats, for smoke tests")
    add_output_arguments(parser, published=PUBLISHED)
    args = parser.parse_args(argv)
    preset = QUICK if args.quick else DEFAULTS
    for key, value in preset.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    args.batch_sizes = [int(b) for b in str(args.batch_sizes).split(",") if b.strip()]
    args.architectures = [a.strip() for a in args.architectures.split(",") if a.strip()]
    from monai_xai.networks.factory import ABN_ARCHITECTURES

    unknown = sorted(set(args.architectures) - set(ABN_ARCHITECTURES))
    if not args.architectures or unknown:
        parser.error(f"--architectures: unknown {unknown}; valid: {', '.join(ABN_ARCHITECTURES)}")
    if not args.batch_sizes or min(args.batch_sizes) < 1 or args.train_batch < 1:
        parser.error("batch sizes must be positive integers")
    if args.repeats < 1 or args.warmup < 0 or args.size < 32:
        parser.error("need --repeats >= 1, --warmup >= 0 and --size >= 32")
    return args


def interleaved_times(
    contenders: dict[str, Callable[[], Any]], repeats: int, warmup: int, sync: Callable[[], None]
) -> dict[str, list[float]]:
    """Wall times in ms of each contender, run in turn (A, B, A, B, ...) for ``repeats`` rounds after
    ``warmup`` untimed rounds."""
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for round_index in range(warmup + repeats):
        for name, fn in contenders.items():
            sync()
            start = time.perf_counter()
            fn()
            sync()
            if round_index >= warmup:
                times[name].append((time.perf_counter() - start) * 1000.0)
    return times


def interleaved_medians(
    contenders: dict[str, Callable[[], Any]], repeats: int, warmup: int, sync: Callable[[], None]
) -> dict[str, float]:
    """Median wall time in ms of each contender, timed by :func:`interleaved_times`."""
    times = interleaved_times(contenders, repeats, warmup, sync)
    return {name: statistics.median(values) for name, values in times.items()}


def make_gradcampp(network: Any, batch_size: int, target_layer: str = "layer4") -> Any:
    """MONAI's ``GradCAMpp`` as shipped for batch 1; for larger batches the same class over
    ``monai_xai.visualize.batch_score_hooks``, which scores each sample by its own class (stock
    MONAI fails there). Hooks are registered once, here."""
    from monai.visualize import GradCAMpp

    from monai_xai.visualize import batch_score_hooks

    hooked = network if batch_size == 1 else batch_score_hooks(network, target_layer)
    return GradCAMpp(nn_module=hooked, target_layers=target_layer)


def freeze_all_but_head(network: Any) -> Any:
    """Keep ``requires_grad`` only on the last batch norm of ``layer4``: Grad-CAM then back-propagates no
    further than that, and the gradient it reads at the output of ``layer4`` is unchanged."""
    from torch import nn

    norms = [m for m in network.layer4.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    network.requires_grad_(False)
    norms[-1].requires_grad_(True)
    return network


def head_grad_network(trunk: Any, network: Any) -> Any:
    """``network`` with its features up to ``layer4`` from ``trunk`` without gradients and only the head
    (average pool, fc; frozen) under autograd, after an identity named ``layer4`` where Grad-CAM hooks:
    the gradient there is the one Grad-CAM reads at the output of ``network.layer4``."""
    import torch
    from torch import nn

    class HeadGrad(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.trunk = trunk
            self.layer4 = nn.Identity()
            self.avgpool = copy.deepcopy(network.avgpool)
            self.fc = copy.deepcopy(network.fc).requires_grad_(False)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            with torch.no_grad():
                features = self.trunk(x)
            return self.fc(torch.flatten(self.avgpool(self.layer4(features.requires_grad_())), 1))

    return HeadGrad()


def trunk_of(network: Any) -> Any:
    """The stem and ``layer1``..``layer4`` of a ResNet (its own modules), the part before the head."""
    from torch import nn

    from monai_xai.networks.nets import resnet_feature_stages

    return nn.Sequential(*resnet_feature_stages(network, 3))


#: a candidate setting of a Grad-CAM++ contender: (explain: the map, predict: the logits)
Candidate = tuple[Callable[[], Any], Callable[[], Any]]


def fastest_within(
    candidates: dict[str, Candidate],
    reference: tuple[Any, Any],
    tolerance: Any,
    sync: Callable[[], None],
    repeats: int = 3,
) -> tuple[Callable[[], Any], dict[str, Any]]:
    """The fastest candidate (median of ``repeats`` interleaved rounds after one) whose prediction and map
    stay within ``tolerance`` of ``reference`` (the float32 logits and map), with its check: the setting,
    its deviation, and the others and why not."""
    passed, rejected = {}, []
    for label, (explain, predict) in candidates.items():
        probability, correlation, within = tolerance.check(reference, (predict(), explain()))
        if within:
            passed[label] = (explain, probability, correlation)
        else:
            rejected.append(f"{label}: probabilities within {probability:.3g}, map correlation {correlation}")
    if not passed:
        raise RuntimeError(f"no setting within {tolerance}: {'; '.join(rejected)}")
    times = interleaved_medians({k: v[0] for k, v in passed.items()}, repeats=repeats, warmup=1, sync=sync)
    best = min(times, key=times.__getitem__)
    rejected += [f"{label}: slower" for label in passed if label != best]
    _, probability, correlation = passed[best]
    return passed[best][0], check_entry(best, probability, correlation, rejected)


def check_entry(
    setting: str, probability: float, correlation: float | None, rejected: Sequence[str]
) -> dict[str, Any]:
    """One contender's tolerance check as the JSON reports it."""
    return {
        "setting": setting,
        "probability_deviation": probability,
        "map_correlation": correlation,
        "within_tolerance": True,
        "rejected": list(rejected),
    }


def teacher_masks(batch: int, size: int, device: Any) -> Any:
    """A centred disk of radius size/3 per sample: a stand-in for an organ mask."""
    import torch

    coords = torch.arange(size, device=device, dtype=torch.float32) - (size - 1) / 2
    disk = (coords.view(-1, 1) ** 2 + coords.view(1, -1) ** 2) <= (size / 3) ** 2
    return disk.float().expand(batch, 1, size, size).contiguous()


def _fmt_row(
    label: str, abn_name: str, abn_ms: float, base_name: str, base_ms: float, judged: str | None
) -> str:
    """One console line; ``judged`` is the target and its verdict, None for a ratio that is not judged."""
    return (
        f"{label:<14} {abn_name:<11} {abn_ms:9.1f} ms | {base_name:<19} {base_ms:9.1f} ms | "
        f"ratio {abn_ms / base_ms:5.2f} {judged or '(not judged)'}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)

    import warnings

    import monai
    import torch

    from monai_xai.benchmarking import environment, load_average, ratio_interval, warn_if_busy
    from monai_xai.engines.precision import FastPath
    from monai_xai.losses import get_classifier_loss
    from monai_xai.networks import InferenceTolerance, optimise_for_inference
    from monai_xai.networks.factory import get_classifier
    from monai_xai.utils import upsample_attention

    requested = args.device
    if requested.startswith("cuda") and not torch.cuda.is_available():
        print(
            f"warning: --device {requested} asked for, but CUDA is not available: using cpu", file=sys.stderr
        )
        requested = "cpu"
    device = torch.device(requested)
    sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)
    torch.manual_seed(args.seed)
    # The head-grad baseline's layer4 input needs no gradient: PyTorch notes that the hook fires on outputs.
    warnings.filterwarnings("ignore", message="Full backward hook is firing")
    load = load_average()
    if device.type == "cpu":
        warn_if_busy(load, "threads and can slow both contenders unevenly (OpenMP threads spin-wait)")
    net_kwargs = {"backbone": args.backbone, "in_channels": args.in_channels, "num_classes": args.num_classes}
    size, n_classes = args.size, args.num_classes
    t_start = time.perf_counter()

    print(
        f"explain_latency: {args.backbone}, {args.in_channels} channel(s), {n_classes} classes, "
        f"{size}x{size}, device {device}, torch {torch.__version__} ({torch.get_num_threads()} threads), "
        f"monai {monai.__version__}, {args.warmup} warm-up + {args.repeats} interleaved repeats, medians"
    )

    # (a) explain: ABN forward + upsampled map vs a Grad-CAM++ call, frozen weights (reference) or not.
    architectures = args.architectures
    abns = {a: get_classifier("dynamic", architecture=a, **net_kwargs) for a in architectures}
    abns = {a: net.to(device).eval() for a, net in abns.items()}
    baseline = get_classifier("baseline", **net_kwargs).to(device).eval()
    head_grad = freeze_all_but_head(copy.deepcopy(baseline))

    def suffix(architecture: str) -> str:
        return "" if architecture == architectures[0] else f"_{architecture}"

    def abn_explain(abn: torch.nn.Module, x: torch.Tensor) -> Callable[[], Any]:
        def run() -> Any:
            with torch.no_grad():
                out = abn(x)
                return out.perception_logits, upsample_attention(out.attention_map, x.shape[2:])

        return run

    def cam_explain(cam: Any, x: torch.Tensor) -> Callable[[], Any]:
        return lambda: cam(x)  # class_idx=None: each image's predicted class

    def predict(network: torch.nn.Module, x: torch.Tensor, path: FastPath | None = None) -> Callable[[], Any]:
        def run() -> Any:
            with torch.no_grad():
                return network(x) if path is None else path.forward(network, x)

        return run

    def every_weight_candidates(batch: int, x: torch.Tensor) -> dict[str, Candidate]:
        """Grad-CAM++ on every weight under the device's autocast and channels-last, or in float32."""
        paths = [
            FastPath.resolve(True, device, baseline),
            FastPath(device.type, None, True),
            FastPath(device.type),
        ]
        found = {}
        for path in paths:
            net = copy.deepcopy(baseline)
            path.prepare_network(net)
            cam, x_in = make_gradcampp(net, batch), path.prepare_input(x)
            found[path.describe()] = (lambda c=cam, p=path, i=x_in: p.forward(c, i), predict(net, x_in, path))
        return found

    def head_grad_candidates(batch: int, x: torch.Tensor) -> dict[str, Candidate]:
        """Grad-CAM++ with the forward to ``layer4`` on an optimised copy, or on frozen weights (float32)."""
        trunk = optimise_for_inference(trunk_of(baseline), x, tolerance, select="fastest")
        fast = head_grad_network(trunk, baseline)
        frozen = copy.deepcopy(head_grad)
        label = f"layer4 output from a copy at {trunk.setting.label()}, head with autograd"
        return {
            label: (cam_explain(make_gradcampp(fast, batch), x), predict(fast, x)),
            "every weight frozen but layer4's last batch norm, float32": (
                cam_explain(make_gradcampp(frozen, batch), x),
                predict(frozen, x),
            ),
        }

    medians: dict[str, float] = {}
    mins: dict[str, float] = {}
    ratios: dict[str, float] = {}
    intervals: dict[str, dict[str, Any]] = {}
    verdicts: dict[str, dict[str, str]] = {a: {} for a in architectures}
    rows: list[str] = []
    tolerance = InferenceTolerance()
    checks: dict[str, dict[str, Any]] = {}

    def measure(prefix: str, contenders: dict[str, Callable[[], Any]]) -> dict[str, list[float]]:
        times = interleaved_times(contenders, args.repeats, args.warmup, sync)
        for name, values in times.items():
            medians[f"{prefix}_{name}"] = statistics.median(values)
            mins[f"{prefix}_{name}"] = min(values)
        return times

    def compare(
        key: str, a: str, times: dict[str, list[float]], baseline_name: str, target: float | None
    ) -> str:
        """Ratio ``key`` of ``a`` to ``baseline_name``; its verdict when judged against ``target``."""
        ratios[key] = statistics.median(times[a]) / statistics.median(times[baseline_name])
        intervals[key] = ratio_interval(times[a], times[baseline_name], N_BOOT)
        if target is None:
            return ""
        verdicts[a][key] = verdict(intervals[key], target, higher_is_better=False)
        return f"(target <= {target}) {verdicts[a][key]}"

    for batch in args.batch_sizes:
        x = torch.randn(batch, args.in_channels, size, size, device=device)
        # The float32 prediction and Grad-CAM++ map every Grad-CAM++ setting must stay close to.
        reference = (predict(baseline, x)(), make_gradcampp(copy.deepcopy(baseline), batch)(x))
        # Each contender at its fastest setting within tolerance, with one CAM object (and one network copy,
        # so hooks never stack up) per batch size, chosen and built untimed.
        contenders = {}
        for a in architectures:
            optimised = optimise_for_inference(abns[a], x, tolerance, select="fastest")
            contenders[a] = abn_explain(optimised, x)
            s = optimised.setting
            checks[f"explain_b{batch}_{a}"] = check_entry(
                s.label(), s.probability_deviation, s.map_correlation, s.rejected
            )
        for name, candidates in (
            ("gradcampp", every_weight_candidates(batch, x)),
            (REFERENCE, head_grad_candidates(batch, x)),
        ):
            contenders[name], checks[f"explain_b{batch}_{name}"] = fastest_within(
                candidates, reference, tolerance, sync, repeats=min(3, args.repeats)
            )
        for name in contenders:
            rows.append(f"setting b={batch} {name:<19} {checks[f'explain_b{batch}_{name}']['setting']}")
        times = measure(f"explain_b{batch}", contenders)
        got = {name: statistics.median(values) for name, values in times.items()}
        for a in architectures:
            judged = compare(
                f"explain_ratio_b{batch}_vs_headgrad{suffix(a)}", a, times, REFERENCE, EXPLAIN_TARGET
            )
            rows.append(
                _fmt_row(f"explain b={batch}", a, got[a], "GradCAM++ head-grad", got[REFERENCE], judged)
            )
            compare(f"explain_ratio_b{batch}{suffix(a)}", a, times, "gradcampp", None)
            rows.append(_fmt_row("", a, got[a], "GradCAM++ all weights", got["gradcampp"], None))
        contenders.clear()  # frees this batch size's network copies

    # (b) one training step: ABN "dynamic" with a teacher mask vs plain ResNet with cross-entropy.
    batch = args.train_batch
    x = torch.randn(batch, args.in_channels, size, size, device=device)
    y = torch.randint(0, n_classes, (batch,), device=device)
    mask = teacher_masks(batch, size, device)

    def train_step(mode: str, architecture: str = "abn") -> Callable[[], Any]:
        net = get_classifier(mode, architecture=architecture, **net_kwargs).to(device).train()
        loss_fn = get_classifier_loss(mode)
        optimizer = torch.optim.AdamW(net.parameters(), lr=1e-4)

        def run() -> None:
            optimizer.zero_grad(set_to_none=True)
            loss, _ = loss_fn(net(x), y, mask)
            loss.backward()
            optimizer.step()

        return run

    contenders = {a: train_step("dynamic", a) for a in architectures}
    contenders["resnet"] = train_step("baseline")
    times = measure(f"train_b{batch}", contenders)
    got = {name: statistics.median(values) for name, values in times.items()}
    for a in architectures:
        judged = compare(f"train_step_ratio{suffix(a)}", a, times, "resnet", TRAIN_TARGET)
        rows.append(_fmt_row(f"train b={batch}", a, got[a], "ResNet + CE", got["resnet"], judged))

    print("\n".join(rows))
    elapsed = time.perf_counter() - t_start
    load_end = load_average()
    print(f"total {elapsed:.1f} s; 1-min load average {load:.1f} at start, {load_end:.1f} at end")
    result = {
        **{k: round(v, 4) for k, v in ratios.items()},
        "intervals": intervals,
        "reference": REFERENCE,
        "tolerance": {"probability": tolerance.probability, "map_correlation": tolerance.map_correlation},
        "tolerance_checks": checks,
        "all_within_tolerance": all(c["within_tolerance"] for c in checks.values()),
        "verdicts": verdicts,
        "all_targets_met": {a: all(v == "met" for v in found.values()) for a, found in verdicts.items()},
        "targets": {"explain_ratio_max": EXPLAIN_TARGET, "train_step_ratio_max": TRAIN_TARGET},
        "medians_ms": {k: round(v, 3) for k, v in medians.items()},
        "mins_ms": {k: round(v, 3) for k, v in mins.items()},
        "settings": {
            "backbone": args.backbone,
            "architectures": architectures,
            "in_channels": args.in_channels,
            "num_classes": n_classes,
            "size": size,
            "batch_sizes": args.batch_sizes,
            "train_batch": args.train_batch,
            "repeats": args.repeats,
            "warmup": args.warmup,
            "device": str(device),
            "device_requested": args.device,
            **environment(load, load_end),
            "quick": args.quick,
            "abn_loss_mode": "dynamic",
            "optimizer": "AdamW",
            "gradcampp_target_layer": "layer4",
        },
        "elapsed_s": round(elapsed, 1),
    }
    print(json.dumps(result))
    if args.out is not None or args.publish:
        write_results(result, output_path(args, PUBLISHED), publish=args.publish)
    return 0


if __name__ == "__main__":
    sys.exit(main())
