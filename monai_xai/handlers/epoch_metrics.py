"""Ignite metrics that gather a whole validation epoch and report several figures at once."""

from __future__ import annotations

from collections.abc import Callable

import torch
from ignite.exceptions import NotComputableError
from ignite.metrics import Metric
from ignite.metrics.metric import reinit__is_reduced
from monai.handlers.utils import from_engine
from monai.utils import CommonKeys

from monai_xai.engines.outputs import ATTENTION_MAP, HAS_MASK, LOSS_PARTS, MASK

__all__ = [
    "ClassificationEpochMetric",
    "AttentionAgreementEpochMetric",
    "LossAveragesMetric",
    "LossEpochMetric",
    "attention_and_mask",
]

_PRED_AND_LABEL = from_engine([CommonKeys.PRED, CommonKeys.LABEL])
_LOSS_PARTS = from_engine(LOSS_PARTS)


class ClassificationEpochMetric(Metric):
    """Accuracy, sensitivity, specificity and AUC of one epoch, flattened into ``state.metrics``.

    Collects softmax probabilities and labels and hands them to
    :func:`monai_xai.metrics.classification_metrics` at the end of the epoch, since AUC and the per-class
    rates need the whole epoch, not batch means.

    Args:
        num_classes: number of classes of the classifier.
        prefix: put before every reported name (``val_`` gives ``val_auc``).
        only: report this one score as a scalar (e.g. ``"auc"``), as a workflow's key metric must be.
        output_transform: callable turning ``engine.state.output`` into ``(logits, labels)``; by default
            the ``pred`` and ``label`` entries.
        device: device of the metric's state.
    """

    def __init__(
        self,
        num_classes: int,
        prefix: str = "",
        only: str | None = None,
        output_transform: Callable = _PRED_AND_LABEL,
        device: str | torch.device = "cpu",
    ) -> None:
        self.num_classes, self.prefix, self.only = num_classes, prefix, only
        super().__init__(output_transform=output_transform, device=device)

    @reinit__is_reduced
    def reset(self) -> None:
        self._probs: list[torch.Tensor] = []
        self._labels: list[torch.Tensor] = []

    @reinit__is_reduced
    def update(self, output) -> None:
        logits, labels = output
        self._probs.append(torch.softmax(logits.detach().float(), dim=1).cpu())
        self._labels.append(labels.detach().view(-1).cpu())

    def compute(self) -> dict[str, float] | float:
        from monai_xai.metrics import classification_metrics

        probs = torch.cat(self._probs).numpy()
        labels = torch.cat(self._labels).numpy()
        scores = classification_metrics(labels, probs, self.num_classes)
        if self.only is not None:
            return float(scores[self.only])
        return {f"{self.prefix}{k}": float(v) for k, v in scores.items() if k != "confusion_matrix"}


def attention_and_mask(output: dict) -> tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor | None]:
    """The attention map, mask and has-mask flags of an engine output, None for each one it lacks.

    Why: a plain classifier has no attention map and an unlabelled split no masks; ``from_engine`` would
    raise on the missing keys.
    """
    return output.get(ATTENTION_MAP), output.get(MASK), output.get(HAS_MASK)


class AttentionAgreementEpochMetric(Metric):
    """Agreement of the attention map with the teacher mask over one epoch (items with a mask only).

    Args:
        prefix: put before every reported name.
        output_transform: callable turning ``engine.state.output`` into ``(maps, masks, has_mask)``, any of
            them None when absent (then the batch is skipped; ``has_mask`` None keeps every item); by
            default :func:`attention_and_mask`.
        device: device of the metric's state.
    """

    def __init__(
        self,
        prefix: str = "att_",
        output_transform: Callable = attention_and_mask,
        device: str | torch.device = "cpu",
    ) -> None:
        self.prefix = prefix
        super().__init__(output_transform=output_transform, device=device, skip_unrolling=True)

    @reinit__is_reduced
    def reset(self) -> None:
        self._maps: list[torch.Tensor] = []
        self._masks: list[torch.Tensor] = []

    @reinit__is_reduced
    def update(self, output: tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor | None]) -> None:
        maps, masks, has_mask = output
        if maps is None or masks is None:
            return
        keep = slice(None) if has_mask is None else has_mask.view(-1).bool()
        self._maps.append(maps.detach().float()[keep].cpu())
        self._masks.append(masks.detach().float()[keep].cpu())

    def compute(self) -> dict[str, float]:
        from monai_xai.metrics import attention_agreement

        if not self._maps or sum(len(m) for m in self._maps) == 0:
            return {}
        scores = attention_agreement(torch.cat(self._maps), torch.cat(self._masks))
        return {f"{self.prefix}{k}": float(v) for k, v in scores.items()}


class LossAveragesMetric(Metric):
    """Epoch means of the loss components in ``engine.state.output["loss_parts"]`` (loss, loss_att, ...).

    The trainers already hold each part as a number per iteration; this averages them for the epoch logs
    as ``train_<part>``.

    Args:
        only: report this one part as a scalar (e.g. ``"loss"``), as a workflow's key metric must be.
        output_transform: callable turning ``engine.state.output`` into a 1-tuple of the ``{name: value}``
            mapping; by default the ``loss_parts`` entry.
        device: device of the metric's state.
    """

    def __init__(
        self,
        only: str | None = None,
        output_transform: Callable = _LOSS_PARTS,
        device: str | torch.device = "cpu",
    ) -> None:
        self.only = only
        super().__init__(output_transform=output_transform, device=device, skip_unrolling=True)

    @reinit__is_reduced
    def reset(self) -> None:
        self._sums: dict[str, float] = {}
        self._count = 0

    @reinit__is_reduced
    def update(self, output: tuple[dict[str, float]]) -> None:
        (parts,) = output  # a 1-tuple: ignite would otherwise unpack a mapping output
        for name, value in parts.items():
            self._sums[name] = self._sums.get(name, 0.0) + float(value)
        self._count += 1

    def compute(self) -> dict[str, float] | float:
        means = {name: total / max(self._count, 1) for name, total in self._sums.items()}
        if self.only is not None:
            return means[self.only]
        return {f"train_{name}": value for name, value in means.items()}


class LossEpochMetric(Metric):
    """Mean of ``loss_fn(pred, label)`` per item over one epoch, on this process alone.

    ignite's ``Loss`` sums over all processes when it computes. Under torchrun the validator runs on rank 0
    only (``monai_xai.bundle.is_not_rank0``), where that sum would wait for processes that never
    validate.

    Args:
        loss_fn: loss of ``(logits, labels)`` averaged over a batch; cross-entropy of logits and class
            indices when None.
        output_transform: callable turning ``engine.state.output`` into ``(logits, labels)``; by default
            the ``pred`` and ``label`` entries.
        device: device of the metric's state.
    """

    def __init__(
        self,
        loss_fn: Callable | None = None,
        output_transform: Callable = _PRED_AND_LABEL,
        device: str | torch.device = "cpu",
    ) -> None:
        self.loss_fn = loss_fn or torch.nn.CrossEntropyLoss()
        super().__init__(output_transform=output_transform, device=device)

    @reinit__is_reduced
    def reset(self) -> None:
        self._sum = 0.0
        self._count = 0

    @reinit__is_reduced
    def update(self, output) -> None:
        logits, labels = output
        labels = labels.detach().view(-1).long()
        self._sum += float(self.loss_fn(logits.detach().float(), labels)) * len(labels)
        self._count += len(labels)

    def compute(self) -> float:
        if self._count == 0:
            raise NotComputableError("LossEpochMetric needs at least one batch before it can be computed")
        return self._sum / self._count
