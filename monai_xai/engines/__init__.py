"""Ignite engines that carry attention maps and teacher masks alongside predictions."""

from monai_xai.engines.agcyclegan_trainer import AGCycleGANTrainer
from monai_xai.engines.attention_evaluator import AttentionEvaluator
from monai_xai.engines.attention_trainer import AttentionSupervisedTrainer
from monai_xai.engines.counterfactual_evaluator import CounterfactualEvaluator
from monai_xai.engines.detection import (
    DETECTIONS,
    CenterNetEvaluator,
    CenterNetTrainer,
    DetectionEvaluator,
    DetectionTrainer,
    RetinaNetEvaluator,
    RetinaNetTrainer,
)
from monai_xai.engines.guided_agcyclegan_trainer import ClassifierGuidedAGCycleGANTrainer
from monai_xai.engines.optimisation import optimisation_step
from monai_xai.engines.outputs import (
    ATTENTION_LOGITS,
    ATTENTION_MAP,
    HAS_MASK,
    LOSS_PARTS,
    MASK,
    loss_part,
)
from monai_xai.engines.precision import FastPath, FastPathEngine
from monai_xai.engines.prepare_batch import (
    PrepareBatchPair,
    PrepareBatchWithBoxes,
    PrepareBatchWithMasks,
    WholeBatchEngine,
)
from monai_xai.engines.simsiam_trainer import EMBEDDING, SECOND_VIEW, SimSiamTrainer

__all__ = [
    "DETECTIONS",
    "EMBEDDING",
    "SECOND_VIEW",
    "CenterNetEvaluator",
    "CenterNetTrainer",
    "DetectionEvaluator",
    "DetectionTrainer",
    "RetinaNetEvaluator",
    "RetinaNetTrainer",
    "SimSiamTrainer",
    "FastPath",
    "FastPathEngine",
    "PrepareBatchPair",
    "PrepareBatchWithBoxes",
    "PrepareBatchWithMasks",
    "WholeBatchEngine",
    "optimisation_step",
    "AGCycleGANTrainer",
    "ClassifierGuidedAGCycleGANTrainer",
    "CounterfactualEvaluator",
    "ATTENTION_LOGITS",
    "ATTENTION_MAP",
    "HAS_MASK",
    "LOSS_PARTS",
    "MASK",
    "AttentionEvaluator",
    "AttentionSupervisedTrainer",
    "loss_part",
]
