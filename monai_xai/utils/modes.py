"""Names of the classifier training modes, shared by the network and loss factories."""

from __future__ import annotations

__all__ = ["CLASSIFIER_MODES", "RESNET_MODES"]

#: Every training mode: a plain ResNet (``baseline``, ``rrr``) or an Attention Branch Network trained with one
#: of the ABN losses (``plain``, ``conventional``, ``dynamic``).
CLASSIFIER_MODES = ("baseline", "rrr", "plain", "conventional", "dynamic")

#: Modes whose network is a plain ResNet (the others train an Attention Branch Network).
RESNET_MODES = ("baseline", "rrr")
