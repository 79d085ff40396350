"""A copy of a trained classifier that scores images faster on the CPU, for metrics that run many forwards.

Deletion/Insertion sends ``steps + 1`` perturbed copies of every image through the network. On the CPU a
plain eval-mode network spends much of each forward re-ordering convolution weights into MKL-DNN's layout
and on separate batch-norm passes. ``torch.fx``'s ``optimize_for_inference`` traces the network, folds batch
norm into the convolutions and keeps the weights pre-packed in MKL-DNN's layout; on ResNet18 at 64x64 that
made batched forwards about 1.6x faster here with logits equal to 2e-7
(``scripts/benchmarks/deletion_insertion.py`` reports it next to the plain network). Where that pass does
not apply (the ABNs' ``features * (1 + map)`` broadcasts, which MKL-DNN's multiply refuses), batch norm is
still folded; a network ``torch.fx`` cannot trace is used as it is.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable

import torch
from torch import nn

__all__ = ["PerceptionLogits", "inference_optimised"]

logger = logging.getLogger(__name__)

#: Tolerances within which an optimised copy must reproduce the network's outputs on the example.
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
    if any(p.device.type != "cpu" for p in params):
        return "it is not on the CPU (the passes are CPU-only)"
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


def _passes() -> list[tuple[str, Callable[[nn.Module], nn.Module]]]:
    from torch.fx.experimental.optimization import fuse, optimize_for_inference

    return [("MKL-DNN layout + batch-norm folding", optimize_for_inference), ("batch-norm folding", fuse)]


@torch.no_grad()
def inference_optimised(network: nn.Module, example: torch.Tensor) -> nn.Module:
    """An eval-mode copy of ``network`` that returns the same outputs faster on the CPU.

    Tries the passes from the strongest down and keeps the first whose copy runs on ``example`` (a batch
    of real inputs) and reproduces the network's output there within ``rtol=1e-4, atol=1e-5``. When none
    does, or the network is off the CPU or not float32, ``network`` itself is returned (put it in eval
    mode first) and the reason is logged, so callers can always use the result. ``network`` is left
    untouched; hooks registered on it are not carried into the copy. The copy runs under
    ``torch.no_grad`` only: its MKL-DNN modules have no backward.
    """
    reason = _unsupported_reason(network)
    if reason is not None:
        logger.info("inference_optimised: using %s as it is: %s", type(network).__name__, reason)
        return network
    source = _eval_copy_without_hooks(network)
    expected = source(example)
    failures = []
    for name, optimise in _passes():
        try:
            optimised = optimise(source)  # both passes copy the module they are given
            matches = torch.allclose(optimised(example), expected, rtol=RTOL, atol=ATOL)
        except Exception as err:  # torch.fx and MKL-DNN raise many types for graphs they cannot handle
            failures.append(f"{name}: {type(err).__name__}: {str(err).splitlines()[0]}")
            continue
        if matches:
            logger.debug("inference_optimised: %s applied to %s", name, type(network).__name__)
            return optimised
        failures.append(f"{name}: outputs differ beyond rtol={RTOL}, atol={ATOL}")
    logger.info("inference_optimised: using %s as it is (%s)", type(network).__name__, "; ".join(failures))
    return network
