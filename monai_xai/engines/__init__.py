"""Ignite engines that carry attention maps and teacher masks alongside predictions."""

from monai_xai.engines.attention_evaluator import AttentionEvaluator
from monai_xai.engines.attention_trainer import AttentionSupervisedTrainer
from monai_xai.engines.outputs import (
    ATTENTION_LOGITS,
    ATTENTION_MAP,
    HAS_MASK,
    LOSS_PARTS,
    MASK,
    split_network_output,
)

__all__ = [
    "ATTENTION_LOGITS",
    "ATTENTION_MAP",
    "HAS_MASK",
    "LOSS_PARTS",
    "MASK",
    "AttentionEvaluator",
    "AttentionSupervisedTrainer",
    "split_network_output",
]
