"""Flip rate of counterfactual translations per direction, as an epoch metric for validating a GAN.

A translation "flips" when the classifier assigns it to the target class. Training the AG-CycleGAN until this
rate stops rising in *both* directions needs the two rates apart: their mean can rise while one direction
collapses, as the under-trained runs of the bundle docs show (86% one way, 4-9% the other).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from ignite.metrics import Metric
from ignite.metrics.metric import reinit__is_reduced
from monai.handlers.utils import from_engine

__all__ = ["FlipRateEpochMetric"]

_TRANSLATION_CLASSES = from_engine(["pred_after", "source_class", "target_class"])


class FlipRateEpochMetric(Metric):
    """Share of class-0 images whose translation is classified as 1, and of class-1 as 0, over an epoch.

    Each rate is :func:`monai_xai.metrics.flip_rate`, as in the evaluation report. Reports
    ``<prefix>flip_rate_from_0``, ``<prefix>flip_rate_from_1`` and their minimum ``<prefix>flip_rate_min``.
    A direction without images has no rate: NaN, and so is the minimum (``BestModelSaver`` keeps no model on
    it).

    Args:
        prefix: put before every reported name.
        only: report this one rate as a scalar (e.g. ``"flip_rate_min"``), as a key metric must be.
        output_transform: callable turning ``engine.state.output`` into ``(logits_after, source_class,
            target_class)``; by default the ``pred_after`` (the classifier's logits of the translations),
            ``source_class`` and ``target_class`` entries of
            :class:`~monai_xai.engines.CounterfactualEvaluator`'s output.
        device: device of the metric's state.
    """

    def __init__(
        self,
        prefix: str = "",
        only: str | None = None,
        output_transform: Callable = _TRANSLATION_CLASSES,
        device: str | torch.device = "cpu",
    ) -> None:
        self.prefix, self.only = prefix, only
        super().__init__(output_transform=output_transform, device=device)

    @reinit__is_reduced
    def reset(self) -> None:
        self._after: list[torch.Tensor] = []
        self._source: list[torch.Tensor] = []
        self._target: list[torch.Tensor] = []

    @reinit__is_reduced
    def update(self, output: tuple[torch.Tensor, torch.Tensor, torch.Tensor]) -> None:
        logits, source, target = output
        self._after.append(logits.detach().argmax(dim=1).cpu())
        self._source.append(source.detach().view(-1).cpu())
        self._target.append(target.detach().view(-1).cpu())

    def compute(self) -> dict[str, float] | float:
        from monai_xai.metrics import flip_rate

        after, source, target = (torch.cat(parts) for parts in (self._after, self._source, self._target))
        rates = {f"flip_rate_from_{c}": flip_rate(after[source == c], target[source == c]) for c in (0, 1)}
        rates["flip_rate_min"] = float(torch.tensor(list(rates.values())).min())  # NaN when either is
        if self.only is not None:
            return rates[self.only]
        return {f"{self.prefix}{name}": value for name, value in rates.items()}
