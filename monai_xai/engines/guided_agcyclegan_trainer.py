"""AG-CycleGAN trainer whose generator loss also asks the explained classifier to accept each translation."""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from monai_xai.engines.agcyclegan_trainer import AGCycleGANTrainer
from monai_xai.networks.nets.agcyclegan import CycleOutput, to_classifier_range

__all__ = ["ClassifierGuidedAGCycleGANTrainer"]


class ClassifierGuidedAGCycleGANTrainer(AGCycleGANTrainer):
    """:class:`AGCycleGANTrainer` plus ``lambda_cls`` x the classifier's cross-entropy of each translation
    against its target class (``loss_cls``: class-0 images translated to 1, class-1 images to 0).

    Why: the study's loss (adversarial + cycle L1 + attention sparsity) holds the translation back, so the
    translations flip the classifier mostly one way; this validity term (as in classifier-guided
    counterfactual GANs) pushes both directions across the decision boundary. A frozen copy of ``classifier``
    is used: no weight gradients, eval mode (its BatchNorm statistics are part of what is explained), but
    differentiable, so the term reaches the decoders. It runs on the fast path like the other networks; its
    logits, and the loss, are float32. Flips bought this way can be adversarial; the bundle's evaluation
    therefore also asks an independently trained judge classifier. The classifier is called directly, not
    through ``inferer``: its logits are a loss term, like the discriminators' outputs.

    Args:
        args: positional arguments of :class:`AGCycleGANTrainer`.
        classifier: the explained classifier; a frozen copy is used.
        lambda_cls: weight of ``loss_cls``.
        kwargs: keyword arguments of :class:`AGCycleGANTrainer`.
    """

    def __init__(self, *args, classifier: nn.Module, lambda_cls: float = 1.0, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.classifier = copy.deepcopy(classifier).requires_grad_(False).eval()
        self.fast_path.prepare_network(self.classifier)
        self.lambda_cls = lambda_cls

    def generator_loss_terms(
        self, cycle: CycleOutput, x: torch.Tensor, y: torch.Tensor
    ) -> dict[str, tuple[float, torch.Tensor]]:
        """The study's terms and ``loss_cls``."""
        return {
            **super().generator_loss_terms(cycle, x, y),
            "loss_cls": (self.lambda_cls, self.validity(cycle)),
        }

    def validity(self, cycle: CycleOutput) -> torch.Tensor:
        """Cross-entropy of x -> y translations against class 1 plus that of y -> x against class 0, one
        classifier call on both."""
        to_y, to_x = cycle.x_to_y.fake, cycle.y_to_x.fake
        images = self.fast_path.prepare_input(to_classifier_range(torch.cat([to_y, to_x])))
        logits_y, logits_x = self.fast_path.forward(self.classifier, images).split([len(to_y), len(to_x)])
        to_class_1 = F.cross_entropy(logits_y, _classes(logits_y, 1))
        return to_class_1 + F.cross_entropy(logits_x, _classes(logits_x, 0))


def _classes(logits: torch.Tensor, cls: int) -> torch.Tensor:
    """Class ``cls`` for every row of ``logits``, as cross-entropy targets."""
    return torch.full((len(logits),), cls, dtype=torch.long, device=logits.device)
