"""Freezing policies (progressive unfreezing by epochs and on a plateau) and the SimSiam collapse monitor."""

from __future__ import annotations

import pytest
import torch
from ignite.engine import Engine, Events

from monai_xai.engines.simsiam_trainer import EMBEDDING
from monai_xai.handlers.collapse_monitor import EmbeddingStdMetric
from monai_xai.handlers.progressive_unfreeze import get_freeze_policy
from monai_xai.networks.nets.centernet import CenterNet


@pytest.fixture(scope="module")
def net():
    return CenterNet(num_classes=1, neck_channels=(8, 8, 8), head_channels=8)


def _trainable(net) -> list[str]:
    stages = ("stem", "layer1", "layer2", "layer3", "layer4")
    return [s for s in stages if all(p.requires_grad for p in net.backbone.stage(s).parameters())]


def test_progressive_epochs_unfreezes_deepest_first(net):
    trainer = Engine(lambda e, b: None)
    policy = get_freeze_policy("progressive_epochs", net, interval=2)
    policy.attach(trainer)
    seen = []
    trainer.add_event_handler(
        Events.EPOCH_COMPLETED, lambda e: seen.append((e.state.frozen_stages, _trainable(net)))
    )
    trainer.run([0], max_epochs=12)
    assert [f for f, _ in seen] == [5, 5, 4, 4, 3, 3, 2, 2, 1, 1, 0, 0]
    assert seen[2][1] == ["layer4"] and seen[4][1] == ["layer3", "layer4"] and len(seen[-1][1]) == 5


def test_plateau_unfreezes_after_patience_and_resumes(net):
    trainer, evaluator = Engine(lambda e, b: None), Engine(lambda e, b: None)
    values = iter([0.1, 0.2, 0.2, 0.15, 0.3, 0.3])
    evaluator.add_event_handler(
        Events.EPOCH_COMPLETED, lambda e: e.state.metrics.update(val_mAP=next(values))
    )
    policy = get_freeze_policy("progressive_plateau", net, evaluator=evaluator, patience=2)
    policy.attach(trainer)
    frozen = []
    trainer.add_event_handler(
        Events.EPOCH_COMPLETED, lambda e: (evaluator.run([0]), frozen.append(policy.frozen))
    )
    trainer.run([0], max_epochs=6)
    assert frozen == [5, 5, 5, 4, 4, 4]  # no gain at epochs 3 and 4: one stage back after the second
    restored = get_freeze_policy("progressive_plateau", net, evaluator=Engine(lambda e, b: None))
    restored.load_state_dict(policy.state_dict())
    assert restored.frozen == 4 and restored.best == policy.best


def test_policies_by_name(net):
    assert get_freeze_policy("frozen", net).frozen == 5 and get_freeze_policy("all", net).frozen == 0
    with pytest.raises(ValueError, match="unknown freeze policy 'gradual'; valid policies: all, frozen"):
        get_freeze_policy("gradual", net)
    with pytest.raises(ValueError, match="needs the validation evaluator"):
        get_freeze_policy("progressive_plateau", net)


def test_collapse_monitor_separates_collapsed_from_spread():
    def run(z):
        engine = Engine(lambda e, b: {EMBEDDING: b})
        EmbeddingStdMetric().attach(engine, "collapse")
        return engine.run([z[:32], z[32:]]).metrics

    spread = torch.nn.functional.normalize(
        torch.randn(64, 128, generator=torch.Generator().manual_seed(0)), dim=1
    )
    healthy = run(spread)
    assert healthy["z_std_ratio"] == pytest.approx(1.0, abs=0.1)
    collapsed = run(spread[:1].expand(64, -1) + 1e-4 * spread)
    assert collapsed["z_std"] < 1e-3 and collapsed["z_std_ratio"] < 0.01
