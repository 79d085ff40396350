"""Losses of the Attention Branch Network with attention-map supervision.

Funatsu et al. (Kindai University) compare three ways to combine the branch losses: ``plain`` ABN
(L_att + L_per), the ``conventional`` map-supervised loss (L_att + L_per + gamma * L_map) and the ``dynamic``
loss ((1 - alpha) * L_per + alpha * (L_map + L_att)) whose ``alpha`` moves from the attention terms to
classification during training; :class:`~monai_xai.handlers.alpha_scheduler.AlphaScheduleHandler` sets it
each epoch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, NamedTuple

import torch
import torch.nn.functional as F
from monai.utils import look_up_option
from torch import nn

from monai_xai.losses.class_weighted import WeightedCrossEntropy

if TYPE_CHECKING:
    from monai_xai.networks.nets.abn import ABNOutput

__all__ = ["ABN_LOSS_MODES", "ABNLoss", "AttentionMapLoss"]


class AttentionMapLoss(nn.Module):
    """Mean squared error between the attention map M(x) and a teacher mask, over samples that have one.

    The teacher (any spatial size, e.g. a lung mask at image resolution) is reduced to M's resolution by area
    averaging (adaptive average pooling), so each target cell is the fraction of that cell the mask covers.
    Nearest-neighbour sampling would instead pick one pixel per cell and flip cells along the mask border from
    one image to the next; the soft fraction is stable and is the best constant M can predict for the cell.

    Samples whose ``has_mask`` is False are left out of the mean; when no sample has a mask the loss is a zero
    that is still connected to the graph, so ``backward`` works on batches without teachers.
    """

    def forward(
        self, attention_map: torch.Tensor, mask: torch.Tensor, has_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """
        Args:
            attention_map: (B, 1, *spatial) predicted map in [0, 1].
            mask: (B, 1, *any spatial) or (B, *any spatial) teacher in [0, 1] (binary or soft).
            has_mask: (B,) bool, True for samples whose ``mask`` is real; all samples when None.
        """
        spatial = attention_map.shape[2:]
        teacher = torch.as_tensor(mask, device=attention_map.device).to(attention_map.dtype)
        if teacher.ndim == attention_map.ndim - 1:
            teacher = teacher.unsqueeze(1)
        if teacher.ndim != attention_map.ndim or teacher.shape[:2] != attention_map.shape[:2]:
            raise ValueError(
                f"mask of shape {tuple(mask.shape)} does not match attention map "
                f"{tuple(attention_map.shape)}: expected (B, 1, *spatial) or (B, *spatial)"
            )
        if has_mask is None:
            selected = torch.ones(attention_map.shape[0], dtype=torch.bool, device=attention_map.device)
        else:
            selected = torch.as_tensor(has_mask, device=attention_map.device).reshape(-1).bool()
        if not bool(selected.any()):
            return attention_map.sum() * 0.0
        teacher = teacher[selected]
        if teacher.shape[2:] != spatial:
            teacher = F.interpolate(teacher, size=tuple(spatial), mode="area")
        return F.mse_loss(attention_map[selected], teacher)


class _Terms(NamedTuple):
    attention: torch.Tensor
    perception: torch.Tensor
    map: torch.Tensor


class _Mode(NamedTuple):
    combine: Callable[[_Terms, float, float], torch.Tensor]
    needs_mask: bool


_MODES: dict[str, _Mode] = {
    "plain": _Mode(lambda t, gamma, alpha: t.attention + t.perception, needs_mask=False),
    "conventional": _Mode(
        lambda t, gamma, alpha: t.attention + t.perception + gamma * t.map, needs_mask=True
    ),
    "dynamic": _Mode(
        lambda t, gamma, alpha: (1.0 - alpha) * t.perception + alpha * (t.map + t.attention), needs_mask=True
    ),
}

#: Names of the modes :class:`ABNLoss` accepts.
ABN_LOSS_MODES = tuple(_MODES)


class ABNLoss(nn.Module):
    """ABN loss in one of :data:`ABN_LOSS_MODES`.

    Args:
        mode: "plain" (L_att + L_per), "conventional" (L_att + L_per + gamma * L_map) or
            "dynamic" ((1 - alpha) * L_per + alpha * (L_map + L_att)).
        gamma: weight of L_map in "conventional" mode.
        alpha: initial weight of the attention terms in "dynamic" mode; a schedule handler updates ``alpha``.
        class_weights: per-class weights of both cross-entropies (class balance), or None.

    L_att and L_per are cross-entropies of the attention and perception logits, L_map is
    :class:`AttentionMapLoss`. ``forward`` returns the total and a dict of floats for logging: ``loss``,
    ``loss_att``, ``loss_per`` and, when masks are given, ``loss_map`` (reported but not optimised in "plain"
    mode, so that maps can be compared across modes).
    """

    def __init__(
        self, mode: str, gamma: float = 1.0, alpha: float = 0.9, class_weights: Sequence[float] | None = None
    ) -> None:
        super().__init__()
        self.mode = look_up_option(mode, ABN_LOSS_MODES, default=None)
        if self.mode is None:
            raise ValueError(f"unknown ABN loss mode {mode!r}; valid modes: {', '.join(ABN_LOSS_MODES)}")
        self.gamma = float(gamma)
        self.alpha = alpha
        self.cross_entropy = WeightedCrossEntropy(class_weights)
        self.map_loss = AttentionMapLoss()

    @property
    def alpha(self) -> float:
        """Weight of the attention terms in "dynamic" mode, in [0, 1]."""
        return self._alpha

    @alpha.setter
    def alpha(self, value: float) -> None:
        if not 0.0 <= float(value) <= 1.0:
            raise ValueError(f"alpha must lie in [0, 1], got {value}")
        self._alpha = float(value)

    def forward(
        self,
        output: ABNOutput,
        target: torch.Tensor,
        mask: torch.Tensor | None = None,
        has_mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """
        Args:
            output: the network's :class:`ABNOutput`.
            target: (B,) or (B, 1) class indices.
            mask: teacher attention masks, see :class:`AttentionMapLoss`; required unless ``mode`` is "plain".
            has_mask: (B,) bool marking the samples whose mask is real; all when None.
        """
        mode = _MODES[self.mode]
        if mask is None and mode.needs_mask:
            raise ValueError(f"ABN loss mode {self.mode!r} needs teacher masks, got mask=None")
        labels = torch.as_tensor(target, device=output.perception_logits.device).reshape(-1).long()
        attention = self.cross_entropy(output.attention_logits, labels)
        perception = self.cross_entropy(output.perception_logits, labels)
        if mask is None:
            map_term = output.attention_map.sum() * 0.0
        else:
            map_term = self.map_loss(output.attention_map, mask, has_mask)
        total = mode.combine(_Terms(attention, perception, map_term), self.gamma, self.alpha)
        components = {"loss": total.item(), "loss_att": attention.item(), "loss_per": perception.item()}
        if mask is not None:
            components["loss_map"] = map_term.item()
        return total, components
