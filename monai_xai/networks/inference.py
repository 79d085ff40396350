"""A copy of a trained network that scores images faster, within a stated tolerance of float32.

:func:`optimise_for_inference` is the inference path of the bundles (``inference.json`` through
:class:`InferenceNetwork`, evaluation, the exported model, ``explain_latency``, Deletion/Insertion). On the
CPU a plain eval-mode network spends much of each forward re-ordering convolution weights into MKL-DNN's
layout and on separate batch-norm passes: ``torch.fx`` folds batch norm into the convolutions and can keep
the weights pre-packed in MKL-DNN's layout (which the ABNs' ``features * (1 + map)`` broadcasts refuse;
they keep the folding). Besides these graph passes it tries channels-last and reduced precision (bfloat16
autocast on CPUs with native bfloat16, float16 on CUDA), and keeps the first (or the fastest) setting whose
outputs stay within an :class:`InferenceTolerance` of float32 on a calibration batch: by default class
probabilities within 0.01 and every spatial output (attention map, heatmap) correlated at least 0.99 with
float32's, per image; :meth:`InferenceTolerance.exact` (every output within ``rtol=1e-4, atol=1e-5``,
float32 only) for metrics whose curves must be the network's own, such as Deletion/Insertion. The result
says what it chose (:class:`InferenceSetting`), so that logs and benchmarks can report it.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import Any

import torch
from monai.utils import look_up_option
from torch import nn
from torch.utils._pytree import tree_leaves

from monai_xai.utils.device import autocast, reduced_precision, to_float32

__all__ = [
    "InferenceNetwork",
    "InferenceSetting",
    "InferenceTolerance",
    "OptimisedNetwork",
    "PerceptionLogits",
    "fold_batch_norm",
    "optimise_for_inference",
]

logger = logging.getLogger(__name__)

#: The element-wise tolerances of :meth:`InferenceTolerance.exact`.
RTOL, ATOL = 1e-4, 1e-5


class PerceptionLogits(nn.Module):
    """Wrap an attention branch network so that ``forward(x)`` returns its perception logits alone.

    An ABN returns a named tuple of attention logits, perception logits and map; scoring functions such as
    Deletion/Insertion want the prediction's logits only (a plain classifier can be used as it is).
    """

    def __init__(self, network: nn.Module) -> None:
        super().__init__()
        self.network = network

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.network(x).perception_logits


def _unsupported_reason(network: nn.Module) -> str | None:
    params = list(network.parameters())
    if not params:
        return "it has no parameters"
    if any(p.dtype != torch.float32 for p in params):
        return "its parameters are not float32"
    return None


#: Module attributes holding forward and backward hooks, left out of the copy.
_HOOK_ATTRIBUTES = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks")


def _eval_copy_without_hooks(network: nn.Module) -> nn.Module:
    """An eval-mode deep copy without the hooks others registered (e.g. Grad-CAM's on a layer).

    Copying a hook would copy the object it is bound to (often a wrapper holding the whole network) and
    make the copy record activations for it; ``torch.fx`` would also call the hooks with proxies.
    """
    memo = {
        id(hooks): type(hooks)()
        for module in network.modules()
        for hooks in (getattr(module, name, None) for name in _HOOK_ATTRIBUTES)
        if hooks
    }
    return copy.deepcopy(network, memo).eval()


#: The graph passes, as :class:`InferenceSetting` names them.
MKLDNN, FOLDING, NO_PASS = "MKL-DNN layout + batch-norm folding", "batch-norm folding", "no graph pass"


class _Forward(nn.Module):
    """``network(x)`` with one argument: ``torch.fx`` turns every argument of the traced forward into a
    proxy, and the ABNs' optional ``attention_map`` cannot be one."""

    def __init__(self, network: nn.Module) -> None:
        super().__init__()
        self.network = network

    def forward(self, x: torch.Tensor) -> Any:
        return self.network(x)


def fold_batch_norm(network: nn.Module) -> nn.Module:
    """An eval-mode copy of ``network`` with every batch norm that follows a convolution folded into it.

    Its outputs equal the network's up to float32 rounding; ``network`` is left untouched and its hooks
    are not copied. Raises what ``torch.fx`` raises for a network it cannot trace.

    Args:
        network: a module whose forward takes one tensor.
    """
    from torch.fx.experimental.optimization import fuse

    return fuse(_Forward(_eval_copy_without_hooks(network)), inplace=True)


def _probabilities(logits: torch.Tensor) -> torch.Tensor:
    return logits.sigmoid() if logits.shape[1] == 1 else logits.softmax(1)


def _image_correlations(reference: torch.Tensor, output: torch.Tensor) -> torch.Tensor:
    """Pearson correlation per image; an image whose reference is constant counts 1 where the output
    equals it (to 1e-3 relative) and 0 elsewhere."""
    ref, out = reference.flatten(1), output.flatten(1)
    ref_c, out_c = ref - ref.mean(1, keepdim=True), out - out.mean(1, keepdim=True)
    norm = (ref_c.square().sum(1) * out_c.square().sum(1)).sqrt()
    corr = (ref_c * out_c).sum(1) / norm.clamp_min(torch.finfo(norm.dtype).tiny)
    same = (ref - out).abs().amax(1) <= 1e-3 * (1 + ref.abs().amax(1))
    return torch.where(ref_c.abs().amax(1) > 0, corr, same.float())


@dataclass(frozen=True)
class InferenceTolerance:
    """How far from float32 an optimised copy's outputs may be on the calibration batch.

    Outputs are compared leaf by leaf (a tensor, or the fields of a named tuple, tuple or dict): (B, C)
    tensors are class logits, compared as probabilities (softmax; sigmoid for one class); tensors with
    spatial axes (attention maps, heatmaps, feature maps) by their Pearson correlation with float32's,
    image by image. With ``rtol`` set, every output must also be ``torch.allclose`` to float32's, and only
    float32 settings are tried.

    Args:
        probability: the largest absolute difference allowed in any class probability.
        map_correlation: the smallest correlation allowed for any image of any spatial output.
        rtol: the relative element-wise tolerance on every output; None: none.
        atol: the absolute element-wise tolerance beside ``rtol``.
    """

    probability: float = 0.01
    map_correlation: float = 0.99
    rtol: float | None = None
    atol: float = ATOL

    @classmethod
    def exact(cls) -> InferenceTolerance:
        """Every output equal to float32's up to rounding (``rtol=1e-4, atol=1e-5``): batch-norm folding,
        MKL-DNN's layout and channels-last, never reduced precision."""
        return cls(rtol=RTOL, atol=ATOL)

    def check(self, reference: Any, output: Any) -> tuple[float, float | None, bool]:
        """(largest probability difference, smallest per-image map correlation, or None where no output
        is spatial, whether both are within this tolerance) of ``output`` against ``reference``.

        Args:
            reference: the float32 outputs.
            output: the same network's outputs at another setting, of the same structure.
        """
        probability, correlation, close = 0.0, None, True
        for ref, out in zip(tree_leaves(reference), tree_leaves(output), strict=True):
            if not isinstance(ref, torch.Tensor) or not ref.is_floating_point():
                continue
            ref, out = ref.detach().float(), out.detach().float()
            if self.rtol is not None:
                close = close and torch.allclose(out, ref, rtol=self.rtol, atol=self.atol)
            if ref.ndim < 2:
                continue
            if ref.ndim == 2:
                diff = (_probabilities(ref) - _probabilities(out)).abs().nan_to_num(nan=float("inf"))
                probability = max(probability, float(diff.max()))
            else:
                lowest = float(_image_correlations(ref, out).nan_to_num(nan=-1.0).min())
                correlation = lowest if correlation is None else min(correlation, lowest)
        within = (
            close
            and probability <= self.probability
            and (correlation is None or correlation >= self.map_correlation)
        )
        return probability, correlation, within


def _dtype_name(dtype: torch.dtype | None) -> str:
    return "float32" if dtype is None else str(dtype).removeprefix("torch.")


@dataclass(frozen=True)
class InferenceSetting:
    """What :func:`optimise_for_inference` chose, and how far from float32 its outputs were.

    Args:
        graph: the graph pass (:data:`MKLDNN`, :data:`FOLDING` or :data:`NO_PASS`).
        dtype: the autocast dtype; None: float32.
        channels_last: whether 4D inputs and the weights use the channels-last layout.
        probability_deviation: the largest class probability difference from float32 on the calibration
            batch.
        map_correlation: the smallest per-image correlation of a spatial output with float32's there;
            None where the network has no spatial output.
        rejected: the settings tried before (or, selecting the fastest, beside) this one and why each was
            not taken.
    """

    graph: str = NO_PASS
    dtype: torch.dtype | None = None
    channels_last: bool = False
    probability_deviation: float = 0.0
    map_correlation: float | None = None
    rejected: tuple[str, ...] = ()

    def label(self) -> str:
        """The setting alone, e.g. ``"batch-norm folding, bfloat16 autocast, channels-last"``."""
        precision = "float32" if self.dtype is None else f"{_dtype_name(self.dtype)} autocast"
        return ", ".join([self.graph, precision] + (["channels-last"] if self.channels_last else []))

    def describe(self) -> str:
        """The setting and its deviation from float32, for logs and benchmark reports."""
        check = f"probabilities within {self.probability_deviation:.2g}"
        if self.map_correlation is not None:
            check += f", map correlation >= {self.map_correlation:.4f}"
        return f"{self.label()} ({check} of float32)"

    def to_dict(self) -> dict[str, Any]:
        """The fields as JSON values (the dtype by name)."""
        return {**asdict(self), "dtype": _dtype_name(self.dtype), "rejected": list(self.rejected)}


class OptimisedNetwork(nn.Module):
    """An optimised copy run as its :class:`InferenceSetting` says: inputs in its layout, the forward under
    its autocast and without gradients (MKL-DNN modules have no backward), outputs in float32.

    Args:
        module: the copy.
        setting: how it runs.
    """

    def __init__(self, module: nn.Module, setting: InferenceSetting) -> None:
        super().__init__()
        self.module = module
        self.setting = setting
        self.eval()  # an inference copy: callers such as Quantus check the mode

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> Any:
        if self.setting.channels_last and x.ndim == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        with autocast(x.device.type, self.setting.dtype):
            return to_float32(self.module(x))


#: How :func:`optimise_for_inference` picks among the settings within tolerance.
SELECTIONS = ("first", "fastest")


def _channels_last(module: nn.Module) -> nn.Module:
    return copy.deepcopy(module).to(memory_format=torch.channels_last)


def _candidates(
    source: nn.Module, calibration: torch.Tensor, rejected: list[str], float32_only: bool
) -> list[tuple[InferenceSetting, Callable[[], nn.Module]]]:
    """The settings to try, strongest first, each with a function building its copy of ``source``."""
    from torch.fx.experimental.optimization import optimize_for_inference

    device_type = calibration.device.type
    reduced = None if float32_only else reduced_precision(device_type)
    layout = calibration.ndim == 4 and any(isinstance(m, nn.Conv2d) for m in source.modules())
    try:
        graph, base = FOLDING, fold_batch_norm(source)
    except Exception as err:  # torch.fx raises many types for graphs it cannot trace
        rejected.append(f"{FOLDING}: {type(err).__name__}: {str(err).splitlines()[0]}")
        graph, base = NO_PASS, source
    found: list[tuple[InferenceSetting, Callable[[], nn.Module]]] = []
    if reduced is not None:
        reduced_copy = (lambda: _channels_last(base)) if layout else (lambda: base)
        found.append((InferenceSetting(graph, reduced, layout), reduced_copy))
    if device_type == "cpu" and graph == FOLDING:
        found.append((InferenceSetting(MKLDNN), lambda: optimize_for_inference(_Forward(source))))
    if layout:
        found.append((InferenceSetting(graph, channels_last=True), lambda: _channels_last(base)))
    if graph == FOLDING:
        found.append((InferenceSetting(graph), lambda: base))
    return found


def _seconds(module: nn.Module, x: torch.Tensor, rounds: int = 3) -> float:
    """The shortest of ``rounds`` timed forwards after one untimed."""
    sync = torch.cuda.synchronize if x.device.type == "cuda" else (lambda: None)
    module(x)
    times = []
    for _ in range(rounds):
        sync()
        start = time.perf_counter()
        module(x)
        sync()
        times.append(time.perf_counter() - start)
    return min(times)


@torch.no_grad()
def optimise_for_inference(
    network: nn.Module,
    calibration: torch.Tensor,
    tolerance: InferenceTolerance | None = None,
    select: str = "first",
) -> OptimisedNetwork:
    """A copy of ``network`` at the strongest (or fastest) setting whose outputs stay within ``tolerance``
    of float32 on ``calibration``.

    Settings, strongest first: batch norm folded with reduced precision (bfloat16 autocast on CPUs with
    native bfloat16, float16 on CUDA) and channels-last for 2D networks; on the CPU, batch norm folded
    with the weights pre-packed in MKL-DNN's layout (float32); folded and channels-last; folded; the
    network as it is (the float32 reference itself, always within tolerance). A setting that fails to
    build or run is skipped with its reason; the reasons are logged and kept in
    ``result.setting.rejected``. ``network`` is left untouched and its hooks are not copied; the copy
    runs without gradients.

    Args:
        network: a module whose forward takes one batch tensor and returns a tensor, or a named tuple,
            tuple or dict of tensors (e.g. an ABN's outputs, CenterNet's heads).
        calibration: a batch of real inputs, on the network's device.
        tolerance: the allowed deviation from float32; default :class:`InferenceTolerance`'s;
            :meth:`InferenceTolerance.exact` for float32 settings with element-wise equal outputs.
        select: ``"first"`` keeps the strongest setting within tolerance; ``"fastest"`` times every
            setting within tolerance on ``calibration`` and keeps the fastest.
    """
    select = look_up_option(select, SELECTIONS)
    tolerance = tolerance or InferenceTolerance()
    source = _eval_copy_without_hooks(network)
    with autocast(calibration.device.type, None):
        reference = source(calibration)
    rejected: list[str] = []
    reason = _unsupported_reason(network)
    if reason is not None:
        rejected.append(f"every optimised setting: {reason}")
    float32_only = tolerance.rtol is not None
    candidates = [] if reason is not None else _candidates(source, calibration, rejected, float32_only)
    accepted: list[OptimisedNetwork] = []
    for setting, build in candidates:
        try:
            module = build()
            probability, correlation, within = tolerance.check(
                reference, OptimisedNetwork(module, setting)(calibration)
            )
        except Exception as err:  # torch.fx, MKL-DNN and autocast raise many types for what they cannot run
            rejected.append(f"{setting.label()}: {type(err).__name__}: {str(err).splitlines()[0]}")
            continue
        if not within:
            found = f"probabilities within {probability:.3g}"
            if correlation is not None:
                found += f", map correlation {correlation:.4f}"
            rejected.append(f"{setting.label()}: {found}, beyond {tolerance}")
            continue
        setting = InferenceSetting(
            setting.graph, setting.dtype, setting.channels_last, probability, correlation
        )
        accepted.append(OptimisedNetwork(module, setting))
        if select == "first":
            break
    spatial = any(isinstance(t, torch.Tensor) and t.ndim > 2 for t in tree_leaves(reference))
    accepted.append(OptimisedNetwork(source, InferenceSetting(map_correlation=1.0 if spatial else None)))
    chosen = accepted[0] if select == "first" else min(accepted, key=lambda m: _seconds(m, calibration))
    if select == "fastest":
        rejected += [f"{m.setting.label()}: slower" for m in accepted if m is not chosen]
    chosen.setting = replace(chosen.setting, rejected=tuple(rejected))
    logger.info("optimise_for_inference: %s runs at %s", type(network).__name__, chosen.setting.describe())
    for line in rejected:
        logger.info("optimise_for_inference: not taken: %s", line)
    return chosen


def _state_version(network: nn.Module) -> tuple[tuple[int, int], ...]:
    """Where each weight and buffer lives and how often it was changed in place: differs once a checkpoint
    loads, an optimiser steps, batch-norm statistics update or the network moves."""
    tensors = [*network.parameters(), *network.buffers()]
    return tuple((t.data_ptr(), t._version) for t in tensors)


class InferenceNetwork(nn.Module):
    """``network``, scoring through an :func:`optimise_for_inference` copy whenever it may.

    In eval mode without gradients the first batch calibrates the copy and every batch runs through it;
    the copy is rebuilt once the network's weights change (a checkpoint loaded, a training step). It is
    built lazily because configs build the network before a handler loads its checkpoint. In training
    mode, with gradients enabled (Grad-CAM, input gradients) or with more arguments, the network itself
    runs.

    Args:
        network: the network.
        tolerance: the allowed deviation from float32; default :class:`InferenceTolerance`'s.
        select: ``"first"`` or ``"fastest"``, as :func:`optimise_for_inference` takes it.
    """

    def __init__(
        self, network: nn.Module, tolerance: InferenceTolerance | None = None, select: str = "first"
    ) -> None:
        super().__init__()
        self.network = network
        self.tolerance = tolerance
        self.select = look_up_option(select, SELECTIONS)
        # kept out of the module tree: it is derived state, not weights to save, move or train
        self._optimised: tuple[tuple, OptimisedNetwork] | None = None

    @property
    def setting(self) -> InferenceSetting | None:
        """What the current copy runs at; None before the first batch it scored."""
        return None if self._optimised is None else self._optimised[1].setting

    def forward(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        if args or kwargs or self.network.training or torch.is_grad_enabled():
            return self.network(x, *args, **kwargs)
        version = _state_version(self.network)
        if self._optimised is None or self._optimised[0] != version:
            self._optimised = (version, optimise_for_inference(self.network, x, self.tolerance, self.select))
        return self._optimised[1](x)
