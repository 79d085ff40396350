"""Grad-CAM and Grad-CAM++ baselines from ``monai.visualize`` for any classifier of this package."""

from __future__ import annotations

import torch
from torch import nn

from monai_xai.engines.outputs import split_network_output

__all__ = ["CAMSaliency", "CAM_METHODS"]

CAM_METHODS = ("gradcam", "gradcampp")


class _Logits(nn.Module):
    """Expose only the class logits, which is what MONAI's CAM classes differentiate."""

    def __init__(self, network: nn.Module):
        super().__init__()
        self.network = network

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return split_network_output(self.network(x))["pred"]


def _batch_score_hooks(module: nn.Module, layer: str):
    """MONAI's ``ModelWithHooks`` with the class score shaped (B, 1, ...) instead of (B,).

    Grad-CAM++ multiplies ``exp(score)`` with the gradients; a (B,) score broadcasts against the
    last spatial axis and fails (or silently mixes images) for batches larger than one.
    """
    from monai.visualize.class_activation_maps import ModelWithHooks

    class BatchScoreHooks(ModelWithHooks):
        def class_score(self, logits: torch.Tensor, class_idx: int) -> torch.Tensor:
            rank = self.activations[self.target_layers[-1]].ndim
            return logits[:, class_idx].reshape(-1, *[1] * (rank - 1))

    return BatchScoreHooks(module, layer, register_forward=True, register_backward=True)


def _last_layer4(module: nn.Module) -> str:
    names = [name for name, _ in module.named_modules() if name.endswith("layer4")]
    if not names:
        raise ValueError("no 'layer4' module found: pass target_layer explicitly")
    return names[-1]


class CAMSaliency:
    """Class activation maps of ``network`` at its last ResNet stage, upsampled to the input size.

    MONAI's CAM scores ``logits[:, class_idx]`` for one class per call, so a batch of mixed target
    classes is split by class and each part gets its own call.
    The hooks are registered once per instance: keep one instance per network.
    """

    def __init__(self, network: nn.Module, method: str = "gradcampp", target_layer: str | None = None):
        from monai.visualize import GradCAM, GradCAMpp

        if method not in CAM_METHODS:
            raise ValueError(f"unknown CAM method {method!r}; valid: {', '.join(CAM_METHODS)}")
        wrapped = _Logits(network)
        layer = target_layer or _last_layer4(wrapped)
        hooks = _batch_score_hooks(wrapped, layer)
        self.cam = (GradCAMpp if method == "gradcampp" else GradCAM)(nn_module=hooks, target_layers=layer)
        self.network = network

    def __call__(self, images: torch.Tensor, class_idx: torch.Tensor | None = None) -> torch.Tensor:
        """(B, 1, *spatial) maps in [0, 1] for ``class_idx`` (default: each image's predicted class)."""
        from monai.networks.utils import eval_mode

        images = images.as_tensor() if hasattr(images, "as_tensor") else images
        images = images.detach()
        with eval_mode(self.network), torch.enable_grad():
            if class_idx is None:
                with torch.no_grad():
                    class_idx = split_network_output(self.network(images))["pred"].argmax(dim=1)
            class_idx = torch.as_tensor(class_idx).view(-1)
            maps = torch.empty((images.shape[0], 1, *images.shape[2:]), device=images.device)
            for c in class_idx.unique().tolist():
                select = (class_idx == c).nonzero().view(-1).to(images.device)
                maps[select] = self.cam(images[select], class_idx=int(c)).to(maps.dtype)
        return maps
