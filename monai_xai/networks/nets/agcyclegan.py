"""Attention-guided CycleGAN whose generators and attention networks share the classifier's frozen encoder.

The explained classifier's feature extractor (stem + residual stages) is the encoder of all four U-Nets
G_x, A_x (translate class 0 to class 1) and G_y, A_y (class 1 to class 0). It runs once per input batch and
its skip features feed both decoders of that direction, instead of four encoder copies each running on
their own. It stays frozen (no weight gradients, BatchNorm statistics fixed) but differentiable, so the
cycle loss reaches the decoder that produced a translated image through it.

Images are in [-1, 1] (generator output is ``tanh``); the encoder sees them mapped back to the classifier's
[0, 1] input range.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from monai.networks.layers.factories import Conv
from monai.networks.nets import ResNet
from torch import nn

__all__ = [
    "AGCycleGAN",
    "AttentionDecoder",
    "CycleOutput",
    "FrozenResNetEncoder",
    "GeneratorDecoder",
    "Translation",
    "UNetDecoder",
    "to_classifier_range",
    "to_gan_range",
]


def to_gan_range(images: torch.Tensor) -> torch.Tensor:
    """[0, 1] (the classifier's input range) -> [-1, 1] (the GAN's)."""
    return images * 2.0 - 1.0


def to_classifier_range(images: torch.Tensor) -> torch.Tensor:
    """[-1, 1] -> [0, 1]."""
    return (images + 1.0) * 0.5


class FrozenResNetEncoder(nn.Module):
    """A ResNet's stem and first ``depth`` stages as a U-Net encoder returning every skip feature.

    Holds a frozen copy of the classifier's modules with its weights, so the classifier itself stays
    trainable and differentiable (Grad-CAM++ needs its gradients). Skips, shallow to deep:
    the stem output (before max-pooling) and each stage's output.
    """

    def __init__(self, classifier: ResNet, depth: int = 4) -> None:
        super().__init__()
        if not 1 <= depth <= 4:
            raise ValueError(f"encoder depth must be 1..4 ResNet stages, got {depth}")
        source = copy.deepcopy(classifier)
        self.stem = nn.Sequential(source.conv1, source.bn1, source.act)
        self.pool = nn.Identity() if source.no_max_pool else source.maxpool
        stages = [source.layer1, source.layer2, source.layer3, source.layer4][:depth]
        self.stages = nn.ModuleList(stages)
        self.channels = [source.conv1.out_channels] + [_out_channels(s) for s in stages]
        self.requires_grad_(False)
        super().train(False)

    def train(self, mode: bool = True) -> FrozenResNetEncoder:
        """Always eval: the classifier's BatchNorm statistics are part of what is being explained."""
        return super().train(False)

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        h = self.stem(images)
        skips = [h]
        h = self.pool(h)
        for stage in self.stages:
            h = stage(h)
            skips.append(h)
        return skips


def _out_channels(stage: nn.Module) -> int:
    """Width of a ResNet stage's output: its last block's last convolution (or same-width projection)."""
    convs = [m for m in stage[-1].modules() if isinstance(m, nn.Conv1d | nn.Conv2d | nn.Conv3d)]
    return convs[-1].out_channels


def _norm_act(channels: int) -> list[nn.Module]:
    # group norm: batch statistics are unreliable at GAN batch sizes and instance norm fails on 1x1 features;
    # at least two channels per group keep a single image at 1x1 resolution normalisable
    return [nn.GroupNorm(max(1, min(8, channels // 2)), channels), nn.LeakyReLU(0.2, inplace=True)]


class _DecoderLevel(nn.Module):
    """``refine(up(W_deep h) + W_skip skip)``: a 1x1 convolution over ``cat(up(h), skip)``, split in two.

    Projecting the deep input before upsampling is exact (both are linear) and cheaper, and the skip is
    read in place instead of being copied into a concatenation, so the skips that G and A share are held
    once for the backward pass.
    """

    def __init__(self, conv: type[nn.Module], deep: int, skip: int, width: int, mode: str) -> None:
        super().__init__()
        self.deep_proj = conv(deep, width, kernel_size=1, bias=False)
        self.skip_proj = conv(skip, width, kernel_size=1, bias=False)
        self.refine = nn.Sequential(
            *_norm_act(width), conv(width, width, kernel_size=3, padding=1, bias=False), *_norm_act(width)
        )
        self.mode = mode

    def forward(self, h: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        up = F.interpolate(self.deep_proj(h), size=skip.shape[2:], mode=self.mode, align_corners=False)
        return self.refine(up + self.skip_proj(skip))


class UNetDecoder(nn.Module):
    """U-Net decoder over :class:`FrozenResNetEncoder` skips, ending at the input resolution.

    Each level merges the upsampled deeper features with the next skip (odd sizes included) and refines
    them with a 3x3 convolution; a 1x1 head maps them, upsampled and concatenated with the image, to the
    output. Subclasses choose the output activation.
    """

    output_activation: type[nn.Module] = nn.Identity

    def __init__(
        self,
        spatial_dims: int,
        skip_channels: Sequence[int],
        image_channels: int = 1,
        out_channels: int = 1,
        widths: Sequence[int] = (8, 8, 16, 16, 32),
    ) -> None:
        super().__init__()
        if len(widths) < len(skip_channels) - 1:
            raise ValueError(f"need {len(skip_channels) - 1} decoder widths, got {len(widths)}")
        conv = Conv[Conv.CONV, spatial_dims]
        self.mode = "bilinear" if spatial_dims == 2 else "trilinear"
        self.levels = nn.ModuleList()
        deep = skip_channels[-1]
        for level in range(len(skip_channels) - 2, -1, -1):
            self.levels.append(_DecoderLevel(conv, deep, skip_channels[level], widths[level], self.mode))
            deep = widths[level]
        # 1x1 at full resolution: a 3x3 head there costs as much as the rest of the decoder (3x in 3D)
        self.head = conv(deep + image_channels, out_channels, kernel_size=1)
        self.activation = self.output_activation()

    def forward(self, skips: Sequence[torch.Tensor], images: torch.Tensor) -> torch.Tensor:
        h = skips[-1]
        for level, skip in zip(self.levels, reversed(skips[:-1])):
            h = level(h, skip)
        h = F.interpolate(h, size=images.shape[2:], mode=self.mode, align_corners=False)
        return self.activation(self.head(torch.cat([h, images], dim=1)))


class GeneratorDecoder(UNetDecoder):
    """G: the translated image in [-1, 1]."""

    output_activation = nn.Tanh


class AttentionDecoder(UNetDecoder):
    """A: where to translate, in [0, 1]."""

    output_activation = nn.Sigmoid


class Translation(NamedTuple):
    """One direction's masked translation ``fake = attention * generated + (1 - attention) * image``."""

    fake: torch.Tensor
    attention: torch.Tensor
    generated: torch.Tensor


class CycleOutput(NamedTuple):
    """Both directions and their cycles: x -> fake_y -> rec_x and y -> fake_x -> rec_y."""

    x_to_y: Translation
    y_to_x: Translation
    rec_x: torch.Tensor
    rec_y: torch.Tensor


class AGCycleGAN(nn.Module):
    """G_x, A_x (class 0 -> 1) and G_y, A_y (class 1 -> 0) on one frozen classifier encoder.

    Args:
        classifier: the trained ResNet classifier to explain; a frozen copy of its feature extractor becomes
            the encoder (load its weights first).
        spatial_dims: 2 or 3.
        in_channels: image channels.
        depth: number of ResNet stages used by the encoder (4: all).
        decoder_widths: channels of each decoder level, shallow to deep.
    """

    def __init__(
        self,
        classifier: ResNet,
        spatial_dims: int = 2,
        in_channels: int = 1,
        depth: int = 4,
        decoder_widths: Sequence[int] = (8, 8, 16, 16, 32),
    ) -> None:
        super().__init__()
        self.spatial_dims = spatial_dims
        self.encoder = FrozenResNetEncoder(classifier, depth)
        skips = self.encoder.channels
        self.decoders = nn.ModuleDict(
            {
                name: decoder_type(spatial_dims, skips, in_channels, in_channels, decoder_widths)
                for name, decoder_type in (
                    ("g_x", GeneratorDecoder),
                    ("a_x", AttentionDecoder),
                    ("g_y", GeneratorDecoder),
                    ("a_y", AttentionDecoder),
                )
            }
        )

    def encode(self, images: torch.Tensor) -> list[torch.Tensor]:
        """Encoder skips of images in [-1, 1]."""
        return self.encoder(to_classifier_range(images))

    def translate(self, images: torch.Tensor, source: int) -> Translation:
        """Translate images of class ``source`` (0: x, 1: y) to the other class; one encoder call."""
        return self._decode(self.encode(images), images, source)

    def _decode(self, skips: Sequence[torch.Tensor], images: torch.Tensor, source: int) -> Translation:
        suffix = "xy"[source]
        generated = self.decoders[f"g_{suffix}"](skips, images)
        attention = self.decoders[f"a_{suffix}"](skips, images)
        return Translation(attention * generated + (1.0 - attention) * images, attention, generated)

    def _translate_both(self, x: torch.Tensor, y: torch.Tensor) -> tuple[Translation, Translation]:
        """x -> y and y -> x with one encoder call on the stacked batch (the encoder is per-sample)."""
        skips = self.encode(torch.cat([x, y]))
        n = len(x)
        x_to_y = self._decode([s[:n] for s in skips], x, 0)
        y_to_x = self._decode([s[n:] for s in skips], y, 1)
        return x_to_y, y_to_x

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> CycleOutput:
        """Both translations, then both cycles: two encoder calls, each on the stacked x/y batch."""
        x_to_y, y_to_x = self._translate_both(x, y)
        back_to_y, back_to_x = self._translate_both(y_to_x.fake, x_to_y.fake)
        return CycleOutput(x_to_y, y_to_x, back_to_x.fake, back_to_y.fake)

    def generator_parameters(self) -> list[nn.Parameter]:
        """The trainable parameters: the four decoders (the encoder is frozen)."""
        return list(self.decoders.parameters())
