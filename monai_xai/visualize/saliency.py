"""Grad-CAM and Grad-CAM++ baselines from ``monai.visualize`` for any classifier of this package."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from monai.utils import look_up_option
from torch import nn

from monai_xai.networks.outputs import split_network_output

__all__ = [
    "CAMSaliency",
    "CAM_METHODS",
    "SALIENCY_METHODS",
    "batch_score_hooks",
    "get_saliency",
    "resnet_cam_layer",
    "saliency_functions",
    "scale_to_unit",
]

#: Class activation map methods of :class:`CAMSaliency` by name.
CAM_METHODS = ("gradcam", "gradcampp")

#: Saliency baselines by name: the CAM methods and the input gradient.
SALIENCY_METHODS = (*CAM_METHODS, "input_gradient")


class _Logits(nn.Module):
    """Expose only the class logits, which is what MONAI's CAM classes differentiate."""

    def __init__(self, network: nn.Module):
        super().__init__()
        self.network = network

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return split_network_output(self.network(x))["pred"]


def batch_score_hooks(module: nn.Module, layer: str):
    """MONAI's ``ModelWithHooks`` scoring each image's own target class, shaped (B, 1, ...).

    Stock MONAI indexes ``logits[:, class_idx]``: with a (B,) tensor of classes that is a (B, B)
    block, and its (B,) score then broadcasts against the last spatial axis of the gradients in
    Grad-CAM++, which fails (or silently mixes images) for batches larger than one.

    Args:
        module: the network, returning class logits.
        layer: name of the layer whose activations and gradients are recorded.
    """
    from monai.visualize.class_activation_maps import ModelWithHooks

    class BatchScoreHooks(ModelWithHooks):
        def class_score(self, logits: torch.Tensor, class_idx) -> torch.Tensor:
            rank = self.activations[self.target_layers[-1]].ndim
            index = torch.as_tensor(class_idx, device=logits.device).long().view(-1, 1)
            score = logits.gather(1, index.expand(logits.shape[0], 1))
            return score.reshape(-1, *[1] * (rank - 1))

    return BatchScoreHooks(module, layer, register_forward=True, register_backward=True)


def scale_to_unit(maps: torch.Tensor) -> torch.Tensor:
    """Each map of a (B, 1, *spatial) batch scaled so that its minimum is 0 and its maximum 1 (all 0 when
    constant): the CAMs' post-processing.

    MONAI's default for its CAM classes, ``default_normalizer``, maps (min, max) to (1, 0): the most
    activated region gets 0, so a map compared with a lesion mask, or ranking pixels for Deletion/Insertion,
    points away from the evidence.
    """
    flat = maps.flatten(1)
    low = flat.min(dim=1, keepdim=True).values
    span = flat.max(dim=1, keepdim=True).values - low
    scaled = torch.where(span > 0, (flat - low) / span.clamp_min(torch.finfo(flat.dtype).tiny), 0.0)
    return scaled.view_as(maps)


def _last_layer4(module: nn.Module) -> str:
    names = [name for name, _ in module.named_modules() if name.endswith("layer4")]
    if not names:
        raise ValueError("no 'layer4' module found: pass target_layer explicitly")
    return names[-1]


class CAMSaliency:
    """Class activation maps of ``network`` at its last ResNet stage, upsampled to the input size.

    One forward and one backward per batch, each image scored for its own target class (default:
    its predicted class).
    The hooks are registered once per instance: keep one instance per network.

    Args:
        network: the classifier (plain logits or an attention branch network's output).
        method: one of :data:`CAM_METHODS`.
        target_layer: the layer whose activations are weighted; default the last ``layer4``.
    """

    def __init__(self, network: nn.Module, method: str = "gradcampp", target_layer: str | None = None):
        from monai.visualize import GradCAM, GradCAMpp

        cam_method = look_up_option(method, CAM_METHODS, default=None)
        if cam_method is None:
            raise ValueError(f"unknown CAM method {method!r}; valid: {', '.join(CAM_METHODS)}")
        wrapped = _Logits(network)
        layer = target_layer or _last_layer4(wrapped)
        hooks = batch_score_hooks(wrapped, layer)
        cam = GradCAMpp if cam_method == "gradcampp" else GradCAM
        self.cam = cam(nn_module=hooks, target_layers=layer, postprocessing=scale_to_unit)
        self.network = network

    def __call__(self, images: torch.Tensor, class_idx: torch.Tensor | None = None) -> torch.Tensor:
        """(B, 1, *spatial) maps in [0, 1] for ``class_idx`` (default: each image's predicted class)."""
        from monai.networks.utils import eval_mode

        images = images.as_tensor() if hasattr(images, "as_tensor") else images
        images = images.detach()
        if class_idx is not None:
            class_idx = torch.as_tensor(class_idx).view(-1)
        with eval_mode(self.network), torch.enable_grad():
            return self.cam(images, class_idx=class_idx).detach()


def get_saliency(network: nn.Module, method: str, target_layer: str | None = None):
    """The saliency baseline ``method`` on ``network``.

    Args:
        network: the classifier.
        method: one of :data:`SALIENCY_METHODS`.
        target_layer: the CAM methods' layer; default the last ``layer4``.
    """
    checked = look_up_option(method, SALIENCY_METHODS, default=None)
    if checked is None:
        raise ValueError(f"unknown saliency method {method!r}; valid: {', '.join(SALIENCY_METHODS)}")
    if checked == "input_gradient":
        from monai_xai.visualize.input_gradient import InputGradientSaliency

        return InputGradientSaliency(network)
    return CAMSaliency(network, checked, target_layer)


#: Smallest input side at which each ResNet stage (stride 32, 16) still has a feature map 4 pixels wide.
_CAM_STAGE_MIN_SIZE = (("layer4", 112), ("layer3", 56))


def resnet_cam_layer(spatial_size: Sequence[int]) -> str:
    """The deepest ResNet stage of a classifier whose feature map is at least 4 pixels wide at this input
    size, as :class:`CAMSaliency` names it (``network.layer2`` at 28 px, ``network.layer3`` at 64 px).

    Why: at 28 px ``layer4`` is 1x1, and a CAM of one pixel cannot point anywhere.

    Args:
        spatial_size: the classifier's input size.
    """
    smallest = min(spatial_size)
    for stage, min_size in _CAM_STAGE_MIN_SIZE:
        if smallest >= min_size:
            return f"network.{stage}"
    return "network.layer2"


def saliency_functions(
    network: nn.Module, methods: Sequence[str], target_layer: str | None = None
) -> dict[str, Callable]:
    """:func:`get_saliency` of each of ``methods`` on ``network`` by name, as the evaluation reports take
    them.

    Args:
        network: the classifier.
        methods: names of :data:`SALIENCY_METHODS`.
        target_layer: the CAM methods' layer; default the last ``layer4``.
    """
    return {method: get_saliency(network, method, target_layer) for method in methods}
