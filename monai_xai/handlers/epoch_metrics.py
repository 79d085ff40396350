"""Ignite metrics that gather a whole validation epoch and report several figures at once."""

from __future__ import annotations

from collections.abc import Callable

import torch
from ignite.exceptions import NotComputableError
from ignite.metrics import Metric
from ignite.metrics.metric import reinit__is_reduced

from monai_xai.engines.outputs import ATTENTION_MAP, HAS_MASK, LOSS_PARTS, MASK

__all__ = [
    "ClassificationEpochMetric",
    "AttentionAgreementEpochMetric",
    "LossAveragesMetric",
    "LossEpochMetric",
]


class ClassificationEpochMetric(Metric):
    """Accuracy, sensitivity, specificity and AUC of one epoch, flattened into ``state.metrics``.

    Collects softmax probabilities and labels from ``engine.state.output`` and hands them to
    :func:`monai_xai.metrics.classification_metrics` at the end of the epoch. With ``only`` set
    (e.g. ``"auc"``) it reports that one scalar, as a workflow's key metric must be.
    """

    def __init__(
        self, num_classes: int, prefix: str = "", only: str | None = None, device: str | torch.device = "cpu"
    ):
        self.num_classes, self.prefix, self.only = num_classes, prefix, only
        super().__init__(output_transform=lambda output: (output["pred"], output["label"]), device=device)

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


class AttentionAgreementEpochMetric(Metric):
    """Agreement of the attention map with the teacher mask over one epoch (items with a mask only)."""

    def __init__(self, prefix: str = "att_", device: str | torch.device = "cpu"):
        self.prefix = prefix
        super().__init__(output_transform=lambda output: (output,), device=device, skip_unrolling=True)

    @reinit__is_reduced
    def reset(self) -> None:
        self._maps: list[torch.Tensor] = []
        self._masks: list[torch.Tensor] = []

    @reinit__is_reduced
    def update(self, wrapped: tuple[dict]) -> None:
        (output,) = wrapped  # wrapped in a tuple: ignite would otherwise unpack a mapping output
        if ATTENTION_MAP not in output or MASK not in output:
            return
        keep = output[HAS_MASK].view(-1).bool() if HAS_MASK in output else slice(None)
        self._maps.append(output[ATTENTION_MAP].detach().float()[keep].cpu())
        self._masks.append(output[MASK].detach().float()[keep].cpu())

    def compute(self) -> dict[str, float]:
        from monai_xai.metrics import attention_agreement

        if not self._maps or sum(len(m) for m in self._maps) == 0:
            return {}
        scores = attention_agreement(torch.cat(self._maps), torch.cat(self._masks))
        return {f"{self.prefix}{k}": float(v) for k, v in scores.items()}


class LossAveragesMetric(Metric):
    """Epoch means of the loss components in ``engine.state.output["loss_parts"]`` (loss, loss_att, ...).

    With ``only`` set (e.g. ``"loss"``) it reports that one scalar, as a workflow's key metric must be.
    """

    def __init__(self, only: str | None = None, device: str | torch.device = "cpu"):
        self.only = only
        super().__init__(
            output_transform=lambda output: (output[LOSS_PARTS],), device=device, skip_unrolling=True
        )

    @reinit__is_reduced
    def reset(self) -> None:
        self._sums: dict[str, float] = {}
        self._count = 0

    @reinit__is_reduced
    def update(self, wrapped: tuple[dict[str, float]]) -> None:
        (parts,) = wrapped  # wrapped in a tuple: ignite would otherwise unpack a mapping output
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
    only (``monai_xai.distributed.rank_handlers``), where that sum would wait for processes that never
    validate. ``loss_fn`` defaults to cross-entropy of logits and class indices.
    """

    def __init__(self, loss_fn: Callable | None = None, device: str | torch.device = "cpu"):
        self.loss_fn = loss_fn or torch.nn.CrossEntropyLoss()
        super().__init__(output_transform=lambda output: (output["pred"], output["label"]), device=device)

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
