"""Detection engines: batches of images with per-image box lists (see ``detection_collate``) in, losses or
decoded boxes out. One small subclass per detector: CenterNet (targets encoded on the fly, peaks decoded)
and MONAI's RetinaNet (its own matching and losses; box axes swapped to and from MONAI's order)."""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch
from monai.engines import SupervisedEvaluator, SupervisedTrainer
from monai.engines.utils import IterationEvents, PrepareBatchDefault
from monai.utils import CommonKeys as Keys

from monai_xai.detection.centernet_codec import decode_centernet, encode_centernet_targets
from monai_xai.detection.collate import BOXES, LABELS
from monai_xai.engines.optimisation import optimisation_step
from monai_xai.engines.outputs import LOSS_PARTS
from monai_xai.engines.precision import FastPathEngine
from monai_xai.engines.prepare_batch import PrepareBatchWithBoxes, WholeBatchEngine

__all__ = [
    "DETECTIONS",
    "CenterNetEvaluator",
    "CenterNetTrainer",
    "DetectionEvaluator",
    "DetectionTrainer",
    "RetinaNetEvaluator",
    "RetinaNetTrainer",
]

#: Output key of the decoded detections: per image ``{"boxes", "scores", "labels"}``.
DETECTIONS = "detections"


def _stride(network: torch.nn.Module) -> int:
    return int(getattr(network, "module", network).stride)


class DetectionTrainer(FastPathEngine, WholeBatchEngine, SupervisedTrainer, ABC):
    """Trains a detector from ``image`` and the ``boxes``/``labels`` lists; subclasses make the loss.

    ``state.output`` carries ``loss`` and ``loss_parts`` (with ``loss``, for
    :class:`~monai_xai.handlers.LossAveragesMetric`). Images without boxes are valid negatives. The network
    runs through ``inferer`` (MONAI's ``SimpleInferer`` by default) in :meth:`compute_loss`.

    Args:
        args: positional arguments of MONAI's ``SupervisedTrainer``.
        prepare_batch: gives MONAI's ``(images, targets)`` on the device, the targets ``(boxes, labels)``
            per-image lists; default :class:`~monai_xai.engines.PrepareBatchWithBoxes`.
        decollate: MONAI's option; off, since box lists stay per batch.
        kwargs: keyword arguments of MONAI's ``SupervisedTrainer`` (``inferer``, ``amp``, handlers ...).
    """

    default_prepare_batch = PrepareBatchWithBoxes

    @abstractmethod
    def compute_loss(
        self, images: torch.Tensor, boxes: list[torch.Tensor], labels: list[torch.Tensor]
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """The detector's training loss and its named parts for one batch."""

    def _iteration(self, engine: SupervisedTrainer, batchdata: dict) -> dict:
        images, (boxes, labels) = engine.prepare_batch(
            batchdata, engine.state.device, engine.non_blocking, **engine.to_kwargs
        )
        images = engine.fast_path.prepare_input(images)
        engine.state.output = {Keys.IMAGE: images}
        engine.network.train()

        def forward_and_loss() -> torch.Tensor:
            loss, parts = engine.compute_loss(images, boxes, labels)
            engine.state.output[Keys.LOSS] = loss
            engine.state.output[LOSS_PARTS] = {"loss": loss.item(), **parts}
            engine.fire_event(IterationEvents.LOSS_COMPLETED)
            return loss

        optimisation_step(engine, forward_and_loss)
        return engine.state.output


class CenterNetTrainer(DetectionTrainer):
    """CenterNet with ``loss_function(output, targets) -> (loss, parts)``, targets encoded at the heatmap's
    resolution from the batch's boxes."""

    def compute_loss(self, images, boxes, labels):
        output = self.fast_path.forward(self.inferer, images, self.network)
        self.fire_event(IterationEvents.FORWARD_COMPLETED)
        heatmap = output["heatmap"]
        targets = encode_centernet_targets(
            boxes, labels, heatmap.shape[1], heatmap.shape[-2:], _stride(self.network)
        )
        return self.loss_function(output, targets)


class RetinaNetTrainer(DetectionTrainer):
    """MONAI's ``RetinaNetDetector`` in training mode: it matches anchors (ATSS) and returns its focal
    classification and box regression losses, which are summed; ``loss_function`` is not used.

    Args:
        args: positional arguments of :class:`DetectionTrainer`.
        loss_function: ignored (the detector computes its own losses); optional so configs may leave it out.
        kwargs: keyword arguments of :class:`DetectionTrainer`.
    """

    def __init__(self, *args, loss_function=None, **kwargs):
        super().__init__(*args, loss_function=loss_function, **kwargs)

    def compute_loss(self, images, boxes, labels):
        from monai_xai.networks.nets.retinanet import swap_box_axes

        targets = [{"boxes": swap_box_axes(b), "labels": lab} for b, lab in zip(boxes, labels)]
        losses = self.fast_path.forward(self.inferer, images, self.network, targets)
        self.fire_event(IterationEvents.FORWARD_COMPLETED)
        parts = {f"loss_{k}": v.item() for k, v in losses.items()}
        return sum(losses.values()), parts


class DetectionEvaluator(FastPathEngine, WholeBatchEngine, SupervisedEvaluator, ABC):
    """Runs a detector: ``state.output["detections"]`` per image ``{"boxes" xyxy, "scores", "labels"}``.

    Ground truth ``boxes``/``labels`` (when the batch has them), ``source`` and ``original_size`` pass
    through for metrics, reports and writers, as the loader gave them. Subclasses turn the network's
    output into detections; the network runs through ``inferer`` (MONAI's ``SimpleInferer`` by default).
    The images come from ``prepare_batch``, the first item of what it returns.

    Args:
        args: positional arguments of MONAI's ``SupervisedEvaluator``.
        prepare_batch: gives the images on the device first; default MONAI's ``PrepareBatchDefault``.
        decollate: MONAI's option; off, since box lists stay per batch.
        kwargs: keyword arguments of MONAI's ``SupervisedEvaluator`` (``inferer``, ``amp``, handlers ...).
    """

    default_prepare_batch = PrepareBatchDefault

    @abstractmethod
    def detect(self, images: torch.Tensor) -> list[dict[str, torch.Tensor]]:
        """Detections per image: ``{"boxes" xyxy, "scores", "labels"}``; the network's forward under
        ``self.fast_path.forward``, decoding in float32 where the detector allows it."""

    def _iteration(self, engine: SupervisedEvaluator, batchdata: dict) -> dict:
        batch = engine.prepare_batch(batchdata, engine.state.device, engine.non_blocking, **engine.to_kwargs)
        images = engine.fast_path.prepare_input(batch[0])
        with engine.mode(engine.network):
            detections = engine.detect(images)
        engine.state.output = {
            Keys.IMAGE: images,
            DETECTIONS: [{k: v.detach().float().cpu() if k != "labels" else v.cpu() for k, v in d.items()}
                         for d in detections],
            **{k: batchdata[k] for k in (BOXES, LABELS, "source", "original_size") if k in batchdata},
        }  # fmt: skip
        engine.fire_event(IterationEvents.FORWARD_COMPLETED)
        engine.fire_event(IterationEvents.MODEL_COMPLETED)
        return engine.state.output


class CenterNetEvaluator(DetectionEvaluator):
    """CenterNet's peaks: the ``top_k`` best over all classes, those under ``score_threshold`` dropped
    (0 keeps all, as COCO AP needs).

    Args:
        args: positional arguments of :class:`DetectionEvaluator`.
        top_k: most detections kept per image.
        score_threshold: detections scoring below it are dropped.
        kwargs: keyword arguments of :class:`DetectionEvaluator`.
    """

    def __init__(self, *args, top_k: int = 100, score_threshold: float = 0.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.top_k, self.score_threshold = top_k, score_threshold

    def detect(self, images):
        out = self.fast_path.forward(self.inferer, images, self.network)
        return decode_centernet(
            out["heatmap"],
            out["size"],
            out["offset"],
            _stride(self.network),
            self.top_k,
            self.score_threshold,
        )


class RetinaNetEvaluator(DetectionEvaluator):
    """MONAI's ``RetinaNetDetector`` in eval mode (anchor decoding, score threshold, NMS), boxes back in
    COCO axis order.

    Args:
        args: positional arguments of :class:`DetectionEvaluator`.
        top_k: most boxes kept per image.
        kwargs: keyword arguments of :class:`DetectionEvaluator`.
    """

    def __init__(self, *args, top_k: int = 100, **kwargs):
        super().__init__(*args, **kwargs)
        self.top_k = top_k

    def detect(self, images):
        from monai_xai.networks.nets.retinanet import swap_box_axes

        out = self.fast_path.forward(self.inferer, images, self.network)
        return [
            {"boxes": swap_box_axes(d["boxes"])[: self.top_k], "scores": d["labels_scores"][: self.top_k],
             "labels": d["labels"][: self.top_k]}
            for d in out
        ]  # fmt: skip
