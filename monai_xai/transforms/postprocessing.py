"""What a classifier's batch of logits becomes after inference: class probabilities and the class."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from monai.transforms import Activationsd, AsDiscreted, Compose, CopyItemsd, Lambdad

__all__ = ["classification_postprocessing"]


class _AtThreshold:
    """Class 1 where the probability of class 1 reaches ``threshold``, else 0 (a picklable callable)."""

    def __init__(self, threshold: float) -> None:
        self.threshold = float(threshold)

    def __call__(self, probabilities: torch.Tensor) -> torch.Tensor:
        return (probabilities[:, 1] >= self.threshold).long()


class _Scaled:
    """Logits divided by a temperature (temperature scaling)."""

    def __init__(self, temperature: float) -> None:
        self.temperature = float(temperature)

    def __call__(self, logits: torch.Tensor) -> torch.Tensor:
        return logits / self.temperature


def classification_postprocessing(
    pred_key: str = "pred",
    prob_key: str = "probabilities",
    class_key: str = "class",
    operating_point: Mapping | None = None,
) -> Compose:
    """``prob_key`` (softmax) and ``class_key`` (argmax) from the logits under ``pred_key``, which stay.

    With the checkpoint's ``operating_point`` (:func:`monai_xai.networks.read_operating_point`: chosen on
    validation), the probabilities are those of its temperature and, for two classes, the class is 1 where
    the probability of class 1 reaches its threshold, as in the evaluation that reported it.

    The attention engines keep whole batches (no decollation), so softmax and argmax run over dimension 1,
    the classes, where MONAI's defaults assume one channel-first item; the logits stay for the writers and
    metrics that read them.
    """
    point = dict(operating_point or {})
    temperature, threshold = float(point.get("temperature", 1.0)), point.get("threshold")
    steps = [CopyItemsd(keys=pred_key, times=1, names=[prob_key])]
    if temperature != 1.0:
        steps.append(Lambdad(keys=prob_key, func=_Scaled(temperature)))
    steps.append(Activationsd(keys=prob_key, softmax=True, dim=1))
    if threshold is None:
        steps += [
            CopyItemsd(keys=pred_key, times=1, names=[class_key]),
            AsDiscreted(keys=class_key, argmax=True, dim=1, keepdim=False),
        ]
    else:
        steps += [
            CopyItemsd(keys=prob_key, times=1, names=[class_key]),
            Lambdad(keys=class_key, func=_AtThreshold(threshold)),
        ]
    return Compose(steps)
