"""The AG-CycleGAN generator loss (study's terms) and the classifier-guided variant's validity term."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from monai_xai.engines import AGCycleGANTrainer, ClassifierGuidedAGCycleGANTrainer
from monai_xai.losses import get_gan_loss
from monai_xai.networks.nets import AGCycleGAN, PatchDiscriminator, ResNetClassifier
from monai_xai.networks.nets.agcyclegan import to_classifier_range, to_gan_range

SIZE = 16


def _trainer(trainer_type: type[AGCycleGANTrainer], **kwargs) -> AGCycleGANTrainer:
    """A trainer on tiny networks, seeded; discriminators in eval mode, so that their spectral norm does
    not change between a hand computation and the step."""
    torch.manual_seed(0)
    gan = AGCycleGAN(ResNetClassifier(), decoder_widths=(4, 4, 8, 8, 8))
    d_x, d_y = PatchDiscriminator(channels=(4, 8)).eval(), PatchDiscriminator(channels=(4, 8)).eval()
    return trainer_type(
        "cpu", 1, [], gan, d_x, d_y,
        torch.optim.Adam(gan.generator_parameters(), lr=1e-2),
        torch.optim.Adam([*d_x.parameters(), *d_y.parameters()], lr=1e-2),
        get_gan_loss("lsgan"), lambda_cyc=5.0, lambda_att=0.3, **kwargs,
    )  # fmt: skip


def _batch(seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return tuple(torch.rand(2, 1, SIZE, SIZE, generator=generator) for _ in range(2))


class _Brightness(nn.Module):
    """Stub classifier: class 1 when an image's mean intensity is above 0.5, confidently."""

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        mean = images.flatten(1).mean(dim=1)
        return torch.stack([0.5 - mean, mean - 0.5], dim=1) * 10


def _validity(classifier: nn.Module, out: dict) -> float:
    """The classifier's cross-entropy of the step's translations against their target classes, by hand."""
    with torch.no_grad():
        to_1 = classifier(to_classifier_range(out["x_to_y"].fake))
        to_0 = classifier(to_classifier_range(out["y_to_x"].fake))
        ones, zeros = torch.ones(len(to_1), dtype=torch.long), torch.zeros(len(to_0), dtype=torch.long)
        return float(F.cross_entropy(to_1, ones) + F.cross_entropy(to_0, zeros))


def test_study_generator_loss_is_adversarial_cycle_and_attention_terms() -> None:
    """adv + lambda_cyc * cycle L1 + lambda_att * mean attention, by hand: what the step computed before
    its terms moved to ``generator_loss_terms`` (whose loss parts matched the old step's bit for bit)."""
    trainer = _trainer(AGCycleGANTrainer)
    x, y = _batch()
    gx, gy = to_gan_range(x), to_gan_range(y)
    with torch.no_grad():
        cycle = trainer.network.train()(gx, gy)
        adv = trainer.adversarial_loss(trainer.d_y(cycle.x_to_y.fake), True) + trainer.adversarial_loss(
            trainer.d_x(cycle.y_to_x.fake), True
        )
        cyc = F.l1_loss(cycle.rec_x, gx) + F.l1_loss(cycle.rec_y, gy)
        att = cycle.x_to_y.attention.mean() + cycle.y_to_x.attention.mean()
    parts = trainer.train_step(x, y)["loss_parts"]
    assert parts["loss_g_adv"] == pytest.approx(float(adv), rel=1e-5)
    assert parts["loss_cyc"] == pytest.approx(float(cyc), rel=1e-5)
    assert parts["attention"] == pytest.approx(float(att), rel=1e-5)
    assert parts["loss_g"] == pytest.approx(float(adv + 5.0 * cyc + 0.3 * att), rel=1e-5)
    assert "loss_cls" not in parts


def test_guided_loss_adds_the_classifiers_cross_entropy_of_each_translation() -> None:
    classifier = ResNetClassifier().eval()
    trainer = _trainer(ClassifierGuidedAGCycleGANTrainer, classifier=classifier, lambda_cls=2.0)
    out = trainer.train_step(*_batch())
    parts = out["loss_parts"]
    assert parts["loss_cls"] == pytest.approx(_validity(classifier, out), rel=1e-5)
    study = parts["loss_g_adv"] + 5.0 * parts["loss_cyc"] + 0.3 * parts["attention"]
    assert parts["loss_g"] == pytest.approx(study + 2.0 * parts["loss_cls"], rel=1e-5)


def test_guided_classifier_stays_frozen_but_passes_gradients_to_the_decoders() -> None:
    classifier = ResNetClassifier()  # in training mode, as a freshly built network is
    before = {k: v.clone() for k, v in classifier.state_dict().items()}
    trainer = _trainer(ClassifierGuidedAGCycleGANTrainer, classifier=classifier)
    copy_before = {k: v.clone() for k, v in trainer.classifier.state_dict().items()}
    for seed in range(2):
        trainer.train_step(*_batch(seed))
    for state, reference in (
        (classifier.state_dict(), before),
        (trainer.classifier.state_dict(), copy_before),
    ):
        assert all(torch.equal(state[k], reference[k]) for k in reference)  # weights and BN statistics
    assert not trainer.classifier.training and not any(
        p.requires_grad for p in trainer.classifier.parameters()
    )
    assert classifier.training and all(p.requires_grad for p in classifier.parameters())  # the caller's own
    x, y = (to_gan_range(t) for t in _batch())
    trainer.network.zero_grad()
    trainer.validity(trainer.network(x, y)).backward()
    assert all(p.grad is None for p in trainer.classifier.parameters())
    grads = [p.grad for p in trainer.network.generator_parameters()]
    assert any(g is not None and bool(g.abs().sum() > 0) for g in grads)


def test_guided_steps_move_the_translations_toward_their_target_classes() -> None:
    """On one repeated batch, after two updates the translations are classified as their target classes
    with a clearly lower cross-entropy when the term is in the loss (lambda_cls 1) than when it is only
    measured (0): about 0.5 vs 1.3 with this stub classifier."""
    final = {}
    for lambda_cls in (0.0, 1.0):
        trainer = _trainer(ClassifierGuidedAGCycleGANTrainer, classifier=_Brightness(), lambda_cls=lambda_cls)
        for _ in range(3):
            out = trainer.train_step(*_batch())
        final[lambda_cls] = _validity(_Brightness(), out)
    assert final[1.0] < 0.75 * final[0.0]
