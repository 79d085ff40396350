"""Explain a classifier with a trained AG-CycleGAN: translate each image to the other class, re-classify."""

from __future__ import annotations

from collections.abc import Callable

import torch
from monai.engines import SupervisedEvaluator
from monai.engines.utils import IterationEvents
from monai.utils import CommonKeys as Keys
from monai.utils import look_up_option
from torch import nn

from monai_xai.engines.precision import FastPathEngine
from monai_xai.engines.prepare_batch import PrepareBatchWithMasks, WholeBatchEngine
from monai_xai.networks.nets.agcyclegan import AGCycleGAN, to_classifier_range, to_gan_range

__all__ = ["CounterfactualEvaluator"]


class CounterfactualEvaluator(FastPathEngine, WholeBatchEngine, SupervisedEvaluator):
    """``network`` is the classifier; ``gan`` translates each image from its source class to the other one.

    The source class is the label when the batch has one and ``source="label"``, else the classifier's
    prediction (inference). ``engine.state.output`` holds, in [0, 1]: ``image``, ``attention``,
    ``generated``, ``fake``; ``pred`` / ``pred_after`` (logits before/after translation),
    ``source_class``, ``target_class``, ``name`` (each item's file or source); ``label`` and ``mask``
    when given; ``cam`` (Grad-CAM++ of the predicted class) when ``saliency_fn`` is set. Networks run on the
    device's fast path when ``amp`` is on; every output is float32. The classifier's logits and the GAN's
    translations are predictions, both made through ``inferer`` (MONAI's ``SimpleInferer`` by default).

    Args:
        args: positional arguments of MONAI's ``SupervisedEvaluator`` (``network`` is the classifier).
        gan: the trained AG-CycleGAN.
        source: ``"label"`` or ``"prediction"``, what a translation starts from.
        saliency_fn: images -> saliency maps (e.g. Grad-CAM++) for the ``cam`` output; None: no ``cam``.
        prepare_batch: gives the batch on the device as a dict with ``image``, and ``label`` / ``mask``
            when the batch has them; default :class:`~monai_xai.engines.PrepareBatchWithMasks`.
        decollate: MONAI's option; off, since every consumer works on whole batches.
        kwargs: keyword arguments of MONAI's ``SupervisedEvaluator`` (``inferer``, ``amp``, handlers ...).
    """

    default_prepare_batch = PrepareBatchWithMasks

    def __init__(
        self,
        *args,
        gan: AGCycleGAN,
        source: str = "label",
        saliency_fn: Callable[[torch.Tensor], torch.Tensor] | None = None,
        **kwargs,
    ) -> None:
        source = look_up_option(source, ("label", "prediction"))
        super().__init__(*args, **kwargs)
        self.gan, self.source, self.saliency_fn = gan, source, saliency_fn
        self.fast_path.prepare_network(gan)

    @torch.no_grad()
    def explain(
        self, classifier: nn.Module, images: torch.Tensor, source: torch.Tensor | None = None
    ) -> dict:
        """Translations of ``images`` (in [0, 1]) away from ``source`` (default: the predicted class)."""
        self.gan.eval()
        images = self.fast_path.prepare_input(images)
        logits = self.fast_path.forward(self.inferer, images, classifier)
        source = logits.argmax(dim=1) if source is None else source.view(-1).long()
        gan_images = to_gan_range(images.float())
        parts = {name: torch.empty_like(gan_images) for name in ("fake", "attention", "generated")}
        for cls in (0, 1):
            index = source == cls
            if bool(index.any()):
                translation = self.fast_path.forward(self.inferer, gan_images[index], self.gan.translate, cls)
                parts["fake"][index] = translation.fake
                parts["attention"][index] = translation.attention
                parts["generated"][index] = translation.generated
        fake = to_classifier_range(parts["fake"])
        logits_after = self.fast_path.forward(self.inferer, self.fast_path.prepare_input(fake), classifier)
        return {
            Keys.PRED: logits,
            "pred_after": logits_after,
            "source_class": source,
            "target_class": 1 - source,
            "attention": parts["attention"],
            "generated": to_classifier_range(parts["generated"]),
            "fake": fake,
        }

    def _iteration(self, engine: CounterfactualEvaluator, batchdata: dict) -> dict:
        if batchdata is None:
            raise ValueError("Must provide batch data for current iteration.")
        batch = engine.prepare_batch(batchdata, engine.state.device, engine.non_blocking, **engine.to_kwargs)
        images = (
            batch[Keys.IMAGE].as_tensor() if hasattr(batch[Keys.IMAGE], "as_tensor") else batch[Keys.IMAGE]
        )
        source = batch.get(Keys.LABEL) if engine.source == "label" else None
        with engine.mode(engine.network):
            engine.state.output = {
                **batch,
                Keys.IMAGE: images,
                **engine.explain(engine.network, images, source),
            }
        if engine.saliency_fn is not None:
            engine.state.output["cam"] = engine.saliency_fn(images)
        engine.state.output["name"] = _item_names(batchdata, len(images))
        engine.fire_event(IterationEvents.FORWARD_COMPLETED)
        engine.fire_event(IterationEvents.MODEL_COMPLETED)
        return engine.state.output


def _item_names(batchdata: dict, n: int) -> list[str]:
    """Each item's ``source`` (MedMNIST) or loaded file name, else its position in the batch."""
    if "source" in batchdata:
        return [str(s) for s in batchdata["source"]]
    meta = getattr(batchdata["image"], "meta", {}) or {}
    names = meta.get("filename_or_obj")
    if isinstance(names, list | tuple) and len(names) == n:
        return [str(name) for name in names]
    return [f"item{i}" for i in range(n)]
