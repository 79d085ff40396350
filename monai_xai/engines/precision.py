"""The fast path a step runs on, resolved per device: reduced-precision autocast and channels-last layout.

``amp=True`` asks for the fastest safe setting the device has: on CUDA float16 autocast with a gradient
scaler (MONAI's own mixed-precision path), on a CPU whose oneDNN kernels support bfloat16 (AVX-512 BF16
or AMX) bfloat16 autocast, on other CPUs float32, where emulated bfloat16 would be many times slower.
2D convolutional networks and their 4D inputs move to channels-last in all three cases. Only network
forwards run under autocast (:meth:`FastPath.forward`); their outputs come back in float32 so that losses,
attention maps and metrics are computed in full precision.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import torch
from monai.data import MetaTensor
from torch import nn

from monai_xai.flags import as_bool
from monai_xai.utils.device import autocast, reduced_precision, to_float32

__all__ = ["FastPath", "FastPathEngine"]


def _has_conv2d(networks: Iterable[nn.Module]) -> bool:
    return any(isinstance(m, nn.Conv2d) for net in networks for m in net.modules())


@dataclass(frozen=True)
class FastPath:
    """How one device runs a step: ``dtype`` for autocast (None: float32) and whether to use channels-last.

    Args:
        device_type: ``"cuda"`` or ``"cpu"``, as ``torch.autocast`` names devices.
        dtype: the autocast dtype; None runs in float32.
        channels_last: whether 2D networks and their 4D inputs use the channels-last layout.
    """

    device_type: str
    dtype: torch.dtype | None = None
    channels_last: bool = False

    @classmethod
    def resolve(cls, amp: bool, device: torch.device | str, *networks: nn.Module) -> FastPath:
        """The fast path of ``device`` when ``amp`` is on, else plain float32; channels-last when any of
        ``networks`` has 2D convolutions."""
        device_type = torch.device(device).type
        if not as_bool(amp, "amp"):
            return cls(device_type)
        return cls(device_type, reduced_precision(device_type), _has_conv2d(networks))

    def forward(self, function: Callable[..., Any], *inputs: Any, **kwargs: Any) -> Any:
        """``function(*inputs, **kwargs)`` (a network's forward, or an inferer running one) under
        :meth:`autocast`, its outputs in float32."""
        with self.autocast():
            return to_float32(function(*inputs, **kwargs))

    def autocast(self) -> contextlib.AbstractContextManager:
        """Autocast to ``dtype`` on this device, or float32 with autocast switched off."""
        return autocast(self.device_type, self.dtype)

    def prepare_network(self, *networks: nn.Module) -> None:
        """Move the networks' weights to channels-last, in place, when this path uses it."""
        if self.channels_last:
            for network in networks:
                network.to(memory_format=torch.channels_last)

    def prepare_input(self, images: torch.Tensor) -> torch.Tensor:
        """``images`` as the network should see them: a plain tensor (MONAI's metadata tracking on every
        operation costs about a tenth of a ResNet18 training step; handlers read metadata from the batch),
        in the layout of the network's weights (channels-last for 4D batches on this path)."""
        if isinstance(images, MetaTensor):
            images = images.as_tensor()
        if self.channels_last and images.ndim == 4:
            return images.contiguous(memory_format=torch.channels_last)
        return images

    def describe(self) -> str:
        """e.g. ``"cpu bfloat16 autocast, channels-last"``, for logs and benchmark reports."""
        precision = "float32" if self.dtype is None else f"{str(self.dtype).removeprefix('torch.')} autocast"
        return f"{self.device_type} {precision}" + (", channels-last" if self.channels_last else "")


class FastPathEngine:
    """Mixin for MONAI trainers and evaluators: ``amp`` resolves to the device's :class:`FastPath`.

    MONAI's own ``amp`` (CUDA autocast and gradient scaler) stays on only for CUDA devices; the resolved
    path is ``engine.fast_path``, and the engine's network is moved to channels-last when it uses it.

    Args:
        device: the engine's device.
        args: the engine's other positional arguments.
        amp: whether to run on the device's fast path.
        kwargs: the engine's other keyword arguments.
    """

    def __init__(self, device: torch.device | str, *args, amp: bool = False, **kwargs):
        device, amp = torch.device(device), as_bool(amp, "amp")
        super().__init__(device, *args, amp=amp and device.type == "cuda", **kwargs)
        self.fast_path = FastPath.resolve(amp, device, self.network)
        self.fast_path.prepare_network(self.network)
