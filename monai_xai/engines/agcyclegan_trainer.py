"""Ignite trainer for the attention-guided CycleGAN: alternating generator and discriminator updates."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import torch
import torch.nn.functional as F
from monai.engines import Trainer
from monai.engines.utils import IterationEvents
from monai.inferers import Inferer, SimpleInferer
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from monai_xai.engines.outputs import LOSS_PARTS
from monai_xai.engines.precision import FastPath
from monai_xai.engines.prepare_batch import PrepareBatchPair
from monai_xai.flags import as_bool
from monai_xai.losses.gan_loss import GANLoss
from monai_xai.networks.nets.agcyclegan import AGCycleGAN, CycleOutput, Translation, to_gan_range

__all__ = ["AGCycleGANTrainer"]


class AGCycleGANTrainer(Trainer):
    """One generator step and ``n_dis`` discriminator steps per iteration on a batch ``{"x", "y"}``.

    ``x`` holds class-0 and ``y`` class-1 images in [0, 1] (the classifier's range), mapped to [-1, 1] here.
    Generator loss: adversarial terms of both directions + ``lambda_cyc`` * L1 cycle consistency +
    ``lambda_att`` * mean attention (a sparsity prior that keeps the translation local). Discriminator
    ``d_x`` judges class-0 images (real x vs translated y), ``d_y`` class-1 images. Loss components land in
    ``engine.state.output["loss_parts"]``; the last batch's images and translations in the output too, for
    sample grids. With ``amp`` the networks run on the device's fast path (see
    :class:`~monai_xai.engines.precision.FastPath`), losses in float32; on CUDA each update has its own
    gradient scaler.

    Under torchrun ``network``, ``d_x`` and ``d_y`` are all wrapped in ``DistributedDataParallel``, or none
    is: a discriminator left out would train apart on each process.

    As in MONAI's trainers, ``prepare_batch`` gives ``(x, y)`` on the device and the generator's cycle (the
    step's prediction) runs through ``inferer(x, network, y)``. The discriminators are called directly:
    their outputs are terms of the adversarial losses, not predictions, and an inferer that tiles or
    post-processes them would change the objective the losses define.

    Args:
        device: the device the networks are on.
        max_epochs: epochs to train.
        train_data_loader: batches ``{"x", "y"}``.
        network: the AG-CycleGAN (both translations), maybe in ``DistributedDataParallel``.
        d_x: discriminator of class-0 images.
        d_y: discriminator of class-1 images.
        g_optimizer: optimiser of the generator's (decoders') weights.
        d_optimizer: optimiser of both discriminators' weights.
        adversarial_loss: the GAN loss of both the generator and the discriminators.
        lambda_cyc: weight of the L1 cycle consistency.
        lambda_att: weight of the mean attention (sparsity prior).
        n_dis: discriminator steps per generator step, at least 1.
        amp: run on the device's fast path.
        key_train_metric: MONAI's key metric of the trainer.
        additional_metrics: MONAI's further metrics.
        train_handlers: MONAI's handlers.
        prepare_batch: ``(batchdata, device, non_blocking, **kwargs) -> (x, y)``; default
            :class:`~monai_xai.engines.PrepareBatchPair`.
        inferer: runs the generator's cycle; default MONAI's ``SimpleInferer``.
        kwargs: further arguments of MONAI's ``Trainer`` (``epoch_length``, ``to_kwargs`` ...).
    """

    def __init__(
        self,
        device: torch.device | str,
        max_epochs: int,
        train_data_loader: Iterable,
        network: AGCycleGAN | DistributedDataParallel,
        d_x: nn.Module,
        d_y: nn.Module,
        g_optimizer: torch.optim.Optimizer,
        d_optimizer: torch.optim.Optimizer,
        adversarial_loss: GANLoss,
        lambda_cyc: float = 10.0,
        lambda_att: float = 0.0,
        n_dis: int = 1,
        amp: bool = False,
        key_train_metric: dict | None = None,
        additional_metrics: dict | None = None,
        train_handlers: Sequence | None = None,
        prepare_batch: Callable | None = None,
        inferer: Inferer | None = None,
        **kwargs,
    ) -> None:
        if n_dis < 1:
            raise ValueError(f"n_dis (discriminator steps per generator step) must be >= 1, got {n_dis}")
        modules = {"network": network, "d_x": d_x, "d_y": d_y}
        wrapped = [name for name, module in modules.items() if isinstance(module, DistributedDataParallel)]
        if 0 < len(wrapped) < len(modules):
            raise ValueError(
                f"only {wrapped} of network, d_x and d_y are wrapped in DistributedDataParallel: the others "
                "would train apart on each process; wrap all three (as the bundle's "
                "configs/multi_gpu_train.json does)"
            )
        super().__init__(
            device=device,
            max_epochs=max_epochs,
            data_loader=train_data_loader,
            key_metric=key_train_metric,
            additional_metrics=additional_metrics,
            handlers=train_handlers,
            prepare_batch=PrepareBatchPair() if prepare_batch is None else prepare_batch,
            decollate=False,
            amp=as_bool(amp, "amp") and torch.device(device).type == "cuda",
            **kwargs,
        )
        self.network, self.d_x, self.d_y = network, d_x, d_y
        self.inferer = SimpleInferer() if inferer is None else inferer
        self.g_optimizer, self.d_optimizer = g_optimizer, d_optimizer
        self.adversarial_loss = adversarial_loss
        self.lambda_cyc, self.lambda_att, self.n_dis = lambda_cyc, lambda_att, n_dis
        self.fast_path = FastPath.resolve(amp, device, network, d_x, d_y)
        self.fast_path.prepare_network(network, d_x, d_y)
        self.g_scaler = torch.amp.GradScaler("cuda", enabled=self.amp)
        self.d_scaler = torch.amp.GradScaler("cuda", enabled=self.amp)

    def generator_step(self, x: torch.Tensor, y: torch.Tensor) -> tuple[CycleOutput, dict[str, float]]:
        """Update the four decoders; the discriminators only pass gradients through."""
        self.network.train()
        self.d_x.requires_grad_(False)
        self.d_y.requires_grad_(False)
        self.g_optimizer.zero_grad(set_to_none=True)
        cycle = self.fast_path.forward(self.inferer, x, self.network, y)
        terms = self.generator_loss_terms(cycle, x, y)
        loss = sum(weight * term for weight, term in terms.values())
        self.g_scaler.scale(loss).backward()
        self.g_scaler.step(self.g_optimizer)
        self.g_scaler.update()
        self.d_x.requires_grad_(True)
        self.d_y.requires_grad_(True)
        return cycle, {"loss_g": loss.item(), **{name: term.item() for name, (_, term) in terms.items()}}

    def generator_loss_terms(
        self, cycle: CycleOutput, x: torch.Tensor, y: torch.Tensor
    ) -> dict[str, tuple[float, torch.Tensor]]:
        """The generator loss as (weight, term) by the term's logged name; the loss is the weighted sum.

        Why a method: a variant adds its own term by extending this dict, not by copying the step.
        """
        adv = self.adversarial_loss(
            self.fast_path.forward(self.d_y, cycle.x_to_y.fake), True
        ) + self.adversarial_loss(self.fast_path.forward(self.d_x, cycle.y_to_x.fake), True)
        cyc = F.l1_loss(cycle.rec_x, x) + F.l1_loss(cycle.rec_y, y)
        att = cycle.x_to_y.attention.mean() + cycle.y_to_x.attention.mean()
        return {
            "loss_g_adv": (1.0, adv),
            "loss_cyc": (self.lambda_cyc, cyc),
            "attention": (self.lambda_att, att),
        }

    def discriminator_step(
        self, x: torch.Tensor, y: torch.Tensor, fake_x: torch.Tensor, fake_y: torch.Tensor
    ) -> dict[str, float]:
        """Update both discriminators on real images and detached translations."""
        self.d_optimizer.zero_grad(set_to_none=True)
        # real and translated images in one call per discriminator
        real_x, judged_fake_x = self.fast_path.forward(self.d_x, torch.cat([x, fake_x])).split(
            [len(x), len(fake_x)]
        )
        real_y, judged_fake_y = self.fast_path.forward(self.d_y, torch.cat([y, fake_y])).split(
            [len(y), len(fake_y)]
        )
        loss_x = self.adversarial_loss(real_x, True) + self.adversarial_loss(judged_fake_x, False)
        loss_y = self.adversarial_loss(real_y, True) + self.adversarial_loss(judged_fake_y, False)
        loss = 0.5 * (loss_x + loss_y)
        self.d_scaler.scale(loss).backward()
        self.d_scaler.step(self.d_optimizer)
        self.d_scaler.update()
        return {"loss_d": loss.item(), "loss_d_x": 0.5 * loss_x.item(), "loss_d_y": 0.5 * loss_y.item()}

    def train_step(self, x: torch.Tensor, y: torch.Tensor) -> dict:
        """One generator step, then ``n_dis`` discriminator steps; images in [0, 1]."""
        x, y = (self.fast_path.prepare_input(to_gan_range(t.float())) for t in (x, y))
        cycle, parts = self.generator_step(x, y)
        fake_x, fake_y = cycle.y_to_x.fake.detach(), cycle.x_to_y.fake.detach()
        for _ in range(self.n_dis):
            parts.update(self.discriminator_step(x, y, fake_x, fake_y))
        return {
            LOSS_PARTS: parts,
            "x": x.detach(),
            "y": y.detach(),
            "x_to_y": _detached(cycle.x_to_y),
            "y_to_x": _detached(cycle.y_to_x),
        }

    def _iteration(self, engine: AGCycleGANTrainer, batchdata: dict) -> dict:
        if batchdata is None:
            raise ValueError("Must provide batch data for current iteration.")
        x, y = engine.prepare_batch(batchdata, engine.state.device, engine.non_blocking, **engine.to_kwargs)
        engine.state.output = engine.train_step(x, y)
        engine.fire_event(IterationEvents.MODEL_COMPLETED)
        return engine.state.output


def _detached(translation: Translation) -> Translation:
    return Translation(*(t.detach() for t in translation))
