"""Explain a classifier with a trained AG-CycleGAN: translate each image to the other class, re-classify."""

from __future__ import annotations

from collections.abc import Callable

import torch
from monai.engines import SupervisedEvaluator
from monai.engines.utils import IterationEvents
from monai.utils import CommonKeys as Keys
from torch import nn

from monai_xai.engines.outputs import batch_to_device
from monai_xai.engines.precision import FastPathEngine
from monai_xai.networks.nets.agcyclegan import AGCycleGAN, to_classifier_range, to_gan_range

__all__ = ["CounterfactualEvaluator"]


class CounterfactualEvaluator(FastPathEngine, SupervisedEvaluator):
    """``network`` is the classifier; ``gan`` translates each image from its source class to the other one.

    The source class is the label when the batch has one and ``source="label"``, else the classifier's
    prediction (inference). ``engine.state.output`` holds, in [0, 1]: ``image``, ``attention``,
    ``generated``, ``fake``; ``pred`` / ``pred_after`` (logits before/after translation),
    ``source_class``, ``target_class``, ``name`` (each item's file or source); ``label`` and ``mask``
    when given; ``cam`` (Grad-CAM++ of the predicted class) when ``saliency_fn`` is set. Networks run on the
    device's fast path when ``amp`` is on; every output is float32. The GAN translates through
    ``inferer`` (MONAI's ``SimpleInferer`` by default).
    """

    def __init__(
        self,
        *args,
        gan: AGCycleGAN,
        source: str = "label",
        saliency_fn: Callable[[torch.Tensor], torch.Tensor] | None = None,
        decollate: bool = False,
        **kwargs,
    ) -> None:
        if source not in ("label", "prediction"):
            raise ValueError(f"source must be 'label' or 'prediction', got {source!r}")
        super().__init__(*args, decollate=decollate, **kwargs)
        self.gan, self.source, self.saliency_fn = gan, source, saliency_fn
        self.fast_path.prepare_network(gan)

    @torch.no_grad()
    def explain(
        self, classifier: nn.Module, images: torch.Tensor, source: torch.Tensor | None = None
    ) -> dict:
        """Translations of ``images`` (in [0, 1]) away from ``source`` (default: the predicted class)."""
        self.gan.eval()
        images = self.fast_path.prepare_input(images)
        logits = self.fast_path.forward(classifier, images)
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
        return {
            Keys.PRED: logits,
            "pred_after": self.fast_path.forward(classifier, self.fast_path.prepare_input(fake)),
            "source_class": source,
            "target_class": 1 - source,
            "attention": parts["attention"],
            "generated": to_classifier_range(parts["generated"]),
            "fake": fake,
        }

    def _iteration(self, engine: CounterfactualEvaluator, batchdata: dict) -> dict:
        batch = batch_to_device(batchdata, engine.state.device, engine.non_blocking)
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
