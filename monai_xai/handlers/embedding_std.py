"""SimSiam collapse monitor: the spread of the normalised embeddings over an epoch, as an ignite metric."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable

import torch
from ignite.metrics import Metric
from ignite.metrics.metric import reinit__is_reduced
from monai.handlers.utils import from_engine

from monai_xai.engines.simsiam_trainer import EMBEDDING

__all__ = ["EmbeddingStdMetric"]

logger = logging.getLogger(__name__)

_EMBEDDING = from_engine(EMBEDDING)


class EmbeddingStdMetric(Metric):
    """Mean over dimensions of the per-dimension std of L2-normalised ``z`` (SimSiam paper, Fig. 2).

    A collapsed encoder maps every image to one vector: the std falls to 0. Healthy outputs spread
    like a unit Gaussian direction, with std near ``1 / sqrt(d)``; ``z_std_ratio`` is the std times
    ``sqrt(d)`` (about 1 healthy, near 0 collapsed), and a warning is logged below ``warn_below``.

    Args:
        warn_below: ``z_std_ratio`` under which a collapse warning is logged.
        output_transform: callable turning ``engine.state.output`` into a 1-tuple of the (B, d) normalised
            embeddings; by default the SimSiam trainer's ``embedding`` entry.
        device: device of the metric's state.
    """

    def __init__(
        self,
        warn_below: float = 0.1,
        output_transform: Callable = _EMBEDDING,
        device: str | torch.device = "cpu",
    ) -> None:
        self.warn_below = warn_below
        super().__init__(output_transform=output_transform, device=device, skip_unrolling=True)

    @reinit__is_reduced
    def reset(self) -> None:
        self._sum = self._sumsq = None
        self._count = 0

    @reinit__is_reduced
    def update(self, output: tuple[torch.Tensor]) -> None:
        (z,) = output
        z = z.detach().double().cpu()
        self._sum = z.sum(0) if self._sum is None else self._sum + z.sum(0)
        self._sumsq = (z**2).sum(0) if self._sumsq is None else self._sumsq + (z**2).sum(0)
        self._count += len(z)

    def compute(self) -> dict[str, float]:
        if self._count < 2:
            return {}
        mean = self._sum / self._count
        var = (self._sumsq / self._count - mean**2).clamp(min=0) * self._count / (self._count - 1)
        std = float(var.sqrt().mean())
        ratio = std * math.sqrt(len(mean))
        if ratio < self.warn_below:
            logger.warning(f"SimSiam embeddings are collapsing: z std {std:.4f} ({ratio:.3f} x 1/sqrt(d))")
        return {"z_std": std, "z_std_ratio": ratio}
