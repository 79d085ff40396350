"""What a classifier's batch of logits becomes after inference: class probabilities and the class."""

from __future__ import annotations

from monai.transforms import Activationsd, AsDiscreted, Compose, CopyItemsd

__all__ = ["classification_postprocessing"]


def classification_postprocessing(
    pred_key: str = "pred", prob_key: str = "probabilities", class_key: str = "class"
) -> Compose:
    """``prob_key`` (softmax) and ``class_key`` (argmax) from the logits under ``pred_key``, which stay.

    The attention engines keep whole batches (no decollation), so softmax and argmax run over dimension 1,
    the classes, where MONAI's defaults assume one channel-first item; the logits stay for the writers and
    metrics that read them.
    """
    return Compose(
        [
            CopyItemsd(keys=pred_key, times=2, names=[prob_key, class_key]),
            Activationsd(keys=prob_key, softmax=True, dim=1),
            AsDiscreted(keys=class_key, argmax=True, dim=1, keepdim=False),
        ]
    )
