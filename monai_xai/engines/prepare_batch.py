"""``prepare_batch`` callables for batches that carry more than MONAI's ``image``/``label`` pair.

Why: MONAI engines get their batch through ``engine.prepare_batch(batchdata, device, non_blocking,
**to_kwargs)``; these are the defaults of the project's engines, so that a config can swap in its own (for
example one that adds a key, or counts calls) exactly as with MONAI's ``SupervisedTrainer``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from monai.engines.utils import PrepareBatch
from monai.utils import CommonKeys as Keys

from monai_xai.detection.collate import BOXES, LABELS
from monai_xai.engines.outputs import HAS_MASK, MASK

__all__ = ["PrepareBatchPair", "PrepareBatchWithBoxes", "PrepareBatchWithMasks", "WholeBatchEngine"]


class PrepareBatchWithMasks(PrepareBatch):
    """The batch entries an attention-aware engine reads, on the device, as a dict: ``image``, and when
    present ``label`` (a flat long tensor), ``mask`` and ``has_mask`` (a flat bool tensor); then, for a
    trainer, the batch's random augmentation.

    Why here: ``prepare_batch`` is where a MONAI engine turns the loader's batch into the tensors of one
    iteration, so an augmentation given to it sees the batch on the device, moves each image and its mask
    together before the loss (input gradients included) sees either, and stays out of the evaluators, which
    build their own. An ``ITERATION_STARTED`` handler would edit the batch before it reaches the device.

    Args:
        augmentation: called with the batch dict on the device, returns it augmented (e.g. a ``Compose`` of
            the transforms of :mod:`monai_xai.transforms.batch_augmentation`); None: no augmentation.
    """

    def __init__(self, augmentation: Callable[[dict], dict] | None = None) -> None:
        self.augmentation = augmentation

    def __call__(
        self,
        batchdata: dict[str, torch.Tensor],
        device: str | torch.device | None = None,
        non_blocking: bool = False,
        **kwargs: Any,
    ) -> dict[str, torch.Tensor]:
        """MONAI's ``PrepareBatch`` call: ``kwargs`` (the engine's ``to_kwargs``) go to ``Tensor.to``."""
        batch = {Keys.IMAGE: batchdata[Keys.IMAGE].to(device, non_blocking=non_blocking, **kwargs)}
        if Keys.LABEL in batchdata:
            batch[Keys.LABEL] = torch.as_tensor(batchdata[Keys.LABEL]).to(device).long().view(-1)
        if MASK in batchdata:
            batch[MASK] = batchdata[MASK].to(device, non_blocking=non_blocking, **kwargs)
        if HAS_MASK in batchdata:
            batch[HAS_MASK] = torch.as_tensor(batchdata[HAS_MASK]).to(device).bool().view(-1)
        return batch if self.augmentation is None else self.augmentation(batch)


class PrepareBatchWithBoxes(PrepareBatch):
    """A detection batch (see ``detection_collate``) as MONAI's ``(inputs, targets)``: the images and
    ``(boxes, labels)``, both per-image lists of tensors, on the device."""

    def __call__(
        self,
        batchdata: dict[str, Any],
        device: str | torch.device | None = None,
        non_blocking: bool = False,
        **kwargs: Any,
    ) -> tuple[torch.Tensor, tuple[list[torch.Tensor], list[torch.Tensor]]]:
        """MONAI's ``PrepareBatch`` call: ``kwargs`` (the engine's ``to_kwargs``) go to ``Tensor.to``."""
        images = batchdata[Keys.IMAGE].to(device, non_blocking=non_blocking, **kwargs)
        boxes = [b.to(device) for b in batchdata[BOXES]]
        labels = [lab.to(device) for lab in batchdata[LABELS]]
        return images, (boxes, labels)


class PrepareBatchPair(PrepareBatch):
    """Two entries of the batch as tensors on the device, e.g. the unpaired class-0 and class-1 images
    ``x`` and ``y`` of a CycleGAN batch.

    Args:
        keys: the two batch keys, in the order they are returned.
    """

    def __init__(self, keys: tuple[str, str] = ("x", "y")) -> None:
        self.keys = keys

    def __call__(
        self,
        batchdata: dict[str, Any],
        device: str | torch.device | None = None,
        non_blocking: bool = False,
        **kwargs: Any,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """MONAI's ``PrepareBatch`` call: ``kwargs`` (the engine's ``to_kwargs``) go to ``Tensor.to``."""
        first, second = (torch.as_tensor(batchdata[key]) for key in self.keys)
        return (
            first.to(device, non_blocking=non_blocking, **kwargs),
            second.to(device, non_blocking=non_blocking, **kwargs),
        )


class WholeBatchEngine:
    """Mixin for MONAI engines whose consumers work on whole batches: ``decollate`` off, and the engine's
    own ``prepare_batch`` (built by :attr:`default_prepare_batch`) when a config gives none.

    Why: every engine of the project otherwise repeats the same two-line constructor, differing only in
    the default; with the mixin an engine names its default once, as a class attribute.

    Args:
        args: the engine's positional arguments (MONAI's ``SupervisedTrainer`` / ``SupervisedEvaluator``).
        prepare_batch: MONAI's option; None builds :attr:`default_prepare_batch`.
        decollate: MONAI's option; off, since the consumers work on whole batches.
        kwargs: the engine's other keyword arguments.
    """

    #: Builds the ``prepare_batch`` used when none is given (called with no arguments); set by each engine.
    default_prepare_batch: Callable[[], Callable]

    def __init__(
        self, *args, prepare_batch: Callable | None = None, decollate: bool = False, **kwargs
    ) -> None:
        prepare_batch = type(self).default_prepare_batch() if prepare_batch is None else prepare_batch
        super().__init__(*args, prepare_batch=prepare_batch, decollate=decollate, **kwargs)
